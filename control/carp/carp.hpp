// CARP in the running process: the vhids of the config, on the main lcore.
//
// Theory of operation: ControlLoop owns one Carp (inert when the config has no `carp`
// vhosts) and calls start() when the ports are up. Carp owns one CarpVhost (the pure state
// machine, carp_vhost.hpp) per configured vhid and does its I/O on the ControlLoop's
// io_context, so everything here runs on the main lcore and needs no lock:
//   * a steady_timer per vhid, re-armed after every call for CarpVhost::next_deadline();
//   * adverts, gratuitous ARPs and unsolicited NAs are built into mbufs here and queued
//     with Dataplane::send_from_main (worker 0 puts them on the wire);
//   * received adverts, IPv4 protocol 112 and IPv6 next header 112 alike, reach
//     handle_multicast() through SlowPath's multicast hook (workers punt every multicast
//     frame, 01:00:5e:00:00:12 and 33:33:00:00:00:12 among them); TTL or hop limit,
//     length, checksum, vhid, version, type, HMAC and loops are checked by
//     CarpVhost::validate, every rejection counted by reason;
//   * the role goes where the workers and the slow path look: the per-port virtual-MAC
//     bitmap (dataplane/virtual_mac.hpp: frames to the virtual MAC are forwarded only by
//     the master) and owner(), through which the slow path answers ARP/ND for a virtual
//     address only as master, with the virtual MAC;
//   * a 100 ms timer polls the links of the vhids' interfaces and of carp.tracked: a vhid
//     whose own link is down goes to INIT (it could send nothing), and a tracked link down
//     demotes every vhid of the node.
//
// Demotion is one counter per node, the sum of named reasons: tracked links down (240
// each, FreeBSD's ifdown factor, so that peers comparing only advskew react as well),
// "pfsync bulk update pending" (32, as OpenBSD's pfsync), and the operator's (`carp
// demote N`). CarpVhost sends it in the demote byte and adds it to the advertised advskew.
//
// Families, as OpenBSD: a vhid advertises to 224.0.0.18 when it has IPv4 virtual addresses
// and to ff02::12 when it has IPv6 ones (both when it has both: two frames per advert, the
// same CARP bytes), from the sources carp_advert_sources() picks (the port's first IPv4
// address; a link-local IPv6 address of the port). One state machine per vhid: an advert
// of either family restarts its master-down timer or wins an election.
#pragma once

#include "config/config.hpp"
#include "control/carp/carp_vhost.hpp"
#include "control/slowpath/slow_path.hpp"
#include "dataplane/dataplane.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

struct rte_mbuf;

namespace syncwall::ctl {

// What `show carp` reports, as plain values (mgmt_server.cpp makes the result of them).
struct CarpVhidStatus {
    uint8_t vhid = 0;
    std::string interface;
    CarpRole role = CarpRole::init;
    unsigned advbase = 0, advskew = 0;
    unsigned effective_advskew = 0; // advskew + demotion, as advertised
    double advert_interval_ms = 0, master_down_ms = 0;
    unsigned demote = 0; // the demote byte advertised
    std::vector<std::string> addresses;
    uint64_t transitions = 0;
    std::string last_reason;
    uint64_t adverts_sent = 0, adverts_received = 0;
    std::array<uint64_t, carp_drop_count> adverts_rejected{};
    // Per family (0 IPv4, 1 IPv6): the advert source ("" when the vhid has no address of
    // that family), adverts sent and received.
    std::array<std::string, 2> source;
    std::array<uint64_t, 2> sent_by_family{}, received_by_family{};
};

struct CarpStatus {
    bool configured = false;
    bool preempt = false;
    unsigned demotion = 0;
    std::vector<std::pair<std::string, unsigned>> demotion_reasons; // in order added
    std::vector<CarpVhidStatus> vhids;
};

class Carp {
  public:
    using Clock = CarpVhost::Clock;

    // What each cause adds to the node's demotion.
    static constexpr unsigned tracked_link_demotion = 240;
    static constexpr unsigned bulk_pending_demotion = 32;
    static constexpr const char *bulk_pending_reason = "pfsync bulk update pending";

    // Installs the multicast and virtual-address hooks on `slow`. Sends nothing yet.
    Carp(boost::asio::io_context &io, dp::Dataplane &dp, SlowPath &slow);
    ~Carp();
    Carp(const Carp &) = delete;
    Carp &operator=(const Carp &) = delete;

    // True when the config has at least one vhost.
    bool configured() const { return !vhosts_.empty(); }

    // Ports started: read the links, INIT -> BACKUP for every vhid whose link is up.
    void start();
    // Graceful stop: every MASTER vhid sends the bow-out advert (queued on the control tx
    // rings: the caller lets the workers drain them before stopping them); all go to INIT.
    void stop();

    // The pfsync hook: adds (pending) or removes a demotion of 32, reason
    // "pfsync bulk update pending". Idempotent; callable before start().
    void set_sync_bulk_pending(bool pending);
    // Operator demotion: `carp demote N` adds N (OpenBSD's carpdemote), `carp promote`
    // removes all of it.
    void demote(unsigned n);
    void promote();
    unsigned demotion() const;

    // What show carp reports.
    CarpStatus status() const;

    // SlowPath's multicast hook: consumes CARP (IPv4 proto 112) on a port with vhids.
    bool handle_multicast(rte_mbuf *m, const dp::PacketDesc &d, uint16_t port);
    // SlowPath's virtual-address lookup.
    SlowPath::VirtualOwner owner(uint16_t port, uint8_t family, const uint8_t *addr) const;

  private:
    struct Vhost;

    void apply(Vhost &v, const CarpActions &a);
    void arm(Vhost &v);
    void send_advert(Vhost &v, const CarpAdvert &ad);
    void announce(const Vhost &v);
    void poll_links();
    void arm_link_poll();
    void set_reason(const std::string &reason, unsigned value);
    void demotion_changed();

    boost::asio::io_context &io_;
    dp::Dataplane &dp_;
    SlowPath &slow_;
    bool preempt_ = false;
    std::vector<std::unique_ptr<Vhost>> vhosts_;
    std::vector<uint16_t> tracked_;                         // port indices of carp.tracked
    std::vector<uint16_t> watched_;                         // every port whose link is polled
    std::vector<int8_t> link_;                              // per port: 1 up, 0 down, -1 unknown
    std::vector<std::pair<std::string, unsigned>> reasons_; // demotion, in order added
    boost::asio::steady_timer link_timer_;
    bool started_ = false;
    uint16_t ip_id_ = 1;
};

} // namespace syncwall::ctl
