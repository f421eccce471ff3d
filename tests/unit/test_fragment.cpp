// Fragment reassembly and refragmentation (dataplane/fragment.hpp): pf's rules, no EAL.
#include "dataplane/byte_order.hpp"
#include "dataplane/fragment.hpp"
#include "dataplane/packet.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

using namespace syncwall::dp;

namespace {

using Bytes = std::vector<uint8_t>;

Bytes ether(uint16_t type) {
    Bytes f = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0x0c, 1};
    f.push_back(uint8_t(type >> 8));
    f.push_back(uint8_t(type));
    return f;
}

// A whole UDP datagram 192.0.2.10:5000 -> 198.51.100.10:53 with `n` payload bytes
// (byte i = i * 7), optional IPv4 options (a multiple of 4 bytes), DF as asked.
Bytes udp4(std::size_t n, Bytes options = {}, bool df = false) {
    Bytes f = ether(ether_type_ipv4);
    const std::size_t ihl = 20 + options.size();
    const std::size_t total = ihl + 8 + n;
    Bytes ip(ihl, 0);
    ip[0] = uint8_t(0x40 | ihl / 4);
    store_be16(&ip[2], uint16_t(total));
    store_be16(&ip[4], 0x1234);
    store_be16(&ip[6], df ? 0x4000 : 0);
    ip[8] = 64;
    ip[9] = proto_udp;
    const uint8_t src[4] = {192, 0, 2, 10}, dst[4] = {198, 51, 100, 10};
    std::memcpy(&ip[12], src, 4);
    std::memcpy(&ip[16], dst, 4);
    if (!options.empty()) std::memcpy(&ip[20], options.data(), options.size());
    store_be16(&ip[10], internet_checksum(ip));
    f.insert(f.end(), ip.begin(), ip.end());
    Bytes udp(8 + n);
    store_be16(&udp[0], 5000);
    store_be16(&udp[2], 53);
    store_be16(&udp[4], uint16_t(8 + n));
    for (std::size_t i = 0; i < n; i++)
        udp[8 + i] = uint8_t(i * 7);
    f.insert(f.end(), udp.begin(), udp.end()); // checksum 0: none, as UDP over IPv4 allows
    return f;
}

// The same over IPv6 2001:db8:1::10 -> 2001:db8:2::10, with a correct UDP checksum.
Bytes udp6(std::size_t n) {
    Bytes f = ether(ether_type_ipv6);
    Bytes ip(40, 0);
    ip[0] = 0x60;
    store_be16(&ip[4], uint16_t(8 + n));
    ip[6] = proto_udp;
    ip[7] = 64;
    const uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
    const uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
    std::memcpy(&ip[8], src, 16);
    std::memcpy(&ip[24], dst, 16);
    f.insert(f.end(), ip.begin(), ip.end());
    Bytes udp(8 + n);
    store_be16(&udp[0], 5000);
    store_be16(&udp[2], 53);
    store_be16(&udp[4], uint16_t(8 + n));
    for (std::size_t i = 0; i < n; i++)
        udp[8 + i] = uint8_t(i * 7);
    f.insert(f.end(), udp.begin(), udp.end());
    PacketDesc d;
    REQUIRE_FALSE(parse_packet(f, d));
    const uint16_t sum =
        internet_checksum({f.data() + d.l4_offset, 8 + n}, pseudo_header_sum(d, uint32_t(8 + n)));
    store_be16(&f[d.l4_offset + 6], sum);
    return f;
}

// Split a whole datagram into fragments of `size` payload bytes with the refragmenters.
std::vector<Bytes> split4(const Bytes &whole, uint32_t size) {
    PacketDesc d;
    REQUIRE_FALSE(parse_packet(whole, d));
    const uint32_t payload = d.l3_total_len - d.l3_header_len;
    std::vector<Bytes> out;
    for (uint32_t off = 0; off < payload; off += size) {
        const uint16_t len = uint16_t(std::min(size, payload - off));
        Bytes f(whole.size() + 64);
        f.resize(ipv4_write_fragment(whole, d.l3_offset, d.l3_header_len, off, len,
                                     off + len < payload, f.data()));
        out.push_back(std::move(f));
    }
    return out;
}

