// The state table: every state of this node and of its pfsync peers.
//
// Theory of operation
// * Slots: one array of fixed-size records (a state and an 8-byte header); a state's slot
//   number is its name inside the table. Free slots are bits in a map, 64 slots to a chunk
//   word; each writer takes from a chunk of its own choosing, and an insert may name a slot
//   to be near (the state's twin, a translated state's own slot): it gets that slot's
//   partner (slot ^ 1) or the nearest free slot of its chunk when one is free, so that a
//   connection's two states share their lines and pages (docs/ownership.md, step 1).
// * Indexes: two lock-free SlotIndexes (slot_index.hpp) map a hash to slots, one for the
//   StateKey (what every packet looks up) and one for (creatorid, id) (pfsync's name). They
//   hold slot numbers only: a lookup checks a candidate against the key or id in the slot
//   itself, which it was about to read anyway. A key lookup thus reads two bucket lines
//   (loaded together) and the state's own slot, and a state costs the key index 7 bytes.
// * Writers: workers insert new states and update theirs; the sync lcore inserts, updates
//   and deletes states from peers; the main lcore's expiry sweep deletes. Mutation of one
//   state is serialised by the slot's lock (uncontended in practice: symmetric RSS keeps a
//   flow on one worker).
// * Readers that need a consistent copy (the sync lcore building a packet, the bulk update,
//   the management API, the sweep's first look) take no lock: read() is a seqlock read.
//   Every unlock moves the slot word's write sequence on, so a reader that saw the same
//   unlocked word before and after its copy copied no writer's half-done work. Readers never
//   hold up a writer (docs/ownership.md, step 2 of the single-owner design).
// * Reuse: a deleted slot (its index cells cleared) goes back to the free ring only after an
//   RCU grace period (rte_rcu_qsbr): every registered reader thread has passed a quiescent
//   point since the delete. A worker that just looked a slot up therefore never reads a
//   reused one; it may read one being deleted, which `lock()` reports as gone.
// * Slot life: free -> initialising (inserter owns it) -> live -> dead (deleted, waiting for
//   the grace period) -> free. Only live slots are visible to lookups.
// * Time is passed in (seconds on the table's clock), never read here.
// * Every change that a pfsync peer cares about goes through the StateChangeSink hook.
// * A live state's key, creatorid and id never change: they are what the indexes hold.
#pragma once

#include "dataplane/key_compare.hpp"
#include "dataplane/slot_index.hpp"
#include "dataplane/state.hpp"
#include "dataplane/table_memory.hpp"

#include <rte_common.h>
#include <rte_pause.h>
#include <rte_prefetch.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

struct rte_memzone;
struct rte_rcu_qsbr;
struct rte_rcu_qsbr_dq;

namespace syncwall::dp {

namespace detail {

// slot_alias: the slot holds the second key of a translated state (NAT) in its state.key and
// the state's own slot in its twin field; it is never locked, tracked or walked.
enum SlotStatus : uint32_t {
    slot_free = 0,
    slot_initialising = 1,
    slot_live = 2,
    slot_dead = 3,
    slot_alias = 4
};

// The slot word: bit 0 the lock, bits 1-3 the status, bits 4-14 the write sequence (moved
// on by every unlock, for read()), bit 15 set for a translated state (so that the worker
// learns it from the word it locks, not from a line of the slot it does not otherwise
// touch), bits 16-31 the generation (moved on by every reuse).
constexpr uint32_t lock_bit = 1, status_shift = 1, status_bits = 7u << status_shift,
                   sequence_shift = 4, sequence_bits = 0x7ffu << sequence_shift,
                   translated_bit = 1u << 15, generation_shift = 16;

constexpr SlotStatus status_of(uint32_t word) {
    return SlotStatus((word & status_bits) >> status_shift);
}
constexpr uint32_t generation_of(uint32_t word) {
    return word >> generation_shift;
}
constexpr uint32_t with_status(uint32_t word, SlotStatus st) {
    return (word & ~status_bits) | uint32_t(st) << status_shift;
}
// The word with its write sequence moved on by one (wrapping within its 11 bits).
constexpr uint32_t next_sequence(uint32_t word) {
    return (word & ~sequence_bits) | ((word + (1u << sequence_shift)) & sequence_bits);
}

// Line aligned, three lines to a slot: the part a packet touches (the word, the twin link,
// the State's per-packet fields and its key: 128 bytes) is then always two lines, where a
// packed slot of 160 bytes began half a line in for every other slot and spread that part
// over three; a connection's two states side by side (slots 2k and 2k+1) cost a packet
// four lines instead of all five of a packed pair. At a million states it takes 7 % off
// the established path for 32 bytes more per slot (BENCHMARKS.md, "Slots on line
// boundaries"). Defined here so that the per-packet accessors below inline into the worker.
struct alignas(64) Slot {
    std::atomic<uint32_t> word{0};           // lock, status, generation
    std::atomic<uint32_t> twin{0xffffffffu}; // StateTable::no_slot
    State state;

