// The benchmark's traffic: a flow index -> a 5-tuple, and Ethernet/IPv4/TCP or UDP frames
// for it, written from a template into a buffer (an mbuf's data) by the generator lcore.
//
// Pure (no DPDK), so that the frames the generator writes, the keys the preloader inserts
// and the flow the sink reads back all come from one place.
//
// Address plan (RFC 2544's benchmarking range, 198.18.0.0/15, on both sides):
//   client of flow i: 198.18.(i>>8 & 0xff).(i & 0xff), source port 1024 + (i >> 16)
//   server of flow i: 198.19.0.(1 + i % 250), port 443 (TCP) or 53 (UDP)
// A flow sends the same in-window segment every time (seq/ack fixed), so pf's window check
// passes forever without the generator keeping per-flow sequence numbers; the state is
// still looked up, locked, checked and counted for every packet.
//
// Translated traffic (syncwall-bench --nat) loses the client's address and port on the wan
// side, so a FrameWriter made with `tag_flows` also writes the flow's index into the first
// four payload bytes (big-endian, under the transport checksum, which the firewall's
// incremental rewrite keeps right): tag_of() reads it back in either direction.
#pragma once

#include "dataplane/byte_order.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/state.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace syncwall::bench {

using Mac = std::array<uint8_t, 6>;

// What a frame is in the connection's life: the client's syn and ack, the server's syn_ack
// and its own in-window segment after the handshake (server_ack); a UDP datagram from the
// client (udp) or from the server (udp_reply).
enum class Segment : uint8_t { syn, syn_ack, ack, server_ack, udp, udp_reply };

inline bool from_client(Segment seg) {
    return seg != Segment::syn_ack && seg != Segment::server_ack && seg != Segment::udp_reply;
}

inline constexpr uint32_t client_isn = 1000, server_isn = 500000;
inline constexpr uint16_t window = 65535;
inline constexpr uint16_t eth_len = 14, ip_len = 20, tcp_len = 20, udp_len = 8;
inline constexpr uint32_t max_flows = 1u << 28; // 24 bits of address, 4 of port

struct FlowTuple {
    std::array<uint8_t, 4> client{}, server{};
    uint16_t client_port = 0, server_port = 0;
};

inline FlowTuple flow_tuple(uint32_t i, bool udp) {
    FlowTuple t;
    t.client = {198, 18, uint8_t(i >> 8), uint8_t(i)};
    t.server = {198, 19, 0, uint8_t(1 + i % 250)};
    t.client_port = uint16_t(1024 + (i >> 16));
    t.server_port = udp ? 53 : 443;
    return t;
}

// The flow a frame belongs to, from its client address and port (either direction).
inline uint32_t flow_of(const uint8_t *frame, bool from_client) {
    const uint8_t *ip = frame + eth_len;
    const uint8_t *client = ip + (from_client ? 12 : 16);
    const uint8_t *l4 = ip + ip_len;
    const uint16_t cport =
        from_client ? uint16_t(l4[0] << 8 | l4[1]) : uint16_t(l4[2] << 8 | l4[3]);
    return uint32_t(client[2]) << 8 | client[3] | uint32_t(cport - 1024) << 16;
}

inline uint8_t tcp_flags_of(const uint8_t *frame) {
    return frame[eth_len + ip_len + 13];
}

// The unfolded one's-complement sum of an IPv4 TCP or UDP datagram's pseudo-header (the
// addresses at ip[12..20), the protocol at ip[9]), header and payload: `l4_len` bytes at
// `l4`, the checksum field included as it stands.
inline uint32_t transport_sum(const uint8_t *ip, const uint8_t *l4, unsigned l4_len) {
    uint32_t sum = l4_len + ip[9];
    for (unsigned w = 12; w < 20; w += 2)
        sum += uint32_t(ip[w]) << 8 | ip[w + 1];
    for (unsigned w = 0; w + 1 < l4_len; w += 2)
        sum += uint32_t(l4[w]) << 8 | l4[w + 1];
    if (l4_len & 1) sum += uint32_t(l4[l4_len - 1]) << 8;
    return sum;
}

