// A lock-free index from a 64-bit hash to slots of the state table, with no key of its own:
// the state table keeps two, one for a state's key (StateKey, what every packet looks up)
// and one for pfsync's name of a state, its creator's host id and the creator's 64-bit
// state id (a peer's update, delete or update request must find the slot that holds it).
//
// Theory of operation
// * Cells: 32-bit words in buckets of 16 (one cache line). A cell is empty or holds a slot
//   number with a tag, hash bits stored above the slot number's width. A lookup asks the
//   caller to check only the cells whose tag matches against what the slot itself holds
//   (its state's key, or its (creatorid, id)): no key is stored here, so an entry costs the
//   index one cell's share of memory, and the check reads the slot that a lookup wants
//   anyway.
// * Two buckets per hash, from its two halves. An insert takes an empty cell in the first
//   (its home) while that keeps `home_reserve` (4) cells free, else in the emptier of the
//   two ("the power of two choices" for the fullest buckets, which keeps them below 16). If
//   both are full the insert is refused, and the state table reports it as full. So at
//   1.75 cells per entry nine entries in ten lie in their home bucket, and a bulk lookup
//   loads that bucket alone, and the second only for a key it has no tagged cell for
//   (first_tagged_in()): one line per lookup instead of two, which at 10M states, an index
//   of 70 MB, is a miss to DRAM. (With the emptier bucket always, a million entries, full
//   and churned by 20 million replacements, filled no bucket beyond 13; the unit test
//   "a full index churned keeps its entries home and refuses none" churns one with the
//   home bucket first.)
// * No chains and no tombstones: a removal clears its cell, and a lookup reads the same two
//   buckets whatever came and went before.
// * Concurrency: cells change only by compare-and-swap (an inserter claims an empty cell, a
//   remover clears the cell naming its slot), so inserters and removers on different lcores
//   never undo each other's work, and readers see every cell before or after a change. The
//   caller makes sure that a slot named by a cell is not recycled while it is being checked
//   (the state table clears the cell before the slot's RCU grace period starts).
// * Duplicates: add() refuses an entry that a cell already names (the caller's `holds` says
//   what counts as the same). Two lcores adding the same entry at the same moment (a peer's
//   copy of one of our ids, two workers making a state for one new connection) both look
//   again after claiming their cells, and one that then sees the other's cell backs out: at
//   most one survives, and in a close race both may be refused (an insert then reports
//   `exists`).
// * Tags: a cell has 32 - bit_width(slots) tag bits (12 at a million slots, 2 at the largest
//   table), so the larger the table, the more cells a lookup checks against slots.
// * Hashes: mix() spreads an input over all 64 bits (splitmix64's finaliser); id_hash()
//   is the (creatorid, id) one. The state table hashes a key with two CRC-32C sums, one over
//   each half, mixed.
//
// Pure C++ over memory the caller provides (the state table allocates it from EAL).
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <initializer_list>

// A bucket is scanned as four 16-byte vectors where the compiler has SSE2 and ThreadSanitizer
// is off (SlotIndex::scan); with one atomic load per cell otherwise.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SYNCWALL_SLOT_INDEX_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SYNCWALL_SLOT_INDEX_TSAN 1
#endif
#if defined(__SSE2__) && !defined(SYNCWALL_SLOT_INDEX_TSAN)
#define SYNCWALL_SLOT_INDEX_SSE2 1
#include <emmintrin.h>
#endif

namespace syncwall::dp {

class SlotIndex {
  public:
    static constexpr uint32_t bucket_cells = 16;
    static constexpr uint32_t empty = 0xffffffffu;

    // Buckets for `capacity` entries: 1.75 cells per entry.
    static uint32_t buckets_for(uint32_t capacity) {
        const uint64_t cells = 7 * uint64_t(capacity) / 4;
        const uint64_t buckets = (cells + bucket_cells - 1) / bucket_cells;
        return buckets < 2 ? 2 : uint32_t(buckets);
    }

