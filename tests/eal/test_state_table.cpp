// The state table on EAL memory (suite "eal": no hugepages, no PCI): indexes, slot life,
// RCU-deferred reuse, expiry sweep, and a worker reading while the main lcore churns.
#include "dataplane/state_table.hpp"

#include <catch2/catch.hpp>
#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_memory.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace syncwall;
using dp::StateTable;

namespace {

constexpr uint32_t creator = 0x5eed;

int table_names = 0;
dp::StateTableConfig table_config(uint32_t capacity, unsigned readers = 1) {
    dp::StateTableConfig c;
    c.name = "st_test" + std::to_string(table_names++);
    c.capacity = capacity;
    c.reader_threads = readers;
    return c;
}

dp::StateKey make_key(uint32_t n) {
    dp::StateKey k;
    k.af = 4;
    k.proto = 6;
    k.addr[0] = {10, uint8_t(n >> 16), uint8_t(n >> 8), uint8_t(n)};
    k.addr[1] = {192, 0, 2, 1};
    k.port[0] = uint16_t(1024 + n % 60000);
    k.port[1] = 443;
    return k;
}

// Payload fields derived from the key number, so that a reader can tell whose data it sees.
uint32_t rule_of(uint32_t n) {
    return n * 7 + 3;
}
uint64_t bytes_of(uint32_t n) {
    return ~uint64_t(n) * 0x9e3779b97f4a7c15ull;
}

dp::State make_state(uint32_t n, uint64_t id) {
    dp::State s;
    s.key = make_key(n);
    s.creatorid = creator;
    s.id = id;
    s.rule = rule_of(n);
    s.packets[0] = n;
    s.bytes[0] = bytes_of(n);
    s.expire = n;
    return s;
}
dp::State make_state(uint32_t n) {
    return make_state(n, n);
}

// Runs body(arg) on the first lcore after the main one; returns that lcore, for
// rte_eal_wait_lcore().
unsigned launch_beside_main(lcore_function_t *body, void *arg) {
    const unsigned lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
    REQUIRE(lcore < RTE_MAX_LCORE);
    REQUIRE(rte_eal_remote_launch(body, arg, lcore) == 0);
    return lcore;
}

// The end of a reader lcore's function: offline (it holds up no grace period), then `done`,
// set last and read once rte_eal_wait_lcore() returned: a happens-before edge
// ThreadSanitizer can see (EAL's own join is in uninstrumented librte_eal).
int finish_reader(StateTable &t, std::atomic<bool> &done) {
    t.reader_offline(0);
    done.store(true, std::memory_order_release);
    return 0;
}

// Let every reader report a quiescent state, then recycle what waited for it.
void grace_period(StateTable &t, unsigned readers) {
    for (unsigned r = 0; r < readers; r++)
        t.quiescent(r);
    t.reclaim();
}

// Whether free slot `slot` is handed out again: freed slots queue up behind the ones never
// used, so this takes fresh ones for states first_key, first_key + 1, ... (deleting them
// without a grace period, so that none comes back meanwhile) until it is, at most one per
// slot. The state in `slot` stays, live.
bool handed_out_again(StateTable &t, uint32_t slot, uint32_t first_key) {
    for (uint32_t i = 0; i < t.slots(); i++) {
        uint32_t s = StateTable::no_slot;
        REQUIRE(t.insert(make_state(first_key + i), 0, &s) == StateTable::InsertResult::ok);
        if (s == slot) return true;
        REQUIRE(t.remove(s, 0));
    }
    return false;
}

// Fills a table with states 0..capacity-1 (put(n) inserts state n into slot_of[n]), then
// replaces `rounds` of them picked at random from `seed`: each is deleted and put again,
// with a grace period every 64 rounds. forget(n), asked before state n goes, returns a check
// that the deleted state is no longer found, run once its replacement is in.
template <class Put, class Forget>
void fill_and_churn(StateTable &t, uint32_t capacity, uint32_t rounds, uint64_t seed,
                    const std::vector<uint32_t> &slot_of, Put &put, Forget forget) {
    for (uint32_t n = 0; n < capacity; n++)
        REQUIRE(put(n) == StateTable::InsertResult::ok);
    for (uint32_t round = 0; round < rounds; round++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const uint32_t n = uint32_t(seed >> 33) % capacity;
        auto gone = forget(n);
        REQUIRE(t.remove(slot_of[n], 0));
        if (round % 64 == 0) grace_period(t, 1);
        REQUIRE(put(n) == StateTable::InsertResult::ok);
        gone();
    }
}

struct Event {
    unsigned writer;
    uint32_t slot, generation;
    dp::StateChange change;
};
struct RecordingSink : dp::StateChangeSink {
    std::vector<Event> events;
    void state_changed(unsigned writer, uint32_t slot, uint32_t generation,
                       dp::StateChange change) override {
        events.push_back({writer, slot, generation, change});
    }
};

} // namespace

TEST_CASE("a state is found by key and by id, locked, changed and removed", "[eal][state]") {
    StateTable t(table_config(64));
    uint32_t slot = StateTable::no_slot;
    REQUIRE(t.insert(make_state(1), 0, &slot) == StateTable::InsertResult::ok);
    REQUIRE(slot < t.slots());
    CHECK(t.count() == 1);
    CHECK(t.lookup(make_key(1)) == slot);
    CHECK(t.lookup(make_key(2)) == StateTable::no_slot);
    CHECK(t.lookup_id(creator, 1) == slot);
    CHECK(t.lookup_id(creator, 2) == StateTable::no_slot);
    CHECK(t.lookup_id(creator + 1, 1) == StateTable::no_slot);

    REQUIRE(t.lock(slot));
    CHECK(t.state(slot).key == make_key(1));
    CHECK(t.state(slot).rule == rule_of(1));
    t.state(slot).packets[1] = 42;
    t.unlock(slot);
    REQUIRE(t.lock(slot));
    CHECK(t.state(slot).packets[1] == 42);
    t.unlock(slot);

    const dp::StateKey k1 = make_key(1), k2 = make_key(2);
    const dp::StateKey *keys[3] = {&k2, &k1, &k2};
    uint32_t slots[3] = {0, 0, 0};
    t.lookup_bulk(keys, slots, 3);
    CHECK(slots[0] == StateTable::no_slot);
    CHECK(slots[1] == slot);
    CHECK(slots[2] == StateTable::no_slot);

    REQUIRE(t.remove(slot, 0));
    CHECK(t.count() == 0);
    CHECK(t.lookup(make_key(1)) == StateTable::no_slot);
    CHECK(t.lookup_id(creator, 1) == StateTable::no_slot);
    CHECK_FALSE(t.lock(slot));
    CHECK_FALSE(t.remove(slot, 0));
    t.lookup_bulk(keys, slots, 3);
    CHECK(slots[1] == StateTable::no_slot);
    const auto st = t.stats();
    CHECK(st.inserts == 1);
    CHECK(st.removals == 1);
    CHECK(st.insert_exists == 0);
    CHECK(st.insert_full == 0);
}

