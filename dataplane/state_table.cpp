// The state table on its own slot array and indexes (slot_index.hpp) and rte_rcu_qsbr.
//
// Why the pieces fit together:
// * A slot is taken from the free map (its bit cleared by a compare-and-swap, so by one
//   taker only) with its status still free, and claimed (free -> initialising) by the taker
//   alone; its bit is set again only a grace period after it died (the RCU defer queue),
//   with its generation moved on. A state with no `near` takes the even half of a free
//   pair (slots 2k and 2k + 1), leaving the other half for its twin: from the writer's
//   chunk of 64 while it has a pair, else from the chunks after it (a bounded number), else
//   any free slot there, else, after a reclaim, anywhere in the map (a scan of the whole
//   map that found nothing is not repeated for the next few takes). A state with `near`
//   takes that slot's partner when free, else the nearest free slot of its chunk, else goes
//   the way above.
// * Both indexes name slots and check candidates against the slot's own record, so an
//   inserter writes the record before it adds a cell: whoever sees the cell sees the record.
//   A key index cell is added before the state goes live (lookups want live slots), and both
//   cells are cleared when the state dies, before its grace period starts, so a slot is
//   never named by a cell of a previous life once it is reused.
// * "Is this key taken?" is the key index's duplicate check: a slot that holds the key,
//   whatever its status but free (made, live, dying), refuses a second one; two inserters
//   racing with one key both look again after adding, and at most one stays.
// * A slot's lock, status, write sequence and generation share one 32-bit word, so that a
//   slot is its state and 8 bytes: every change to the word is an atomic read-modify-write
//   that leaves the other fields as they are, except unlock() (see there). The generation
//   (16 bits) tells a reused slot from its previous life; the write sequence (11 bits) tells
//   read() that a writer came and went during its copy.
// * A translated state's second key takes a slot of its own, an alias: its state.key is
//   that key and its twin field the state's slot (state_of_alias); alias_of_[state slot]
//   names the alias. The alias is indexed before the state goes live and unindexed when it
//   dies, under the same grace period.
// * read() is a seqlock read (Boehm, "Can seqlocks get along with programming language
//   memory models?", 2012): the word's acquire load, the copy by relaxed 8-byte atomic
//   loads, an acquire fence, the word again. The writer's side is lock()'s release fence and
//   unlock()'s release store. A 11-bit sequence could come round to the same value, but only
//   after 2 048 writes of the one state (each a lock and an unlock, at most one per packet
//   of its connection); a copy that took longer than 10 microseconds (a reader preempted
//   mid-copy) is therefore thrown away and made again, whatever the word says.
#define ALLOW_EXPERIMENTAL_API 1 // rte_rcu_qsbr_dq_* are experimental in DPDK 22.11

#include "dataplane/state_table.hpp"

#include "dataplane/crc32c.hpp"
#include "dataplane/key_compare.hpp"

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_memzone.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <new>
#include <stdexcept>

