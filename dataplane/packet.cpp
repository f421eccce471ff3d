// Parse-once packet descriptor: see packet.hpp for the contract.
//
// Every read is preceded by a length check against the bytes the layer may use (the frame
// for L2, the IP datagram as its header declares it for L4). Fields are read with memcpy
// and explicit big-endian loads, so nothing depends on alignment or host byte order.
#include "dataplane/packet.hpp"

#include "dataplane/byte_order.hpp"

#include <bit>
#include <cstring>

namespace syncwall::dp {
namespace {

// One's-complement sum of `n` bytes as native-order words, not yet folded to 16 bits: below
// 2^33, so that callers may add a few more sums before they fold. Words of 8 bytes are added
// with the carry out of bit 63 brought back in (an end-around carry: 2^64 == 1 (mod 0xffff),
// as 2^16 == 1), and a tail of 4, 2 and 1 bytes without a loop. Folding the result gives the
// 16-bit one's-complement sum (RFC 1071 section 2: the sum is byte-order independent, it only
// comes out byte-swapped on a little-endian host). A 64-byte TCP segment's 26 bytes are three
// additions and a tail of one word, where 4-byte words took eight turns of two loops.
inline uint64_t add_end_around(uint64_t a, uint64_t b) {
    uint64_t s;
    const bool carry = __builtin_add_overflow(a, b, &s);
    return s + uint64_t(carry);
}

inline uint64_t sum_native(const uint8_t *p, size_t n) {
    uint64_t sum = 0;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        std::memcpy(&w, p, sizeof w);
        sum = add_end_around(sum, w);
    }
    uint64_t tail = 0; // below 2^33: at most a 4-byte word, a 2-byte word and a byte
    if (n & 4) {
        uint32_t w;
        std::memcpy(&w, p, sizeof w);
        tail = w;
        p += 4;
    }
    if (n & 2) {
        uint16_t w;
        std::memcpy(&w, p, sizeof w);
        tail += w;
        p += 2;
    }
    if (n & 1) // the last odd byte is the high byte of a big-endian word padded with zero
        tail += host_is_little ? uint64_t(p[0]) : uint64_t(p[0]) << 8;
    sum = add_end_around(sum, tail);
    // Down to 33 bits: the two halves' sum (2^32 == 1 (mod 0xffff)).
    return (sum & 0xffffffff) + (sum >> 32);
}

// A sum folded to 16 bits with end-around carries: adding a word to itself rotated by half
// its width leaves the halves' end-around sum in the upper half (the carry out of the lower
// half is the one that goes around). Zero only for a zero sum, as RFC 1071's loop.
inline uint16_t fold(uint64_t s) {
    s += std::rotr(s, 32);
    uint32_t t = uint32_t(s >> 32);
    t += std::rotr(t, 16);
    return uint16_t(t >> 16);
}

// Folded big-endian-valued sum of `n` bytes (0xffff over data carrying a correct checksum).
inline uint16_t sum_be(const uint8_t *p, size_t n) {
    const uint16_t s = fold(sum_native(p, n));
    if constexpr (host_is_little)
        return __builtin_bswap16(s);
    else
        return s;
}

// Flag combinations that are never valid, indexed by the low six flag bits:
// SYN+FIN, SYN+RST, FIN without ACK, and no flag at all (ECE/CWR alone count as none).
constexpr uint64_t make_bad_tcp_flags() {
    uint64_t mask = 0;
    for (unsigned f = 0; f < 64; ++f) {
        const bool syn = f & tcpf::syn, fin = f & tcpf::fin, rst = f & tcpf::rst,
                   ack = f & tcpf::ack;
        if ((syn && fin) || (syn && rst) || (fin && !ack) || f == 0) mask |= uint64_t(1) << f;
    }
    return mask;
}
inline constexpr uint64_t bad_tcp_flags = make_bad_tcp_flags();

// IPv4 and TCP options share one framing: kind 0 (end of list) ends it, kind 1 (no-op) is
// one byte, every other kind is kind-length-value with a length of at least 2 that stays
// inside the header. Calls on_option(kind, len, value) for each of those; false when the
// framing is broken or on_option refuses an option.
template <class OnOption>
inline bool walk_options(const uint8_t *o, uint32_t n, OnOption on_option) {
    uint32_t i = 0;
    while (i < n) {
        const uint8_t kind = o[i];
        if (kind == 0) return true;
        if (kind == 1) {
            ++i;
            continue;
        }
        if (n - i < 2) return false;
        const uint32_t len = o[i + 1];
        if (len < 2 || len > n - i) return false;
        if (!on_option(kind, len, o + i + 2)) return false;
        i += len;
    }
    return true;
}

inline bool ipv4_options_valid(const uint8_t *o, uint32_t n) {
    return walk_options(o, n, [](uint8_t, uint32_t, const uint8_t *) { return true; });
}

// TCP options: the kinds we use must have their RFC length; unknown kinds are skipped.
inline bool parse_tcp_options(const uint8_t *o, uint32_t n, TcpInfo &t) {
    return walk_options(o, n, [&t](uint8_t kind, uint32_t len, const uint8_t *v) {
        switch (kind) {
        case 2: // MSS
            if (len != 4) return false;
            t.mss = load_be16(v);
            return true;
        case 3: // window scale
            if (len != 3) return false;
            t.wscale = int8_t(v[0] > 127 ? 127 : v[0]);
            return true;
        case 4: // SACK permitted
            if (len != 2) return false;
            t.sack_permitted = true;
            return true;
        case 5: // SACK: one or more 8-byte blocks
            if (len < 10 || (len - 2) % 8 != 0) return false;
            t.has_sack = true;
            return true;
        case 8: // timestamps
            if (len != 10) return false;
            t.has_timestamp = true;
            t.ts_val = load_be32(v);
            t.ts_ecr = load_be32(v + 4);
            return true;
        default:
            return true;
        }
    });
}

inline bool icmp4_is_error(uint8_t type) {
    // 3 unreachable, 4 source quench, 5 redirect, 11 time exceeded, 12 parameter problem
    return type < 32 && ((uint32_t(1) << type) & 0x1838u);
}

inline bool icmp6_is_error(uint8_t type) {
    return type >= 1 && type <= 4;
}

// ICMP/ICMPv6 header (8 bytes present). Echo fills id/seq and the pf-style ports; errors
// point at the quoted packet (`len` is what the datagram holds after the ICMP header start).
inline void fill_icmp(const uint8_t *h, uint32_t len, bool v6, uint32_t l4_offset, PacketDesc &d) {
    IcmpInfo &ic = d.icmp;
    ic.type = h[0];
    ic.code = h[1];
    const bool echo = v6 ? (ic.type == 128 || ic.type == 129) : (ic.type == 0 || ic.type == 8);
    if (echo) {
        ic.id = load_be16(h + 4);
        ic.seq = load_be16(h + 6);
        d.sport = d.dport = ic.id;
    } else if (v6 ? icmp6_is_error(ic.type) : icmp4_is_error(ic.type)) {
        ic.is_error = true;
        ic.quoted_offset = uint16_t(l4_offset + 8);
        ic.quoted_len = uint16_t(len - 8);
    }
}

// Transport header of an IPv4/IPv6 datagram: `h` holds `len` bytes up to the datagram's end.
// A first fragment too short for the header it claims to carry is fragment_too_short.
inline std::optional<DropReason> parse_l4(const uint8_t *h, uint32_t len, PacketDesc &d) {
    const bool first_fragment = d.is_first_fragment;
    switch (d.proto) {
    case proto_tcp: {
        if (len < 20) [[unlikely]]
            return first_fragment ? DropReason::fragment_too_short : DropReason::tcp_truncated;
        const uint32_t hl = uint32_t(h[12] >> 4) * 4;
        if (hl < 20) [[unlikely]]
            return DropReason::tcp_bad_offset;
        if (hl > len) [[unlikely]]
            return first_fragment ? DropReason::fragment_too_short : DropReason::tcp_bad_offset;
        TcpInfo &t = d.tcp;
        t.flags = h[13];
        if ((bad_tcp_flags >> (t.flags & 0x3f)) & 1) [[unlikely]]
            return DropReason::tcp_bad_flags;
        if (hl > 20 && !parse_tcp_options(h + 20, hl - 20, t)) [[unlikely]]
            return DropReason::tcp_bad_options;
        d.sport = load_be16(h);
        d.dport = load_be16(h + 2);
        t.seq = load_be32(h + 4);
        t.ack = load_be32(h + 8);
        t.window = load_be16(h + 14);
        t.header_len = uint8_t(hl);
        t.payload_len = uint16_t(len - hl);
        d.has_l4 = true;
        return std::nullopt;
    }
    case proto_udp:
        if (len < 8) [[unlikely]]
            return first_fragment ? DropReason::fragment_too_short : DropReason::udp_truncated;
        if (!d.is_fragment) { // a fragment's UDP length covers the reassembled datagram
            const uint32_t ulen = load_be16(h + 4);
            if (ulen < 8 || ulen > len) [[unlikely]]
                return DropReason::udp_bad_length;
        }
        d.sport = load_be16(h);
        d.dport = load_be16(h + 2);
        d.has_l4 = true;
        return std::nullopt;
    case proto_icmp:
    case proto_icmpv6: {
        const bool v6 = d.family == 6;
        if (v6 != (d.proto == proto_icmpv6)) // ICMP over IPv6 or ICMPv6 over IPv4: opaque
            return std::nullopt;
        if (len < 8) [[unlikely]] {
            if (first_fragment) return DropReason::fragment_too_short;
            return v6 ? DropReason::icmp6_truncated : DropReason::icmp_truncated;
        }
        fill_icmp(h, len, v6, d.l4_offset, d);
        d.has_l4 = true;
        return std::nullopt;
    }
    default:
        return std::nullopt;
    }
}

// Walks the IPv6 extension headers of the packet at `ip`, whose bytes end at `end` (>= 40).
// Sets proto, l3_header_len and the fragment flags; `transport` tells whether a transport
// header follows (not after No Next Header, not in a non-first fragment).
inline std::optional<DropReason> walk_ipv6_ext(const uint8_t *ip, uint32_t end, PacketDesc &d,
                                               bool &transport) {
    uint8_t nh = ip[6];
    uint32_t off = 40;
    int count = 0;
    for (;;) {
        uint32_t len;
        switch (nh) {
        case ipv6_ext_hop_by_hop:
        case ipv6_ext_routing:
        case ipv6_ext_dest_opts:
        case ipv6_ext_auth:
        case ipv6_ext_fragment:
            if (++count > ipv6_max_ext_headers) [[unlikely]]
                return DropReason::ipv6_ext_chain_too_long;
            if (end - off < 8) [[unlikely]] // every extension header is at least 8 bytes
                return DropReason::ipv6_ext_truncated;
            len = nh == ipv6_ext_fragment ? 8
                  : nh == ipv6_ext_auth   ? (uint32_t(ip[off + 1]) + 2) * 4
                                          : (uint32_t(ip[off + 1]) + 1) * 8;
            if (len > end - off) [[unlikely]]
                return DropReason::ipv6_ext_truncated;
            break;
        default: // transport or other upper-layer protocol, or No Next Header
            d.proto = nh;
            d.l3_header_len = uint16_t(off);
            transport = nh != ipv6_no_next_header;
            return std::nullopt;
        }
        if (nh == ipv6_ext_fragment) {
            const uint16_t offset_m = load_be16(ip + off + 2);
            if (offset_m & 0xfff9) { // offset or M set; else an atomic fragment (RFC 6946)
                d.is_fragment = true;
                d.is_first_fragment = (offset_m & 0xfff8) == 0;
                if (!d.is_first_fragment) {
                    d.proto = ip[off];
                    d.l3_header_len = uint16_t(off + 8);
                    transport = false;
                    return std::nullopt;
                }
            }
        }
        nh = ip[off];
        off += len;
    }
}

inline std::optional<DropReason> parse_arp(const uint8_t *a, uint32_t rem, PacketDesc &d) {
    // Ethernet (1) / IPv4 (0x0800), hardware length 6, protocol length 4.
    if (rem < 28 || load_be32(a) != 0x00010800u || load_be16(a + 4) != 0x0604) [[unlikely]]
        return DropReason::arp_malformed;
    d.l3 = L3Kind::arp;
    d.arp.op = load_be16(a + 6);
    std::memcpy(d.arp.sha.data(), a + 8, 6);
    std::memcpy(d.arp.spa.data(), a + 14, 4);
    std::memcpy(d.arp.tha.data(), a + 18, 6);
    std::memcpy(d.arp.tpa.data(), a + 24, 4);
    return std::nullopt;
}

inline std::optional<DropReason> parse_ipv4(const uint8_t *ip, uint32_t rem, PacketDesc &d,
                                            DeviceChecksum device) {
    if (rem < 20) [[unlikely]]
        return DropReason::ipv4_truncated;
    if ((ip[0] >> 4) != 4) [[unlikely]]
        return DropReason::ipv4_bad_version;
    const uint32_t hl = uint32_t(ip[0] & 0x0f) * 4;
    if (hl < 20 || hl > rem) [[unlikely]]
        return DropReason::ipv4_bad_header_length;
    const uint32_t total = load_be16(ip + 2);
    if (total < hl || total > rem) [[unlikely]]
        return DropReason::ipv4_bad_total_length;
    // A header without options (nearly all) is summed as a fixed 20 bytes, in full.
    if (device == DeviceChecksum::unknown
            ? fold(hl == 20 ? sum_native(ip, 20) : sum_native(ip, hl)) != 0xffff
            : device == DeviceChecksum::bad) [[unlikely]]
        return DropReason::ipv4_bad_checksum;
    if (hl > 20) {
        d.has_ip_options = true;
        if (!ipv4_options_valid(ip + 20, hl - 20)) [[unlikely]]
            return DropReason::ipv4_bad_options;
    }
    // Multicast (224/4) or limited broadcast. 0.0.0.0 is a DHCP client's source.
    if ((ip[12] & 0xf0) == 0xe0 || load_be32(ip + 12) == 0xffffffffu) [[unlikely]]
        return DropReason::ipv4_bad_source;

    d.l3 = L3Kind::ipv4;
    d.family = 4;
    d.tos = ip[1];
    d.ttl = ip[8];
    d.proto = ip[9];
    std::memcpy(d.src.data(), ip + 12, 4);
    std::memcpy(d.dst.data(), ip + 16, 4);
    d.l3_header_len = uint16_t(hl);
    d.l3_total_len = uint16_t(total);
    d.l4_offset = uint16_t(d.l3_offset + hl);

    const uint16_t frag = load_be16(ip + 6);
    const bool later_fragment = (frag & 0x1fff) != 0;
    d.is_fragment = (frag & 0x3fff) != 0; // MF or offset
    d.is_first_fragment = d.is_fragment && !later_fragment;
    if (later_fragment) return std::nullopt;
    return parse_l4(ip + hl, total - hl, d);
}

inline std::optional<DropReason> parse_ipv6(const uint8_t *ip, uint32_t rem, PacketDesc &d) {
    if (rem < 40) [[unlikely]]
        return DropReason::ipv6_truncated;
    if ((ip[0] >> 4) != 6) [[unlikely]]
        return DropReason::ipv6_bad_version;
    const uint32_t end = 40 + uint32_t(load_be16(ip + 4));
    if (end > rem) [[unlikely]]
        return DropReason::ipv6_bad_payload_length;
    if (ip[8] == 0xff) [[unlikely]]
        return DropReason::ipv6_bad_source;

    d.l3 = L3Kind::ipv6;
    d.family = 6;
    d.tos = uint8_t((ip[0] << 4) | (ip[1] >> 4));
    d.ttl = ip[7];
    std::memcpy(d.src.data(), ip + 8, 16);
    std::memcpy(d.dst.data(), ip + 24, 16);
    d.l3_total_len = uint16_t(end);

    bool transport = false;
    if (auto r = walk_ipv6_ext(ip, end, d, transport)) [[unlikely]]
        return r;
    d.l4_offset = uint16_t(d.l3_offset + d.l3_header_len);
    if (!transport) return std::nullopt;
    return parse_l4(ip + d.l3_header_len, end - d.l3_header_len, d);
}

// Copied over the caller's descriptor: plain vector loads and stores, where building a
// temporary on the stack stalled on store forwarding and in-place zeroing used `rep stos`.
constexpr PacketDesc blank_desc{};

inline uint32_t clamp_len(size_t n) {
    return n < 0xffff ? uint32_t(n) : 0xffffu;
}

} // namespace