TEST_CASE("states inserted with the hashes a missed bulk lookup gave are found by key",
          "[eal][state]") {
    // The filter's path for a new connection: look the burst up, insert the misses with
    // the hashes the lookup computed. A hash that is not the key's puts the key in buckets
    // where no lookup looks (and fails the debug build's assert).
    StateTable t(table_config(512));
    constexpr unsigned n = 64;
    std::vector<dp::StateKey> keys;
    const dp::StateKey *ptrs[n];
    for (unsigned i = 0; i < n; i++)
        keys.push_back(make_key(1000 + i));
    for (unsigned i = 0; i < n; i++)
        ptrs[i] = &keys[i];
    uint32_t slots[n];
    uint64_t hashes[n], again[n];
    t.lookup_bulk(ptrs, slots, n, hashes);
    t.lookup_bulk(ptrs, slots, n, again);
    uint64_t next_id = 1;
    for (unsigned i = 0; i < n; i++) {
        CHECK(slots[i] == StateTable::no_slot);
        CHECK(hashes[i] == again[i]); // a key's hash is a function of the key
        dp::State s = make_state(1000 + i);
        uint32_t slot = StateTable::no_slot;
        REQUIRE(t.insert_new(s, 0, &slot, next_id, 1, nullptr, nullptr, &hashes[i]) ==
                StateTable::InsertResult::ok);
        CHECK(t.lookup(keys[i]) == slot);
        CHECK(t.insert_new(s, 0, &slot, next_id, 1, nullptr, nullptr, &hashes[i]) ==
              StateTable::InsertResult::exists); // the same key again, by the same hash
    }
    t.lookup_bulk(ptrs, slots, n, again);
    unsigned distinct = 0;
    for (unsigned i = 0; i < n; i++) {
        CHECK(slots[i] != StateTable::no_slot);
        CHECK(again[i] == hashes[i]);
        distinct += i == 0 || hashes[i] != hashes[i - 1] ? 1 : 0;
    }
    CHECK(distinct == n);
    CHECK(t.count() == n);
}

TEST_CASE("a translated state is found by both keys, its second key is taken while it lives, "
          "and both go with it",
          "[eal][state][nat]") {
    dp::StateTableConfig cfg = table_config(8);
    cfg.translations = true;
    StateTable t(cfg);
    const dp::StateKey other = make_key(100);
    uint32_t slot = StateTable::no_slot;
    bool taken = true;
    REQUIRE(t.insert(make_state(1), 0, &slot, &other, &taken) == StateTable::InsertResult::ok);
    CHECK_FALSE(taken);
    CHECK(t.count() == 1);
    CHECK(t.lookup(make_key(1)) == slot);
    CHECK(t.lookup(other) == slot); // lookup() stands for the state
    const uint32_t alias = t.alias_of(slot);
    REQUIRE(alias != StateTable::no_slot);
    CHECK(alias != slot);
    CHECK(t.state_of_alias(alias) == slot);
    CHECK(t.state_of_alias(slot) == StateTable::no_slot);
    dp::StateKey k;
    REQUIRE(t.other_key(slot, k));
    CHECK(k == other);
    REQUIRE(t.lock(slot));
    CHECK((t.state(slot).local_flags & dp::local_flag::translated) != 0);
    t.unlock(slot);
    CHECK_FALSE(t.lock(alias)); // an alias is never tracked as a state
    // lookup_bulk gives the alias slot for the second key, the state's for the first.
    const dp::StateKey k1 = make_key(1);
    const dp::StateKey *keys[2] = {&k1, &other};
    uint32_t slots[2] = {0, 0};
    t.lookup_bulk(keys, slots, 2);
    CHECK(slots[0] == slot);
    CHECK(slots[1] == alias);
    // Walks see one state.
    unsigned seen = 0;
    t.for_each([&](uint32_t, const dp::State &) { seen++; });
    CHECK(seen == 1);

    // Another state cannot take the second key (a NAT port in use), nor the first.
    uint32_t slot2 = StateTable::no_slot;
    REQUIRE(t.insert(make_state(2), 0, &slot2, &other, &taken) == StateTable::InsertResult::exists);
    CHECK(taken);
    CHECK(t.count() == 1);
    CHECK(t.lookup(make_key(2)) == StateTable::no_slot); // undone whole
    REQUIRE(t.insert(make_state(3), 0, &slot2, &k1, &taken) == StateTable::InsertResult::exists);
    CHECK(taken);

    REQUIRE(t.remove(slot, 0));
    CHECK(t.count() == 0);
    CHECK(t.lookup(make_key(1)) == StateTable::no_slot);
    CHECK(t.lookup(other) == StateTable::no_slot);
    CHECK(t.state_of_alias(alias) == StateTable::no_slot);
    CHECK_FALSE(t.other_key(slot, k));
    // Once the grace period has passed, the key can be had again.
    t.quiescent(0);
    t.reclaim();
    REQUIRE(t.insert(make_state(4), 0, &slot2, &other, &taken) == StateTable::InsertResult::ok);
    CHECK(t.lookup(other) == slot2);
}

TEST_CASE("a table made without room for translations refuses a second key", "[eal][state][nat]") {
    StateTable t(table_config(8));
    CHECK_FALSE(t.translations());
    const dp::StateKey other = make_key(100);
    uint32_t slot = StateTable::no_slot;
    CHECK(t.insert(make_state(1), 0, &slot, &other) == StateTable::InsertResult::full);
    CHECK(t.count() == 0);
    CHECK(t.insert(make_state(1), 0, &slot) == StateTable::InsertResult::ok);
}

