// libFuzzer harness: TCP window tracking. Two peers and a run of segments read from the
// input are tracked by tcp_track() (whose shortcut takes a plain ACK inside the windows)
// and by tcp_track_full() on copies, segment after segment; the two must leave the same
// peers and the same result, and the shortcut must change nothing when it declines.
#include "dataplane/tcp_tracker.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

using namespace syncwall;

namespace {

void read_peer(const uint8_t *p, dp::TcpPeer &peer) {
    std::memcpy(&peer, p, sizeof peer);
    peer.reserved[0] = peer.reserved[1] = 0; // as the state table keeps them
}

void read_segment(const uint8_t *p, dp::PacketDesc &d) {
    d.proto = dp::proto_tcp;
    d.has_l4 = true;
    std::memcpy(&d.tcp.seq, p, 4);
    std::memcpy(&d.tcp.ack, p + 4, 4);
    std::memcpy(&d.tcp.window, p + 8, 2);
    d.tcp.flags = p[10];
    std::memcpy(&d.tcp.payload_len, p + 11, 2);
    d.tcp.wscale = int8_t(p[13]);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
    constexpr std::size_t peer_bytes = sizeof(dp::TcpPeer), segment_bytes = 14;
    if (size < 2 * peer_bytes + segment_bytes) return 0;
    dp::TcpPeer src, dst;
    read_peer(data, src);
    read_peer(data + peer_bytes, dst);
    dp::TcpPeer s1 = src, d1 = dst, s2 = src, d2 = dst;
    const uint8_t *seg = data + 2 * peer_bytes;
    for (; seg + segment_bytes <= data + size; seg += segment_bytes) {
        dp::PacketDesc d;
        read_segment(seg, d);
        dp::TcpPeer s0 = s1, d0 = d1;
        dp::TcpTrackResult r0, r1, r2;
        if (!dp::tcp_track_ack(s0, d0, d.tcp, r0) &&
            (std::memcmp(&s0, &s1, peer_bytes) != 0 || std::memcmp(&d0, &d1, peer_bytes) != 0))
            __builtin_trap();
        dp::tcp_track(s1, d1, d, r1);
        dp::tcp_track_full(s2, d2, d, r2);
        if (std::memcmp(&s1, &s2, peer_bytes) != 0 || std::memcmp(&d1, &d2, peer_bytes) != 0 ||
            r1 != r2)
            __builtin_trap();
        // The next segment comes from the other side half the time, as a connection's do.
        if (d.tcp.flags & 0x40) { // ECE: an arbitrary bit of the input picks
            std::swap(s1, d1);
            std::swap(s2, d2);
        }
    }
    return 0;
}
