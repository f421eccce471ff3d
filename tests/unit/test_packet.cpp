// Packet parser tests: frames are built byte by byte, so every field the parser reads is one
// the test put there. Frames live in exact-size vectors, so a sanitizer build catches any
// read past the end.
#include "dataplane/packet.hpp"
#include "fuzz_seeds.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace syncwall::dp;

namespace {

using Bytes = std::vector<uint8_t>;
using Ip4Addr = std::array<uint8_t, 4>;
using Ip6Addr = std::array<uint8_t, 16>;

constexpr std::array<uint8_t, 6> mac_a{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr std::array<uint8_t, 6> mac_b{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
constexpr Ip4Addr ip4_client{192, 0, 2, 1};
constexpr Ip4Addr ip4_server{198, 51, 100, 7};
constexpr Ip4Addr ip4_router{203, 0, 113, 1};
constexpr Ip6Addr ip6_client{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
constexpr Ip6Addr ip6_server{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

void put8(Bytes &b, uint8_t v) {
    b.push_back(v);
}
void put16(Bytes &b, uint16_t v) {
    b.push_back(uint8_t(v >> 8));
    b.push_back(uint8_t(v));
}
void put32(Bytes &b, uint32_t v) {
    put16(b, uint16_t(v >> 16));
    put16(b, uint16_t(v));
}
// Byte by byte rather than vector::insert: GCC 12 at -O3 flags the inlined insert of a
// range into a vector grown by push_back with false -Warray-bounds/-Wstringop-overflow
// (GCC bug 107852), which broke the release build under -Werror.
template <class C> void put(Bytes &b, const C &c) {
    for (const auto byte : c)
        b.push_back(uint8_t(byte));
}
void put(Bytes &b, std::initializer_list<uint8_t> c) {
    for (const uint8_t byte : c)
        b.push_back(byte);
}
Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes &p : parts)
        put(out, p);
    return out;
}

// Straightforward RFC 1071 reference, independent of the code under test.
uint16_t ref_checksum(const Bytes &b, uint32_t initial = 0) {
    uint64_t sum = initial;
    for (size_t i = 0; i < b.size(); i += 2)
        sum += uint32_t(b[i]) << 8 | (i + 1 < b.size() ? b[i + 1] : 0);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(~sum);
}

// Ethernet header; `tags` are (TPID, TCI) pairs inserted before the type.
Bytes eth(uint16_t type, std::vector<std::pair<uint16_t, uint16_t>> tags = {}) {
    Bytes b;
    put(b, mac_a);
    put(b, mac_b);
    for (auto [tpid, tci] : tags) {
        put16(b, tpid);
        put16(b, tci);
    }
    put16(b, type);
    return b;
}

struct Ip4 {
    uint8_t tos = 0x10, ttl = 64, proto = proto_tcp;
    uint16_t id = 0x1234;
    uint16_t frag = 0x4000; // DF
    Ip4Addr src = ip4_client, dst = ip4_server;
    Bytes options;                        // padded by the caller to a multiple of 4
    std::optional<uint16_t> total_len;    // override
    std::optional<uint8_t> version_ihl;   // override
    std::optional<uint16_t> checksum_xor; // corrupt the computed checksum
};

Bytes ipv4(const Ip4 &h, const Bytes &payload) {
    Bytes b;
    const size_t hl = 20 + h.options.size();
    put8(b, h.version_ihl.value_or(uint8_t(0x40 | (hl / 4))));
    put8(b, h.tos);
    put16(b, h.total_len.value_or(uint16_t(hl + payload.size())));
    put16(b, h.id);
    put16(b, h.frag);
    put8(b, h.ttl);
    put8(b, h.proto);
    put16(b, 0);
    put(b, h.src);
    put(b, h.dst);
    put(b, h.options);
    const uint16_t c = ref_checksum(b) ^ h.checksum_xor.value_or(0);
    b[10] = uint8_t(c >> 8);
    b[11] = uint8_t(c);
    put(b, payload);
    return b;
}

struct Ip6 {
    uint8_t tclass = 0x28, hop_limit = 64, next = proto_tcp;
    uint32_t flow = 0x12345;
    Ip6Addr src = ip6_client, dst = ip6_server;
    std::optional<uint16_t> payload_len;
    uint8_t version = 6;
};

Bytes ipv6(const Ip6 &h, const Bytes &payload) {
    Bytes b;
    put32(b, uint32_t(h.version) << 28 | uint32_t(h.tclass) << 20 | (h.flow & 0xfffff));
    put16(b, h.payload_len.value_or(uint16_t(payload.size())));
    put8(b, h.next);
    put8(b, h.hop_limit);
    put(b, h.src);
    put(b, h.dst);
    put(b, payload);
    return b;
}

// Hop-by-hop or destination options header of `len` bytes (multiple of 8), PadN-filled.
Bytes ext_opts(uint8_t next, size_t len = 8) {
    // Sized first, then filled: the same bytes as {next, ...} plus resize(), which GCC 12
    // at -O3 also warns about (see put()).
    Bytes b(len, 0);
    b[0] = next;
    b[1] = uint8_t(len / 8 - 1);
    b[2] = 1;
    b[3] = uint8_t(len - 4);
    return b;
}
Bytes ext_routing(uint8_t next) {
    return {next, 0, 4, 0, 0, 0, 0, 0};
}
Bytes ext_frag(uint8_t next, uint16_t offset_units, bool more, uint32_t id = 0xabcdef01) {
    Bytes b{next, 0};
    put16(b, uint16_t(offset_units << 3 | (more ? 1 : 0)));
    put32(b, id);
    return b;
}
Bytes ext_auth(uint8_t next) { // 12 bytes of ICV: payload length (24 / 4) - 2 = 4
    Bytes b{next, 4, 0, 0};
    put32(b, 0x100); // SPI
    put32(b, 1);     // sequence
    b.resize(24, 0xaa);
    return b;
}

struct Tcp {
    uint16_t sport = 40000, dport = 443;
    uint32_t seq = 0x11223344, ack = 0;
    uint8_t flags = tcpf::syn;
    uint16_t window = 64240;
    Bytes options; // padded by the caller to a multiple of 4
    Bytes payload;
    std::optional<uint8_t> data_offset; // override, in 32-bit words
};

Bytes tcp(const Tcp &t) {
    Bytes b;
    put16(b, t.sport);
    put16(b, t.dport);
    put32(b, t.seq);
    put32(b, t.ack);
    put8(b, uint8_t(t.data_offset.value_or(uint8_t(5 + t.options.size() / 4)) << 4));
    put8(b, t.flags);
    put16(b, t.window);
    put16(b, 0); // checksum: not the parser's business
    put16(b, 0);
    put(b, t.options);
    put(b, t.payload);
    return b;
}

// Linux's SYN options: MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
Bytes syn_options(uint32_t ts_val = 0x01020304, uint32_t ts_ecr = 0) {
    Bytes o{2, 4, 0x05, 0xb4, 4, 2, 8, 10};
    put32(o, ts_val);
    put32(o, ts_ecr);
    put(o, {1, 3, 3, 7});
    return o;
}

Bytes udp(uint16_t sport, uint16_t dport, const Bytes &payload,
          std::optional<uint16_t> len = std::nullopt) {
    Bytes b;
    put16(b, sport);
    put16(b, dport);
    put16(b, len.value_or(uint16_t(8 + payload.size())));
    put16(b, 0);
    put(b, payload);
    return b;
}

// ICMP or ICMPv6 header; `rest` is the second 32-bit word (echo: id << 16 | seq).
Bytes icmp(uint8_t type, uint8_t code, uint32_t rest, const Bytes &payload = {}) {
    Bytes b{type, code, 0, 0};
    put32(b, rest);
    put(b, payload);
    return b;
}

Bytes arp(uint16_t op, uint16_t htype = 1, uint16_t ptype = 0x0800, uint8_t hlen = 6,
          uint8_t plen = 4) {
    Bytes b;
    put16(b, htype);
    put16(b, ptype);
    put8(b, hlen);
    put8(b, plen);
    put16(b, op);
    put(b, mac_b);
    put(b, ip4_client);
    put(b, std::array<uint8_t, 6>{});
    put(b, ip4_server);
    return b;
}

Bytes tcp_syn_frame() {
    return cat({eth(ether_type_ipv4), ipv4({}, tcp({.options = syn_options()}))});
}

Bytes ipv4_frame(const Ip4 &h, const Bytes &payload) {
    return cat({eth(ether_type_ipv4), ipv4(h, payload)});
}

Bytes ipv6_frame(const Ip6 &h, const Bytes &payload) {
    return cat({eth(ether_type_ipv6), ipv6(h, payload)});
}

Bytes tcp4_frame(const Tcp &t) {
    return ipv4_frame({}, tcp(t));
}

Bytes udp4_frame(const Bytes &payload = {'h', 'i'}) {
    return ipv4_frame({.proto = proto_udp}, udp(5353, 53, payload));
}

Bytes icmp_echo_frame() {
    return ipv4_frame({.proto = proto_icmp}, icmp(8, 0, 0xbeef0007, {'p', 'i', 'n', 'g'}));
}

// The first bytes of the packet an ICMP error quotes: the client's TCP segment, whose
// header claims 1500 bytes although only 28 are quoted.
Bytes quoted_tcp4() {
    Bytes q = ipv4({.total_len = 1500}, tcp({.flags = tcpf::ack | tcpf::psh}));
    q.resize(28);
    return q;
}

// "Fragmentation needed" from a router to the client, quoting the client's segment.
Bytes icmp_error_frame() {
    return ipv4_frame({.proto = proto_icmp, .src = ip4_router, .dst = ip4_client},
                      icmp(3, 4, 1400, quoted_tcp4()));
}

Bytes tcp6_ext_frame() {
    return ipv6_frame({.next = ipv6_ext_hop_by_hop},
                      cat({ext_opts(ipv6_ext_dest_opts), ext_opts(proto_tcp, 16),
                           tcp({.flags = tcpf::ack, .payload = {1, 2, 3}})}));
}

Bytes arp_frame() {
    return cat({eth(ether_type_arp), arp(1)});
}

std::optional<DropReason> parse(const Bytes &frame, PacketDesc &d) {
    return parse_packet(std::span<const uint8_t>(frame.data(), frame.size()), d);
}

std::optional<DropReason> parse(const Bytes &frame) {
    PacketDesc d;
    return parse(frame, d);
}

std::string reason_name(std::optional<DropReason> r) {
    return r ? std::string(name_of(*r)) : std::string("accepted");
}

#define REQUIRE_ACCEPTED(expr)                                                                     \
    do {                                                                                           \
        const auto r_ = (expr);                                                                    \
        INFO("parse result: " << reason_name(r_));                                                 \
        REQUIRE_FALSE(r_.has_value());                                                             \
    } while (0)

#define REQUIRE_DROPPED(expr, reason)                                                              \
    do {                                                                                           \
        const auto r_ = (expr);                                                                    \
        REQUIRE(reason_name(r_) == std::string(name_of(reason)));                                  \
    } while (0)

Ip4Addr addr4(const PacketDesc &d) {
    return {d.src[0], d.src[1], d.src[2], d.src[3]};
}
Ip4Addr dst4(const PacketDesc &d) {
    return {d.dst[0], d.dst[1], d.dst[2], d.dst[3]};
}

bool tail_zero(const std::array<uint8_t, 16> &a) {
    return std::all_of(a.begin() + 4, a.end(), [](uint8_t x) { return x == 0; });
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Checksums

TEST_CASE("internet_checksum of the classic IPv4 header example is 0xb861", "[packet]") {
    Bytes h{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
            0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    CHECK(internet_checksum(h) == 0xb861);
    // Stored big-endian, the header then verifies to zero.
    h[10] = 0xb8;
    h[11] = 0x61;
    CHECK(internet_checksum(h) == 0);
}

TEST_CASE("internet_checksum matches the RFC 1071 example and edge cases", "[packet]") {
    // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2.
    CHECK(internet_checksum(Bytes{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}) == 0x220d);
    CHECK(internet_checksum(Bytes{}) == 0xffff);
    CHECK(internet_checksum(Bytes{0x01}) == 0xfeff); // odd byte is the high byte
    CHECK(internet_checksum(Bytes{0x12, 0x34, 0x56}) == uint16_t(~(0x1234 + 0x5600)));
    CHECK(internet_checksum(Bytes{}, 0x1234) == 0xedcb);
    CHECK(internet_checksum(Bytes{}, 0xffffffffu) == 0x0000); // folds with end-around carry
    CHECK(internet_checksum(Bytes{0xff, 0xff, 0x00, 0x01}) == 0xfffe);
}

TEST_CASE("internet_checksum agrees with a reference at every length and alignment", "[packet]") {
    std::mt19937 rng(1071);
    for (size_t len = 0; len <= 200; ++len) {
        for (size_t shift = 0; shift < 4; ++shift) {
            Bytes buf(len + shift);
            for (auto &x : buf)
                x = uint8_t(rng());
            const uint32_t initial = rng() % 4 == 0 ? rng() : rng() & 0x3ffff;
            const Bytes data(buf.begin() + long(shift), buf.end());
            const std::span<const uint8_t> s(buf.data() + shift, len);
            INFO("len " << len << " shift " << shift << " initial " << initial);
            REQUIRE(internet_checksum(s, initial) == ref_checksum(data, initial));
        }
    }
    // Bytes that carry out of every addition, and the largest initial sum.
    for (const uint8_t fill : {uint8_t(0xff), uint8_t(0xfe), uint8_t(0x80)}) {
        for (size_t len = 0; len <= 80; ++len) {
            const Bytes data(len, fill);
            for (const uint32_t initial : {0u, 1u, 0xffffu, 0xffffffffu}) {
                INFO("len " << len << " fill " << int(fill) << " initial " << initial);
                REQUIRE(internet_checksum(data, initial) == ref_checksum(data, initial));
            }
        }
    }
}

TEST_CASE("pseudo_header_sum gives the right IPv4 UDP checksum", "[packet]") {
    const Bytes frame = ipv4_frame({.proto = proto_udp}, udp(1234, 53, {'h', 'e', 'l', 'l', 'o'}));
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(frame, d));
    const std::span<const uint8_t> l4(frame.data() + d.l4_offset, 13);
    // Value computed independently (Python) for 192.0.2.1 -> 198.51.100.7, 1234 -> 53, "hello".
    CHECK(internet_checksum(l4, pseudo_header_sum(d, 13)) == 0xcabe);
}

TEST_CASE("pseudo_header_sum gives the right ICMPv6 checksum", "[packet]") {
    const Bytes frame =
        ipv6_frame({.next = proto_icmpv6}, icmp(128, 0, 0x12340001, {'a', 'b', 'c'}));
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(frame, d));
    const std::span<const uint8_t> l4(frame.data() + d.l4_offset, 11);
    // Value computed independently for 2001:db8::1 -> 2001:db8::2, echo id 0x1234 seq 1 "abc".
    CHECK(internet_checksum(l4, pseudo_header_sum(d, 11)) == 0x4dad);
}

TEST_CASE("a TCP segment with its checksum filled in verifies to zero", "[packet]") {
    Bytes frame = tcp_syn_frame();
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(frame, d));
    const size_t l4_len = size_t(d.l3_total_len - d.l3_header_len);
    Bytes seg(frame.begin() + d.l4_offset, frame.begin() + d.l4_offset + long(l4_len));
    Bytes pseudo;
    put(pseudo, ip4_client);
    put(pseudo, ip4_server);
    put(pseudo, {0, proto_tcp});
    put16(pseudo, uint16_t(l4_len));
    const uint16_t c = ref_checksum(cat({pseudo, seg}));
    CHECK(internet_checksum(seg, pseudo_header_sum(d, uint32_t(l4_len))) == c);
    frame[d.l4_offset + 16] = uint8_t(c >> 8);
    frame[d.l4_offset + 17] = uint8_t(c);
    CHECK(internet_checksum(std::span<const uint8_t>(frame.data() + d.l4_offset, l4_len),
                            pseudo_header_sum(d, uint32_t(l4_len))) == 0);
}

// ---------------------------------------------------------------------------------------------
// Valid packets

TEST_CASE("a TCP SYN with MSS, SACK permitted, timestamps and window scale fills every field",
          "[packet]") {
    const Bytes frame = tcp_syn_frame();
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(frame, d));
    CHECK(d.dst_mac == mac_a);
    CHECK(d.src_mac == mac_b);
    CHECK(d.ether_type == ether_type_ipv4);
    CHECK_FALSE(d.has_vlan);
    CHECK(d.vlan_tci == 0);
    CHECK(d.l3_offset == 14);
    CHECK(d.l3 == L3Kind::ipv4);
    CHECK(d.frame_len == frame.size());
    CHECK(d.frame_len == 14 + 20 + 40);
    CHECK(int(d.family) == 4);
    CHECK(addr4(d) == ip4_client);
    CHECK(dst4(d) == ip4_server);
    CHECK(tail_zero(d.src));
    CHECK(tail_zero(d.dst));
    CHECK(int(d.proto) == proto_tcp);
    CHECK(int(d.ttl) == 64);
    CHECK(int(d.tos) == 0x10);
    CHECK(d.l3_header_len == 20);
    CHECK(d.l3_total_len == 60);
    CHECK(d.l4_offset == 34);
    CHECK_FALSE(d.has_ip_options);
    CHECK_FALSE(d.is_fragment);
    CHECK_FALSE(d.is_first_fragment);
    CHECK(d.has_l4);
    CHECK(d.sport == 40000);
    CHECK(d.dport == 443);
    CHECK(d.tcp.seq == 0x11223344);
    CHECK(d.tcp.ack == 0);
    CHECK(d.tcp.window == 64240);
    CHECK(int(d.tcp.flags) == tcpf::syn);
    CHECK(int(d.tcp.header_len) == 40);
    CHECK(d.tcp.payload_len == 0);
    CHECK(d.tcp.mss == 1460);
    CHECK(int(d.tcp.wscale) == 7);
    CHECK(d.tcp.sack_permitted);
    CHECK_FALSE(d.tcp.has_sack);
    CHECK(d.tcp.has_timestamp);
    CHECK(d.tcp.ts_val == 0x01020304);
    CHECK(d.tcp.ts_ecr == 0);
    CHECK(int(d.icmp.type) == 0);
    CHECK_FALSE(d.icmp.is_error);
    CHECK(d.arp.op == 0);
}

TEST_CASE("a TCP segment without options reports absent options and its payload length",
          "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(tcp4_frame({.seq = 7,
                                       .ack = 0xfffffff0,
                                       .flags = tcpf::ack | tcpf::psh,
                                       .window = 512,
                                       .payload = Bytes(100, 'x')}),
                           d));
    CHECK(int(d.tcp.header_len) == 20);
    CHECK(d.tcp.payload_len == 100);
    CHECK(d.tcp.ack == 0xfffffff0);
    CHECK(d.tcp.window == 512);
    CHECK(d.tcp.mss == 0);
    CHECK(int(d.tcp.wscale) == -1);
    CHECK_FALSE(d.tcp.sack_permitted);
    CHECK_FALSE(d.tcp.has_timestamp);
}