TEST_CASE("a second state with the same key or the same id is refused without leaking",
          "[eal][state]") {
    StateTable t(table_config(64));
    uint32_t slot = StateTable::no_slot, other = StateTable::no_slot;
    REQUIRE(t.insert(make_state(1), 0, &slot) == StateTable::InsertResult::ok);
    CHECK(t.insert(make_state(1, 99), 0, &other) == StateTable::InsertResult::exists);
    // Same (creatorid, id), another key: the key it added is taken back out.
    CHECK(t.insert(make_state(2, 1), 0, &other) == StateTable::InsertResult::exists);
    CHECK(t.count() == 1);
    CHECK(t.lookup(make_key(2)) == StateTable::no_slot);
    CHECK(t.lookup_id(creator, 1) == slot);
    REQUIRE(t.lock(slot));
    CHECK(t.state(slot).key == make_key(1));
    t.unlock(slot);
    CHECK(t.stats().insert_exists == 2);

    // Every refused attempt gives its key position back after a grace period: many more
    // attempts than the index has positions never run it out of room.
    const uint32_t attempts = t.slots() + 2000;
    uint32_t refused = 0;
    for (uint32_t i = 0; i < attempts; i++) {
        if (t.insert(make_state(1000 + i, 1), 0, &other) == StateTable::InsertResult::exists)
            refused++;
        grace_period(t, 1);
    }
    CHECK(refused == attempts);
    CHECK(t.stats().insert_full == 0);
    CHECK(t.count() == 1);
    REQUIRE(t.insert(make_state(2), 0, &other) == StateTable::InsertResult::ok);
    CHECK(t.lookup(make_key(2)) == other);
    CHECK(t.lookup_id(creator, 2) == other);
}

TEST_CASE("states planted on a writer's next ids never stop its new states", "[eal][state]") {
    using R = StateTable::InsertResult;
    StateTable t(table_config(256));
    uint32_t slot = StateTable::no_slot;
    // A peer sends states with our creatorid and the ids our writer (stride 2) gives out next.
    for (const uint64_t id : {10u, 12u, 14u})
        REQUIRE(t.insert(make_state(1000 + uint32_t(id), id), 1, &slot) == R::ok);
    uint64_t next_id = 10;
    std::set<uint64_t> ids;
    for (uint32_t n = 0; n < 20; n++) {
        dp::State s = make_state(n, 0);
        REQUIRE(t.insert_new(s, 0, &slot, next_id, 2) == R::ok);
        CHECK(t.lookup_id(creator, s.id) == slot);
        CHECK(s.id % 2 == 0);
        ids.insert(s.id);
    }
    CHECK(ids.size() == 20);
    CHECK(ids.count(10) + ids.count(12) + ids.count(14) == 0);
    CHECK(next_id == 10 + 2 * 23); // the three taken ids were passed over, once each
    // A packet that loses a race for its key still uses up its id, as pf's do.
    dp::State dup = make_state(0, 0);
    CHECK(t.insert_new(dup, 0, &slot, next_id, 2) == R::exists);
    CHECK(next_id == 10 + 2 * 24);
    // More planted ids than one call tries: that call fails, the next one goes on past them.
    for (unsigned i = 0; i < StateTable::max_id_tries; i++)
        REQUIRE(t.insert(make_state(2000 + i, next_id + 2 * i), 1, &slot) == R::ok);
    dp::State a = make_state(100, 0), b = make_state(101, 0);
    CHECK(t.insert_new(a, 0, &slot, next_id, 2) == R::exists);
    CHECK(t.insert_new(b, 0, &slot, next_id, 2) == R::ok);
    CHECK(t.lookup(make_key(101)) == slot);
    CHECK(t.lookup(make_key(100)) == StateTable::no_slot);
}

TEST_CASE("state limit reached and recovered", "[eal][state]") {
    StateTable t(table_config(16));
    std::vector<uint32_t> slots;
    for (uint32_t i = 0; i < 16; i++) {
        uint32_t s = StateTable::no_slot;
        REQUIRE(t.insert(make_state(i), 0, &s) == StateTable::InsertResult::ok);
        slots.push_back(s);
    }
    uint32_t s = StateTable::no_slot;
    CHECK(t.insert(make_state(16), 0, &s) == StateTable::InsertResult::full);
    CHECK(t.insert(make_state(17), 0, &s) == StateTable::InsertResult::full);
    CHECK(t.stats().insert_full == 2);
    CHECK(t.count() == 16);
    CHECK(t.lookup(make_key(16)) == StateTable::no_slot);

    REQUIRE(t.remove(slots[5], 2));
    grace_period(t, 1);
    REQUIRE(t.insert(make_state(16), 0, &s) == StateTable::InsertResult::ok);
    CHECK(t.count() == 16);
    CHECK(t.lookup(make_key(16)) == s);
    CHECK(t.lookup(make_key(5)) == StateTable::no_slot);
    CHECK(t.insert(make_state(17), 0, &s) == StateTable::InsertResult::full);
    CHECK(t.stats().insert_full == 3);
}

TEST_CASE(
    "a slot is reused only after every reader passed a quiescent state, with a new generation",
    "[eal][state]") {
    StateTable t(table_config(64, 2));
    uint32_t old = StateTable::no_slot, s = StateTable::no_slot;
    REQUIRE(t.insert(make_state(1), 0, &old) == StateTable::InsertResult::ok);
    const uint32_t old_generation = t.generation(old);
    REQUIRE(t.remove(old, 0));

    // Reader 1 reports, reader 0 does not: the old slot stays out of circulation.
    bool handed_out = false;
    for (uint32_t i = 0; i < 500; i++) {
        REQUIRE(t.insert(make_state(100 + i), 0, &s) == StateTable::InsertResult::ok);
        handed_out |= s == old;
        REQUIRE(t.remove(s, 0));
        t.quiescent(1);
        t.reclaim();
    }
    CHECK_FALSE(handed_out);
    CHECK(t.generation(old) == old_generation);

    // Once both have reported it is free again.
    grace_period(t, 2);
    REQUIRE(handed_out_again(t, old, 1000));
    CHECK(t.generation(old) != old_generation);
    REQUIRE(t.lock(old));
    CHECK(t.state(old).key != make_key(1));
    t.unlock(old);
}

TEST_CASE("a reader that went offline does not hold back reuse until it comes online",
          "[eal][state]") {
    StateTable t(table_config(64, 2));
    t.reader_offline(1);
    uint32_t old = StateTable::no_slot, s = StateTable::no_slot;
    REQUIRE(t.insert(make_state(1), 0, &old) == StateTable::InsertResult::ok);
    REQUIRE(t.remove(old, 0));
    t.quiescent(0);
    t.reclaim();
    REQUIRE(handed_out_again(t, old, 2)); // back in circulation

    t.reader_online(1);
    REQUIRE(t.remove(old, 0));
    t.quiescent(0);
    t.reclaim();
    bool handed_out = false;
    for (uint32_t i = 0; i < 200; i++) {
        REQUIRE(t.insert(make_state(100 + i), 0, &s) == StateTable::InsertResult::ok);
        handed_out |= s == old;
        REQUIRE(t.remove(s, 0));
        t.quiescent(0);
        t.reclaim();
    }
    CHECK_FALSE(handed_out);
}