std::optional<DropReason> parse_packet(std::span<const uint8_t> frame, PacketDesc &d,
                                       DeviceChecksum ipv4_header) {
    d = blank_desc;
    const uint8_t *p = frame.data();
    const uint32_t n = clamp_len(frame.size());
    d.frame_len = uint16_t(n);
    if (n < 14) [[unlikely]]
        return DropReason::frame_truncated;
    std::memcpy(d.dst_mac.data(), p, 6);
    std::memcpy(d.src_mac.data(), p + 6, 6);
    uint16_t type = load_be16(p + 12);
    uint32_t off = 14;
    if (type == ether_type_vlan || type == ether_type_qinq) {
        if (n < 18) [[unlikely]]
            return DropReason::vlan_truncated;
        d.has_vlan = true;
        d.vlan_tci = load_be16(p + 14);
        type = load_be16(p + 16);
        off = 18;
        if (type == ether_type_vlan || type == ether_type_qinq) [[unlikely]]
            return DropReason::vlan_stacked;
    }
    d.ether_type = type;
    d.l3_offset = uint16_t(off);
    switch (type) {
    case ether_type_ipv4:
        return parse_ipv4(p + off, n - off, d, ipv4_header);
    case ether_type_ipv6:
        return parse_ipv6(p + off, n - off, d);
    case ether_type_arp:
        return parse_arp(p + off, n - off, d);
    default:
        return DropReason::unsupported_ethertype;
    }
}

