// pfsync's sync role without ports (suite "eal": rings and the state table need EAL): two
// or three SyncCores, each on its own state table, joined by handing each packet one core
// transmits to the others' receive(). Time is passed in; nothing sleeps.
#include "sync/sync_core.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

using namespace syncwall;
using sync::Action;
using sync::SyncCore;

namespace {

constexpr unsigned worker = 0, sync_writer = 1, main_writer = 2;
int node_names = 0;

struct Node {
    uint32_t hostid;
    std::unique_ptr<dp::StateTable> table;
    dp::TimeoutTable timeouts;
    std::deque<std::vector<uint8_t>> outbox;
    std::unique_ptr<SyncCore> core;
    uint64_t next_id = 1;

    explicit Node(uint32_t id, sync::SyncCoreConfig cc = {}) : hostid(id) {
        const std::string name = "synct" + std::to_string(node_names++);
        dp::StateTableConfig tc;
        tc.name = name;
        tc.capacity = 4096;
        tc.reader_threads = 0; // grace periods end at once: this test has no readers
        table = std::make_unique<dp::StateTable>(tc);
        timeouts = dp::TimeoutTable::from_config(config::TimeoutConfig{}, tc.capacity);
        cc.name = name;
        cc.creatorid = id;
        cc.producers = 3;
        cc.sync_writer = sync_writer;
        core = std::make_unique<SyncCore>(cc, *table, timeouts, [this](std::span<const uint8_t> p) {
            outbox.emplace_back(p.begin(), p.end());
            return true;
        });
        table->set_sink(core.get());
    }
    ~Node() { table->set_sink(nullptr); }

    uint64_t sent(Action a) const { return core->stats().sent[std::size_t(a)].load(); }
    uint64_t received(Action a) const { return core->stats().received[std::size_t(a)].load(); }
    uint64_t error(sync::SyncError e) const { return core->stats().error_count(e); }

    // A TCP state created here by a worker.
    uint32_t create(uint32_t n, uint32_t now = 10) {
        dp::State s;
        s.key.af = 4;
        s.key.proto = dp::proto_tcp;
        s.key.addr[0] = {192, 0, 2, uint8_t(n)};
        s.key.addr[1] = {198, 51, 100, uint8_t(n >> 8)};
        s.key.port[0] = uint16_t(20000 + n);
        s.key.port[1] = 443;
        s.id = next_id++;
        s.creatorid = hostid;
        s.src.state = dp::tcps_established;
        s.dst.state = dp::tcps_established;
        s.src.seqlo = 1000;
        s.src.seqhi = 70000;
        s.src.max_win = 65535;
        s.dst.seqlo = 5000;
        s.dst.seqhi = 80000;
        s.dst.max_win = 65535;
        s.timeout = dp::Timeout::tcp_established;
        s.creation = s.expire = now;
        uint32_t slot;
        REQUIRE(table->insert(s, worker, &slot) == dp::StateTable::InsertResult::ok);
        return slot;
    }
    // A worker's packet moved the state's src peer forward.
    void advance(uint32_t slot, uint32_t bytes) {
        REQUIRE(table->lock(slot));
        table->state(slot).src.seqlo += bytes;
        table->notify_update(slot, worker);
        table->unlock(slot);
    }
    uint32_t find(uint32_t creator, uint64_t id) const { return table->lookup_id(creator, id); }
    dp::State copy(uint32_t slot) {
        REQUIRE(table->lock(slot));
        dp::State s = table->state(slot);
        table->unlock(slot);
        return s;
    }
};

// Deliver everything `from` sent to each of `to`; returns the packets delivered.
std::size_t deliver(Node &from, std::vector<Node *> to, uint64_t now_ms = 0, uint32_t now_s = 10) {
    std::size_t n = 0;
    while (!from.outbox.empty()) {
        for (Node *t : to)
            t->core->receive(from.outbox.front(), from.hostid, now_ms, now_s);
        from.outbox.pop_front();
        n++;
    }
    return n;
}

// Send everything queued (flush() drains one burst per ring).
void flush_all(Node &n) {
    do
        n.core->flush(0, 10);
    while (n.core->queue_depth() != 0);
}

// A pfsync packet built by `fill` (no trailer).
template <class F> std::vector<uint8_t> packet(F &&fill) {
    std::vector<uint8_t> buf(1500);
    sync::PfsyncWriter w({buf.data(), buf.size() - 20}, 1500);
    fill(w);
    buf.resize(w.finish());
    return buf;
}

// The same, signed as `hostid` with `key` and `counter`.
template <class F>
std::vector<uint8_t> signed_packet(const std::string &key, uint32_t hostid, uint64_t counter,
                                   F &&fill) {
    std::vector<uint8_t> p = packet(fill);
    const std::size_t len = p.size();
    p.resize(len + sync::auth_trailer_len);
    sync::auth_sign(
        key, {p.data(), len}, hostid, counter,
        std::span<uint8_t, sync::auth_trailer_len>(p.data() + len, sync::auth_trailer_len));
    return p;
}

uint64_t wall_ns() {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count());
}