TEST_CASE("TCP SACK blocks, unknown options and bytes after EOL are accepted", "[packet]") {
    Bytes opts{1, 1, 5, 18};
    for (int i = 0; i < 16; ++i)
        opts.push_back(uint8_t(i));
    put(opts, {30, 6, 9, 9, 9, 9});               // unknown kind, skipped by its length
    put(opts, {0, 0xff, 0xff, 0xff, 0xff, 0xff}); // EOL, then garbage that must be ignored
    REQUIRE(opts.size() % 4 == 0);
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(tcp4_frame({.flags = tcpf::ack, .options = opts}), d));
    CHECK(d.tcp.has_sack);
    CHECK(int(d.tcp.header_len) == 20 + int(opts.size()));
}

TEST_CASE("a huge TCP window scale reads as a non-negative shift", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(tcp4_frame({.options = {3, 3, 200, 0}}), d));
    CHECK(int(d.tcp.wscale) == 127);
}

TEST_CASE("valid TCP flag combinations are accepted", "[packet]") {
    for (uint8_t f :
         {uint8_t(tcpf::syn), uint8_t(tcpf::syn | tcpf::ack),
          uint8_t(tcpf::syn | tcpf::ece | tcpf::cwr), uint8_t(tcpf::ack),
          uint8_t(tcpf::fin | tcpf::ack), uint8_t(tcpf::rst), uint8_t(tcpf::rst | tcpf::ack),
          uint8_t(tcpf::ack | tcpf::psh | tcpf::urg), uint8_t(tcpf::psh)}) {
        INFO("flags " << int(f));
        PacketDesc d;
        REQUIRE_ACCEPTED(parse(tcp4_frame({.flags = f}), d));
        CHECK(int(d.tcp.flags) == f);
    }
}