namespace syncwall::dp {

using namespace detail;

namespace {

// Longest table name whose derived names (the free map's memzone, name + "_free"; the defer
// queue's ring, "RCU_" + name + "_dq") fit RTE_MEMZONE_NAMESIZE and RTE_RING_NAMESIZE.
constexpr std::size_t max_name = 19;

// Table sizes: slot numbers and a few tag bits share a 32-bit index cell.
constexpr uint32_t max_capacity = 1u << 29;

// Slots beyond the index's entries, for states that wait out their grace period while new
// ones take their places (a full table under churn).
constexpr uint32_t slack_slots = 8001;

// A take looks at this many chunks from the writer's for a free pair, then for any free
// slot, before it reclaims and, failing that, scans the whole map; after a scan for pairs or
// a whole scan found nothing, this many takes skip it.
constexpr uint32_t scan_chunks = 128;
constexpr uint32_t scan_pause = 64;

constexpr uint64_t even_bits = 0x5555555555555555ull;

// The set bit of `m` (not 0, bit b clear) nearest bit b: b's partner b ^ 1 first, then the
// nearest on either side (the one above on a tie).
unsigned nearest_bit(uint64_t m, unsigned b) {
    if ((m >> (b ^ 1) & 1) != 0) return b ^ 1;
    const uint64_t above = m & ((~uint64_t(0) << 1) << b), below = m & ((uint64_t(1) << b) - 1);
    const unsigned up = above != 0 ? unsigned(__builtin_ctzll(above)) - b : 64;
    const unsigned down = below != 0 ? b - (63 - unsigned(__builtin_clzll(below))) : 64;
    return up <= down ? b + up : b - down;
}

} // namespace

StateTable::StateTable(const StateTableConfig &cfg)
    : capacity_(cfg.capacity), readers_(cfg.reader_threads),
      read_limit_cycles_(std::max<uint64_t>(rte_get_tsc_hz() / 100000, 1000)) {
    static_assert(sizeof(Slot) == 3 * 64, "a slot is its state and 8 bytes, on three whole lines");
    const std::string what = "cannot create state table '" + cfg.name + "' of " +
                             std::to_string(cfg.capacity) + " states: ";
    if (cfg.name.empty() || cfg.name.size() > max_name)
        throw std::runtime_error(what + "the name must have 1 to " + std::to_string(max_name) +
                                 " characters");
    if (cfg.capacity == 0 || cfg.capacity > max_capacity)
        throw std::runtime_error(what + "the capacity must be 1 to " +
                                 std::to_string(max_capacity));
    auto fail = [&](const std::string &why) {
        free_resources();
        return std::runtime_error(what + why);
    };
    auto dpdk_error = [&](const char *step) {
        return fail(std::string(step) + ": " + rte_strerror(rte_errno));
    };

    // Translated states take two keys, and two slots.
    const uint32_t entries = cfg.capacity * (cfg.translations ? 2 : 1);
    slots_ = entries + slack_slots;
    const std::string dq_name = cfg.name + "_dq";
    // The free slot map first: its memzone's name is the table's, so a taken name is refused
    // before the slots are allocated and zeroed.
    chunks_ = (slots_ + 63) / 64;
    const std::string map_name = cfg.name + "_free";
    free_zone_ = rte_memzone_reserve_aligned(map_name.c_str(), sizeof(uint64_t) * chunks_,
                                             cfg.socket_id, 0, RTE_CACHE_LINE_SIZE);
    if (free_zone_ == nullptr) throw dpdk_error("free slots");
    free_map_ = static_cast<std::atomic<uint64_t> *>(free_zone_->addr);
    for (uint32_t c = 0; c < chunks_; c++) {
        const uint32_t in_chunk = std::min<uint32_t>(64, slots_ - c * 64);
        new (&free_map_[c])
            std::atomic<uint64_t>(in_chunk == 64 ? ~uint64_t(0) : (uint64_t(1) << in_chunk) - 1);
    }

    auto memory = [&](TableMemory &m, const char *name, std::size_t bytes,
                      const std::string &holding) {
        m = TableMemory(name, bytes, cfg.socket_id);
        if (m.data() == nullptr) throw fail("no memory for " + holding + " (" + m.error() + ")");
        return m.data();
    };
    slot_array_ = static_cast<Slot *>(memory(slot_mem_, "syncwall_state_slots",
                                             sizeof(Slot) * std::size_t(slots_),
                                             std::to_string(slots_) + " slots"));
    for (uint32_t i = 0; i < slots_; i++)
        new (&slot_array_[i]) Slot{};
    // Writers start far apart, so that they do not take from one chunk.
    for (unsigned w = 0; w < max_cursors; w++)
        cursors_[w].chunk.store(uint32_t(uint64_t(w) * chunks_ / max_cursors),
                                std::memory_order_relaxed);
    if (cfg.translations) {
        alias_of_ = static_cast<std::atomic<uint32_t> *>(
            memory(alias_mem_, "syncwall_state_alias", sizeof(std::atomic<uint32_t>) * slots_,
                   "the translated states' links"));
        for (uint32_t i = 0; i < slots_; i++)
            new (&alias_of_[i]) std::atomic<uint32_t>(no_slot);
    }
    // Both indexes: `entries` keys (or ids) at 1.75 cells each, every cell empty.
    const uint32_t index_buckets = SlotIndex::buckets_for(entries);
    const std::size_t index_cells = std::size_t(index_buckets) * SlotIndex::bucket_cells;
    auto make_index = [&](const char *name, TableMemory &mem, const char *what) {
        auto *const cells = static_cast<std::atomic<uint32_t> *>(memory(
            mem, name, sizeof(std::atomic<uint32_t>) * index_cells, std::string("the ") + what));
        for (std::size_t i = 0; i < index_cells; i++)
            new (&cells[i]) std::atomic<uint32_t>(SlotIndex::empty);
        return SlotIndex(cells, index_buckets, slots_);
    };
    keys_ = make_index("syncwall_state_keys", key_mem_, "key index");
    ids_ = make_index("syncwall_state_ids", id_mem_, "id index");

    // No reader threads (a table only the control path touches): grace periods are instant.
    const uint32_t rcu_threads = readers_ == 0 ? 1 : readers_;
    const std::size_t rcu_bytes = rte_rcu_qsbr_get_memsize(rcu_threads);
    rcu_ = static_cast<rte_rcu_qsbr *>(
        rte_zmalloc_socket("syncwall_state_rcu", rcu_bytes, RTE_CACHE_LINE_SIZE, cfg.socket_id));
    if (rcu_ == nullptr) throw fail("no memory for the RCU variable");
    if (rte_rcu_qsbr_init(rcu_, rcu_threads) != 0) throw dpdk_error("rte_rcu_qsbr_init");
    for (unsigned r = 0; r < readers_; r++) {
        if (rte_rcu_qsbr_thread_register(rcu_, r) != 0)
            throw dpdk_error("rte_rcu_qsbr_thread_register");
        rte_rcu_qsbr_thread_online(rcu_, r);
    }

    // One entry per slot that can be waiting, so the queue cannot overflow. Automatic
    // reclamation in enqueue is off (trigger above size): it would run the free callback
    // inside whatever delete filled the queue; reclaim() and sweep() do it, a bounded number
    // at a time.
    rte_rcu_qsbr_dq_parameters dp{};
    dp.name = dq_name.c_str();
    dp.flags = 0; // multi-thread safe enqueue and reclaim (MP RTS / MC HTS ring)
    dp.size = slots_;
    dp.esize = sizeof(uint32_t);
    dp.trigger_reclaim_limit = slots_ + 1;
    dp.max_reclaim_size = 0;
    dp.free_fn = [](void *table, void *elems, unsigned n) {
        auto *t = static_cast<StateTable *>(table);
        t->grace_period_seen();
        const auto *slots = static_cast<const uint32_t *>(elems);
        for (unsigned i = 0; i < n; i++)
            t->release(slots[i]);
    };
    dp.p = this;
    dp.v = rcu_;
    dq_ = rte_rcu_qsbr_dq_create(&dp);
    if (dq_ == nullptr) throw dpdk_error("RCU defer queue");

    memory_bytes_ = key_mem_.footprint() + id_mem_.footprint() + slot_mem_.footprint() +
                    alias_mem_.footprint() + sizeof(uint64_t) * std::size_t(chunks_) + // free map
                    (sizeof(uint64_t) + dp.esize) * std::size_t(rte_align32pow2(slots_ + 1)) +
                    rcu_bytes;
    // Every element of the arrays was constructed above, so each page has been touched.
    const TableMemory *arrays[] = {&slot_mem_, &alias_mem_, &key_mem_, &id_mem_};
    huge_page_bytes_ = TableMemory::huge_bytes(arrays);
}

StateTable::~StateTable() {
    free_resources();
}

void StateTable::free_resources() {
    if (rcu_ != nullptr) {
        // Nobody reads any more: let the remaining grace periods end at once.
        for (unsigned r = 0; r < readers_; r++) {
            rte_rcu_qsbr_thread_offline(rcu_, r);
            rte_rcu_qsbr_thread_unregister(rcu_, r);
        }
    }
    if (dq_ != nullptr && rte_rcu_qsbr_dq_delete(dq_) != 0)
        RTE_LOG(ERR, USER1, "state table: defer queue not empty at teardown, leaking it\n");
    dq_ = nullptr;
    rte_memzone_free(free_zone_);
    free_zone_ = nullptr;
    free_map_ = nullptr;
    rte_free(rcu_);
    rcu_ = nullptr;
    key_mem_ = TableMemory{};
    slot_mem_ = TableMemory{};
    slot_array_ = nullptr;
    alias_mem_ = TableMemory{};
    alias_of_ = nullptr;
    id_mem_ = TableMemory{};
}

// --- lookups ---------------------------------------------------------------------------

inline uint64_t StateTable::key_hash(const StateKey &key) {
    static_assert(sizeof(StateKey) == 40, "two halves of 20 bytes");
    const auto *k = reinterpret_cast<const uint8_t *>(&key);
    // Two independent sums (a CRC over the whole key with two seeds would differ by a
    // constant), each over the bytes of its half: CRC-32C instructions, pipelined. The
    // second half starts 4 bytes off an 8-byte boundary: crc32c<>() loads it safely.
    const uint32_t lo = crc32c<20>(k, 0), hi = crc32c<20>(k + 20, 0);
    return SlotIndex::mix(uint64_t(hi) << 32 | lo);
}

inline bool StateTable::slot_has_key(uint32_t s, const StateKey &key, bool findable_only,
                                     uint32_t &word) const {
    // A slot a cell names holds its key from before the cell was added until a grace period
    // after the cell is cleared (it is not recycled sooner).
    if (s >= slots_) return false;
    word = slot_array_[s].word.load(std::memory_order_acquire);
    const SlotStatus st = status_of(word);
    if (findable_only ? st != slot_live && st != slot_alias : st == slot_free) return false;
    return !key_differs<sizeof(StateKey)>(&slot_array_[s].state.key, &key, 0);
}

bool StateTable::holds_key(uint32_t s, const StateKey &key) const {
    uint32_t word;
    return slot_has_key(s, key, false, word);
}

uint32_t StateTable::lookup(const StateKey &key) const {
    uint32_t word;
    const uint32_t pos =
        keys_.find(key_hash(key), [&](uint32_t s) { return slot_has_key(s, key, true, word); });
    if (pos >= slots_) return no_slot;
    const uint32_t slot = status_of(word) == slot_alias ? state_of_alias(pos) : pos;
    if (slot >= slots_ || slot_array_[slot].status() != slot_live) return no_slot;
    return slot;
}

void StateTable::lookup_bulk(const StateKey *const *keys, uint32_t *slots, unsigned n,
                             uint64_t *hashes) const {
    if (n == 0) return;
    if (n > max_bulk) n = max_bulk;
    SlotIndex::Where where[max_bulk];
    uint32_t candidate[max_bulk];
    // Three passes, so that the misses of a burst overlap: start loading every key's two
    // buckets; then, as they arrive, take each key's first tagged cell as its candidate and
    // start loading that slot (almost always the state: a foreign tag matches one cell in
    // ~300 at a million states); then check the candidates, looking at every tagged cell
    // only where the candidate is not the key's.
    for (unsigned i = 0; i < n; i++) {
        const uint64_t hash = key_hash(*keys[i]);
        if (hashes != nullptr) hashes[i] = hash;
        where[i] = keys_.where(hash);
        keys_.prefetch_home(where[i]);
    }
    static_assert(max_bulk <= 64, "one bit per key in `second`");
    uint64_t second = 0; // keys with no tagged cell in their first bucket
    for (unsigned i = 0; i < n; i++) {
        candidate[i] = keys_.first_tagged_in(where[i], false);
        if (candidate[i] == SlotIndex::empty) {
            keys_.prefetch_second(where[i]);
            second |= uint64_t(1) << i;
            continue;
        }
        // The header and per-packet fields (lock, status, peers, counters, expiry,
        // direction: the State's first 80 bytes) and the key: the slot's first two lines.
        prefetch(candidate[i]);
    }
    for (uint64_t m = second; m != 0; m &= m - 1) {
        const auto i = unsigned(std::countr_zero(m));
        candidate[i] = keys_.first_tagged_in(where[i], true);
        prefetch(candidate[i]);
    }
    for (unsigned i = 0; i < n; i++) {
        const StateKey &key = *keys[i];
        uint32_t word = 0;
        auto found = [&](uint32_t s) { return slot_has_key(s, key, true, word); };
        const uint32_t pos = found(candidate[i]) ? candidate[i] : keys_.find(where[i], found);
        if (pos >= slots_) {
            slots[i] = no_slot;
            continue;
        }
        slots[i] = pos;
        // A translated state's next loads depend on this one: the state of a second key
        // found here, or the link to a state's second key (Filter::track, the rewrite).
        if (status_of(word) == slot_alias) [[unlikely]]
            prefetch(slot_array_[pos].twin_link());
        else if ((word & translated_bit) != 0 && alias_of_ != nullptr) [[unlikely]]
            rte_prefetch0(&alias_of_[pos]); // prefetch_other(), its bit already tested
    }
}

uint32_t StateTable::lookup_id(uint32_t creatorid, uint64_t id) const {
    // A live slot's creatorid and id never change, and it is not recycled before the
    // caller's next quiescent point.
    const uint32_t slot = ids_.find(SlotIndex::id_hash(creatorid, id), [&](uint32_t s) {
        if (s >= slots_) return false;
        const Slot &sl = slot_array_[s];
        return sl.status() == slot_live && sl.state.creatorid == creatorid && sl.state.id == id;
    });
    return slot == SlotIndex::empty ? no_slot : slot;
}

// --- twins ---------------------------------------------------------------------------------

void StateTable::prefetch_id(uint32_t creatorid, uint64_t id) const {
    ids_.prefetch(SlotIndex::id_hash(creatorid, id));
}

// --- access to one state -----------------------------------------------------------------

uint32_t StateTable::generation(uint32_t slot) const {
    return slot < slots_ ? generation_of(slot_array_[slot].word.load(std::memory_order_acquire))
                         : 0;
}

bool StateTable::read(uint32_t slot, State &out, uint32_t *generation) const {
    if (slot >= slots_) return false;
    const Slot &s = slot_array_[slot];
    static_assert(sizeof(State) % sizeof(uint64_t) == 0 && alignof(State) >= alignof(uint64_t));
    const auto *from = reinterpret_cast<const uint64_t *>(&s.state);
    auto *to = reinterpret_cast<uint64_t *>(&out);
    for (;;) {
        const uint32_t before = s.word.load(std::memory_order_acquire);
        if (status_of(before) != slot_live) return false; // free slots cost no clock read
        if ((before & lock_bit) != 0) {
            rte_pause();
            continue;
        }
        const uint64_t start = rte_rdtsc();
        for (std::size_t i = 0; i < sizeof(State) / sizeof(uint64_t); i++)
            to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
        std::atomic_thread_fence(std::memory_order_acquire);
        const uint32_t after = s.word.load(std::memory_order_relaxed);
        if (after == before && rte_rdtsc() - start <= read_limit_cycles_) {
            if (generation != nullptr) *generation = generation_of(before);
            return true;
        }
        rte_pause();
    }
}

bool StateTable::other_key(uint32_t slot, StateKey &out) const {
    const uint32_t alias = alias_of(slot);
    if (alias >= slots_) return false;
    const Slot &a = slot_array_[alias];
    const uint32_t before = a.word.load(std::memory_order_acquire);
    if (status_of(before) != slot_alias) return false;
    const auto *from = reinterpret_cast<const uint64_t *>(&a.state.key);
    auto *to = reinterpret_cast<uint64_t *>(&out);
    static_assert(sizeof(StateKey) % sizeof(uint64_t) == 0);
    for (std::size_t i = 0; i < sizeof(StateKey) / sizeof(uint64_t); i++)
        to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
    std::atomic_thread_fence(std::memory_order_acquire);
    // Still the alias of this slot, in the same life: the key was not being rewritten.
    return a.word.load(std::memory_order_relaxed) == before && a.twin_link() == slot;
}

// --- writers -------------------------------------------------------------------------------

StateTable::InsertResult StateTable::insert(const State &st, unsigned writer, uint32_t *slot_out,
                                            const StateKey *other, bool *other_taken,
                                            uint32_t near) {
    bool id_taken = false, taken = false;
    const InsertResult r = insert_(st, writer, slot_out, &id_taken, other, &taken, nullptr, near);
    if (other_taken != nullptr) *other_taken = taken;
    return r;
}

StateTable::InsertResult StateTable::insert_new(State &st, unsigned writer, uint32_t *slot_out,
                                                uint64_t &next_id, uint64_t stride,
                                                const StateKey *other, bool *other_taken,
                                                const uint64_t *hash, uint32_t near) {
    InsertResult r = InsertResult::exists;
    for (unsigned tries = 0; tries < max_id_tries; tries++) {
        st.id = next_id;
        next_id += stride;
        bool id_taken = false, taken = false;
        r = insert_(st, writer, slot_out, &id_taken, other, &taken, hash, near);
        if (other_taken != nullptr) *other_taken = taken;
        if (r != InsertResult::exists || !id_taken) return r;
    }
    return r;
}

uint32_t StateTable::take_from(uint32_t c, unsigned how) {
    std::atomic<uint64_t> &word = free_map_[c];
    uint64_t m = word.load(std::memory_order_relaxed);
    while (m != 0) {
        unsigned b;
        if (how < 64) {
            b = nearest_bit(m, how);
        } else {
            const uint64_t pairs = m & (m >> 1) & even_bits; // even bits with a free partner
            if (pairs == 0 && how == take_pair) return no_slot;
            b = unsigned(__builtin_ctzll(pairs != 0 ? pairs : m));
        }
        // Acquire: the slot's word as release() left it (free, next generation).
        if (word.compare_exchange_weak(m, m & ~(uint64_t(1) << b), std::memory_order_acquire,
                                       std::memory_order_relaxed))
            return c * 64 + b;
    }
    return no_slot;
}

uint32_t StateTable::take_slot(unsigned writer, uint32_t near) {
    uint32_t slot = near < slots_ ? take_from(near / 64, near % 64) : no_slot;
    if (slot == no_slot) {
        Cursor &cur = cursors_[writer % max_cursors];
        const uint32_t start = cur.chunk.load(std::memory_order_relaxed);
        uint32_t c = start;
        auto scan = [&](uint32_t chunks, unsigned how) {
            for (uint32_t i = 0; i < chunks && slot == no_slot; i++) {
                if (i != 0) c = c + 1 == chunks_ ? 0 : c + 1;
                slot = take_from(c, how);
            }
        };
        // Half a free pair, so that the state's twin can have the other half; a free slot
        // of any kind when the chunks ahead have no pair (and then for a while).
        const uint32_t no_pairs = cur.skip_pair_scans.load(std::memory_order_relaxed);
        if (no_pairs == 0) {
            scan(std::min(scan_chunks, chunks_), take_pair);
            if (slot == no_slot) {
                cur.skip_pair_scans.store(scan_pause, std::memory_order_relaxed);
                c = start; // single slots from the writer's chunk on
            }
        } else {
            cur.skip_pair_scans.store(no_pairs - 1, std::memory_order_relaxed);
        }
        if (slot == no_slot) scan(std::min(scan_chunks, chunks_), take_any);
        if (slot == no_slot) {
            // Slots may wait in the defer queue: free what we may, then look everywhere,
            // unless a look everywhere found nothing a few takes ago.
            reclaim();
            const uint32_t skip = cur.skip_full_scans.load(std::memory_order_relaxed);
            if (skip != 0) {
                cur.skip_full_scans.store(skip - 1, std::memory_order_relaxed);
                scan(std::min(scan_chunks, chunks_), take_any);
            } else {
                scan(chunks_, take_any);
                if (slot == no_slot)
                    cur.skip_full_scans.store(scan_pause, std::memory_order_relaxed);
            }
        }
        cur.chunk.store(c, std::memory_order_relaxed);
        if (slot == no_slot) return no_slot;
    }
    // A slot whose bit we cleared is free and nobody else's; the claim only marks it taken.
    if (!slot_array_[slot].claim()) return no_slot;
    return slot;
}

int64_t StateTable::add_alias(const StateKey &key, uint32_t slot, unsigned writer) {
    const uint32_t pos = take_slot(writer, slot); // beside the state: the rewrite reads both
    if (pos == no_slot) return -1;
    Slot &a = slot_array_[pos];
    a.state.key = key;
    a.twin.store(slot, std::memory_order_relaxed);
    const SlotIndex::Add added =
        keys_.add(key_hash(key), pos, [&](uint32_t s) { return holds_key(s, key); });
    if (added == SlotIndex::Add::ok) {
        a.set_status(slot_alias);
        return pos;
    }
    discard(pos, writer);
    return added == SlotIndex::Add::exists ? -2 : -1; // exists: another state or alias has it
}

void StateTable::discard(uint32_t slot, unsigned writer) {
    slot_array_[slot].set_status(slot_dead);
    retire(slot, writer);
}

void StateTable::drop_alias(uint32_t alias, unsigned writer) {
    Slot &a = slot_array_[alias];
    const StateKey key = a.state.key;
    a.set_status(slot_dead);
    keys_.remove(key_hash(key), alias);
    retire(alias, writer);
}

StateTable::InsertResult StateTable::insert_(const State &st, unsigned writer, uint32_t *slot_out,
                                             bool *id_taken, const StateKey *other,
                                             bool *other_taken, const uint64_t *key_hash_of,
                                             uint32_t near) {
    auto refuse = [&](InsertResult r) {
        count_.fetch_sub(1, std::memory_order_relaxed);
        (r == InsertResult::full ? insert_full_ : insert_exists_)
            .fetch_add(1, std::memory_order_relaxed);
        return r;
    };
    // Reserve the state first, so that racing inserters cannot overshoot the limit together.
    if (count_.fetch_add(1, std::memory_order_relaxed) >= capacity_ ||
        (other != nullptr && alias_of_ == nullptr))
        return refuse(InsertResult::full);
    ids_.prefetch(SlotIndex::id_hash(st.creatorid, st.id)); // needed after the key's work below
    const uint32_t pos = take_slot(writer, near);
    if (pos == no_slot) return refuse(InsertResult::full);
    Slot &s = slot_array_[pos];
    // The record goes in first: an inserter checking an index for a duplicate reads the key
    // or (creatorid, id) of every slot a cell names, this one's as soon as its cell is set.
    std::memcpy(static_cast<void *>(&s.state), &st, sizeof(State));
    s.twin.store(no_slot, std::memory_order_relaxed);
    auto undo_slot = [&](InsertResult r) {
        discard(pos, writer);
        return refuse(r);
    };
    const uint64_t hash = key_hash_of != nullptr ? *key_hash_of : key_hash(st.key);
    assert(hash == key_hash(st.key)); // a caller's hash is the key's (debug builds check)
    switch (keys_.add(hash, pos, [&](uint32_t o) { return holds_key(o, st.key); })) {
    case SlotIndex::Add::ok:
        break;
    case SlotIndex::Add::exists: // the key is there (live, new or dying)
        return undo_slot(InsertResult::exists);
    case SlotIndex::Add::full:
        return undo_slot(InsertResult::full);
    }
    // The key is ours. Undo it if the id cannot be had: unlink the key now, recycle the
    // slot after a grace period (a reader may have looked it up meanwhile).
    auto undo = [&](InsertResult r) {
        keys_.remove(hash, pos);
        return undo_slot(r);
    };
    uint32_t alias = no_slot;
    if (other != nullptr) {
        const int64_t a = add_alias(*other, pos, writer);
        if (a < 0) {
            *other_taken = a == -2;
            return undo(a == -2 ? InsertResult::exists : InsertResult::full);
        }
        alias = uint32_t(a);
        s.state.local_flags |= local_flag::translated;
    } else {
        s.state.local_flags &= uint16_t(~local_flag::translated);
    }
    if (alias_of_ != nullptr) alias_of_[pos].store(alias, std::memory_order_release);
    if (alias != no_slot) s.word.fetch_or(translated_bit, std::memory_order_relaxed);
    auto undo_alias = [&](InsertResult r) {
        if (alias != no_slot) {
            alias_of_[pos].store(no_slot, std::memory_order_relaxed);
            drop_alias(alias, writer);
        }
        return undo(r);
    };
    switch (ids_.add(SlotIndex::id_hash(st.creatorid, st.id), pos, [&](uint32_t other) {
        return other < slots_ && slot_array_[other].status() != slot_free &&
               slot_array_[other].state.creatorid == st.creatorid &&
               slot_array_[other].state.id == st.id;
    })) {
    case SlotIndex::Add::ok:
        break;
    case SlotIndex::Add::exists:
        *id_taken = true;
        return undo_alias(InsertResult::exists);
    case SlotIndex::Add::full:
        return undo_alias(InsertResult::full);
    }

    s.set_status(slot_live);
    inserts_.fetch_add(1, std::memory_order_relaxed);
    if (slot_out != nullptr) *slot_out = uint32_t(pos);
    if (sink_ != nullptr)
        sink_->state_changed(writer, uint32_t(pos), generation(uint32_t(pos)), StateChange::insert);
    return InsertResult::ok;
}

void StateTable::notify_update(uint32_t slot, unsigned writer) {
    if (sink_ != nullptr && slot < slots_)
        sink_->state_changed(writer, slot, generation(slot), StateChange::update);
}

bool StateTable::remove(uint32_t slot, unsigned writer) {
    if (!lock(slot)) return false;
    remove_locked(slot, writer);
    return true;
}

void StateTable::remove_locked(uint32_t slot, unsigned writer) {
    Slot &s = slot_array_[slot];
    if (sink_ != nullptr) sink_->state_changed(writer, slot, generation(slot), StateChange::remove);
    const StateKey key = s.state.key;
    const uint32_t creatorid = s.state.creatorid;
    const uint64_t id = s.state.id;
    s.set_status(slot_dead);
    unlock(slot);
    // While dead and still indexed, an insert of the same key or id finds this slot taken
    // and reports `exists`; once unlinked, it gets a fresh position and cell.
    keys_.remove(key_hash(key), slot);
    ids_.remove(SlotIndex::id_hash(creatorid, id), slot);
    if (const uint32_t alias = alias_of(slot); alias != no_slot) {
        alias_of_[slot].store(no_slot, std::memory_order_relaxed);
        drop_alias(alias, writer);
    }
    retire(slot, writer);
    count_.fetch_sub(1, std::memory_order_relaxed);
    removals_.fetch_add(1, std::memory_order_relaxed);
}

void StateTable::retire(uint32_t slot, unsigned writer) {
    uint32_t e = slot;
    if (rte_rcu_qsbr_dq_enqueue(dq_, &e) == 0) return;
    // Unreachable while the queue has room for every position (see the constructor); kept
    // so that a full queue degrades into a wait rather than a leak.
    rte_rcu_qsbr_dq_reclaim(dq_, slots_, nullptr, nullptr, nullptr);
    if (rte_rcu_qsbr_dq_enqueue(dq_, &e) == 0) return;
    // Writers 0..readers_-1 are reader threads too (workers, sync lcore): they are at a
    // quiescent point here as far as this slot goes and must not wait for themselves.
    rte_rcu_qsbr_synchronize(rcu_, writer < readers_ ? writer : RTE_QSBR_THRID_INVALID);
    release(slot);
}

void StateTable::grace_period_seen() const {
#ifdef SYNCWALL_TSAN // meson.build
    // The defer queue frees slots once rte_rcu_qsbr_check, inside librte_rcu (not
    // instrumented), has read every reader's quiescent-state counter. Each reader stored its
    // counter with release (rte_rcu_qsbr_quiescent, inline in our code) after its last read
    // of these slots: load the counters again with acquire here, where ThreadSanitizer sees
    // it, so that it knows the reads come before the slots' reuse as the hardware does.
    for (unsigned r = 0; r < readers_; r++)
        (void)__atomic_load_n(&rcu_->qsbr_cnt[r].cnt, __ATOMIC_ACQUIRE);
#endif
}

void StateTable::release(uint32_t slot) {
    Slot &s = slot_array_[slot];
    // The slot is free, with its next generation, before it can be handed out again. A
    // non-RCU thread (the sweep) may hold the lock bit for a moment: keep it.
    uint32_t w = s.word.load(std::memory_order_relaxed);
    uint32_t next;
    do {
        next = ((generation_of(w) + 1) << generation_shift) | (w & lock_bit) |
               uint32_t(slot_free) << status_shift;
    } while (!s.word.compare_exchange_weak(w, next, std::memory_order_acq_rel,
                                           std::memory_order_relaxed));
    // Release: a taker that clears the bit sees the word above.
    free_map_[slot / 64].fetch_or(uint64_t(1) << (slot % 64), std::memory_order_release);
}

// --- RCU -------------------------------------------------------------------------------------

void StateTable::quiescent(unsigned reader_thread) {
    if (reader_thread < readers_) rte_rcu_qsbr_quiescent(rcu_, reader_thread);
}

void StateTable::reader_offline(unsigned reader_thread) {
    if (reader_thread < readers_) rte_rcu_qsbr_thread_offline(rcu_, reader_thread);
}

void StateTable::reader_online(unsigned reader_thread) {
    if (reader_thread < readers_) rte_rcu_qsbr_thread_online(rcu_, reader_thread);
}

void StateTable::reclaim() {
    // Bounded, so that a mass expiry is recycled over several calls rather than in one pause.
    constexpr unsigned max_per_call = 1024;
    rte_rcu_qsbr_dq_reclaim(dq_, max_per_call, nullptr, nullptr, nullptr);
}

// --- expiry and walking ------------------------------------------------------------------

uint32_t StateTable::sweep(uint32_t budget, unsigned writer,
                           const std::function<bool(const State &)> &expired) {
    uint32_t removed = 0;
    if (budget > slots_) budget = slots_;
    State copy;
    for (uint32_t n = 0; n < budget; n++) {
        const uint32_t i = sweep_cursor_;
        sweep_cursor_ = i + 1 == slots_ ? 0 : i + 1;
        Slot &s = slot_array_[i];
        uint32_t gen = 0;
        if (!read(i, copy, &gen)) continue;
        if (!expired(copy)) continue;
        // Delete only what was judged: a state refreshed (or replaced) since the copy was
        // taken is left for the next round.
        if (!lock(i)) continue;
        if (generation(i) != gen || std::memcmp(&copy, &s.state, sizeof(State)) != 0) {
            unlock(i);
            continue;
        }
        remove_locked(i, writer);
        removed++;
    }
    reclaim();
    return removed;
}

void StateTable::for_each(const std::function<void(uint32_t, const State &)> &f) {
    State copy;
    for (uint32_t i = 0; i < slots_; i++) {
        if (read(i, copy)) f(i, copy);
    }
}

uint32_t StateTable::walk(uint32_t first, uint32_t count,
                          const std::function<bool(uint32_t, const State &)> &f) {
    if (first >= slots_) return slots_;
    const uint32_t end = count < slots_ - first ? first + count : slots_;
    State copy;
    for (uint32_t i = first; i < end; i++) {
        if (read(i, copy) && !f(i, copy)) return i;
    }
    return end;
}

StateTable::Stats StateTable::stats() const {
    Stats s;
    s.inserts = inserts_.load(std::memory_order_relaxed);
    s.removals = removals_.load(std::memory_order_relaxed);
    s.insert_exists = insert_exists_.load(std::memory_order_relaxed);
    s.insert_full = insert_full_.load(std::memory_order_relaxed);
    return s;
}

std::size_t StateTable::bytes_per_state() const {
    return capacity_ == 0 ? 0 : (memory_bytes_ + capacity_ - 1) / capacity_; // rounded up
}

} // namespace syncwall::dp
