// Keys, pseudo-states, quoted connections and expiry (pf semantics, no EAL).
#include "dataplane/state_logic.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

using namespace syncwall::dp;

namespace {

PacketDesc udp4(std::array<uint8_t, 4> src, std::array<uint8_t, 4> dst, uint16_t sport,
                uint16_t dport) {
    PacketDesc d;
    d.family = 4;
    d.proto = proto_udp;
    d.has_l4 = true;
    std::copy(src.begin(), src.end(), d.src.begin());
    std::copy(dst.begin(), dst.end(), d.dst.begin());
    d.sport = sport;
    d.dport = dport;
    return d;
}

PacketDesc reply_of(const PacketDesc &d) {
    PacketDesc r = d;
    std::swap(r.src, r.dst);
    std::swap(r.sport, r.dport);
    return r;
}

} // namespace

TEST_CASE("a reply looks up the key its request created, in either direction", "[state]") {
    const auto req = udp4({192, 0, 2, 10}, {198, 51, 100, 10}, 40000, 53);
    const auto rep = reply_of(req);
    // Request inbound on lan; the reply leaves outbound on lan.
    CHECK(state_key(req, StateDirection::in) == state_key(rep, StateDirection::out));
    // Request outbound on wan; the reply arrives inbound on wan.
    CHECK(state_key(req, StateDirection::out) == state_key(rep, StateDirection::in));
    // The two states of one forwarded connection have different keys.
    CHECK_FALSE(state_key(req, StateDirection::in) == state_key(req, StateDirection::out));
    const StateKey k = state_key(req, StateDirection::in);
    CHECK(k.addr[0][0] == 192);
    CHECK(k.port[0] == 40000);
    CHECK(k.port[1] == 53);
    CHECK(k.af == 4);
    CHECK(k.proto == proto_udp);
}

TEST_CASE("a key is written whole: every byte set, the pad 0, whatever was there", "[state]") {
    // Keys are hashed and compared bytewise, so no byte may keep what the buffer held.
    const auto req = udp4({192, 0, 2, 10}, {198, 51, 100, 10}, 40000, 53);
    StateKey want{};
    want.addr[1] = req.src; // outbound: addr[0] is the destination
    want.addr[0] = req.dst;
    want.port[1] = 40000;
    want.port[0] = 53;
    want.af = 4;
    want.proto = proto_udp;
    StateKey k;
    std::memset(static_cast<void *>(&k), 0xab, sizeof k);
    fill_state_key(k, req.family, req.proto, req.src, req.dst, req.sport, req.dport,
                   StateDirection::out);
    CHECK(std::memcmp(&k, &want, sizeof k) == 0);
    CHECK(k.pad == 0);
    // An IPv4 address's last 12 bytes come from the descriptor, where they are 0.
    CHECK(std::all_of(k.addr[0].begin() + 4, k.addr[0].end(), [](uint8_t b) { return b == 0; }));
}

TEST_CASE("a key is told from a packet's fields as state_key() would build it, byte for byte",
          "[state]") {
    auto tcp6 = [] {
        PacketDesc d;
        d.family = 6;
        d.proto = proto_tcp;
        d.has_l4 = true;
        for (uint8_t i = 0; i < 16; i++) {
            d.src[i] = uint8_t(0x20 + i);
            d.dst[i] = uint8_t(0x80 + i);
        }
        d.sport = 443;
        d.dport = 51000;
        return d;
    };
    PacketDesc no_ports = udp4({192, 0, 2, 10}, {198, 51, 100, 10}, 40000, 53);
    no_ports.proto = 47; // GRE: no transport header parsed, so ports 0 in the key
    no_ports.has_l4 = false;
    for (const PacketDesc &d :
         {udp4({192, 0, 2, 10}, {198, 51, 100, 10}, 40000, 53), tcp6(), no_ports}) {
        for (const StateDirection dir : {StateDirection::in, StateDirection::out}) {
            INFO("family " << int(d.family) << " proto " << int(d.proto) << " dir " << int(dir));
            const StateKey k = state_key(d, dir);
            CHECK(key_is(k, d, dir));
            CHECK(key_is(state_key(reply_of(d), dir == StateDirection::in ? StateDirection::out
                                                                          : StateDirection::in),
                         d, dir));
            const StateDirection other =
                dir == StateDirection::in ? StateDirection::out : StateDirection::in;
            CHECK_FALSE(key_is(k, d, other)); // the sides swapped
            // Any one byte changed, the pad's included, and the key is another.
            for (std::size_t b = 0; b < sizeof k; b++) {
                StateKey changed = k;
                reinterpret_cast<uint8_t *>(&changed)[b] ^= 0x01;
                INFO("byte " << b);
                CHECK_FALSE(key_is(changed, d, dir));
            }
        }
    }
}

TEST_CASE("UDP pseudo-states go single then multiple with pf's timeouts", "[state]") {
    State s;
    const auto req = udp4({192, 0, 2, 10}, {198, 51, 100, 10}, 40000, 53);
    state_init_peers(s, req);
    CHECK(s.src.state == pseudo_single);
    CHECK(s.dst.state == pseudo_no_traffic);
    CHECK(s.timeout == Timeout::udp_first);
    bool changed = false;
    // Another packet from the initiator: nothing new.
    CHECK(pseudo_state_update(s.src, s.dst, proto_udp, &changed) == Timeout::udp_single);
    CHECK_FALSE(changed);
    // The first reply: the responder is now single, the initiator multiple.
    CHECK(pseudo_state_update(s.dst, s.src, proto_udp, &changed) == Timeout::udp_single);
    CHECK(changed);
    CHECK(s.dst.state == pseudo_single);
    CHECK(s.src.state == pseudo_multiple);
    // A second packet from the initiator: both multiple.
    CHECK(pseudo_state_update(s.src, s.dst, proto_udp, &changed) == Timeout::udp_multiple);
    CHECK(s.dst.state == pseudo_multiple);
    CHECK(pseudo_state_update(s.src, s.dst, 47, &changed) == Timeout::other_multiple);
}