std::vector<Bytes> split6(const Bytes &whole, uint32_t size, uint32_t id) {
    const uint16_t header_len = 14 + 40, next_header_at = 14 + 6;
    const uint32_t payload = uint32_t(whole.size()) - header_len;
    std::vector<Bytes> out;
    for (uint32_t off = 0; off < payload; off += size) {
        const uint16_t len = uint16_t(std::min(size, payload - off));
        Bytes f(whole.size() + 64);
        f.resize(ipv6_write_fragment(whole, 14, header_len, next_header_at, id, off, len,
                                     off + len < payload, f.data()));
        out.push_back(std::move(f));
    }
    return out;
}

struct Released {
    std::vector<std::pair<void *, DropReason>> list;
    static void fn(void *ctx, void *handle, DropReason why) {
        static_cast<Released *>(ctx)->list.emplace_back(handle, why);
    }
};

// Offer one fragment frame to the table, as the worker does.
FragmentTable::Result offer(FragmentTable &t, const Bytes &frame, uint32_t now = 0) {
    PacketDesc d;
    REQUIRE_FALSE(parse_packet(frame, d));
    REQUIRE(d.is_fragment);
    FragmentInfo fi;
    REQUIRE_FALSE(fragment_info(frame, d, fi));
    return t.add(fi, frame.data(), frame.data() + fi.payload_at, const_cast<Bytes *>(&frame), now);
}

// Build the datagram of a complete entry, as the worker does into its reassembly mbuf.
Bytes assemble(FragmentTable &t, uint32_t datagram) {
    FragmentTable::Whole w;
    t.take(datagram, w);
    Bytes out(w.header_len + w.payload_len);
    std::memcpy(out.data(), w.head, w.header_len);
    for (unsigned i = 0; i < w.count; i++)
        std::memcpy(out.data() + w.header_len + w.pieces[i].offset, w.pieces[i].data,
                    w.pieces[i].len);
    out.resize(finish_reassembled_headers(out.data(), 14, w.family, w.header_len, w.next_header_at,
                                          w.next_header, w.payload_len));
    t.finish(datagram);
    return out;
}
// Runs of one byte each: {{16, 'a'}, {8, 'b'}} is 16 'a's then 8 'b's.
Bytes runs(std::initializer_list<std::pair<std::size_t, char>> list) {
    Bytes out;
    for (const auto &[n, c] : list)
        out.insert(out.end(), n, uint8_t(c));
    return out;
}

// A fragment described directly: IPv4 key, payload of `len` bytes all `fill`.
struct RawFragment {
    FragmentInfo info;
    Bytes payload;
};
RawFragment raw(uint8_t family, uint32_t off, uint16_t len, bool more, uint8_t fill) {
    RawFragment f;
    f.info.key.family = family;
    f.info.key.id = 7;
    f.info.key.proto = family == 4 ? proto_udp : 0;
    f.info.offset = off;
    f.info.len = len;
    f.info.more = more;
    f.info.header_len = 34;
    f.payload.assign(len, fill);
    return f;
}
FragmentTable::Result offer(FragmentTable &t, RawFragment &f, uint32_t now = 0) {
    static const Bytes head(34, 0);
    return t.add(f.info, head.data(), f.payload.data(), &f, now);
}
Bytes payload_of(FragmentTable &t, uint32_t datagram) {
    FragmentTable::Whole w;
    t.take(datagram, w);
    Bytes out(w.payload_len, 0xee);
    for (unsigned i = 0; i < w.count; i++)
        std::memcpy(out.data() + w.pieces[i].offset, w.pieces[i].data, w.pieces[i].len);
    t.finish(datagram);
    return out;
}

} // namespace

