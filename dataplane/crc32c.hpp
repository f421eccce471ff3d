// CRC-32C of a fixed-size run of bytes at any alignment, for hashing keys.
//
// rte_hash_crc() reads its input through uint64_t and uint32_t pointers, which is undefined
// for keys that are not 8-byte aligned (a 20-byte neighbour key in an array, the second
// half of a state key, a StateKey on the stack: UBSan reports each). crc32c<N>() loads each
// word with memcpy (one unaligned load on x86) and feeds rte_hash_crc_8byte and
// rte_hash_crc_4byte: the same sum as rte_hash_crc(p, N, init), with the same instructions.
#pragma once

#include <rte_hash_crc.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace syncwall::dp {

template <std::size_t N>
[[gnu::always_inline]] inline uint32_t crc32c(const void *p, uint32_t init) {
    static_assert(N % 4 == 0, "whole 4-byte words");
    const auto *b = static_cast<const uint8_t *>(p);
    uint32_t crc = init;
    std::size_t i = 0;
    for (; i + 8 <= N; i += 8) {
        uint64_t w;
        std::memcpy(&w, b + i, 8);
        crc = rte_hash_crc_8byte(w, crc);
    }
    if constexpr (N % 8 != 0) {
        uint32_t w;
        std::memcpy(&w, b + i, 4);
        crc = rte_hash_crc_4byte(w, crc);
    }
    return crc;
}

} // namespace syncwall::dp
