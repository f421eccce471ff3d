// translate_packet(): a packet rewritten to a translated state's other key, with every
// checksum patched incrementally, must equal the packet built whole with the new fields.
#include "dataplane/nat.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/state_logic.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

using namespace syncwall;
using dp::StateDirection;

namespace {

using Addr = std::array<uint8_t, 16>;

Addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return Addr{a, b, c, d};
}

Addr v6(uint16_t last) {
    Addr a{0x20, 0x01, 0x0d, 0xb8};
    a[14] = uint8_t(last >> 8);
    a[15] = uint8_t(last);
    return a;
}

uint32_t sum_words(const uint8_t *p, std::size_t n, uint32_t sum = 0) {
    for (std::size_t i = 0; i + 1 < n; i += 2)
        sum += uint32_t(p[i]) << 8 | p[i + 1];
    if (n % 2 != 0) sum += uint32_t(p[n - 1]) << 8;
    return sum;
}

uint16_t fold(uint32_t sum) {
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(~sum);
}

struct Spec {
    uint8_t family = 4, proto = dp::proto_tcp;
    Addr src{}, dst{};
    uint16_t sport = 0, dport = 0; // ICMP echo: sport is the id
    bool udp_no_checksum = false;
};

// An Ethernet frame with every checksum computed from scratch.
std::vector<uint8_t> build(const Spec &s) {
    const std::size_t l4len = s.proto == dp::proto_tcp ? 20 : 8;
    const std::size_t payload = 12;
    const std::size_t iplen = s.family == 4 ? 20 : 40;
    std::vector<uint8_t> f(14 + iplen + l4len + payload, 0);
    f[12] = s.family == 4 ? 0x08 : 0x86;
    f[13] = s.family == 4 ? 0x00 : 0xdd;
    for (std::size_t i = 0; i < payload; i++)
        f[14 + iplen + l4len + i] = uint8_t(0xa0 + i);
    uint8_t *ip = f.data() + 14, *l4 = ip + iplen;
    const unsigned alen = s.family == 4 ? 4 : 16;
    const uint16_t total = uint16_t(iplen + l4len + payload);
    if (s.family == 4) {
        ip[0] = 0x45;
        ip[2] = uint8_t(total >> 8);
        ip[3] = uint8_t(total);
        ip[8] = 64;
        ip[9] = s.proto;
        std::memcpy(ip + 12, s.src.data(), 4);
        std::memcpy(ip + 16, s.dst.data(), 4);
        const uint16_t hc = fold(sum_words(ip, 20));
        ip[10] = uint8_t(hc >> 8);
        ip[11] = uint8_t(hc);
    } else {
        ip[0] = 0x60;
        const uint16_t plen = uint16_t(l4len + payload);
        ip[4] = uint8_t(plen >> 8);
        ip[5] = uint8_t(plen);
        ip[6] = s.proto;
        ip[7] = 64;
        std::memcpy(ip + 8, s.src.data(), 16);
        std::memcpy(ip + 24, s.dst.data(), 16);
    }
    const uint16_t l4total = uint16_t(l4len + payload);
    std::size_t sum_at = 0;
    bool pseudo = true;
    if (s.proto == dp::proto_tcp) {
        l4[0] = uint8_t(s.sport >> 8), l4[1] = uint8_t(s.sport);
        l4[2] = uint8_t(s.dport >> 8), l4[3] = uint8_t(s.dport);
        l4[4] = 0x12, l4[7] = 0x34; // seq
        l4[12] = 0x50;
        l4[13] = 0x18; // PSH|ACK
        l4[14] = 0xff;
        sum_at = 16;
    } else if (s.proto == dp::proto_udp) {
        l4[0] = uint8_t(s.sport >> 8), l4[1] = uint8_t(s.sport);
        l4[2] = uint8_t(s.dport >> 8), l4[3] = uint8_t(s.dport);
        l4[4] = uint8_t(l4total >> 8), l4[5] = uint8_t(l4total);
        sum_at = 6;
    } else { // echo request
        l4[0] = s.proto == dp::proto_icmp ? 8 : 128;
        l4[4] = uint8_t(s.sport >> 8), l4[5] = uint8_t(s.sport);
        l4[7] = 1;
        sum_at = 2;
        pseudo = s.proto == dp::proto_icmpv6;
    }
    uint32_t sum = sum_words(l4, l4total);
    if (pseudo) {
        sum = sum_words(s.src.data(), alen, sum);
        sum = sum_words(s.dst.data(), alen, sum);
        sum += s.proto;
        sum += l4total;
    }
    uint16_t c = fold(sum);
    if (s.proto == dp::proto_udp && c == 0) c = 0xffff;
    if (s.udp_no_checksum) c = 0;
    l4[sum_at] = uint8_t(c >> 8);
    l4[sum_at + 1] = uint8_t(c);
    return f;
}