TEST_CASE("an IPv6 TCP segment after hop-by-hop and destination options fills every field",
          "[packet]") {
    const Bytes frame = tcp6_ext_frame();
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(frame, d));
    CHECK(d.ether_type == ether_type_ipv6);
    CHECK(d.l3 == L3Kind::ipv6);
    CHECK(int(d.family) == 6);
    CHECK(d.l3_offset == 14);
    CHECK(d.src == ip6_client);
    CHECK(d.dst == ip6_server);
    CHECK(int(d.tos) == 0x28);
    CHECK(int(d.ttl) == 64);
    CHECK(int(d.proto) == proto_tcp);
    CHECK(d.l3_header_len == 40 + 8 + 16);
    CHECK(d.l3_total_len == 40 + 8 + 16 + 23);
    CHECK(d.l4_offset == 14 + 64);
    CHECK(d.frame_len == frame.size());
    CHECK(d.has_l4);
    CHECK_FALSE(d.is_fragment);
    CHECK(d.sport == 40000);
    CHECK(d.dport == 443);
    CHECK(int(d.tcp.flags) == tcpf::ack);
    CHECK(int(d.tcp.header_len) == 20);
    CHECK(d.tcp.payload_len == 3);
}

TEST_CASE("IPv6 routing and authentication headers are walked", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(
        ipv6_frame({.next = ipv6_ext_routing},
                   cat({ext_routing(ipv6_ext_auth), ext_auth(proto_udp), udp(546, 547, {1, 2})})),
        d));
    CHECK(int(d.proto) == proto_udp);
    CHECK(d.l3_header_len == 40 + 8 + 24);
    CHECK(d.sport == 546);
    CHECK(d.dport == 547);
    CHECK(d.has_l4);
}

TEST_CASE("IPv6 accepts a chain of exactly ipv6_max_ext_headers extension headers", "[packet]") {
    Bytes exts;
    for (int i = 0; i < ipv6_max_ext_headers; ++i)
        put(exts, ext_opts(i + 1 < ipv6_max_ext_headers ? ipv6_ext_dest_opts : proto_udp));
    PacketDesc d;
    REQUIRE_ACCEPTED(
        parse(ipv6_frame({.next = ipv6_ext_dest_opts}, cat({exts, udp(1, 2, {})})), d));
    CHECK(d.l3_header_len == 40 + 8 * ipv6_max_ext_headers);
    CHECK(d.has_l4);
}

TEST_CASE("IPv6 No Next Header carries no transport header", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(
        parse(ipv6_frame({.next = ipv6_ext_dest_opts}, cat({ext_opts(ipv6_no_next_header)})), d));
    CHECK(int(d.proto) == ipv6_no_next_header);
    CHECK_FALSE(d.has_l4);
    CHECK(d.l3_header_len == 48);
}

TEST_CASE("a UDP datagram fills ports and accepts Ethernet padding", "[packet]") {
    Bytes frame = udp4_frame({'h', 'i'});
    frame.resize(60, 0); // minimum Ethernet frame
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(frame, d));
    CHECK(int(d.proto) == proto_udp);
    CHECK(d.sport == 5353);
    CHECK(d.dport == 53);
    CHECK(d.l3_total_len == 20 + 8 + 2);
    CHECK(d.frame_len == 60);
    CHECK(d.has_l4);
}

TEST_CASE("a UDP length shorter than the IP payload is accepted", "[packet]") {
    REQUIRE_ACCEPTED(parse(ipv4_frame({.proto = proto_udp}, udp(1, 2, {1, 2, 3, 4}, 10))));
}

TEST_CASE("an ICMP echo request fills type, code, id, sequence and the pf ports", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(icmp_echo_frame(), d));
    CHECK(int(d.proto) == proto_icmp);
    CHECK(d.has_l4);
    CHECK(int(d.icmp.type) == 8);
    CHECK(int(d.icmp.code) == 0);
    CHECK(d.icmp.id == 0xbeef);
    CHECK(d.icmp.seq == 7);
    CHECK(d.sport == 0xbeef);
    CHECK(d.dport == 0xbeef);
    CHECK_FALSE(d.icmp.is_error);
    CHECK(d.icmp.quoted_len == 0);
}

TEST_CASE("an ICMP echo reply fills id and sequence", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(ipv4_frame({.proto = proto_icmp}, icmp(0, 0, 0x00420009)), d));
    CHECK(d.icmp.id == 0x42);
    CHECK(d.icmp.seq == 9);
    CHECK(d.sport == 0x42);
}

TEST_CASE("ICMP error types point at the quoted packet", "[packet]") {
    for (uint8_t type : {3, 4, 5, 11, 12}) {
        INFO("type " << int(type));
        PacketDesc d;
        REQUIRE_ACCEPTED(
            parse(ipv4_frame({.proto = proto_icmp}, icmp(type, 0, 0, quoted_tcp4())), d));
        CHECK(d.icmp.is_error);
        CHECK(d.icmp.quoted_offset == 14 + 20 + 8);
        CHECK(d.icmp.quoted_len == 28);
        CHECK(d.sport == 0);
        CHECK(d.dport == 0);
    }
    for (uint8_t type : {9, 10, 13, 14, 42}) {
        INFO("type " << int(type));
        PacketDesc d;
        REQUIRE_ACCEPTED(parse(ipv4_frame({.proto = proto_icmp}, icmp(type, 0, 0x10002)), d));
        CHECK_FALSE(d.icmp.is_error);
        CHECK(d.icmp.id == 0);
        CHECK(int(d.icmp.type) == type);
    }
}