    SlotStatus status(std::memory_order order = std::memory_order_acquire) const {
        return status_of(word.load(order));
    }
    // The translated bit of the word and the twin field (relaxed loads): what
    // StateTable::translated(), twin(), prefetch_other() and state_of_alias() read.
    bool translated() const { return (word.load(std::memory_order_relaxed) & translated_bit) != 0; }
    uint32_t twin_link() const { return twin.load(std::memory_order_relaxed); }
    // Change the status, keeping the lock bit and the generation.
    void set_status(SlotStatus st) {
        uint32_t w = word.load(std::memory_order_relaxed);
        while (!word.compare_exchange_weak(w, with_status(w, st), std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
        }
    }
    // free -> initialising; false if the slot is not free.
    bool claim() {
        uint32_t w = word.load(std::memory_order_acquire);
        while (status_of(w) == slot_free) {
            if (word.compare_exchange_weak(w, with_status(w, slot_initialising),
                                           std::memory_order_acq_rel, std::memory_order_acquire))
                return true;
        }
        return false;
    }
};

} // namespace detail

enum class StateChange : uint8_t { insert, update, remove };

// The narrow hook the sync layer attaches to. Called by the writer that made the change, on
// its own lcore, after the change is visible. `writer` is the writer's index as passed to
// the table's mutating calls (workers 0..N-1, then the sync and main lcores).
// `remove` is heard with the slot still locked by the remover and the state still readable
// through state(slot): copy what is needed, and do not lock that slot from the hook.
class StateChangeSink {
  public:
    virtual ~StateChangeSink() = default;
    virtual void state_changed(unsigned writer, uint32_t slot, uint32_t generation,
                               StateChange change) = 0;
};

struct StateTableConfig {
    std::string name = "syncwall_states";
    uint32_t capacity = 100000; // limits.states: inserts beyond it are refused
    // Room for translated states (NAT): each holds a second key, in a slot of its own. With
    // it the key index has room for 2 * capacity keys; without it, an insert with a second
    // key is refused as `full`.
    bool translations = false;
    unsigned reader_threads = 1; // RCU reader ids 0..reader_threads-1 (workers, sync lcore)
    int socket_id = 0;
};

class StateTable {
  public:
    explicit StateTable(const StateTableConfig &cfg); // EAL must be up; throws on failure
    ~StateTable();
    StateTable(const StateTable &) = delete;
    StateTable &operator=(const StateTable &) = delete;

    static constexpr uint32_t no_slot = 0xffffffffu;
    static constexpr unsigned max_bulk = 64; // keys per lookup_bulk()

    // --- lookups (any lcore) -------------------------------------------------------
    // Slot of the live state with this key (either key of a translated state), or no_slot.
    uint32_t lookup(const StateKey &key) const;
    // Bulk: slots[i] = slot of keys[i] or no_slot. n <= 64. Prefetches the slots found.
    // A translated state's second key gives its alias slot: see state_of_alias().
    // hashes (optional): hashes[i] = keys[i]'s hash in the key index, for an insert of a
    // key that was missed (insert_new's `hash`), so that it is not computed twice.
    void lookup_bulk(const StateKey *const *keys, uint32_t *slots, unsigned n,
                     uint64_t *hashes = nullptr) const;
    // The state slot a lookup_bulk() result stands for when it is an alias slot (the second
    // key of a translated state), or no_slot when `slot` is not an alias (any more).
    uint32_t state_of_alias(uint32_t slot) const;
    uint32_t lookup_id(uint32_t creatorid, uint64_t id) const;

