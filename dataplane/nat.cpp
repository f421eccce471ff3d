#include "dataplane/nat.hpp"

#include <cstring>

namespace syncwall::dp {

void checksum_replace(uint8_t *field, const uint8_t *from, const uint8_t *to, unsigned n,
                      bool udp) {
    uint32_t sum = uint32_t(~(uint32_t(field[0]) << 8 | field[1]) & 0xffff);
    for (unsigned i = 0; i + 1 < n; i += 2) {
        sum += uint32_t(~(uint32_t(from[i]) << 8 | from[i + 1]) & 0xffff);
        sum += uint32_t(to[i]) << 8 | to[i + 1];
    }
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    uint16_t hc = uint16_t(~sum);
    if (udp && hc == 0) hc = 0xffff;
    field[0] = uint8_t(hc >> 8);
    field[1] = uint8_t(hc);
}

namespace {

void put16(uint8_t *p, uint16_t v) {
    p[0] = uint8_t(v >> 8);
    p[1] = uint8_t(v);
}

} // namespace

void translate_packet(uint8_t *frame, std::size_t len, PacketDesc &d, const StateKey &to,
                      StateDirection dir) {
    const bool in = dir == StateDirection::in;
    const std::array<uint8_t, 16> &nsrc = to.addr[in ? 0 : 1], &ndst = to.addr[in ? 1 : 0];
    const uint16_t nsport = to.port[in ? 0 : 1], ndport = to.port[in ? 1 : 0];
    const unsigned alen = d.family == 4 ? 4 : 16;
    uint8_t *ip = frame + d.l3_offset;
    uint8_t *src = ip + (d.family == 4 ? 12 : 8), *dst = src + alen;
    uint8_t *l4 = d.has_l4 ? frame + d.l4_offset : nullptr;

    // The transport checksum and whether the addresses are in it (pseudo-header).
    uint8_t *l4sum = nullptr;
    bool pseudo = false, udp = false;
    if (l4 != nullptr) {
        switch (d.proto) {
        case proto_tcp:
            l4sum = l4 + 16;
            pseudo = true;
            break;
        case proto_udp:
            udp = true;
            pseudo = true;
            // An IPv4 datagram without a checksum keeps none.
            if (!(d.family == 4 && l4[6] == 0 && l4[7] == 0)) l4sum = l4 + 6;
            break;
        case proto_icmp:
            l4sum = l4 + 2;
            break;
        case proto_icmpv6:
            l4sum = l4 + 2;
            pseudo = true;
            break;
        default:
            break;
        }
        // A quoted header may stop before its checksum.
        if (l4sum != nullptr && std::size_t(l4sum - frame) + 2 > len) l4sum = nullptr;
    }
    auto set_addr = [&](uint8_t *field, const std::array<uint8_t, 16> &value,
                        std::array<uint8_t, 16> &desc) {
        if (std::memcmp(field, value.data(), alen) == 0) return;
        if (d.family == 4) checksum_replace(ip + 10, field, value.data(), 4);
        if (pseudo && l4sum != nullptr) checksum_replace(l4sum, field, value.data(), alen, udp);
        std::memcpy(field, value.data(), alen);
        desc = value;
    };
    set_addr(src, nsrc, d.src);
    set_addr(dst, ndst, d.dst);
    if (l4 == nullptr) return;

    auto set_port = [&](uint8_t *field, uint16_t value) {
        uint8_t n[2];
        put16(n, value);
        if (field[0] == n[0] && field[1] == n[1]) return;
        if (l4sum != nullptr) checksum_replace(l4sum, field, n, 2, udp);
        field[0] = n[0];
        field[1] = n[1];
    };
    if (std::size_t(d.l4_offset) + 8 > len) return; // ports and echo id are in the first 8
    if (d.proto == proto_tcp || d.proto == proto_udp) {
        set_port(l4, nsport);
        set_port(l4 + 2, ndport);
        d.sport = nsport;
        d.dport = ndport;
    } else if ((d.proto == proto_icmp || d.proto == proto_icmpv6) && !d.icmp.is_error) {
        // Echo request or reply: the id is both "ports" of the key.
        set_port(l4 + 4, nsport);
        d.sport = d.dport = nsport;
        d.icmp.id = nsport;
    }
}

bool translate_icmp_error(uint8_t *frame, std::size_t len, PacketDesc &d, const StateKey &to,
                          StateDirection dir) {
    if (!d.has_l4 || !d.icmp.is_error || d.icmp.quoted_len == 0 ||
        std::size_t(d.icmp.quoted_offset) + d.icmp.quoted_len > len)
        return false;
    uint8_t *quote = frame + d.icmp.quoted_offset;
    PacketDesc q;
    if (parse_quoted_packet({quote, d.icmp.quoted_len}, q) || q.family != d.family) return false;
    const std::array<uint8_t, 16> old_src = q.src, old_dst = q.dst;
    const StateDirection qdir =
        dir == StateDirection::in ? StateDirection::out : StateDirection::in;
    translate_packet(quote, d.icmp.quoted_len, q, to, qdir);

    // The outer addresses that were the quoted packet's (the error goes to its source, and
    // may come from its destination).
    const unsigned alen = d.family == 4 ? 4 : 16;
    uint8_t *ip = frame + d.l3_offset;
    uint8_t *src = ip + (d.family == 4 ? 12 : 8), *dst = src + alen;
    auto set_addr = [&](uint8_t *field, std::array<uint8_t, 16> &desc,
                        const std::array<uint8_t, 16> &was, const std::array<uint8_t, 16> &now) {
        if (desc != was || was == now) return;
        if (d.family == 4) checksum_replace(ip + 10, field, now.data(), 4);
        std::memcpy(field, now.data(), alen);
        desc = now;
    };
    set_addr(dst, d.dst, old_src, q.src);
    set_addr(src, d.src, old_dst, q.dst);

    // The ICMP checksum covers the quote (and, for ICMPv6, the addresses): sum it again.
    const std::size_t icmp_len = std::size_t(d.l3_total_len) - (d.l4_offset - d.l3_offset);
    if (std::size_t(d.l4_offset) + icmp_len > len) return true;
    uint8_t *icmp = frame + d.l4_offset;
    icmp[2] = icmp[3] = 0;
    const uint32_t initial = d.proto == proto_icmpv6 ? pseudo_header_sum(d, uint32_t(icmp_len)) : 0;
    const uint16_t sum = internet_checksum({icmp, icmp_len}, initial);
    icmp[2] = uint8_t(sum >> 8);
    icmp[3] = uint8_t(sum);
    return true;
}

} // namespace syncwall::dp