TEST_CASE("the packet quoted by an ICMP error yields its addresses, ports and sequence",
          "[packet]") {
    const Bytes frame = icmp_error_frame();
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(frame, d));
    CHECK(addr4(d) == ip4_router);
    CHECK(int(d.icmp.type) == 3);
    CHECK(int(d.icmp.code) == 4);
    REQUIRE(d.icmp.is_error);
    REQUIRE(d.icmp.quoted_offset + d.icmp.quoted_len == frame.size());
    const Bytes q(frame.begin() + d.icmp.quoted_offset, frame.end());
    PacketDesc inner;
    REQUIRE_ACCEPTED(parse_quoted_packet(q, inner));
    CHECK(int(inner.family) == 4);
    CHECK(addr4(inner) == ip4_client);
    CHECK(dst4(inner) == ip4_server);
    CHECK(tail_zero(inner.src));
    CHECK(int(inner.proto) == proto_tcp);
    CHECK(inner.sport == 40000);
    CHECK(inner.dport == 443);
    CHECK(inner.tcp.seq == 0x11223344);
    CHECK(inner.l3_offset == 0);
    CHECK(inner.l3_header_len == 20);
    CHECK(inner.l3_total_len == 1500);
    CHECK(inner.l4_offset == 20);
    CHECK(inner.has_l4);
}

TEST_CASE("a quoted packet does not need a valid IPv4 checksum", "[packet]") {
    Bytes q = quoted_tcp4();
    q[10] ^= 0x55;
    PacketDesc d;
    REQUIRE_ACCEPTED(parse_quoted_packet(q, d));
    CHECK(d.sport == 40000);
}

TEST_CASE("a quoted UDP datagram and a quoted ICMP echo yield their ports and id", "[packet]") {
    PacketDesc inner;
    REQUIRE_ACCEPTED(parse_quoted_packet(ipv4({.proto = proto_udp}, udp(5353, 53, {})), inner));
    CHECK(int(inner.proto) == proto_udp);
    CHECK(inner.sport == 5353);
    CHECK(inner.dport == 53);
    CHECK(inner.tcp.seq == 0);

    REQUIRE_ACCEPTED(
        parse_quoted_packet(ipv4({.proto = proto_icmp}, icmp(8, 0, 0x77770001)), inner));
    CHECK(int(inner.icmp.type) == 8);
    CHECK(inner.icmp.id == 0x7777);
    CHECK(inner.sport == 0x7777);
    CHECK(inner.dport == 0x7777);
}

TEST_CASE("an ICMPv6 error quoting an IPv6 TCP segment with extension headers is understood",
          "[packet]") {
    Bytes quoted =
        ipv6({.next = ipv6_ext_hop_by_hop},
             cat({ext_opts(proto_tcp), tcp({.flags = tcpf::ack, .payload = Bytes(50)})}));
    quoted.resize(40 + 8 + 8); // truncated after 8 transport bytes
    const Bytes frame = ipv6_frame({.next = proto_icmpv6, .src = ip6_server, .dst = ip6_client},
                                   icmp(1, 4, 0, quoted));
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(frame, d));
    CHECK(int(d.proto) == proto_icmpv6);
    CHECK(int(d.icmp.type) == 1);
    CHECK(int(d.icmp.code) == 4);
    REQUIRE(d.icmp.is_error);
    CHECK(d.icmp.quoted_offset == 14 + 40 + 8);
    CHECK(d.icmp.quoted_len == quoted.size());
    PacketDesc inner;
    REQUIRE_ACCEPTED(parse_quoted_packet(quoted, inner));
    CHECK(int(inner.family) == 6);
    CHECK(inner.src == ip6_client);
    CHECK(inner.dst == ip6_server);
    CHECK(int(inner.proto) == proto_tcp);
    CHECK(inner.l3_header_len == 48);
    CHECK(inner.l4_offset == 48);
    CHECK(inner.sport == 40000);
    CHECK(inner.dport == 443);
    CHECK(inner.tcp.seq == 0x11223344);
}

TEST_CASE("ICMPv6 error, echo and neighbour discovery types are told apart", "[packet]") {
    for (uint8_t type : {1, 2, 3, 4}) {
        PacketDesc d;
        REQUIRE_ACCEPTED(parse(ipv6_frame({.next = proto_icmpv6}, icmp(type, 0, 0, Bytes(48))), d));
        CHECK(d.icmp.is_error);
        CHECK(d.icmp.quoted_len == 48);
    }
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(ipv6_frame({.next = proto_icmpv6}, icmp(129, 0, 0x00050006)), d));
    CHECK_FALSE(d.icmp.is_error);
    CHECK(int(d.icmp.type) == 129);
    CHECK(d.icmp.id == 5);
    CHECK(d.icmp.seq == 6);
    CHECK(d.sport == 5);
    CHECK(d.dport == 5);
    for (uint8_t type : {133, 134, 135, 136, 137}) {
        REQUIRE_ACCEPTED(parse(
            ipv6_frame({.hop_limit = 255, .next = proto_icmpv6}, icmp(type, 0, 0, Bytes(16, 0xfe))),
            d));
        CHECK(int(d.icmp.type) == type);
        CHECK(d.has_l4);
        CHECK_FALSE(d.icmp.is_error);
        CHECK(d.icmp.id == 0);
        CHECK(int(d.ttl) == 255);
    }
}

TEST_CASE("ICMP carried over the wrong IP version is an opaque protocol", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(ipv6_frame({.next = proto_icmp}, {8, 0}), d));
    CHECK_FALSE(d.has_l4);
    REQUIRE_ACCEPTED(parse(ipv4_frame({.proto = proto_icmpv6}, {128}), d));
    CHECK_FALSE(d.has_l4);
}

TEST_CASE("an ARP request fills the ARP fields", "[packet]") {
    Bytes frame = arp_frame();
    frame.resize(60, 0);
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(frame, d));
    CHECK(d.l3 == L3Kind::arp);
    CHECK(d.ether_type == ether_type_arp);
    CHECK(d.l3_offset == 14);
    CHECK(d.arp.op == 1);
    CHECK(d.arp.sha == mac_b);
    CHECK(d.arp.spa == ip4_client);
    CHECK(d.arp.tha == std::array<uint8_t, 6>{});
    CHECK(d.arp.tpa == ip4_server);
    CHECK_FALSE(d.has_l4);
    CHECK(int(d.family) == 0);
}

TEST_CASE("an 802.1Q tagged frame reports its tag and the inner type", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(cat({eth(ether_type_ipv4, {{ether_type_vlan, 0x2064}}),
                                ipv4({}, tcp({.options = syn_options()}))}),
                           d));
    CHECK(d.has_vlan);
    CHECK(d.vlan_tci == 0x2064);
    CHECK(d.ether_type == ether_type_ipv4);
    CHECK(d.l3_offset == 18);
    CHECK(d.l4_offset == 38);
    CHECK(d.sport == 40000);
    CHECK(d.tcp.mss == 1460);
}

TEST_CASE("a single 802.1ad service tag counts as the one tag", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(cat({eth(ether_type_arp, {{ether_type_qinq, 5}}), arp(2)}), d));
    CHECK(d.has_vlan);
    CHECK(d.vlan_tci == 5);
    CHECK(d.arp.op == 2);
}

TEST_CASE("an IPv4 header with valid options is accepted and flagged", "[packet]") {
    PacketDesc d;
    // NOP, router alert (type 148, length 4), EOL, padding garbage after EOL.
    REQUIRE_ACCEPTED(parse(
        ipv4_frame({.options = {1, 148, 4, 0, 0, 0, 0, 0x99}}, tcp({.flags = tcpf::ack})), d));
    CHECK(d.has_ip_options);
    CHECK(d.l3_header_len == 28);
    CHECK(d.l4_offset == 14 + 28);
    CHECK(d.sport == 40000);
}

TEST_CASE("an IPv4 source of 0.0.0.0 is accepted (DHCP)", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(
        parse(ipv4_frame({.proto = proto_udp, .src = {0, 0, 0, 0}, .dst = {255, 255, 255, 255}},
                         udp(68, 67, Bytes(20))),
              d));
    CHECK(d.sport == 68);
}

TEST_CASE("an IPv4 protocol the parser does not know is accepted without L4", "[packet]") {
    for (uint8_t proto : {uint8_t(47), proto_carp, proto_pfsync}) {
        PacketDesc d;
        REQUIRE_ACCEPTED(parse(ipv4_frame({.ttl = 255, .proto = proto}, Bytes(36, 1)), d));
        CHECK(int(d.proto) == proto);
        CHECK_FALSE(d.has_l4);
        CHECK(d.l4_offset == 34);
        CHECK(d.l3_total_len == 56);
    }
}

// ---------------------------------------------------------------------------------------------
// Fragments

TEST_CASE("a first IPv4 fragment is a fragment that carries the transport header", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(ipv4_frame({.frag = 0x2000}, tcp({.payload = Bytes(16)})), d));
    CHECK(d.is_fragment);
    CHECK(d.is_first_fragment);
    CHECK(d.has_l4);
    CHECK(d.sport == 40000);
    CHECK(d.tcp.payload_len == 16);
}