TEST_CASE("IPv4 fragments arriving out of order reassemble into the datagram sent") {
    const Bytes whole = udp4(2972); // a 3000-byte IP datagram
    const auto frags = split4(whole, 1480);
    REQUIRE(frags.size() == 3);
    Released rel;
    FragmentTable t(64, 60, &Released::fn, &rel);
    CHECK(offer(t, frags[2]).outcome == FragmentTable::Outcome::held);
    CHECK(offer(t, frags[0]).outcome == FragmentTable::Outcome::held);
    const auto r = offer(t, frags[1]);
    REQUIRE(r.outcome == FragmentTable::Outcome::complete);
    CHECK(t.held() == 3);
    const Bytes got = assemble(t, r.datagram);
    CHECK(got == whole);
    CHECK(t.held() == 0);
    CHECK(t.datagrams() == 0);
    CHECK(rel.list.empty());
    PacketDesc d;
    REQUIRE_FALSE(parse_packet(got, d));
    CHECK_FALSE(d.is_fragment);
    CHECK(d.dport == 53);
}

TEST_CASE("IPv6 fragments reassemble without their Fragment header and remember the largest") {
    const Bytes whole = udp6(2952); // 3000 bytes of IPv6 header and payload
    const auto frags = split6(whole, 1448, 0xabcdef01);
    REQUIRE(frags.size() == 3);
    Released rel;
    FragmentTable t(64, 60, &Released::fn, &rel);
    CHECK(offer(t, frags[1]).outcome == FragmentTable::Outcome::held);
    CHECK(offer(t, frags[2]).outcome == FragmentTable::Outcome::held);
    const auto r = offer(t, frags[0]);
    REQUIRE(r.outcome == FragmentTable::Outcome::complete);
    FragmentTable::Whole w;
    t.take(r.datagram, w);
    CHECK(w.max_fragment == 1448);
    CHECK(w.id == 0xabcdef01);
    CHECK(assemble(t, r.datagram) == whole);
}

TEST_CASE("fragments of different datagrams (id, protocol) are not mixed") {
    Released rel;
    FragmentTable t(64, 60, &Released::fn, &rel);
    auto a = raw(4, 0, 8, true, 'a');
    auto b = raw(4, 8, 8, false, 'b');
    b.info.key.id = 8;
    auto c = raw(4, 8, 8, false, 'c');
    c.info.key.proto = proto_tcp;
    CHECK(offer(t, a).outcome == FragmentTable::Outcome::held);
    CHECK(offer(t, b).outcome == FragmentTable::Outcome::held);
    CHECK(offer(t, c).outcome == FragmentTable::Outcome::held);
    CHECK(t.datagrams() == 3);
}

TEST_CASE("an overlapping IPv4 fragment keeps the older data before it (pf's precut)") {
    Released rel;
    FragmentTable t(64, 60, &Released::fn, &rel);
    auto a = raw(4, 0, 16, true, 'a');
    auto b = raw(4, 8, 24, false, 'b'); // bytes 8..15 are a's already
    CHECK(offer(t, a).outcome == FragmentTable::Outcome::held);
    const auto r = offer(t, b);
    REQUIRE(r.outcome == FragmentTable::Outcome::complete);
    CHECK(payload_of(t, r.datagram) == runs({{16, 'a'}, {16, 'b'}}));
    CHECK(rel.list.empty());
}

TEST_CASE("an overlapping IPv4 fragment's data wins over the fragments after it (aftercut)") {
    Released rel;
    FragmentTable t(64, 60, &Released::fn, &rel);
    auto a = raw(4, 16, 16, true, 'a'); // 16..31: its head is cut below
    auto c = raw(4, 8, 8, true, 'c');   // 8..15: wholly overwritten below
    auto b = raw(4, 0, 24, true, 'b');  // 0..23
    auto d = raw(4, 32, 8, false, 'd'); // 32..39, the last
    CHECK(offer(t, a).outcome == FragmentTable::Outcome::held);
    CHECK(offer(t, c).outcome == FragmentTable::Outcome::held);
    CHECK(offer(t, b).outcome == FragmentTable::Outcome::held);
    REQUIRE(rel.list.size() == 1); // c let go
    CHECK(rel.list[0].first == &c);
    CHECK(rel.list[0].second == DropReason::frag_covered);
    const auto r = offer(t, d);
    REQUIRE(r.outcome == FragmentTable::Outcome::complete);
    CHECK(payload_of(t, r.datagram) == runs({{24, 'b'}, {8, 'a'}, {8, 'd'}}));
}