    // --- twins: pf's link from a state key to its reverse ----------------------------
    // A forwarded packet matches one state inbound and the state with the reversed key
    // outbound. The worker remembers, per slot, the slot it last found for the other
    // direction; this is a hint only, and twin_matches() says whether a hinted slot is live
    // and holds `key` (valid until the caller's next quiescent point, as a lookup is).
    uint32_t twin(uint32_t slot) const;
    void set_twin(uint32_t slot, uint32_t twin);
    bool twin_matches(uint32_t slot, const StateKey &key) const;
    // Start loading a slot the caller is about to lock (a twin, say).
    void prefetch(uint32_t slot) const;
    // A translated state's: start loading the link to its second key (alias_of()), which
    // the caller has read the slot word of. Nothing for another state.
    void prefetch_other(uint32_t slot) const;
    // Start loading the key of a slot (a translated state's or its alias slot's, for the
    // rewrite).
    void prefetch_key(uint32_t slot) const;
    // Start loading what insert() will touch to index (creatorid, id), for an inserter that
    // knows the ids it is about to give out.
    void prefetch_id(uint32_t creatorid, uint64_t id) const;

    // --- access to one state ---------------------------------------------------------
    // Lock a slot for reading or writing. Returns false (and holds nothing) if the slot is
    // not live any more (deleted since it was looked up).
    bool lock(uint32_t slot);
    void unlock(uint32_t slot);
    // lock() for a caller that goes on to use the record: the locked slot, or nullptr where
    // lock() returns false. Through it the caller reads and writes the state, its twin link
    // and its translated bit, and unlocks it, without going back to the table for each (a
    // locked instruction makes the compiler load the table's fields again).
    detail::Slot *lock_slot(uint32_t slot);
    static void unlock(detail::Slot &s);
    // The record; valid to read or write only while locked (or for the inserter before
    // publish). generation() changes every time the slot is reused (16 bits: it wraps after
    // 65 536 lives of one slot).
    State &state(uint32_t slot);
    const State &state(uint32_t slot) const;
    uint32_t generation(uint32_t slot) const;
    // A consistent copy of the live state in `slot`, without the lock (a seqlock read: it
    // retries while a writer holds the slot or wrote it during the copy). False if the slot
    // is not live. `*generation` (optional) gets the life the copy belongs to. Any thread.
    bool read(uint32_t slot, State &out, uint32_t *generation = nullptr) const;

    // --- translated states (NAT) ------------------------------------------------------
    // A translated state has two keys (pf's wire and stack keys). State::key is the one its
    // first packet used, before translation; the other one is indexed too, through an alias
    // slot, and both find the state. By pf's rule a packet travelling in the state's own
    // direction must find it by State::key, one travelling the other way by the other key.
    // The second key of the live state in `slot` (a copy, checked against the slot's reuse),
    // or false when it has none.
    bool other_key(uint32_t slot, StateKey &out) const;
    // The alias slot holding it, or no_slot; its key is state(alias).key while `slot` lives.
    uint32_t alias_of(uint32_t slot) const;
    // Whether the state in `slot` (locked by the caller) is translated: from the slot word.
    bool translated(uint32_t slot) const { return slot_array_[slot].translated(); }
    bool translations() const { return alias_of_ != nullptr; }

