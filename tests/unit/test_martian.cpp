// Martian sources and destinations: what a router never forwards (martian.hpp).
#include "dataplane/martian.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace syncwall;
using namespace syncwall::dp;

namespace {

config::IpAddress ip(const std::string &text) {
    auto a = config::parse_ip_address(text);
    REQUIRE(a.has_value());
    return *a;
}

config::IpPrefix prefix(const std::string &text) {
    auto p = config::parse_ip_prefix(text);
    REQUIRE(p.has_value());
    return *p;
}

PacketDesc packet(const std::string &src, const std::string &dst) {
    const auto s = ip(src), d = ip(dst);
    PacketDesc p;
    p.family = s.family;
    p.src = s.bytes;
    p.dst = d.bytes;
    return p;
}

// lan 192.0.2.1/24, wan 198.51.100.1/24, a /31 link, an address of ours in 169.254/16, a
// CARP address, and IPv6 2001:db8::1/64 plus our own link-local fe80::1.
MartianCheck firewall() {
    return MartianCheck({prefix("192.0.2.1/24"), prefix("198.51.100.1/24"),
                         prefix("203.0.113.8/31"), prefix("169.254.7.1/16"),
                         prefix("2001:db8::1/64"), prefix("fe80::1/64")},
                        {ip("192.0.2.1"), ip("198.51.100.1"), ip("203.0.113.8"), ip("169.254.7.1"),
                         ip("192.0.2.254"), ip("2001:db8::1"), ip("fe80::1")});
}

std::string why(const MartianCheck &m, const std::string &src, const std::string &dst) {
    const auto r = m.check(packet(src, dst));
    return r ? std::string(name_of(*r)) : "ok";
}

} // namespace

TEST_CASE("martian IPv4 destinations are refused, each under its reason", "[martian]") {
    const MartianCheck m = firewall();
    CHECK(why(m, "192.0.2.5", "0.1.2.3") == "martian_dst_this_network");
    CHECK(why(m, "192.0.2.5", "127.0.0.1") == "martian_dst_loopback");
    CHECK(why(m, "192.0.2.5", "169.254.1.1") == "martian_dst_link_local");
    CHECK(why(m, "192.0.2.5", "224.0.0.5") == "martian_dst_multicast");
    CHECK(why(m, "192.0.2.5", "239.255.255.250") == "martian_dst_multicast");
    CHECK(why(m, "192.0.2.5", "240.0.0.1") == "martian_dst_reserved");
    CHECK(why(m, "192.0.2.5", "255.255.255.255") == "martian_dst_broadcast");
    CHECK(why(m, "192.0.2.5", "198.51.100.255") == "martian_dst_broadcast"); // directed
    CHECK(why(m, "198.51.100.9", "192.0.2.255") == "martian_dst_broadcast");
}

TEST_CASE("martian IPv4 sources are refused", "[martian]") {
    const MartianCheck m = firewall();
    CHECK(why(m, "0.0.0.0", "198.51.100.7") == "martian_src_this_network");
    CHECK(why(m, "0.9.9.9", "198.51.100.7") == "martian_src_this_network");
    CHECK(why(m, "127.0.0.1", "198.51.100.7") == "martian_src_loopback");
    CHECK(why(m, "127.3.2.1", "192.0.2.1") == "martian_src_loopback");
}

TEST_CASE("ordinary IPv4 traffic, our own addresses and /31 ends are not martians", "[martian]") {
    const MartianCheck m = firewall();
    CHECK(why(m, "192.0.2.5", "198.51.100.7") == "ok");
    CHECK(why(m, "192.0.2.5", "192.0.2.1") == "ok");     // to us
    CHECK(why(m, "192.0.2.5", "192.0.2.254") == "ok");   // our CARP address
    CHECK(why(m, "192.0.2.5", "169.254.7.1") == "ok");   // ours, though link-local
    CHECK(why(m, "192.0.2.5", "203.0.113.9") == "ok");   // a /31 has no broadcast
    CHECK(why(m, "192.0.2.5", "203.0.113.255") == "ok"); // not a connected network's
    CHECK(why(m, "192.0.2.5", "223.255.255.255") == "ok");
}

TEST_CASE("a directed broadcast is refused whatever its last byte, and only its network's",
          "[martian]") {
    // A /26's broadcast ends in 63: the check's first look (by the last byte) must not pass
    // it, and the same last byte elsewhere, or an address beside it, is ordinary traffic.
    const MartianCheck m({prefix("198.18.5.1/26"), prefix("2001:db8::1/64")},
                         {ip("198.18.5.1"), ip("2001:db8::1")});
    CHECK(why(m, "198.18.5.9", "198.18.5.63") == "martian_dst_broadcast");
    CHECK(why(m, "198.18.5.9", "198.18.5.62") == "ok");
    CHECK(why(m, "198.18.5.9", "198.18.6.63") == "ok");
    CHECK(why(m, "198.18.5.9", "198.18.5.255") == "ok"); // beyond the /26
    // Every first byte, as destination and as source, with the reason check4() gives.
    for (unsigned b = 0; b < 256; b++) {
        const std::string a = std::to_string(b) + ".1.1.1";
        const std::string as_dst = b == 0     ? "martian_dst_this_network"
                                   : b == 127 ? "martian_dst_loopback"
                                   : b >= 240 ? "martian_dst_reserved"
                                   : b >= 224 ? "martian_dst_multicast"
                                              : "ok";
        const std::string as_src = b == 0     ? "martian_src_this_network"
                                   : b == 127 ? "martian_src_loopback"
                                              : "ok"; // multicast sources: the parser's
        INFO("address " << a);
        CHECK(why(m, "198.18.5.9", a) == as_dst);
        CHECK(why(m, a, "198.18.9.9") == as_src);
    }
    CHECK(why(m, "198.18.5.9", "169.254.0.9") == "martian_dst_link_local");
    CHECK(why(m, "198.18.5.9", "169.253.0.9") == "ok");
    CHECK(why(m, "169.254.0.9", "198.18.9.9") == "ok"); // a link-local source is forwarded
}

TEST_CASE("martian IPv6 sources and destinations are refused", "[martian]") {
    const MartianCheck m = firewall();
    CHECK(why(m, "2001:db8::5", "::") == "martian_dst_this_network");
    CHECK(why(m, "2001:db8::5", "::1") == "martian_dst_loopback");
    CHECK(why(m, "2001:db8::5", "fe80::2") == "martian_dst_link_local");
    CHECK(why(m, "2001:db8::5", "febf::1") == "martian_dst_link_local");
    CHECK(why(m, "2001:db8::5", "ff02::5") == "martian_dst_multicast");
    CHECK(why(m, "2001:db8::5", "ff0e::1") == "martian_dst_multicast");
    CHECK(why(m, "::1", "2001:db8:1::7") == "martian_src_loopback");
    CHECK(why(m, "2001:db8::5", "2001:db8:1::7") == "ok");
    CHECK(why(m, "2001:db8::5", "fe80::1") == "ok"); // our own link-local
    CHECK(why(m, "2001:db8::5", "fec0::1") == "ok"); // outside fe80::/10
    CHECK(why(m, "2001:db8::5", "::2") == "ok");
}
