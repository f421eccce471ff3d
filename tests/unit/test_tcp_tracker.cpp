// pf's TCP window tracking, packet by packet. Expected numbers are worked out by hand from
// pf_tcp_track_full()'s rules; each comment shows the arithmetic.
#include "dataplane/tcp_tracker.hpp"

#include "fuzz_seeds.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <vector>

using namespace syncwall::dp;

namespace {

constexpr uint8_t SYN = tcpf::syn, ACK = tcpf::ack, FIN = tcpf::fin, RST = tcpf::rst,
                  PSH = tcpf::psh;

struct Seg {
    uint8_t flags;
    uint32_t seq = 0, ack = 0;
    uint16_t win = 0, len = 0;
    int8_t wscale = -1;
};

PacketDesc tcp(const Seg &s, bool from_client = true) {
    PacketDesc d;
    d.l3 = L3Kind::ipv4;
    d.family = 4;
    d.proto = proto_tcp;
    d.has_l4 = true;
    d.src = {10, 0, 0, 1};
    d.dst = {192, 0, 2, 80};
    d.sport = 40000;
    d.dport = 80;
    if (!from_client) {
        std::swap(d.src, d.dst);
        std::swap(d.sport, d.dport);
    }
    d.tcp.flags = s.flags;
    d.tcp.seq = s.seq;
    d.tcp.ack = s.ack;
    d.tcp.window = s.win;
    d.tcp.payload_len = s.len;
    d.tcp.header_len = s.wscale >= 0 ? 24 : 20;
    d.tcp.wscale = s.wscale;
    return d;
}

// A connection as the state table holds it: the client created the state.
struct Conn {
    TcpPeer c, s;
    Timeout open(const Seg &syn) { return tcp_state_init(c, s, tcp(syn)); }
    TcpTrackResult client(const Seg &seg) { return tcp_track(c, s, tcp(seg)); }
    TcpTrackResult server(const Seg &seg) { return tcp_track(s, c, tcp(seg, false)); }
};

// Client ISN 1000 (window 65535), server ISN 5000 (window 29200), no options; then the
// client sends 100 bytes and the server acks them.
Conn established() {
    Conn k;
    k.open({SYN, 1000, 0, 65535});
    REQUIRE(k.server({SYN | ACK, 5000, 1001, 29200}).verdict == TcpVerdict::pass);
    REQUIRE(k.client({ACK, 1001, 5001, 65535}).verdict == TcpVerdict::pass);
    REQUIRE(k.client({PSH | ACK, 1001, 5001, 65535, 100}).verdict == TcpVerdict::pass);
    REQUIRE(k.server({ACK, 5001, 1101, 29200}).verdict == TcpVerdict::pass);
    // Client may send up to 1101 + 29200; server up to 5001 + 65535.
    REQUIRE(k.c.seqlo == 1101);
    REQUIRE(k.c.seqhi == 30301);
    REQUIRE(k.s.seqlo == 5001);
    REQUIRE(k.s.seqhi == 70536);
    REQUIRE(k.c.state == tcps_established);
    REQUIRE(k.s.state == tcps_established);
    return k;
}

} // namespace

