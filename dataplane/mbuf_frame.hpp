// The bytes of a single-segment mbuf's frame as a span: what the parsers and writers take;
// and what the receiving device said of the frame's IPv4 header checksum.
#pragma once

#include "dataplane/packet.hpp"

#include <rte_mbuf.h>

#include <cstdint>
#include <span>

namespace syncwall::dp {

inline std::span<uint8_t> frame_of(rte_mbuf *m) {
    return {rte_pktmbuf_mtod(m, uint8_t *), m->data_len};
}
inline std::span<const uint8_t> frame_of(const rte_mbuf *m) {
    return {rte_pktmbuf_mtod(m, const uint8_t *), m->data_len};
}

// The device's verdict on a received frame's IPv4 header checksum, where the port verifies
// it (Port::rx_checksum_offloads). RX_IP_CKSUM_NONE (verified, but the field is stale) is
// summed again: the header leaves with the field it came with.
inline DeviceChecksum device_ipv4_checksum(const rte_mbuf *m) {
    switch (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) {
    case RTE_MBUF_F_RX_IP_CKSUM_GOOD:
        return DeviceChecksum::good;
    case RTE_MBUF_F_RX_IP_CKSUM_BAD:
        return DeviceChecksum::bad;
    default:
        return DeviceChecksum::unknown;
    }
}

} // namespace syncwall::dp