// The BUS records in a node's outbox.
std::vector<sync::PfsyncBus> bus_records(const Node &n) {
    struct Collect : sync::PfsyncHandler {
        std::vector<sync::PfsyncBus> bus;
        void on_bus(const sync::PfsyncBus &b) override { bus.push_back(b); }
    } c;
    for (const auto &p : n.outbox) {
        sync::DecodeStats ds;
        sync::decode(p, c, ds);
    }
    return c.bus;
}

sync::SyncCoreConfig quiet_config() {
    sync::SyncCoreConfig c;
    c.interval_ms = 100;
    c.bulk_timeout_ms = 1000;
    c.bulk_max_requests = 3;
    return c;
}

} // namespace

TEST_CASE("a new state reaches the peer as INS with its identity, key and windows", "[sync]") {
    Node a(0xa, quiet_config()), b(0xb, quiet_config());
    const uint32_t slot = a.create(1);
    a.core->poll(0, 10);
    CHECK(a.outbox.empty()); // not due yet: changes wait up to interval_ms to be coalesced
    a.core->poll(100, 10);
    REQUIRE(a.outbox.size() == 1);
    CHECK(a.sent(Action::ins) == 1);
    deliver(a, {&b});
    const dp::State ours = a.copy(slot);
    const uint32_t theirs_slot = b.find(0xa, ours.id);
    REQUIRE(theirs_slot != dp::StateTable::no_slot);
    const dp::State theirs = b.copy(theirs_slot);
    CHECK(theirs.key == ours.key);
    CHECK(theirs.src.seqlo == ours.src.seqlo);
    CHECK(theirs.src.seqhi == ours.src.seqhi);
    CHECK(theirs.dst.seqlo == ours.dst.seqlo);
    CHECK(theirs.dst.max_win == ours.dst.max_win);
    CHECK(theirs.origin == dp::state_origin::peer);
    CHECK(theirs.rule == dp::no_rule);
    CHECK(b.core->stats().inserted.load() == 1);
    // The peer's copy is the peer's news, not its own: it sends nothing back.
    b.core->poll(1000, 10);
    CHECK(b.outbox.empty());
}

TEST_CASE("a connection's two states from a peer lie side by side, as a worker places them",
          "[sync]") {
    Node a(0xa, quiet_config()), b(0xb, quiet_config());
    // 32 connections made as a worker's burst makes them: the in states, then each out
    // state (the in key's sides swapped) beside its in state.
    constexpr uint32_t connections = 32;
    std::vector<uint32_t> in_slots;
    for (uint32_t n = 1; n <= connections; n++)
        in_slots.push_back(a.create(n));
    std::vector<std::pair<uint64_t, uint64_t>> ids;
    for (const uint32_t in : in_slots) {
        dp::State out = a.copy(in);
        out.key = dp::twin_key(out.key);
        out.direction = dp::StateDirection::out;
        out.id = a.next_id++;
        uint32_t slot;
        REQUIRE(a.table->insert(out, worker, &slot, nullptr, nullptr, in) ==
                dp::StateTable::InsertResult::ok);
        CHECK(slot == (in ^ 1));
        ids.emplace_back(a.copy(in).id, out.id);
    }
    a.core->poll(100, 10);
    deliver(a, {&b});
    REQUIRE(b.core->stats().inserted.load() == 2 * connections);
    // The peer applies them in the order they were made, and puts each out state beside its
    // in state (unless another connection's state took its place in the peer's memory of
    // recent inserts: a hash collision, rare).
    uint32_t partners = 0;
    for (const auto &[in_id, out_id] : ids) {
        const uint32_t in = b.find(0xa, in_id), out = b.find(0xa, out_id);
        REQUIRE(in != dp::StateTable::no_slot);
        REQUIRE(out != dp::StateTable::no_slot);
        partners += out == (in ^ 1);
    }
    INFO("connections in partner slots on the peer: " << partners << " of " << connections);
    CHECK(partners >= connections - 2);
}