    SlotIndex() = default;
    // `cells`: buckets * bucket_cells words, all `empty`. Slot numbers are below `slots`.
    SlotIndex(std::atomic<uint32_t> *cells, uint32_t buckets, uint32_t slots)
        : cells_(cells), buckets_(buckets),
          // The widest slot number (slots - 1) never fills its bits, so no cell is `empty`.
          slot_bits_(unsigned(std::bit_width(slots))),
          slot_mask_(slot_bits_ >= 32 ? ~0u : (1u << slot_bits_) - 1) {}

    enum class Add : uint8_t { ok, exists, full };

    // Every output bit depends on every input bit (splitmix64's finaliser), so the two
    // bucket numbers and the tag taken from the result are independent enough.
    static uint64_t mix(uint64_t x) {
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ull;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebull;
        x ^= x >> 31;
        return x;
    }
    // The hash of pfsync's name of a state.
    static uint64_t id_hash(uint32_t creatorid, uint64_t id) {
        return mix(id ^ (uint64_t(creatorid) * 0x9e3779b97f4a7c15ull));
    }

    // Index `slot` under `hash`. `holds(s)` says whether slot s holds the same entry (any
    // slot a cell names: live, being made or being deleted).
    template <class Holds> Add add(uint64_t hash, uint32_t slot, Holds holds) {
        const Where w = where(hash);
        const uint32_t value = (slot & slot_mask_) | w.tag;
        for (;;) {
            std::atomic<uint32_t> *best = nullptr;
            unsigned best_free = 0;
            bool home = false; // the first bucket has room to spare: it is taken
            for (const uint32_t b : {w.b1, w.b2}) {
                std::atomic<uint32_t> *bucket = bucket_at(b);
                const Scan s = scan(bucket, w.tag);
                for (uint32_t m = s.tagged; m != 0; m &= m - 1) {
                    // The cell as it is now: it may have changed since the scan.
                    const uint32_t v = bucket[std::countr_zero(m)].load(std::memory_order_acquire);
                    if (v != empty && (v & ~slot_mask_) == w.tag && holds(v & slot_mask_))
                        return Add::exists;
                }
                const auto free = unsigned(std::popcount(s.empty));
                if (free > best_free && !home) {
                    best_free = free;
                    best = &bucket[std::countr_zero(s.empty)];
                }
                // The first bucket while it has room to spare, so that a lookup nearly
                // always finds the entry there (first_tagged_in()); the second is still
                // scanned for the same entry.
                if (b == w.b1 && free >= home_reserve) home = true;
                if (w.b2 == w.b1) break;
            }
            if (best == nullptr) return Add::full;
            uint32_t expected = empty;
            if (!best->compare_exchange_strong(expected, value, std::memory_order_seq_cst))
                continue; // another inserter took that cell first: look again
            // Our cell is visible to anyone who looks from now on; if someone else's cell for
            // this id appeared meanwhile, back out (they do the same if they see ours).
            if (tagged_cell(w, std::memory_order_seq_cst, best, holds).at != nullptr) {
                best->store(empty, std::memory_order_release);
                return Add::exists;
            }
            return Add::ok;
        }
    }

    // Where a hash's cells are: its two buckets and its tag. A caller that probes one hash
    // more than once (a bulk lookup's passes) works it out once.
    struct Where {
        uint32_t b1, b2, tag; // tag already shifted above the slot bits
    };
    Where where(uint64_t x) const {
        const auto lo = uint32_t(x), hi = uint32_t(x >> 32);
        // Multiply-shift maps a 32-bit hash onto 0..buckets-1 without a division; it reads
        // the hash's high bits, and the tag comes from the low ones.
        Where w;
        w.b1 = uint32_t((uint64_t(lo) * buckets_) >> 32);
        w.b2 = uint32_t((uint64_t(hi) * buckets_) >> 32);
        w.tag = slot_bits_ >= 32 ? 0 : (lo ^ hi) << slot_bits_;
        return w;
    }

