// The neighbour table: next-hop IP address on a port -> Ethernet address.
//
// Theory of operation: the main lcore is the only writer (it learns from ARP and ND and
// resolves next hops for packets the workers punt); workers read it without locks. The
// index is an rte_hash in lock-free reader/writer mode whose data is a slot number; each
// slot holds the MAC and a valid bit packed in one 64-bit atomic word, so a reader sees
// either the old or the new address, never half of each. Entries are refreshed in place
// and never removed while workers run, so a slot is never reused under a reader.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct rte_hash;

namespace syncwall::dp {

using Mac = std::array<uint8_t, 6>;

struct NeighbourKey {
    uint16_t port = 0;
    uint8_t family = 0; // 4 or 6
    uint8_t pad = 0;
    std::array<uint8_t, 16> addr{}; // network order; IPv4 in the first 4 bytes
};
static_assert(sizeof(NeighbourKey) == 20);

class NeighbourTable {
  public:
    NeighbourTable(const std::string &name, uint32_t capacity, int socket_id);
    ~NeighbourTable();
    NeighbourTable(const NeighbourTable &) = delete;
    NeighbourTable &operator=(const NeighbourTable &) = delete;

    // Worker side: true and the MAC if the neighbour is known.
    bool lookup(const NeighbourKey &key, Mac &mac) const;
    // Bulk form: `found` bit i set when keys[i] resolved into macs[i]. n <= 64.
    uint64_t lookup_bulk(const NeighbourKey *const *keys, Mac *macs, unsigned n) const;

    // Main lcore only. Returns false when the table is full.
    bool update(const NeighbourKey &key, const Mac &mac);
    bool contains(const NeighbourKey &key) const;

    struct Entry {
        NeighbourKey key;
        Mac mac;
    };
    std::vector<Entry> dump() const; // main lcore only
    uint32_t size() const { return used_.load(std::memory_order_relaxed); }
    uint32_t capacity() const { return capacity_; }

  private:
    static uint64_t pack(const Mac &mac) {
        uint64_t v = 1ull << 63;
        for (int i = 0; i < 6; i++)
            v |= uint64_t(mac[i]) << (8 * (5 - i));
        return v;
    }
    static bool unpack(uint64_t v, Mac &mac) {
        for (int i = 0; i < 6; i++)
            mac[i] = uint8_t(v >> (8 * (5 - i)));
        return (v >> 63) != 0;
    }

    rte_hash *hash_ = nullptr;
    uint32_t capacity_;
    std::unique_ptr<std::atomic<uint64_t>[]> slots_;
    std::vector<NeighbourKey> keys_; // slot -> key, main lcore only
    std::atomic<uint32_t> used_{0};
};

} // namespace syncwall::dp
