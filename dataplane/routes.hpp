// The routing table: connected, local and static routes in rte_fib (IPv4) and rte_fib6.
//
// Theory of operation: built once on the main lcore from the Config (before workers start,
// and again beside the running one on a reload); workers then only look up, in bursts.
// A lookup yields a next-hop id; id 0 means "no route". Our own addresses are /32 (/128)
// routes of kind `local`, so one lookup tells a worker whether to forward or punt.
#pragma once

#include "config/config.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct rte_fib;
struct rte_fib6;

namespace syncwall::dp {

struct NextHop {
    enum class Kind : uint8_t { none, local, forward };
    Kind kind = Kind::none;
    uint16_t port = 0;         // egress port (forward) or the owning port (local)
    bool has_gateway = false;  // false: the destination itself is on-link
    config::IpAddress gateway; // valid when has_gateway
};

// Which port each interface is, as the route builder needs it.
struct RoutedInterface {
    std::string name;
    uint16_t port = 0;
    std::vector<config::IpPrefix> addresses;
    // CARP virtual addresses on this interface: local host routes like our own addresses
    // (traffic to them is for us whichever node is master), but their prefixes add no
    // connected network of their own.
    std::vector<config::IpAddress> virtual_addresses;
};

class RouteTable {
  public:
    using NextHopId = uint64_t;
    static constexpr NextHopId no_route = 0;

    // Build from the configured interfaces and routes. `name` must be unique per process
    // (rte_fib objects are named). Throws std::runtime_error naming the offending route.
    RouteTable(const std::string &name, const std::vector<RoutedInterface> &ifaces,
               const std::vector<config::RouteConfig> &routes, int socket_id);
    ~RouteTable();
    RouteTable(const RouteTable &) = delete;
    RouteTable &operator=(const RouteTable &) = delete;

    // Bulk lookups. IPv4 addresses in host byte order (rte_fib's convention).
    void lookup4(const uint32_t *ips, NextHopId *out, unsigned n) const;
    void lookup6(const uint8_t (*ips)[16], NextHopId *out, unsigned n) const;
    NextHopId lookup(const config::IpAddress &a) const;

    const NextHop &next_hop(NextHopId id) const {
        // The count kept beside the vector: its size() is a division by sizeof(NextHop).
        return next_hops_[id < next_hop_count_ ? id : 0];
    }
    std::size_t size() const { return next_hops_.size() - 1; }

    // The routes as installed, for the management API: prefix and next-hop id.
    struct Entry {
        config::IpPrefix prefix;
        NextHopId nh;
    };
    const std::vector<Entry> &entries() const { return entries_; }

  private:
    NextHopId add_next_hop(const NextHop &nh);
    void add(const config::IpPrefix &prefix, NextHopId nh, const std::string &what);

    rte_fib *fib4_ = nullptr;
    rte_fib6 *fib6_ = nullptr;
    std::vector<NextHop> next_hops_;
    std::size_t next_hop_count_ = 0; // next_hops_.size()
    std::vector<Entry> entries_;
};

} // namespace syncwall::dp
