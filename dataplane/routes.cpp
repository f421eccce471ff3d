#include "dataplane/routes.hpp"

#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_fib6.h>

#include <stdexcept>

namespace syncwall::dp {

using config::IpAddress;
using config::IpPrefix;

namespace {

bool contains(const IpPrefix &p, const IpAddress &a) {
    if (p.addr.family != a.family) return false;
    for (unsigned i = 0; i < p.length; i++) {
        const uint8_t bit = uint8_t(0x80u >> (i % 8));
        if ((p.addr.bytes[i / 8] & bit) != (a.bytes[i / 8] & bit)) return false;
    }
    return true;
}

IpPrefix host_prefix(const IpAddress &a) {
    return IpPrefix{a, uint8_t(a.is_v4() ? 32 : 128)};
}

} // namespace

RouteTable::RouteTable(const std::string &name, const std::vector<RoutedInterface> &ifaces,
                       const std::vector<config::RouteConfig> &routes, int socket_id) {
    add_next_hop(NextHop{}); // id 0: no route

    const int max_routes = int(routes.size() + 4 * 64 + 64);
    rte_fib_conf c4{};
    c4.type = RTE_FIB_DIR24_8;
    c4.default_nh = no_route;
    c4.max_routes = max_routes;
    c4.dir24_8.nh_sz = RTE_FIB_DIR24_8_2B;
    c4.dir24_8.num_tbl8 = 256;
    fib4_ = rte_fib_create((name + "4").c_str(), socket_id, &c4);
    if (fib4_ == nullptr)
        throw std::runtime_error(
            "cannot create IPv4 FIB (32 MiB): " + std::string(rte_strerror(rte_errno)) +
            " (raise -m in dpdk.eal_args)");

    rte_fib6_conf c6{};
    c6.type = RTE_FIB6_TRIE;
    c6.default_nh = no_route;
    c6.max_routes = max_routes;
    c6.trie.nh_sz = RTE_FIB6_TRIE_2B;
    c6.trie.num_tbl8 = 256;
    fib6_ = rte_fib6_create((name + "6").c_str(), socket_id, &c6);
    if (fib6_ == nullptr) {
        rte_fib_free(fib4_);
        throw std::runtime_error(
            "cannot create IPv6 FIB (32 MiB): " + std::string(rte_strerror(rte_errno)) +
            " (raise -m in dpdk.eal_args)");
    }

    try {
        // Connected networks first, then our own addresses (longer, so they win).
        for (const auto &ifc : ifaces) {
            for (const auto &a : ifc.addresses) {
                NextHop nh{NextHop::Kind::forward, ifc.port, false, {}};
                add(network_of(a), add_next_hop(nh), "connected network of " + ifc.name);
            }
        }
        for (const auto &ifc : ifaces) {
            for (const auto &a : ifc.addresses) {
                NextHop nh{NextHop::Kind::local, ifc.port, false, {}};
                add(host_prefix(a.addr), add_next_hop(nh), "address of " + ifc.name);
            }
            for (const auto &a : ifc.virtual_addresses) {
                NextHop nh{NextHop::Kind::local, ifc.port, false, {}};
                add(host_prefix(a), add_next_hop(nh), "CARP address of " + ifc.name);
            }
        }
        for (const auto &r : routes) {
            const std::string where = r.pos.to_string() + ": route " + r.to.to_string();
            NextHop nh{NextHop::Kind::forward, 0, r.via.has_value(), r.via.value_or(IpAddress{})};
            const RoutedInterface *egress = nullptr;
            for (const auto &ifc : ifaces) {
                if (r.iface && ifc.name == *r.iface) egress = &ifc;
                if (!r.iface && r.via) {
                    for (const auto &a : ifc.addresses)
                        if (contains(a, *r.via)) egress = &ifc;
                }
            }
            if (egress == nullptr)
                throw std::runtime_error(where + ": next hop " +
                                         (r.via ? r.via->to_string() : std::string("?")) +
                                         " is on no connected network");
            nh.port = egress->port;
            add(network_of(r.to), add_next_hop(nh), where);
        }
    } catch (...) {
        rte_fib_free(fib4_);
        rte_fib6_free(fib6_);
        throw;
    }
}

RouteTable::~RouteTable() {
    rte_fib_free(fib4_);
    rte_fib6_free(fib6_);
}

RouteTable::NextHopId RouteTable::add_next_hop(const NextHop &nh) {
    next_hops_.push_back(nh);
    next_hop_count_ = next_hops_.size();
    return next_hops_.size() - 1;
}

void RouteTable::add(const IpPrefix &prefix, NextHopId nh, const std::string &what) {
    int rc;
    if (prefix.addr.is_v4())
        rc = rte_fib_add(fib4_, prefix.addr.v4_host_order(), prefix.length, nh);
    else
        rc = rte_fib6_add(fib6_, prefix.addr.bytes.data(), prefix.length, nh);
    if (rc != 0)
        throw std::runtime_error(what + ": cannot add route " + prefix.to_string() + ": " +
                                 rte_strerror(-rc));
    entries_.push_back(Entry{prefix, nh});
}

void RouteTable::lookup4(const uint32_t *ips, NextHopId *out, unsigned n) const {
    rte_fib_lookup_bulk(fib4_, const_cast<uint32_t *>(ips), out, n);
}

void RouteTable::lookup6(const uint8_t (*ips)[16], NextHopId *out, unsigned n) const {
    rte_fib6_lookup_bulk(fib6_, const_cast<uint8_t(*)[16]>(ips), out, n);
}

RouteTable::NextHopId RouteTable::lookup(const IpAddress &a) const {
    NextHopId nh = no_route;
    if (a.is_v4()) {
        const uint32_t ip = a.v4_host_order();
        lookup4(&ip, &nh, 1);
    } else if (a.is_v6()) {
        uint8_t ip[1][16];
        std::copy(a.bytes.begin(), a.bytes.end(), ip[0]);
        lookup6(ip, &nh, 1);
    }
    return nh;
}

} // namespace syncwall::dp