std::optional<DropReason> parse_quoted_packet(std::span<const uint8_t> bytes, PacketDesc &d) {
    d = blank_desc;
    const uint8_t *ip = bytes.data();
    const uint32_t n = clamp_len(bytes.size());
    d.frame_len = uint16_t(n);
    if (n == 0) [[unlikely]]
        return DropReason::icmp_truncated;

    uint32_t end; // bytes of the quoted datagram that are present
    bool transport = false;
    switch (ip[0] >> 4) {
    case 4: {
        if (n < 20) [[unlikely]]
            return DropReason::ipv4_truncated;
        const uint32_t hl = uint32_t(ip[0] & 0x0f) * 4;
        if (hl < 20) [[unlikely]]
            return DropReason::ipv4_bad_header_length;
        if (hl > n) [[unlikely]]
            return DropReason::ipv4_truncated;
        const uint32_t total = load_be16(ip + 2);
        if (total < hl) [[unlikely]]
            return DropReason::ipv4_bad_total_length;
        end = total < n ? total : n;
        d.l3 = L3Kind::ipv4;
        d.family = 4;
        d.tos = ip[1];
        d.ttl = ip[8];
        d.proto = ip[9];
        std::memcpy(d.src.data(), ip + 12, 4);
        std::memcpy(d.dst.data(), ip + 16, 4);
        d.l3_header_len = uint16_t(hl);
        d.l3_total_len = uint16_t(total);
        d.has_ip_options = hl > 20;
        const uint16_t frag = load_be16(ip + 6);
        d.is_fragment = (frag & 0x3fff) != 0;
        d.is_first_fragment = d.is_fragment && (frag & 0x1fff) == 0;
        transport = (frag & 0x1fff) == 0;
        break;
    }
    case 6: {
        if (n < 40) [[unlikely]]
            return DropReason::ipv6_truncated;
        const uint32_t total = 40 + uint32_t(load_be16(ip + 4));
        end = total < n ? total : n;
        d.l3 = L3Kind::ipv6;
        d.family = 6;
        d.tos = uint8_t((ip[0] << 4) | (ip[1] >> 4));
        d.ttl = ip[7];
        std::memcpy(d.src.data(), ip + 8, 16);
        std::memcpy(d.dst.data(), ip + 24, 16);
        d.l3_total_len = uint16_t(total < 0xffff ? total : 0xffff);
        if (auto r = walk_ipv6_ext(ip, end, d, transport)) [[unlikely]]
            return r;
        break;
    }
    default:
        return DropReason::ipv4_bad_version;
    }

    d.l4_offset = d.l3_header_len;
    if (!transport) return std::nullopt;
    const uint8_t *h = ip + d.l3_header_len;
    const uint32_t avail = end - d.l3_header_len;
    switch (d.proto) {
    case proto_tcp:
    case proto_udp:
        if (avail < 8) [[unlikely]]
            return DropReason::icmp_truncated;
        d.sport = load_be16(h);
        d.dport = load_be16(h + 2);
        if (d.proto == proto_tcp) d.tcp.seq = load_be32(h + 4);
        d.has_l4 = true;
        return std::nullopt;
    case proto_icmp:
    case proto_icmpv6: {
        const bool v6 = d.family == 6;
        if (v6 != (d.proto == proto_icmpv6)) return std::nullopt;
        if (avail < 8) [[unlikely]]
            return DropReason::icmp_truncated;
        fill_icmp(h, avail, v6, d.l4_offset, d);
        d.has_l4 = true;
        return std::nullopt;
    }
    default:
        return std::nullopt;
    }
}

