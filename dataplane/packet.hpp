// Parse-once packet descriptor.
//
// Theory of operation: a worker calls `parse_packet()` once per received frame. The parser
// checks every length before it reads a field and either fills a `PacketDesc` or returns the
// `DropReason` that makes the frame unacceptable. Later stages (state lookup, rules,
// forwarding) read the descriptor only, never raw headers they have not been vouched for.
// Pure code over a byte span: no DPDK, no allocation, no exceptions; unit-tested without EAL.
#pragma once

#include "dataplane/drop_reason.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>

namespace syncwall::dp {

inline constexpr uint16_t ether_type_ipv4 = 0x0800;
inline constexpr uint16_t ether_type_arp = 0x0806;
inline constexpr uint16_t ether_type_vlan = 0x8100;
inline constexpr uint16_t ether_type_qinq = 0x88A8; // 802.1ad service tag, counted as a tag
inline constexpr uint16_t ether_type_ipv6 = 0x86DD;

inline constexpr uint8_t proto_icmp = 1;
inline constexpr uint8_t proto_tcp = 6;
inline constexpr uint8_t proto_udp = 17;
inline constexpr uint8_t proto_icmpv6 = 58;
inline constexpr uint8_t proto_carp = 112;
inline constexpr uint8_t proto_pfsync = 240;

// ICMP (RFC 792) and ICMPv6 (RFC 4443, RFC 4861) types and codes syncwall sends or answers.
inline constexpr uint8_t icmp_unreach = 3, icmp_time_exceeded = 11;
inline constexpr uint8_t icmp_code_port_unreach = 3, icmp_code_need_frag = 4;
inline constexpr uint8_t icmp6_unreach = 1, icmp6_packet_too_big = 2, icmp6_time_exceeded = 3;
inline constexpr uint8_t icmp6_code_port_unreach = 4;
inline constexpr uint8_t nd_neighbour_solicitation = 135, nd_neighbour_advertisement = 136;
// The IPv6 minimum link MTU (RFC 8200 5): an ICMPv6 error is built to fit in it, and so is
// ours for IPv4 (RFC 1812 4.3.2.3 allows up to 576; more of the offending packet helps).
inline constexpr uint16_t ipv6_min_mtu = 1280;

// IPv6 extension headers the parser walks, and "no next header".
inline constexpr uint8_t ipv6_ext_hop_by_hop = 0;
inline constexpr uint8_t ipv6_ext_routing = 43;
inline constexpr uint8_t ipv6_ext_fragment = 44;
inline constexpr uint8_t ipv6_ext_auth = 51;
inline constexpr uint8_t ipv6_no_next_header = 59;
inline constexpr uint8_t ipv6_ext_dest_opts = 60;

// The parser follows at most this many IPv6 extension headers before giving up.
inline constexpr int ipv6_max_ext_headers = 8;

enum class L3Kind : uint8_t { none, arp, ipv4, ipv6 };

// TCP flag bits as in the header's 13th byte.
namespace tcpf {
inline constexpr uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10, urg = 0x20,
                         ece = 0x40, cwr = 0x80;
}

struct TcpInfo {
    uint32_t seq = 0, ack = 0; // host order
    uint16_t window = 0;       // host order, unscaled
    uint8_t flags = 0;
    uint8_t header_len = 0;   // bytes, options included
    uint16_t payload_len = 0; // bytes of data after the TCP header
    // Options (valid on any segment that carries them).
    uint16_t mss = 0;   // 0 = absent
    int8_t wscale = -1; // -1 = absent; otherwise the shift as sent (clamped to 14 by
                        // users; a value above 127 reads as 127)
    bool sack_permitted = false;
    bool has_sack = false;
    bool has_timestamp = false;
    uint32_t ts_val = 0, ts_ecr = 0;
};

struct IcmpInfo {
    uint8_t type = 0, code = 0;
    uint16_t id = 0, seq = 0; // echo request/reply only, host order
    bool is_error = false;    // dest unreachable, time exceeded, parameter problem, ...
    // For errors: offset of the quoted IP header from the frame start, and how many bytes
    // of it the frame holds. The quoted packet is parsed by parse_quoted_packet().
    uint16_t quoted_offset = 0;
    uint16_t quoted_len = 0;
};

struct ArpInfo {
    uint16_t op = 0; // 1 request, 2 reply
    std::array<uint8_t, 6> sha{}, tha{};
    std::array<uint8_t, 4> spa{}, tpa{};
};

struct PacketDesc {
    // Layer 2
    std::array<uint8_t, 6> dst_mac{}, src_mac{};
    uint16_t ether_type = 0; // after any VLAN tag
    bool has_vlan = false;
    uint16_t vlan_tci = 0;
    uint16_t l3_offset = 0; // bytes from frame start to the L3 header

    L3Kind l3 = L3Kind::none;
    uint16_t frame_len = 0;

