// dataplane/frame_writer.hpp: the headers every frame syncwall builds starts with.
#include "dataplane/byte_order.hpp"
#include "dataplane/frame_writer.hpp"
#include "dataplane/packet.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>

using namespace syncwall;

TEST_CASE("an IPv4 header carries the fields asked for and a checksum that verifies",
          "[frame_writer]") {
    std::array<uint8_t, 20> ip{};
    const uint8_t src[4] = {192, 0, 2, 1}, dst[4] = {224, 0, 0, 18};
    REQUIRE(dp::write_ipv4_header(ip.data(), 56, dp::proto_carp, src, dst,
                                  {.id = 0x1234, .ttl = 255, .tos = 0x10, .dont_fragment = true}) ==
            20);
    CHECK(ip[0] == 0x45);
    CHECK(ip[1] == 0x10);
    CHECK(dp::load_be16(&ip[2]) == 56);
    CHECK(dp::load_be16(&ip[4]) == 0x1234);
    CHECK(dp::load_be16(&ip[6]) == 0x4000);
    CHECK(ip[8] == 255);
    CHECK(ip[9] == dp::proto_carp);
    CHECK(std::equal(src, src + 4, &ip[12]));
    CHECK(std::equal(dst, dst + 4, &ip[16]));
    CHECK(dp::internet_checksum(ip) == 0); // a header with its checksum sums to zero

    // Defaults: TTL 64, no DF, TOS 0, id 0.
    dp::write_ipv4_header(ip.data(), 40, dp::proto_tcp, src, dst);
    CHECK(ip[8] == 64);
    CHECK(dp::load_be16(&ip[6]) == 0);
    CHECK(ip[1] == 0);
    CHECK(dp::internet_checksum(ip) == 0);
}

TEST_CASE("an IPv6 header and an Ethernet header are laid out as on the wire", "[frame_writer]") {
    std::array<uint8_t, 40> ip6{};
    std::array<uint8_t, 16> src{0xfe, 0x80}, dst{0xff, 0x02};
    src[15] = 1;
    dst[15] = 0x12;
    REQUIRE(dp::write_ipv6_header(ip6.data(), 36, dp::proto_carp, 255, src.data(), dst.data()) ==
            40);
    CHECK(dp::load_be32(&ip6[0]) == 0x60000000u);
    CHECK(dp::load_be16(&ip6[4]) == 36);
    CHECK(ip6[6] == dp::proto_carp);
    CHECK(ip6[7] == 255);
    CHECK(std::equal(src.begin(), src.end(), &ip6[8]));
    CHECK(std::equal(dst.begin(), dst.end(), &ip6[24]));

    std::array<uint8_t, 14> eth{};
    const dp::Mac a{0, 0, 0x5e, 0, 1, 7}, b{2, 0, 0, 0, 0, 1};
    dp::write_ether(eth, a, b, dp::ether_type_ipv6);
    CHECK(std::equal(a.begin(), a.end(), &eth[0]));
    CHECK(std::equal(b.begin(), b.end(), &eth[6]));
    CHECK(dp::load_be16(&eth[12]) == 0x86dd);
}