TEST_CASE("an IPv4 fragment wholly covered by earlier data is dropped, the datagram lives on") {
    Released rel;
    FragmentTable t(64, 60, &Released::fn, &rel);
    auto a = raw(4, 0, 32, true, 'a');
    auto dup = raw(4, 8, 16, true, 'x');
    auto b = raw(4, 32, 8, false, 'b');
    CHECK(offer(t, a).outcome == FragmentTable::Outcome::held);
    const auto r = offer(t, dup);
    CHECK(r.outcome == FragmentTable::Outcome::dropped);
    CHECK(r.reason == DropReason::frag_covered);
    const auto done = offer(t, b);
    REQUIRE(done.outcome == FragmentTable::Outcome::complete);
    CHECK(payload_of(t, done.datagram) == runs({{32, 'a'}, {8, 'b'}}));
}

TEST_CASE("overlapping IPv6 fragments drop the whole datagram (RFC 5722)") {
    Released rel;
    FragmentTable t(64, 60, &Released::fn, &rel);
    auto a = raw(6, 0, 16, true, 'a');
    auto b = raw(6, 8, 16, true, 'b');
    CHECK(offer(t, a).outcome == FragmentTable::Outcome::held);
    const auto r = offer(t, b);
    CHECK(r.outcome == FragmentTable::Outcome::dropped);
    CHECK(r.reason == DropReason::frag_overlap);
    REQUIRE(rel.list.size() == 1);
    CHECK(rel.list[0].first == &a);
    CHECK(rel.list[0].second == DropReason::frag_overlap);
    CHECK(t.held() == 0);
    CHECK(t.datagrams() == 0);
    // An exact duplicate overlaps too.
    auto c = raw(6, 0, 16, true, 'c');
    auto c2 = raw(6, 0, 16, true, 'c');
    offer(t, c);
    CHECK(offer(t, c2).reason == DropReason::frag_overlap);
}

TEST_CASE("a datagram in more fragments than reassembly takes is refused whole") {
    Released rel;
    FragmentTable t(1024, 60, &Released::fn, &rel);
    std::vector<RawFragment> f;
    for (unsigned i = 0; i <= max_fragments_per_datagram; i++)
        f.push_back(raw(4, i * 8, 8, true, 'x'));
    for (unsigned i = 0; i < max_fragments_per_datagram; i++)
        REQUIRE(offer(t, f[i]).outcome == FragmentTable::Outcome::held);
    const auto r = offer(t, f[max_fragments_per_datagram]);
    CHECK(r.outcome == FragmentTable::Outcome::dropped);
    CHECK(r.reason == DropReason::frag_too_many);
    CHECK(rel.list.size() == max_fragments_per_datagram);
    CHECK(t.held() == 0);
}

TEST_CASE("a datagram not whole within timeouts.frag is discarded") {
    Released rel;
    FragmentTable t(64, 60, &Released::fn, &rel);
    auto a = raw(4, 0, 8, true, 'a');
    offer(t, a, 100);
    t.expire(159);
    CHECK(rel.list.empty());
    CHECK(t.held() == 1);
    t.expire(160);
    REQUIRE(rel.list.size() == 1);
    CHECK(rel.list[0].second == DropReason::frag_timeout);
    CHECK(t.held() == 0);
    // Its last fragment now starts a new datagram, which waits for the rest.
    auto b = raw(4, 8, 8, false, 'b');
    CHECK(offer(t, b, 161).outcome == FragmentTable::Outcome::held);
}