TEST_CASE("1000 updates of one state become one UPD_C carrying the last of them", "[sync]") {
    auto cfg = quiet_config();
    cfg.maxupd = 0; // no early send: this is about coalescing
    Node a(0xa, cfg), b(0xb, cfg);
    const uint32_t slot = a.create(1);
    a.core->flush(0, 10);
    deliver(a, {&b});
    for (int i = 0; i < 1000; i++)
        a.advance(slot, 100);
    CHECK(a.core->stats().coalesced.load() == 999);
    a.core->poll(50, 10);
    CHECK(a.outbox.empty());
    a.core->poll(200, 10);
    REQUIRE(a.outbox.size() == 1);
    CHECK(a.sent(Action::upd_c) == 1);
    deliver(a, {&b});
    const dp::State theirs = b.copy(b.find(0xa, a.copy(slot).id));
    CHECK(theirs.src.seqlo == 1000 + 1000 * 100);
}

TEST_CASE("maxupd updates of a TCP state send it before the interval", "[sync]") {
    auto cfg = quiet_config();
    cfg.maxupd = 128;
    cfg.interval_ms = 1000;
    Node a(0xa, cfg);
    const uint32_t slot = a.create(1);
    a.core->flush(0, 10);
    a.outbox.clear();
    for (int i = 0; i < 100; i++)
        a.advance(slot, 10);
    a.core->poll(1, 10);
    CHECK(a.outbox.empty());
    for (int i = 0; i < 40; i++)
        a.advance(slot, 10);
    a.core->poll(2, 10);
    CHECK(a.outbox.size() == 1);
}

TEST_CASE("an UPD_C for an unknown state is answered with UPD_REQ, then the full state", "[sync]") {
    Node a(0xa, quiet_config()), b(0xb, quiet_config());
    const uint32_t slot = a.create(1);
    a.core->flush(0, 10);
    a.outbox.clear(); // b missed the INS
    a.advance(slot, 500);
    a.core->flush(0, 10);
    deliver(a, {&b});
    CHECK(b.error(sync::SyncError::update_unknown) == 1);
    b.core->poll(0, 10);
    CHECK(b.sent(Action::upd_req) == 1);
    deliver(b, {&a});
    CHECK(a.received(Action::upd_req) == 1);
    a.core->poll(0, 10);
    CHECK(a.sent(Action::upd) == 1);
    deliver(a, {&b});
    const uint32_t theirs = b.find(0xa, a.copy(slot).id);
    REQUIRE(theirs != dp::StateTable::no_slot);
    CHECK(b.copy(theirs).src.seqlo == 1500);
}

TEST_CASE("a stale update is ignored, counted, and answered with our newer copy", "[sync]") {
    Node a(0xa, quiet_config()), b(0xb, quiet_config());
    const uint32_t slot = a.create(1);
    a.core->flush(0, 10);
    deliver(a, {&b});
    const uint64_t id = a.copy(slot).id;
    const uint32_t bslot = b.find(0xa, id);
    // After a failover b carried the connection further than a knows.
    b.advance(bslot, 9000);
    b.outbox.clear();
    b.core->flush(0, 10);
    b.outbox.clear(); // ...but a never heard it
    // a sends an older view.
    a.advance(slot, 10);
    a.core->flush(0, 10);
    deliver(a, {&b});
    CHECK(b.core->stats().stale.load() == 1);
    CHECK(b.copy(bslot).src.seqlo == 10000); // not moved backwards
    b.core->flush(0, 10);
    CHECK(b.sent(Action::upd_c) >= 1); // ours goes back
    deliver(b, {&a});
    CHECK(a.copy(slot).src.seqlo == 10000);
}