TEST_CASE("Handshake, data, half-close and close move both peers as pf does", "[tcp]") {
    Conn k;

    // SYN: seqhi = ISN + len + 1, + 1 for the SYN; the silent side gets a 1-byte window.
    CHECK(k.open({SYN, 1000, 0, 65535}) == Timeout::tcp_first);
    CHECK(k.c.seqlo == 1000);
    CHECK(k.c.seqhi == 1002);
    CHECK(k.c.max_win == 65535);
    CHECK(k.c.wscale == 0);
    CHECK(k.c.state == tcps_syn_sent);
    CHECK(k.s.seqlo == 0);
    CHECK(k.s.seqhi == 1);
    CHECK(k.s.max_win == 1);
    CHECK(k.s.state == tcps_closed);

    // SYN|ACK: the server's first packet. Its seqhi = 5001 + client's 65535; the client's
    // seqhi slides to ack + window = 1001 + 29200. The ACK establishes the client.
    auto r = k.server({SYN | ACK, 5000, 1001, 29200});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(r.timeout == Timeout::tcp_opening);
    CHECK(r.refresh_expire);
    CHECK(r.transition);
    CHECK(r.changed_for_peer);
    CHECK(k.s.seqlo == 5001);
    CHECK(k.s.seqhi == 70536);
    CHECK(k.s.max_win == 29200);
    CHECK(k.s.state == tcps_syn_sent);
    CHECK(k.c.seqhi == 30201);
    CHECK(k.c.state == tcps_established);

    // ACK: establishes the server. A pure ACK does not advance seqlo (pf eases seq to seqlo).
    r = k.client({ACK, 1001, 5001, 65535});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(r.timeout == Timeout::tcp_established);
    CHECK(r.transition);
    CHECK(k.s.state == tcps_established);
    CHECK(k.c.seqlo == 1000);

    // Data: seqlo follows the data's end; no state transition but a moved edge.
    r = k.client({PSH | ACK, 1001, 5001, 65535, 100});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(r.timeout == Timeout::tcp_established);
    CHECK_FALSE(r.transition);
    CHECK(r.changed_for_peer);
    CHECK(k.c.seqlo == 1101);

    r = k.server({ACK, 5001, 1101, 29200});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(k.c.seqhi == 30301);
    CHECK(r.changed_for_peer);

    // Client closes its half: FIN takes one sequence number and the sender to CLOSING.
    r = k.client({FIN | ACK, 1101, 5001, 65535});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(r.timeout == Timeout::tcp_closing);
    CHECK(r.transition);
    CHECK(k.c.seqlo == 1102);
    CHECK(k.c.state == tcps_closing);
    CHECK(k.s.state == tcps_established);

    // Half-close: the server acks the FIN and keeps sending data.
    r = k.server({PSH | ACK, 5001, 1102, 29200, 50});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(r.timeout == Timeout::tcp_closing);
    CHECK(r.transition);
    CHECK(k.c.state == tcps_fin_wait_2);
    CHECK(k.s.state == tcps_established);
    CHECK(k.s.seqlo == 5051);

    r = k.client({ACK, 1102, 5051, 65535});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(r.timeout == Timeout::tcp_closing);
    CHECK_FALSE(r.transition);

    // Server closes: both at least CLOSING -> finwait.
    r = k.server({FIN | ACK, 5051, 1102, 29200});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(r.timeout == Timeout::tcp_finwait);
    CHECK(k.s.state == tcps_closing);
    CHECK(k.s.seqlo == 5052);

    // Last ACK: both FIN_WAIT_2 -> closed.
    r = k.client({ACK, 1102, 5052, 65535});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(r.timeout == Timeout::tcp_closed);
    CHECK(r.transition);
    CHECK(k.c.state == tcps_fin_wait_2);
    CHECK(k.s.state == tcps_fin_wait_2);
}

TEST_CASE("RST with the exact sequence number resets both peers", "[tcp]") {
    Conn k = established();
    auto r = k.client({RST, 1101});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(r.timeout == Timeout::tcp_closed);
    CHECK(r.transition);
    CHECK(r.changed_for_peer);
    CHECK(k.c.state == tcps_time_wait);
    CHECK(k.s.state == tcps_time_wait);
}

TEST_CASE("RST|ACK with a perfect ack may carry a sequence number behind seqlo", "[tcp]") {
    Conn k = established();
    // seq 1050 lies in [1101 - 29200, 1101 + 1] and ack 5001 == server's seqlo.
    auto r = k.client({RST | ACK, 1050, 5001});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(k.c.state == tcps_time_wait);
    CHECK(k.s.state == tcps_time_wait);
}

TEST_CASE("RST inside the window but not exact asks for a challenge ACK", "[tcp]") {
    Conn k = established();
    const TcpPeer c = k.c, s = k.s;
    auto r = k.client({RST, 1101 + 5000}); // within the client's seqhi 30301
    CHECK(r.verdict == TcpVerdict::drop_rst_not_exact);
    CHECK(tcp_verdict_drops(r.verdict));
    CHECK_FALSE(r.refresh_expire);
    CHECK_FALSE(r.changed_for_peer);
    CHECK(k.c.state == tcps_established);
    CHECK(k.s.state == tcps_established);
    CHECK(k.c.seqlo == c.seqlo);
    CHECK(k.s.seqhi == s.seqhi);
    // Sent to the client on the server's behalf: the server's next number, the client's.
    const TcpChallengeAck ca = tcp_challenge_ack(k.c, k.s);
    CHECK(ca.seq == 5001);
    CHECK(ca.ack == 1101);
}

TEST_CASE("RST outside the window is dropped", "[tcp]") {
    Conn k = established();
    auto r = k.client({RST, 1101 + 1000000});
    CHECK(r.verdict == TcpVerdict::drop_bad_state);
    CHECK(tcp_drop_reason(r.verdict) == DropReason::filter_state_mismatch);
    CHECK(k.c.state == tcps_established);
    CHECK(k.s.state == tcps_established);
    CHECK_FALSE(r.changed_for_peer);
}

