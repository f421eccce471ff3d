// Stateful TCP tracking with OpenBSD pf's semantics (pf_tcp_track_full).
//
// Theory of operation: a worker that has matched a TCP packet to a state calls
// `tcp_track()` with the state's two peer records, the one that sent the packet first.
// The tracker checks the packet against the sequence windows (Guido van Rooij's
// algorithm, as pf does), moves the peers' TCP states, and says whether the packet passes,
// which timeout class the state now has, and whether anything a pfsync peer holds has
// changed. A state is created with `tcp_state_init()` from its first packet.
//
// The peer records are pf's `pf_state_peer`: fixed-size, pointer-free, host byte order,
// so that they live inside the state table's slot and map field for field onto
// `pfsync_state_peer` (docs/pfsync.md 1.9.3). Mutation of one state is serialised by the
// caller (docs/architecture.md 3); these functions are pure: no allocation, no clock, no I/O.
// Packets are never rewritten here: pf's `modulate state` / synproxy rewriting is not
// implemented, but a non-zero `seqdiff` (a state imported from a peer that modulates) is
// honoured when acks are compared, exactly as pf demodulates them.
#pragma once

#include "config/timeout_class.hpp"
#include "dataplane/drop_reason.hpp"
#include "dataplane/packet.hpp"

#include <cstdint>
#include <string_view>
#include <type_traits>

namespace syncwall::dp {

// TCP states as BSD's TCPS_* numbers them (tcp_fsm.h), used as pf uses them per peer.
// The values go on the pfsync wire unchanged. pf never sets listen, syn_received,
// close_wait, fin_wait_1 or last_ack; a FIN takes its sender to `closing`.
enum TcpState : uint8_t {
    tcps_closed = 0,
    tcps_listen,
    tcps_syn_sent,
    tcps_syn_received,
    tcps_established,
    tcps_close_wait,
    tcps_fin_wait_1,
    tcps_closing,
    tcps_last_ack,
    tcps_fin_wait_2,
    tcps_time_wait,
};

// pf's PF_WSCALE_FLAG / PF_WSCALE_MASK: the flag says the peer sent a window-scale option
// on its SYN (possibly with shift 0); the mask holds the shift, at most 14 (RFC 7323).
inline constexpr uint8_t wscale_flag = 0x80, wscale_mask = 0x0f;
inline constexpr uint8_t tcp_max_winshift = 14;
// pf's MAXACKWINDOW: one full unscaled window plus an arbitrary 1500-byte fudge. Bounds how
// far an ack may stray from what the other side sent, and the loose branch's slack.
inline constexpr int64_t tcp_max_ack_window = 0xffff + 1500;

// One direction of a TCP state: pf's struct pf_state_peer, host byte order.
struct TcpPeer {
    uint32_t seqlo = 0;          // highest sequence number this peer has sent (0 = not seen yet)
    uint32_t seqhi = 0;          // highest it may send: the other end's ack + window
    uint32_t seqdiff = 0;        // sequence modulator (modulate state / synproxy); 0 here
    uint16_t max_win = 0;        // largest window it advertised, in its own scaled units
    uint16_t mss = 0;            // pf keeps it for synproxy only; 0 here
    uint8_t state = tcps_closed; // TcpState
    uint8_t wscale = 0;          // wscale_flag | shift, or 0 when scaling is off
    uint8_t reserved[2] = {};    // keeps the record padding-free and comparable
};
static_assert(sizeof(TcpPeer) == 20);
static_assert(std::is_trivially_copyable_v<TcpPeer> && std::is_standard_layout_v<TcpPeer>);

// pf's timeout classes (PFTM_*): config/timeout_class.hpp.
using Timeout = config::Timeout;

enum class TcpVerdict : uint8_t {
    pass,
    // Outside the sequence windows (pf: PFRES_BADSTATE). Dropped silently.
    drop_bad_state,
    // A RST that pf refuses (its sequence number is neither exact nor, for RST|ACK with a
    // perfect ack, within the window behind seqlo) although it lies inside the window.
    // pf drops it silently; RFC 5961 3.2 answers such a RST with a challenge ACK, so that a
    // genuine peer can reset with the exact number. The caller may send one built with
    // tcp_challenge_ack(); the packet is dropped either way.
    drop_rst_not_exact,
    // A SYN (without ACK) on a state where both sides are established: the sender has
    // probably rebooted and reuses the ports. pf drops it and sends a challenge ACK on
    // behalf of the other peer (pf_send_challenge_ack), built with tcp_challenge_ack().
    drop_syn_challenge_ack,
    // A packet that fails the windows while both peers are in SYN_SENT, e.g. a SYN|ACK
    // acknowledging something never sent. pf answers a non-RST packet with a RST to its
    // sender (seq = the packet's ack, from the packet's destination) and forgets the
    // sender's half so that its next packet starts it again. Dropped.
    drop_handshake_mismatch,
    // A SYN on a state whose both peers are at or past FIN_WAIT_2 (closed, or reset): the
    // ports are reused. The caller removes the old state and evaluates the packet as the
    // first of a new connection (pf purges the state and runs the rules).
    reuse,
    // The responder's first SYN|ACK does not acknowledge the initiator's SYN (ISN + 1):
    // a stale answer of an earlier incarnation. Dropped without touching either peer, so
    // that the right SYN|ACK that follows still opens the connection (beyond pf).
    drop_synack_bad_ack,
};

struct TcpTrackResult {
    TcpVerdict verdict = TcpVerdict::pass;
    // The state's timeout class after this packet. Meaningful when `refresh_expire`.
    Timeout timeout = Timeout::tcp_first;
    // pf restarts the state's expiry (expire = now, timeout = `timeout`) only for packets
    // that fit the windows; loose matches and drops leave it running.
    bool refresh_expire = false;
    // Passed by pf's loose branch (just outside the windows around establishment or after
    // a close). Worth a counter: it is also what a flood inside those bounds looks like.
    bool loose = false;
    // A peer's TCP state changed (worth an immediate pfsync update).
    bool transition = false;
    // Anything a pfsync peer holds for either side changed: a state transition, or a
    // window edge (seqlo, seqhi, max_win, wscale) moved.
    bool changed_for_peer = false;