TEST_CASE("the sweep deletes exactly the expired states, a budget at a time, and the sink hears "
          "every change in order",
          "[eal][state]") {
    StateTable t(table_config(256));
    RecordingSink sink;
    t.set_sink(&sink);
    std::vector<uint32_t> slot_of(100);
    for (uint32_t n = 0; n < 100; n++)
        REQUIRE(t.insert(make_state(n), 3, &slot_of[n]) == StateTable::InsertResult::ok);
    REQUIRE(t.lock(slot_of[4]));
    t.state(slot_of[4]).expire = 1000; // refreshed: no longer expired
    t.unlock(slot_of[4]);
    t.notify_update(slot_of[4], 1);
    t.notify_update(slot_of[7], 2);

    auto expired = [](const dp::State &s) { return s.expire % 3 == 0 && s.expire < 1000; };
    std::set<uint32_t> expect_removed;
    for (uint32_t n = 0; n < 100; n++)
        if (n % 3 == 0 && n != 4) expect_removed.insert(slot_of[n]);
    REQUIRE(expect_removed.size() == 34);

    const uint32_t budget = 16;
    const uint32_t first = t.sweep(budget, 5, expired);
    CHECK(first <= budget);
    uint32_t removed = first, calls = 1;
    while (calls * budget < t.slots()) {
        removed += t.sweep(budget, 5, expired);
        calls++;
    }
    CHECK(removed == 34);
    CHECK(t.count() == 66);
    CHECK(t.sweep(t.slots(), 5, expired) == 0); // a whole second pass finds nothing more
    for (uint32_t n = 0; n < 100; n++) {
        const bool gone = n % 3 == 0 && n != 4;
        CHECK((t.lookup(make_key(n)) == StateTable::no_slot) == gone);
    }

    REQUIRE(sink.events.size() == 100 + 2 + 34);
    for (uint32_t n = 0; n < 100; n++) {
        CHECK(sink.events[n].change == dp::StateChange::insert);
        CHECK(sink.events[n].slot == slot_of[n]);
        CHECK(sink.events[n].writer == 3);
    }
    CHECK(sink.events[100].change == dp::StateChange::update);
    CHECK(sink.events[100].slot == slot_of[4]);
    CHECK(sink.events[100].writer == 1);
    CHECK(sink.events[101].change == dp::StateChange::update);
    CHECK(sink.events[101].slot == slot_of[7]);
    std::set<uint32_t> heard_removed;
    for (size_t i = 102; i < sink.events.size(); i++) {
        const Event &e = sink.events[i];
        CHECK(e.change == dp::StateChange::remove);
        CHECK(e.writer == 5);
        heard_removed.insert(e.slot);
        // The remove names the same incarnation as the insert did.
        for (uint32_t n = 0; n < 100; n++)
            if (slot_of[n] == e.slot) CHECK(e.generation == sink.events[n].generation);
    }
    CHECK(heard_removed == expect_removed);
}

TEST_CASE("for_each visits every live state once, with a copy", "[eal][state]") {
    StateTable t(table_config(64));
    std::vector<uint32_t> slot_of(10);
    for (uint32_t n = 0; n < 10; n++)
        REQUIRE(t.insert(make_state(n), 0, &slot_of[n]) == StateTable::InsertResult::ok);
    REQUIRE(t.remove(slot_of[3], 0));
    std::set<uint32_t> seen;
    bool consistent = true;
    t.for_each([&](uint32_t slot, const dp::State &s) {
        seen.insert(slot);
        const uint32_t n = uint32_t(s.packets[0]);
        consistent &= n < 10 && slot_of[n] == slot && s.key == make_key(n) && s.rule == rule_of(n);
    });
    CHECK(seen.size() == 9);
    CHECK(seen.count(slot_of[3]) == 0);
    CHECK(consistent);
}

TEST_CASE("walk visits a range of slots in order and stops where it is told", "[eal][state]") {
    StateTable t(table_config(256));
    std::vector<uint32_t> slot_of(100);
    for (uint32_t n = 0; n < 100; n++)
        REQUIRE(t.insert(make_state(n), 0, &slot_of[n]) == StateTable::InsertResult::ok);
    std::vector<uint32_t> all;
    t.for_each([&](uint32_t slot, const dp::State &) { all.push_back(slot); });
    REQUIRE(all.size() == 100);
    // Slots [all[10], all[10] + span) hold all[10..19] and nothing else of ours.
    const uint32_t first = all[10], span = all[20] - all[10];
    std::vector<uint32_t> seen;
    CHECK(t.walk(first, span, [&](uint32_t slot, const dp::State &s) {
        CHECK(s.key == make_key(uint32_t(s.packets[0])));
        seen.push_back(slot);
        return true;
    }) == first + span);
    CHECK(seen == std::vector<uint32_t>(all.begin() + 10, all.begin() + 20));
    // Told to stop at the fifth: that slot is where the walk says it stopped.
    int visits = 0;
    CHECK(t.walk(first, span, [&](uint32_t, const dp::State &) { return ++visits < 5; }) ==
          all[14]);
    CHECK(visits == 5);
    // Ranges past the end are clipped.
    CHECK(t.walk(all[99], ~0u, [](uint32_t, const dp::State &) { return true; }) == t.slots());
    CHECK(t.walk(t.slots() + 5, 10, [](uint32_t, const dp::State &) { return true; }) == t.slots());
}

