// Forwarding rewrites, control-plane frame builders and the idle policy.
#include "control/slowpath/replies.hpp"
#include "dataplane/forward.hpp"
#include "dataplane/idle.hpp"
#include "dataplane/packet.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <vector>

using namespace syncwall;

namespace {

std::vector<uint8_t> ipv4_header(uint8_t ttl, uint16_t id) {
    std::vector<uint8_t> h{
        0x45, 0, 0,   20, uint8_t(id >> 8), uint8_t(id), 0x40, 0, ttl, 17, 0, 0, 192, 0, 2, 10,
        203,  0, 113, 5};
    ctl::set_ipv4_checksum(h.data());
    return h;
}

uint16_t stored_checksum(const std::vector<uint8_t> &h) {
    return uint16_t(h[10] << 8 | h[11]);
}

// A frame with Ethernet header in front of an IP packet, parsed.
dp::PacketDesc parse(const std::vector<uint8_t> &frame) {
    dp::PacketDesc d;
    REQUIRE_FALSE(dp::parse_packet(frame, d).has_value());
    return d;
}

} // namespace

TEST_CASE("TTL decrement keeps the IPv4 header checksum valid", "[forward]") {
    std::mt19937 rng(42);
    for (int i = 0; i < 2000; i++) {
        const uint8_t ttl = uint8_t(2 + rng() % 254);
        auto h = ipv4_header(ttl, uint16_t(rng()));
        dp::ipv4_decrement_ttl(h.data());
        CHECK(h[8] == ttl - 1);
        const uint16_t incremental = stored_checksum(h);
        ctl::set_ipv4_checksum(h.data());
        REQUIRE(incremental == stored_checksum(h));
        CHECK(dp::internet_checksum(h) == 0);
    }
}

TEST_CASE("IPv6 hop limit decrement", "[forward]") {
    uint8_t ip6[40] = {0x60};
    ip6[7] = 64;
    dp::ipv6_decrement_hop_limit(ip6);
    CHECK(ip6[7] == 63);
}