uint16_t internet_checksum(std::span<const uint8_t> bytes, uint32_t initial) {
    const uint64_t sum = uint64_t(sum_be(bytes.data(), bytes.size())) + initial;
    return uint16_t(~fold(sum));
}

namespace {

// The pseudo-header as sum_native() would sum its bytes, unfolded: the addresses as they
// lie, the length and protocol as the big-endian words they stand for, swapped to where a
// native load of those words would put their bytes.
inline uint64_t pseudo_header_native(const PacketDesc &d, uint32_t l4_length) {
    const auto native = [](uint16_t be_word) -> uint64_t {
        return host_is_little ? __builtin_bswap16(be_word) : be_word;
    };
    const uint64_t rest =
        native(uint16_t(l4_length >> 16)) + native(uint16_t(l4_length)) + native(d.proto);
    // Each family with its fixed address length, so that the sums need no loop.
    if (d.family == 4) return sum_native(d.src.data(), 4) + sum_native(d.dst.data(), 4) + rest;
    return sum_native(d.src.data(), 16) + sum_native(d.dst.data(), 16) + rest;
}

} // namespace

uint32_t pseudo_header_sum(const PacketDesc &d, uint32_t l4_length) {
    // Folded and swapped once to big-endian word values (see sum_be()).
    const uint16_t s = fold(pseudo_header_native(d, l4_length));
    return host_is_little ? __builtin_bswap16(s) : s;
}

