// A forwarded connection's two states in a worker (suite "eal"): where the worker puts them
// (the out pass asks the state table for a slot near the in state, so the twins of every
// connection a burst makes lie in partner slots, 2k and 2k + 1, and the next packets link
// them), and how it checks them (the out pass takes the in pass's TCP window check only
// where the two states' peers are equal). A worker polled by the test on two net_ring
// ports.
#include "bench/ring_ports.hpp"
#include "bench/traffic.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/frame_writer.hpp"
#include "dataplane/state_table.hpp"
#include "dataplane/worker.hpp"
#include "tests/eal/worker_fixture.hpp"

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <optional>

using namespace syncwall;

namespace {

// lan and wan on net_ring ports of these names, a gateway on wan, pf's `pass` (which keeps
// state), one worker that the test polls.
struct Rig {
    bench::RingPort lan, wan;
    config::Config cfg; // the Dataplane keeps a reference
    dp::Dataplane dp;
    std::optional<dp::Worker> worker;

    Rig(const char *lan_name, const char *wan_name)
        : lan(bench::make_ring_port(lan_name, 1, 64, 64)),
          wan(bench::make_ring_port(wan_name, 1, 64, 64)), cfg(config(lan_name, wan_name)),
          dp(cfg) {
        bench::add_gateway_neighbours(dp, {0x02, 0x7e, 0, 0, 0, 1});
        dp.start_ports();
        worker.emplace(dp, 0);
    }
    ~Rig() { dp.stop_ports(); }

    static config::Config config(const char *lan_name, const char *wan_name) {
        config::Config c = test::polled_worker_config();
        bench::add_interfaces_and_routes(c, lan_name, wan_name, "<eal test>");
        c.rules = {{"pass all", {"<eal test>", 3, 1}}};
        return c;
    }

    // Flow i's segment `seg` (UDP or TCP) from `from` (port `from_index`) onto its rx queue.
    void put(const bench::RingPort &from, uint16_t from_index, uint32_t i, bench::Segment seg) {
        const bool udp = seg == bench::Segment::udp;
        const bench::FrameWriter writer{64, udp};
        const bench::Mac peer{0x02, 0x7e, 0, 0, 0, 2};
        rte_mbuf *m = test::traffic_frame(dp.pool, writer, bench::flow_tuple(i, udp), i, seg,
                                          dp.ports[from_index].mac, peer);
        REQUIRE(rte_ring_enqueue(from.rx[0], m) == 0);
    }

    // One poll; returns how many frames left on `to`.
    unsigned poll(const bench::RingPort &to) {
        worker->poll_once();
        void *out[64];
        const unsigned sent = rte_ring_dequeue_burst(to.tx[0], out, 64, nullptr);
        for (unsigned k = 0; k < sent; k++)
            rte_pktmbuf_free(static_cast<rte_mbuf *>(out[k]));
        return sent;
    }

    // Flows [first, first + n) one UDP datagram each from lan in one burst.
    unsigned send_udp_burst(uint32_t first, uint32_t n) {
        for (uint32_t i = first; i < first + n; i++)
            put(lan, 0, i, bench::Segment::udp);
        return poll(wan);
    }

    // Flow i's TCP segment `seg`, from lan if the client sends it, else from wan.
    unsigned send_tcp(uint32_t i, bench::Segment seg) {
        const bool client = bench::from_client(seg);
        put(client ? lan : wan, client ? 0 : 1, i, seg);
        return poll(client ? wan : lan);
    }

    // Flow i's handshake and the server's first ACK, each segment a burst of its own: the
    // client's side on lan (its in state), the server's on wan (the out state).
    void handshake(uint32_t i) {
        REQUIRE(send_tcp(i, bench::Segment::syn) == 1);
        REQUIRE(send_tcp(i, bench::Segment::syn_ack) == 1);
        REQUIRE(send_tcp(i, bench::Segment::ack) == 1);
        REQUIRE(send_tcp(i, bench::Segment::server_ack) == 1);
    }

