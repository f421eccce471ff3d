// The one layer that writes link and network headers into a buffer: the slow path's
// replies (control/slowpath/replies.cpp), CARP adverts (control/carp/carp_wire.cpp) and
// pfsync packets (sync/sync_engine.cpp) all build their frames with these. Pure: no DPDK,
// no allocation; the caller sizes the buffer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace syncwall::dp {

using Mac = std::array<uint8_t, 6>;

inline constexpr std::size_t ether_header_len = 14;
inline constexpr std::size_t ipv4_header_len = 20; // without options: all we write
inline constexpr std::size_t ipv6_header_len = 40;

// Ethernet header with the given type at out[0..13].
void write_ether(std::span<uint8_t> out, const Mac &dst, const Mac &src, uint16_t type);

// The IPv4 header fields a sender picks; the rest follow from the call.
struct Ipv4Fields {
    uint16_t id = 0;
    uint8_t ttl = 64;
    uint8_t tos = 0;
    bool dont_fragment = false;
};
// A 20-byte IPv4 header at ip[0..19] for a datagram of `total_len` bytes (header included)
// from `src` to `dst` (4 bytes each), checksum set. Returns 20.
std::size_t write_ipv4_header(uint8_t *ip, uint16_t total_len, uint8_t proto, const uint8_t *src,
                              const uint8_t *dst, const Ipv4Fields &fields = {});
// Recompute the header checksum of the IPv4 header at `ip` (its options included).
void set_ipv4_checksum(uint8_t *ip);

// A 40-byte IPv6 header (traffic class and flow label 0) at ip[0..39]. Returns 40.
std::size_t write_ipv6_header(uint8_t *ip, uint16_t payload_len, uint8_t next, uint8_t hop_limit,
                              const uint8_t *src, const uint8_t *dst);

} // namespace syncwall::dp