namespace {
constexpr uint32_t watched_keys = 64; // keys 0..63 are read; 64..127 only churn
struct ChurnReader {
    StateTable *table;
    std::atomic<bool> *stop;
    std::atomic<uint64_t> hits{0}, misses{0}, gone{0}, wrong{0}, rounds{0};
    std::atomic<bool> done{false}; // finish_reader()
};

bool matches(const dp::State &s, uint32_t n) {
    return s.key == make_key(n) && s.rule == rule_of(n) && s.packets[0] == n &&
           s.bytes[0] == bytes_of(n);
}

int churn_reader(void *arg) {
    auto *a = static_cast<ChurnReader *>(arg);
    StateTable &t = *a->table;
    dp::StateKey keys[watched_keys];
    const dp::StateKey *key_ptrs[watched_keys];
    for (uint32_t n = 0; n < watched_keys; n++) {
        keys[n] = make_key(n);
        key_ptrs[n] = &keys[n];
    }
    uint32_t slots[watched_keys];
    uint64_t hits = 0, misses = 0, gone = 0, wrong = 0, rounds = 0;
    while (!a->stop->load(std::memory_order_relaxed)) {
        if (rounds % 2 == 0) {
            t.lookup_bulk(key_ptrs, slots, watched_keys);
        } else {
            for (uint32_t n = 0; n < watched_keys; n++)
                slots[n] = t.lookup(keys[n]);
        }
        for (uint32_t n = 0; n < watched_keys; n++) {
            if (slots[n] == StateTable::no_slot) {
                misses++;
                continue;
            }
            // Even numbers copy without the lock (read(), as the sync packer and the
            // management API do), odd ones under it (as a writer does).
            dp::State copy;
            if (n % 2 == 0 && !t.read(slots[n], copy)) { // deleted since the lookup
                gone++;
                continue;
            }
            if (n % 2 != 0) {
                if (!t.lock(slots[n])) {
                    gone++;
                    continue;
                }
                copy = t.state(slots[n]);
                t.unlock(slots[n]);
            }
            if (matches(copy, n))
                hits++;
            else
                wrong++;
        }
        t.quiescent(0);
        rounds++;
        a->hits.store(hits, std::memory_order_relaxed);
        a->misses.store(misses, std::memory_order_relaxed);
        a->gone.store(gone, std::memory_order_relaxed);
        a->wrong.store(wrong, std::memory_order_relaxed);
        a->rounds.store(rounds, std::memory_order_relaxed);
    }
    return finish_reader(t, a->done);
}
} // namespace

TEST_CASE("a worker looking states up while the main lcore inserts and deletes them never sees "
          "another state's data",
          "[eal][state][concurrent]") {
    StateTable t(table_config(1024));
    std::atomic<bool> stop{false};
    ChurnReader reader{&t, &stop};
    const unsigned worker = launch_beside_main(churn_reader, &reader);

    // 200k operations, and on until the worker has read alongside them (on a loaded 2-CPU
    // machine the two lcores may take turns rather than run together), within 1.5 s.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    uint64_t ops = 0, inserted = 0, removed = 0, next_id = 1, seed = 12345;
    uint32_t max_generation = 0;
    auto more = [&] {
        if (ops % 256 != 0) return true;
        if (ops >= 200000 && reader.hits.load(std::memory_order_relaxed) > 0) return false;
        return std::chrono::steady_clock::now() < deadline;
    };
    while (more()) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const uint32_t n = uint32_t(seed >> 33) % (2 * watched_keys);
        const uint32_t slot = t.lookup(make_key(n));
        if (slot != StateTable::no_slot) {
            removed += t.remove(slot, 1) ? 1 : 0;
        } else {
            uint32_t s = StateTable::no_slot;
            if (t.insert(make_state(n, next_id++), 1, &s) == StateTable::InsertResult::ok) {
                inserted++;
                const uint32_t g = t.generation(s);
                if (g > max_generation) max_generation = g;
            }
        }
        if (ops % 8 == 0) t.reclaim();
        ops++;
    }
    stop = true;
    rte_eal_wait_lcore(worker);
    REQUIRE(reader.done.load(std::memory_order_acquire));

    INFO("ops " << ops << " inserted " << inserted << " removed " << removed << " rounds "
                << reader.rounds << " hits " << reader.hits << " misses " << reader.misses
                << " gone " << reader.gone << " max generation " << max_generation);
    CHECK(reader.wrong.load() == 0);
    CHECK(reader.hits.load() > 0);
    CHECK(reader.rounds.load() > 0);
    CHECK(inserted > 1000);
    CHECK(removed > 1000);
    CHECK(max_generation > 0); // slots were really recycled under the reader
}

namespace {
// Writes one number into every field of its states that a copy could tear (the peers, the
// counters, expiry and creation), field by field under the lock, as a worker's pass does.
struct PatternWriter {
    StateTable *table;
    const std::vector<uint32_t> *slots;
    std::atomic<bool> *stop;
    std::atomic<uint64_t> writes{0};
    std::atomic<bool> done{false}; // finish_reader()
};

void write_pattern(dp::State &s, uint32_t v) {
    s.src.seqlo = v;
    s.packets[0] = v;
    s.expire = v;
    s.dst.seqhi = v;
    s.bytes[1] = v;
    s.creation = v;
    s.src.seqhi = v;
    s.packets[1] = v;
    s.bytes[0] = v;
    s.dst.seqlo = v;
}

bool pattern_whole(const dp::State &s) {
    const uint64_t v = s.src.seqlo;
    return s.packets[0] == v && s.expire == v && s.dst.seqhi == v && s.bytes[1] == v &&
           s.creation == v && s.src.seqhi == v && s.packets[1] == v && s.bytes[0] == v &&
           s.dst.seqlo == v;
}

int pattern_writer(void *arg) {
    auto *a = static_cast<PatternWriter *>(arg);
    StateTable &t = *a->table;
    uint64_t writes = 0;
    for (uint32_t v = 1; !a->stop->load(std::memory_order_relaxed); v++) {
        const uint32_t slot = (*a->slots)[v % a->slots->size()];
        if (!t.lock(slot)) continue;
        write_pattern(t.state(slot), v);
        t.unlock(slot);
        a->writes.store(++writes, std::memory_order_relaxed);
    }
    return finish_reader(t, a->done);
}
} // namespace

