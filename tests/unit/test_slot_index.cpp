// The state table's (creatorid, id) index on plain memory: what it finds, refuses and
// forgets, with slots simulated by an array of ids.
#include "dataplane/slot_index.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

using syncwall::dp::SlotIndex;

namespace {

struct Fixture {
    uint32_t slots;
    std::vector<std::atomic<uint32_t>> cells;
    std::vector<std::pair<uint32_t, uint64_t>> held; // slot -> (creatorid, id), {0,0}: none
    SlotIndex index;

    Fixture(uint32_t capacity, uint32_t slot_count)
        : slots(slot_count),
          cells(std::size_t(SlotIndex::buckets_for(capacity)) * SlotIndex::bucket_cells),
          held(slot_count) {
        for (auto &c : cells)
            c.store(SlotIndex::empty);
        index = SlotIndex(cells.data(), SlotIndex::buckets_for(capacity), slots);
    }
    SlotIndex::Add add(uint32_t creator, uint64_t id, uint32_t slot) {
        held[slot] = {creator, id};
        const auto r = index.add(SlotIndex::id_hash(creator, id), slot, [&](uint32_t s) {
            return s != slot && held[s] == std::make_pair(creator, id);
        });
        if (r != SlotIndex::Add::ok) held[slot] = {0, 0};
        return r;
    }
    uint32_t find(uint32_t creator, uint64_t id) const {
        return index.find(SlotIndex::id_hash(creator, id),
                          [&](uint32_t s) { return held[s] == std::make_pair(creator, id); });
    }
    bool remove(uint32_t slot) {
        const auto [creator, id] = held[slot];
        held[slot] = {0, 0};
        return index.remove(SlotIndex::id_hash(creator, id), slot);
    }
};

} // namespace

TEST_CASE("ids are found, refused twice, and forgotten", "[slot_index]") {
    Fixture f(1000, 1100);
    REQUIRE(f.add(7, 100, 5) == SlotIndex::Add::ok);
    REQUIRE(f.add(8, 100, 6) == SlotIndex::Add::ok); // same id, another creator
    CHECK(f.find(7, 100) == 5);
    CHECK(f.find(8, 100) == 6);
    CHECK(f.find(7, 101) == SlotIndex::empty);
    CHECK(f.add(7, 100, 9) == SlotIndex::Add::exists);
    CHECK(f.find(7, 100) == 5);
    CHECK(f.remove(5));
    CHECK_FALSE(f.remove(5));
    CHECK(f.find(7, 100) == SlotIndex::empty);
    CHECK(f.find(8, 100) == 6);
    CHECK(f.add(7, 100, 9) == SlotIndex::Add::ok);
    CHECK(f.find(7, 100) == 9);
}

TEST_CASE("a full index of the largest slot numbers finds every id", "[slot_index]") {
    // Slot numbers up to slots-1 share the cell with the tag: none may read as empty, and
    // the tag must never leak into the slot number.
    constexpr uint32_t capacity = 4096, slots = 4096 + 63;
    Fixture f(capacity, slots);
    for (uint32_t i = 0; i < capacity; i++)
        REQUIRE(f.add(1, 0xabc0000000ull + i, slots - 1 - i) == SlotIndex::Add::ok);
    for (uint32_t i = 0; i < capacity; i++)
        REQUIRE(f.find(1, 0xabc0000000ull + i) == slots - 1 - i);
}

TEST_CASE("an id whose two buckets are full is refused as full", "[slot_index]") {
    // The smallest index has two buckets: 32 cells in all.
    Fixture f(1, 64);
    REQUIRE(f.index.buckets() == 2);
    uint32_t ok = 0;
    SlotIndex::Add last = SlotIndex::Add::ok;
    for (uint32_t i = 0; i < 40 && last == SlotIndex::Add::ok; i++) {
        last = f.add(3, i, i);
        ok += last == SlotIndex::Add::ok ? 1 : 0;
    }
    // Refused once the id's buckets are full: both (or its one, if its two hashes agree).
    CHECK(last == SlotIndex::Add::full);
    CHECK(ok >= SlotIndex::bucket_cells);
    CHECK(ok <= 2 * SlotIndex::bucket_cells);
    for (uint32_t i = 0; i < ok; i++)
        REQUIRE(f.remove(i));
    CHECK(f.add(3, ok, 50) == SlotIndex::Add::ok); // room again, and the refused id fits
}