    // --- writers ---------------------------------------------------------------------
    enum class InsertResult : uint8_t { ok, exists, full };
    // Insert a copy of `s` (its key and (creatorid, id) must be unique). On `ok`, `*slot`
    // holds the new slot and the sink hears `insert`. `exists`: a live or half-made state
    // has the key or id. `full`: limits.states reached, or no free slot or index cell.
    // `other` (a translated state): its second key, indexed before the state goes live;
    // `exists` with *other_taken set when another state holds that key (a NAT port in use).
    // `near` (optional): a slot the new state should lie near, as its twin's (see above).
    InsertResult insert(const State &s, unsigned writer, uint32_t *slot,
                        const StateKey *other = nullptr, bool *other_taken = nullptr,
                        uint32_t near = no_slot);
    // Insert a new state of our own: it gets the id `next_id`, and `next_id` moves on by
    // `stride` for every id tried, whatever the outcome (pf's ids always move on). An id
    // that another state already holds (a peer's state planted under our creatorid, say) is
    // passed over, up to max_id_tries ids per call, so that nothing a peer sends can stop a
    // writer from making states. `s.id` is set to the id used. `hash` (optional): s.key's
    // hash as lookup_bulk() gave it.
    static constexpr unsigned max_id_tries = 8;
    InsertResult insert_new(State &s, unsigned writer, uint32_t *slot, uint64_t &next_id,
                            uint64_t stride, const StateKey *other = nullptr,
                            bool *other_taken = nullptr, const uint64_t *hash = nullptr,
                            uint32_t near = no_slot);
    // Report that the locked state in `slot` changed in a way peers care about.
    void notify_update(uint32_t slot, unsigned writer);
    // Delete a state (not locked by the caller). The sink hears `remove` before the slot
    // becomes unreachable. Returns false if it was already gone.
    bool remove(uint32_t slot, unsigned writer);

    // --- RCU -------------------------------------------------------------------------
    // Readers (workers, sync lcore) call this once per poll loop, outside any lookup.
    void quiescent(unsigned reader_thread);
    // Reader threads that stop polling (sleep for long, exit) go offline so that they do
    // not hold up grace periods, and come back online before the next lookup.
    void reader_offline(unsigned reader_thread);
    void reader_online(unsigned reader_thread);
    // Free slots whose grace period has passed (the deleting lcores call this; cheap).
    void reclaim();

    // --- expiry and walking (main lcore) ---------------------------------------------
    // Visit up to `budget` slots starting where the previous call stopped, deleting live
    // states for which expired(state) says so. Returns how many were deleted. The sweep
    // covers the whole table in capacity()/budget calls and never pauses for longer.
    uint32_t sweep(uint32_t budget, unsigned writer,
                   const std::function<bool(const State &)> &expired);
    // Call f(slot, copy of state) for every live state (copied with read()).
    void for_each(const std::function<void(uint32_t, const State &)> &f);
    // The same over slots [first, first + count) only (clipped to slots()), until f returns
    // false. Returns the first slot not finished with: f's false one, or the range's end.
    uint32_t walk(uint32_t first, uint32_t count,
                  const std::function<bool(uint32_t, const State &)> &f);

    void set_sink(StateChangeSink *sink) { sink_ = sink; }

    uint32_t count() const { return count_.load(std::memory_order_relaxed); }
    uint32_t capacity() const { return capacity_; }
    uint32_t slots() const { return slots_; } // slot numbers are 0..slots()-1

    // Counters (summed reads; written with relaxed atomics by whoever changes them).
    struct Stats {
        uint64_t inserts = 0, removals = 0, insert_exists = 0, insert_full = 0;
    };
    Stats stats() const;
    // Bytes of memory the table uses per state at capacity (hash indexes + slot), for the
    // benchmark's "memory per state".
    std::size_t bytes_per_state() const;
    // The bytes the table takes (its arrays, indexes, free map, RCU defer queue).
    std::size_t memory_bytes() const { return memory_bytes_; }
    // Bytes of the table the kernel backed with 2 MiB transparent huge pages once the
    // constructor had touched all of it (table_memory.hpp), read then from
    // /proc/self/smaps, whose walk of a large process's pages is no read for a control loop
    // to repeat. 0 where EAL's heap holds the table (on hugepages or not).
    std::size_t huge_page_bytes() const { return huge_page_bytes_; }

