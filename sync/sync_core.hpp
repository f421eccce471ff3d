// The sync role's logic: what pfsync news to send, when, and how received news changes the
// state table. The sync lcore owns one SyncCore (sync_engine.hpp puts it on a port).
//
// Theory of operation
// * Sending. SyncCore is the state table's StateChangeSink. The lcore that changed a state
//   (a worker, or the main lcore's expiry sweep and `kill states`) pushes a Delta on its own
//   single-producer ring: "slot S, generation G, inserted/updated" or "state (creatorid, id)
//   removed". A per-slot flag byte records that a slot is already queued, so a state sits in
//   the rings at most once however often it changes (pfsync's compression: the message is
//   written from the live state when the packet is built). The sync lcore drains the rings
//   into a pending list and packs it when the oldest change has waited `interval_ms`, when a
//   packet's worth is pending, or when a TCP state piled up `maxupd` updates; new states go
//   out as INS, known ones as UPD_C, removals as DEL_C. A state inserted and removed before
//   it was sent is never mentioned (pf: "pretend this never happened").
//   A full ring never blocks its producer: the change is counted (ring_full) and caught up by
//   the state's next change; a peer that hears UPD_C for a state it missed asks for it.
// * Receiving. receive() validates a packet (authentication trailer if configured, then the
//   codec's layered decode) and applies each record: INS/UPD insert or update by
//   (creatorid, id); UPD_C merges peers monotonically (stale updates are counted and our
//   newer copy is sent back); an unknown UPD_C is answered with UPD_REQ; DEL/DEL_C remove;
//   CLR removes a creator's states; UPD_REQ sends one full state, or with (0, 0) starts a
//   bulk send. Changes made here use the sync writer id and are never queued as our news.
// * CLR. Every peer state this core inserts is linked, by slot, into its creator's list, so
//   that a CLR costs that creator's states and not the table: the CLR detaches the list at
//   once and poll() removes its states a slice at a time. Until then a state on a detached
//   list counts as gone: a later INS/UPD for its id makes a fresh state, a DEL or UPD_C
//   finds nothing. Our own states are never cleared by a peer (pf's CLR names the sender's
//   own hostid).
// * Replies. UPD_REQ and INS ack replies are de-duplicated per poll and capped; a bulk send
//   (UPD_REQ(0, 0)) starts at most once per bulk_timeout_ms per peer (its hostid with
//   authentication, its address without), and requests during a send queue one more pass.
// * Bulk update. start_bulk_request() (at start and on `sync resync`) sends UPD_REQ(0, 0),
//   repeats it every bulk_timeout_ms up to bulk_max_requests times, waits for BUS start and
//   BUS end, and gives up (status failed) rather than waiting forever. bulk_pending() is
//   what CARP reads to stay demoted meanwhile. A BUS end counts only from the creatorid
//   whose BUS start we heard, and, as in OpenBSD, only if its endtime (the time the sender
//   spent since it received the request) does not put the request before we sent our
//   latest one; we send that elapsed time in our own BUS end.
// * Authentication (optional, sync.auth.key_file): every packet carries a trailer after the
//   pfsync message (inside the IP payload, beyond the pfsync header's len, where OpenBSD
//   stops reading): the sender's 4-byte hostid, an 8-byte counter (both big-endian) and
//   HMAC-SHA256(key, message || hostid || counter). Receivers drop packets without a valid
//   trailer, and any counter not above the last one seen from that hostid: the replay
//   state is keyed by what the MAC covers, never by the IP source. At most max_auth_peers
//   hostids are remembered; a new one takes the place of one silent for auth_fresh_ms, and
//   is refused (auth_peers_full) while every remembered peer is live.
// * Threads: the sink runs on the changing lcore; everything else on the sync lcore. Stats
//   are relaxed atomics so that the main lcore can read them at any time.
// No DPDK ports here: transmission is a callback, so two cores can be joined in a test.
#pragma once

#include "dataplane/state_logic.hpp"
#include "dataplane/state_table.hpp"
#include "sync/pfsync_wire.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct rte_ring;