TEST_CASE("Window scaling is used when both SYNs carry it", "[tcp]") {
    Conn k;
    k.open({SYN, 100, 0, 65535, 0, 7});
    CHECK(k.c.wscale == (wscale_flag | 7));
    CHECK(k.c.max_win == 512); // (65535 + 128 - 1) >> 7, scaled units
    auto r = k.server({SYN | ACK, 7000, 101, 65535, 0, 8});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(k.s.wscale == (wscale_flag | 8));
    CHECK(k.s.max_win == 256);        // (65535 + 256 - 1) >> 8
    CHECK(k.s.seqhi == 7001 + 65536); // 512 << 7
    CHECK(k.c.seqhi == 101 + 65536);  // 256 << 8

    // Scaled windows: client 2048 << 7, server 1024 << 8, both 262144 bytes.
    CHECK(k.client({ACK, 101, 7001, 2048}).verdict == TcpVerdict::pass);
    CHECK(k.s.seqhi == 7001 + 262144);
    CHECK(k.server({ACK, 7001, 101, 1024}).verdict == TcpVerdict::pass);
    CHECK(k.c.seqhi == 101 + 262144);
    CHECK(k.c.max_win == 2048);

    // 200 KB ahead is inside the scaled window.
    r = k.client({ACK, 101 + 200000, 7001, 2048, 1000});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(k.c.seqlo == 101 + 201000);
}

TEST_CASE("Window scaling is off when only one SYN carries it", "[tcp]") {
    Conn k;
    k.open({SYN, 100, 0, 65535, 0, 7});
    auto r = k.server({SYN | ACK, 7000, 101, 65535}); // no window-scale option
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(k.c.wscale == 0);
    CHECK(k.s.wscale == 0);
    CHECK(k.c.max_win == 65535); // min(65535, 512 << 7): back to unscaled units
    CHECK(k.s.seqhi == 7001 + 65535);
    CHECK(k.c.seqhi == 101 + 65535);

    // Windows are taken as sent (2048 and 1024 bytes); seqhi never shrinks.
    CHECK(k.client({ACK, 101, 7001, 2048}).verdict == TcpVerdict::pass);
    CHECK(k.server({ACK, 7001, 101, 1024}).verdict == TcpVerdict::pass);
    CHECK(k.c.seqhi == 101 + 65535);

    // Data past the unscaled window is refused; the same segment passed with scaling on.
    r = k.client({ACK, 101 + 200000, 7001, 2048, 1000});
    CHECK(r.verdict == TcpVerdict::drop_bad_state);
    r = k.client({ACK, 101 + 65000, 7001, 2048, 1000}); // ends at 66101 > 65636
    CHECK(r.verdict == TcpVerdict::drop_bad_state);
    CHECK(k.c.seqlo == 100);
    r = k.client({ACK, 101 + 64000, 7001, 2048, 1000}); // ends at 65101, inside
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(k.c.seqlo == 65101);
}

TEST_CASE("Old retransmission within one window back passes", "[tcp]") {
    Conn k = established();
    auto r = k.client({PSH | ACK, 1001, 5001, 65535, 100}); // the first 100 bytes again
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(r.refresh_expire);
    CHECK(k.c.seqlo == 1101);
    CHECK_FALSE(r.changed_for_peer);

    // More than the server's window (29200) behind seqlo is not a retransmission.
    r = k.client({PSH | ACK, uint32_t(1101 - 40000), 5001, 65535, 100});
    CHECK(r.verdict == TcpVerdict::drop_bad_state);
}

TEST_CASE("Data far beyond seqhi is dropped", "[tcp]") {
    Conn k = established();
    auto r = k.client({PSH | ACK, 1101 + 100000, 5001, 65535, 100});
    CHECK(r.verdict == TcpVerdict::drop_bad_state);
    CHECK(k.c.seqlo == 1101);
    // Exactly up to seqhi is fine: 30201 + 100 = 30301.
    r = k.client({PSH | ACK, 30201, 5001, 65535, 100});
    CHECK(r.verdict == TcpVerdict::pass);
    // One byte more is not (seqhi is now 30301 still; the server acked nothing new).
    r = k.client({PSH | ACK, 30301, 5001, 65535, 1});
    CHECK(r.verdict == TcpVerdict::drop_bad_state);
}

TEST_CASE("ACK for data never sent is dropped", "[tcp]") {
    Conn k = established();
    // The server has sent up to 5001; pf tolerates acks up to MAXACKWINDOW (67035) ahead.
    auto r = k.client({ACK, 1101, 5001 + 100000, 65535});
    CHECK(r.verdict == TcpVerdict::drop_bad_state);
    r = k.client({ACK, 1101, 5001 + 67036, 65535});
    CHECK(r.verdict == TcpVerdict::drop_bad_state);
    r = k.client({ACK, 1101, 5001 + 67035, 65535});
    CHECK(r.verdict == TcpVerdict::pass);
}