TEST_CASE("a removal goes out as DEL_C; a state removed before it was sent is never mentioned",
          "[sync]") {
    Node a(0xa, quiet_config()), b(0xb, quiet_config());
    const uint32_t slot = a.create(1);
    a.core->flush(0, 10);
    deliver(a, {&b});
    const uint64_t id = a.copy(slot).id;
    REQUIRE(a.table->remove(slot, main_writer)); // the expiry sweep
    a.core->flush(0, 10);
    CHECK(a.sent(Action::del_c) == 1);
    deliver(a, {&b});
    CHECK(b.find(0xa, id) == dp::StateTable::no_slot);

    const uint32_t brief = a.create(2);
    REQUIRE(a.table->remove(brief, worker));
    a.core->flush(0, 10);
    CHECK(a.outbox.empty());
    CHECK(a.sent(Action::ins) == 1);
    CHECK(a.sent(Action::del_c) == 1);
}

TEST_CASE("CLR removes every state of its creator and no other", "[sync]") {
    Node a(0xa, quiet_config()), b(0xb, quiet_config()), c(0xc, quiet_config());
    for (uint32_t n = 1; n <= 5; n++)
        a.create(n);
    c.create(100);
    a.core->flush(0, 10);
    c.core->flush(0, 10);
    deliver(a, {&b});
    deliver(c, {&b});
    REQUIRE(b.table->count() == 6);
    b.core->receive(packet([](auto &w) { REQUIRE(w.add_clr(0xa)); }), 0xa, 0, 10);
    b.core->poll(0, 10);
    CHECK(b.table->count() == 1);
}

TEST_CASE("bulk update: a joining node gets every state, BUS start to BUS end", "[sync]") {
    Node a(0xa, quiet_config()), b(0xb, quiet_config());
    for (uint32_t n = 1; n <= 500; n++)
        a.create(n);
    a.core->flush(0, 10);
    a.outbox.clear(); // b was not there
    b.core->start_bulk_request(0);
    CHECK(b.core->bulk_pending());
    b.core->poll(0, 10);
    CHECK(b.sent(Action::upd_req) == 1);
    deliver(b, {&a});
    for (int i = 0; i < 10 && (a.core->bulk_sending() || i == 0); i++)
        a.core->poll(10, 10);
    CHECK_FALSE(a.core->bulk_sending());
    CHECK(a.sent(Action::bus) == 2);
    CHECK(a.sent(Action::upd) == 500);
    CHECK(a.outbox.size() >= 500 / 5); // MTU-sized packets of 264-byte states
    deliver(a, {&b}, 20, 10);
    CHECK(b.core->bulk_status() == sync::BulkStatus::done);
    CHECK_FALSE(b.core->bulk_pending());
    CHECK(b.table->count() == 500);
    CHECK(b.core->stats().bulk_received_states.load() == 500);
}

TEST_CASE("a bulk request nobody answers is repeated, then given up", "[sync]") {
    Node b(0xb, quiet_config()); // bulk_timeout_ms 1000, 3 requests
    b.core->start_bulk_request(0);
    b.core->poll(0, 0);
    b.core->poll(999, 0);
    CHECK(b.sent(Action::upd_req) == 1);
    b.core->poll(1000, 1);
    b.core->poll(2000, 2);
    CHECK(b.sent(Action::upd_req) == 3);
    CHECK(b.core->bulk_pending());
    b.core->poll(3000, 3);
    CHECK(b.core->bulk_status() == sync::BulkStatus::failed);
    CHECK_FALSE(b.core->bulk_pending());
}