namespace syncwall::sync {

// Why the sync role refused a packet or a record, beyond the codec's own reasons.
#define SYNCWALL_SYNC_ERRORS(X)                                                                    \
    X(bad_ttl, "IP TTL is not 255")                                                                \
    X(bad_ip, "malformed Ethernet/IPv4 header or not IPv4")                                        \
    X(not_pfsync, "IPv4 protocol is not pfsync (240)")                                             \
    X(wrong_destination, "destination is neither the pfsync group nor our address")                \
    X(own_packet, "our own packet came back")                                                      \
    X(auth_missing, "no or malformed authentication trailer")                                      \
    X(auth_bad_mac, "authentication MAC does not match")                                           \
    X(auth_replay, "authentication counter replayed or too old")                                   \
    X(auth_peers_full, "authenticated sender not remembered: every replay slot is a live peer")    \
    X(insert_full, "state from a peer not inserted: state limit reached")                          \
    X(insert_collision, "state from a peer not inserted: another state has its key")               \
    X(update_unknown, "UPD_C for an unknown state (answered with UPD_REQ)")                        \
    X(delete_unknown, "DEL/DEL_C for an unknown state")                                            \
    X(request_unknown, "UPD_REQ for an unknown state")                                             \
    X(reply_limit, "UPD_REQ or INS ack not answered: too many replies owed this poll")             \
    X(bulk_limited, "UPD_REQ(0, 0) ignored: that peer started a bulk send too recently")           \
    X(bus_unexpected, "BUS start or end not expected, or from another creatorid")                  \
    X(bus_stale, "BUS end answers a request older than our latest (endtime)")                      \
    X(clear_own, "CLR naming our own creatorid (ignored)")                                         \
    X(tx_failed, "pfsync packet could not be transmitted")

SYNCWALL_REASON_LIST(SyncError, SYNCWALL_SYNC_ERRORS, sync_error_count, sync_error_names,
                     sync_error_texts)

enum class BulkStatus : uint8_t { none, requested, receiving, done, failed };
std::string_view name_of(BulkStatus s);

// Per-action message counters, indexed by Action code.
using ActionCounters = std::array<std::atomic<uint64_t>, std::size_t(Action::max_)>;

struct SyncStats {
    std::atomic<uint64_t> tx_packets{0}, tx_bytes{0}, rx_packets{0}, rx_bytes{0};
    ActionCounters sent{}, received{};
    std::array<std::atomic<uint64_t>, sync_error_count> errors{};
    std::array<std::atomic<uint64_t>, pfsync_error_count> decode_errors{};
    std::atomic<uint64_t> stale{0};     // updates that were behind our copy
    std::atomic<uint64_t> ring_full{0}; // changes not queued (caught up later)
    std::atomic<uint64_t> queued{0};    // changes queued by the lcores
    std::atomic<uint64_t> coalesced{0}; // changes folded into an already queued state
    std::atomic<uint64_t> inserted{0}, updated{0}, removed{0}; // applied from peers
    std::atomic<uint64_t> bulk_requests{0}, bulk_received_states{0}, bulk_sent_states{0};
    std::atomic<uint64_t> bulk_sends{0};
    std::atomic<uint64_t> clear_walked{0}; // list entries a CLR looked at
    std::atomic<uint64_t> max_lag_ms{0};   // longest a change waited before it was packed

    void error(SyncError e) { errors[std::size_t(e)].fetch_add(1, std::memory_order_relaxed); }
    uint64_t error_count(SyncError e) const {
        return errors[std::size_t(e)].load(std::memory_order_relaxed);
    }
    static void inc(std::atomic<uint64_t> &c, uint64_t n = 1) {
        c.fetch_add(n, std::memory_order_relaxed);
    }
};

struct SyncCoreConfig {
    std::string name = "sync"; // prefix of the rings' names (unique per process)
    uint32_t creatorid = 0;    // our hostid
    unsigned producers = 1;    // lcores that change states: writer ids 0..producers-1
    unsigned sync_writer = 1;  // the sync lcore's writer id: its changes are not news
    std::size_t mtu = 1500;    // sync port MTU (IP header included)
    uint16_t maxupd = 128;
    uint32_t interval_ms = 1000;
    uint32_t bulk_timeout_ms = 2000;
    uint32_t bulk_max_requests = 12;
    uint32_t ring_size = 4096;
    std::string auth_key; // raw key bytes; empty: no authentication
    int socket_id = 0;
};

class SyncCore : public dp::StateChangeSink {
  public:
    // Sends one pfsync packet: the IP payload (pfsync header onwards, trailer included).
    using Transmit = std::function<bool(std::span<const uint8_t> payload)>;
    // Removes a state on behalf of a peer (the Dataplane also releases the rule's count).
    using Remove = std::function<bool(uint32_t slot)>;

