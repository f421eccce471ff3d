// The bytes of a single-segment mbuf's frame as a span: what the parsers and writers take.
#pragma once

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

} // namespace syncwall::dp
