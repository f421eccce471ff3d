#include "control/slowpath/replies.hpp"

#include "dataplane/arp.hpp"
#include "dataplane/byte_order.hpp"

#include <algorithm>
#include <cstring>

namespace syncwall::ctl {

namespace {

// Checksum over an L4 message with the pseudo-header of (src, dst, proto).
uint16_t l4_checksum(uint8_t family, const uint8_t *src, const uint8_t *dst, uint8_t proto,
                     std::span<const uint8_t> l4) {
    dp::PacketDesc d;
    d.family = family;
    d.proto = proto;
    const std::size_t alen = family == 4 ? 4 : 16;
    std::memcpy(d.src.data(), src, alen);
    std::memcpy(d.dst.data(), dst, alen);
    return dp::internet_checksum(l4, dp::pseudo_header_sum(d, uint32_t(l4.size())));
}

// ICMP and ICMPv6 errors share their shape: type, code, checksum (0 here, the caller sums),
// a 32-bit word, then the quoted start of the offending datagram.
void write_icmp_error(uint8_t *icmp, uint8_t type, uint8_t code, uint32_t extra,
                      std::span<const uint8_t> quoted) {
    icmp[0] = type;
    icmp[1] = code;
    dp::store_be16(icmp + 2, 0);
    dp::store_be32(icmp + 4, extra);
    std::memcpy(icmp + 8, quoted.data(), quoted.size());
}

void set_icmp6_checksum(uint8_t *ip6) {
    const uint16_t len = dp::load_be16(ip6 + 4);
    uint8_t *icmp = ip6 + 40;
    dp::store_be16(icmp + 2, 0);
    dp::store_be16(icmp + 2, l4_checksum(6, ip6 + 8, ip6 + 24, dp::proto_icmpv6, {icmp, len}));
}

} // namespace

std::size_t build_arp(std::span<uint8_t> out, uint16_t op, const Mac &eth_dst, const Mac &sha,
                      const Ip4 &spa, const Mac &tha, const Ip4 &tpa) {
    if (out.size() < arp_frame_len) return 0;
    write_ether(out, eth_dst, sha, dp::ether_type_arp);
    dp::write_arp(out.data() + ether_header_len, op, sha, spa, tha, tpa);
    return arp_frame_len;
}

bool echo_request_to_reply(std::span<uint8_t> frame, const dp::PacketDesc &d) {
    if (!d.has_l4 || d.is_fragment) return false;
    uint8_t *ip = frame.data() + d.l3_offset;
    uint8_t *icmp = frame.data() + d.l4_offset;
    const std::size_t l4_len = std::size_t(d.l3_offset) + d.l3_total_len - d.l4_offset;
    if (d.family == 4 && d.proto == dp::proto_icmp && d.icmp.type == 8) {
        std::swap_ranges(ip + 12, ip + 16, ip + 16); // source <-> destination
        ip[8] = 64;
        set_ipv4_checksum(ip);
        icmp[0] = 0;
        dp::store_be16(icmp + 2, 0);
        dp::store_be16(icmp + 2, dp::internet_checksum({icmp, l4_len}));
        return true;
    }
    if (d.family == 6 && d.proto == dp::proto_icmpv6 && d.icmp.type == 128) {
        // Any extension headers stay; only the addresses, hop limit and type change.
        std::swap_ranges(ip + 8, ip + 24, ip + 24); // source <-> destination
        ip[7] = 64;
        icmp[0] = 129;
        dp::store_be16(icmp + 2, 0);
        dp::store_be16(icmp + 2, l4_checksum(6, ip + 8, ip + 24, dp::proto_icmpv6, {icmp, l4_len}));
        return true;
    }
    return false;
}

std::size_t build_icmp4_error(std::span<uint8_t> out, uint8_t type, uint8_t code, uint32_t extra,
                              const Ip4 &src, const Ip4 &dst, std::span<const uint8_t> offending,
                              uint16_t ip_id) {
    const std::size_t quoted = std::min<std::size_t>(offending.size(), 576 - 28);
    const std::size_t len = 28 + quoted;
    if (out.size() < len) return 0;
    uint8_t *ip = out.data();
    uint8_t *icmp = ip + 20;
    write_icmp_error(icmp, type, code, extra, offending.first(quoted));
    dp::store_be16(icmp + 2, dp::internet_checksum({icmp, 8 + quoted}));
    dp::write_ipv4_header(ip, uint16_t(len), dp::proto_icmp, src.data(), dst.data(), {.id = ip_id});
    return len;
}

std::size_t build_icmp6_error(std::span<uint8_t> out, uint8_t type, uint8_t code, uint32_t extra,
                              const Ip6 &src, const Ip6 &dst, std::span<const uint8_t> offending) {
    const std::size_t quoted = std::min<std::size_t>(offending.size(), 1280 - 48);
    const std::size_t len = 48 + quoted;
    if (out.size() < len) return 0;
    uint8_t *ip = out.data();
    write_icmp_error(ip + 40, type, code, extra, offending.first(quoted));
    dp::write_ipv6_header(ip, uint16_t(8 + quoted), dp::proto_icmpv6, 64, src.data(), dst.data());
    set_icmp6_checksum(ip);
    return len;
}

Ip6 solicited_node(const Ip6 &target) {
    Ip6 g{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0, 0, 0};
    g[13] = target[13];
    g[14] = target[14];
    g[15] = target[15];
    return g;
}

Mac ipv6_multicast_mac(const Ip6 &group) {
    return Mac{0x33, 0x33, group[12], group[13], group[14], group[15]};
}

std::size_t build_neighbour_solicitation(std::span<uint8_t> out, const Ip6 &src, const Ip6 &target,
                                         const Mac &our_mac) {
    constexpr std::size_t len = 40 + 32;
    if (out.size() < len) return 0;
    uint8_t *ip = out.data();
    uint8_t *icmp = ip + 40;
    std::memset(icmp, 0, 32);
    icmp[0] = 135;
    std::memcpy(icmp + 8, target.data(), 16);
    icmp[24] = 1; // source link-layer address option
    icmp[25] = 1; // length in units of 8 bytes
    std::memcpy(icmp + 26, our_mac.data(), 6);
    const Ip6 group = solicited_node(target);
    dp::write_ipv6_header(ip, 32, dp::proto_icmpv6, 255, src.data(), group.data());
    set_icmp6_checksum(ip);
    return len;
}

std::size_t build_neighbour_advertisement(std::span<uint8_t> out, const Ip6 &target, const Ip6 &dst,
                                          const Mac &our_mac, bool solicited) {
    constexpr std::size_t len = 40 + 32;
    if (out.size() < len) return 0;
    uint8_t *ip = out.data();
    uint8_t *icmp = ip + 40;
    std::memset(icmp, 0, 32);
    icmp[0] = 136;
    icmp[4] = uint8_t((solicited ? 0x40 : 0) | 0x20); // S, O
    std::memcpy(icmp + 8, target.data(), 16);
    icmp[24] = 2; // target link-layer address option
    icmp[25] = 1;
    std::memcpy(icmp + 26, our_mac.data(), 6);
    dp::write_ipv6_header(ip, 32, dp::proto_icmpv6, 255, target.data(), dst.data());
    set_icmp6_checksum(ip);
    return len;
}

std::size_t build_tcp_rst(std::span<uint8_t> out, const dp::PacketDesc &d) {
    if (d.proto != dp::proto_tcp || !d.has_l4 || (d.tcp.flags & dp::tcpf::rst)) return 0;
    const std::size_t ip_len = d.family == 4 ? 20 : 40;
    if (out.size() < ip_len + 20) return 0;
    uint8_t *ip = out.data();
    uint8_t *tcp = ip + ip_len;
    std::memset(tcp, 0, 20);
    dp::store_be16(tcp, d.dport);
    dp::store_be16(tcp + 2, d.sport);
    if (d.tcp.flags & dp::tcpf::ack) {
        dp::store_be32(tcp + 4, d.tcp.ack);
        tcp[13] = dp::tcpf::rst;
    } else {
        uint32_t ack = d.tcp.seq + d.tcp.payload_len;
        if (d.tcp.flags & dp::tcpf::syn) ack++;
        if (d.tcp.flags & dp::tcpf::fin) ack++;
        dp::store_be32(tcp + 8, ack);
        tcp[13] = dp::tcpf::rst | dp::tcpf::ack;
    }
    tcp[12] = 5 << 4;
    if (d.family == 4) {
        Ip4 src, dst;
        std::memcpy(src.data(), d.dst.data(), 4);
        std::memcpy(dst.data(), d.src.data(), 4);
        dp::write_ipv4_header(ip, 40, dp::proto_tcp, src.data(), dst.data());
        dp::store_be16(tcp + 16, l4_checksum(4, src.data(), dst.data(), dp::proto_tcp, {tcp, 20}));
    } else {
        dp::write_ipv6_header(ip, 20, dp::proto_tcp, 64, d.dst.data(), d.src.data());
        dp::store_be16(tcp + 16,
                       l4_checksum(6, d.dst.data(), d.src.data(), dp::proto_tcp, {tcp, 20}));
    }
    return ip_len + 20;
}

bool parse_nd(std::span<const uint8_t> icmp, NdMessage &out) {
    if (icmp.size() < 24) return false;
    if (icmp[0] != 135 && icmp[0] != 136) return false;
    if (icmp[1] != 0) return false;
    out = NdMessage{};
    std::memcpy(out.target.data(), icmp.data() + 8, 16);
    out.solicited = icmp[0] == 136 && (icmp[4] & 0x40) != 0;
    out.override_flag = icmp[0] == 136 && (icmp[4] & 0x20) != 0;
    const uint8_t wanted = icmp[0] == 135 ? 1 : 2;
    std::size_t off = 24;
    while (off + 2 <= icmp.size()) {
        const std::size_t olen = std::size_t(icmp[off + 1]) * 8;
        if (olen == 0 || off + olen > icmp.size()) return false; // RFC 4861: discard
        if (icmp[off] == wanted && olen >= 8) {
            out.has_lladdr = true;
            std::memcpy(out.lladdr.data(), icmp.data() + off + 2, 6);
        }
        off += olen;
    }
    return true;
}

} // namespace syncwall::ctl