  private:
    using Slot = detail::Slot;
    SlotIndex keys_; // StateKey -> slot (both keys of a translated state)
    SlotIndex ids_;  // (creatorid, id) -> slot
    // Free slots: bit b of free_map_[c] is set while slot 64 * c + b is free.
    std::atomic<uint64_t> *free_map_ = nullptr;
    const rte_memzone *free_zone_ = nullptr; // the map's memory, named after the table
    uint32_t chunks_ = 0;
    // The chunk each writer takes its slots from (writer % max_cursors; writers that share
    // one only share a starting point), and how many more takes skip the scan for a free
    // pair, and the scan of the whole map, after one found nothing.
    struct alignas(RTE_CACHE_LINE_SIZE) Cursor {
        std::atomic<uint32_t> chunk{0};
        std::atomic<uint32_t> skip_pair_scans{0};
        std::atomic<uint32_t> skip_full_scans{0};
    };
    static constexpr unsigned max_cursors = 64;
    Cursor cursors_[max_cursors];
    rte_rcu_qsbr *rcu_ = nullptr;
    rte_rcu_qsbr_dq *dq_ = nullptr;
    Slot *slot_array_ = nullptr;
    std::atomic<uint32_t> *alias_of_ = nullptr; // per slot; only with translations
    // The memory of the two arrays above and of the indexes' cells (table_memory.hpp:
    // 2 MiB pages for large ones where EAL has no hugepages).
    TableMemory slot_mem_, alias_mem_, key_mem_, id_mem_;
    uint32_t slots_ = 0;
    uint32_t capacity_ = 0;
    unsigned readers_ = 0;
    std::atomic<uint32_t> count_{0};
    std::atomic<uint64_t> inserts_{0}, removals_{0}, insert_exists_{0}, insert_full_{0};
    uint32_t sweep_cursor_ = 0;
    uint64_t read_limit_cycles_ = 0; // read(): a copy that took longer is retried
    StateChangeSink *sink_ = nullptr;
    std::size_t memory_bytes_ = 0;
    std::size_t huge_page_bytes_ = 0;

