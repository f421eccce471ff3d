// pflog records (no EAL): the header is OpenBSD's struct pfloghdr byte for byte, and a
// record carries the IP packet from its header on, cut at the snap length.
#include "dataplane/pflog.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

using namespace syncwall::dp;

namespace {

using Bytes = std::vector<uint8_t>;

void put16(Bytes &b, uint16_t v) {
    b.push_back(uint8_t(v >> 8));
    b.push_back(uint8_t(v));
}

// Ethernet + IPv4 (valid header checksum) + TCP SYN 192.0.2.10:40000 -> 198.51.100.10:80,
// with `payload` bytes of data and `pad` bytes of Ethernet padding after the datagram.
Bytes tcp4_frame(std::size_t payload, std::size_t pad = 0) {
    Bytes f(12, 0x02);
    put16(f, ether_type_ipv4);
    const std::size_t ip_at = f.size();
    const uint16_t total = uint16_t(20 + 20 + payload);
    f.insert(f.end(), {0x45, 0});
    put16(f, total);
    f.insert(f.end(), {0x12, 0x34, 0x40, 0, 64, proto_tcp, 0, 0, 192, 0, 2, 10, 198, 51, 100, 10});
    const uint16_t sum = internet_checksum({f.data() + ip_at, 20});
    f[ip_at + 10] = uint8_t(sum >> 8);
    f[ip_at + 11] = uint8_t(sum);
    put16(f, 40000);
    put16(f, 80);
    f.insert(f.end(), {0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0x50, tcpf::syn, 0x20, 0, 0, 0, 0, 0});
    for (std::size_t i = 0; i < payload; i++)
        f.push_back(uint8_t(i));
    f.insert(f.end(), pad, 0xee);
    return f;
}

// Ethernet + IPv6 + UDP 2001:db8::1:5353 -> 2001:db8::2:53.
Bytes udp6_frame() {
    Bytes f(12, 0x02);
    put16(f, ether_type_ipv6);
    f.insert(f.end(), {0x60, 0, 0, 0});
    put16(f, 8);
    f.insert(f.end(), {proto_udp, 64});
    for (uint8_t last : {1, 2}) {
        f.insert(f.end(), {0x20, 0x01, 0x0d, 0xb8});
        f.insert(f.end(), 11, 0);
        f.push_back(last);
    }
    put16(f, 5353);
    put16(f, 53);
    put16(f, 8);
    put16(f, 0);
    return f;
}

PacketDesc parsed(const Bytes &f) {
    PacketDesc d;
    REQUIRE_FALSE(parse_packet(f, d).has_value());
    return d;
}

const uint8_t *raw(const PflogHeader &h) {
    return reinterpret_cast<const uint8_t *>(&h);
}

} // namespace

TEST_CASE("the pflog header is OpenBSD's struct pfloghdr, 100 bytes", "[pflog]") {
    CHECK(sizeof(PflogHeader) == 100);
    CHECK(pflog_hdrlen == 100);
    CHECK(offsetof(PflogHeader, length) == 0);
    CHECK(offsetof(PflogHeader, af) == 1);
    CHECK(offsetof(PflogHeader, action) == 2);
    CHECK(offsetof(PflogHeader, reason) == 3);
    CHECK(offsetof(PflogHeader, ifname) == 4);
    CHECK(offsetof(PflogHeader, ruleset) == 20);
    CHECK(offsetof(PflogHeader, rulenr) == 36);
    CHECK(offsetof(PflogHeader, subrulenr) == 40);
    CHECK(offsetof(PflogHeader, uid) == 44);
    CHECK(offsetof(PflogHeader, pid) == 48);
    CHECK(offsetof(PflogHeader, rule_uid) == 52);
    CHECK(offsetof(PflogHeader, rule_pid) == 56);
    CHECK(offsetof(PflogHeader, dir) == 60);
    CHECK(offsetof(PflogHeader, rewritten) == 61);
    CHECK(offsetof(PflogHeader, naf) == 62);
    CHECK(offsetof(PflogHeader, saddr) == 64);
    CHECK(offsetof(PflogHeader, daddr) == 80);
    CHECK(offsetof(PflogHeader, sport) == 96);
    CHECK(offsetof(PflogHeader, dport) == 98);
    // The values readers expect, whatever the writer's OS.
    CHECK(dlt_pflog == 117);
    CHECK(pflog_af_inet == 2);
    CHECK(pflog_af_inet6 == 24);
    CHECK(uint8_t(PflogAction::pass) == 0);
    CHECK(uint8_t(PflogAction::drop) == 1);
    CHECK(uint8_t(PflogReason::match) == 0);
    CHECK(uint8_t(PflogDir::in) == 1);
    CHECK(uint8_t(PflogDir::out) == 2);
}