TEST_CASE("three nodes: every state reaches both others", "[sync]") {
    Node a(0xa, quiet_config()), b(0xb, quiet_config()), c(0xc, quiet_config());
    for (uint32_t n = 1; n <= 10; n++)
        a.create(n);
    for (uint32_t n = 11; n <= 15; n++)
        b.create(n);
    a.core->flush(0, 10);
    b.core->flush(0, 10);
    deliver(a, {&b, &c});
    deliver(b, {&a, &c});
    CHECK(a.table->count() == 15);
    CHECK(b.table->count() == 15);
    CHECK(c.table->count() == 15);
}

TEST_CASE("authentication: matching keys sync; a wrong key or a replay syncs nothing", "[sync]") {
    auto keyed = [](std::string key) {
        auto c = quiet_config();
        c.auth_key = std::move(key);
        return c;
    };
    Node a(0xa, keyed("0123456789abcdef-a")), b(0xb, keyed("0123456789abcdef-a")),
        wrong(0xc, keyed("0123456789abcdef-X")), open(0xd, quiet_config());
    a.create(1);
    a.core->flush(0, 10);
    REQUIRE(a.outbox.size() == 1);
    const std::vector<uint8_t> packet = a.outbox.front();
    deliver(a, {&b, &wrong, &open});
    CHECK(b.table->count() == 1);
    CHECK(wrong.table->count() == 0);
    CHECK(wrong.error(sync::SyncError::auth_bad_mac) == 1);
    // A receiver without a key reads the pfsync message and ignores the trailer, as pf does.
    CHECK(open.table->count() == 1);
    // The same packet again is a replay.
    b.core->receive(packet, 0xa, 0, 10);
    CHECK(b.error(sync::SyncError::auth_replay) == 1);
    // An unauthenticated packet is refused by a keyed receiver.
    open.create(7);
    open.core->flush(0, 10);
    deliver(open, {&b});
    CHECK(b.error(sync::SyncError::auth_missing) == 1);
    CHECK(b.table->count() == 1);
}

TEST_CASE("a full delta ring never blocks: changes are counted and caught up later", "[sync]") {
    auto cfg = quiet_config();
    cfg.ring_size = 64;
    Node a(0xa, cfg), b(0xb, cfg);
    std::vector<uint32_t> slots;
    for (uint32_t n = 1; n <= 200; n++)
        slots.push_back(a.create(n));
    CHECK(a.core->stats().ring_full.load() > 0);
    a.core->flush(0, 10);
    deliver(a, {&b});
    CHECK(b.table->count() < 200);
    // The next change of each missed state queues it again, still as an insert.
    for (std::size_t i = 0; i < slots.size(); i++) {
        a.advance(slots[i], 1);
        if (i % 50 == 49) a.core->flush(0, 10);
    }
    a.core->flush(0, 10);
    deliver(a, {&b});
    CHECK(b.table->count() == 200);
}

TEST_CASE("garbage and truncated packets change nothing and are counted", "[sync]") {
    Node b(0xb, quiet_config());
    std::vector<uint8_t> junk(300, 0xab);
    b.core->receive(junk, 1, 0, 10);
    junk[0] = 6; // version right, length wrong
    b.core->receive(junk, 1, 0, 10);
    b.core->receive({}, 1, 0, 10);
    CHECK(b.table->count() == 0);
    uint64_t errors = 0;
    for (const auto &e : b.core->stats().decode_errors)
        errors += e.load();
    CHECK(errors == 3);
}

