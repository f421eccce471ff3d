// Header rewrites for forwarding, over raw bytes (pure, unit-tested without EAL).
#pragma once

#include "dataplane/packet.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <span>

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

inline void ipv6_decrement_hop_limit(uint8_t *ip6) {
    ip6[7]--;
}

inline void ether_rewrite(uint8_t *frame, const std::array<uint8_t, 6> &dst,
                          const std::array<uint8_t, 6> &src) {
    std::memcpy(frame, dst.data(), 6);
    std::memcpy(frame + 6, src.data(), 6);
}

// Turn a parsed TCP segment, in place, into a bare ACK sent back to its sender (from its
// destination address and port): what pf sends as a challenge ACK (RFC 5961). Options and
// payload are dropped, TTL/hop limit 64, checksums recomputed. Returns the new frame length,
// or 0 when the segment's IP header carries options or extension headers (then no ACK).
std::size_t tcp_rewrite_as_ack(std::span<uint8_t> frame, const PacketDesc &d, uint32_t seq,
                               uint32_t ack);

} // namespace syncwall::dp