TEST_CASE("Ethernet rewrite sets destination then source", "[forward]") {
    uint8_t frame[14] = {};
    dp::ether_rewrite(frame, {1, 2, 3, 4, 5, 6}, {7, 8, 9, 10, 11, 12});
    CHECK(std::vector<uint8_t>(frame, frame + 12) ==
          std::vector<uint8_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
}

TEST_CASE("ARP reply frame has the RFC 826 layout", "[replies]") {
    std::vector<uint8_t> out(60);
    const ctl::Mac ours{2, 0, 0, 0, 0, 1}, theirs{2, 0, 0, 0, 0, 2};
    REQUIRE(ctl::build_arp(out, 2, theirs, ours, {192, 0, 2, 1}, theirs, {192, 0, 2, 10}) == 42);
    out.resize(42);
    const auto d = parse(out);
    CHECK(d.l3 == dp::L3Kind::arp);
    CHECK(d.arp.op == 2);
    CHECK(d.arp.sha == ours);
    CHECK(d.arp.spa == std::array<uint8_t, 4>{192, 0, 2, 1});
    CHECK(d.arp.tha == theirs);
    CHECK(d.arp.tpa == std::array<uint8_t, 4>{192, 0, 2, 10});
    CHECK(d.dst_mac == theirs);
    std::vector<uint8_t> small(41);
    CHECK(ctl::build_arp(small, 2, theirs, ours, {}, theirs, {}) == 0);
}

TEST_CASE("ICMP echo request turns into a valid reply in place", "[replies]") {
    std::vector<uint8_t> f(14, 0);
    f[12] = 0x08;
    auto ip = ipv4_header(5, 9);
    ip[9] = 1;
    ip[3] = 20 + 12;
    ctl::set_ipv4_checksum(ip.data());
    f.insert(f.end(), ip.begin(), ip.end());
    std::vector<uint8_t> icmp{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g'};
    const uint16_t c = dp::internet_checksum(icmp);
    icmp[2] = uint8_t(c >> 8);
    icmp[3] = uint8_t(c);
    f.insert(f.end(), icmp.begin(), icmp.end());
    const auto d = parse(f);
    REQUIRE(ctl::echo_request_to_reply(f, d));
    const auto r = parse(f);
    CHECK(r.icmp.type == 0);
    CHECK(r.icmp.id == 0x1234);
    CHECK(r.src == d.dst);
    CHECK(r.dst == d.src);
    CHECK(r.ttl == 64);
    CHECK(dp::internet_checksum(std::span(f).subspan(34)) == 0);
    // A reply is not turned around again.
    CHECK_FALSE(ctl::echo_request_to_reply(f, r));
}

TEST_CASE("ICMP time exceeded quotes the offending datagram", "[replies]") {
    const auto offending = ipv4_header(1, 77);
    std::vector<uint8_t> out(600);
    const auto n =
        ctl::build_icmp4_error(out, 11, 0, 0, {192, 0, 2, 1}, {192, 0, 2, 10}, offending, 5);
    REQUIRE(n == 20 + 8 + offending.size());
    std::vector<uint8_t> f(14, 0);
    f[12] = 0x08;
    f.insert(f.end(), out.begin(), out.begin() + long(n));
    const auto d = parse(f);
    CHECK(d.icmp.type == 11);
    CHECK(d.icmp.is_error);
    CHECK(d.ttl == 64);
    CHECK(dp::internet_checksum(std::span(f).subspan(34)) == 0);
    CHECK(std::equal(offending.begin(), offending.end(), f.begin() + 42));
}

TEST_CASE("ICMP errors never exceed 576 bytes", "[replies]") {
    std::vector<uint8_t> big(1500, 0xab), out(2000);
    CHECK(ctl::build_icmp4_error(out, 3, 4, 1400, {}, {}, big, 1) == 576);
    CHECK(ctl::build_icmp6_error(out, 2, 0, 1400, {}, {}, big) == 1280);
}

TEST_CASE("Neighbour solicitation and advertisement round-trip through parse_nd", "[replies]") {
    const ctl::Ip6 ours{0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const ctl::Ip6 target{0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34};
    const ctl::Mac mac{2, 0, 0, 0, 0, 9};
    std::vector<uint8_t> out(80);
    REQUIRE(ctl::build_neighbour_solicitation(out, ours, target, mac) == 72);
    CHECK(out[24] == 0xff);
    CHECK(out[35] == 0x01); // solicited-node group ff02::1:ff00:1234
    CHECK(out[36] == 0xff);
    CHECK(out[37] == 0x00);
    CHECK(out[38] == 0x12);
    CHECK(out[39] == 0x34);
    ctl::NdMessage nd;
    REQUIRE(ctl::parse_nd(std::span(out).subspan(40, 32), nd));
    CHECK(nd.target == target);
    CHECK(nd.has_lladdr);
    CHECK(nd.lladdr == mac);

    REQUIRE(ctl::build_neighbour_advertisement(out, target, ours, mac, true) == 72);
    REQUIRE(ctl::parse_nd(std::span(out).subspan(40, 32), nd));
    CHECK(nd.solicited);
    CHECK(nd.lladdr == mac);
    CHECK(ctl::ipv6_multicast_mac(ctl::solicited_node(target)) ==
          ctl::Mac{0x33, 0x33, 0xff, 0, 0x12, 0x34});
}

TEST_CASE("parse_nd rejects an option of length zero", "[replies]") {
    std::vector<uint8_t> icmp(32, 0);
    icmp[0] = 136;
    icmp[24] = 2;
    icmp[25] = 0;
    ctl::NdMessage nd;
    CHECK_FALSE(ctl::parse_nd(icmp, nd));
    icmp.resize(20);
    CHECK_FALSE(ctl::parse_nd(icmp, nd));
}

TEST_CASE("Adaptive idle backs off after empty polls and wakes on traffic", "[idle]") {
    dp::IdleBackoff idle(true, 500, 4);
    CHECK(idle.after_poll(0) == 0);
    CHECK(idle.after_poll(0) == 0);
    CHECK(idle.after_poll(0) == 0);
    CHECK(idle.after_poll(0) == dp::IdleBackoff::first_sleep_us);
    CHECK(idle.after_poll(0) == 2 * dp::IdleBackoff::first_sleep_us);
    uint32_t last = 0;
    for (int i = 0; i < 20; i++)
        last = idle.after_poll(0);
    CHECK(last == 500);
    CHECK(idle.after_poll(3) == 0);
    CHECK(idle.after_poll(0) == 0);
}

TEST_CASE("Busy idle policy never sleeps", "[idle]") {
    dp::IdleBackoff idle(false, 500, 1);
    for (int i = 0; i < 1000; i++)
        REQUIRE(idle.after_poll(0) == 0);
}

TEST_CASE("a TCP segment rewritten as a challenge ACK goes back to its sender", "[forward]") {
    // Ethernet + IPv4 + TCP SYN 192.0.2.10:40000 -> 203.0.113.5:80 with 4 payload bytes.
    std::vector<uint8_t> f(14, 0);
    f[12] = 0x08;
    auto ip = ipv4_header(64, 1);
    ip[9] = 6;
    ip[3] = 20 + 20 + 4;
    ctl::set_ipv4_checksum(ip.data());
    f.insert(f.end(), ip.begin(), ip.end());
    std::vector<uint8_t> tcp{0x9c, 0x40, 0,    80, 0, 0, 0x03, 0xe8, 0,   0,   0,   0,
                             0x50, 0x02, 0x20, 0,  0, 0, 0,    0,    'd', 'a', 't', 'a'};
    f.insert(f.end(), tcp.begin(), tcp.end());
    const auto d = parse(f);
    const std::size_t len = dp::tcp_rewrite_as_ack(f, d, 5000, 1234);
    REQUIRE(len == 14 + 20 + 20);
    f.resize(len);
    const auto r = parse(f);
    CHECK(r.src == d.dst);
    CHECK(r.dst == d.src);
    CHECK(r.sport == 80);
    CHECK(r.dport == 40000);
    CHECK(r.tcp.flags == dp::tcpf::ack);
    CHECK(r.tcp.seq == 5000);
    CHECK(r.tcp.ack == 1234);
    CHECK(r.tcp.window == 0);
    CHECK(r.tcp.payload_len == 0);
    CHECK(dp::internet_checksum(std::span(f).subspan(14, 20)) == 0);
    CHECK(dp::internet_checksum(std::span(f).subspan(34), dp::pseudo_header_sum(r, 20)) == 0);
}

TEST_CASE("parse_nd reads an NA's Solicited and Override flags, and an NS has neither",
          "[replies]") {
    std::vector<uint8_t> icmp(32, 0);
    icmp[0] = 136;
    icmp[24] = 2; // target link-layer address option
    icmp[25] = 1;
    ctl::NdMessage nd;
    REQUIRE(ctl::parse_nd(icmp, nd));
    CHECK_FALSE(nd.override_flag);
    CHECK_FALSE(nd.solicited);
    icmp[4] = 0x20; // O
    REQUIRE(ctl::parse_nd(icmp, nd));
    CHECK(nd.override_flag);
    CHECK_FALSE(nd.solicited);
    icmp[4] = 0x60; // S and O
    REQUIRE(ctl::parse_nd(icmp, nd));
    CHECK(nd.override_flag);
    CHECK(nd.solicited);
    icmp[0] = 135; // the same bits in an NS are reserved
    icmp[24] = 1;
    REQUIRE(ctl::parse_nd(icmp, nd));
    CHECK_FALSE(nd.override_flag);
}