    // `table_now` is the state table's clock (seconds); EAL must be initialised (rings).
    SyncCore(const SyncCoreConfig &cfg, dp::StateTable &table, const dp::TimeoutTable &timeouts,
             Transmit transmit, Remove remove = {});
    ~SyncCore() override;
    SyncCore(const SyncCore &) = delete;
    SyncCore &operator=(const SyncCore &) = delete;

    // StateChangeSink: any lcore, for its own writer id.
    void state_changed(unsigned writer, uint32_t slot, uint32_t generation,
                       dp::StateChange change) override;

    // Sync lcore: drain the rings, pack and send what is due, progress the bulk transfers.
    // `now_ms` is a monotonic millisecond clock, `now_s` the state table's clock. Returns a
    // measure of work done (0: idle).
    unsigned poll(uint64_t now_ms, uint32_t now_s);
    // Sync lcore: one received pfsync packet (the IP payload). `source` is the sender's
    // IPv4 address: it names the peer for bulk rate limits when packets are not
    // authenticated (replay protection uses the hostid in the trailer, never this).
    void receive(std::span<const uint8_t> payload, uint32_t source, uint64_t now_ms,
                 uint32_t now_s);
    // Ask the peers for every state (at start, and for `sync resync`).
    void start_bulk_request(uint64_t now_ms);
    // Send everything pending now (tests, shutdown).
    void flush(uint64_t now_ms, uint32_t now_s);

    bool bulk_pending() const {
        const auto s = bulk_status();
        return s == BulkStatus::requested || s == BulkStatus::receiving;
    }
    BulkStatus bulk_status() const { return bulk_status_.load(std::memory_order_relaxed); }
    bool bulk_sending() const { return bulk_sending_.load(std::memory_order_relaxed); }
    const SyncStats &stats() const { return stats_; }
    // For the port glue: a frame refused before it reached receive().
    void count_error(SyncError e) { stats_.error(e); }
    // Changes waiting in the rings and the pending list.
    std::size_t queue_depth() const;
    // How long the oldest pending change has waited (0 when nothing is pending).
    uint64_t lag_ms(uint64_t now_ms) const;
    const SyncCoreConfig &config() const { return cfg_; }

  private:
    struct Delta; // a ring element
    class Packer;

    void drain(uint64_t now_ms);
    void pack_pending(uint64_t now_ms, uint32_t now_s);
    void pack_requests(uint32_t now_s);
    void bulk_send_step(uint32_t now_s);
    unsigned clear_step();
    void bulk_request_timer(uint64_t now_ms);
    bool add_full_state(StateAction a, uint32_t slot, uint32_t now_s);
    uint32_t remaining_of(const dp::State &s, uint32_t now_s) const;
    // Queue our copy of a state for the peers (after a stale update from them).
    void queue_ours(uint32_t slot, uint32_t generation, uint64_t now_ms);

    // receiving
    class Applier;
    // Sets *peer to the sender's hostid when authenticated.
    bool authenticate(std::span<const uint8_t> &payload, uint64_t now_ms, uint32_t *peer);
    // A bulk send for `peer` may start (rate limit); records it when it may.
    bool bulk_allowed(uint64_t peer, uint64_t now_ms);

    // Per-creator lists of the peer states this core inserted (see "CLR" above). Slot
    // arrays, sync lcore only; list 0 is "none".
    struct CreatorList {
        uint32_t head, tail, creator;
        bool clearing;
    };
    void track(uint32_t slot, uint32_t creator);
    void unlink(uint32_t slot);
    void free_list(uint32_t list);
    // The slot's state was cleared by a CLR that has not reached it yet.
    bool being_cleared(uint32_t slot) const;
    void clear_creator(uint32_t creator);

    SyncCoreConfig cfg_;
    dp::StateTable &table_;
    const dp::TimeoutTable &timeouts_;
    Transmit transmit_;
    Remove remove_;
    std::vector<rte_ring *> rings_;
    std::unique_ptr<std::atomic<uint8_t>[]> flags_;   // per slot: queued / insert pending
    std::unique_ptr<std::atomic<uint8_t>[]> updates_; // per slot: TCP updates since queued
    std::atomic<bool> urgent_{false};                 // a state reached maxupd

