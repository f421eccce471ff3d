// Big-endian (network order) loads and stores at any byte offset: for code that reads or
// writes wire headers in place. Pure, no DPDK; memcpy keeps unaligned access defined and
// compiles to one load or store plus a byte swap on little-endian hosts.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace syncwall::dp {

inline constexpr bool host_is_little = std::endian::native == std::endian::little;

inline uint16_t load_be16(const uint8_t *p) {
    uint16_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (host_is_little) v = __builtin_bswap16(v);
    return v;
}

inline uint32_t load_be32(const uint8_t *p) {
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (host_is_little) v = __builtin_bswap32(v);
    return v;
}

inline uint64_t load_be64(const uint8_t *p) {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (host_is_little) v = __builtin_bswap64(v);
    return v;
}

inline void store_be16(uint8_t *p, uint16_t v) {
    if constexpr (host_is_little) v = __builtin_bswap16(v);
    std::memcpy(p, &v, sizeof v);
}

inline void store_be32(uint8_t *p, uint32_t v) {
    if constexpr (host_is_little) v = __builtin_bswap32(v);
    std::memcpy(p, &v, sizeof v);
}

inline void store_be64(uint8_t *p, uint64_t v) {
    if constexpr (host_is_little) v = __builtin_bswap64(v);
    std::memcpy(p, &v, sizeof v);
}

} // namespace syncwall::dp
