#include "sync/sync_core.hpp"

#include "dataplane/byte_order.hpp"
#include "dataplane/crc32c.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace syncwall::sync {

namespace {

constexpr uint8_t flag_queued = 1; // the slot has an entry in a ring or the pending list
constexpr uint8_t flag_insert = 2; // ...and the peers have not heard of it yet: send INS

enum class DeltaKind : uint32_t { insert, update, remove };

// Bulk transfer pacing: slots looked at and states added per poll.
constexpr uint32_t bulk_slots_per_poll = 4096;
constexpr uint32_t bulk_states_per_poll = 256;
// Ring elements taken per ring per poll.
constexpr unsigned drain_burst = 256;
// CLR: states of a cleared creator looked at per poll.
constexpr unsigned clear_per_poll = 1024;
// Replies (UPD_REQ, full UPD, INS ack) owed at most at once: a poll's worth of packets.
constexpr std::size_t max_replies = 1024;
// Peers whose last bulk start is remembered for the rate limit.
constexpr std::size_t max_bulk_peers = 64;
constexpr uint64_t auth_fresh_ns = auth_fresh_ms * 1000000ull;
constexpr uint32_t no_slot = dp::StateTable::no_slot;

uint64_t wall_ns() {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count());
}

} // namespace

std::string_view name_of(BulkStatus s) {
    switch (s) {
    case BulkStatus::none:
        return "none";
    case BulkStatus::requested:
        return "requested";
    case BulkStatus::receiving:
        return "receiving";
    case BulkStatus::done:
        return "done";
    case BulkStatus::failed:
        return "failed";
    }
    return "?";
}

// --- authentication trailer ------------------------------------------------------------

void auth_sign(std::string_view key, std::span<const uint8_t> message, uint32_t hostid,
               uint64_t counter, std::span<uint8_t, auth_trailer_len> trailer) {
    constexpr std::size_t ids = 12; // hostid and counter
    dp::store_be32(trailer.data(), hostid);
    dp::store_be64(trailer.data() + 4, counter);
    // The MAC covers message || hostid || counter; pfsync packets are at most one MTU.
    std::array<uint8_t, 9216 + ids> buf;
    const std::size_t n = std::min(message.size(), buf.size() - ids);
    std::memcpy(buf.data(), message.data(), n);
    std::memcpy(buf.data() + n, trailer.data(), ids);
    unsigned len = 32;
    HMAC(EVP_sha256(), key.data(), int(key.size()), buf.data(), n + ids, trailer.data() + ids,
         &len);
}

bool auth_verify(std::string_view key, std::span<const uint8_t> message,
                 std::span<const uint8_t> trailer, uint32_t *hostid, uint64_t *counter) {
    if (trailer.size() != auth_trailer_len) return false;
    const uint32_t h = dp::load_be32(trailer.data());
    const uint64_t c = dp::load_be64(trailer.data() + 4);
    std::array<uint8_t, auth_trailer_len> expect{};
    auth_sign(key, message, h, c, expect);
    if (CRYPTO_memcmp(expect.data() + 12, trailer.data() + 12, 32) != 0) return false;
    *hostid = h;
    *counter = c;
    return true;
}

// --- the ring element ----------------------------------------------------------------------

struct SyncCore::Delta {
    uint64_t id;        // remove: the state's id
    uint32_t creatorid; // remove: the state's creator
    uint32_t slot;
    uint32_t generation;
    uint32_t kind; // DeltaKind
};

// --- packet assembly ---------------------------------------------------------------------

// One packet being filled; sent when the next record does not fit or when poll() ends.
class SyncCore::Packer {
  public:
    explicit Packer(SyncCore &core)
        : core_(core), auth_(!core.cfg_.auth_key.empty()), buf_(core.cfg_.mtu),
          writer_(std::span<uint8_t>(buf_.data(), payload_capacity()), core.cfg_.mtu) {}

    // Capacity for the pfsync message: the MTU less the IP header and the trailer.
    std::size_t payload_capacity() const {
        const std::size_t room =
            core_.cfg_.mtu > ipv4_header_len ? core_.cfg_.mtu - ipv4_header_len : 0;
        return auth_ ? (room > auth_trailer_len ? room - auth_trailer_len : 0) : room;
    }

    // Add a record with `add(writer)`; sends the packet first if it is full.
    template <typename F> bool add(Action a, F &&add) {
        if (!add(writer_)) {
            send();
            if (!add(writer_)) return false; // larger than an empty packet: cannot happen
        }
        counts_[std::size_t(a)]++;
        return true;
    }

    bool empty() const { return writer_.empty(); }

