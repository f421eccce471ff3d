// Martian addresses: sources and destinations a router never forwards.
//
// The BSD stack refuses them around pf (127/8 on input, before pf; the rest in
// ip_forward()/ip6_forward()), so a pf rule that passes "any" never routes them. syncwall
// has no stack around its filter, so a worker asks this check before a unicast IP packet
// reaches the filter and the routes: a martian is dropped, counted under its reason.
//
// Destinations: 0/8 and ::, 127/8 and ::1, 169.254/16 and fe80::/10, 224/4 and ff00::/8
// (a multicast group in a frame sent to our unicast MAC), 240/4, 255.255.255.255 and the
// directed broadcast of each connected IPv4 network. Our own addresses (and CARP's) are
// never martian destinations: one configured in 169.254/16 keeps working. Sources: 0/8,
// 127/8 and ::1 (multicast and limited-broadcast sources are the parser's to refuse).
//
// Pure code (no DPDK): built once from the interfaces, read by every worker.
#pragma once

#include "config/config.hpp"
#include "dataplane/drop_reason.hpp"
#include "dataplane/packet.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace syncwall::dp {

class MartianCheck {
  public:
    MartianCheck() = default;
    // `connected`: every interface address with its prefix (their networks' directed
    // broadcasts are martian; /31 and /32 have none). `own`: every address that is ours
    // (interface and CARP addresses).
    MartianCheck(const std::vector<config::IpPrefix> &connected,
                 const std::vector<config::IpAddress> &own);

    // Why packet `d` (IPv4 or IPv6) must not be filtered and routed, or nullopt.
    std::optional<DropReason> check(const PacketDesc &d) const {
        if (d.family == 4) {
            // Nearly every packet: no address whose first byte starts a martian range and no
            // destination whose last byte is a directed broadcast's, told by two table
            // reads; check4() gives the same answer for these, and decides the rest.
            if ((first_byte_[d.src[0]] & src_suspect) == 0 &&
                (first_byte_[d.dst[0]] & dst_suspect) == 0 && !broadcast_last_byte_[d.dst[3]])
                return std::nullopt;
            return check4(d);
        }
        return check6(d);
    }

  private:
    std::optional<DropReason> check4(const PacketDesc &d) const;
    std::optional<DropReason> check6(const PacketDesc &d) const;
    bool is_own(const std::array<uint8_t, 16> &addr, uint8_t family) const;

    std::vector<uint32_t> directed_broadcasts_; // host order
    // By an IPv4 address's first byte: whether check4() may refuse it as a source or as a
    // destination; by a destination's last byte, whether it may be a directed broadcast.
    static constexpr uint8_t src_suspect = 1, dst_suspect = 2;
    static constexpr std::array<uint8_t, 256> first_byte_ = [] {
        std::array<uint8_t, 256> t{};
        for (unsigned b : {0u, 127u})
            t[b] = src_suspect | dst_suspect;
        t[169] = dst_suspect; // 169.254/16
        for (unsigned b = 224; b < 256; b++)
            t[b] = dst_suspect; // multicast, reserved, limited broadcast
        return t;
    }();
    std::array<bool, 256> broadcast_last_byte_{};
    std::vector<config::IpAddress> own_;
};

} // namespace syncwall::dp
