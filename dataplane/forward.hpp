// Header rewrites for forwarding, over raw bytes (pure, unit-tested without EAL).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

namespace syncwall::dp {

// Decrement the IPv4 TTL and patch the header checksum incrementally (RFC 1624, eqn. 3):
// the TTL is the high byte of a 16-bit word, so that word drops by 0x0100.
inline void ipv4_decrement_ttl(uint8_t *ip) {
    ip[8]--;
    uint32_t sum = uint32_t(ip[10]) << 8 | ip[11];
    sum = (~sum & 0xffff) + 0xfeff; // ~HC + ~m + m' where m' - m = -0x0100 => ~0x0100 = 0xfeff
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    const uint16_t hc = uint16_t(~sum);
    ip[10] = uint8_t(hc >> 8);
    ip[11] = uint8_t(hc);
}

inline void ipv6_decrement_hop_limit(uint8_t *ip6) { ip6[7]--; }

inline void ether_rewrite(uint8_t *frame, const std::array<uint8_t, 6> &dst,
                          const std::array<uint8_t, 6> &src) {
    std::memcpy(frame, dst.data(), 6);
    std::memcpy(frame + 6, src.data(), 6);
}

} // namespace syncwall::dp
