// Per-lcore counters.
//
// Each lcore writes only its own `LcoreCounters` (cache-line aligned, plain stores, no
// atomics on the hot path); readers on other lcores sum them into a `CounterTotals`.
// A reader may see a value that is a few packets old, never a torn 64-bit value: the
// counters are naturally aligned 64-bit words, written with relaxed atomic stores.
#pragma once

#include "dataplane/drop_reason.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <span>

namespace syncwall::dp {

inline constexpr unsigned max_ports = 16;

// A counter owned by one writer. Increments are a relaxed load + relaxed store (no lock
// prefix); readers get a relaxed load.
class OwnedCounter {
  public:
    void add(uint64_t n) {
        v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void inc() { add(1); }
    void set(uint64_t n) { v_.store(n, std::memory_order_relaxed); } // a gauge
    uint64_t get() const { return v_.load(std::memory_order_relaxed); }

  private:
    std::atomic<uint64_t> v_{0};
};

struct PortCounters {
    OwnedCounter rx_packets, rx_bytes, tx_packets, tx_bytes;
};

struct alignas(64) LcoreCounters {
    std::array<PortCounters, max_ports> ports;
    std::array<OwnedCounter, drop_reason_count> drops;
    OwnedCounter forwarded;         // packets routed and handed to a tx queue
    OwnedCounter punted;            // packets handed to the main lcore
    OwnedCounter handed_off;        // packets handed to the worker that owns their state
    OwnedCounter twin_steps;        // out passes made in one step (Filter::track_twin)
    OwnedCounter polls;             // rx polls
    OwnedCounter idle_polls;        // rx polls that returned nothing
    OwnedCounter sleeps;            // adaptive idle sleeps taken
    OwnedCounter pflog_dropped;     // `log` entries lost: no free pflog record (packet unharmed)
    OwnedCounter frag_reassembled;  // datagrams reassembled from fragments
    OwnedCounter frag_refragmented; // reassembled datagrams sent on in fragments
    OwnedCounter frags_held;        // gauge: fragments waiting for the rest of their datagram

    void drop(DropReason r) { drops[std::size_t(r)].inc(); }
};

// A plain summed copy, for printing and the management API.
struct CounterTotals {
    struct Port {
        uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
    };
    std::array<Port, max_ports> ports{};
    std::array<uint64_t, drop_reason_count> drops{};
    uint64_t forwarded = 0, punted = 0, handed_off = 0, polls = 0, idle_polls = 0, sleeps = 0;
    uint64_t pflog_dropped = 0;
    uint64_t frag_reassembled = 0, frag_refragmented = 0, frags_held = 0;

    void add(const LcoreCounters &c);
    uint64_t total_drops() const;
};

inline void CounterTotals::add(const LcoreCounters &c) {
    for (unsigned p = 0; p < max_ports; p++) {
        ports[p].rx_packets += c.ports[p].rx_packets.get();
        ports[p].rx_bytes += c.ports[p].rx_bytes.get();
        ports[p].tx_packets += c.ports[p].tx_packets.get();
        ports[p].tx_bytes += c.ports[p].tx_bytes.get();
    }
    for (std::size_t r = 0; r < drop_reason_count; r++)
        drops[r] += c.drops[r].get();
    forwarded += c.forwarded.get();
    punted += c.punted.get();
    handed_off += c.handed_off.get();
    polls += c.polls.get();
    idle_polls += c.idle_polls.get();
    sleeps += c.sleeps.get();
    pflog_dropped += c.pflog_dropped.get();
    frag_reassembled += c.frag_reassembled.get();
    frag_refragmented += c.frag_refragmented.get();
    frags_held += c.frags_held.get();
}

inline uint64_t CounterTotals::total_drops() const {
    uint64_t n = 0;
    for (auto d : drops)
        n += d;
    return n;
}

} // namespace syncwall::dp