    // The slot for which `holds(s)` is true among the cells tagged for `hash`, or `empty`.
    // `holds` decides what counts (the state table: live, with this key or id).
    template <class Holds> uint32_t find(uint64_t hash, Holds holds) const {
        return find(where(hash), holds);
    }
    template <class Holds> uint32_t find(const Where &w, Holds holds) const {
        const Cell c = tagged_cell(w, std::memory_order_acquire, nullptr, holds);
        return c.at == nullptr ? empty : c.value & slot_mask_;
    }

    // Start loading the two buckets of `w`.
    void prefetch(const Where &w) const {
        load_early(bucket_at(w.b1));
        load_early(bucket_at(w.b2));
    }
    // The first bucket alone: add() fills it first, while it keeps `home_reserve` cells
    // free, so most entries lie there.
    void prefetch_home(const Where &w) const { load_early(bucket_at(w.b1)); }
    void prefetch_second(const Where &w) const { load_early(bucket_at(w.b2)); }
    // The slot of the first cell tagged for `w` in one of its buckets (the first, its home,
    // or the second), unchecked, or `empty`: a candidate to start loading, and to check,
    // before find() looks at every tagged cell (a bulk lookup's passes; the first tagged
    // cell is almost always the one).
    uint32_t first_tagged_in(const Where &w, bool second) const {
        if (second && w.b2 == w.b1) return empty;
        const std::atomic<uint32_t> *bucket = bucket_at(second ? w.b2 : w.b1);
        if (const uint32_t m = tagged_cells(bucket, w.tag); m != 0)
            return bucket[std::countr_zero(m)].load(std::memory_order_acquire) & slot_mask_;
        return empty;
    }
    static constexpr unsigned home_reserve = 4;

    // Clear the cell that indexes `slot` under `hash`. False if there is none.
    bool remove(uint64_t hash, uint32_t slot) {
        const Where w = where(hash);
        // A slot's cell is its own for the slot's life: no other cell holds this value.
        const Cell c = tagged_cell(w, std::memory_order_relaxed, nullptr,
                                   [slot](uint32_t s) { return s == slot; });
        uint32_t expected = (slot & slot_mask_) | w.tag;
        return c.at != nullptr &&
               c.at->compare_exchange_strong(expected, empty, std::memory_order_acq_rel);
    }

    // Start loading the two buckets of `hash`: an insert that knows its id early, or a bulk
    // lookup, overlaps these misses with its other work.
    void prefetch(uint64_t hash) const { prefetch(where(hash)); }

    uint32_t buckets() const { return buckets_; }

  private:
    std::atomic<uint32_t> *bucket_at(uint32_t b) const {
        return cells_ + std::size_t(b) * bucket_cells;
    }

    struct Cell {
        std::atomic<uint32_t> *at; // nullptr: none
        uint32_t value;            // as it was read
    };
    // The first cell of the id's two buckets, other than `skip`, that carries the id's tag
    // and whose slot `holds(slot)` accepts. Cells are read with `order`.
    template <class Holds>
    Cell tagged_cell(const Where &w, std::memory_order order, const std::atomic<uint32_t> *skip,
                     Holds &&holds) const {
        for (const uint32_t b : {w.b1, w.b2}) {
            std::atomic<uint32_t> *bucket = bucket_at(b);
            for (uint32_t m = scan(bucket, w.tag).tagged; m != 0; m &= m - 1) {
                const auto i = unsigned(std::countr_zero(m));
                if (&bucket[i] == skip) continue;
                const uint32_t v = bucket[i].load(order);
                if (v != empty && (v & ~slot_mask_) == w.tag && holds(v & slot_mask_))
                    return {&bucket[i], v};
            }
            if (w.b2 == w.b1) break;
        }
        return {nullptr, empty};
    }