    // Packets refused because they did not fit a state.
    uint64_t mismatches() {
        return dp.totals().drops[size_t(dp::DropReason::filter_state_mismatch)];
    }
};

// An ICMP port unreachable from flow i's server to its client, quoting the client's ACK (its
// IPv4 header and first 8 TCP bytes), on the server's side: wan's rx queue.
rte_mbuf *port_unreachable(Rig &rig, uint32_t i) {
    const bench::FrameWriter writer{64, false};
    const bench::Mac peer{0x02, 0x7e, 0, 0, 0, 2};
    uint8_t ack[64] = {};
    writer.write(ack, i, bench::Segment::ack, rig.dp.ports[0].mac, peer);
    constexpr uint16_t quoted = 20 + 8, ip_total = 20 + 8 + quoted;
    rte_mbuf *m = rte_pktmbuf_alloc(rig.dp.pool);
    REQUIRE(m != nullptr);
    auto *p = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, 14 + ip_total));
    REQUIRE(p != nullptr);
    std::memset(p, 0, 14 + ip_total);
    dp::write_ether({p, 14}, rig.dp.ports[1].mac, peer, 0x0800);
    // From the server (the ACK's destination) to the client.
    dp::write_ipv4_header(p + 14, ip_total, dp::proto_icmp, ack + 14 + 16, ack + 14 + 12);
    uint8_t *icmp = p + 14 + 20;
    icmp[0] = 3; // destination unreachable
    icmp[1] = 3; // port unreachable
    std::memcpy(icmp + 8, ack + 14, quoted);
    dp::store_be16(icmp + 2, dp::internet_checksum({icmp, 8 + quoted}));
    return m;
}

bool same_peers(const dp::State &a, const dp::State &b) {
    return std::memcmp(&a.src, &b.src, sizeof a.src) == 0 &&
           std::memcmp(&a.dst, &b.dst, sizeof a.dst) == 0;
}

} // namespace

TEST_CASE("a worker puts each forwarded connection's two states in partner slots and links "
          "them",
          "[eal][state]") {
    Rig rig("tplan", "tpwan");
    dp::StateTable &st = *rig.dp.states;

    // Three bursts of 32 new connections: each burst's in pass makes 32 states before its out
    // pass makes theirs.
    constexpr uint32_t bursts = 3, per_burst = 32;
    for (uint32_t b = 0; b < bursts; b++)
        REQUIRE(rig.send_udp_burst(b * per_burst, per_burst) == per_burst);
    REQUIRE(st.count() == 2 * bursts * per_burst);
    for (uint32_t i = 0; i < bursts * per_burst; i++) {
        INFO("flow " << i);
        const uint32_t in = st.lookup(bench::flow_key(i, true, dp::StateDirection::in)),
                       out = st.lookup(bench::flow_key(i, true, dp::StateDirection::out));
        REQUIRE(in != dp::StateTable::no_slot);
        REQUIRE(out != dp::StateTable::no_slot);
        CHECK(out == (in ^ 1));
        CHECK(st.twin(in) == out); // linked by the packet that made them
        CHECK(st.twin(out) == in);
    }
    // The next datagrams find both states (no new ones) and leave.
    REQUIRE(rig.send_udp_burst(0, per_burst) == per_burst);
    CHECK(st.count() == 2 * bursts * per_burst);
}

// The out pass takes a twin's TCP window check from the in pass (Filter, TrackMemo) only
// where the twin's peers are the in state's: both states of a connection end up as if
// each had been checked, and a twin whose peers differ is checked on its own.
TEST_CASE("a forwarded TCP packet's out state is checked on its own when its peers differ "
          "from the in state's",
          "[eal][state]") {
    Rig rig("tmlan", "tmwan");
    dp::StateTable &st = *rig.dp.states;
    using bench::Segment;

    // The handshake: each packet updates both states, the same way.
    constexpr uint32_t flow = 7;
    rig.handshake(flow);
    const uint32_t in = st.lookup(bench::flow_key(flow, false, dp::StateDirection::in)),
                   out = st.lookup(bench::flow_key(flow, false, dp::StateDirection::out));
    REQUIRE(in != dp::StateTable::no_slot);
    REQUIRE(out != dp::StateTable::no_slot);
    REQUIRE(st.twin(in) == out);
    dp::State a, b;
    REQUIRE(st.read(in, a));
    REQUIRE(st.read(out, b));
    CHECK(a.src.state == dp::tcps_established);
    CHECK(a.dst.state == dp::tcps_established);
    CHECK(same_peers(a, b));
    CHECK(a.packets[0] == 2);
    CHECK(b.packets[0] == 2);
    CHECK(a.packets[1] == 2);
    CHECK(b.packets[1] == 2);

    // The out state alone is put out of step, on one side and then the other, so that the
    // client's next ACK fits the in state's windows but not the out state's: it is refused
    // outbound (and still counted inbound, as pf counts it). Then the out state is put back.
    uint64_t in_packets = 3;
    auto refused_outbound = [&](auto &&change, auto &&undo) {
        REQUIRE(st.lock(out));
        change(st.state(out));
        st.unlock(out);
        const uint64_t before = rig.mismatches();
        CHECK(rig.send_tcp(flow, Segment::ack) == 0);
        CHECK(rig.mismatches() == before + 1);
        REQUIRE(st.read(in, a));
        REQUIRE(st.read(out, b));
        CHECK(a.packets[0] == in_packets++);
        CHECK(b.packets[0] == 2);
        REQUIRE(st.lock(out));
        undo(st.state(out));
        st.unlock(out);
    };
    // dst: the server has sent far more than the client acks.
    refused_outbound([](dp::State &s) { s.dst.seqlo += 10'000'000; },
                     [](dp::State &s) { s.dst.seqlo -= 10'000'000; });
    // src: the client may send no further than its ISN.
    refused_outbound([](dp::State &s) { s.src.seqhi -= 1'000'000; },
                     [](dp::State &s) { s.src.seqhi += 1'000'000; });

    // Put back, the two are checked as one again and the packet leaves.
    CHECK(rig.send_tcp(flow, Segment::ack) == 1);
    REQUIRE(st.read(in, a));
    REQUIRE(st.read(out, b));
    CHECK(same_peers(a, b));
    CHECK(a.packets[0] == in_packets);
    CHECK(b.packets[0] == 3);
}