dp::PacketDesc parse(const std::vector<uint8_t> &f) {
    dp::PacketDesc d;
    REQUIRE_FALSE(dp::parse_packet({f.data(), f.size()}, d).has_value());
    return d;
}

// Translate `before` to `after`'s addresses and ports in direction `dir`; the result must be
// `after` byte for byte (every checksum as if computed whole) and its description updated.
void check_translation(const Spec &before, const Spec &after, StateDirection dir) {
    std::vector<uint8_t> f = build(before);
    dp::PacketDesc d = parse(f);
    const dp::StateKey to = dp::state_key(parse(build(after)), dir);
    dp::translate_packet(f.data(), f.size(), d, to, dir);
    CHECK(f == build(after));
    CHECK(d.src == after.src);
    CHECK(d.dst == after.dst);
    CHECK(dp::state_key(d, dir) == to);
    const dp::PacketDesc again = parse(f);
    CHECK(dp::l4_checksum_ok({f.data(), f.size()}, again));
}

// An IPv4 ICMP error (fragmentation needed) from `from` to `to_addr` quoting the first
// 28 bytes of `quoted`'s IP packet, every checksum computed whole.
std::vector<uint8_t> icmp_error(const Addr &from, const Addr &to_addr, const Spec &quoted) {
    const std::vector<uint8_t> q = build(quoted);
    const std::size_t qlen = 28;
    std::vector<uint8_t> f(14 + 20 + 8 + qlen, 0);
    f[12] = 0x08;
    uint8_t *ip = f.data() + 14, *icmp = ip + 20;
    const uint16_t total = uint16_t(20 + 8 + qlen);
    ip[0] = 0x45;
    ip[2] = uint8_t(total >> 8);
    ip[3] = uint8_t(total);
    ip[8] = 64;
    ip[9] = dp::proto_icmp;
    std::memcpy(ip + 12, from.data(), 4);
    std::memcpy(ip + 16, to_addr.data(), 4);
    const uint16_t hc = fold(sum_words(ip, 20));
    ip[10] = uint8_t(hc >> 8);
    ip[11] = uint8_t(hc);
    icmp[0] = 3; // unreachable
    icmp[1] = 4; // fragmentation needed
    icmp[6] = 0x05;
    icmp[7] = 0xdc; // next-hop MTU 1500
    std::memcpy(icmp + 8, q.data() + 14, qlen);
    const uint16_t c = fold(sum_words(icmp, 8 + qlen));
    icmp[2] = uint8_t(c >> 8);
    icmp[3] = uint8_t(c);
    return f;
}

} // namespace

TEST_CASE("an ICMP error quoting a translated packet is translated back, quote and all", "[nat]") {
    // The client's segment left as NAT:61234 -> server; a router on the way says the
    // segment was too big, to the NAT address. It must reach the client quoting the
    // segment as the client sent it.
    const Spec inside{4, dp::proto_tcp, v4(192, 0, 2, 10), v4(203, 0, 113, 80), 40000, 443};
    Spec outside = inside;
    outside.src = v4(198, 51, 100, 1);
    outside.sport = 61234;
    const Addr router = v4(203, 0, 113, 1);
    std::vector<uint8_t> f = icmp_error(router, outside.src, outside);
    dp::PacketDesc d = parse(f);
    REQUIRE(d.icmp.is_error);
    // The quoted segment travelled out; its state's key (stack) in that direction's order.
    const dp::StateKey to = dp::state_key(parse(build(inside)), StateDirection::out);
    REQUIRE(dp::translate_icmp_error(f.data(), f.size(), d, to, StateDirection::in));
    CHECK(f == icmp_error(router, inside.src, inside));
    CHECK(d.dst == inside.src);
    CHECK(d.src == router);
    const dp::PacketDesc again = parse(f);
    CHECK(dp::l4_checksum_ok({f.data(), f.size()}, again));
    // An unparsable quote is left alone.
    std::vector<uint8_t> cut = icmp_error(router, outside.src, outside);
    dp::PacketDesc dc = parse(cut);
    dc.icmp.quoted_len = 4;
    const std::vector<uint8_t> before = cut;
    CHECK_FALSE(dp::translate_icmp_error(cut.data(), cut.size(), dc, to, StateDirection::in));
    CHECK(cut == before);
}