TEST_CASE("ICMP echo states use icmp.first then icmp.error timeouts", "[state]") {
    PacketDesc echo;
    echo.family = 4;
    echo.proto = proto_icmp;
    echo.has_l4 = true;
    echo.icmp.type = 8;
    echo.sport = echo.dport = 77;
    State s;
    state_init_peers(s, echo);
    CHECK(s.timeout == Timeout::icmp_first);
    bool changed = true;
    CHECK(pseudo_state_update(s.dst, s.src, proto_icmp, &changed) == Timeout::icmp_error);
    CHECK_FALSE(changed);
}

namespace {

// Frame: Ethernet + IPv4 (router 203.0.113.1 -> `outer_dst`) + ICMP port unreachable
// quoting the client 192.0.2.10's UDP packet to 198.51.100.10:53.
// One header a line: Ethernet, IPv4, ICMP, quoted IPv4, quoted UDP.
std::vector<uint8_t> port_unreachable_to(std::array<uint8_t, 4> outer_dst) {
    // clang-format off
    std::vector<uint8_t> f = {
        2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00,
        0x45, 0, 0, 56, 0, 1, 0, 0, 64, 1, 0, 0, 203, 0, 113, 1,
            outer_dst[0], outer_dst[1], outer_dst[2], outer_dst[3],
        3, 3, 0, 0, 0, 0, 0, 0,
        0x45, 0, 0, 28, 0, 2, 0, 0, 63, 17, 0, 0, 192, 0, 2, 10, 198, 51, 100, 10,
        0x9c, 0x40, 0, 53, 0, 8, 0, 0};
    // clang-format on
    // Fix the outer IPv4 header checksum so that the parser accepts the frame.
    {
        uint32_t sum = 0;
        for (int i = 14; i < 34; i += 2)
            sum += uint32_t(f[i] << 8 | f[i + 1]);
        while (sum >> 16)
            sum = (sum & 0xffff) + (sum >> 16);
        f[24] = uint8_t(~sum >> 8);
        f[25] = uint8_t(~sum);
    }
    return f;
}

} // namespace

TEST_CASE("an ICMP error's quoted packet leads to the connection's key", "[state]") {
    // An error from router 203.0.113.1 to the client 192.0.2.10 about its UDP packet.
    const std::vector<uint8_t> f = port_unreachable_to({192, 0, 2, 10});
    PacketDesc d;
    REQUIRE_FALSE(parse_packet(f, d).has_value());
    REQUIRE(d.icmp.is_error);
    // The error comes back inbound on the port the UDP packet left by.
    const auto q = quoted_connection(f, d, StateDirection::in);
    REQUIRE(q.has_value());
    CHECK(q->dir == StateDirection::out);
    const auto original = udp4({192, 0, 2, 10}, {198, 51, 100, 10}, 40000, 53);
    CHECK(q->key == state_key(original, StateDirection::out));
    CHECK_FALSE(q->is_tcp);
    CHECK(q->to_quoted_source);
}

TEST_CASE("an ICMP error sent to another host than the quoted source is told apart",
          "[state][hardening]") {
    // Same quoted packet, but the error goes to 192.0.2.11, not to its sender 192.0.2.10:
    // it still names the connection (so the filter finds the state and counts the drop).
    const std::vector<uint8_t> f = port_unreachable_to({192, 0, 2, 11});
    PacketDesc d;
    REQUIRE_FALSE(parse_packet(f, d).has_value());
    const auto q = quoted_connection(f, d, StateDirection::in);
    REQUIRE(q.has_value());
    CHECK_FALSE(q->to_quoted_source);
}

TEST_CASE("a quoted TCP sequence number must lie in its sender's window", "[state]") {
    TcpPeer sender, receiver;
    sender.seqlo = 1000;
    sender.seqhi = 5000;
    receiver.max_win = 2000;
    CHECK(quoted_tcp_seq_fits(sender, receiver, 1000));
    CHECK(quoted_tcp_seq_fits(sender, receiver, 5000));
    CHECK(quoted_tcp_seq_fits(sender, receiver, 0u - 1000u + 1000u)); // seqlo - max_win = -1000
    CHECK_FALSE(quoted_tcp_seq_fits(sender, receiver, 5001));
    CHECK_FALSE(quoted_tcp_seq_fits(sender, receiver, 0x80000000u));
}

TEST_CASE("timeouts come from the config and scale adaptively near the state limit", "[state]") {
    syncwall::config::TimeoutConfig tc;
    tc.udp_single = 30;
    const auto t = TimeoutTable::from_config(tc, 1000); // adaptive 600 .. 1200
    CHECK(t.lifetime(Timeout::udp_single, 10) == 30);
    CHECK(t.lifetime(Timeout::tcp_established, 600) == 86400);
    CHECK(t.lifetime(Timeout::udp_single, 900) == 15);
    CHECK(t.lifetime(Timeout::udp_single, 1200) == 0);
    CHECK(t.lifetime(Timeout::udp_single, 10, 7) == 7);
    State s;
    s.expire = 100;
    CHECK_FALSE(state_expired(s, 129, 30));
    CHECK(state_expired(s, 130, 30));
}