TEST_CASE("Sequence numbers wrap around 2^32", "[tcp]") {
    Conn k;
    k.open({SYN, 0xFFFFFF00u, 0, 65535});
    CHECK(k.server({SYN | ACK, 0x7FFFFFF0u, 0xFFFFFF01u, 65535}).verdict == TcpVerdict::pass);
    CHECK(k.client({ACK, 0xFFFFFF01u, 0x7FFFFFF1u, 65535}).verdict == TcpVerdict::pass);

    // 512 bytes from 0xFFFFFF01 end at 0x101, across the wrap.
    auto r = k.client({PSH | ACK, 0xFFFFFF01u, 0x7FFFFFF1u, 65535, 512});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(k.c.seqlo == 0x101u);
    CHECK(k.server({ACK, 0x7FFFFFF1u, 0x101u, 65535}).verdict == TcpVerdict::pass);
    CHECK(k.c.seqhi == 0x101u + 65535);

    CHECK(k.client({PSH | ACK, 0x101u, 0x7FFFFFF1u, 65535, 100}).verdict == TcpVerdict::pass);
    CHECK(k.c.seqlo == 0x165u);
    // The segment before the wrap, retransmitted, is one window back: passes.
    r = k.client({PSH | ACK, 0xFFFFFF01u, 0x7FFFFFF1u, 65535, 512});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(k.c.seqlo == 0x165u);
    // Half the sequence space away is neither ahead nor behind: dropped.
    r = k.client({PSH | ACK, 0x80000101u, 0x7FFFFFF1u, 65535, 100});
    CHECK(r.verdict == TcpVerdict::drop_bad_state);
}

TEST_CASE("SYN retransmission passes", "[tcp]") {
    Conn k;
    k.open({SYN, 1000, 0, 65535});
    auto r = k.client({SYN, 1000, 0, 65535});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(r.timeout == Timeout::tcp_opening);
    CHECK(k.c.state == tcps_syn_sent);
    CHECK(k.s.state == tcps_closed);
    // The ISN still (pf moves it to the SYN's end; the SYN|ACK check needs the ISN: see
    // "a SYN carrying data sent again ...").
    CHECK(k.c.seqlo == 1000);
    // The handshake still completes.
    CHECK(k.server({SYN | ACK, 5000, 1001, 29200}).verdict == TcpVerdict::pass);
    CHECK(k.client({ACK, 1001, 5001, 65535}).verdict == TcpVerdict::pass);
    CHECK(k.c.state == tcps_established);
    CHECK(k.s.state == tcps_established);
}

TEST_CASE("Simultaneous open establishes", "[tcp]") {
    Conn k;
    k.open({SYN, 1000, 0, 65535});
    auto r = k.server({SYN, 5000, 0, 29200}); // crossing SYN, no ACK
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(r.timeout == Timeout::tcp_opening);
    CHECK(k.c.state == tcps_syn_sent);
    CHECK(k.s.state == tcps_syn_sent);
    CHECK(k.s.seqlo == 5001);
    CHECK(k.c.seqhi == 1000 + 29200);

    r = k.client({SYN | ACK, 1000, 5001, 65535});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(k.s.state == tcps_established);
    CHECK(r.timeout == Timeout::tcp_opening);
    r = k.server({SYN | ACK, 5000, 1001, 29200});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(k.c.state == tcps_established);
    CHECK(r.timeout == Timeout::tcp_established);
}

TEST_CASE("SYN|ACK acknowledging nothing sent resets the responder's half", "[tcp]") {
    Conn k;
    k.open({SYN, 1000, 0, 65535});
    auto r = k.server({SYN | ACK, 5000, 1000 + 100000, 29200});
    CHECK(r.verdict == TcpVerdict::drop_handshake_mismatch);
    CHECK(k.s.seqlo == 0);
    CHECK(k.s.seqhi == 1);
    CHECK(k.s.max_win == 1);
    CHECK(k.c.state == tcps_syn_sent);
    // The right SYN|ACK is then taken as the server's first packet.
    r = k.server({SYN | ACK, 5000, 1001, 29200});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(k.s.seqhi == 70536);
    CHECK(k.c.state == tcps_established);
}

