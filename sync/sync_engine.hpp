// The sync role on the dedicated sync port: SyncCore (sync_core.hpp) plus its EAL glue.
//
// Theory of operation: app/main builds one SyncEngine when `sync:` is configured, after the
// Dataplane. It attaches the core as the state table's change sink, owns rx/tx queue 0 of the
// sync port (no worker polls that port, so the data ports never see pfsync and the sync port
// carries nothing else), and frames the core's packets as IPv4 protocol 240, TTL 255, from
// the sync interface's first IPv4 address to 224.0.0.240 (MAC 01:00:5e:00:00:f0) or to the
// unicast `sync.peer`, whose MAC it learns by ARP (it also answers ARP for its own address).
// Received frames pass the transport checks here (IPv4, protocol 240, TTL 255, addressed to
// the group or to us, not our own) before the core decodes them; every refusal is counted.
// It runs either on its own lcore (lcores.sync != lcores.main: run()) or inside the main
// lcore's loop (poll_once()). It is the state table's RCU reader number W (workers are
// 0..W-1) and reports a quiescent state once per poll.
#pragma once

#include "dataplane/dataplane.hpp"
#include "sync/sync_core.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace syncwall::sync {

class SyncEngine {
  public:
    explicit SyncEngine(dp::Dataplane &dp); // throws when the sync port cannot be used
    ~SyncEngine();
    SyncEngine(const SyncEngine &) = delete;
    SyncEngine &operator=(const SyncEngine &) = delete;

    // Sync lcore (or main lcore when shared): ask the peers for their states.
    void start();
    // One pass: receive, drain, pack, send. Returns work done (0: idle).
    unsigned poll_once();
    // Poll until dp.stopping (a dedicated lcore), with the configured idle policy.
    void run();
    // Send what is pending (on the polling lcore, after the loop stopped).
    void finish();

    // Any lcore: force a bulk update (`sync resync`), taken up by the next poll.
    void request_resync() { resync_.store(true, std::memory_order_relaxed); }
    bool bulk_pending() const { return started_.load() && core_->bulk_pending(); }

    const SyncCore &core() const { return *core_; }
    std::string interface() const;
    std::string destination() const; // "224.0.0.240" or the peer's address
    bool peer_resolved() const { return peer_mac_known_.load(std::memory_order_relaxed); }
    uint64_t now_ms() const;

  private:
    bool transmit(std::span<const uint8_t> payload);
    void handle_frame(std::span<const uint8_t> frame, uint64_t now_ms);
    void arp_for_peer(uint64_t now_ms);
    bool send_arp(uint16_t op, const std::array<uint8_t, 6> &tha,
                  const std::array<uint8_t, 4> &tpa);
    bool send_frame(const std::array<uint8_t, 6> &dst, uint16_t ether_type,
                    std::span<const uint8_t> l3);

    dp::Dataplane &dp_;
    const dp::Port &port_;
    std::unique_ptr<SyncCore> core_;
    std::array<uint8_t, 4> our_addr_{};
    std::array<uint8_t, 4> dst_addr_{}; // group or peer
    bool unicast_ = false;
    std::array<uint8_t, 6> dst_mac_{};
    std::atomic<bool> peer_mac_known_{false};
    uint64_t next_arp_ms_ = 0;
    uint16_t ip_id_ = 0;
    std::atomic<bool> resync_{false};
    std::atomic<bool> started_{false};
    uint64_t tsc_hz_ = 1;
};

} // namespace syncwall::sync