    void send() {
        if (writer_.empty()) return;
        std::size_t len = writer_.finish();
        if (auth_) {
            core_.tx_counter_ = std::max(core_.tx_counter_ + 1, wall_ns());
            auth_sign(core_.cfg_.auth_key, {buf_.data(), len}, core_.cfg_.creatorid,
                      core_.tx_counter_,
                      std::span<uint8_t, auth_trailer_len>(buf_.data() + len, auth_trailer_len));
            len += auth_trailer_len;
        }
        auto &st = core_.stats_;
        if (core_.transmit_({buf_.data(), len})) {
            SyncStats::inc(st.tx_packets);
            SyncStats::inc(st.tx_bytes, len);
            for (std::size_t a = 0; a < counts_.size(); a++)
                if (counts_[a] != 0) SyncStats::inc(st.sent[a], counts_[a]);
        } else {
            st.error(SyncError::tx_failed);
        }
        counts_.fill(0);
        writer_.reset();
    }

  private:
    SyncCore &core_;
    bool auth_;
    std::vector<uint8_t> buf_;
    PfsyncWriter writer_;
    std::array<uint32_t, std::size_t(Action::max_)> counts_{};
};

// --- construction -------------------------------------------------------------------------

SyncCore::SyncCore(const SyncCoreConfig &cfg, dp::StateTable &table,
                   const dp::TimeoutTable &timeouts, Transmit transmit, Remove remove)
    : cfg_(cfg), table_(table), timeouts_(timeouts), transmit_(std::move(transmit)),
      remove_(std::move(remove)) {
    if (!remove_) remove_ = [this](uint32_t slot) { return table_.remove(slot, cfg_.sync_writer); };
    if (cfg_.mtu < ipv4_header_len + sizeof(PfsyncHeader) + 4 + sizeof(PfsyncState) +
                       (cfg_.auth_key.empty() ? 0 : auth_trailer_len))
        throw std::runtime_error("sync: the sync port MTU is too small for a pfsync state");
    const unsigned ring_size = rte_align32pow2(cfg_.ring_size < 64 ? 64 : cfg_.ring_size);
    rings_.assign(cfg_.producers, nullptr);
    for (unsigned w = 0; w < cfg_.producers; w++) {
        if (w == cfg_.sync_writer) continue;
        const std::string name = cfg_.name + "_d" + std::to_string(w);
        rings_[w] = rte_ring_create_elem(name.c_str(), sizeof(Delta), ring_size, cfg_.socket_id,
                                         RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (rings_[w] == nullptr)
            throw std::runtime_error("sync: cannot create delta ring " + name + ": " +
                                     rte_strerror(rte_errno));
    }
    flags_ = std::make_unique<std::atomic<uint8_t>[]>(table_.slots());
    updates_ = std::make_unique<std::atomic<uint8_t>[]>(table_.slots());
    for (uint32_t i = 0; i < table_.slots(); i++) {
        flags_[i].store(0, std::memory_order_relaxed);
        updates_[i].store(0, std::memory_order_relaxed);
    }
    link_next_ = std::make_unique<uint32_t[]>(table_.slots());
    link_prev_ = std::make_unique<uint32_t[]>(table_.slots());
    link_gen_ = std::make_unique<uint32_t[]>(table_.slots());
    link_list_ = std::make_unique<uint32_t[]>(table_.slots()); // zero: on no list
    lists_.push_back({no_slot, no_slot, 0, false});            // list 0: "none"
    packer_ = std::make_unique<Packer>(*this);
    tx_counter_ = wall_ns();
}

SyncCore::~SyncCore() {
    for (rte_ring *r : rings_)
        rte_ring_free(r);
}

// --- the sink (any lcore) --------------------------------------------------------------------

void SyncCore::state_changed(unsigned writer, uint32_t slot, uint32_t generation,
                             dp::StateChange change) {
    if (slot >= table_.slots()) return;
    // Changes the sync lcore applied for a peer are the peer's news, not ours; a slot it
    // removed starts its next life with clean flags all the same.
    if (writer >= rings_.size() || rings_[writer] == nullptr) {
        if (change == dp::StateChange::remove) {
            flags_[slot].store(0, std::memory_order_release);
            updates_[slot].store(0, std::memory_order_relaxed);
        }
        return;
    }
    std::atomic<uint8_t> &f = flags_[slot];
    Delta d{0, 0, slot, generation, 0};
    switch (change) {
    case dp::StateChange::insert: {
        const uint8_t prev = f.fetch_or(flag_queued | flag_insert, std::memory_order_acq_rel);
        if (prev & flag_queued) {
            SyncStats::inc(stats_.coalesced);
            return;
        }
        d.kind = uint32_t(DeltaKind::insert);
        break;
    }
    case dp::StateChange::update: {
        const uint8_t prev = f.fetch_or(flag_queued, std::memory_order_acq_rel);
        if (prev & flag_queued) {
            SyncStats::inc(stats_.coalesced);
            // pf counts TCP updates of a queued state and sends at once after maxupd.
            if (table_.state(slot).key.proto == dp::proto_tcp && cfg_.maxupd != 0 &&
                updates_[slot].fetch_add(1, std::memory_order_relaxed) + 1u >= cfg_.maxupd)
                urgent_.store(true, std::memory_order_relaxed);
            return;
        }
        d.kind = uint32_t(DeltaKind::update);
        break;
    }
    case dp::StateChange::remove: {
        const uint8_t prev = f.exchange(0, std::memory_order_acq_rel);
        updates_[slot].store(0, std::memory_order_relaxed);
        // Inserted and removed before the peers heard of it: say nothing.
        if ((prev & (flag_queued | flag_insert)) == (flag_queued | flag_insert)) return;
        const dp::State &s = table_.state(slot); // still locked by the remover
        if (s.state_flags & dp::state_flag::nosync) return;
        d.id = s.id;
        d.creatorid = s.creatorid;
        d.kind = uint32_t(DeltaKind::remove);
        break;
    }
    }
    if (rte_ring_enqueue_elem(rings_[writer], &d, sizeof(Delta)) != 0) {
        SyncStats::inc(stats_.ring_full);
        if (change != dp::StateChange::remove)
            f.fetch_and(uint8_t(~flag_queued), std::memory_order_acq_rel);
        return;
    }
    SyncStats::inc(stats_.queued);
}

// --- sending (sync lcore) ---------------------------------------------------------------------

void SyncCore::drain(uint64_t now_ms) {
    static_assert(sizeof(Delta) == 24 && sizeof(Delta) % 4 == 0); // rte_ring element size
    Delta burst[drain_burst];
    for (rte_ring *r : rings_) {
        if (r == nullptr) continue;
        const unsigned n =
            rte_ring_dequeue_burst_elem(r, burst, sizeof(Delta), drain_burst, nullptr);
        for (unsigned i = 0; i < n; i++) {
            const Delta &d = burst[i];
            if (pending_.empty() && pending_deletes_.empty()) pending_since_ms_ = now_ms;
            if (DeltaKind(d.kind) == DeltaKind::remove) {
                pending_deletes_.push_back({d.id, d.creatorid});
            } else {
                pending_.push_back({d.slot, d.generation});
                if (flags_[d.slot].load(std::memory_order_relaxed) & flag_insert)
                    pending_inserts_++;
            }
        }
    }
    pending_size_.store(pending_.size() + pending_deletes_.size(), std::memory_order_relaxed);
    pending_since_shared_.store(pending_size_.load(std::memory_order_relaxed) ? pending_since_ms_
                                                                              : 0,
                                std::memory_order_relaxed);
}

uint32_t SyncCore::remaining_of(const dp::State &s, uint32_t now_s) const {
    const uint32_t life = timeouts_.lifetime(s.timeout, table_.count());
    const uint32_t idle = now_s - s.expire;
    // 0 would mean "no value" to the receiver: a state about to expire says 1 s.
    return idle >= life ? 1 : life - idle;
}

bool SyncCore::add_full_state(StateAction a, uint32_t slot, uint32_t now_s) {
    dp::State copy;
    if (!table_.read(slot, copy)) return false;
    if (copy.state_flags & dp::state_flag::nosync) return false;
    dp::StateKey other;
    const bool translated = dp::translated(copy);
    if (translated && !table_.other_key(slot, other)) return false; // ended meanwhile
    const uint32_t remaining = remaining_of(copy, now_s);
    return packer_->add(Action(a), [&](PfsyncWriter &w) {
        return w.add_state(a, copy, now_s, remaining, false, translated ? &other : nullptr);
    });
}

void SyncCore::pack_pending(uint64_t now_ms, uint32_t now_s) {
    const uint64_t lag = now_ms - pending_since_ms_;
    if (lag > stats_.max_lag_ms.load(std::memory_order_relaxed))
        stats_.max_lag_ms.store(lag, std::memory_order_relaxed);
    for (const Pending &p : pending_) {
        // A slot reused since it was queued: the new state queued itself.
        if (table_.generation(p.slot) != p.generation) continue;
        const uint8_t f = flags_[p.slot].exchange(0, std::memory_order_acq_rel);
        updates_[p.slot].store(0, std::memory_order_relaxed);
        if (!(f & flag_queued)) continue; // removed meanwhile (its DEL_C, if any, is queued)
        dp::State copy;
        if (!table_.read(p.slot, copy)) continue;
        if (copy.state_flags & dp::state_flag::nosync) continue;
        if (f & flag_insert) {
            dp::StateKey other;
            const bool translated = dp::translated(copy);
            if (translated && !table_.other_key(p.slot, other)) continue; // ended meanwhile
            const uint32_t remaining = remaining_of(copy, now_s);
            packer_->add(Action::ins, [&](PfsyncWriter &w) {
                return w.add_state(StateAction::ins, copy, now_s, remaining, false,
                                   translated ? &other : nullptr);
            });
        } else {
            packer_->add(Action::upd_c, [&](PfsyncWriter &w) { return w.add_upd_c(copy); });
        }
    }
    for (const PendingDelete &d : pending_deletes_)
        packer_->add(Action::del_c,
                     [&](PfsyncWriter &w) { return w.add_del_c(d.id, d.creatorid); });
    pending_.clear();
    pending_deletes_.clear();
    pending_inserts_ = 0;
    pending_size_.store(0, std::memory_order_relaxed);
    pending_since_shared_.store(0, std::memory_order_relaxed);
    urgent_.store(false, std::memory_order_relaxed);
}

void SyncCore::dedupe_replies() {
    auto less = [](const PendingDelete &a, const PendingDelete &b) {
        return a.creatorid != b.creatorid ? a.creatorid < b.creatorid : a.id < b.id;
    };
    auto same = [](const PendingDelete &a, const PendingDelete &b) {
        return a.creatorid == b.creatorid && a.id == b.id;
    };
    for (std::vector<PendingDelete> *v : {&upd_requests_, &ins_acks_}) {
        std::sort(v->begin(), v->end(), less);
        v->erase(std::unique(v->begin(), v->end(), same), v->end());
    }
    std::sort(full_updates_.begin(), full_updates_.end());
    full_updates_.erase(std::unique(full_updates_.begin(), full_updates_.end()),
                        full_updates_.end());
    deduped_size_ = replies_owed();
}

bool SyncCore::reply_room() {
    if (replies_owed() < max_replies) return true;
    if (replies_owed() > deduped_size_) dedupe_replies();
    if (replies_owed() < max_replies) return true;
    stats_.error(SyncError::reply_limit);
    return false;
}

void SyncCore::pack_requests(uint32_t now_s) {
    // A peer that asks for one state a hundred times in a packet gets it once.
    dedupe_replies();
    deduped_size_ = 0;
    for (const PendingDelete &r : upd_requests_)
        packer_->add(Action::upd_req,
                     [&](PfsyncWriter &w) { return w.add_upd_req(r.id, r.creatorid); });
    upd_requests_.clear();
    for (const PendingDelete &r : ins_acks_)
        packer_->add(Action::ins_ack,
                     [&](PfsyncWriter &w) { return w.add_ins_ack(r.id, r.creatorid); });
    ins_acks_.clear();
    for (uint32_t slot : full_updates_)
        add_full_state(StateAction::upd, slot, now_s);
    full_updates_.clear();
}

void SyncCore::bulk_send_step(uint32_t now_s) {
    if (!bulk_sending_.load(std::memory_order_relaxed)) return;
    if (!bulk_start_sent_) {
        packer_->add(Action::bus, [&](PfsyncWriter &w) {
            return w.add_bus(BusStatus::start, cfg_.creatorid, now_s);
        });
        bulk_start_sent_ = true;
    }
    uint32_t looked = 0, added = 0;
    while (bulk_cursor_ < table_.slots() && looked < bulk_slots_per_poll &&
           added < bulk_states_per_poll) {
        if (add_full_state(StateAction::upd, bulk_cursor_, now_s)) {
            added++;
            SyncStats::inc(stats_.bulk_sent_states);
        }
        bulk_cursor_++;
        looked++;
    }
    if (bulk_cursor_ < table_.slots()) return;
    // OpenBSD's endtime: how long ago we received the request this pass answers. The
    // requester checks that this does not put the request before its latest one.
    const uint32_t elapsed = now_s >= bulk_request_at_s_ ? now_s - bulk_request_at_s_ : 0;
    packer_->add(Action::bus, [&](PfsyncWriter &w) {
        return w.add_bus(BusStatus::end, cfg_.creatorid, elapsed);
    });
    bulk_cursor_ = 0;
    bulk_start_sent_ = false;
    if (bulk_again_) { // a request came in during the transfer: send it all again
        bulk_again_ = false;
        bulk_request_at_s_ = bulk_again_at_s_;
        SyncStats::inc(stats_.bulk_sends);
        return;
    }
    bulk_sending_.store(false, std::memory_order_relaxed);
}

void SyncCore::start_bulk_request(uint64_t now_ms) {
    bulk_status_.store(BulkStatus::requested, std::memory_order_relaxed);
    bulk_tries_ = 1;
    bulk_deadline_ms_ = now_ms + cfg_.bulk_timeout_ms;
    bulk_request_sent_ms_ = now_ms;
    bulk_creator_ = 0;
    upd_requests_.push_back({0, 0});
    SyncStats::inc(stats_.bulk_requests);
}

void SyncCore::bulk_request_timer(uint64_t now_ms) {
    const BulkStatus s = bulk_status();
    if ((s != BulkStatus::requested && s != BulkStatus::receiving) || now_ms < bulk_deadline_ms_)
        return;
    if (s == BulkStatus::requested && bulk_tries_ < cfg_.bulk_max_requests) {
        bulk_tries_++;
        bulk_deadline_ms_ = now_ms + cfg_.bulk_timeout_ms;
        bulk_request_sent_ms_ = now_ms;
        upd_requests_.push_back({0, 0});
        SyncStats::inc(stats_.bulk_requests);
        return;
    }
    // Nobody answered, or the transfer stalled: stop waiting so that CARP undemotes.
    bulk_status_.store(BulkStatus::failed, std::memory_order_relaxed);
}

unsigned SyncCore::poll(uint64_t now_ms, uint32_t now_s) {
    const std::size_t before = pending_.size() + pending_deletes_.size();
    drain(now_ms);
    unsigned work = unsigned(pending_.size() + pending_deletes_.size() - before);
    bulk_request_timer(now_ms);
    if (!pending_.empty() || !pending_deletes_.empty()) {
        const std::size_t upd = pending_.size() - std::min(pending_.size(), pending_inserts_);
        const std::size_t bytes =
            sizeof(PfsyncHeader) +
            (pending_inserts_ ? 4 + pending_inserts_ * sizeof(PfsyncState) : 0) +
            (upd ? 4 + upd * sizeof(PfsyncUpdC) : 0) +
            (pending_deletes_.empty() ? 0 : 4 + pending_deletes_.size() * sizeof(PfsyncDelC));
        if (now_ms - pending_since_ms_ >= cfg_.interval_ms ||
            bytes >= packer_->payload_capacity() || urgent_.load(std::memory_order_relaxed))
            pack_pending(now_ms, now_s);
    }
    work += unsigned(replies_owed());
    pack_requests(now_s);
    work += clear_step();
    if (bulk_sending()) {
        bulk_send_step(now_s);
        work++;
    }
    if (!packer_->empty()) packer_->send();
    return work;
}

void SyncCore::flush(uint64_t now_ms, uint32_t now_s) {
    drain(now_ms);
    if (!pending_.empty() || !pending_deletes_.empty()) pack_pending(now_ms, now_s);
    pack_requests(now_s);
    packer_->send();
}

std::size_t SyncCore::queue_depth() const {
    std::size_t n = pending_size_.load(std::memory_order_relaxed);
    for (rte_ring *r : rings_)
        if (r != nullptr) n += rte_ring_count(r);
    return n;
}

uint64_t SyncCore::lag_ms(uint64_t now_ms) const {
    const uint64_t since = pending_since_shared_.load(std::memory_order_relaxed);
    return since == 0 || now_ms < since ? 0 : now_ms - since;
}

// --- receiving (sync lcore) ---------------------------------------------------------------

class SyncCore::Applier : public PfsyncHandler {
  public:
    // `peer`: who sent the packet, for the bulk rate limit.
    Applier(SyncCore &core, uint64_t now_ms, uint32_t now_s, uint64_t peer)
        : c_(core), t_(core.table_), now_ms_(now_ms), now_s_(now_s), peer_(peer) {}

    void on_clr(const PfsyncClr &clr) override {
        count(Action::clr);
        // States float: an interface name narrows nothing here.
        c_.clear_creator(clr.creatorid.get());
    }
    void on_ins_ack(const PfsyncInsAck &) override { count(Action::ins_ack); }
    void on_upd_c(const PfsyncUpdC &u) override {
        count(Action::upd_c);
        const uint32_t slot = find(u.creatorid.get(), u.id.get());
        if (slot == dp::StateTable::no_slot) {
            c_.stats_.error(SyncError::update_unknown);
            if (c_.reply_room()) c_.upd_requests_.push_back({u.id.get(), u.creatorid.get()});
            return;
        }
        merge(slot, peer_from_wire(u.src), peer_from_wire(u.dst), dp::Timeout(u.timeout));
    }
    void on_upd_req(const PfsyncUpdReq &r) override {
        count(Action::upd_req);
        if (r.id.get() == 0 && r.creatorid.get() == 0) {
            if (!c_.bulk_allowed(peer_, now_ms_)) {
                c_.stats_.error(SyncError::bulk_limited);
                return;
            }
            if (c_.bulk_sending()) {
                c_.bulk_again_ = true;
                c_.bulk_again_at_s_ = now_s_;
            } else {
                c_.bulk_sending_.store(true, std::memory_order_relaxed);
                c_.bulk_cursor_ = 0;
                c_.bulk_start_sent_ = false;
                c_.bulk_request_at_s_ = now_s_;
                SyncStats::inc(c_.stats_.bulk_sends);
            }
            return;
        }
        const uint32_t slot = find(r.creatorid.get(), r.id.get());
        if (slot == dp::StateTable::no_slot)
            c_.stats_.error(SyncError::request_unknown);
        else if (c_.reply_room())
            c_.full_updates_.push_back(slot);
    }
    void on_del(const PfsyncState &sp) override {
        count(Action::del);
        remove(sp.creatorid.get(), sp.id.get());
    }
    void on_del_c(const PfsyncDelC &d) override {
        count(Action::del_c);
        remove(d.creatorid.get(), d.id.get());
    }
    void on_bus(const PfsyncBus &b) override {
        count(Action::bus);
        const BulkStatus s = c_.bulk_status();
        if (s != BulkStatus::requested && s != BulkStatus::receiving) return; // not waiting
        const uint32_t creator = b.creatorid.get();
        if (b.status == uint8_t(BusStatus::start)) {
            if (s == BulkStatus::requested) {
                c_.bulk_status_.store(BulkStatus::receiving, std::memory_order_relaxed);
                c_.bulk_creator_ = creator;
            } else if (creator != c_.bulk_creator_) {
                c_.stats_.error(SyncError::bus_unexpected);
                return;
            }
            c_.bulk_deadline_ms_ = now_ms_ + stall_ms();
        } else if (b.status == uint8_t(BusStatus::end)) {
            if (s != BulkStatus::receiving || creator != c_.bulk_creator_) {
                c_.stats_.error(SyncError::bus_unexpected);
                return;
            }
            // OpenBSD: now - endtime must not be before we sent our request. In whole
            // seconds, rounded in the sender's favour as its clock reads whole seconds too.
            const uint64_t since_ms =
                now_ms_ >= c_.bulk_request_sent_ms_ ? now_ms_ - c_.bulk_request_sent_ms_ : 0;
            if (uint64_t(b.endtime.get()) > (since_ms + 999) / 1000) {
                c_.stats_.error(SyncError::bus_stale);
                return;
            }
            c_.bulk_status_.store(BulkStatus::done, std::memory_order_relaxed);
        }
    }
    void on_ins(const PfsyncState &sp) override {
        count(Action::ins);
        full(sp, true);
    }
    void on_upd(const PfsyncState &sp) override {
        count(Action::upd);
        full(sp, false);
    }

  private:
    // A bulk transfer that makes no progress for this long has failed.
    uint64_t stall_ms() const { return std::max<uint64_t>(4000, 2ull * c_.cfg_.bulk_timeout_ms); }

    void count(Action a) { SyncStats::inc(c_.stats_.received[std::size_t(a)]); }

    // The slot of (creator, id), or no_slot. A state that a CLR heard earlier has yet to
    // reach is removed now, before what came after the CLR is applied to it.
    uint32_t find(uint32_t creator, uint64_t id) {
        const uint32_t slot = t_.lookup_id(creator, id);
        if (slot == dp::StateTable::no_slot || !c_.being_cleared(slot)) return slot;
        c_.unlink(slot);
        if (c_.remove_(slot)) SyncStats::inc(c_.stats_.removed);
        return dp::StateTable::no_slot;
    }

    void remove(uint32_t creator, uint64_t id) {
        const uint32_t slot = find(creator, id);
        if (slot != dp::StateTable::no_slot && c_.remove_(slot))
            SyncStats::inc(c_.stats_.removed);
        else
            c_.stats_.error(SyncError::delete_unknown);
    }

    // pfsync_upd_tcp: copy the message's peers where they are not behind ours.
    void merge(uint32_t slot, const dp::TcpPeer &src, const dp::TcpPeer &dst, dp::Timeout timeout) {
        if (!t_.lock(slot)) return;
        dp::State &s = t_.state(slot);
        const Staleness st = stale_update(s.key.proto, s.src, s.dst, src, dst);
        if (!st.src) s.src = src;
        if (!st.dst) s.dst = dst;
        if (st.refresh_expire()) {
            s.expire = now_s_;
            s.timeout = timeout;
        }
        const uint32_t generation = t_.generation(slot);
        t_.unlock(slot);
        SyncStats::inc(c_.stats_.updated);
        if (st.send_ours_back()) {
            SyncStats::inc(c_.stats_.stale);
            c_.queue_ours(slot, generation, now_ms_);
        }
    }

    void full(const PfsyncState &sp, bool is_ins) {
        if (c_.bulk_status() == BulkStatus::receiving) {
            SyncStats::inc(c_.stats_.bulk_received_states);
            c_.bulk_deadline_ms_ = now_ms_ + stall_ms();
        }
        ImportedState imp;
        if (const PfsyncError e = import_state(sp, imp); e != PfsyncError::none) {
            SyncStats::inc(c_.stats_.decode_errors[std::size_t(e)]);
            return;
        }
        if (imp.ack_requested && is_ins && c_.reply_room())
            c_.ins_acks_.push_back({imp.state.id, imp.state.creatorid});
        const uint32_t slot = find(imp.state.creatorid, imp.state.id);
        if (slot != dp::StateTable::no_slot) {
            merge(slot, imp.state.src, imp.state.dst, imp.state.timeout);
            return;
        }
        dp::State s = imp.state;
        const StateTimes times = imported_times(now_s_, imp.age, imp.remaining,
                                                c_.timeouts_.lifetime(s.timeout, t_.count()));
        s.creation = times.creation;
        s.expire = times.expire;
        s.rule = dp::no_rule; // bound to the default rule, as pf binds synced states
        s.iface = dp::floating_iface;
        s.origin = dp::state_origin::peer;
        uint32_t new_slot;
        // The connection's state in the other direction, if it came a little before (the
        // peer's worker made both from one packet, and its changes go out in order): this
        // one goes beside it, as a worker places twins, so that the fast path after a
        // failover finds them in one page. Translated states' twins have other keys: placed
        // as any state.
        // The entry may be stale (that state gone, its slot reused): `near` is only a place.
        RecentInsert *recent = imp.translated ? nullptr : &c_.recent_entry(s.key);
        const uint32_t near = recent != nullptr && recent->key == dp::twin_key(s.key)
                                  ? recent->slot
                                  : dp::StateTable::no_slot;
        // A translated state comes with both keys, and both find it here too.
        switch (t_.insert(s, c_.cfg_.sync_writer, &new_slot, imp.translated ? &imp.other : nullptr,
                          nullptr, near)) {
        case dp::StateTable::InsertResult::ok:
            SyncStats::inc(c_.stats_.inserted);
            c_.track(new_slot, s.creatorid);
            if (recent != nullptr) *recent = {s.key, new_slot};
            break;
        case dp::StateTable::InsertResult::exists:
            c_.stats_.error(SyncError::insert_collision);
            break;
        case dp::StateTable::InsertResult::full:
            c_.stats_.error(SyncError::insert_full);
            break;
        }
    }

    SyncCore &c_;
    dp::StateTable &t_;
    uint64_t now_ms_;
    uint32_t now_s_;
    uint64_t peer_;
};

namespace {

// The same for a key and its twin_key(): each side's address and port hashed, combined
// without regard to order.
uint32_t connection_hash(const dp::StateKey &k) {
    return dp::crc32c<16>(k.addr[0].data(), k.port[0]) ^
           dp::crc32c<16>(k.addr[1].data(), k.port[1]) ^ k.proto;
}

} // namespace

SyncCore::RecentInsert &SyncCore::recent_entry(const dp::StateKey &key) {
    return recent_[connection_hash(key) % recent_inserts];
}

void SyncCore::queue_ours(uint32_t slot, uint32_t generation, uint64_t now_ms) {
    const uint8_t prev = flags_[slot].fetch_or(flag_queued, std::memory_order_acq_rel);
    if (prev & flag_queued) return; // already on its way
    if (pending_.empty() && pending_deletes_.empty()) pending_since_ms_ = now_ms;
    pending_.push_back({slot, generation});
}

bool SyncCore::authenticate(std::span<const uint8_t> &payload, uint64_t now_ms, uint32_t *peer) {
    if (cfg_.auth_key.empty()) return true;
    if (payload.size() < sizeof(PfsyncHeader) + auth_trailer_len) {
        stats_.error(SyncError::auth_missing);
        return false;
    }
    const std::size_t len = dp::load_be16(payload.data() + 2);
    if (len + auth_trailer_len != payload.size()) {
        stats_.error(SyncError::auth_missing);
        return false;
    }
    uint32_t hostid = 0;
    uint64_t counter = 0;
    if (!auth_verify(cfg_.auth_key, payload.first(len), payload.subspan(len), &hostid, &counter)) {
        stats_.error(SyncError::auth_bad_mac);
        return false;
    }
    if (hostid == cfg_.creatorid) { // ours, sent back from elsewhere
        stats_.error(SyncError::own_packet);
        return false;
    }
    auto it = rx_counters_.find(hostid);
    if (it != rx_counters_.end()) {
        if (counter <= it->second.counter) {
            stats_.error(SyncError::auth_replay);
            return false;
        }
        it->second = {counter, now_ms};
    } else {
        if (counter + auth_fresh_ns < wall_ns()) {
            stats_.error(SyncError::auth_replay);
            return false;
        }
        if (rx_counters_.size() >= max_auth_peers) {
            // Only a peer silent for auth_fresh_ms gives its place up: its old packets are
            // too old to be taken from a stranger by then.
            auto oldest = std::min_element(
                rx_counters_.begin(), rx_counters_.end(),
                [](const auto &a, const auto &b) { return a.second.heard_ms < b.second.heard_ms; });
            if (now_ms - oldest->second.heard_ms < auth_fresh_ms) {
                stats_.error(SyncError::auth_peers_full);
                return false;
            }
            rx_counters_.erase(oldest);
        }
        rx_counters_.emplace(hostid, ReplayState{counter, now_ms});
    }
    *peer = hostid;
    payload = payload.first(len);
    return true;
}

bool SyncCore::bulk_allowed(uint64_t peer, uint64_t now_ms) {
    auto recent = [&](uint64_t at) { return now_ms >= at && now_ms - at < cfg_.bulk_timeout_ms; };
    auto it = bulk_peers_.find(peer);
    if (it != bulk_peers_.end()) {
        if (recent(it->second)) return false;
        it->second = now_ms;
        return true;
    }
    if (bulk_peers_.size() >= max_bulk_peers) {
        std::erase_if(bulk_peers_, [&](const auto &e) { return !recent(e.second); });
        if (bulk_peers_.size() >= max_bulk_peers) return false;
    }
    bulk_peers_.emplace(peer, now_ms);
    return true;
}

// --- CLR: per-creator lists ------------------------------------------------------------------

void SyncCore::track(uint32_t slot, uint32_t creator) {
    if (slot >= table_.slots()) return;
    unlink(slot); // its previous life's entry
    uint32_t l;
    if (auto it = active_lists_.find(creator); it != active_lists_.end()) {
        l = it->second;
    } else {
        if (free_lists_.empty()) {
            l = uint32_t(lists_.size());
            lists_.push_back({});
        } else {
            l = free_lists_.back();
            free_lists_.pop_back();
        }
        lists_[l] = {no_slot, no_slot, creator, false};
        active_lists_.emplace(creator, l);
    }
    CreatorList &list = lists_[l];
    link_prev_[slot] = list.tail;
    link_next_[slot] = no_slot;
    if (list.tail != no_slot)
        link_next_[list.tail] = slot;
    else
        list.head = slot;
    list.tail = slot;
    link_list_[slot] = l;
    link_gen_[slot] = table_.generation(slot);
}

void SyncCore::unlink(uint32_t slot) {
    const uint32_t l = link_list_[slot];
    if (l == 0) return;
    CreatorList &list = lists_[l];
    const uint32_t prev = link_prev_[slot], next = link_next_[slot];
    if (prev != no_slot)
        link_next_[prev] = next;
    else
        list.head = next;
    if (next != no_slot)
        link_prev_[next] = prev;
    else
        list.tail = prev;
    link_list_[slot] = 0;
    // An emptied list being cleared is let go by clear_step(), which holds it in clearing_.
    if (list.head == no_slot && !list.clearing) {
        active_lists_.erase(list.creator);
        free_list(l);
    }
}

void SyncCore::free_list(uint32_t l) {
    lists_[l] = {no_slot, no_slot, 0, false};
    free_lists_.push_back(l);
}

bool SyncCore::being_cleared(uint32_t slot) const {
    const uint32_t l = link_list_[slot];
    return l != 0 && lists_[l].clearing && link_gen_[slot] == table_.generation(slot);
}

void SyncCore::clear_creator(uint32_t creator) {
    if (creator == cfg_.creatorid) { // pf's CLR names its sender's states, never ours
        stats_.error(SyncError::clear_own);
        return;
    }
    auto it = active_lists_.find(creator);
    if (it == active_lists_.end()) return; // nothing of that creator's: O(1)
    const uint32_t l = it->second;
    active_lists_.erase(it);
    lists_[l].clearing = true;
    clearing_.push_back(l);
}

unsigned SyncCore::clear_step() {
    unsigned walked = 0;
    while (walked < clear_per_poll && !clearing_.empty()) {
        const uint32_t l = clearing_.front();
        const uint32_t slot = lists_[l].head;
        if (slot == no_slot) {
            clearing_.pop_front();
            free_list(l);
            continue;
        }
        const uint32_t creator = lists_[l].creator;
        // An entry whose slot was reused since (by a worker, say) is a previous life's.
        const uint32_t life = link_gen_[slot];
        unlink(slot);
        walked++;
        dp::State copy;
        uint32_t gen = 0;
        if (!table_.read(slot, copy, &gen) || gen != life) continue;
        if (copy.creatorid == creator && remove_(slot)) SyncStats::inc(stats_.removed);
    }
    if (walked != 0) SyncStats::inc(stats_.clear_walked, walked);
    return walked;
}

void SyncCore::receive(std::span<const uint8_t> payload, uint32_t source, uint64_t now_ms,
                       uint32_t now_s) {
    SyncStats::inc(stats_.rx_packets);
    SyncStats::inc(stats_.rx_bytes, payload.size());
    uint32_t hostid = 0;
    if (!authenticate(payload, now_ms, &hostid)) return;
    // The peer a bulk send is rate limited for: what the MAC vouches for, or else the address.
    const uint64_t peer = cfg_.auth_key.empty() ? uint64_t(source) : (uint64_t(1) << 32) | hostid;
    Applier applier(*this, now_ms, now_s, peer);
    DecodeStats ds;
    decode(payload, applier, ds);
    for (std::size_t e = 1; e < pfsync_error_count; e++)
        if (ds.errors[e] != 0) SyncStats::inc(stats_.decode_errors[e], ds.errors[e]);
}

} // namespace syncwall::sync