    struct Pending {
        uint32_t slot, generation;
    };
    struct PendingDelete {
        uint64_t id;
        uint32_t creatorid;
    };
    std::vector<Pending> pending_;
    std::vector<PendingDelete> pending_deletes_;
    std::size_t pending_inserts_ = 0;
    uint64_t pending_since_ms_ = 0;
    std::atomic<std::size_t> pending_size_{0};
    std::atomic<uint64_t> pending_since_shared_{0}; // for lag_ms() from other lcores

    // Replies owed to peers, sent on this poll.
    std::vector<PendingDelete> upd_requests_; // UPD_REQ(id, creatorid) to send
    std::vector<uint32_t> full_updates_;      // slots to send as full UPD
    std::vector<PendingDelete> ins_acks_;
    std::size_t deduped_size_ = 0; // replies_owed() at the last de-duplication
    std::size_t replies_owed() const {
        return upd_requests_.size() + full_updates_.size() + ins_acks_.size();
    }
    void dedupe_replies();
    // Room for one more reply (de-duplicating first if need be); counts reply_limit if not.
    bool reply_room();

    // The states this node applied last, by connection (a hash that is the same for both
    // directions' keys): where a connection's other state lies when it arrives, so that
    // the two go side by side (StateTable's `near`) without a table lookup per insert.
    struct RecentInsert {
        dp::StateKey key;
        uint32_t slot = dp::StateTable::no_slot;
    };
    static constexpr std::size_t recent_inserts = 1024; // 44 KB
    std::array<RecentInsert, recent_inserts> recent_{};
    // The entry of `key`'s connection: it names the twin's slot when its key is
    // twin_key(key), and takes `key`'s own state once that is in.
    RecentInsert &recent_entry(const dp::StateKey &key);

    // Bulk send (responder)
    std::atomic<bool> bulk_sending_{false};
    bool bulk_again_ = false;
    bool bulk_start_sent_ = false;
    uint32_t bulk_cursor_ = 0;
    uint32_t bulk_request_at_s_ = 0; // when the request this pass answers arrived
    uint32_t bulk_again_at_s_ = 0;   // ...and the one the next pass answers
    std::unordered_map<uint64_t, uint64_t> bulk_peers_; // peer -> last bulk start (ms)
    // Bulk request (requester)
    std::atomic<BulkStatus> bulk_status_{BulkStatus::none};
    uint32_t bulk_tries_ = 0;
    uint64_t bulk_deadline_ms_ = 0;
    uint64_t bulk_request_sent_ms_ = 0; // our latest UPD_REQ(0, 0)
    uint32_t bulk_creator_ = 0;         // whose BUS start we heard

    // Authentication
    uint64_t tx_counter_ = 0;
    struct ReplayState {
        uint64_t counter; // last accepted
        uint64_t heard_ms;
    };
    std::unordered_map<uint32_t, ReplayState> rx_counters_; // hostid -> replay state

    // CLR
    std::unique_ptr<uint32_t[]> link_next_, link_prev_, link_gen_, link_list_;
    std::vector<CreatorList> lists_;
    std::vector<uint32_t> free_lists_;
    std::unordered_map<uint32_t, uint32_t> active_lists_; // creator -> list
    std::deque<uint32_t> clearing_;                       // lists being cleared

    std::unique_ptr<Packer> packer_;
    SyncStats stats_;
};

// Authentication trailer (pure; exposed for tests): the sender's hostid (4 bytes) and a
// counter (8 bytes), both big-endian, then HMAC-SHA256(key, message || hostid || counter).
//
//   0 hostid  4 counter  12 HMAC-SHA256  44
inline constexpr std::size_t auth_trailer_len = 4 + 8 + 32;
// Replay state is kept for this many senders (hostids).
inline constexpr std::size_t max_auth_peers = 256;
// A sender silent this long may lose its replay slot to a new one; a sender not heard before
// must send a counter from this window (counters start at the sender's wall clock in ns).
inline constexpr uint64_t auth_fresh_ms = 300'000;
void auth_sign(std::string_view key, std::span<const uint8_t> message, uint32_t hostid,
               uint64_t counter, std::span<uint8_t, auth_trailer_len> trailer);
// True when `trailer` is a valid trailer of `message`; sets *hostid and *counter.
bool auth_verify(std::string_view key, std::span<const uint8_t> message,
                 std::span<const uint8_t> trailer, uint32_t *hostid, uint64_t *counter);

} // namespace syncwall::sync
