// The slow path on the main lcore: everything the workers punt.
//
// Theory of operation: ControlLoop calls drain() whenever it runs; drain() dequeues the
// workers' punt rings (single consumer: only the main lcore calls it) and
//   * answers ARP requests and IPv6 neighbour solicitations for our addresses and learns
//     neighbours from ARP/ND (the only writer of the NeighbourTable);
//   * answers ICMP/ICMPv6 echo requests to our addresses;
//   * holds packets whose next hop is unresolved in a bounded per-neighbour queue, asks
//     for the neighbour (ARP request / NS, retried once a second, three times), and sends
//     the queue once the answer comes, or drops it counted; all queues together hold at
//     most a quarter of the mbuf pool (neighbour_hold_full), so that a burst to unused
//     addresses never takes the mbufs the ports need;
//   * learns from an unsolicited ARP reply or Neighbor Advertisement only for a neighbour
//     it knows or is resolving, and (RFC 4861 7.2.5) lets an NA without the Override flag
//     change no known neighbour's address;
//   * sends ICMP time-exceeded and fragmentation-needed / packet-too-big errors, rate
//     limited.
// Frames it builds leave through Dataplane::send_from_main.
#pragma once

#include "config/pf_rule.hpp"
#include "control/slowpath/replies.hpp"
#include "dataplane/dataplane.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>

struct rte_mbuf;

namespace syncwall::ctl {

class SlowPath {
  public:
    using Clock = std::chrono::steady_clock;

    explicit SlowPath(dp::Dataplane &dp);
    ~SlowPath();

    // Handle everything waiting on the punt rings; returns the number of packets.
    unsigned drain(Clock::time_point now);
    // Retry or give up on pending resolutions; call about every 100 ms.
    void tick(Clock::time_point now);

    // Route and send an IP packet the main lcore built or turned around. `m` holds an
    // Ethernet header (addresses to be filled) followed by the IP packet.
    void send_ip(rte_mbuf *m, uint8_t family, const uint8_t *dst, Clock::time_point now);

    // A handler for link-local multicast (CARP adverts and the like) that other parts of
    // the control plane install; returns true if it consumed the packet.
    using MulticastHandler = std::function<bool(rte_mbuf *, const dp::PacketDesc &, uint16_t)>;
    void set_multicast_handler(MulticastHandler h) { multicast_handler_ = std::move(h); }

    // Who owns a CARP virtual address (installed by Carp): on `port`, is `addr` a virtual
    // address, and is this node its MASTER (then `mac` is the virtual MAC to answer with)?
    struct VirtualOwner {
        bool is_virtual = false;
        bool master = false;
        Mac mac{};
    };
    using VirtualAddressLookup =
        std::function<VirtualOwner(uint16_t port, uint8_t family, const uint8_t *addr)>;
    void set_virtual_address_lookup(VirtualAddressLookup f) { virtual_owner_ = std::move(f); }

    uint64_t pending_packets() const { return held_; }
    // Most packets held for resolution at once, all neighbours together.
    uint64_t max_held() const { return max_held_; }

  private:
    struct Pending {
        std::deque<rte_mbuf *> packets;
        Clock::time_point last_request{};
        unsigned requests = 0;
    };

    void handle(rte_mbuf *m, Clock::time_point now);
    void handle_arp(rte_mbuf *m, const dp::PacketDesc &d, uint16_t port, Clock::time_point now);
    void handle_local(rte_mbuf *m, const dp::PacketDesc &d, uint16_t port, Clock::time_point now);
    void handle_nd(rte_mbuf *m, const dp::PacketDesc &d, uint16_t port, Clock::time_point now);
    void block_return(rte_mbuf *m, const dp::PacketDesc &d, uint16_t port,
                      config::BlockPolicy policy, Clock::time_point now);
    void send_icmp_error(rte_mbuf *m, const dp::PacketDesc &d, uint16_t port, uint8_t type,
                         uint8_t code, uint32_t extra, Clock::time_point now);
    void learn(const dp::NeighbourKey &key, const Mac &mac, Clock::time_point now);
    void hold(const dp::NeighbourKey &key, rte_mbuf *m, Clock::time_point now);
    void request(const dp::NeighbourKey &key);
    void finish_and_send(rte_mbuf *m, uint16_t port, const Mac &dst);
    bool source_address(uint16_t port, uint8_t family, uint8_t *out) const;
    bool icmp_rate_ok(Clock::time_point now);
    void drop(rte_mbuf *m, dp::DropReason r);
    VirtualOwner virtual_owner(uint16_t port, uint8_t family, const uint8_t *addr) const {
        return virtual_owner_ ? virtual_owner_(port, family, addr) : VirtualOwner{};
    }

    dp::Dataplane &dp_;
    dp::LcoreCounters &ctr_;
    std::map<std::array<uint8_t, sizeof(dp::NeighbourKey)>, std::pair<dp::NeighbourKey, Pending>>
        pending_;
    MulticastHandler multicast_handler_;
    VirtualAddressLookup virtual_owner_;
    // Token bucket for generated ICMP errors (RFC 1812 asks routers to rate-limit them).
    double icmp_tokens_ = 100;
    Clock::time_point icmp_refill_{};
    uint16_t ip_id_ = 1;
    uint64_t held_ = 0;     // packets in pending_, all neighbours
    uint64_t max_held_ = 0; // a quarter of the mbuf pool
};

} // namespace syncwall::ctl