TEST_CASE("SYN after the close reuses the ports", "[tcp]") {
    Conn k = established();
    REQUIRE(k.client({FIN | ACK, 1101, 5001, 65535}).verdict == TcpVerdict::pass);
    REQUIRE(k.server({FIN | ACK, 5001, 1102, 29200}).verdict == TcpVerdict::pass);
    REQUIRE(k.client({ACK, 1102, 5002, 65535}).timeout == Timeout::tcp_closed);
    const TcpPeer c = k.c, s = k.s;

    auto r = k.client({SYN, 90000, 0, 65535});
    CHECK(r.verdict == TcpVerdict::reuse);
    CHECK_FALSE(tcp_verdict_drops(r.verdict));
    CHECK(k.c.seqlo == c.seqlo); // untouched: the caller replaces the state
    CHECK(k.s.seqhi == s.seqhi);
    CHECK(k.c.state == tcps_fin_wait_2);

    // After a reset too.
    Conn j = established();
    REQUIRE(j.client({RST, 1101}).verdict == TcpVerdict::pass);
    CHECK(j.server({SYN, 123456, 0, 65535}).verdict == TcpVerdict::reuse);
}

TEST_CASE("SYN on an established state is answered with a challenge ACK", "[tcp]") {
    Conn k = established();
    auto r = k.client({SYN, 90000, 0, 65535});
    CHECK(r.verdict == TcpVerdict::drop_syn_challenge_ack);
    CHECK(k.c.state == tcps_established);
    CHECK(k.c.seqlo == 1101);
    const TcpChallengeAck ca = tcp_challenge_ack(k.c, k.s);
    CHECK(ca.seq == 5001);
    CHECK(ca.ack == 1101);
}

TEST_CASE("Stray FIN|ACK just after the close passes loosely without refreshing", "[tcp]") {
    Conn k = established();
    REQUIRE(k.client({FIN | ACK, 1101, 5001, 65535}).verdict == TcpVerdict::pass);
    REQUIRE(k.server({FIN | ACK, 5001, 1102, 29200}).verdict == TcpVerdict::pass);
    REQUIRE(k.client({ACK, 1102, 5002, 65535}).verdict == TcpVerdict::pass);
    // Server's seqhi is 5002 + 65535 = 70537: 1000 beyond fails the window but lies within
    // MAXACKWINDOW of it.
    REQUIRE(k.s.seqhi == 70537);
    auto r = k.server({FIN | ACK, 70537 + 1000, 1102, 29200, 10});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(r.loose);
    CHECK_FALSE(r.refresh_expire);
    // Beyond MAXACKWINDOW even the loose match refuses.
    r = k.server({FIN | ACK, 70537 + 100000, 1102, 29200, 10});
    CHECK(r.verdict == TcpVerdict::drop_bad_state);
}

TEST_CASE("changed_for_peer reports transitions and moved edges only", "[tcp]") {
    Conn k = established();
    // A duplicate ACK changes nothing.
    auto r = k.server({ACK, 5001, 1101, 29200});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK_FALSE(r.transition);
    CHECK_FALSE(r.changed_for_peer);
    // A bigger window moves the client's seqhi and the server's max_win.
    r = k.server({ACK, 5001, 1101, 40000});
    CHECK_FALSE(r.transition);
    CHECK(r.changed_for_peer);
    CHECK(k.s.max_win == 40000);
    CHECK(k.c.seqhi == 1101 + 40000);
    // A FIN is a transition.
    r = k.server({FIN | ACK, 5001, 1101, 40000});
    CHECK(r.transition);
    CHECK(r.changed_for_peer);
    CHECK(k.s.state == tcps_closing);
}

TEST_CASE("Timeout class follows pf's order", "[tcp]") {
    TcpPeer a, b;
    a.state = tcps_time_wait, b.state = tcps_fin_wait_2;
    CHECK(tcp_timeout_class(a, b) == Timeout::tcp_closed);
    a.state = tcps_closing, b.state = tcps_fin_wait_2;
    CHECK(tcp_timeout_class(a, b) == Timeout::tcp_finwait);
    a.state = tcps_fin_wait_2, b.state = tcps_syn_sent;
    CHECK(tcp_timeout_class(a, b) == Timeout::tcp_opening);
    a.state = tcps_established, b.state = tcps_closing;
    CHECK(tcp_timeout_class(b, a) == Timeout::tcp_closing);
    a.state = tcps_established, b.state = tcps_established;
    CHECK(tcp_timeout_class(a, b) == Timeout::tcp_established);
    CHECK(uint8_t(Timeout::tcp_closed) == 5);
    CHECK(uint8_t(Timeout::interval) == 15);
}