TEST_CASE("read() copies a state that another lcore keeps writing, never half of one write and "
          "half of another",
          "[eal][state][concurrent]") {
    StateTable t(table_config(64));
    std::vector<uint32_t> slots;
    for (uint32_t n = 0; n < 4; n++) {
        uint32_t slot = StateTable::no_slot;
        REQUIRE(t.insert(make_state(n), 1, &slot) == StateTable::InsertResult::ok);
        REQUIRE(t.lock(slot));
        write_pattern(t.state(slot), 0);
        t.unlock(slot);
        slots.push_back(slot);
    }
    std::atomic<bool> stop{false};
    PatternWriter writer{&t, &slots, &stop};
    const unsigned worker = launch_beside_main(pattern_writer, &writer);

    // On a loaded 2-CPU machine the two lcores may take turns: read until the writer has
    // written a good many times meanwhile, or 1.5 s.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    uint64_t copies = 0, torn = 0, changed = 0;
    uint64_t last = 0;
    while ((copies < 200000 || writer.writes.load(std::memory_order_relaxed) < 100000) &&
           std::chrono::steady_clock::now() < deadline) {
        dp::State copy;
        uint32_t gen = 0;
        REQUIRE(t.read(slots[copies % slots.size()], copy, &gen));
        CHECK(gen == t.generation(slots[copies % slots.size()]));
        if (!pattern_whole(copy)) torn++;
        if (copy.src.seqlo != last) changed++;
        last = copy.src.seqlo;
        copies++;
    }
    stop = true;
    rte_eal_wait_lcore(worker);
    REQUIRE(writer.done.load(std::memory_order_acquire));
    INFO("copies " << copies << " writes " << writer.writes.load() << " changed " << changed);
    CHECK(torn == 0);
    CHECK(writer.writes.load() > 0);
    CHECK(changed > 0); // the copies saw the writes come

    // A state removed is no longer readable, and its copy is not touched.
    REQUIRE(t.remove(slots[0], 1));
    dp::State copy;
    copy.rule = 77;
    CHECK_FALSE(t.read(slots[0], copy));
    CHECK(copy.rule == 77);
    CHECK_FALSE(t.read(StateTable::no_slot, copy));
}

TEST_CASE("a full table finds every state by id through churn, under many creators",
          "[eal][state]") {
    // Ids as pf makes them (boot time in the high bits, a counter below) from four creators,
    // the table kept full while states are deleted and replaced: the id index never runs out
    // of room and always answers with the state that holds the id.
    constexpr uint32_t capacity = 50000;
    StateTable t(table_config(capacity));
    std::vector<uint32_t> slot_of(capacity), creator_of(capacity);
    std::vector<uint64_t> id_of(capacity);
    uint64_t next = 0x65000000ull << 32;
    auto put = [&](uint32_t n) {
        creator_of[n] = 0x1000 + n % 4;
        id_of[n] = next++;
        dp::State s = make_state(n, id_of[n]);
        s.creatorid = creator_of[n];
        return t.insert(s, 0, &slot_of[n]);
    };
    fill_and_churn(t, capacity, 4 * capacity, 7, slot_of, put, [&](uint32_t n) {
        const uint32_t old_creator = creator_of[n];
        const uint64_t old_id = id_of[n];
        return [&t, old_creator, old_id] {
            REQUIRE(t.lookup_id(old_creator, old_id) == StateTable::no_slot);
        };
    });
    CHECK(t.count() == capacity);
    CHECK(t.stats().insert_full == 0);
    uint32_t found = 0;
    for (uint32_t n = 0; n < capacity; n++)
        found += t.lookup_id(creator_of[n], id_of[n]) == slot_of[n] ? 1 : 0;
    CHECK(found == capacity);
    // Same id under another creator, and unknown ids, find nothing.
    CHECK(t.lookup_id(0x2000, id_of[0]) == StateTable::no_slot);
    CHECK(t.lookup_id(creator_of[0], next) == StateTable::no_slot);
}

TEST_CASE("a full table with room for translations finds every key through churn, one at a "
          "time and in bulk",
          "[eal][state]") {
    // Every state translated (two keys each, so the key index holds 2 * capacity keys, as
    // a table full of NAT states does), the table kept full while states are deleted and
    // replaced by new connections: the key index never runs out of room, answers each key
    // with its state (the second key through its alias), and forgets deleted keys.
    constexpr uint32_t capacity = 40000;
    auto cfg = table_config(capacity);
    cfg.translations = true;
    StateTable t(cfg);
    auto flow = [](uint32_t n, bool translated) {
        dp::StateKey k;
        k.af = 4;
        k.proto = n % 3 == 0 ? 17 : 6;
        // Unique for n below 2^24 (clients), and below 180 000 (translated sources).
        k.addr[0] = {198, uint8_t(18 + (n >> 16)), uint8_t(n >> 8), uint8_t(n)};
        k.addr[1] = {203, 0, 113, uint8_t(n % 7)};
        k.port[0] = uint16_t(1024 + n % 1500);
        k.port[1] = uint16_t(n % 5 == 0 ? 53 : 443);
        if (translated) {
            k.addr[0] = {192, 0, 2, uint8_t(1 + n / 60000)};
            k.port[0] = uint16_t(1024 + n % 60000);
        }
        return k;
    };
    std::vector<uint32_t> slot_of(capacity), flow_of(capacity);
    uint32_t next_flow = 0;
    uint64_t next_id = 1;
    auto put = [&](uint32_t n) {
        flow_of[n] = next_flow++;
        dp::State s = make_state(n, next_id++);
        s.key = flow(flow_of[n], false);
        const dp::StateKey other = flow(flow_of[n], true);
        return t.insert(s, 0, &slot_of[n], &other);
    };
    fill_and_churn(t, capacity, 3 * capacity, 11, slot_of, put, [&](uint32_t n) {
        const uint32_t gone = flow_of[n];
        return [&t, &flow, gone] {
            REQUIRE(t.lookup(flow(gone, false)) == StateTable::no_slot);
            REQUIRE(t.lookup(flow(gone, true)) == StateTable::no_slot);
        };
    });
    CHECK(t.count() == capacity);
    CHECK(t.stats().insert_full == 0);
    uint32_t found = 0, found_bulk = 0, by_alias = 0;
    for (uint32_t base = 0; base < capacity; base += 64) {
        const unsigned n = std::min<uint32_t>(64, capacity - base);
        dp::StateKey keys[64], seconds[64];
        const dp::StateKey *ptrs[64], *second_ptrs[64];
        uint32_t got[64], got_second[64];
        for (unsigned i = 0; i < n; i++) {
            keys[i] = flow(flow_of[base + i], false);
            seconds[i] = flow(flow_of[base + i], true);
            ptrs[i] = &keys[i];
            second_ptrs[i] = &seconds[i];
            found += t.lookup(keys[i]) == slot_of[base + i] ? 1 : 0;
            found += t.lookup(seconds[i]) == slot_of[base + i] ? 1 : 0;
        }
        t.lookup_bulk(ptrs, got, n);
        t.lookup_bulk(second_ptrs, got_second, n);
        for (unsigned i = 0; i < n; i++) {
            found_bulk += got[i] == slot_of[base + i] ? 1 : 0;
            // A second key gives its alias slot, which names the state.
            by_alias += got_second[i] != slot_of[base + i] &&
                                t.state_of_alias(got_second[i]) == slot_of[base + i]
                            ? 1
                            : 0;
        }
    }
    CHECK(found == 2 * capacity);
    CHECK(found_bulk == capacity);
    CHECK(by_alias == capacity);
    // Keys never inserted find nothing, one at a time or in bulk.
    const dp::StateKey unknown = flow(next_flow + 5, false);
    const dp::StateKey *unknown_ptr = &unknown;
    uint32_t got = 0;
    t.lookup_bulk(&unknown_ptr, &got, 1);
    CHECK(got == StateTable::no_slot);
    CHECK(t.lookup(unknown) == StateTable::no_slot);
}

