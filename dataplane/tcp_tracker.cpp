// pf's TCP window tracking. The order of the checks and updates follows OpenBSD's
// pf_create_state() (TCP part), pf_test_state() (SYN on an existing state) and
// pf_tcp_track_full(); comments say where we knowingly differ.
#include "dataplane/tcp_tracker.hpp"

#include <algorithm>

namespace syncwall::dp {

namespace {

constexpr uint32_t tcp_max_win = 65535;

constexpr bool has(const TcpInfo &t, uint8_t flag) {
    return (t.flags & flag) != 0;
}

// pf_get_wscale(): flag | shift (clamped to 14) when the option is present, else 0.
uint8_t wscale_of(const TcpInfo &t) {
    if (t.wscale < 0) return 0;
    return uint8_t(wscale_flag | std::min<uint8_t>(uint8_t(t.wscale), tcp_max_winshift));
}

bool same(const TcpPeer &a, const TcpPeer &b) {
    return a.seqlo == b.seqlo && a.seqhi == b.seqhi && a.seqdiff == b.seqdiff &&
           a.max_win == b.max_win && a.mss == b.mss && a.state == b.state && a.wscale == b.wscale;
}

void raise_state(TcpPeer &p, uint8_t to) {
    if (p.state < to) p.state = to;
}

} // namespace

Timeout tcp_state_init(TcpPeer &src, TcpPeer &dst, const PacketDesc &pkt) {
    const TcpInfo &th = pkt.tcp;
    src = TcpPeer{};
    dst = TcpPeer{};

    src.seqlo = th.seq;
    // Until the other side speaks, the sender may not go past what it has sent plus one
    // (pf's seqlo + len + 1); SYN and FIN each take one more sequence number.
    src.seqhi = th.seq + th.payload_len + 1;
    if (has(th, tcpf::syn)) {
        ++src.seqhi;
        src.wscale = wscale_of(th);
    }
    src.max_win = std::max<uint16_t>(th.window, 1);
    if (const uint8_t shift = src.wscale & wscale_mask; shift != 0) {
        // A SYN's window is never scaled (RFC 7323); keep max_win in the units the later,
        // scaled windows will use, rounding up so that nothing legitimate is cut off.
        const uint32_t win = uint32_t(src.max_win) + (1u << shift);
        src.max_win = uint16_t((win - 1) >> shift);
    }
    if (has(th, tcpf::fin)) ++src.seqhi;

    // The other side has sent nothing: a one-byte window stands in until it does.
    dst.seqhi = 1;
    dst.max_win = 1;
    src.state = tcps_syn_sent;
    dst.state = tcps_closed;
    return Timeout::tcp_first;
}

void tcp_track_full(TcpPeer &src, TcpPeer &dst, const PacketDesc &pkt, TcpTrackResult &res) {
    const TcpInfo &th = pkt.tcp;
    res = TcpTrackResult{};

    // pf_test_state(): a bare SYN on an existing state is not tracked as part of it.
    if ((th.flags & (tcpf::syn | tcpf::ack)) == tcpf::syn) {
        if (dst.state >= tcps_fin_wait_2 && src.state >= tcps_fin_wait_2) {
            res.verdict = TcpVerdict::reuse;
            return;
        }
        if (dst.state >= tcps_established && src.state >= tcps_established) {
            res.verdict = TcpVerdict::drop_syn_challenge_ack;
            return;
        }
    }

    const TcpPeer src_before = src, dst_before = dst;

    // Window scaling applies only when both SYNs carried the option, and never to a
    // SYN's own window.
    uint8_t sws = 0, dws = 0;
    if (src.wscale != 0 && dst.wscale != 0 && !has(th, tcpf::syn)) {
        sws = src.wscale & wscale_mask;
        dws = dst.wscale & wscale_mask;
    }
    uint16_t win = th.window;

    const uint32_t orig_seq = th.seq;
    uint32_t seq = th.seq;
    // The sender acks the other side's numbers as it saw them, i.e. modulated.
    uint32_t ack = th.ack - dst.seqdiff;
    uint32_t end = seq + th.payload_len;
    if (has(th, tcpf::syn)) ++end;
    uint32_t data_end = end; // last octet of data (a FIN is not data)
    if (has(th, tcpf::fin)) ++end;

    if (src.seqlo == 0) {
        // First packet from this side (pf's test: an ISN of 0 reads as "not seen", a quirk
        // kept because seqlo is what goes on the wire).
        if (has(th, tcpf::syn) && (dst.wscale & wscale_flag) != 0) {
            src.wscale = wscale_of(th);
            if ((src.wscale & wscale_flag) != 0) {
                // Both SYNs offered scaling: it is on. Store this SYN's window in scaled
                // units, like tcp_state_init() did for the other side.
                sws = src.wscale & wscale_mask;
                win = uint16_t((uint32_t(win) + (1u << sws) - 1) >> sws);
                dws = dst.wscale & wscale_mask;
            } else {
                // Only the other side offered it: scaling is off for both. Undo the
                // scaled units of the other side's max_win.
                dst.max_win = uint16_t(std::min<uint32_t>(
                    tcp_max_win, uint32_t(dst.max_win) << (dst.wscale & wscale_mask)));
                dst.wscale = 0;
            }
        }
        src.seqlo = seq;
        raise_state(src, tcps_syn_sent);
        // Slide the window open: seqhi may have been set from the other side's acks
        // (a retransmitted SYN, or a connection picked up after establishment).
        const uint32_t span = std::max<uint32_t>(1, uint32_t(dst.max_win) << dws);
        if (src.seqhi == 1 || seq_geq(end + span, src.seqhi)) src.seqhi = end + span;
        if (win > src.max_win) src.max_win = win;
    }

    // Whether `ack` is the one the packet carries, not a stand-in put there so that the
    // ack-skew check passes. Only a real ack can be perfect.
    bool ack_is_real = has(th, tcpf::ack);
    if (!has(th, tcpf::ack)) {
        // Nothing acknowledged: let it through the ack-skew check.
        ack = dst.seqlo;
    } else if ((ack == 0 && (th.flags & (tcpf::ack | tcpf::rst)) == (tcpf::ack | tcpf::rst)) ||
               dst.state < tcps_syn_sent) {
        // Broken stacks send RST|ACK with ack 0, and many (OpenBSD's included) set an
        // arbitrary ack on a FIN|ACK when their SYN timed out: there is nothing to check.
        ack = dst.seqlo;
        ack_is_real = false;
    }

    // The responder's first SYN|ACK fixes its sequence space, so it must acknowledge the
    // initiator's SYN itself (ISN + 1, or up to the SYN's data): a stale SYN|ACK of an
    // earlier incarnation, acking a little below, would otherwise pass the ack-skew check
    // and make the real SYN|ACK and the rest of the connection fail the windows. Beyond
    // pf, which accepts it. Until the responder has spoken the initiator's seqhi is still
    // its SYN's end + 1 and its seqlo the ISN (a retransmitted SYN leaves it there, below).
    bool stale_synack = false;
    if ((th.flags & (tcpf::syn | tcpf::ack | tcpf::rst)) == (tcpf::syn | tcpf::ack) &&
        src_before.seqlo == 0 && dst.state == tcps_syn_sent && ack_is_real) {
        const uint32_t syn_end = dst.seqhi - 1;
        const uint32_t lowest = seq_lt(dst.seqlo, syn_end) ? dst.seqlo + 1 : syn_end;
        stale_synack = !(seq_geq(ack, lowest) && seq_leq(ack, syn_end));
    }

    if (seq == end) {
        // No data, SYN or FIN: only the ack matters, so ease the sequence checks.
        seq = src.seqlo;
        data_end = end = seq;
    }

    const int64_t ackskew = int32_t(dst.seqlo - ack);
    const uint32_t dst_win = uint32_t(dst.max_win) << dws;

    const bool rst = has(th, tcpf::rst);
    // pf requires a RST to carry an exact (or +-1) sequence number; a RST|ACK whose ack is
    // perfect may instead fall anywhere in the window behind seqlo. An ack of 0 stands for
    // seqlo above but is not perfect (beyond pf): otherwise a blind sender who knows no ack
    // could reset with any sequence number in the window.
    const bool rst_ok = !rst || orig_seq == src.seqlo || orig_seq == src.seqlo + 1 ||
                        orig_seq + 1 == src.seqlo ||
                        (seq_geq(orig_seq, src.seqlo - dst_win) &&
                         seq_leq(orig_seq, src.seqlo + 1) && ackskew == 0 && ack_is_real &&
                         (th.flags & (tcpf::ack | tcpf::rst)) == (tcpf::ack | tcpf::rst));

    const bool fits = seq_geq(src.seqhi, data_end) &&           // last octet inside the window
                      seq_geq(seq, src.seqlo - dst_win) &&      // retransmit: one window back
                      ackskew >= -tcp_max_ack_window &&         // acks at most ~a window ahead
                      ackskew <= (tcp_max_ack_window << sws) && // and a window behind
                      rst_ok;
    if (fits && stale_synack) {
        // Inside the windows but not the answer to this SYN: leave both peers as they were.
        src = src_before;
        dst = dst_before;
        res.verdict = TcpVerdict::drop_synack_bad_ack;
        res.timeout = tcp_timeout_class(src, dst);
        return;
    }

    // pf's loose branch: just outside the windows while the other side has not spoken
    // (shotgunned SYNs, a connection picked up mid-stream) or after a close (stray
    // FIN|ACKs). Bounded by MAXACKWINDOW either way.
    const bool loose_ok = !fits &&
                          (dst.state < tcps_syn_sent || dst.state >= tcps_fin_wait_2 ||
                           src.state >= tcps_fin_wait_2) &&
                          seq_geq(src.seqhi + uint32_t(tcp_max_ack_window), data_end) &&
                          seq_geq(seq, src.seqlo - uint32_t(tcp_max_ack_window));

    if (fits || loose_ok) {
        // The "shadow state" of the sender and of what the other side may send.
        if (src.max_win < win) src.max_win = win;
        // A SYN sent again before the other side has answered leaves seqlo at the ISN:
        // the SYN|ACK check above reads it there, and a SYN|ACK to a SYN that carried data
        // may ack the SYN alone (a server that does not take the data, TCP Fast Open's
        // fallback) however often the SYN was sent.
        const bool syn_again = (th.flags & (tcpf::syn | tcpf::ack)) == tcpf::syn && dst.seqlo == 0;
        if (seq_gt(end, src.seqlo) && !syn_again) src.seqlo = end;
        const uint32_t wspan = uint32_t(win) << sws;
        if (seq_geq(ack + wspan, dst.seqhi)) dst.seqhi = ack + std::max<uint32_t>(wspan, 1);
    }

    if (fits) {
        if (has(th, tcpf::syn)) raise_state(src, tcps_syn_sent);
        if (has(th, tcpf::fin)) raise_state(src, tcps_closing);
        if (has(th, tcpf::ack)) {
            // pf moves the other side on any acceptable ACK, not only one covering its
            // SYN or FIN; the window checks above keep such ACKs near the truth.
            if (dst.state == tcps_syn_sent)
                dst.state = tcps_established;
            else if (dst.state == tcps_closing)
                dst.state = tcps_fin_wait_2;
        }
        if (rst) src.state = dst.state = tcps_time_wait;
        res.verdict = TcpVerdict::pass;
        res.refresh_expire = true;
    } else if (loose_ok) {
        // No SYN/ACK transitions and no expiry refresh here: a flood inside these bounds
        // must not keep a state alive, and a real peer's answer goes through the full
        // checks above.
        if (has(th, tcpf::fin)) raise_state(src, tcps_closing);
        if (rst) src.state = dst.state = tcps_time_wait;
        res.verdict = TcpVerdict::pass;
        res.loose = true;
    } else if (dst.state == tcps_syn_sent && src.state == tcps_syn_sent) {
        // A handshake that went wrong: forget the sender's half so its next packet is
        // taken as its first again. pf sends a RST for anything but a RST.
        src.seqlo = 0;
        src.seqhi = 1;
        src.max_win = 1;
        res.verdict = rst ? TcpVerdict::drop_bad_state : TcpVerdict::drop_handshake_mismatch;
    } else if (rst && seq_geq(src.seqhi, orig_seq) && seq_geq(orig_seq, src.seqlo - dst_win)) {
        res.verdict = TcpVerdict::drop_rst_not_exact;
    } else {
        res.verdict = TcpVerdict::drop_bad_state;
    }

    res.timeout = tcp_timeout_class(src, dst);
    res.transition = src.state != src_before.state || dst.state != dst_before.state;
    res.changed_for_peer = !same(src, src_before) || !same(dst, dst_before);
}

} // namespace syncwall::dp
