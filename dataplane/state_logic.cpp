#include "dataplane/state_logic.hpp"

#include "dataplane/byte_order.hpp"
#include "dataplane/forward.hpp"

#include <cstring>

namespace syncwall::dp {

namespace {

StateDirection reverse(StateDirection dir) {
    return dir == StateDirection::in ? StateDirection::out : StateDirection::in;
}

bool is_icmp_query(uint8_t proto, uint8_t type) {
    return (proto == proto_icmp && (type == 0 || type == 8 || type == 13 || type == 14)) ||
           (proto == proto_icmpv6 && (type == 128 || type == 129));
}

} // namespace

std::optional<QuotedConnection> quoted_connection(std::span<const uint8_t> frame,
                                                  const PacketDesc &d, StateDirection dir) {
    if (!d.has_l4 || !d.icmp.is_error || d.icmp.quoted_len == 0) return std::nullopt;
    if (std::size_t(d.icmp.quoted_offset) + d.icmp.quoted_len > frame.size()) return std::nullopt;
    PacketDesc q;
    if (parse_quoted_packet(frame.subspan(d.icmp.quoted_offset, d.icmp.quoted_len), q))
        return std::nullopt;
    if (q.family != d.family || !q.has_l4) return std::nullopt;
    // An error about an error is never related to a connection.
    if ((q.proto == proto_icmp || q.proto == proto_icmpv6) && !is_icmp_query(q.proto, q.icmp.type))
        return std::nullopt;
    QuotedConnection c;
    c.dir = reverse(dir);
    fill_state_key(c.key, q.family, q.proto, q.src, q.dst, q.sport, q.dport, c.dir);
    c.is_tcp = q.proto == proto_tcp;
    c.tcp_seq = q.tcp.seq;
    c.to_quoted_source = d.dst == q.src;
    return c;
}

void state_init_peers(State &s, const PacketDesc &d) {
    s.src = TcpPeer{};
    s.dst = TcpPeer{};
    switch (d.proto) {
    case proto_tcp:
        s.timeout = tcp_state_init(s.src, s.dst, d);
        return;
    case proto_udp:
        s.src.state = pseudo_single;
        s.timeout = Timeout::udp_first;
        return;
    case proto_icmp:
    case proto_icmpv6:
        s.timeout = Timeout::icmp_first;
        return;
    default:
        s.src.state = pseudo_single;
        s.timeout = Timeout::other_first;
        return;
    }
}

Timeout pseudo_state_update(TcpPeer &src, TcpPeer &dst, uint8_t proto, bool *changed) {
    const uint8_t before_src = src.state, before_dst = dst.state;
    if (proto == proto_icmp || proto == proto_icmpv6) {
        *changed = false;
        return Timeout::icmp_error; // pf: PFTM_ICMP_ERROR_REPLY once a reply has been seen
    }
    if (src.state < pseudo_single) src.state = pseudo_single;
    if (dst.state == pseudo_single) dst.state = pseudo_multiple;
    *changed = src.state != before_src || dst.state != before_dst;
    const bool both = src.state == pseudo_multiple && dst.state == pseudo_multiple;
    if (proto == proto_udp) return both ? Timeout::udp_multiple : Timeout::udp_single;
    return both ? Timeout::other_multiple : Timeout::other_single;
}

bool quoted_tcp_seq_fits(const TcpPeer &sender, const TcpPeer &receiver, uint32_t seq) {
    uint8_t dws = 0;
    if ((sender.wscale & wscale_flag) && (receiver.wscale & wscale_flag))
        dws = receiver.wscale & wscale_mask;
    const uint32_t window = uint32_t(receiver.max_win) << dws;
    return seq_geq(sender.seqhi, seq) && seq_geq(seq, sender.seqlo - window);
}

TimeoutTable TimeoutTable::from_config(const config::TimeoutConfig &t, uint32_t state_limit) {
    TimeoutTable tt;
    auto set = [&](Timeout c, uint32_t v) { tt.seconds[std::size_t(c)] = v; };
    set(Timeout::tcp_first, t.tcp_first);
    set(Timeout::tcp_opening, t.tcp_opening);
    set(Timeout::tcp_established, t.tcp_established);
    set(Timeout::tcp_closing, t.tcp_closing);
    set(Timeout::tcp_finwait, t.tcp_finwait);
    set(Timeout::tcp_closed, t.tcp_closed);
    set(Timeout::udp_first, t.udp_first);
    set(Timeout::udp_single, t.udp_single);
    set(Timeout::udp_multiple, t.udp_multiple);
    set(Timeout::icmp_first, t.icmp_first);
    set(Timeout::icmp_error, t.icmp_error);
    set(Timeout::other_first, t.other_first);
    set(Timeout::other_single, t.other_single);
    set(Timeout::other_multiple, t.other_multiple);
    set(Timeout::frag, t.frag);
    set(Timeout::interval, t.interval);
    if (t.adaptive_end != 0) {
        tt.adaptive_start = t.adaptive_start;
        tt.adaptive_end = t.adaptive_end;
    } else {
        // pf's defaults: scaling starts at 60 % of the state limit, reaches 0 at 120 %.
        tt.adaptive_start = uint32_t(uint64_t(state_limit) * 6 / 10);
        tt.adaptive_end = uint32_t(uint64_t(state_limit) * 12 / 10);
    }
    return tt;
}

uint32_t TimeoutTable::lifetime(Timeout c, uint32_t states, uint32_t override_seconds) const {
    uint64_t t = override_seconds != 0 ? override_seconds : seconds[std::size_t(c)];
    if (adaptive_end > adaptive_start && states > adaptive_start) {
        if (states >= adaptive_end) return 0;
        t = t * (adaptive_end - states) / (adaptive_end - adaptive_start);
    }
    return uint32_t(t);
}

std::size_t tcp_rewrite_as_ack(std::span<uint8_t> frame, const PacketDesc &d, uint32_t seq,
                               uint32_t ack) {
    if (d.proto != proto_tcp || !d.has_l4 || d.has_ip_options) return 0;
    const std::size_t ip_len = d.family == 4 ? 20 : 40;
    if (d.l4_offset != d.l3_offset + ip_len || frame.size() < d.l4_offset + 20u) return 0;
    uint8_t *ip = frame.data() + d.l3_offset;
    uint8_t *tcp = frame.data() + d.l4_offset;
    PacketDesc r; // the reply's addresses, for the pseudo-header
    r.family = d.family;
    r.proto = proto_tcp;
    r.src = d.dst;
    r.dst = d.src;
    const std::size_t alen = d.family == 4 ? 4 : 16;
    const std::size_t src_off = d.family == 4 ? 12 : 8;
    std::memcpy(ip + src_off, r.src.data(), alen);
    std::memcpy(ip + src_off + alen, r.dst.data(), alen);
    if (d.family == 4) {
        store_be16(ip + 2, 40);
        store_be16(ip + 6, 0x4000); // DF, no fragment offset
        ip[8] = 64;
        store_be16(ip + 10, 0);
        store_be16(ip + 10, internet_checksum({ip, 20}));
    } else {
        store_be16(ip + 4, 20);
        ip[7] = 64;
    }
    store_be16(tcp, d.dport);
    store_be16(tcp + 2, d.sport);
    store_be32(tcp + 4, seq);
    store_be32(tcp + 8, ack);
    tcp[12] = 5 << 4;
    tcp[13] = tcpf::ack;
    store_be16(tcp + 14, 0);
    store_be16(tcp + 16, 0);
    store_be16(tcp + 18, 0);
    store_be16(tcp + 16, internet_checksum({tcp, 20}, pseudo_header_sum(r, 20)));
    return d.l4_offset + 20u;
}

} // namespace syncwall::dp
