// Two workers on one state table (suites "eal" and, for ThreadSanitizer, "[concurrent]"):
// each connection's client side is received by worker 0 and its server side by worker 1,
// as on a NIC without symmetric RSS, while the main lcore applies peer states as the sync
// role does (insert, update, delete) and runs the expiry sweep. A state is tracked by the
// worker that owns it: worker 0 makes every connection's states, so worker 1 hands the
// server's packets to it. Half the connections are then replaced by copies "from a peer"
// (as after a failover), which nobody owns: the workers claim them as their packets come,
// both at once, and hand each other what the other claimed. Every packet must get pf's
// verdict (the handshake and the data pass; a server packet without a state is blocked),
// the counters must add up, and every connection must keep exactly its two states, each
// owned by one worker.
#include "bench/ring_ports.hpp"
#include "bench/traffic.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/state_logic.hpp"
#include "dataplane/state_table.hpp"
#include "dataplane/worker.hpp"
#include "tests/eal/worker_fixture.hpp"

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace syncwall;

namespace {

constexpr unsigned queues = 2;
constexpr unsigned ring_size = 2048;    // rx: what the generator may put ahead
constexpr unsigned tx_ring_size = 8192; // tx: never full, as the generator drains it often
constexpr uint32_t flows = 400;
constexpr unsigned rounds = 12;       // data segments per flow and direction
constexpr uint32_t peer_flows = 3000; // states "from a peer", outside the flows' addresses
// Packets the generator lets into the workers before it waits for some to come out: below
// a hand-off ring's room, so that a worker never finds the ring to its peer full (which
// would be a counted drop, not what this test is about).
constexpr uint64_t in_flight = dp::handoff_ring_size - 64;

using bench::RingPort;

config::Config make_config() {
    config::Config c;
    c.source_file = "<eal test>";
    c.node.hostid = 0x7e58;
    c.dpdk.mbufs = 16383; // every packet of the test its own mbuf (Traffic::sent)
    c.lcores.main = rte_get_main_lcore();
    c.lcores.sync = c.lcores.main;
    unsigned lcore;
    RTE_LCORE_FOREACH_WORKER(lcore) {
        if (c.lcores.workers.size() < queues) c.lcores.workers.push_back(lcore);
    }
    c.lcores.idle = config::IdlePolicy::adaptive; // the lcores share two CPUs with the test
    bench::add_interfaces_and_routes(c, "twlan", "twwan", "<eal test>");
    c.rules = {{"block all", {"<eal test>", 3, 1}},
               {"pass out all", {"<eal test>", 4, 1}},
               {"pass in on lan proto tcp from 198.18.0.0/16 to any", {"<eal test>", 5, 1}}};
    c.limits.states = 4 * flows + 2 * peer_flows;
    c.limits.neighbours = 64;
    c.control.socket = "";
    return c;
}

// A launched worker; `done` is set (release) when its loop has returned, so that the main
// lcore's acquire of it orders the worker's last writes before what the test reads and
// frees afterwards (rte_eal_wait_lcore's own hand-over is not visible to ThreadSanitizer).
struct Launched {
    std::unique_ptr<dp::Worker> worker;
    std::atomic<bool> done{false};
};

int run_worker(void *arg) {
    auto *l = static_cast<Launched *>(arg);
    l->worker->run();
    l->done.store(true, std::memory_order_release);
    return 0;
}

// The generator's side: frames onto rx queues, what the workers sent off the tx queues.
struct Traffic {
    dp::Dataplane &dp;
    RingPort &lan, &wan;
    bench::FrameWriter writer{64, false};
    const bench::Mac peer{0x02, 0x7e, 0, 0, 0, 2};
    uint64_t to_wan = 0, to_lan = 0; // frames the workers sent out of each port
    uint64_t puts = 0;
    // What the workers sent, kept (not freed) until they have stopped: every mbuf then
    // passes one way only, generator -> worker -> here, and is never recycled through the
    // mempool while the workers run (a hand-over ThreadSanitizer cannot see).
    std::vector<rte_mbuf *> sent;

    ~Traffic() {
        for (rte_mbuf *m : sent)
            rte_pktmbuf_free(m);
    }

