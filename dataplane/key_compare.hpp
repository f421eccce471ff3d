// Fixed-size key comparison: for rte_hash tables (rte_hash_set_cmp_func), and for the state
// table's key index, which checks a candidate slot's key with it.
//
// rte_hash compares keys of 16, 32, 48, 64, ... bytes with vector code and every other
// length with memcmp(), a call through the PLT that loops over the bytes and orders them.
// A table only needs equal / not equal, so for a key of a known size a few word loads,
// XORs and ORs do, with no branch per word: the state table's 40-byte keys and the
// neighbour table's 20-byte keys use this. Pure C++ (no DPDK): the signature is
// rte_hash_cmp_eq_t's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace syncwall::dp {

// 0 when the first N bytes of a and b are equal, non-zero otherwise (memcmp's contract as
// rte_hash uses it, without the ordering). `len` is the table's key length, always N.
template <std::size_t N> int key_differs(const void *a, const void *b, std::size_t /*len*/) {
    static_assert(N % 4 == 0 && N >= 8, "keys are made of 4-byte words");
    const auto *pa = static_cast<const unsigned char *>(a);
    const auto *pb = static_cast<const unsigned char *>(b);
    uint64_t diff = 0;
    std::size_t i = 0;
    for (; i + 8 <= N; i += 8) {
        uint64_t x, y;
        std::memcpy(&x, pa + i, 8); // unaligned-safe; compiles to one load
        std::memcpy(&y, pb + i, 8);
        diff |= x ^ y;
    }
    if constexpr (N % 8 != 0) {
        uint32_t x, y;
        std::memcpy(&x, pa + i, 4);
        std::memcpy(&y, pb + i, 4);
        diff |= x ^ y;
    }
    return diff != 0;
}

} // namespace syncwall::dp
