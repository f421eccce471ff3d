#include "dataplane/neighbours.hpp"

#include "dataplane/crc32c.hpp"
#include "dataplane/key_compare.hpp"

#include <rte_errno.h>
#include <rte_hash.h>

#include <stdexcept>

namespace syncwall::dp {

namespace {

// rte_hash's hash function: CRC32C of a key, as rte_hash_crc computes it, at the 4-byte
// alignment of a NeighbourKey (20 bytes; in an array every other one starts off an 8-byte
// boundary).
uint32_t neighbour_hash(const void *key, uint32_t /*len*/, uint32_t init) {
    return crc32c<sizeof(NeighbourKey)>(key, init);
}

} // namespace

NeighbourTable::NeighbourTable(const std::string &name, uint32_t capacity, int socket_id)
    : capacity_(capacity), slots_(new std::atomic<uint64_t>[capacity]), keys_(capacity) {
    rte_hash_parameters p{};
    p.name = name.c_str();
    p.entries = capacity < 8 ? 8 : capacity;
    p.key_len = sizeof(NeighbourKey);
    // Every forwarded packet looks its next hop up: CRC32C (one instruction per 4 bytes with
    // SSE4.2, as the state table uses) costs a fraction of jhash on these 20-byte keys.
    p.hash_func = neighbour_hash;
    p.hash_func_init_val = 0;
    p.socket_id = socket_id;
    p.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
    hash_ = rte_hash_create(&p);
    if (hash_ == nullptr)
        throw std::runtime_error("cannot create neighbour table: " +
                                 std::string(rte_strerror(rte_errno)));
    // 20-byte keys would be compared with memcmp() (see key_compare.hpp).
    rte_hash_set_cmp_func(hash_, key_differs<sizeof(NeighbourKey)>);
    for (uint32_t i = 0; i < capacity; i++)
        slots_[i].store(0, std::memory_order_relaxed);
}

NeighbourTable::~NeighbourTable() {
    rte_hash_free(hash_);
}

bool NeighbourTable::lookup(const NeighbourKey &key, Mac &mac) const {
    void *data = nullptr;
    if (rte_hash_lookup_data(hash_, &key, &data) < 0) return false;
    const auto slot = uint32_t(reinterpret_cast<uintptr_t>(data));
    return unpack(slots_[slot].load(std::memory_order_acquire), mac);
}

uint64_t NeighbourTable::lookup_bulk(const NeighbourKey *const *keys, Mac *macs, unsigned n) const {
    void *data[64];
    const void *key_ptrs[64];
    uint64_t hits = 0, found = 0;
    if (n == 0) return 0;
    if (n > 64) n = 64;
    for (unsigned i = 0; i < n; i++)
        key_ptrs[i] = keys[i];
    rte_hash_lookup_bulk_data(hash_, key_ptrs, n, &hits, data);
    for (unsigned i = 0; i < n; i++) {
        if (!(hits & (1ull << i))) continue;
        const auto slot = uint32_t(reinterpret_cast<uintptr_t>(data[i]));
        if (unpack(slots_[slot].load(std::memory_order_acquire), macs[i])) found |= 1ull << i;
    }
    return found;
}

bool NeighbourTable::contains(const NeighbourKey &key) const {
    return rte_hash_lookup(hash_, &key) >= 0;
}

bool NeighbourTable::update(const NeighbourKey &key, const Mac &mac) {
    void *data = nullptr;
    if (rte_hash_lookup_data(hash_, &key, &data) >= 0) {
        const auto slot = uint32_t(reinterpret_cast<uintptr_t>(data));
        slots_[slot].store(pack(mac), std::memory_order_release);
        return true;
    }
    const uint32_t slot = used_.load(std::memory_order_relaxed);
    if (slot >= capacity_) return false;
    // Publish the slot's contents before the index entry that leads readers to it.
    slots_[slot].store(pack(mac), std::memory_order_release);
    keys_[slot] = key;
    if (rte_hash_add_key_data(hash_, &key, reinterpret_cast<void *>(uintptr_t(slot))) < 0) {
        slots_[slot].store(0, std::memory_order_relaxed);
        return false;
    }
    used_.store(slot + 1, std::memory_order_relaxed);
    return true;
}

std::vector<NeighbourTable::Entry> NeighbourTable::dump() const {
    std::vector<Entry> out;
    const uint32_t n = used_.load(std::memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++) {
        Entry e{keys_[i], {}};
        if (unpack(slots_[i].load(std::memory_order_acquire), e.mac)) out.push_back(e);
    }
    return out;
}

} // namespace syncwall::dp
