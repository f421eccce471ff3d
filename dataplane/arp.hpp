// The body of an Ethernet/IPv4 ARP message (RFC 826), written by whoever sends one: the
// control plane's replies and requests (control/slowpath/replies.hpp), the sync port resolving a
// unicast peer (sync/sync_engine.cpp). Pure C++.
#pragma once

#include "dataplane/byte_order.hpp"
#include "dataplane/packet.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace syncwall::dp {

inline constexpr std::size_t arp_len = 28;
inline constexpr uint16_t arp_request = 1, arp_reply = 2;

// Write the 28-byte ARP message at `a`; returns arp_len.
inline std::size_t write_arp(uint8_t *a, uint16_t op, const std::array<uint8_t, 6> &sha,
                             const std::array<uint8_t, 4> &spa, const std::array<uint8_t, 6> &tha,
                             const std::array<uint8_t, 4> &tpa) {
    store_be16(a, 1); // hardware: Ethernet
    store_be16(a + 2, ether_type_ipv4);
    a[4] = 6;
    a[5] = 4;
    store_be16(a + 6, op);
    std::memcpy(a + 8, sha.data(), 6);
    std::memcpy(a + 14, spa.data(), 4);
    std::memcpy(a + 18, tha.data(), 6);
    std::memcpy(a + 24, tpa.data(), 4);
    return arp_len;
}

} // namespace syncwall::dp
