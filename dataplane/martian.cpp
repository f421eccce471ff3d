#include "dataplane/martian.hpp"

#include "dataplane/byte_order.hpp"

#include <algorithm>

namespace syncwall::dp {

MartianCheck::MartianCheck(const std::vector<config::IpPrefix> &connected,
                           const std::vector<config::IpAddress> &own)
    : own_(own) {
    for (const auto &p : connected) {
        if (!p.addr.is_v4() || p.length > 30) continue;
        const uint32_t host_bits = p.length == 0 ? ~0u : (1u << (32 - p.length)) - 1;
        directed_broadcasts_.push_back(p.addr.v4_host_order() | host_bits);
        broadcast_last_byte_[directed_broadcasts_.back() & 0xff] = true;
    }
}

bool MartianCheck::is_own(const std::array<uint8_t, 16> &addr, uint8_t family) const {
    return std::any_of(own_.begin(), own_.end(), [&](const config::IpAddress &a) {
        return a.family == family && a.bytes == addr;
    });
}

// check() asks this only for addresses first_byte_ and broadcast_last_byte_ (martian.hpp)
// mark: a range refused here needs its first byte (or, for a broadcast, its last) there too.
std::optional<DropReason> MartianCheck::check4(const PacketDesc &d) const {
    const uint8_t s0 = d.src[0];
    if (s0 == 0) [[unlikely]]
        return DropReason::martian_src_this_network;
    if (s0 == 127) [[unlikely]]
        return DropReason::martian_src_loopback;

    const uint32_t dst = load_be32(d.dst.data());
    std::optional<DropReason> why;
    const uint8_t d0 = uint8_t(dst >> 24);
    if (d0 == 0)
        why = DropReason::martian_dst_this_network;
    else if (d0 == 127)
        why = DropReason::martian_dst_loopback;
    else if ((dst >> 16) == 0xa9fe) // 169.254/16
        why = DropReason::martian_dst_link_local;
    else if ((d0 & 0xf0) == 0xe0)
        why = DropReason::martian_dst_multicast;
    else if (dst == 0xffffffffu)
        why = DropReason::martian_dst_broadcast;
    else if ((d0 & 0xf0) == 0xf0)
        why = DropReason::martian_dst_reserved;
    else if (std::find(directed_broadcasts_.begin(), directed_broadcasts_.end(), dst) !=
             directed_broadcasts_.end()) [[unlikely]]
        why = DropReason::martian_dst_broadcast;
    if (why && is_own(d.dst, 4)) return std::nullopt;
    return why;
}

std::optional<DropReason> MartianCheck::check6(const PacketDesc &d) const {
    static constexpr std::array<uint8_t, 16> unspecified{};
    static constexpr std::array<uint8_t, 16> loopback{0, 0, 0, 0, 0, 0, 0, 0,
                                                      0, 0, 0, 0, 0, 0, 0, 1};
    if (d.src == loopback) [[unlikely]]
        return DropReason::martian_src_loopback;

    std::optional<DropReason> why;
    if (d.dst[0] == 0xff)
        why = DropReason::martian_dst_multicast;
    else if (d.dst[0] == 0xfe && (d.dst[1] & 0xc0) == 0x80)
        why = DropReason::martian_dst_link_local;
    else if (d.dst[0] == 0 && d.dst == unspecified)
        why = DropReason::martian_dst_this_network;
    else if (d.dst[0] == 0 && d.dst == loopback)
        why = DropReason::martian_dst_loopback;
    if (why && is_own(d.dst, 6)) return std::nullopt;
    return why;
}

} // namespace syncwall::dp