TEST_CASE("a CLR is applied a slice at a time and walks only its creator's states", "[sync]") {
    Node a(0xa, quiet_config()), b(0xb, quiet_config()), c(0xc, quiet_config());
    for (uint32_t n = 1; n <= 3000; n++)
        a.create(n);
    for (uint32_t n = 1; n <= 50; n++)
        c.create(4000 + n);
    for (uint32_t n = 1; n <= 20; n++)
        b.create(5000 + n); // b's own
    flush_all(a);
    flush_all(c);
    deliver(a, {&b});
    deliver(c, {&b});
    REQUIRE(b.table->count() == 3070);

    b.core->receive(packet([](auto &w) { REQUIRE(w.add_clr(0xc)); }), 0xc, 0, 10);
    CHECK(b.table->count() == 3070); // nothing walked on the receive path
    b.core->poll(0, 10);
    CHECK(b.table->count() == 3020);
    CHECK(b.core->stats().clear_walked.load() == 50); // c's states, not the table's slots

    // A CLR of a creator with nothing here costs nothing.
    b.core->receive(packet([](auto &w) { REQUIRE(w.add_clr(0xd)); }), 0xd, 0, 10);
    b.core->poll(0, 10);
    CHECK(b.core->stats().clear_walked.load() == 50);

    // 3000 states go over several polls, never all in one.
    b.core->receive(packet([](auto &w) { REQUIRE(w.add_clr(0xa)); }), 0xa, 0, 10);
    b.core->poll(0, 10);
    const uint32_t after_one = b.table->count();
    CHECK(after_one > 20);
    CHECK(after_one < 3020);
    for (int i = 0; i < 10; i++)
        b.core->poll(0, 10);
    CHECK(b.table->count() == 20);
    CHECK(b.core->stats().clear_walked.load() == 3050);
}

TEST_CASE("states sent after a CLR outlive the CLR's slices", "[sync]") {
    Node a(0xa, quiet_config()), b(0xb, quiet_config());
    std::vector<uint32_t> old;
    for (uint32_t n = 1; n <= 2000; n++)
        old.push_back(a.create(n));
    flush_all(a);
    deliver(a, {&b});
    REQUIRE(b.table->count() == 2000);
    const dp::State resent = a.copy(old[1500]);
    b.core->receive(packet([](auto &w) { REQUIRE(w.add_clr(0xa)); }), 0xa, 0, 10);
    // After the CLR: a new state, and an old one sent again in full (pf would insert it anew).
    a.create(3000);
    a.core->flush(0, 10);
    deliver(a, {&b});
    b.core->receive(
        packet([&](auto &w) { REQUIRE(w.add_state(sync::StateAction::upd, resent, 10, 100)); }),
        0xa, 0, 10);
    // An update for an old state the slices have not reached finds nothing.
    const dp::State stale = a.copy(old[1900]);
    b.core->receive(packet([&](auto &w) { REQUIRE(w.add_upd_c(stale)); }), 0xa, 0, 10);
    CHECK(b.error(sync::SyncError::update_unknown) == 1);
    for (int i = 0; i < 10; i++)
        b.core->poll(0, 10);
    CHECK(b.table->count() == 2);
    CHECK(b.find(0xa, resent.id) != dp::StateTable::no_slot);
}

TEST_CASE("a CLR naming our own creatorid leaves our states", "[sync]") {
    Node b(0xb, quiet_config());
    for (uint32_t n = 1; n <= 5; n++)
        b.create(n);
    b.core->receive(packet([](auto &w) { REQUIRE(w.add_clr(0xb)); }), 0xa, 0, 10);
    b.core->poll(0, 10);
    CHECK(b.table->count() == 5);
    CHECK(b.error(sync::SyncError::clear_own) == 1);
}

TEST_CASE("a BUS end without a BUS start from its creator leaves the bulk update pending",
          "[sync]") {
    Node b(0xb, quiet_config());
    b.core->start_bulk_request(0);
    b.core->poll(0, 10);
    auto bus = [](sync::BusStatus st, uint32_t creator, uint32_t endtime) {
        return packet([&](auto &w) { REQUIRE(w.add_bus(st, creator, endtime)); });
    };
    b.core->receive(bus(sync::BusStatus::end, 0xa, 0), 1, 10, 10);
    CHECK(b.core->bulk_pending());
    b.core->receive(bus(sync::BusStatus::start, 0xc, 0), 3, 10, 10);
    b.core->receive(bus(sync::BusStatus::end, 0xa, 0), 1, 10, 10);
    CHECK(b.core->bulk_pending());
    CHECK(b.error(sync::SyncError::bus_unexpected) == 2);
    b.core->receive(bus(sync::BusStatus::end, 0xc, 0), 3, 20, 10);
    CHECK(b.core->bulk_status() == sync::BulkStatus::done);
}