// Frames of one size for every flow: the headers are built once, then each packet copies
// them and patches addresses, ports and the IPv4 checksum.
class FrameWriter {
  public:
    // `frame_len`: Ethernet frame without FCS (>= 60: shorter ones are padded as on a wire).
    // `tag_flows`: write each frame's flow index into its payload (tag_of()); a frame of 60
    // bytes or more always has room for it (6 bytes of TCP payload, 18 of UDP).
    FrameWriter(uint16_t frame_len, bool udp, bool tag_flows = false)
        : len_(frame_len < 60 ? 60 : frame_len), udp_(udp), tag_(tag_flows) {
        const uint16_t l4 = udp ? udp_len : tcp_len;
        if (len_ < eth_len + ip_len + l4) len_ = uint16_t(eth_len + ip_len + l4);
        ip_total_ = uint16_t(len_ - eth_len);
        uint8_t *h = hdr_.data();
        h[12] = 0x08; // IPv4
        uint8_t *ip = h + eth_len;
        ip[0] = 0x45;
        ip[2] = uint8_t(ip_total_ >> 8);
        ip[3] = uint8_t(ip_total_);
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = udp ? 17 : 6;
        if (udp) {
            uint8_t *u = ip + ip_len;
            const uint16_t ulen = uint16_t(ip_total_ - ip_len);
            u[4] = uint8_t(ulen >> 8);
            u[5] = uint8_t(ulen);
        } else {
            uint8_t *t = ip + ip_len;
            t[12] = 5 << 4;
            t[14] = uint8_t(window >> 8);
            t[15] = uint8_t(window);
        }
    }

    uint16_t frame_len() const { return len_; }
    uint16_t header_len() const { return uint16_t(eth_len + ip_len + (udp_ ? udp_len : tcp_len)); }

    // Write the headers of flow `i`'s segment `seg` travelling from `src_mac` to `dst_mac`
    // into `out` (frame_len() bytes long; the payload bytes are left as they are, but for
    // the tag).
    void write(uint8_t *out, uint32_t i, Segment seg, const Mac &dst_mac,
               const Mac &src_mac) const {
        write(out, flow_tuple(i, udp_), i, seg, dst_mac, src_mac);
    }
    // The same for the tuple `t` of flow `i` as one side sees it: a server's segment to a
    // translated client has the NAT address and port as `t.client` and `t.client_port`.
    void write(uint8_t *out, const FlowTuple &t, uint32_t i, Segment seg, const Mac &dst_mac,
               const Mac &src_mac) const {
        std::memcpy(out, hdr_.data(), header_len());
        std::memcpy(out, dst_mac.data(), 6);
        std::memcpy(out + 6, src_mac.data(), 6);
        const bool from_client = bench::from_client(seg);
        uint8_t *ip = out + eth_len;
        std::memcpy(ip + 12, from_client ? t.client.data() : t.server.data(), 4);
        std::memcpy(ip + 16, from_client ? t.server.data() : t.client.data(), 4);
        const uint16_t sport = from_client ? t.client_port : t.server_port;
        const uint16_t dport = from_client ? t.server_port : t.client_port;
        uint8_t *l4 = ip + ip_len;
        l4[0] = uint8_t(sport >> 8);
        l4[1] = uint8_t(sport);
        l4[2] = uint8_t(dport >> 8);
        l4[3] = uint8_t(dport);
        if (!udp_) {
            uint32_t seq = 0, ack = 0;
            uint8_t flags = 0;
            switch (seg) {
            case Segment::syn:
                seq = client_isn;
                flags = 0x02;
                break;
            case Segment::syn_ack:
                seq = server_isn;
                ack = client_isn + 1;
                flags = 0x12;
                break;
            case Segment::server_ack:
                seq = server_isn + 1;
                ack = client_isn + 1;
                flags = 0x10;
                break;
            default:
                seq = client_isn + 1;
                ack = server_isn + 1;
                flags = 0x10;
                break;
            }
            dp::store_be32(l4 + 4, seq);
            dp::store_be32(l4 + 8, ack);
            l4[13] = flags;
        }
        if (tag_) dp::store_be32(out + header_len(), i);
        // IPv4 header checksum over the five 32-bit words; only the addresses vary.
        uint32_t sum = 0;
        for (int w = 0; w < 20; w += 2)
            if (w != 10) sum += uint32_t(ip[w]) << 8 | ip[w + 1];
        store_checksum(ip + 10, sum);
        // The transport checksum over the pseudo-header, header and payload: the firewall
        // verifies it before a packet may make or move a state.
        const uint16_t l4_len = uint16_t(ip_total_ - ip_len);
        uint8_t *csum = l4 + (udp_ ? 6 : 16);
        csum[0] = csum[1] = 0;
        store_checksum(csum, transport_sum(ip, l4, l4_len));
    }