TEST_CASE("when limits.frags fragments are held the oldest datagram makes room") {
    Released rel;
    FragmentTable t(2, 60, &Released::fn, &rel);
    auto a = raw(4, 0, 8, true, 'a');
    auto b = raw(4, 0, 8, true, 'b');
    b.info.key.id = 2;
    auto c = raw(4, 0, 8, true, 'c');
    c.info.key.id = 3;
    offer(t, a, 1);
    offer(t, b, 2);
    CHECK(offer(t, c, 3).outcome == FragmentTable::Outcome::held);
    REQUIRE(rel.list.size() == 1);
    CHECK(rel.list[0].first == &a);
    CHECK(rel.list[0].second == DropReason::frag_limit);
    CHECK(t.held() == 2);
}

TEST_CASE("a fragment that contradicts its datagram's end is refused: IPv4 alone, IPv6 all") {
    for (uint8_t family : {uint8_t(4), uint8_t(6)}) {
        Released rel;
        FragmentTable t(64, 60, &Released::fn, &rel);
        auto last = raw(family, 16, 8, false, 'a');  // ends at 24
        auto beyond = raw(family, 24, 8, true, 'b'); // data past the end
        offer(t, last);
        const auto r = offer(t, beyond);
        CHECK(r.outcome == FragmentTable::Outcome::dropped);
        CHECK(r.reason == DropReason::frag_bad);
        CHECK(t.held() == (family == 4 ? 1u : 0u));
    }
}

TEST_CASE("fragment_info refuses misaligned and oversized fragments") {
    const auto frags = split4(udp4(100), 56);
    REQUIRE(frags.size() == 2);
    PacketDesc d;
    FragmentInfo fi;
    // A first fragment of 52 bytes with MF set: not a multiple of 8.
    Bytes bad = frags[0];
    store_be16(&bad[14 + 2], uint16_t(20 + 52));
    bad.resize(14 + 20 + 52);
    store_be16(&bad[14 + 10], 0);
    store_be16(&bad[14 + 10], internet_checksum({&bad[14], 20}));
    REQUIRE_FALSE(parse_packet(bad, d));
    CHECK(fragment_info(bad, d, fi) == DropReason::frag_bad);
    // An offset that puts the end beyond 65535 bytes.
    Bytes far = frags[1];
    store_be16(&far[14 + 6], uint16_t(0x1fff));
    store_be16(&far[14 + 10], 0);
    store_be16(&far[14 + 10], internet_checksum({&far[14], 20}));
    REQUIRE_FALSE(parse_packet(far, d));
    CHECK(fragment_info(far, d, fi) == DropReason::frag_bad);
}

TEST_CASE("IPv4 refragmentation keeps DF out, sets offsets and copies only copied options") {
    // Router Alert (148: copied, 4 bytes), Record Route (7: not copied, 7 bytes), end.
    const Bytes options = {148, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0};
    const Bytes whole = udp4(200, options);
    PacketDesc d;
    REQUIRE_FALSE(parse_packet(whole, d));
    CHECK(ipv4_later_header_len(whole, 14, d.l3_header_len) == 24);
    const auto frags = split4(whole, 104);
    REQUIRE(frags.size() == 2);
    PacketDesc f0, f1;
    REQUIRE_FALSE(parse_packet(frags[0], f0));
    REQUIRE_FALSE(parse_packet(frags[1], f1));
    CHECK(f0.l3_header_len == 32);
    CHECK(f1.l3_header_len == 24);
    CHECK(load_be16(&frags[0][14 + 6]) == 0x2000);  // MF, offset 0
    CHECK(load_be16(&frags[1][14 + 6]) == 104 / 8); // last, offset 104
    CHECK(frags[1][14 + 20] == 148);
    // And they reassemble into the datagram (first fragment's header, options and all).
    Released rel;
    FragmentTable t(64, 60, &Released::fn, &rel);
    offer(t, frags[1]);
    const auto r = offer(t, frags[0]);
    REQUIRE(r.outcome == FragmentTable::Outcome::complete);
    CHECK(assemble(t, r.datagram) == whole);
}