// The out pass takes the packets whose twin it may give the in pass's check in one step
// each (Filter::track_twin, counted in twin_steps), and the rest on the general path, with
// every later packet of the burst whose hint (its out state's slot) falls on the same bit of
// a 64-bit mask. Either way each state of a connection ends up updated, counted and timed as
// its own check would leave it: the same peers, packets, bytes, expiry and timeout class as
// its twin's.
TEST_CASE("a burst's forwarded TCP packets update both states of each connection alike, by "
          "the one step or the general path",
          "[eal][state]") {
    Rig rig("tslan", "tswan");
    dp::StateTable &st = *rig.dp.states;
    using bench::Segment;
    // 65 connections, so that two of them have out states on the same bit of the mask; the
    // bursts below use the first eight.
    constexpr uint32_t all = 65, flows = 8;
    for (uint32_t f = 0; f < all; f++)
        rig.handshake(f);
    uint32_t in[all], out[all];
    for (uint32_t f = 0; f < all; f++) {
        in[f] = st.lookup(bench::flow_key(f, false, dp::StateDirection::in));
        out[f] = st.lookup(bench::flow_key(f, false, dp::StateDirection::out));
        REQUIRE(in[f] != dp::StateTable::no_slot);
        REQUIRE(out[f] != dp::StateTable::no_slot);
        REQUIRE(st.twin(in[f]) == out[f]);
    }
    auto steps = [&] { return rig.dp.worker_counters[0].twin_steps.get(); };
    auto same_bit = [](uint32_t a, uint32_t b) { return (a & 63) == (b & 63); };
    // Of the ACKs of flows [0, flows) sent in that order, how many take the one step when
    // flow g's takes the general path with the hint `hint` (g == flows: a packet before them).
    auto expected_steps = [&](uint32_t hint, uint32_t g) {
        uint64_t n = 0;
        for (uint32_t f = 0; f < flows; f++)
            if (f != g && !((g == flows || f > g) && same_bit(out[f], hint))) n++;
        return n;
    };
    // Both states' expiry and timeout class set back, so that a packet that leaves one of
    // them as it was shows.
    auto age = [&] {
        for (uint32_t f = 0; f < flows; f++)
            for (uint32_t s : {in[f], out[f]}) {
                REQUIRE(st.lock(s));
                st.state(s).expire = 1;
                st.state(s).timeout = dp::Timeout::tcp_first;
                st.unlock(s);
            }
    };
    auto alike = [&](uint32_t f, uint64_t client_packets) {
        INFO("flow " << f);
        dp::State a, b;
        REQUIRE(st.read(in[f], a));
        REQUIRE(st.read(out[f], b));
        CHECK(same_peers(a, b));
        CHECK(a.packets[0] == client_packets);
        CHECK(b.packets[0] == client_packets);
        CHECK(a.packets[1] == b.packets[1]);
        CHECK(a.bytes[0] == b.bytes[0]);
        CHECK(a.bytes[1] == b.bytes[1]);
        CHECK(a.expire != 1);
        CHECK(b.expire == a.expire);
        CHECK(a.timeout == dp::Timeout::tcp_established);
        CHECK(b.timeout == a.timeout);
    };

    // Every packet qualifies: two ACKs of each connection in one burst, all in one step.
    age();
    uint64_t before = steps();
    for (uint32_t round = 0; round < 2; round++)
        for (uint32_t f = 0; f < flows; f++)
            rig.put(rig.lan, 0, f, Segment::ack);
    REQUIRE(rig.poll(rig.wan) == 2 * flows);
    CHECK(steps() - before == 2 * flows);
    for (uint32_t f = 0; f < flows; f++)
        alike(f, 4);

    // The burst's first packet makes a new state: no kept check and no hint (no_slot, bit
    // 63), so it takes the general path, and so does each ACK whose out state falls on bit 63.
    age();
    before = steps();
    rig.put(rig.lan, 0, 100, Segment::udp);
    for (uint32_t f = 0; f < flows; f++)
        rig.put(rig.lan, 0, f, Segment::ack);
    REQUIRE(rig.poll(rig.wan) == flows + 1);
    CHECK(steps() - before == expected_steps(dp::StateTable::no_slot, flows));
    for (uint32_t f = 0; f < flows; f++)
        alike(f, 5);

    // A connection in the middle whose out state does not qualify (its peers differ from its
    // in state's, and its packets are refused outbound), with a second packet at the end of
    // the burst: it takes the general path, the others the one step but those after it on
    // its bit.
    age();
    REQUIRE(st.lock(out[3]));
    st.state(out[3]).dst.seqlo += 10'000'000;
    st.unlock(out[3]);
    const uint64_t mismatches_before = rig.mismatches();
    before = steps();
    for (uint32_t f = 0; f < flows; f++)
        rig.put(rig.lan, 0, f, Segment::ack);
    rig.put(rig.lan, 0, 3, Segment::ack);
    REQUIRE(rig.poll(rig.wan) == flows - 1);
    CHECK(rig.mismatches() == mismatches_before + 2);
    CHECK(steps() - before == expected_steps(out[3], 3));
    dp::State refused, refused_in;
    REQUIRE(st.read(out[3], refused));
    REQUIRE(st.read(in[3], refused_in));
    CHECK(refused_in.packets[0] == 7); // counted inbound, as pf counts it
    CHECK(refused.packets[0] == 5);    // not outbound, and its expiry not restarted
    CHECK(refused.expire == 1);
    CHECK(refused.timeout == dp::Timeout::tcp_first);
    for (uint32_t f = 0; f < flows; f++) {
        if (f == 3) continue;
        INFO("flow " << f);
        dp::State a, b;
        REQUIRE(st.read(in[f], a));
        REQUIRE(st.read(out[f], b));
        CHECK(same_peers(a, b));
        CHECK(b.packets[0] == 6);
        CHECK(b.bytes[0] == a.bytes[0]);
        CHECK(b.expire == a.expire);
        CHECK(b.expire != 1);
        CHECK(b.timeout == dp::Timeout::tcp_established);
    }

    // Peers that differ in their last bytes only (the TCP state): the out state is checked
    // on its own and keeps its own, where taking the in state's outcome would overwrite it.
    REQUIRE(st.lock(out[3]));
    st.state(out[3]).dst.seqlo -= 10'000'000;
    st.state(out[3]).dst.state = dp::tcps_fin_wait_1;
    st.unlock(out[3]);
    before = steps();
    for (uint32_t f = 0; f < flows; f++)
        rig.put(rig.lan, 0, f, Segment::ack);
    REQUIRE(rig.poll(rig.wan) == flows);
    CHECK(steps() - before == expected_steps(out[3], 3));
    for (uint32_t f = 0; f < flows; f++) {
        INFO("flow " << f);
        dp::State a, b;
        REQUIRE(st.read(in[f], a));
        REQUIRE(st.read(out[f], b));
        CHECK(a.dst.state == dp::tcps_established);
        CHECK(b.dst.state == (f == 3 ? dp::tcps_fin_wait_1 : dp::tcps_established));
        CHECK(same_peers(a, b) == (f != 3));
    }

    // Two connections whose out states fall on one bit: when the first takes the general
    // path, the second follows it there although it qualifies, and passes as its own.
    uint32_t x = all, y = all;
    for (uint32_t i = 0; i < all && x == all; i++)
        for (uint32_t j = i + 1; j < all; j++)
            if (same_bit(out[i], out[j])) {
                x = i;
                y = j;
                break;
            }
    REQUIRE(x < all); // 65 slots, 64 bits
    REQUIRE(st.lock(out[x]));
    st.state(out[x]).dst.seqlo += 10'000'000;
    st.unlock(out[x]);
    dp::State y_out_before;
    REQUIRE(st.read(out[y], y_out_before));
    before = steps();
    rig.put(rig.lan, 0, x, Segment::ack);
    rig.put(rig.lan, 0, y, Segment::ack);
    REQUIRE(rig.poll(rig.wan) == 1); // y's
    CHECK(steps() - before == 0);
    dp::State ya, yb;
    REQUIRE(st.read(in[y], ya));
    REQUIRE(st.read(out[y], yb));
    CHECK(yb.packets[0] == y_out_before.packets[0] + 1);
    CHECK(ya.packets[0] == yb.packets[0]);
    CHECK(same_peers(ya, yb));
    REQUIRE(st.lock(out[x]));
    st.state(out[x]).dst.seqlo -= 10'000'000;
    st.unlock(out[x]);
    REQUIRE(st.lock(out[3]));
    st.state(out[3]).dst.state = dp::tcps_established;
    st.unlock(out[3]);
    for (uint32_t f = 0; f < flows; f++) {
        dp::State a, b;
        REQUIRE(st.read(in[f], a));
        REQUIRE(st.read(out[f], b));
        REQUIRE(same_peers(a, b)); // all put back
    }

    // An ICMP error reads the state of the connection it quotes: every packet after one in
    // the burst takes the general path, so that it meets that state as the burst's order
    // has it. The server's ACKs behind a port unreachable for flow 0, all forwarded.
    before = steps();
    REQUIRE(rte_ring_enqueue(rig.wan.rx[0], port_unreachable(rig, 0)) == 0);
    for (uint32_t f = 0; f < flows; f++)
        rig.put(rig.wan, 1, f, Segment::server_ack);
    REQUIRE(rig.poll(rig.lan) == flows + 1);
    CHECK(steps() - before == 0);
    // Without the error in front, the same ACKs take the one step.
    before = steps();
    for (uint32_t f = 0; f < flows; f++)
        rig.put(rig.wan, 1, f, Segment::server_ack);
    REQUIRE(rig.poll(rig.lan) == flows);
    CHECK(steps() - before == flows);
}