TEST_CASE("a blocked IPv4 packet fills the header with rule, action, direction and interface",
          "[pflog]") {
    const Bytes f = tcp4_frame(0);
    const PacketDesc d = parsed(f);
    PflogHeader h;
    std::memset(&h, 0xaa, sizeof(h)); // whatever was there before is overwritten
    pflog_fill_header(h, {258, PflogAction::drop, PflogReason::match, PflogDir::out, "lan"}, d);
    const uint8_t *b = raw(h);
    CHECK(b[0] == 100);
    CHECK(b[1] == 2); // AF_INET
    CHECK(b[2] == 1); // PF_DROP
    CHECK(b[3] == 0); // PFRES_MATCH
    CHECK(std::string(reinterpret_cast<const char *>(b + 4)) == "lan");
    CHECK(std::all_of(b + 7, b + 36, [](uint8_t c) { return c == 0; })); // NUL-padded, no ruleset
    // Rule number big-endian; no anchor: subrulenr -1.
    CHECK(Bytes(b + 36, b + 40) == Bytes{0, 0, 1, 2});
    CHECK(Bytes(b + 40, b + 44) == Bytes{0xff, 0xff, 0xff, 0xff});
    CHECK(h.rulenr.get() == 258);
    CHECK(h.uid == pflog_no_uid);
    CHECK(h.pid == pflog_no_pid);
    CHECK(h.rule_uid == 0);
    CHECK(h.rule_pid == 0);
    CHECK(b[60] == 2); // PF_OUT
    CHECK(b[61] == 0); // not rewritten
    CHECK(b[62] == 2); // naf = af
    CHECK(b[63] == 0);
    CHECK(Bytes(b + 64, b + 68) == Bytes{192, 0, 2, 10});
    CHECK(std::all_of(b + 68, b + 80, [](uint8_t c) { return c == 0; }));
    CHECK(Bytes(b + 80, b + 84) == Bytes{198, 51, 100, 10});
    CHECK(std::all_of(b + 84, b + 96, [](uint8_t c) { return c == 0; }));
    CHECK(Bytes(b + 96, b + 100) == Bytes{0x9c, 0x40, 0x00, 0x50}); // 40000, 80 big-endian
}

TEST_CASE("a passed IPv6 packet is logged with OpenBSD's AF_INET6 (24)", "[pflog]") {
    const Bytes f = udp6_frame();
    const PacketDesc d = parsed(f);
    PflogHeader h;
    pflog_fill_header(h, {7, PflogAction::pass, PflogReason::match, PflogDir::in, "wan"}, d);
    const uint8_t *b = raw(h);
    CHECK(b[1] == 24);
    CHECK(b[62] == 24);
    CHECK(b[2] == 0);  // PF_PASS
    CHECK(b[60] == 1); // PF_IN
    CHECK(h.rulenr.get() == 7);
    CHECK(std::memcmp(b + 64, f.data() + 14 + 8, 16) == 0);
    CHECK(std::memcmp(b + 80, f.data() + 14 + 24, 16) == 0);
    CHECK(h.sport.get() == 5353);
    CHECK(h.dport.get() == 53);
}

TEST_CASE("an interface name longer than IFNAMSIZ - 1 is cut and stays NUL-terminated", "[pflog]") {
    const PacketDesc d = parsed(tcp4_frame(0));
    PflogHeader h;
    pflog_fill_header(
        h, {0, PflogAction::pass, PflogReason::match, PflogDir::in, "a-very-long-interface-name"},
        d);
    CHECK(std::string(h.ifname, 15) == "a-very-long-int");
    CHECK(h.ifname[15] == '\0');
}

TEST_CASE("a record carries the IP packet without Ethernet header or padding", "[pflog]") {
    const Bytes f = tcp4_frame(6, 8); // 46-byte datagram, then 8 bytes of padding
    const PacketDesc d = parsed(f);
    PflogRecord r;
    pflog_fill_record(r, {1, PflogAction::pass, PflogReason::match, PflogDir::in, "lan"}, d, f, 42);
    CHECK(r.tsc == 42);
    CHECK(r.wire_len == 46);
    CHECK(r.caplen == 46);
    CHECK(std::memcmp(r.data, f.data() + 14, 46) == 0);
    CHECK(r.data[0] == 0x45);
    // The pcap record is the header then the packet, contiguous.
    CHECK(r.pcap_bytes() == raw(r.hdr));
    CHECK(r.pcap_bytes() + 100 == r.data);
    CHECK(r.pcap_caplen() == 146);
    CHECK(r.pcap_len() == 146);
}

TEST_CASE("a record keeps at most the snap length of a long packet and its full length",
          "[pflog]") {
    const Bytes f = tcp4_frame(1400);
    const PacketDesc d = parsed(f);
    PflogRecord r;
    pflog_fill_record(r, {1, PflogAction::drop, PflogReason::match, PflogDir::in, "lan"}, d, f, 0);
    CHECK(r.wire_len == 1440);
    CHECK(r.caplen == pflog_snaplen);
    CHECK(std::memcmp(r.data, f.data() + 14, pflog_snaplen) == 0);
    CHECK(r.pcap_caplen() == 100 + pflog_snaplen);
    CHECK(r.pcap_len() == 100 + 1440);
}