TEST_CASE("a later IPv4 fragment has no transport header", "[packet]") {
    for (uint16_t frag : {uint16_t(0x2000 | 185), uint16_t(185)}) { // middle and last
        PacketDesc d;
        REQUIRE_ACCEPTED(parse(ipv4_frame({.frag = frag}, Bytes(24, 0xee)), d));
        CHECK(d.is_fragment);
        CHECK_FALSE(d.is_first_fragment);
        CHECK_FALSE(d.has_l4);
        CHECK(d.sport == 0);
        CHECK(int(d.proto) == proto_tcp);
        CHECK(d.l4_offset == 34);
    }
}

TEST_CASE("a first UDP fragment skips the UDP length check", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(
        ipv4_frame({.proto = proto_udp, .frag = 0x2000}, udp(1000, 2000, Bytes(8), 3000)), d));
    CHECK(d.is_first_fragment);
    CHECK(d.dport == 2000);
}

TEST_CASE("an unfragmented IPv4 packet is not a first fragment", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(ipv4_frame({.frag = 0}, tcp({})), d));
    CHECK_FALSE(d.is_fragment);
    CHECK_FALSE(d.is_first_fragment);
}

TEST_CASE("IPv6 fragment headers set the fragment flags", "[packet]") {
    SECTION("first fragment carries the transport header") {
        PacketDesc d;
        REQUIRE_ACCEPTED(parse(
            ipv6_frame({.next = ipv6_ext_fragment}, cat({ext_frag(proto_tcp, 0, true), tcp({})})),
            d));
        CHECK(d.is_fragment);
        CHECK(d.is_first_fragment);
        CHECK(d.has_l4);
        CHECK(d.l3_header_len == 48);
        CHECK(d.sport == 40000);
    }
    SECTION("a later fragment has no transport header") {
        PacketDesc d;
        REQUIRE_ACCEPTED(parse(ipv6_frame({.next = ipv6_ext_fragment},
                                          cat({ext_frag(proto_udp, 100, false), Bytes(3)})),
                               d));
        CHECK(d.is_fragment);
        CHECK_FALSE(d.is_first_fragment);
        CHECK_FALSE(d.has_l4);
        CHECK(int(d.proto) == proto_udp);
        CHECK(d.l3_header_len == 48);
        CHECK(d.l4_offset == 14 + 48);
    }
    SECTION("an atomic fragment is a whole packet") {
        PacketDesc d;
        REQUIRE_ACCEPTED(parse(ipv6_frame({.next = ipv6_ext_fragment},
                                          cat({ext_frag(proto_udp, 0, false), udp(1, 2, {})})),
                               d));
        CHECK_FALSE(d.is_fragment);
        CHECK(d.has_l4);
        CHECK(d.dport == 2);
    }
}

// ---------------------------------------------------------------------------------------------
// Drops: one row per way the parser can refuse a frame.