// The one step knows the twin's key from the links (Filter::run): the in state found by the
// packet's key and the hinted twin must name each other. A link to a slot that has since
// gone to another connection's state is one-way (that state links to its own partner): the
// packet then takes the general path, which finds its own out state by key, and the link is
// set right again.
TEST_CASE("a forwarded TCP packet whose in state links to another connection's out state "
          "meets its own out state",
          "[eal][state]") {
    Rig rig("tklan", "tkwan");
    dp::StateTable &st = *rig.dp.states;
    using bench::Segment;
    constexpr uint32_t f = 3, g = 4;
    rig.handshake(f);
    rig.handshake(g);
    const auto slot = [&](uint32_t flow, dp::StateDirection dir) {
        const uint32_t s = st.lookup(bench::flow_key(flow, false, dir));
        REQUIRE(s != dp::StateTable::no_slot);
        return s;
    };
    const uint32_t in_f = slot(f, dp::StateDirection::in), out_f = slot(f, dp::StateDirection::out),
                   out_g = slot(g, dp::StateDirection::out), in_g = slot(g, dp::StateDirection::in);
    REQUIRE(st.twin(in_f) == out_f);
    REQUIRE(st.twin(out_g) == in_g);
    dp::State f_out_before, g_out_before;
    REQUIRE(st.read(out_f, f_out_before));
    REQUIRE(st.read(out_g, g_out_before));

    st.set_twin(in_f, out_g); // as if out_f's slot had been reused by g's out state
    const uint64_t steps_before = rig.dp.worker_counters[0].twin_steps.get();
    REQUIRE(rig.send_tcp(f, Segment::ack) == 1);
    CHECK(rig.dp.worker_counters[0].twin_steps.get() == steps_before); // the general path
    dp::State f_out, g_out;
    REQUIRE(st.read(out_f, f_out));
    REQUIRE(st.read(out_g, g_out));
    CHECK(f_out.packets[0] == f_out_before.packets[0] + 1); // its own out state counted it
    CHECK(g_out.packets[0] == g_out_before.packets[0]);     // the other connection's did not
    CHECK(g_out.bytes[0] == g_out_before.bytes[0]);
    CHECK(same_peers(g_out, g_out_before));
    CHECK(st.twin(in_f) == out_f); // linked again
    CHECK(st.twin(out_g) == in_g);

    // Linked again, the next ACK takes the one step.
    REQUIRE(rig.send_tcp(f, Segment::ack) == 1);
    CHECK(rig.dp.worker_counters[0].twin_steps.get() == steps_before + 1);
    REQUIRE(st.read(out_f, f_out));
    CHECK(f_out.packets[0] == f_out_before.packets[0] + 2);
}