TEST_CASE("Fake-ack RST: an ack of 0 is not a perfect ack", "[tcp][hardening]") {
    // A blind RST|ACK with ack 0 and a sequence number 20000 behind the client's seqlo,
    // inside the window behind it (1101 - 29200): pf's ack-0 fix-up makes the ack look
    // perfect, which would let it reset the connection from anywhere in the window.
    Conn k = established();
    auto r = k.client({RST | ACK, 1101u - 20000u, 0});
    CHECK(r.verdict == TcpVerdict::drop_rst_not_exact);
    CHECK(k.c.state == tcps_established);
    CHECK(k.s.state == tcps_established);
    CHECK_FALSE(r.changed_for_peer);
}

TEST_CASE("RST|ACK with ack 0 and the exact sequence number still resets", "[tcp][hardening]") {
    Conn k = established();
    auto r = k.client({RST | ACK, 1101, 0});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(k.c.state == tcps_time_wait);
    CHECK(k.s.state == tcps_time_wait);
}

TEST_CASE("Stale SYN|ACK acking below ISN+1 is dropped and the right one opens",
          "[tcp][hardening]") {
    Conn k;
    k.open({SYN, 1000, 0, 65535});
    const TcpPeer c = k.c, s = k.s;
    // An earlier incarnation's answer: ack ISN - 999 lies within the ack skew pf allows.
    auto r = k.server({SYN | ACK, 777000, 1000 - 999, 29200});
    CHECK(r.verdict == TcpVerdict::drop_synack_bad_ack);
    CHECK(tcp_verdict_drops(r.verdict));
    CHECK(tcp_drop_reason(r.verdict) == DropReason::filter_synack_bad_ack);
    CHECK_FALSE(r.refresh_expire);
    CHECK(k.s.seqlo == s.seqlo); // the responder is not initialised
    CHECK(k.s.seqhi == s.seqhi);
    CHECK(k.s.max_win == s.max_win);
    CHECK(k.c.seqhi == c.seqhi);
    CHECK(k.c.state == tcps_syn_sent);
    // An ack of ISN itself (one short) is not the answer either.
    CHECK(k.server({SYN | ACK, 777000, 1000, 29200}).verdict == TcpVerdict::drop_synack_bad_ack);
    // The real SYN|ACK and the rest of the connection pass.
    r = k.server({SYN | ACK, 5000, 1001, 29200});
    CHECK(r.verdict == TcpVerdict::pass);
    CHECK(k.s.seqlo == 5001);
    CHECK(k.client({ACK, 1001, 5001, 65535}).verdict == TcpVerdict::pass);
    CHECK(k.client({PSH | ACK, 1001, 5001, 65535, 100}).verdict == TcpVerdict::pass);
    CHECK(k.server({ACK, 5001, 1101, 29200}).verdict == TcpVerdict::pass);
    CHECK(k.c.state == tcps_established);
    CHECK(k.s.state == tcps_established);
}

TEST_CASE("SYN|ACK after a retransmitted SYN must ack ISN+1", "[tcp][hardening]") {
    Conn k;
    k.open({SYN, 1000, 0, 65535});
    REQUIRE(k.client({SYN, 1000, 0, 65535}).verdict == TcpVerdict::pass);
    REQUIRE(k.c.seqlo == 1000); // the ISN until the responder answers
    CHECK(k.server({SYN | ACK, 777000, 1000 - 50, 29200}).verdict ==
          TcpVerdict::drop_synack_bad_ack);
    CHECK(k.server({SYN | ACK, 5000, 1001, 29200}).verdict == TcpVerdict::pass);
    CHECK(k.c.state == tcps_established);
}

TEST_CASE("SYN|ACK to a SYN carrying data may ack the SYN alone or its data", "[tcp][hardening]") {
    for (uint32_t ack : {1001u, 1011u}) {
        Conn k;
        k.open({SYN, 1000, 0, 65535, 10}); // 10 bytes of data on the SYN
        CHECK(k.server({SYN | ACK, 5000, ack, 29200}).verdict == TcpVerdict::pass);
    }
    Conn k;
    k.open({SYN, 1000, 0, 65535, 10});
    CHECK(k.server({SYN | ACK, 5000, 1012, 29200}).verdict != TcpVerdict::pass);
}