    // Layer 3 (IPv4 or IPv6). Addresses in network byte order; IPv4 uses the first 4 bytes
    // and leaves the rest 0 (state keys copy the 16 bytes whole).
    uint8_t family = 0; // 4 or 6
    std::array<uint8_t, 16> src{}, dst{};
    uint8_t proto = 0;          // transport protocol (after IPv6 extension headers)
    uint8_t ttl = 0;            // TTL or hop limit
    uint8_t tos = 0;            // IPv4 TOS or IPv6 traffic class
    uint16_t l3_header_len = 0; // IPv4: IHL*4; IPv6: 40 + extension headers
    uint16_t l3_total_len = 0;  // whole IP datagram as the header says (<= frame bytes left;
                                // Ethernet padding may follow it)
    // From frame start to what follows the IP header(s): the transport header when has_l4,
    // else the raw payload (unknown protocol, non-first fragment data, after No Next Header).
    uint16_t l4_offset = 0;
    bool has_ip_options = false; // IPv4 IHL > 5
    // IPv4: MF set or offset != 0. IPv6: a fragment header with M set or offset != 0 (an
    // "atomic fragment", M = 0 and offset 0, is a whole packet: RFC 6946).
    bool is_fragment = false;
    bool is_first_fragment = false; // is_fragment and offset 0 (carries the transport header)
    // The transport header of TCP, UDP, ICMP (IPv4 only) or ICMPv6 (IPv6 only) was parsed.
    // False for non-first fragments, other protocols and IPv6 No Next Header.
    bool has_l4 = false;

    // Layer 4 (host byte order). For ICMP echo, sport = dport = echo id (pf's convention).
    uint16_t sport = 0, dport = 0;
    TcpInfo tcp;
    IcmpInfo icmp;
    ArpInfo arp;
};

// Parse an Ethernet frame. On success fills `out` and returns nullopt; otherwise returns the
// reason the frame must be dropped (and `out` is partially filled, not to be trusted).
// Frames of an unhandled Ethernet type return DropReason::unsupported_ethertype.
// `out` is reset first. Only the first 65535 bytes of a longer span are looked at.
// `ipv4_header`: the receiving device's verdict on the IPv4 header checksum, where it
// verified it (rx checksum offload); by default the parser sums the header itself.
enum class DeviceChecksum : uint8_t { unknown, good, bad };
std::optional<DropReason> parse_packet(std::span<const uint8_t> frame, PacketDesc &out,
                                       DeviceChecksum ipv4_header = DeviceChecksum::unknown);

// Parse the IP packet quoted in an ICMP/ICMPv6 error (`bytes` starts at the quoted IP
// header and may be truncated after the first 8 transport bytes, as RFC 792 allows).
// Fills family/src/dst/proto/sport/dport (and tcp.seq for TCP, icmp type/code/id for a
// quoted ICMP echo) of `out`, with offsets relative to `bytes`; `out` is reset first.
// The quoted IPv4 checksum is not verified and its total length may exceed `bytes`.
// Returns the drop reason if not even that much is present: ipv4_truncated /
// ipv6_truncated / ipv6_ext_truncated for the IP part, icmp_truncated for fewer than 8
// transport bytes (or an empty span), ipv4_bad_version for a version other than 4 or 6.
// A quoted non-first fragment succeeds with has_l4 = false (no ports to match).
std::optional<DropReason> parse_quoted_packet(std::span<const uint8_t> bytes, PacketDesc &out);

// RFC 1071 internet checksum (pure).
// Returns the one's complement of the one's-complement sum of `bytes` taken as big-endian
// 16-bit words (an odd last byte is padded with a zero byte), plus `initial` (a sum of
// big-endian 16-bit word values in host order, e.g. pseudo_header_sum(); any 32-bit
// value is accepted and folded). The result is a host-order number: store it in the
// packet big-endian (high byte first). For the classic IPv4 header 4500 0073 0000 4000
// 4011 0000 c0a8 0001 c0a8 00c7 it returns 0xb861, stored as the bytes b8 61.
// Over data that already holds a correct checksum it returns 0 (how headers are verified).
uint16_t internet_checksum(std::span<const uint8_t> bytes, uint32_t initial = 0);
// Sum of the pseudo-header for TCP/UDP/ICMPv6 checksums as big-endian 16-bit word values,
// folded to 16 bits; pass it as `initial` to internet_checksum(). Uses d.family, d.src,
// d.dst and d.proto. IPv4: src, dst, zero+proto, l4_length (16 bits). IPv6 (RFC 8200):
// src, dst, 32-bit l4_length, zero+next header.
uint32_t pseudo_header_sum(const PacketDesc &d, uint32_t l4_length);

// Is the transport checksum of packet `d` (parsed from `frame`) right? TCP, UDP and ICMPv6
// over the pseudo-header and the transport bytes (UDP: as many as its length field says),
// ICMP over its message. An IPv4 UDP checksum of 0 means "none sent" and passes; over IPv6
// it is refused (RFC 8200 8.1). Packets without a parsed transport header and fragments
// (their checksum covers the whole datagram) are not checked: true.
bool l4_checksum_ok(std::span<const uint8_t> frame, const PacketDesc &d);
// Where the checksum is computed over, for l4_checksum_ok() and callers that sum a
// chained mbuf themselves: `length` transport bytes from d.l4_offset and whether a
// pseudo-header is summed. `head` is the contiguous start of a frame of `frame_len` bytes
// (holding at least the transport header). `check` is false when nothing is to be
// verified (as l4_checksum_ok() says).
struct L4ChecksumSpan {
    bool check = false;
    bool pseudo_header = false;
    uint32_t length = 0;
};
L4ChecksumSpan l4_checksum_span(std::span<const uint8_t> head, uint32_t frame_len,
                                const PacketDesc &d);

} // namespace syncwall::dp