TEST_CASE("a twin hint is trusted only while its slot is live and holds the key", "[eal][state]") {
    StateTable t(table_config(64));
    uint32_t a = StateTable::no_slot, b = StateTable::no_slot;
    REQUIRE(t.insert(make_state(1), 0, &a) == StateTable::InsertResult::ok);
    REQUIRE(t.insert(make_state(2), 0, &b) == StateTable::InsertResult::ok);
    CHECK(t.twin(a) == StateTable::no_slot); // a new state has no twin
    t.set_twin(a, b);
    t.set_twin(b, a);
    CHECK(t.twin(a) == b);
    CHECK(t.twin_matches(t.twin(a), make_key(2)));
    CHECK_FALSE(t.twin_matches(t.twin(a), make_key(1)));
    CHECK_FALSE(t.twin_matches(StateTable::no_slot, make_key(2)));
    CHECK_FALSE(t.twin_matches(t.slots(), make_key(2)));

    // b is deleted: the hint in a names a dead slot, then (once b's slot is reused) another
    // state's slot; neither matches b's key.
    REQUIRE(t.remove(b, 0));
    CHECK_FALSE(t.twin_matches(t.twin(a), make_key(2)));
    grace_period(t, 1);
    bool reused = false;
    uint32_t s = StateTable::no_slot;
    for (uint32_t i = 0; i < t.slots() && !reused; i++) {
        REQUIRE(t.insert(make_state(100 + i), 0, &s) == StateTable::InsertResult::ok);
        reused = s == b;
        if (!reused) REQUIRE(t.remove(s, 0));
    }
    REQUIRE(reused);
    CHECK(t.twin(b) == StateTable::no_slot); // the new state starts without the old hint
    CHECK_FALSE(t.twin_matches(t.twin(a), make_key(2)));
    CHECK(t.twin_matches(t.twin(a), t.state(b).key));
}

TEST_CASE("a state made near a slot takes that slot's partner, else the nearest free slot of "
          "its chunk; a state made alone takes half of a free pair",
          "[eal][state]") {
    StateTable t(table_config(1000));
    uint32_t a = StateTable::no_slot, b = StateTable::no_slot, c = StateTable::no_slot;
    // Alone: even slots, each leaving its partner free.
    std::vector<uint32_t> alone;
    for (uint32_t i = 0; i < 8; i++) {
        REQUIRE(t.insert(make_state(i), 0, &a) == StateTable::InsertResult::ok);
        CHECK(a % 2 == 0);
        alone.push_back(a);
    }
    // Near each of them: its partner.
    for (uint32_t i = 0; i < 8; i++) {
        REQUIRE(t.insert(make_state(100 + i), 0, &b, nullptr, nullptr, alone[i]) ==
                StateTable::InsertResult::ok);
        CHECK(b == (alone[i] ^ 1));
    }
    // Near a slot whose partner is taken: the nearest free slot of the same 64.
    REQUIRE(t.insert(make_state(200), 0, &c, nullptr, nullptr, alone[0]) ==
            StateTable::InsertResult::ok);
    CHECK(c / 64 == alone[0] / 64);
    CHECK(c != alone[0]);
    CHECK(c != (alone[0] ^ 1));
    // Every other slot is free: c is the nearest slot of the chunk that no state above took
    // (the one above on a tie).
    std::set<uint32_t> taken(alone.begin(), alone.end());
    for (const uint32_t s : alone)
        taken.insert(s ^ 1);
    uint32_t nearest = StateTable::no_slot;
    for (uint32_t d = 1; d < 64 && nearest == StateTable::no_slot; d++) {
        for (const int64_t s : {int64_t(alone[0]) + d, int64_t(alone[0]) - d}) {
            if (s >= 0 && s / 64 == alone[0] / 64 && !taken.count(uint32_t(s))) {
                nearest = uint32_t(s);
                break;
            }
        }
    }
    CHECK(c == nearest);
    // A translated state's second key lies beside it.
    dp::StateTableConfig cfg = table_config(100);
    cfg.translations = true;
    StateTable n(cfg);
    const dp::StateKey other = make_key(900);
    uint32_t slot = StateTable::no_slot;
    REQUIRE(n.insert(make_state(1), 0, &slot, &other) == StateTable::InsertResult::ok);
    CHECK(n.alias_of(slot) == (slot ^ 1));
}

TEST_CASE("connections replaced at random, in then out near in as a worker makes them, keep "
          "their two states in partner slots",
          "[eal][state]") {
    // A full table of connections (two states each), turned over twice: each round deletes
    // 32 connections picked at random and makes 32 new ones, their in states first and then
    // their out states, each asked to lie near its in state (a burst's two passes).
    constexpr uint32_t connections = 20000;
    StateTable t(table_config(connections * 2));
    std::vector<std::array<uint32_t, 2>> slot_of(connections);
    uint32_t next_key = 0;
    auto make = [&](const std::vector<uint32_t> &which) {
        for (int out = 0; out < 2; out++) {
            for (const uint32_t c : which) {
                const uint32_t near = out != 0 ? slot_of[c][0] : StateTable::no_slot;
                REQUIRE(t.insert(make_state(next_key, next_key), 0, &slot_of[c][out], nullptr,
                                 nullptr, near) == StateTable::InsertResult::ok);
                next_key++;
            }
        }
    };
    std::vector<uint32_t> all(connections);
    for (uint32_t c = 0; c < connections; c++)
        all[c] = c;
    make(all);
    std::mt19937 rng(7);
    std::vector<uint32_t> burst;
    for (uint32_t round = 0; round < 2 * connections / 32; round++) {
        burst.clear();
        while (burst.size() < 32) {
            const uint32_t c = rng() % connections;
            if (std::find(burst.begin(), burst.end(), c) == burst.end()) burst.push_back(c);
        }
        for (const uint32_t c : burst)
            for (int out = 0; out < 2; out++)
                REQUIRE(t.remove(slot_of[c][out], 0));
        grace_period(t, 1);
        make(burst);
    }
    uint32_t partners = 0;
    for (const auto &s : slot_of)
        partners += (s[0] ^ 1) == s[1];
    INFO("connections in partner slots: " << partners << " of " << connections);
    CHECK(partners == connections);
    CHECK(t.count() == connections * 2);
}