TEST_CASE("a BUS end whose endtime puts the request before ours is refused", "[sync]") {
    Node b(0xb, quiet_config());
    b.core->start_bulk_request(5000); // sent at 5 s on b's clock
    b.core->poll(5000, 15);
    auto bus = [](sync::BusStatus st, uint32_t endtime) {
        return packet([&](auto &w) { REQUIRE(w.add_bus(st, 0xa, endtime)); });
    };
    b.core->receive(bus(sync::BusStatus::start, 0), 1, 5100, 15);
    // 2 s after our request, a peer says it received its request 4 s ago: an older one.
    b.core->receive(bus(sync::BusStatus::end, 4), 1, 7000, 17);
    CHECK(b.core->bulk_pending());
    CHECK(b.error(sync::SyncError::bus_stale) == 1);
    // 1.5 s ago: ours (whole seconds on the sender's clock).
    b.core->receive(bus(sync::BusStatus::end, 2), 1, 6500, 16);
    CHECK(b.core->bulk_status() == sync::BulkStatus::done);
}

TEST_CASE("our BUS end carries the seconds since the request arrived, as OpenBSD's does",
          "[sync]") {
    Node a(0xa, quiet_config()), b(0xb, quiet_config());
    for (uint32_t n = 1; n <= 300; n++)
        a.create(n);
    a.core->flush(0, 1000);
    a.outbox.clear();
    b.core->start_bulk_request(0);
    b.core->poll(0, 50);
    deliver(b, {&a}, 0, 1000); // a's table clock reads 1000 s when the request arrives
    for (uint32_t t = 1000; t < 1010 && (a.core->bulk_sending() || t == 1000); t++)
        a.core->poll(t * 1000, t);
    REQUIRE_FALSE(a.core->bulk_sending());
    const auto bus = bus_records(a);
    REQUIRE(bus.size() == 2);
    CHECK(bus[1].status == uint8_t(sync::BusStatus::end));
    const uint32_t endtime = bus[1].endtime.get();
    CHECK(endtime >= 1);
    CHECK(endtime < 10);
    deliver(a, {&b}, 10000, 60);
    CHECK(b.core->bulk_status() == sync::BulkStatus::done);
    CHECK(b.table->count() == 300);
}

TEST_CASE("identical UPD_REQs in a packet are answered once", "[sync]") {
    Node a(0xa, quiet_config());
    const uint32_t slot = a.create(1);
    const dp::State s = a.copy(slot);
    a.core->flush(0, 10);
    a.outbox.clear();
    const auto req = packet([&](auto &w) {
        for (int i = 0; i < 121; i++)
            REQUIRE(w.add_upd_req(s.id, s.creatorid));
    });
    a.core->receive(req, 1, 0, 10);
    a.core->receive(req, 1, 0, 10);
    a.core->poll(0, 10);
    CHECK(a.received(Action::upd_req) == 242);
    CHECK(a.sent(Action::upd) == 1);
    CHECK(a.outbox.size() == 1);
}

TEST_CASE("replies owed are capped; the excess is counted, not queued", "[sync]") {
    Node a(0xa, quiet_config());
    std::vector<dp::State> states;
    for (uint32_t n = 1; n <= 1200; n++)
        states.push_back(a.copy(a.create(n)));
    flush_all(a);
    a.outbox.clear();
    for (std::size_t i = 0; i < states.size(); i += 100)
        a.core->receive(packet([&](auto &w) {
                            for (std::size_t j = i; j < i + 100; j++)
                                REQUIRE(w.add_upd_req(states[j].id, states[j].creatorid));
                        }),
                        1, 0, 10);
    a.core->poll(0, 10);
    CHECK(a.sent(Action::upd) == 1024);
    CHECK(a.error(sync::SyncError::reply_limit) == 1200 - 1024);
}