TEST_CASE("an id that another inserter indexed meanwhile is backed out", "[slot_index]") {
    Fixture f(1000, 1100);
    REQUIRE(f.add(7, 100, 5) == SlotIndex::Add::ok);
    // A second inserter of the same id whose first look missed the first one (it was not
    // there yet when it looked): after claiming a cell it looks again, sees it and backs out.
    unsigned looks_at_5 = 0;
    const auto r = f.index.add(SlotIndex::id_hash(7, 100), 6, [&](uint32_t s) {
        if (s != 5) return false;
        return looks_at_5++ > 0; // the first look misses it
    });
    CHECK(r == SlotIndex::Add::exists);
    CHECK(looks_at_5 == 2);
    CHECK(f.find(7, 100) == 5);
    CHECK_FALSE(f.index.remove(SlotIndex::id_hash(7, 100), 6)); // its cell was given back
    CHECK(f.remove(5));
    CHECK(f.find(7, 100) == SlotIndex::empty);
}

TEST_CASE("a full index churned keeps its entries home and refuses none", "[slot_index]") {
    // An index made for `capacity` entries (1.75 cells each), filled to capacity, then
    // churned: a random entry out, a new one in, many times over. No insert may be refused
    // (both buckets full), and most entries must lie in their first bucket, which a bulk
    // lookup loads alone (first_tagged_in()).
    constexpr uint32_t capacity = 100000, slots = capacity + 64;
    Fixture f(capacity, slots);
    std::mt19937_64 rng(20261207);
    std::vector<uint32_t> live;
    std::vector<uint32_t> free_slots;
    for (uint32_t s = slots; s-- > 0;)
        free_slots.push_back(s);
    uint64_t next_id = 1;
    uint32_t refused = 0;
    auto add_one = [&] {
        const uint32_t s = free_slots.back();
        free_slots.pop_back();
        const auto r = f.add(9, next_id++, s);
        if (r == SlotIndex::Add::ok)
            live.push_back(s);
        else {
            ++refused;
            free_slots.push_back(s);
        }
    };
    while (live.size() < capacity)
        add_one();
    for (int i = 0; i < 1000000; i++) {
        const std::size_t k = rng() % live.size();
        REQUIRE(f.remove(live[k]));
        free_slots.push_back(live[k]);
        live[k] = live.back();
        live.pop_back();
        add_one();
    }
    CHECK(refused == 0);
    uint32_t home = 0;
    for (const uint32_t s : live) {
        const auto [creator, id] = f.held[s];
        const SlotIndex::Where w = f.index.where(SlotIndex::id_hash(creator, id));
        REQUIRE(f.find(creator, id) == s);
        // Found by the lookup's first look: the first tagged cell of the home bucket (a
        // foreign tag before it, one in thousands, counts against).
        if (f.index.first_tagged_in(w, false) == s) home++;
    }
    INFO("entries in their home bucket: " << home << " of " << live.size());
    CHECK(home >= live.size() * 8 / 10);
}

TEST_CASE("a lookup's first look takes the first cell of its bucket with its tag", "[slot_index]") {
    // Buckets of 16 cells written by hand: a cell with the tag at each position in turn, empty
    // cells and cells of another tag before and after it. first_tagged_in() must name the
    // slot in the first cell with the tag, wherever it lies (its scan packs the 16 compares
    // into one mask, cell i at bit i).
    constexpr uint32_t slots = 1000; // 10 slot bits
    std::vector<std::atomic<uint32_t>> cells(2 * SlotIndex::bucket_cells);
    const SlotIndex index(cells.data(), 2, slots);
    const uint32_t tag = 0x5a5u << 10, other = 0x5a4u << 10;
    const SlotIndex::Where w{0, 1, tag};
    for (uint32_t at = 0; at < SlotIndex::bucket_cells; at++) {
        INFO("tagged cell at " << at);
        for (auto &c : cells)
            c.store(SlotIndex::empty);
        for (uint32_t i = 0; i < at; i++) // before it: another tag and empty cells
            if (i % 2 == 0) cells[i].store(other | (100 + i));
        cells[at].store(tag | (500 + at));
        for (uint32_t i = at + 1; i < SlotIndex::bucket_cells; i++) // after it: the tag again
            cells[i].store((i % 3 == 0 ? tag : other) | (700 + i));
        CHECK(index.first_tagged_in(w, false) == 500 + at);
        CHECK(index.first_tagged_in(w, true) == SlotIndex::empty); // bucket 1: all empty
    }
    // None with the tag: empty, however many of another.
    for (uint32_t i = 0; i < SlotIndex::bucket_cells; i++)
        cells[i].store(i % 2 == 0 ? SlotIndex::empty : other | i);
    CHECK(index.first_tagged_in(w, false) == SlotIndex::empty);
    // A tag of all ones in its bits may take an empty cell for its own: the slot it reads
    // is slot_mask (1023 here), never a slot, which the caller's check refuses.
    const SlotIndex::Where all_ones{0, 1, ~uint32_t(1023)};
    const uint32_t got = index.first_tagged_in(all_ones, false);
    CHECK((got == SlotIndex::empty || got >= slots));
}