    // A bucket at a glance: bit i of `empty` is set when cell i is empty, of `tagged` when it
    // holds a slot under `tag`. The callers load a tagged cell again (atomically, with their
    // order) before they trust it, and a cell found empty is only a candidate for their
    // compare-and-swap: so the glance may be stale, and it need not be one atomic read.
    // With SSE2 it is four 16-byte loads and compares; one load per cell cost an insert
    // ~170 cycles in the two scans of add() (new connections, profiled). On x86 each aligned
    // 4-byte cell of a vector load is read whole, and loads are neither reordered with other
    // loads nor moved above the locked compare-and-swap that precedes add()'s second scan;
    // the fence keeps the compiler from moving the callers' reads of slots above the scan.
    // ThreadSanitizer builds take the per-cell atomic loads, which it can follow.
    struct Scan {
        uint32_t empty = 0, tagged = 0;
    };
    Scan scan(const std::atomic<uint32_t> *bucket, uint32_t tag) const {
        Scan s;
#if defined(SYNCWALL_SLOT_INDEX_SSE2)
        static_assert(sizeof(std::atomic<uint32_t>) == 4 && bucket_cells == 16);
        const auto *v = reinterpret_cast<const __m128i *>(bucket);
        const __m128i all = _mm_set1_epi32(-1), tags = _mm_set1_epi32(int(tag)),
                      tag_bits = _mm_set1_epi32(int(~slot_mask_));
        for (unsigned q = 0; q < 4; q++) {
            const __m128i cells = _mm_loadu_si128(v + q);
            const auto e = unsigned(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(cells, all))));
            const auto t = unsigned(_mm_movemask_ps(
                _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_and_si128(cells, tag_bits), tags))));
            s.empty |= e << (4 * q);
            s.tagged |= (t & ~e) << (4 * q);
        }
        std::atomic_thread_fence(std::memory_order_acquire);
#else
        for (uint32_t i = 0; i < bucket_cells; i++) {
            const uint32_t v = bucket[i].load(std::memory_order_acquire);
            if (v == empty)
                s.empty |= 1u << i;
            else if ((v & ~slot_mask_) == tag)
                s.tagged |= 1u << i;
        }
#endif
        return s;
    }

    // scan()'s `tagged` alone, for a candidate that the caller checks: an empty cell (every
    // bit set) counts too when `tag` has all its bits set, and reads as slot number
    // slot_mask_, which is never a slot (the constructor), so the caller's check fails. With
    // SSE2 the four compares are packed into one byte mask: half of scan()'s instructions,
    // on every packet's lookup.
    uint32_t tagged_cells(const std::atomic<uint32_t> *bucket, uint32_t tag) const {
#if defined(SYNCWALL_SLOT_INDEX_SSE2)
        const auto *v = reinterpret_cast<const __m128i *>(bucket);
        const __m128i tags = _mm_set1_epi32(int(tag)), tag_bits = _mm_set1_epi32(int(~slot_mask_));
        const auto tagged = [&](unsigned q) {
            return _mm_cmpeq_epi32(_mm_and_si128(_mm_loadu_si128(v + q), tag_bits), tags);
        };
        // Each compare's lanes are 0 or -1, which the signed packs keep: cell i, bit i.
        const __m128i lo = _mm_packs_epi32(tagged(0), tagged(1)),
                      hi = _mm_packs_epi32(tagged(2), tagged(3));
        const auto m = uint32_t(_mm_movemask_epi8(_mm_packs_epi16(lo, hi)));
        std::atomic_thread_fence(std::memory_order_acquire);
        return m;
#else
        return scan(bucket, tag).tagged;
#endif
    }

    static void load_early(const void *p) {
#if defined(__x86_64__)
        // As rte_prefetch0: GCC 12 drops __builtin_prefetch here (it sees no use of the line).
        asm volatile("prefetcht0 %[p]" : : [p] "m"(*static_cast<const volatile char *>(p)));
#else
        __builtin_prefetch(p);
#endif
    }

    std::atomic<uint32_t> *cells_ = nullptr;
    uint32_t buckets_ = 0;
    unsigned slot_bits_ = 32;
    uint32_t slot_mask_ = ~0u;
};

} // namespace syncwall::dp
