// The state record: one connection as pf keeps it, pointer-free and fixed-size.
//
// Shaped like pfsync's `pfsync_state` (docs/pfsync.md 1.9) so that the sync lcore serialises
// it without translation: a key, the cluster-wide identity (creatorid, id), one TcpPeer per
// direction (UDP/ICMP/other use the peer's `state` as pf's pseudo-state), creation and
// last-activity times, the rule that made it, counters. Host byte order except addresses.
//
// Key convention (pf's): a state created by a packet inbound on an interface has
// addr[0]/port[0] = that packet's source and addr[1]/port[1] = its destination; one created
// outbound has them the other way round (addr[0] = destination). A packet looks up the key
// built the same way for its own direction, so a reply finds the state of its request and
// a forwarded connection has one state per interface it crosses, as in pf.
//
// A translated state (NAT) has two keys, pf's wire key (PF_SK_WIRE: the packet as it is on
// the wire outside) and stack key (PF_SK_STACK: as the host behind the translation sees
// it). `key` is the one its first packet used, before translation: the stack key of a
// state made outbound (nat-to), the wire key of one made inbound (rdr-to). The other key is
// kept by the state table (StateTable::other_key). An untranslated state's two keys are
// the same, and pfsync sends `key` in both places.
#pragma once

#include "dataplane/tcp_tracker.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace syncwall::dp {

struct StateKey {
    std::array<uint8_t, 16> addr[2]{}; // network order; IPv4 in the first 4 bytes, rest 0
    uint16_t port[2]{};                // host order; ICMP echo: both are the echo id
    uint8_t af = 0;                    // 4 or 6
    uint8_t proto = 0;
    uint16_t pad = 0; // always 0: the key is hashed and compared bytewise

    bool operator==(const StateKey &) const = default;
};
static_assert(sizeof(StateKey) == 40);
static_assert(std::is_trivially_copyable_v<StateKey>);

// The key of the same connection's state in the other direction (pf's twin), for states
// whose keys are not translated: a packet's key inbound has its source on side 0, outbound
// on side 1 (state_key()).
inline StateKey twin_key(const StateKey &k) {
    StateKey t = k;
    std::swap(t.addr[0], t.addr[1]);
    std::swap(t.port[0], t.port[1]);
    return t;
}

enum class StateDirection : uint8_t { in = 1, out = 2 }; // PF_IN, PF_OUT

inline constexpr uint32_t no_rule = 0xffffffffu;
inline constexpr uint16_t floating_iface = 0xffff;

// pf's PFSTATE_* bits that syncwall sets or carries.
namespace state_flag {
inline constexpr uint16_t nosync = 0x0008;
} // namespace state_flag

// syncwall's own bits (State::local_flags), never sent.
namespace local_flag {
inline constexpr uint16_t translated = 0x0001; // the state has a second key (NAT)
} // namespace local_flag

// State::owner: the worker (0..W-1) that tracks the state's packets, written under the
// slot lock. A worker owns the states it creates; a state from a peer has no owner until
// the first worker that matches one of its packets claims it. A packet that matches a state
// another worker owns is handed to that worker (worker.hpp), so that one worker writes a
// state's tracking fields (docs/ownership.md).
inline constexpr uint8_t no_owner = 0xff;
inline constexpr unsigned max_workers = no_owner; // owners 0..254

// What the table knows about a state beyond pf's fields.
namespace state_origin {
inline constexpr uint8_t local = 0; // created here by a rule
inline constexpr uint8_t peer = 1;  // received from a pfsync peer
} // namespace state_origin

// Field order is for the worker: what every tracked packet reads and writes (peers,
// counters, expiry, direction) comes first, so that with the state table's 8-byte slot
// header it fills two cache lines; the key follows (the out pass compares a twin's key).
struct State {
    TcpPeer src, dst;      // src = the peer that sent the first packet
    uint64_t packets[2]{}; // [0] src->dst, [1] dst->src
    uint64_t bytes[2]{};
    uint32_t expire = 0; // last activity (pf's st->expire), seconds
    StateDirection direction = StateDirection::in;
    Timeout timeout = Timeout::tcp_first;
    uint8_t owner = no_owner; // the worker that tracks it (see below)
    uint8_t reserved = 0;
    StateKey key;                    // the key its first packet used (see above)
    uint64_t id = 0;                 // unique on its creator
    uint32_t creatorid = 0;          // node that created it (pfsync hostid), host order
    uint32_t rule = no_rule;         // number of the rule that created it
    uint32_t creation = 0;           // table clock, seconds
    uint16_t iface = floating_iface; // port index it was created on (states float anyway)
    uint8_t log = 0;
    uint8_t origin = state_origin::local;
    uint16_t max_mss = 0;
    uint16_t local_flags = 0; // local_flag::*
    uint16_t state_flags = 0; // PFSTATE_*
};
static_assert(sizeof(State) == 152);

// Whether `s` (a state or a copy of one) is translated: its second key is
// StateTable::other_key().
inline bool translated(const State &s) {
    return (s.local_flags & local_flag::translated) != 0;
}
static_assert(offsetof(State, key) == 80, "the per-packet fields fill the first 80 bytes");
static_assert(std::is_trivially_copyable_v<State>);

} // namespace syncwall::dp