namespace {

struct DropCase {
    const char *behaviour;
    Bytes frame;
    DropReason reason;
};

std::vector<DropCase> drop_cases() {
    const Bytes syn = tcp({.options = syn_options()});
    std::vector<DropCase> c;
    auto add = [&](const char *b, Bytes f, DropReason r) { c.push_back({b, std::move(f), r}); };

    add("a frame shorter than an Ethernet header", Bytes(13, 0), DropReason::frame_truncated);
    add("an 802.1Q tag cut short", cat({eth(ether_type_vlan), {0x00}}), DropReason::vlan_truncated);
    add("two 802.1Q tags",
        cat({eth(ether_type_ipv4, {{ether_type_vlan, 1}, {ether_type_vlan, 2}}), ipv4({}, syn)}),
        DropReason::vlan_stacked);
    add("an 802.1ad tag over an 802.1Q tag",
        cat({eth(ether_type_ipv4, {{ether_type_qinq, 1}, {ether_type_vlan, 2}}), ipv4({}, syn)}),
        DropReason::vlan_stacked);
    add("ARP for a hardware type other than Ethernet", cat({eth(ether_type_arp), arp(1, 6)}),
        DropReason::arp_malformed);
    add("ARP for a protocol other than IPv4", cat({eth(ether_type_arp), arp(1, 1, 0x86dd)}),
        DropReason::arp_malformed);
    add("ARP with hardware length 8", cat({eth(ether_type_arp), arp(1, 1, 0x0800, 8)}),
        DropReason::arp_malformed);
    add("ARP with protocol length 16", cat({eth(ether_type_arp), arp(1, 1, 0x0800, 6, 16)}),
        DropReason::arp_malformed);
    {
        Bytes f = arp_frame();
        f.pop_back();
        add("ARP cut short", f, DropReason::arp_malformed);
    }
    add("an IPv4 header cut short", cat({eth(ether_type_ipv4), Bytes(19, 0x45)}),
        DropReason::ipv4_truncated);
    add("an IPv4 header with version 6", ipv4_frame({.version_ihl = 0x65}, syn),
        DropReason::ipv4_bad_version);
    add("an IPv4 header length below 20", ipv4_frame({.version_ihl = 0x44}, syn),
        DropReason::ipv4_bad_header_length);
    add("an IPv4 header length beyond the frame",
        cat({eth(ether_type_ipv4), ipv4({.total_len = 24, .version_ihl = 0x4f}, {0, 0, 0, 0})}),
        DropReason::ipv4_bad_header_length);
    add("an IPv4 total length below the header length", ipv4_frame({.total_len = 19}, syn),
        DropReason::ipv4_bad_total_length);
    add("an IPv4 total length beyond the frame",
        ipv4_frame({.total_len = uint16_t(20 + syn.size() + 1)}, syn),
        DropReason::ipv4_bad_total_length);
    add("an IPv4 header with a wrong checksum", ipv4_frame({.checksum_xor = 0x0100}, syn),
        DropReason::ipv4_bad_checksum);
    add("an IPv4 option with length 1", ipv4_frame({.options = {7, 1, 0, 0}}, syn),
        DropReason::ipv4_bad_options);
    add("an IPv4 option overrunning the header", ipv4_frame({.options = {1, 7, 8, 0}}, syn),
        DropReason::ipv4_bad_options);
    add("an IPv4 option without room for its length byte",
        ipv4_frame({.options = {1, 1, 1, 130}}, syn), DropReason::ipv4_bad_options);
    add("an IPv4 multicast source", ipv4_frame({.src = {224, 0, 0, 1}}, syn),
        DropReason::ipv4_bad_source);
    add("an IPv4 source at the top of multicast", ipv4_frame({.src = {239, 255, 255, 255}}, syn),
        DropReason::ipv4_bad_source);
    add("an IPv4 limited broadcast source", ipv4_frame({.src = {255, 255, 255, 255}}, syn),
        DropReason::ipv4_bad_source);
    add("an IPv6 header cut short", cat({eth(ether_type_ipv6), Bytes(39, 0x60)}),
        DropReason::ipv6_truncated);
    add("an IPv6 header with version 4", ipv6_frame({.version = 4}, syn),
        DropReason::ipv6_bad_version);
    add("an IPv6 payload length beyond the frame",
        ipv6_frame({.payload_len = uint16_t(syn.size() + 1)}, syn),
        DropReason::ipv6_bad_payload_length);
    add("an IPv6 hop-by-hop header beyond the payload length",
        ipv6_frame({.next = ipv6_ext_hop_by_hop, .payload_len = 8}, ext_opts(proto_tcp, 16)),
        DropReason::ipv6_ext_truncated);
    add("an IPv6 extension header shorter than 8 bytes",
        ipv6_frame({.next = ipv6_ext_dest_opts}, {proto_tcp, 0, 1, 0}),
        DropReason::ipv6_ext_truncated);
    add("an IPv6 authentication header beyond the payload",
        ipv6_frame({.next = ipv6_ext_auth}, Bytes{proto_tcp, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
        DropReason::ipv6_ext_truncated);
    add("an IPv6 fragment header cut short",
        ipv6_frame({.next = ipv6_ext_fragment}, Bytes{proto_tcp, 0, 0, 1}),
        DropReason::ipv6_ext_truncated);
    {
        Bytes exts;
        for (int i = 0; i <= ipv6_max_ext_headers; ++i)
            put(exts, ext_opts(i < ipv6_max_ext_headers ? ipv6_ext_dest_opts : proto_tcp));
        add("an IPv6 extension chain longer than ipv6_max_ext_headers",
            ipv6_frame({.next = ipv6_ext_dest_opts}, cat({exts, syn})),
            DropReason::ipv6_ext_chain_too_long);
    }
    add("an IPv6 multicast source",
        ipv6_frame({.src = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}, syn),
        DropReason::ipv6_bad_source);
    add("a first IPv4 fragment too short for the TCP header",
        ipv4_frame({.frag = 0x2000}, Bytes(syn.begin(), syn.begin() + 8)),
        DropReason::fragment_too_short);
    add("a first IPv4 fragment too short for the TCP options",
        ipv4_frame({.frag = 0x2000}, Bytes(syn.begin(), syn.begin() + 24)),
        DropReason::fragment_too_short);
    add("a first IPv4 fragment too short for the UDP header",
        ipv4_frame({.proto = proto_udp, .frag = 0x2000}, Bytes(4)), DropReason::fragment_too_short);
    add("a first IPv4 fragment too short for the ICMP header",
        ipv4_frame({.proto = proto_icmp, .frag = 0x2000}, Bytes(4)),
        DropReason::fragment_too_short);
    add("a first IPv6 fragment too short for the TCP header",
        ipv6_frame({.next = ipv6_ext_fragment},
                   cat({ext_frag(proto_tcp, 0, true), Bytes(syn.begin(), syn.begin() + 16)})),
        DropReason::fragment_too_short);
    add("a TCP header cut short", ipv4_frame({}, Bytes(syn.begin(), syn.begin() + 19)),
        DropReason::tcp_truncated);
    add("an IPv6 TCP header cut short", ipv6_frame({}, Bytes(syn.begin(), syn.begin() + 12)),
        DropReason::tcp_truncated);
    add("a TCP data offset below 5", tcp4_frame({.data_offset = 4}), DropReason::tcp_bad_offset);
    add("a TCP data offset beyond the IP payload", tcp4_frame({.data_offset = 6}),
        DropReason::tcp_bad_offset);
    add("a TCP option with length 1", tcp4_frame({.options = {1, 1, 30, 1}}),
        DropReason::tcp_bad_options);
    add("a TCP option with length 0", tcp4_frame({.options = {30, 0, 1, 1}}),
        DropReason::tcp_bad_options);
    add("a TCP option overrunning the header", tcp4_frame({.options = {1, 1, 30, 3}}),
        DropReason::tcp_bad_options);
    add("a TCP option without room for its length byte", tcp4_frame({.options = {1, 1, 1, 2}}),
        DropReason::tcp_bad_options);
    add("a TCP MSS option of length 3", tcp4_frame({.options = {2, 3, 5, 0}}),
        DropReason::tcp_bad_options);
    add("a TCP window scale option of length 4", tcp4_frame({.options = {3, 4, 7, 0}}),
        DropReason::tcp_bad_options);
    add("a TCP SACK-permitted option of length 3", tcp4_frame({.options = {4, 3, 0, 0}}),
        DropReason::tcp_bad_options);
    add("a TCP SACK option with a partial block",
        tcp4_frame({.flags = tcpf::ack, .options = {5, 6, 0, 0, 0, 0, 0, 0}}),
        DropReason::tcp_bad_options);
    add("a TCP timestamp option of length 8", tcp4_frame({.options = {8, 8, 0, 0, 0, 0, 0, 0}}),
        DropReason::tcp_bad_options);
    add("TCP SYN+FIN", tcp4_frame({.flags = tcpf::syn | tcpf::fin | tcpf::ack}),
        DropReason::tcp_bad_flags);
    add("TCP SYN+RST", tcp4_frame({.flags = tcpf::syn | tcpf::rst}), DropReason::tcp_bad_flags);
    add("TCP without any flag", tcp4_frame({.flags = 0}), DropReason::tcp_bad_flags);
    add("TCP with only ECE and CWR", tcp4_frame({.flags = tcpf::ece | tcpf::cwr}),
        DropReason::tcp_bad_flags);
    add("TCP FIN without ACK", tcp4_frame({.flags = tcpf::fin}), DropReason::tcp_bad_flags);
    add("TCP FIN+PSH+URG without ACK (Xmas scan)",
        tcp4_frame({.flags = tcpf::fin | tcpf::psh | tcpf::urg}), DropReason::tcp_bad_flags);
    add("a UDP header cut short", ipv4_frame({.proto = proto_udp}, Bytes(7)),
        DropReason::udp_truncated);
    add("a UDP length below 8", ipv4_frame({.proto = proto_udp}, udp(1, 2, {}, 7)),
        DropReason::udp_bad_length);
    add("a UDP length beyond the IP payload", ipv4_frame({.proto = proto_udp}, udp(1, 2, {1}, 10)),
        DropReason::udp_bad_length);
    add("an IPv6 UDP length beyond the payload", ipv6_frame({.next = proto_udp}, udp(1, 2, {}, 9)),
        DropReason::udp_bad_length);
    add("an ICMP header cut short", ipv4_frame({.proto = proto_icmp}, {8, 0, 0, 0, 0, 0, 0}),
        DropReason::icmp_truncated);
    add("an ICMPv6 header cut short", ipv6_frame({.next = proto_icmpv6}, {128, 0, 0, 0}),
        DropReason::icmp6_truncated);
    add("an Ethernet type the parser does not handle", cat({eth(0x88cc), Bytes(46)}),
        DropReason::unsupported_ethertype);
    add("an 802.1Q tag over an unhandled type",
        cat({eth(0x8847, {{ether_type_vlan, 1}}), Bytes(46)}), DropReason::unsupported_ethertype);
    return c;
}

} // namespace

TEST_CASE("malformed frames are dropped with the reason that names the fault", "[packet]") {
    for (const DropCase &c : drop_cases()) {
        DYNAMIC_SECTION(c.behaviour << " is dropped with " << name_of(c.reason)) {
            PacketDesc d;
            REQUIRE_DROPPED(parse(c.frame, d), c.reason);
        }
    }
}

TEST_CASE("every drop reason the parser owns is produced by some frame", "[packet]") {
    std::set<DropReason> seen;
    for (const DropCase &c : drop_cases())
        seen.insert(c.reason);
    for (size_t i = 0; i <= size_t(DropReason::icmp6_truncated); ++i) {
        INFO(name_of(DropReason(i)));
        CHECK(seen.count(DropReason(i)) == 1);
    }
    CHECK(seen.count(DropReason::unsupported_ethertype) == 1);
}

TEST_CASE("an IPv4 header with a wrong checksum is dropped with ipv4_bad_checksum", "[packet]") {
    Bytes frame = tcp_syn_frame();
    REQUIRE_ACCEPTED(parse(frame));
    for (size_t i = 14; i < 34; ++i) {
        if (i == 14 || i == 16 || i == 17)
            continue; // version/IHL and total length fail earlier checks
        Bytes bad = frame;
        bad[i] ^= 0x04;
        INFO("byte " << i);
        REQUIRE_DROPPED(parse(bad), DropReason::ipv4_bad_checksum);
    }
    // A header with options is summed over its whole length, the options included (the
    // checksum is checked before the options are read).
    const Bytes with_options =
        ipv4_frame({.options = {1, 148, 4, 0, 0, 0, 0, 0x99}}, tcp({.flags = tcpf::ack}));
    REQUIRE_ACCEPTED(parse(with_options));
    for (size_t i = 34; i < 42; ++i) {
        Bytes bad = with_options;
        bad[i] ^= 0x40;
        INFO("option byte " << i - 34);
        REQUIRE_DROPPED(parse(bad), DropReason::ipv4_bad_checksum);
    }
}

TEST_CASE("a quoted packet shorter than its IP header plus 8 transport bytes is refused",
          "[packet]") {
    PacketDesc d;
    REQUIRE_DROPPED(parse_quoted_packet({}, d), DropReason::icmp_truncated);
    const Bytes q4 = quoted_tcp4();
    REQUIRE_DROPPED(parse_quoted_packet(Bytes(q4.begin(), q4.begin() + 19), d),
                    DropReason::ipv4_truncated);
    REQUIRE_DROPPED(parse_quoted_packet(Bytes(q4.begin(), q4.begin() + 27), d),
                    DropReason::icmp_truncated);
    Bytes bad_ihl = q4;
    bad_ihl[0] = 0x44;
    REQUIRE_DROPPED(parse_quoted_packet(bad_ihl, d), DropReason::ipv4_bad_header_length);
    Bytes long_ihl = q4;
    long_ihl[0] = 0x4f;
    REQUIRE_DROPPED(parse_quoted_packet(long_ihl, d), DropReason::ipv4_truncated);
    Bytes short_total = q4;
    short_total[2] = 0;
    short_total[3] = 19;
    REQUIRE_DROPPED(parse_quoted_packet(short_total, d), DropReason::ipv4_bad_total_length);
    Bytes bad_version = q4;
    bad_version[0] = 0x55;
    REQUIRE_DROPPED(parse_quoted_packet(bad_version, d), DropReason::ipv4_bad_version);

    const Bytes q6 = ipv6({.next = ipv6_ext_hop_by_hop}, cat({ext_opts(proto_udp), udp(1, 2, {})}));
    REQUIRE_ACCEPTED(parse_quoted_packet(q6, d));
    REQUIRE_DROPPED(parse_quoted_packet(Bytes(q6.begin(), q6.begin() + 39), d),
                    DropReason::ipv6_truncated);
    REQUIRE_DROPPED(parse_quoted_packet(Bytes(q6.begin(), q6.begin() + 47), d),
                    DropReason::ipv6_ext_truncated);
    REQUIRE_DROPPED(parse_quoted_packet(Bytes(q6.begin(), q6.begin() + 55), d),
                    DropReason::icmp_truncated);
}

TEST_CASE("a quoted later fragment yields addresses but no ports", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(parse_quoted_packet(ipv4({.frag = 100}, Bytes(8, 0x11)), d));
    CHECK(d.is_fragment);
    CHECK_FALSE(d.has_l4);
    CHECK(addr4(d) == ip4_client);
    CHECK(d.sport == 0);
}

// ---------------------------------------------------------------------------------------------
// Robustness

namespace {

std::vector<Bytes> valid_frames() {
    Bytes vlan_tcp =
        cat({eth(ether_type_ipv4, {{ether_type_vlan, 7}}),
             ipv4({.options = {1, 148, 4, 0, 0, 0, 0, 0}},
                  tcp({.flags = tcpf::ack, .options = syn_options(), .payload = {1, 2, 3}}))});
    return {
        tcp_syn_frame(),
        vlan_tcp,
        udp4_frame(),
        icmp_echo_frame(),
        icmp_error_frame(),
        tcp6_ext_frame(),
        ipv6_frame({.next = ipv6_ext_routing},
                   cat({ext_routing(ipv6_ext_auth), ext_auth(ipv6_ext_fragment),
                        ext_frag(proto_udp, 0, true), udp(1, 2, Bytes(9), 100)})),
        ipv6_frame({.next = ipv6_ext_fragment}, cat({ext_frag(proto_tcp, 77, true), Bytes(16)})),
        ipv6_frame({.next = proto_icmpv6}, icmp(128, 0, 0x10001, {'x'})),
        ipv6_frame({.next = proto_icmpv6}, icmp(3, 0, 0, Bytes(40, 0x60))),
        ipv4_frame({.frag = 0x2000}, tcp({.options = syn_options()})),
        ipv4_frame({.frag = 0x0010}, Bytes(8)),
        ipv4_frame({.ttl = 255, .proto = proto_carp}, Bytes(36, 1)),
        arp_frame(),
    };
}

// What must hold of any descriptor the parser accepts.
void check_accepted_within_frame(const PacketDesc &d, size_t frame_size) {
    REQUIRE(d.frame_len == std::min<size_t>(frame_size, 0xffff));
    REQUIRE(d.l3_offset <= d.frame_len);
    if (d.l3 == L3Kind::arp) {
        REQUIRE(d.l3_offset + 28u <= d.frame_len);
        return;
    }
    REQUIRE((d.l3 == L3Kind::ipv4 || d.l3 == L3Kind::ipv6));
    REQUIRE(d.l3_offset + d.l3_total_len <= d.frame_len);
    REQUIRE(d.l3_header_len <= d.l3_total_len);
    REQUIRE(d.l4_offset == d.l3_offset + d.l3_header_len);
    if (!d.has_l4) return;
    const size_t l4_end = d.l3_offset + size_t(d.l3_total_len);
    switch (d.proto) {
    case proto_tcp:
        REQUIRE(d.tcp.header_len >= 20);
        REQUIRE(d.l4_offset + size_t(d.tcp.header_len) + d.tcp.payload_len == l4_end);
        break;
    case proto_udp:
    case proto_icmp:
    case proto_icmpv6:
        REQUIRE(d.l4_offset + 8u <= l4_end);
        if (d.icmp.is_error) {
            REQUIRE(d.icmp.quoted_offset == d.l4_offset + 8);
            REQUIRE(d.icmp.quoted_offset + size_t(d.icmp.quoted_len) == l4_end);
        }
        break;
    default:
        FAIL("has_l4 for protocol " << int(d.proto));
    }
}

void check_quoted(const Bytes &q) {
    PacketDesc d;
    if (parse_quoted_packet(q, d)) return;
    REQUIRE(d.l3_header_len <= q.size());
    if (d.has_l4) REQUIRE(d.l4_offset + 8u <= q.size());
}

// Parses one frame from an exact-size copy, checking the invariants when accepted.
std::optional<DropReason> parse_exact(const uint8_t *p, size_t n) {
    const Bytes copy(p, p + n);
    PacketDesc d;
    const auto r = parse(copy, d);
    if (!r) {
        check_accepted_within_frame(d, n);
        if (d.icmp.is_error)
            check_quoted(Bytes(copy.begin() + d.icmp.quoted_offset,
                               copy.begin() + d.icmp.quoted_offset + d.icmp.quoted_len));
    }
    return r;
}

void fix_ipv4_checksum(Bytes &f) {
    size_t off = 14;
    if (f.size() >= 18 && (f[12] == 0x81 || f[12] == 0x88)) off = 18;
    if (f.size() < off + 20 || f[off - 2] != 0x08 || f[off - 1] != 0x00) return;
    const size_t hl = size_t(f[off] & 15) * 4;
    if (hl < 20 || off + hl > f.size()) return;
    f[off + 10] = f[off + 11] = 0;
    const uint16_t c = ref_checksum(Bytes(f.begin() + long(off), f.begin() + long(off + hl)));
    f[off + 10] = uint8_t(c >> 8);
    f[off + 11] = uint8_t(c);
}

} // namespace

TEST_CASE("every prefix of a valid frame is dropped, never read beyond", "[packet]") {
    for (const Bytes &frame : valid_frames()) {
        REQUIRE_FALSE(parse_exact(frame.data(), frame.size()).has_value());
        for (size_t n = 0; n < frame.size(); ++n) {
            INFO("frame of " << frame.size() << " bytes cut to " << n);
            REQUIRE(parse_exact(frame.data(), n).has_value());
        }
    }
}

TEST_CASE("every prefix of a quoted packet parses or is refused within bounds", "[packet]") {
    const std::vector<Bytes> quoted = {
        ipv4({.total_len = 1500}, tcp({.options = syn_options()})),
        ipv4({.proto = proto_udp, .options = {1, 1, 1, 0}}, udp(1, 2, Bytes(4))),
        ipv4({.proto = proto_icmp}, icmp(8, 0, 0x10002)),
        ipv6({.next = ipv6_ext_hop_by_hop},
             cat({ext_opts(ipv6_ext_routing, 16), ext_routing(proto_tcp), tcp({})})),
        ipv6({.next = proto_icmpv6}, icmp(128, 0, 0x10002)),
    };
    for (const Bytes &q : quoted) {
        PacketDesc d;
        REQUIRE_ACCEPTED(parse_quoted_packet(q, d));
        REQUIRE(d.has_l4);
        const size_t needed = d.l4_offset + 8u;
        for (size_t n = 0; n <= q.size(); ++n) {
            INFO("quoted packet of " << q.size() << " bytes cut to " << n);
            const Bytes cut(q.begin(), q.begin() + long(n));
            PacketDesc e;
            const auto r = parse_quoted_packet(cut, e);
            REQUIRE(r.has_value() == (n < needed));
            if (!r) {
                CHECK(e.sport == d.sport);
                CHECK(e.src == d.src);
            }
        }
    }
}

TEST_CASE("random frames never crash the parser and accepted ones stay within the frame",
          "[packet]") {
    std::mt19937 rng(0x5eed);
    const uint16_t types[] = {ether_type_ipv4, ether_type_ipv6, ether_type_arp,
                              ether_type_vlan, ether_type_qinq, 0x1234};
    const uint8_t protos[] = {proto_tcp, proto_udp, proto_icmp, proto_icmpv6, 0,
                              43,        44,        51,         59,           60};
    size_t accepted = 0;
    for (int i = 0; i < 200000; ++i) {
        const size_t len = rng() % 160;
        Bytes f(len);
        for (auto &x : f)
            x = uint8_t(rng());
        // Steer most frames past the first checks so the deeper layers get exercised.
        if (len >= 14 && rng() % 8 != 0) {
            const uint16_t type = types[rng() % std::size(types)];
            f[12] = uint8_t(type >> 8);
            f[13] = uint8_t(type);
            if (len >= 18 && (type == ether_type_vlan || type == ether_type_qinq)) {
                const uint16_t inner = types[rng() % 3];
                f[16] = uint8_t(inner >> 8);
                f[17] = uint8_t(inner);
            }
            const size_t off = (f[12] == 0x81 || f[12] == 0x88) ? 18 : 14;
            if (len >= off + 40) {
                const bool v4 = f[off - 2] == 0x08;
                if (v4) {
                    f[off] = uint8_t(0x40 | (5 + rng() % 3));
                    const uint16_t tot = uint16_t(len - off - rng() % 4);
                    f[off + 2] = uint8_t(tot >> 8);
                    f[off + 3] = uint8_t(tot);
                    f[off + 6] &= rng() % 2 ? 0xff : 0x40;
                    f[off + 9] = protos[rng() % 4];
                    f[off + 12] &= 0x7f;
                    fix_ipv4_checksum(f);
                } else {
                    f[off] = 0x60;
                    const uint16_t plen = uint16_t(len - off - 40 - rng() % 2);
                    f[off + 4] = uint8_t(plen >> 8);
                    f[off + 5] = uint8_t(plen);
                    f[off + 6] = protos[rng() % std::size(protos)];
                    f[off + 8] = 0x20;
                }
            }
        }
        if (!parse_exact(f.data(), f.size())) ++accepted;
        check_quoted(f);
    }
    INFO("accepted " << accepted);
    CHECK(accepted > 1000); // the steering works, so the deep paths were reached
}

TEST_CASE("mutated valid frames never crash the parser", "[packet]") {
    std::mt19937 rng(0xf00d);
    const std::vector<Bytes> frames = valid_frames();
    size_t accepted = 0;
    for (int i = 0; i < 100000; ++i) {
        Bytes f = frames[rng() % frames.size()];
        const int flips = 1 + int(rng() % 4);
        for (int k = 0; k < flips; ++k) {
            const size_t at = rng() % f.size();
            f[at] = rng() % 2 ? uint8_t(rng()) : uint8_t(f[at] ^ (1u << (rng() % 8)));
        }
        if (rng() % 2) fix_ipv4_checksum(f);
        if (rng() % 4 == 0)
            f.resize(rng() % (f.size() + 1));
        else if (rng() % 8 == 0)
            f.resize(f.size() + rng() % 16, 0); // Ethernet padding
        if (!parse_exact(f.data(), f.size())) ++accepted;
    }
    INFO("accepted " << accepted);
    CHECK(accepted > 1000);
}

TEST_CASE("a frame longer than 65535 bytes is parsed over its first 65535", "[packet]") {
    Bytes frame = udp4_frame();
    frame.resize(70000, 0);
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(frame, d));
    CHECK(d.frame_len == 0xffff);
    CHECK(d.dport == 53);
}

TEST_CASE("parsing resets a descriptor used for an earlier packet", "[packet]") {
    PacketDesc d;
    REQUIRE_ACCEPTED(parse(tcp_syn_frame(), d));
    REQUIRE_ACCEPTED(parse(udp4_frame(), d));
    CHECK(d.tcp.mss == 0);
    CHECK(int(d.tcp.wscale) == -1);
    CHECK(int(d.tcp.flags) == 0);
    CHECK(int(d.proto) == proto_udp);
    REQUIRE_ACCEPTED(parse(arp_frame(), d));
    CHECK(int(d.family) == 0);
    CHECK(d.sport == 0);
    CHECK_FALSE(d.has_l4);
}

// ---------------------------------------------------------------------------------------------
// Transport checksums (a packet with a wrong one must not create or change a state)

namespace {

// Fill in the transport checksum of a parsed frame with the reference sum; `at` is the
// checksum's offset in the transport header.
void fill_l4_checksum(Bytes &frame, const PacketDesc &d, size_t at, bool pseudo, uint32_t l4_len) {
    Bytes sum_over;
    if (pseudo) {
        const size_t alen = d.family == 6 ? 16 : 4;
        for (size_t i = 0; i < alen; i++)
            sum_over.push_back(d.src[i]);
        for (size_t i = 0; i < alen; i++)
            sum_over.push_back(d.dst[i]);
        if (d.family == 6)
            put32(sum_over, l4_len);
        else
            put16(sum_over, uint16_t(l4_len));
        if (d.family == 6)
            put(sum_over, {0, 0, 0, d.proto});
        else
            put(sum_over, {0, d.proto});
    }
    frame[d.l4_offset + at] = frame[d.l4_offset + at + 1] = 0;
    for (uint32_t i = 0; i < l4_len; i++)
        sum_over.push_back(frame[d.l4_offset + i]);
    const uint16_t c = ref_checksum(sum_over);
    frame[d.l4_offset + at] = uint8_t(c >> 8);
    frame[d.l4_offset + at + 1] = uint8_t(c);
}

// Parse, fill the right checksum, check it passes, then flip one payload bit and check that
// it fails.
void check_l4_checksum(Bytes frame, size_t at, bool pseudo) {
    PacketDesc d;
    REQUIRE_FALSE(parse_packet(frame, d).has_value());
    const uint32_t l4_len = uint32_t(d.l3_offset + d.l3_total_len - d.l4_offset);
    fill_l4_checksum(frame, d, at, pseudo, l4_len);
    REQUIRE_FALSE(parse_packet(frame, d).has_value());
    CHECK(l4_checksum_ok(frame, d));
    frame[frame.size() - 1] ^= 0x40;
    REQUIRE_FALSE(parse_packet(frame, d).has_value());
    CHECK_FALSE(l4_checksum_ok(frame, d));
}

} // namespace

TEST_CASE("l4_checksum_ok checks TCP, UDP, ICMP and ICMPv6 over IPv4 and IPv6",
          "[packet][hardening]") {
    check_l4_checksum(tcp4_frame({.payload = {'d', 'a', 't', 'a'}}), 16, true);
    check_l4_checksum(udp4_frame({'h', 'e', 'l', 'l', 'o'}), 6, true);
    check_l4_checksum(icmp_echo_frame(), 2, false);
    check_l4_checksum(ipv6_frame({}, tcp({.payload = {'x', 'y'}})), 16, true);
    check_l4_checksum(ipv6_frame({.next = proto_udp}, udp(1, 2, {'a', 'b', 'c'})), 6, true);
    check_l4_checksum(ipv6_frame({.next = proto_icmpv6}, icmp(128, 0, 0x12340001, {'a'})), 2, true);
}

TEST_CASE("l4_checksum_ok agrees with a byte-wise reference sum at every payload length",
          "[packet][hardening]") {
    // Odd and even lengths, and every tail the sum's 8-byte words leave (4, 2 and 1 bytes).
    // Payloads of 0xff bytes carry out of every 8-byte addition: the end-around carries.
    for (const bool ones : {false, true}) {
        for (uint8_t n = 0; n < 70; n++) {
            INFO("payload of " << int(n) << (ones ? " 0xff bytes" : " mixed bytes"));
            Bytes payload;
            for (uint8_t i = 0; i < n; i++)
                payload.push_back(ones ? uint8_t(0xff) : uint8_t(0xa5 ^ (i * 37) ^ n));
            check_l4_checksum(tcp4_frame({.payload = payload}), 16, true);
            check_l4_checksum(ipv6_frame({}, tcp({.payload = payload})), 16, true);
            check_l4_checksum(udp4_frame(payload), 6, true);
            check_l4_checksum(ipv6_frame({.next = proto_udp}, udp(1, 2, payload)), 6, true);
        }
    }
}

TEST_CASE("a zero UDP checksum means none over IPv4 and is refused over IPv6",
          "[packet][hardening]") {
    const Bytes v4 = udp4_frame(); // checksum field left 0
    PacketDesc d;
    REQUIRE_FALSE(parse_packet(v4, d).has_value());
    CHECK(l4_checksum_ok(v4, d));
    const Bytes v6 = ipv6_frame({.next = proto_udp}, udp(1, 2, {'a'}));
    REQUIRE_FALSE(parse_packet(v6, d).has_value());
    CHECK_FALSE(l4_checksum_ok(v6, d));
}

TEST_CASE("a TCP SYN with a zero checksum field fails l4_checksum_ok", "[packet][hardening]") {
    const Bytes f = tcp_syn_frame(); // the builder leaves the checksum 0
    PacketDesc d;
    REQUIRE_FALSE(parse_packet(f, d).has_value());
    CHECK_FALSE(l4_checksum_ok(f, d));
}

TEST_CASE("fragments and opaque protocols are not checksum-checked", "[packet][hardening]") {
    const Bytes frag = ipv4_frame({.frag = 0x2000}, tcp({})); // MF: first fragment
    PacketDesc d;
    REQUIRE_FALSE(parse_packet(frag, d).has_value());
    REQUIRE(d.is_fragment);
    CHECK(l4_checksum_ok(frag, d));
    const Bytes gre = ipv4_frame({.proto = 47}, {1, 2, 3, 4});
    REQUIRE_FALSE(parse_packet(gre, d).has_value());
    CHECK(l4_checksum_ok(gre, d));
}

TEST_CASE("UDP's checksum covers its length field's bytes, not Ethernet padding or trailers",
          "[packet][hardening]") {
    // A UDP length of 10 inside a 12-byte IP payload: the last two bytes are not summed.
    Bytes f = ipv4_frame({.proto = proto_udp}, udp(7, 9, {'a', 'b', 'Z', 'Z'}, 10));
    PacketDesc d;
    REQUIRE_FALSE(parse_packet(f, d).has_value());
    fill_l4_checksum(f, d, 6, true, 10);
    CHECK(l4_checksum_ok(f, d));
    f[f.size() - 1] ^= 0xff; // a trailer byte
    CHECK(l4_checksum_ok(f, d));
}

TEST_CASE("fuzz seeds: the robustness frames and the IP packets they carry", "[.][fuzz-seeds]") {
    int n = 0;
    for (const Bytes &f : valid_frames()) {
        syncwall::test::write_fuzz_seed("packet", "frame" + std::to_string(n), f);
        if (f.size() > 14)
            syncwall::test::write_fuzz_seed("packet", "quoted" + std::to_string(n),
                                            std::span(f).subspan(14));
        n++;
    }
    syncwall::test::write_fuzz_seed("packet", "icmp_error", icmp_error_frame());
}