TEST_CASE("memory per state is reported and plausible", "[eal][state]") {
    StateTable t(table_config(100000, 4));
    const std::size_t bytes = t.bytes_per_state();
    INFO("bytes per state at 100000: " << bytes);
    CHECK(bytes > sizeof(dp::State));
    CHECK(bytes < 1024);
    CHECK(t.capacity() == 100000);
    CHECK(t.slots() >= t.capacity());
}

namespace {
// The kernel's transparent huge page mode for anonymous memory: "always", "madvise" or
// "never" (the bracketed word), "" where the kernel has none.
std::string anon_thp_mode() {
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string line;
    std::getline(f, line);
    const auto open = line.find('['), close = line.find(']');
    return open == std::string::npos || close == std::string::npos
               ? std::string()
               : line.substr(open + 1, close - open - 1);
}
// Whether an advised mapping of this process may get huge pages: the kernel's mode allows
// it, and no parent turned THP off for its children (prctl PR_SET_THP_DISABLE, shown as
// "THP_enabled: 0" in /proc/self/status).
bool thp_for_advised_memory() {
    const std::string mode = anon_thp_mode();
    if (mode != "always" && mode != "madvise") return false;
    std::ifstream f("/proc/self/status");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("THP_enabled:", 0) == 0) return line.find('0') == std::string::npos;
    return true;
}
} // namespace

TEST_CASE("a large array of the table is a mapping of its own on 2 MiB pages, a small one "
          "lies on EAL's heap",
          "[eal][state]") {
    REQUIRE(rte_eal_has_hugepages() == 0); // the suite runs with --no-huge
    constexpr std::size_t mib = std::size_t(1) << 20;
    dp::TableMemory large("tm_test_large", 5 * mib + 100, SOCKET_ID_ANY);
    REQUIRE(large.data() != nullptr);
    CHECK(large.own_mapping());
    CHECK(reinterpret_cast<std::uintptr_t>(large.data()) % dp::TableMemory::huge_page == 0);
    CHECK(large.footprint() == 6 * mib);                          // whole 2 MiB pages
    CHECK(rte_mem_virt2memseg(large.data(), nullptr) == nullptr); // not EAL's memory
    // Every byte of the footprint writable. Written first, as the table writes its arrays:
    // a read would map the kernel's shared zero page, which a write then replaces by 4 KiB
    // pages on kernels before 6.13.
    std::memset(large.data(), 0xa5, large.footprint());
    // Zeroed (another one: read first).
    {
        dp::TableMemory zeroed("tm_test_zeroed", 4 * mib, SOCKET_ID_ANY);
        REQUIRE(zeroed.own_mapping());
        const auto *bytes = static_cast<const unsigned char *>(zeroed.data());
        CHECK(
            std::all_of(bytes, bytes + zeroed.footprint(), [](unsigned char b) { return b == 0; }));
    }

    dp::TableMemory small("tm_test_small", mib, SOCKET_ID_ANY);
    REQUIRE(small.data() != nullptr);
    CHECK_FALSE(small.own_mapping());
    CHECK(small.footprint() == mib);
    CHECK(rte_mem_virt2memseg(small.data(), nullptr) != nullptr); // EAL's heap

    const dp::TableMemory *both[] = {&large, &small};
    const std::size_t huge = dp::TableMemory::huge_bytes(both);
    INFO("transparent huge pages: '" << anon_thp_mode() << "', " << huge << " bytes on them");
    CHECK(huge <= large.footprint()); // only the mapping's own pages count
    CHECK(huge % dp::TableMemory::huge_page == 0);
    // The kernel backs an advised, aligned, written mapping with huge pages where it may
    // (all three of them, unless memory is too fragmented to find 2 MiB at once).
    if (thp_for_advised_memory()) CHECK(huge > 0);
    const dp::TableMemory *heap_only[] = {&small};
    CHECK(dp::TableMemory::huge_bytes(heap_only) == 0);

    // Moved, the memory goes with it.
    void *const at = large.data();
    dp::TableMemory moved(std::move(large));
    CHECK(moved.data() == at);
    CHECK(large.data() == nullptr);
    CHECK(moved.own_mapping());
}

TEST_CASE("an array of the table that cannot be mapped says why", "[eal][state]") {
    // More than any Linux process's address space: refused whatever the overcommit policy.
    dp::TableMemory m("tm_test_huge", std::size_t(1) << 60, SOCKET_ID_ANY);
    CHECK(m.data() == nullptr);
    CHECK_FALSE(m.own_mapping());
    CHECK(m.error().find("tm_test_huge: cannot map") != std::string::npos);
}

TEST_CASE("a large state table lies on 2 MiB pages", "[eal][state]") {
    StateTable t(table_config(100000)); // 108 001 slots of 192 bytes: 20 MiB
    INFO("transparent huge pages: '" << anon_thp_mode() << "', " << t.huge_page_bytes()
                                     << " bytes on them");
    CHECK(t.huge_page_bytes() <= t.memory_bytes());
    if (thp_for_advised_memory())
        CHECK(t.huge_page_bytes() > 0);
    else
        CHECK(t.huge_page_bytes() == 0);
    // Its states work there as anywhere.
    uint32_t slot = StateTable::no_slot;
    REQUIRE(t.insert(make_state(1, 1), 0, &slot) == StateTable::InsertResult::ok);
    CHECK(t.lookup(make_key(1)) == slot);
}

TEST_CASE("a table that cannot be made says why", "[eal][state]") {
    auto cfg = table_config(64);
    StateTable t(cfg);
    try {
        StateTable again(cfg);
        FAIL("no error");
    } catch (const std::runtime_error &e) {
        CHECK_THAT(e.what(), Catch::StartsWith("cannot create state table '" + cfg.name +
                                               "' of 64 states: free slots: "));
    }
    auto long_name = table_config(64);
    long_name.name = "a_state_table_name_too_long";
    CHECK_THROWS_WITH(StateTable(long_name), Catch::Contains("the name must have 1 to 19"));
    auto empty = table_config(0);
    CHECK_THROWS_WITH(StateTable(empty), Catch::Contains("of 0 states: the capacity must be"));
}
