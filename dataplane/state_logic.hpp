// What pf does with a state besides TCP window tracking: keys, pseudo-states for UDP, ICMP
// and other protocols, ICMP errors quoting a connection, and expiry with adaptive timeouts.
//
// Pure functions over PacketDesc and State (no DPDK), unit-tested without EAL. The worker's
// filter stage (filter.hpp) calls them with the state locked.
#pragma once

#include "config/config.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/state.hpp"

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

namespace syncwall::dp {

// A key's last 8 bytes (the ports, family, protocol and the zero pad) as one word, as they
// lie in memory, for a packet from port `sport` to port `dport` seen in direction `dir`
// (outbound, port[0] is the destination's).
inline uint64_t key_tail(uint16_t sport, uint16_t dport, uint8_t family, uint8_t proto,
                         StateDirection dir) {
    const bool in = dir == StateDirection::in;
    const uint16_t port0 = in ? sport : dport, port1 = in ? dport : sport;
    static_assert(offsetof(StateKey, port) == 32 && offsetof(StateKey, af) == 36 &&
                  offsetof(StateKey, proto) == 37 && offsetof(StateKey, pad) == 38);
    if constexpr (std::endian::native == std::endian::little) {
        return uint64_t(port0) | uint64_t(port1) << 16 | uint64_t(family) << 32 |
               uint64_t(proto) << 40;
    } else {
        StateKey k;
        k.port[0] = port0;
        k.port[1] = port1;
        k.af = family;
        k.proto = proto;
        uint64_t w;
        std::memcpy(&w, &k.port, sizeof w);
        return w;
    }
}

// A key from its parts, as seen in direction `dir`: inbound, addr[0] is the source;
// outbound, addr[0] is the destination (see state.hpp). Inline and written with wide stores
// (two addresses, then ports, family and protocol as one 8-byte word): the key is read
// right away by 8- and 16-byte loads (hash, compare), which a store of narrower fields
// could not forward to.
inline void fill_state_key(StateKey &k, uint8_t family, uint8_t proto,
                           const std::array<uint8_t, 16> &src, const std::array<uint8_t, 16> &dst,
                           uint16_t sport, uint16_t dport, StateDirection dir) {
    const bool in = dir == StateDirection::in;
    k.addr[in ? 0 : 1] = src;
    k.addr[in ? 1 : 0] = dst;
    const uint64_t tail = key_tail(sport, dport, family, proto, dir);
    std::memcpy(&k.port, &tail, sizeof tail);
}

// The key a packet looks up (and would create) in direction `dir`. Only for packets with an
// IP header; non-first fragments and unknown protocols get ports 0. ICMP queries and
// replies share one key: the echo id on both sides, so a reply finds its request's state
// (pf's convention).
inline StateKey state_key(const PacketDesc &d, StateDirection dir) {
    StateKey k;
    fill_state_key(k, d.family, d.proto, d.src, d.dst, d.has_l4 ? d.sport : uint16_t(0),
                   d.has_l4 ? d.dport : uint16_t(0), dir);
    return k;
}

// Whether `k` is the key packet `d` looks up in direction `dir` (k == state_key(d, dir)),
// compared word by word against the packet's fields, without building the key first.
inline bool key_is(const StateKey &k, const PacketDesc &d, StateDirection dir) {
    const bool in = dir == StateDirection::in;
    const std::array<uint8_t, 16> &a0 = in ? d.src : d.dst, &a1 = in ? d.dst : d.src;
    const uint16_t sport = d.has_l4 ? d.sport : uint16_t(0);
    const uint16_t dport = d.has_l4 ? d.dport : uint16_t(0);
    const auto word = [](const void *p) {
        uint64_t w;
        std::memcpy(&w, p, sizeof w);
        return w;
    };
    uint64_t diff = word(&k.port) ^ key_tail(sport, dport, d.family, d.proto, dir);
    for (unsigned i = 0; i < 16; i += 8) {
        diff |= word(k.addr[0].data() + i) ^ word(a0.data() + i);
        diff |= word(k.addr[1].data() + i) ^ word(a1.data() + i);
    }
    return diff == 0;
}

// For an ICMP/ICMPv6 error travelling in direction `dir`: the key of the connection its
// quoted packet belongs to (the quoted packet travelled the other way), and what is needed
// to check it against that state. `frame` is the whole frame `d` was parsed from.
struct QuotedConnection {
    StateKey key;
    StateDirection dir; // direction the quoted packet travelled in
    bool is_tcp = false;
    uint32_t tcp_seq = 0; // the quoted TCP segment's sequence number
    // The error goes to the quoted packet's source, as an error must: pf drops one whose
    // outer destination is another host as a bad state match (checked once the state is
    // found).
    bool to_quoted_source = false;
};
std::optional<QuotedConnection> quoted_connection(std::span<const uint8_t> frame,
                                                  const PacketDesc &d, StateDirection dir);

// Is the packet that found state `s` in direction `dir` going the way the state's first
// packet went (its "src" peer sent it)? pf: st->direction == pd->dir.
inline bool from_state_src(const State &s, StateDirection dir) {
    return s.direction == dir;
}

// pf's UDP / other pseudo-states (PFUDPS_*, PFOTHERS_*).
inline constexpr uint8_t pseudo_no_traffic = 0, pseudo_single = 1, pseudo_multiple = 2;

// Initialise a new state from its first packet: peers (TCP via tcp_state_init), timeout
// class. Keys, ids, times and counters are the caller's.
void state_init_peers(State &s, const PacketDesc &d);

// Account a packet of an existing non-TCP state (UDP, ICMP query/reply, other) that was sent
// by `src` to `dst`; returns the new timeout class. Sets *changed when a peer's pseudo-state
// moved (worth telling pfsync peers).
Timeout pseudo_state_update(TcpPeer &src, TcpPeer &dst, uint8_t proto, bool *changed);

// An ICMP error quoting a TCP segment passes only if the segment's sequence number lies in
// the window its sender may use (pf_icmp_state_lookup's check). `sender` sent the quoted
// segment, `receiver` is the other peer.
bool quoted_tcp_seq_fits(const TcpPeer &sender, const TcpPeer &receiver, uint32_t seq);

// pf's timeout table in seconds, indexed by Timeout, with adaptive scaling.
struct TimeoutTable {
    std::array<uint32_t, std::size_t(Timeout::count_)> seconds{};
    uint32_t adaptive_start = 0, adaptive_end = 0; // in states; end 0 = no scaling

    static TimeoutTable from_config(const config::TimeoutConfig &t, uint32_t state_limit);
    // Seconds a state of class `c` lives after its last activity, given `states` states
    // in the table: pf scales linearly from full at adaptive.start to 0 at adaptive.end.
    // `override_seconds` (a rule's own timeout, 0 = none) replaces the table's value.
    uint32_t lifetime(Timeout c, uint32_t states, uint32_t override_seconds = 0) const;
};

// True when `s` has expired at `now` (seconds on the table clock).
inline bool state_expired(const State &s, uint32_t now, uint32_t lifetime) {
    return now - s.expire >= lifetime;
}

} // namespace syncwall::dp
