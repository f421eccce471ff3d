// The word-wise key compare that the state and neighbour tables give rte_hash.
#include "dataplane/key_compare.hpp"
#include "dataplane/neighbours.hpp"
#include "dataplane/state.hpp"

#include <catch2/catch.hpp>

#include <cstring>

using namespace syncwall::dp;

namespace {

template <typename Key> void check_every_byte(const Key &base) {
    constexpr std::size_t n = sizeof(Key);
    CHECK(key_differs<n>(&base, &base, n) == 0);
    Key same;
    std::memcpy(&same, &base, n);
    CHECK(key_differs<n>(&base, &same, n) == 0);
    for (std::size_t i = 0; i < n; i++) {
        for (uint8_t bit = 1; bit != 0; bit = uint8_t(bit << 1)) {
            unsigned char bytes[n];
            std::memcpy(bytes, &base, n);
            bytes[i] ^= bit;
            INFO("byte " << i << " bit " << unsigned(bit));
            CHECK(key_differs<n>(&base, bytes, n) != 0);
            CHECK(key_differs<n>(bytes, &base, n) != 0);
        }
    }
}

} // namespace

TEST_CASE("a state key differing in any one bit compares unequal, an identical one equal") {
    StateKey k;
    k.addr[0] = {198, 18, 0, 1};
    k.addr[1] = {198, 19, 0, 2};
    k.port[0] = 1024;
    k.port[1] = 443;
    k.af = 4;
    k.proto = 6;
    check_every_byte(k);
}

TEST_CASE("a neighbour key differing in any one bit compares unequal, an identical one equal") {
    NeighbourKey k;
    k.port = 1;
    k.family = 6;
    k.addr = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    check_every_byte(k);
}

TEST_CASE("keys are compared whatever their alignment in memory") {
    // rte_hash's key store puts a key 8 bytes into a 16-byte aligned entry; a caller's key
    // may sit anywhere.
    alignas(16) unsigned char a[64] = {}, b[64] = {};
    for (int i = 0; i < 40; i++)
        a[3 + i] = b[9 + i] = uint8_t(i * 7 + 1);
    CHECK(key_differs<40>(a + 3, b + 9, 40) == 0);
    b[9 + 39] ^= 0x80;
    CHECK(key_differs<40>(a + 3, b + 9, 40) != 0);
}