    // Flow i's segment onto `port`'s rx queue `q`, addressed to that port's MAC.
    void put(RingPort &port, unsigned q, uint16_t port_index, uint32_t i, bench::Segment seg) {
        rte_mbuf *m = test::traffic_frame(dp.pool, writer, bench::flow_tuple(i, false), i, seg,
                                          dp.ports[port_index].mac, peer);
        while (puts - to_wan - to_lan - dropped() >= in_flight)
            drain(); // the workers are behind: take what they sent meanwhile
        while (rte_ring_enqueue(port.rx[q], m) != 0)
            drain();
        if (++puts % 16 == 0) drain();
    }

    uint64_t dropped() const { return dp.totals().total_drops(); }

    void drain() {
        void *out[64];
        for (unsigned q = 0; q < queues; q++) { // until empty: a worker may add as we go
            for (auto [ring, count] :
                 {std::pair{wan.tx[q], &to_wan}, std::pair{lan.tx[q], &to_lan}}) {
                unsigned n;
                while ((n = rte_ring_dequeue_burst(ring, out, 64, nullptr)) != 0) {
                    *count += n;
                    for (unsigned k = 0; k < n; k++)
                        sent.push_back(static_cast<rte_mbuf *>(out[k]));
                }
            }
        }
    }

    // Drain until `done` holds, or fail after 20 s; `between` runs alongside.
    template <class Done, class Between> void wait(Done done, Between between) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) {
                const dp::CounterTotals tot = dp.totals();
                std::string drops;
                for (std::size_t r = 0; r < dp::drop_reason_count; r++)
                    if (tot.drops[r] != 0)
                        // append(), not a chain of +: GCC 12 -O3 warns falsely
                        // (-Wrestrict) about the temporaries.
                        drops.append(" ")
                            .append(dp::drop_reason_names[r])
                            .append(" ")
                            .append(std::to_string(tot.drops[r]));
                FAIL("no progress within 20 s: to_wan " << to_wan << " to_lan " << to_lan
                                                        << " forwarded " << tot.forwarded
                                                        << " punted " << tot.punted << drops);
            }
            drain();
            between();
        }
    }
};

// A peer's state as the sync role installs it: UDP between addresses no flow uses, idle
// long enough that the sweep may take it (its lifetime is udp.first_packet).
dp::State peer_state(uint32_t n, uint32_t now) {
    dp::State s;
    s.key.af = 4;
    s.key.proto = 17;
    s.key.addr[0] = {10, 77, uint8_t(n >> 8), uint8_t(n)};
    s.key.addr[1] = {10, 78, 0, 1};
    s.key.port[0] = uint16_t(2000 + n % 50000);
    s.key.port[1] = 53;
    s.creatorid = 0x5eed;
    s.id = 0x1000 + n;
    s.timeout = dp::Timeout::udp_first;
    s.creation = now - 1000;
    s.expire = n % 2 == 0 ? now - 1000 : now; // every other one is due
    s.origin = dp::state_origin::peer;
    return s;
}

} // namespace