TEST_CASE("UPD_REQ(0, 0) starts a bulk send at most once per bulk_timeout_ms per peer", "[sync]") {
    Node a(0xa, quiet_config()); // bulk_timeout_ms 1000
    for (uint32_t n = 1; n <= 10; n++)
        a.create(n);
    a.core->flush(0, 10);
    const auto bulk = packet([](auto &w) { REQUIRE(w.add_upd_req(0, 0)); });
    auto finish = [&](uint64_t now_ms) {
        for (int i = 0; i < 5; i++)
            a.core->poll(now_ms, 10);
        REQUIRE_FALSE(a.core->bulk_sending());
    };
    a.core->receive(bulk, 1, 0, 10);
    finish(0);
    CHECK(a.core->stats().bulk_sends.load() == 1);
    for (int i = 0; i < 50; i++)
        a.core->receive(bulk, 1, 10 + i, 10); // the same peer again
    finish(100);
    CHECK(a.core->stats().bulk_sends.load() == 1);
    CHECK(a.error(sync::SyncError::bulk_limited) == 50);
    a.core->receive(bulk, 2, 100, 10); // another peer
    finish(100);
    CHECK(a.core->stats().bulk_sends.load() == 2);
    a.core->receive(bulk, 1, 1000, 10); // the first one, a bulk_timeout_ms later
    finish(1000);
    CHECK(a.core->stats().bulk_sends.load() == 3);
    CHECK(a.sent(Action::upd) == 30);
}

TEST_CASE("a signed packet replayed from another address is still a replay", "[sync]") {
    auto keyed = [] {
        auto c = quiet_config();
        c.auth_key = "0123456789abcdef-a";
        return c;
    };
    Node a(0xa, keyed()), b(0xb, keyed());
    const uint32_t slot = a.create(1);
    a.core->flush(0, 10);
    const std::vector<uint8_t> ins = a.outbox.front();
    deliver(a, {&b});
    REQUIRE(b.table->count() == 1);
    REQUIRE(a.table->remove(slot, worker));
    a.core->flush(0, 10);
    deliver(a, {&b});
    REQUIRE(b.table->count() == 0);
    // The captured INS, from any other address: the killed state must not come back.
    for (uint32_t source = 1; source <= 300; source++)
        b.core->receive(ins, source, 0, 10);
    CHECK(b.table->count() == 0);
    CHECK(b.error(sync::SyncError::auth_replay) == 300);
}

TEST_CASE("replay state is per hostid and is never dropped for a live peer", "[sync]") {
    const std::string key = "0123456789abcdef-a";
    auto cfg = quiet_config();
    cfg.auth_key = key;
    Node b(0xb, cfg);
    const uint64_t t0 = wall_ns();
    auto clr = [&](uint32_t hostid, uint64_t counter) {
        return signed_packet(key, hostid, counter, [&](auto &w) { REQUIRE(w.add_clr(hostid)); });
    };
    const auto from_a = clr(0xa, t0);
    b.core->receive(from_a, 1, 0, 10);
    CHECK(b.received(Action::clr) == 1);
    // 300 other signed senders, each from its own address, while 0xa is live.
    for (uint32_t h = 1; h <= 300; h++)
        b.core->receive(clr(0x1000 + h, t0 + h), 0x1000 + h, 1000, 10);
    CHECK(b.error(sync::SyncError::auth_peers_full) == 300 - (sync::max_auth_peers - 1));
    // 0xa's packet again, from anywhere: still a replay.
    b.core->receive(from_a, 2, 2000, 10);
    b.core->receive(from_a, 1, 2000, 10);
    CHECK(b.error(sync::SyncError::auth_replay) == 2);
    // A peer silent for auth_fresh_ms gives its place to a new one; 0xa, heard since, keeps its.
    b.core->receive(clr(0xa, t0 + 1000), 1, sync::auth_fresh_ms, 10);
    const uint64_t later = 1000 + sync::auth_fresh_ms;
    b.core->receive(clr(0x9999, wall_ns()), 9, later, 10);
    CHECK(b.error(sync::SyncError::auth_peers_full) == 300 - (sync::max_auth_peers - 1));
    b.core->receive(from_a, 1, later, 10);
    CHECK(b.error(sync::SyncError::auth_replay) == 3);
    // A trailer naming another hostid than the signer's MAC covers is a bad MAC.
    auto forged = clr(0xa, t0 + 5000);
    forged[forged.size() - sync::auth_trailer_len + 3] ^= 1; // hostid 0xa -> 0xb
    b.core->receive(forged, 1, later, 10);
    CHECK(b.error(sync::SyncError::auth_bad_mac) == 1);
}