TEST_CASE("a SYN carrying data sent again may still be answered by acking the SYN alone",
          "[tcp][hardening]") {
    for (uint32_t ack : {1001u, 1011u}) {
        Conn k;
        k.open({SYN, 1000, 0, 65535, 10});
        REQUIRE(k.client({SYN, 1000, 0, 65535, 10}).verdict == TcpVerdict::pass);
        REQUIRE(k.client({SYN, 1000, 0, 65535, 10}).verdict == TcpVerdict::pass);
        INFO("ack " << ack);
        CHECK(k.server({SYN | ACK, 5000, 1000, 29200}).verdict == TcpVerdict::drop_synack_bad_ack);
        CHECK(k.server({SYN | ACK, 5000, ack, 29200}).verdict == TcpVerdict::pass);
        // The client goes on from what the server took (the data again when it took none).
        CHECK(k.client({PSH | ACK, ack, 5001, 65535, 10}).verdict == TcpVerdict::pass);
        CHECK(k.server({ACK, 5001, ack + 10, 29200}).verdict == TcpVerdict::pass);
        CHECK(k.c.state == tcps_established);
        CHECK(k.s.state == tcps_established);
    }
}

TEST_CASE("tcp_track()'s shortcut for a plain ACK leaves peers and result as the full "
          "tracker does",
          "[tcp]") {
    // Peers and segments drawn at and around every edge the shortcut decides on: the sender's
    // seqlo (0 or not) and seqhi, one window behind seqlo, the ack-skew bounds, every TCP
    // state, scaling on one side, both or neither, and any flags. Each draw is tracked by
    // tcp_track() and by tcp_track_full() on copies, which must agree byte for byte.
    std::mt19937 rng(20261207);
    auto pick = [&](auto... v) {
        const uint32_t values[] = {uint32_t(v)...};
        return values[rng() % sizeof...(v)];
    };
    auto near = [&](uint32_t edge) { return edge + uint32_t(int32_t(rng() % 7) - 3); };
    auto peer = [&] {
        TcpPeer p;
        p.seqlo = pick(0u, 1u, 1000u, 0xfffffff0u, 0x7fffffffu, rng());
        p.seqhi = p.seqlo + pick(0u, 1u, 1500u, 29200u, 65535u, 65535u << 7, rng());
        p.seqdiff = pick(0u, 0u, 0u, rng());
        p.max_win = uint16_t(pick(0u, 1u, 512u, 29200u, 65535u, rng()));
        p.state = uint8_t(rng() % (tcps_time_wait + 1));
        p.wscale = uint8_t(pick(0u, 0u, wscale_flag, wscale_flag | 7u, wscale_flag | 14u));
        return p;
    };
    unsigned shortcut = 0, full = 0, passed = 0, changed = 0, moved = 0;
    constexpr unsigned rounds = 400000;
    for (unsigned i = 0; i < rounds; i++) {
        const TcpPeer src = peer(), dst = peer();
        PacketDesc d;
        d.proto = proto_tcp;
        d.has_l4 = true;
        TcpInfo &t = d.tcp;
        t.flags = rng() % 4 != 0 ? uint8_t(ACK | (rng() % 2 ? PSH : 0)) : uint8_t(rng());
        t.payload_len = uint16_t(pick(0u, 0u, 1u, 100u, 1460u, rng()));
        const uint32_t dst_win = uint32_t(dst.max_win) << (dst.wscale & wscale_mask);
        switch (rng() % 4) { // where the segment's first octet or last one lies
        case 0:
            t.seq = near(src.seqlo);
            break;
        case 1:
            t.seq = near(src.seqhi - t.payload_len);
            break;
        case 2:
            t.seq = near(src.seqlo - dst_win);
            break;
        default:
            t.seq = rng();
            break;
        }
        const uint32_t dst_seen = dst.seqlo + dst.seqdiff; // the ack as the sender writes it
        constexpr uint32_t max_ack_window = uint32_t(tcp_max_ack_window);
        switch (rng() % 4) {
        case 0:
            t.ack = near(dst_seen);
            break;
        case 1:
            t.ack = near(dst_seen + max_ack_window);
            break;
        case 2:
            t.ack = near(dst_seen - (max_ack_window << (src.wscale & wscale_mask)));
            break;
        default:
            t.ack = rng();
            break;
        }
        t.window = uint16_t(pick(0u, 1u, 29200u, 65535u, rng()));
        t.wscale = int8_t(pick(-1, -1, 0, 7, 14));

        INFO("round " << i);
        // Whether the shortcut takes it (alone, on its own copies), then the tracker's entry
        // point and the full tracker.
        TcpPeer s0 = src, d0 = dst, s1 = src, d1 = dst, s2 = src, d2 = dst;
        TcpTrackResult r0, r1, r2;
        r0.loose = r1.loose = r2.loose = true; // each must write every field
        const bool took = tcp_track_ack(s0, d0, t, r0);
        if (!took) {
            REQUIRE(std::memcmp(&s0, &src, sizeof src) == 0);
            REQUIRE(std::memcmp(&d0, &dst, sizeof dst) == 0);
        }
        tcp_track(s1, d1, d, r1);
        tcp_track_full(s2, d2, d, r2);
        (took ? shortcut : full)++;
        // And it takes every segment of its kind that fits, up to each edge: the full
        // tracker passes those refreshing the expiry, and nothing else so.
        const bool its_kind = (t.flags & (SYN | FIN | RST | ACK)) == ACK && src.seqlo != 0 &&
                              dst.state >= tcps_syn_sent;
        if (its_kind && r2.verdict == TcpVerdict::pass && r2.refresh_expire) REQUIRE(took);
        if (took) {
            REQUIRE(std::memcmp(&s0, &s1, sizeof s0) == 0);
            REQUIRE(std::memcmp(&d0, &d1, sizeof d0) == 0);
            passed += r2.verdict == TcpVerdict::pass && r2.refresh_expire;
            changed += r2.changed_for_peer;
            moved += r2.transition;
        }
        REQUIRE(std::memcmp(&s1, &s2, sizeof s1) == 0);
        REQUIRE(std::memcmp(&d1, &d2, sizeof d1) == 0);
        REQUIRE(r1.verdict == r2.verdict);
        REQUIRE(r1.timeout == r2.timeout);
        REQUIRE(r1.refresh_expire == r2.refresh_expire);
        REQUIRE(r1.loose == r2.loose);
        REQUIRE(r1.transition == r2.transition);
        REQUIRE(r1.changed_for_peer == r2.changed_for_peer);
    }
    // Both paths taken often, and the shortcut's segments in every outcome it reports.
    INFO(shortcut << " by the shortcut, " << full << " by the full tracker; " << changed
                  << " changed a peer, " << moved << " moved a state");
    CHECK(shortcut > rounds / 20);
    CHECK(full > rounds / 4);
    CHECK(passed == shortcut);
    CHECK(changed > shortcut / 10);
    CHECK(changed < shortcut);
    CHECK(moved > 100);
}