TEST_CASE("two workers track each connection from both sides while peer states are applied and "
          "expired",
          "[eal][workers][concurrent]") {
    REQUIRE(rte_lcore_count() >= 1 + queues);
    RingPort lan = bench::make_ring_port("twlan", queues, ring_size, tx_ring_size),
             wan = bench::make_ring_port("twwan", queues, ring_size, tx_ring_size);
    const config::Config cfg = make_config();
    REQUIRE(cfg.lcores.workers.size() == queues);
    dp::Dataplane dp(cfg);
    bench::add_gateway_neighbours(dp, bench::Mac{0x02, 0x7e, 0, 0, 0, 2});
    dp.start_ports();
    std::array<Launched, queues> workers;
    for (unsigned w = 0; w < queues; w++) {
        workers[w].worker = std::make_unique<dp::Worker>(dp, w);
        REQUIRE(rte_eal_remote_launch(run_worker, &workers[w], cfg.lcores.workers[w]) == 0);
    }
    // Stops the workers however the test ends (a failed REQUIRE unwinds through here).
    struct StopWorkers {
        dp::Dataplane &dp;
        std::array<Launched, queues> &workers;
        void operator()() {
            dp.stopping = true;
            rte_eal_mp_wait_lcore();
            for (auto &l : workers)
                while (l.worker && !l.done.load(std::memory_order_acquire)) {
                }
        }
        ~StopWorkers() { (*this)(); }
    } stop_workers{dp, workers};
    Traffic t{dp, lan, wan};
    using bench::Segment;

    // The sync role's work, a step at a time, between the generator's: install a peer
    // state, update the one before (its peers and expiry, under the slot lock, as an
    // update from the peer does), delete every fifth; and the expiry sweep.
    uint32_t next_peer = 0, peer_removed = 0, swept = 0;
    std::vector<uint32_t> peer_slot(peer_flows, dp::StateTable::no_slot);
    const auto sync_and_sweep = [&] {
        if (next_peer < peer_flows) {
            uint32_t slot = dp::StateTable::no_slot;
            REQUIRE(dp.states->insert(peer_state(next_peer, dp.now()), dp.sync_writer(), &slot) ==
                    dp::StateTable::InsertResult::ok);
            peer_slot[next_peer] = slot;
            if (next_peer > 0 && dp.states->lock(peer_slot[next_peer - 1])) {
                dp::State &s = dp.states->state(peer_slot[next_peer - 1]);
                s.src.state = dp::pseudo_multiple;
                s.dst.state = dp::pseudo_multiple;
                dp.states->notify_update(peer_slot[next_peer - 1], dp.sync_writer());
                dp.states->unlock(peer_slot[next_peer - 1]);
            }
            if (next_peer % 5 == 4 && dp.remove_state(slot, dp.sync_writer())) peer_removed++;
            next_peer++;
        }
        swept += dp.expire_states(64);
        dp.states->reclaim();
    };
    const auto idle = [] {};

    // A server packet of a connection nobody opened: no state, `block all`.
    t.put(wan, 1, 1, flows + 7, Segment::syn_ack);
    // The handshake, one step at a time (a step's packets all through before the next:
    // the server's answer must find the state the client's packet made).
    for (uint32_t i = 0; i < flows; i++)
        t.put(lan, 0, 0, i, Segment::syn);
    t.wait([&] { return t.to_wan == flows; }, sync_and_sweep);
    for (uint32_t i = 0; i < flows; i++)
        t.put(wan, 1, 1, i, Segment::syn_ack);
    t.wait([&] { return t.to_lan == flows; }, sync_and_sweep);
    for (uint32_t i = 0; i < flows; i++)
        t.put(lan, 0, 0, i, Segment::ack);
    t.wait([&] { return t.to_wan == 2 * flows; }, sync_and_sweep);

    // Every odd connection's two states are replaced by copies from a peer, as a backup
    // holds them when it takes over: the same windows and counters, another creator, no
    // owner, no rule.
    for (uint32_t i = 1; i < flows; i += 2) {
        for (auto dir : {dp::StateDirection::in, dp::StateDirection::out}) {
            const uint32_t slot = dp.states->lookup(bench::flow_key(i, false, dir));
            dp::State s;
            REQUIRE(dp.states->read(slot, s));
            REQUIRE(s.owner == 0);
            REQUIRE(dp.remove_state(slot, dp.sync_writer()));
            s.owner = dp::no_owner;
            s.origin = dp::state_origin::peer;
            s.creatorid = 0x5eed;
            s.id = 0x900000 + 2 * i + (dir == dp::StateDirection::out ? 1 : 0);
            s.rule = dp::no_rule;
            uint32_t copy = dp::StateTable::no_slot;
            REQUIRE(dp.states->insert(s, dp.sync_writer(), &copy) ==
                    dp::StateTable::InsertResult::ok);
        }
    }

    // Data both ways at once: client segments to worker 0, server segments to worker 1,
    // interleaved so that both workers track the same states at the same time.
    for (unsigned r = 0; r < rounds; r++) {
        for (uint32_t i = 0; i < flows; i++) {
            t.put(lan, 0, 0, i, Segment::ack);
            t.put(wan, 1, 1, i, Segment::server_ack);
        }
        sync_and_sweep();
    }
    const uint64_t want_wan = 2 * flows + uint64_t(rounds) * flows;
    const uint64_t want_lan = flows + uint64_t(rounds) * flows;
    t.wait([&] { return t.to_wan == want_wan && t.to_lan == want_lan; }, idle);
    while (next_peer < peer_flows)
        sync_and_sweep();
    // One whole pass after the last insert: every due state has been seen by the sweep.
    swept += dp.expire_states(dp.states->slots());
    stop_workers();
    t.drain();
    dp.stop_ports();

    INFO("to_wan " << t.to_wan << " to_lan " << t.to_lan << " peer removed " << peer_removed
                   << " swept " << swept);
    const dp::CounterTotals tot = dp.totals();
    CHECK(t.to_wan == want_wan);
    CHECK(t.to_lan == want_lan);
    CHECK(tot.forwarded == want_wan + want_lan);
    CHECK(tot.drops[std::size_t(dp::DropReason::filter_block)] == 1);
    CHECK(tot.total_drops() == 1);
    // Worker 1 handed worker 0 the server's packets of the connections worker 0 made, and
    // the workers handed each other the packets of the claimed ones whose state (or one of
    // whose two states) the other claimed: worker 1 forwarded nothing of its own before
    // the claims, and after them at most its claimed connections' packets.
    const uint64_t handed[2] = {dp.worker_counters[0].handed_off.get(),
                                dp.worker_counters[1].handed_off.get()};
    const uint64_t fwd[2] = {dp.worker_counters[0].forwarded.get(),
                             dp.worker_counters[1].forwarded.get()};
    INFO("handed off " << handed[0] << " " << handed[1] << ", forwarded " << fwd[0] << " "
                       << fwd[1]);
    CHECK(handed[1] >= flows + uint64_t(rounds) * (flows / 2));
    CHECK(fwd[1] <= 2 * uint64_t(rounds) * (flows / 2));
    CHECK(fwd[0] + fwd[1] == want_wan + want_lan);
    CHECK(tot.handed_off == handed[0] + handed[1]);

    // Every connection kept exactly its two states, established both ways, with every
    // packet counted once in each.
    uint32_t checked = 0, claimed[queues] = {};
    for (uint32_t i = 0; i < flows; i++) {
        for (auto dir : {dp::StateDirection::in, dp::StateDirection::out}) {
            const uint32_t slot = dp.states->lookup(bench::flow_key(i, false, dir));
            REQUIRE(slot != dp::StateTable::no_slot);
            dp::State s;
            REQUIRE(dp.states->read(slot, s));
            INFO("flow " << i << (dir == dp::StateDirection::in ? " in" : " out"));
            if (i % 2 == 0) {
                CHECK(s.owner == 0);
            } else { // claimed by the worker that matched it first
                CHECK(s.owner < queues);
                CHECK(s.creatorid == 0x5eed);
                claimed[s.owner]++;
            }
            CHECK(s.src.state == dp::tcps_established);
            CHECK(s.dst.state == dp::tcps_established);
            // packets[0] counts the packets in the direction that made the state: the
            // client's (SYN, ACK, its data), in on lan and out on wan alike.
            CHECK(s.packets[0] == 2 + uint64_t(rounds));
            CHECK(s.packets[1] == 1 + uint64_t(rounds));
            checked++;
        }
    }
    CHECK(checked == 2 * flows);
    INFO("claimed by worker 0: " << claimed[0] << ", by worker 1: " << claimed[1]);
    CHECK(claimed[0] + claimed[1] == flows);
    // The peer states: the odd ones were never due (and some deleted by the peer), the
    // even ones went with the sweep; none is left twice or lost besides.
    uint32_t peer_live = 0;
    for (uint32_t n = 0; n < peer_flows; n++)
        peer_live += dp.states->lookup(peer_state(n, 0).key) != dp::StateTable::no_slot ? 1 : 0;
    uint32_t odd_kept = 0, even_due = 0;
    for (uint32_t n = 0; n < peer_flows; n++)
        (n % 2 == 1 ? odd_kept : even_due) += n % 5 == 4 ? 0 : 1;
    CHECK(peer_live == odd_kept);
    CHECK(swept == even_due);
    CHECK(peer_removed == peer_flows / 5);
    CHECK(dp.states->count() == 2 * flows + peer_live);
}