namespace {

// l4_checksum_span(), inlined into l4_checksum_ok() (every received packet).
inline L4ChecksumSpan checksum_span(std::span<const uint8_t> head, uint32_t frame_len,
                                    const PacketDesc &d) {
    L4ChecksumSpan c;
    if (!d.has_l4 || d.is_fragment) return c;
    const uint32_t ip_end = uint32_t(d.l3_offset) + d.l3_total_len;
    if (ip_end > frame_len || d.l4_offset > ip_end) return c;
    // The parser saw the transport header, so it lies in the contiguous head.
    if (std::size_t(d.l4_offset) + 8 > head.size()) return c;
    const uint8_t *frame = head.data();
    c.length = ip_end - d.l4_offset;
    switch (d.proto) {
    case proto_udp: {
        const uint8_t *u = frame + d.l4_offset;
        if (d.family == 4 && load_be16(u + 6) == 0) return c; // no checksum sent
        c.length = load_be16(u + 4); // checked by the parser: 8 <= length <= IP payload
        c.pseudo_header = true;
        break;
    }
    case proto_tcp:
    case proto_icmpv6:
        c.pseudo_header = true;
        break;
    case proto_icmp:
        break;
    default:
        return c;
    }
    c.check = true;
    return c;
}

} // namespace

L4ChecksumSpan l4_checksum_span(std::span<const uint8_t> head, uint32_t frame_len,
                                const PacketDesc &d) {
    return checksum_span(head, frame_len, d);
}

