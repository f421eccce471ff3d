// The benchmark's ports and their surroundings, shared with the EAL tests that run a worker
// on the same traffic (tests/eal): net_ring ethdevs over rings the caller owns, the two
// interfaces and routes of the address plan in traffic.hpp, and the gateways' neighbours.
#pragma once

#include "config/config.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/neighbours.hpp"

#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ring.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace syncwall::bench {

// One net_ring ethdev named `name` (its devargs in a Config: "net_ring_" + name) with
// `queues` rx and tx rings: the caller puts frames on rx[q] and takes them from tx[q].
struct RingPort {
    std::vector<rte_ring *> rx, tx;
    uint16_t port_id = 0;
};

inline RingPort make_ring_port(const std::string &name, unsigned queues, unsigned rx_size,
                               unsigned tx_size) {
    RingPort p;
    for (unsigned q = 0; q < queues; q++) {
        const std::string n = "rp_" + name + std::to_string(q);
        p.rx.push_back(rte_ring_create((n + "_rx").c_str(), rx_size, int(rte_socket_id()),
                                       RING_F_SP_ENQ | RING_F_SC_DEQ));
        p.tx.push_back(rte_ring_create((n + "_tx").c_str(), tx_size, int(rte_socket_id()),
                                       RING_F_SP_ENQ | RING_F_SC_DEQ));
        if (p.rx.back() == nullptr || p.tx.back() == nullptr)
            throw std::runtime_error("cannot create rings for port " + name + ": " +
                                     rte_strerror(rte_errno));
    }
    const int id =
        rte_eth_from_rings(name.c_str(), p.rx.data(), queues, p.tx.data(), queues, rte_socket_id());
    if (id < 0) throw std::runtime_error("rte_eth_from_rings(" + name + ") failed");
    p.port_id = uint16_t(id);
    return p;
}

// lan (203.0.113.1/24, the clients' side) and wan (192.0.2.1/24, the servers'), on the
// ring ports `lan_ring` and `wan_ring`, with routes to traffic.hpp's clients (198.18.0.0/16
// via 203.0.113.2) and servers (198.19.0.0/16 via 192.0.2.2). `source` names the Config.
inline void add_interfaces_and_routes(config::Config &c, const std::string &lan_ring,
                                      const std::string &wan_ring, const std::string &source) {
    auto prefix = [](const char *s) { return *config::parse_ip_prefix(s, true); };
    config::InterfaceConfig lan, wan;
    lan.name = "lan";
    lan.devargs = "net_ring_" + lan_ring;
    lan.addresses = {prefix("203.0.113.1/24")};
    lan.pos = {source, 1, 1};
    wan.name = "wan";
    wan.devargs = "net_ring_" + wan_ring;
    wan.addresses = {prefix("192.0.2.1/24")};
    wan.pos = {source, 2, 1};
    c.interfaces = {lan, wan};
    config::RouteConfig to_servers, to_clients;
    to_servers.to = prefix("198.19.0.0/16");
    to_servers.via = config::parse_ip_address("192.0.2.2");
    to_servers.iface = "wan";
    to_clients.to = prefix("198.18.0.0/16");
    to_clients.via = config::parse_ip_address("203.0.113.2");
    to_clients.iface = "lan";
    c.routes = {to_servers, to_clients};
}

// Both gateways of add_interfaces_and_routes resolved to `mac`, so that nothing waits for
// ARP (lan is port 0, wan port 1).
inline void add_gateway_neighbours(dp::Dataplane &dp, const std::array<uint8_t, 6> &mac) {
    for (auto [port, gw] :
         {std::pair<uint16_t, const char *>{1, "192.0.2.2"}, {0, "203.0.113.2"}}) {
        dp::NeighbourKey k;
        k.port = port;
        k.family = 4;
        k.addr = config::parse_ip_address(gw)->bytes;
        dp.neighbours->update(k, mac);
    }
}

} // namespace syncwall::bench