TEST_CASE("nat-to rewrites an outbound TCP segment's source, checksums patched", "[nat]") {
    Spec in{4, dp::proto_tcp, v4(192, 0, 2, 10), v4(203, 0, 113, 80), 40000, 443};
    Spec out = in;
    out.src = v4(198, 51, 100, 1);
    out.sport = 61234;
    check_translation(in, out, StateDirection::out);
    // The reply comes back to the translated address and goes on to the inside host.
    Spec reply{4, dp::proto_tcp, in.dst, out.src, 443, 61234};
    Spec inside{4, dp::proto_tcp, in.dst, in.src, 443, 40000};
    check_translation(reply, inside, StateDirection::in);
}

TEST_CASE("rdr-to rewrites an inbound datagram's destination, UDP and IPv6", "[nat]") {
    Spec udp{4, dp::proto_udp, v4(203, 0, 113, 9), v4(198, 51, 100, 1), 5000, 8080};
    Spec to = udp;
    to.dst = v4(192, 0, 2, 10);
    to.dport = 80;
    check_translation(udp, to, StateDirection::in);

    Spec six{6, dp::proto_tcp, v6(0x99), v6(0x1), 50000, 8080};
    Spec six_to = six;
    six_to.dst = v6(0x10);
    six_to.dport = 80;
    check_translation(six, six_to, StateDirection::in);

    Spec six_udp{6, dp::proto_udp, v6(0x10), v6(0x53), 5353, 53};
    Spec six_udp_to = six_udp;
    six_udp_to.src = v6(0xffff);
    six_udp_to.sport = 62000;
    check_translation(six_udp, six_udp_to, StateDirection::out);
}

TEST_CASE("an IPv4 UDP datagram without a checksum keeps none", "[nat]") {
    Spec s{4, dp::proto_udp, v4(192, 0, 2, 10), v4(203, 0, 113, 80), 4000, 53};
    s.udp_no_checksum = true;
    Spec t = s;
    t.src = v4(198, 51, 100, 1);
    t.sport = 50001;
    check_translation(s, t, StateDirection::out);
}

TEST_CASE("ICMP echo ids are translated with the address, ICMPv6 over its pseudo-header", "[nat]") {
    Spec echo{4, dp::proto_icmp, v4(192, 0, 2, 10), v4(203, 0, 113, 80), 0x4242, 0x4242};
    Spec echo_to = echo;
    echo_to.src = v4(198, 51, 100, 1);
    echo_to.sport = echo_to.dport = 0xc350;
    check_translation(echo, echo_to, StateDirection::out);

    Spec echo6{6, dp::proto_icmpv6, v6(0x10), v6(0x80), 7, 7};
    Spec echo6_to = echo6;
    echo6_to.src = v6(0xffff);
    echo6_to.sport = echo6_to.dport = 51000;
    check_translation(echo6, echo6_to, StateDirection::out);
}

TEST_CASE("checksum_replace matches a checksum computed whole", "[nat]") {
    std::vector<uint8_t> data{0x12, 0x34, 0xab, 0xcd, 0x00, 0x01, 0xff, 0xfe};
    uint8_t field[2];
    const uint16_t before = fold(sum_words(data.data(), data.size()));
    field[0] = uint8_t(before >> 8);
    field[1] = uint8_t(before);
    const uint8_t to[4] = {0xff, 0xff, 0x00, 0x00};
    dp::checksum_replace(field, data.data() + 2, to, 4);
    std::memcpy(data.data() + 2, to, 4);
    const uint16_t whole = fold(sum_words(data.data(), data.size()));
    CHECK((uint16_t(field[0] << 8 | field[1]) == whole ||
           (whole == 0xffff && field[0] == 0 && field[1] == 0) ||
           (whole == 0 && field[0] == 0xff && field[1] == 0xff)));
}