namespace {

// l4_checksum_ok() for any datagram. Out of line, so that the TCP/IPv4 branch, nearly every
// packet, does not set up the registers this path needs.
[[gnu::noinline]] bool l4_checksum_ok_general(std::span<const uint8_t> frame, const PacketDesc &d) {
    const L4ChecksumSpan c = checksum_span(frame, uint32_t(frame.size()), d);
    if (!c.check) return true;
    if (d.proto == proto_udp && load_be16(frame.data() + d.l4_offset + 6) == 0)
        return false; // IPv6: a zero UDP checksum is never valid
    // One native-order sum over the segment and the pseudo-header, folded once (asked of
    // every received packet whose device verifies nothing).
    uint64_t sum = sum_native(frame.data() + d.l4_offset, c.length);
    if (c.pseudo_header) sum += pseudo_header_native(d, c.length);
    return fold(sum) == 0xffff;
}

} // namespace

bool l4_checksum_ok(std::span<const uint8_t> frame, const PacketDesc &d) {
    // TCP over IPv4, nearly every packet a firewall forwards, without the general span's
    // questions: its pseudo-header is the two 4-byte addresses, the length and the constant
    // protocol. Any other datagram, and one whose header does not lie whole inside both
    // datagram and frame, takes the general path, which gives the same answer.
    if (d.family == 4 && d.proto == proto_tcp && d.has_l4 && !d.is_fragment) [[likely]] {
        const uint32_t ip_end = uint32_t(d.l3_offset) + d.l3_total_len;
        if (ip_end <= frame.size() && uint32_t(d.l4_offset) + 20 <= ip_end) [[likely]] {
            const uint8_t *tcp = frame.data() + d.l4_offset;
            const uint32_t len = ip_end - d.l4_offset;
            // The fixed 20-byte header with a constant length, which the compiler unrolls
            // into three loads without sum_native()'s loop and tail tests (a plain ACK is
            // nothing else); options and payload after it. Each sum is below 2^34.
            uint64_t sum = sum_native(tcp, 20);
            if (len > 20) sum += sum_native(tcp + 20, len - 20);
            return fold(sum + pseudo_header_native(d, len)) == 0xffff;
        }
    }
    return l4_checksum_ok_general(frame, d);
}

} // namespace syncwall::dp