    // The flow index a tagging writer put into a frame's payload (any direction, translated
    // or not).
    uint32_t tag_of(const uint8_t *frame) const { return dp::load_be32(frame + header_len()); }

  private:
    static void store_checksum(uint8_t *at, uint32_t sum) {
        while (sum >> 16)
            sum = (sum & 0xffff) + (sum >> 16);
        const uint16_t c = uint16_t(~sum);
        at[0] = uint8_t(c >> 8);
        at[1] = uint8_t(c);
    }

    std::array<uint8_t, 64> hdr_{};
    uint16_t len_, ip_total_;
    bool udp_, tag_;
};

// Whether an IPv4 frame's header checksum and TCP or UDP checksum hold (a translated
// frame's, which the firewall patched incrementally); `len` bytes of frame.
inline bool checksums_ok(const uint8_t *frame, std::size_t len) {
    auto fold = [](uint32_t sum) {
        while (sum >> 16)
            sum = (sum & 0xffff) + (sum >> 16);
        return sum;
    };
    if (len < eth_len + ip_len) return false;
    const uint8_t *ip = frame + eth_len;
    const unsigned ihl = (ip[0] & 15u) * 4;
    const unsigned total = unsigned(ip[2]) << 8 | ip[3];
    if (ihl < ip_len || total < ihl || len < eth_len + total) return false;
    uint32_t sum = 0;
    for (unsigned w = 0; w < ihl; w += 2)
        sum += uint32_t(ip[w]) << 8 | ip[w + 1];
    if (fold(sum) != 0xffff) return false;
    const uint8_t *l4 = ip + ihl;
    const unsigned l4_len = total - ihl;
    if (ip[9] != 6 && ip[9] != 17) return true;
    if (l4_len < (ip[9] == 6 ? tcp_len : udp_len)) return false;
    if (ip[9] == 17 && l4[6] == 0 && l4[7] == 0) return true; // sent without a checksum
    return fold(transport_sum(ip, l4, l4_len)) == 0xffff;
}

// The state keys pf makes for flow i forwarded lan -> wan: inbound on lan (addr[0] = the
// client, the packet's source) and outbound on wan (addr[0] = the server, its destination).
inline dp::StateKey flow_key(uint32_t i, bool udp, dp::StateDirection dir) {
    const FlowTuple t = flow_tuple(i, udp);
    dp::StateKey k;
    k.af = 4;
    k.proto = udp ? 17 : 6;
    const bool in = dir == dp::StateDirection::in;
    std::memcpy(k.addr[in ? 0 : 1].data(), t.client.data(), 4);
    std::memcpy(k.addr[in ? 1 : 0].data(), t.server.data(), 4);
    k.port[in ? 0 : 1] = t.client_port;
    k.port[in ? 1 : 0] = t.server_port;
    return k;
}

} // namespace syncwall::bench