    // The key index's hash of a key: CRC-32C over each half, mixed (slot_index.hpp).
    [[gnu::always_inline]] static uint64_t key_hash(const StateKey &key);
    // Whether slot `s` holds `key`, with a status a lookup finds (live or alias) when
    // `findable_only`, else any status but free; `word` gets the slot word it read.
    bool slot_has_key(uint32_t s, const StateKey &key, bool findable_only, uint32_t &word) const;
    // Whether slot `s` (any status but free) holds `key`: the key index's duplicate check.
    bool holds_key(uint32_t s, const StateKey &key) const;
    // A free slot, claimed (free -> initialising), or no_slot when none is free: near `near`
    // when its chunk has room, else from the writer's chunk.
    uint32_t take_slot(unsigned writer, uint32_t near);
    // A free slot of chunk `c` taken from the map, or no_slot. `how`: below 64, the free
    // slot nearest that bit of the chunk; take_pair, the even half of a free pair; take_any,
    // that or, with no pair, any free slot.
    static constexpr unsigned take_pair = 64, take_any = 65;
    uint32_t take_from(uint32_t c, unsigned how);
    // Give up a taken slot that never went live: dead now, free after a grace period.
    void discard(uint32_t slot, unsigned writer);
    // insert(); `*id_taken` says whether an `exists` came from the (creatorid, id) index,
    // `*other_taken` whether it came from the second key. `hash`: s.key's, or nullptr.
    InsertResult insert_(const State &s, unsigned writer, uint32_t *slot, bool *id_taken,
                         const StateKey *other, bool *other_taken, const uint64_t *hash,
                         uint32_t near);
    // Index `key` as the alias of `slot`: the alias slot, or a negative InsertResult-like
    // failure (-1 full, -2 taken).
    int64_t add_alias(const StateKey &key, uint32_t slot, unsigned writer);
    void drop_alias(uint32_t alias, unsigned writer);   // unindex and retire an alias slot
    void remove_locked(uint32_t slot, unsigned writer); // slot locked and live; unlocks it
    void retire(uint32_t slot, unsigned writer);        // release(slot) after a grace period
    void release(uint32_t slot);                        // back to the free pool
    // The defer queue's grace period as ThreadSanitizer sees it (nothing in other builds).
    void grace_period_seen() const;
    void free_resources();
};

// --- per-packet accessors, inline ---------------------------------------------------

inline uint32_t StateTable::twin(uint32_t slot) const {
    return slot < slots_ ? slot_array_[slot].twin_link() : no_slot;
}

inline void StateTable::set_twin(uint32_t slot, uint32_t twin) {
    if (slot < slots_) slot_array_[slot].twin.store(twin, std::memory_order_relaxed);
}

inline bool StateTable::twin_matches(uint32_t slot, const StateKey &key) const {
    if (slot >= slots_) return false;
    const Slot &s = slot_array_[slot];
    // Live, so its key is written and stays until a grace period after its delete.
    return s.status() == detail::slot_live && !key_differs<sizeof(StateKey)>(&s.state.key, &key, 0);
}

inline void StateTable::prefetch(uint32_t slot) const {
    if (slot >= slots_) return;
    // The header, the per-packet fields and the key (twin_matches() compares it).
    static_assert(offsetof(Slot, state) + offsetof(State, key) + sizeof(StateKey) <= 128 &&
                  alignof(Slot) == RTE_CACHE_LINE_SIZE && RTE_CACHE_LINE_SIZE == 64);
    const char *p = reinterpret_cast<const char *>(&slot_array_[slot]);
    rte_prefetch0(p); // the two lines: the slot begins on a line
    rte_prefetch0(p + RTE_CACHE_LINE_SIZE);
}
inline void StateTable::prefetch_other(uint32_t slot) const {
    if (alias_of_ == nullptr || slot >= slots_) return;
    if (slot_array_[slot].translated()) rte_prefetch0(&alias_of_[slot]);
}

inline void StateTable::prefetch_key(uint32_t slot) const {
    if (slot >= slots_) return;
    const char *k = reinterpret_cast<const char *>(&slot_array_[slot].state.key);
    rte_prefetch0(k);
    rte_prefetch0(k + sizeof(StateKey) - 1);
}

inline bool StateTable::lock(uint32_t slot) {
    return lock_slot(slot) != nullptr;
}

inline detail::Slot *StateTable::lock_slot(uint32_t slot) {
    if (slot >= slots_) return nullptr;
    Slot &s = slot_array_[slot];
    uint32_t w = s.word.load(std::memory_order_relaxed);
    for (;;) {
        if ((w & detail::lock_bit) != 0) {
            rte_pause();
            w = s.word.load(std::memory_order_relaxed);
            continue;
        }
        if (s.word.compare_exchange_weak(w, w | detail::lock_bit, std::memory_order_acquire,
                                         std::memory_order_relaxed))
            break;
    }
    // Only the lock holder takes a live slot out of live, so `w` stays true while we hold it.
    if (detail::status_of(w) != detail::slot_live) {
        // Not live: an inserter may be claiming it (free -> initialising) right now, so
        // clear our bit and nothing else.
        s.word.fetch_and(~detail::lock_bit, std::memory_order_release);
        return nullptr;
    }
    // The state's stores that follow must not be seen before the lock bit by a reader that
    // copies without the lock (read(): the seqlock's writer side). A compiler barrier on x86.
    std::atomic_thread_fence(std::memory_order_release);
    return &s;
}

inline void StateTable::unlock(uint32_t slot) {
    unlock(slot_array_[slot]);
}

inline void StateTable::unlock(detail::Slot &s) {
    // Held since lock() found it live (remove_locked() may have made it dead since, but it
    // is retired only after this unlock): nobody else writes a locked live or dead slot's
    // word (claims want it free, recycling comes after retire, and only the holder makes it
    // dead), so a plain release store does, and saves a locked instruction per packet and
    // pass. The write sequence moves on, so that a reader that copied meanwhile retries.
    std::atomic<uint32_t> &w = s.word;
    w.store(detail::next_sequence(w.load(std::memory_order_relaxed) & ~detail::lock_bit),
            std::memory_order_release);
}

inline uint32_t StateTable::state_of_alias(uint32_t slot) const {
    if (slot >= slots_) return no_slot;
    const Slot &s = slot_array_[slot];
    return s.status() == detail::slot_alias ? s.twin_link() : no_slot;
}

inline uint32_t StateTable::alias_of(uint32_t slot) const {
    return alias_of_ != nullptr && slot < slots_ ? alias_of_[slot].load(std::memory_order_acquire)
                                                 : no_slot;
}

inline State &StateTable::state(uint32_t slot) {
    return slot_array_[slot].state;
}

inline const State &StateTable::state(uint32_t slot) const {
    return slot_array_[slot].state;
}

} // namespace syncwall::dp