    bool operator==(const TcpTrackResult &) const = default;
};

// Sequence-space comparisons (tcp_seq.h): by signed 32-bit difference, so they hold across
// the wrap from 2^32-1 to 0.
constexpr bool seq_lt(uint32_t a, uint32_t b) {
    return int32_t(a - b) < 0;
}
constexpr bool seq_leq(uint32_t a, uint32_t b) {
    return int32_t(a - b) <= 0;
}
constexpr bool seq_gt(uint32_t a, uint32_t b) {
    return int32_t(a - b) > 0;
}
constexpr bool seq_geq(uint32_t a, uint32_t b) {
    return int32_t(a - b) >= 0;
}

// Initialise both peers of a new state from its first packet (normally a SYN; pf also
// creates TCP states from other packets when a rule says `flags any`). `src` is the
// sender of `pkt`. Returns the state's first timeout class (tcp_first).
Timeout tcp_state_init(TcpPeer &src, TcpPeer &dst, const PacketDesc &pkt);

// pf's timeout class for a state whose peers are `a` and `b` (either order). Inline: every
// tracked segment asks it.
inline Timeout tcp_timeout_class(const TcpPeer &a, const TcpPeer &b) {
    // pf's order matters: a half-closed connection whose other side is still opening is
    // `opening`, a reset one (both TIME_WAIT) is `closed`.
    if (a.state >= tcps_fin_wait_2 && b.state >= tcps_fin_wait_2) return Timeout::tcp_closed;
    if (a.state >= tcps_closing && b.state >= tcps_closing) return Timeout::tcp_finwait;
    if (a.state < tcps_established || b.state < tcps_established) return Timeout::tcp_opening;
    if (a.state >= tcps_closing || b.state >= tcps_closing) return Timeout::tcp_closing;
    return Timeout::tcp_established;
}

// Track a packet of an existing state. `src` is the peer that sent it, `dst` the other.
// Peers may be modified even when the packet is dropped, as pf does (the first packet of a
// side records its sequence number before the window checks; drop_handshake_mismatch
// resets the sender); `changed_for_peer` reports it.
// The result is written into `res` field by field: returned by value, GCC 12 assembles
// this 6-byte struct from byte stores on the stack and reloads it as one word, a
// store-forwarding stall on every tracked packet. The worker calls this form.
// It reads nothing but `src`, `dst` and `pkt.tcp`, and must stay so: the filter gives a
// twin whose peers equal the in state's the in state's result (TrackMemo, filter.hpp).
// tcp_track_full() takes every case; tcp_track() first tries tcp_track_ack(), which
// takes the commonest one alone, and leaves the rest to it.
void tcp_track_full(TcpPeer &src, TcpPeer &dst, const PacketDesc &pkt, TcpTrackResult &res);

// What tcp_track_full() does with a segment that carries ACK and none of SYN, FIN and RST,
// from a side that has sent before (seqlo not 0) to one that has at least opened, when it
// fits the windows: every branch that such a segment cannot take left out, and what it
// changes compared field by field instead of both peers whole. Returns false, having
// changed nothing, for any other segment, and for one that does not fit (pf's loose
// branch and the drops are tcp_track_full()'s). Inline: the filter tracks every
// established segment through it.
inline bool tcp_track_ack(TcpPeer &src, TcpPeer &dst, const TcpInfo &th, TcpTrackResult &res) {
    constexpr uint8_t control = tcpf::syn | tcpf::fin | tcpf::rst | tcpf::ack;
    if ((th.flags & control) != tcpf::ack || src.seqlo == 0 || dst.state < tcps_syn_sent)
        return false;
    uint8_t sws = 0, dws = 0;
    if (src.wscale != 0 && dst.wscale != 0) {
        sws = src.wscale & wscale_mask;
        dws = dst.wscale & wscale_mask;
    }
    const uint32_t ack = th.ack - dst.seqdiff;
    uint32_t seq = th.seq, end = th.seq + th.payload_len;
    if (seq == end) seq = end = src.seqlo; // no data: only the ack matters
    const int64_t ackskew = int32_t(dst.seqlo - ack);
    const uint32_t dst_win = uint32_t(dst.max_win) << dws;
    if (!seq_geq(src.seqhi, end) || !seq_geq(seq, src.seqlo - dst_win) ||
        ackskew < -tcp_max_ack_window || ackskew > (tcp_max_ack_window << sws))
        return false;
    bool changed = false;
    if (src.max_win < th.window) {
        src.max_win = th.window;
        changed = true;
    }
    if (seq_gt(end, src.seqlo)) {
        src.seqlo = end;
        changed = true;
    }
    const uint32_t wspan = uint32_t(th.window) << sws;
    if (seq_geq(ack + wspan, dst.seqhi)) {
        const uint32_t seqhi = ack + (wspan != 0 ? wspan : 1);
        changed |= seqhi != dst.seqhi;
        dst.seqhi = seqhi;
    }
    bool transition = false;
    if (dst.state == tcps_syn_sent || dst.state == tcps_closing) {
        dst.state = dst.state == tcps_syn_sent ? tcps_established : tcps_fin_wait_2;
        transition = true;
    }
    res.verdict = TcpVerdict::pass;
    res.timeout = tcp_timeout_class(src, dst);
    res.refresh_expire = true;
    res.loose = false;
    res.transition = transition;
    res.changed_for_peer = changed || transition;
    return true;
}

inline void tcp_track(TcpPeer &src, TcpPeer &dst, const PacketDesc &pkt, TcpTrackResult &res) {
    if (!tcp_track_ack(src, dst, pkt.tcp, res)) tcp_track_full(src, dst, pkt, res);
}
inline TcpTrackResult tcp_track(TcpPeer &src, TcpPeer &dst, const PacketDesc &pkt) {
    TcpTrackResult res;
    tcp_track(src, dst, pkt, res);
    return res;
}

// Sequence and acknowledgement numbers of the challenge ACK (flags ACK, window 0) sent
// to the sender of a packet on behalf of the other peer: from the packet's destination
// address and port to its source. `src` sent the offending packet.
struct TcpChallengeAck {
    uint32_t seq, ack;
};
constexpr TcpChallengeAck tcp_challenge_ack(const TcpPeer &src, const TcpPeer &dst) {
    // pf sends dst->seqlo as is; adding the modulator is what the sender actually saw
    // (seqdiff is 0 unless the state came from a peer that modulates).
    return {dst.seqlo + dst.seqdiff, src.seqlo};
}

constexpr bool tcp_verdict_drops(TcpVerdict v) {
    return v != TcpVerdict::pass && v != TcpVerdict::reuse;
}
// Tracking drops are counted as one reason, as pf counts PFRES_BADSTATE, but for the stale
// SYN|ACK, which pf does not refuse.
constexpr DropReason tcp_drop_reason(TcpVerdict v) {
    return v == TcpVerdict::drop_synack_bad_ack ? DropReason::filter_synack_bad_ack
                                                : DropReason::filter_state_mismatch;
}

constexpr std::string_view name_of(TcpVerdict v) {
    switch (v) {
    case TcpVerdict::pass:
        return "pass";
    case TcpVerdict::drop_bad_state:
        return "drop_bad_state";
    case TcpVerdict::drop_rst_not_exact:
        return "drop_rst_not_exact";
    case TcpVerdict::drop_syn_challenge_ack:
        return "drop_syn_challenge_ack";
    case TcpVerdict::drop_handshake_mismatch:
        return "drop_handshake_mismatch";
    case TcpVerdict::reuse:
        return "reuse";
    case TcpVerdict::drop_synack_bad_ack:
        return "drop_synack_bad_ack";
    }
    return "?";
}

} // namespace syncwall::dp