TEST_CASE("fuzz seeds: an established connection's peers and its segments", "[.][fuzz-seeds]") {
    // fuzz_tcp_track's input: the sender's peer and the other's (20 bytes each, as they lie
    // in memory), then segments of 14 bytes: seq, ack (4 each), window (2), flags (1),
    // payload length (2), window-scale option (1), numbers in host order. ECE in the flags
    // hands the next segment to the other side.
    constexpr uint8_t ECE = 0x40;
    auto segment = [](std::vector<uint8_t> &out, const Seg &s) {
        const auto put = [&out](const void *p, std::size_t n) {
            const auto *b = static_cast<const uint8_t *>(p);
            out.insert(out.end(), b, b + n);
        };
        put(&s.seq, 4);
        put(&s.ack, 4);
        put(&s.win, 2);
        out.push_back(s.flags);
        put(&s.len, 2);
        out.push_back(uint8_t(s.wscale));
    };
    auto seed = [&](const std::string &name, const TcpPeer &a, const TcpPeer &b,
                    std::initializer_list<Seg> segs) {
        std::vector<uint8_t> out(2 * sizeof(TcpPeer));
        std::memcpy(out.data(), &a, sizeof a);
        std::memcpy(out.data() + sizeof a, &b, sizeof b);
        for (const Seg &s : segs)
            segment(out, s);
        syncwall::test::write_fuzz_seed("tcp_track", name, out);
    };
    const Conn k = established();
    // The client's data and acks, then the server's, then a FIN from each and the last ACK.
    seed("established", k.c, k.s,
         {{ACK, 1101, 5001, 65535},
          {PSH | ACK, 1101, 5001, 65535, 500},
          {ACK | ECE, 1601, 5001, 65535},
          {ACK, 5001, 1601, 29200},
          {PSH | ACK | ECE, 5001, 1601, 29200, 100},
          {FIN | ACK | ECE, 1601, 5101, 65535},
          {FIN | ACK | ECE, 5101, 1602, 29200},
          {ACK, 1602, 5102, 65535}});
    // A fresh state after the client's SYN: the handshake's other two segments.
    Conn o;
    o.open({SYN, 1000, 0, 65535, 0, 7});
    seed("handshake", o.s, o.c,
         {{SYN | ACK | ECE, 5000, 1001, 29200, 0, 7}, {ACK, 1001, 5001, 512}});
    // Out of the windows and a RST: the full tracker's drops.
    seed("drops", k.c, k.s,
         {{ACK, 1101 + 200000, 5001, 65535}, {RST, 1101, 0, 0}, {SYN, 1101, 0, 65535}});
}
