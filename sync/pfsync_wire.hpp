// pfsync on the wire: OpenBSD's protocol, header version 6 (docs/pfsync.md). This file owns the
// byte layout; nothing else in syncwall spells an offset.
//
// Theory of operation: the sync lcore (docs/architecture.md 5) is the only user. To send, it opens
// a PfsyncWriter over the IP payload area of a frame, adds records (full states for INS/UPD,
// compressed UPD_C, DEL_C, requests, bulk markers) until one does not fit, calls finish(),
// puts an IPv4 header (proto 240, TTL 255) in front and transmits. To receive, it hands the
// IP payload of a packet that passed the transport checks (sync port, TTL 255) to decode(),
// which validates it in layers and calls a PfsyncHandler once per valid record; the handler
// converts full states with import_state() and merges updates with stale_update().
// Everything here is pure: no DPDK, no allocation, no exceptions, no clock (time is passed
// in), so it is unit-tested byte for byte (tests/unit/test_pfsync_wire.cpp).
//
// A frame (all multi-byte fields big-endian):
//
//   +-------------------------------+  0
//   | pfsync_header (20)            |     version 6, pad, len (bytes, whole payload),
//   |                               |     16 bytes "pfcksum": zero (see below)
//   +-------------------------------+ 20
//   | pfsync_subheader (4)          |     action, len (ONE record's size in 32-bit
//   +-------------------------------+     words), count (records that follow)
//   | count x record (len*4 bytes)  |
//   +-------------------------------+
//   | pfsync_subheader ...          |     repeated to the end of `len`
//   +-------------------------------+
//
// The 16 bytes after `len` were `pfcksum`, the MD5 of the sender's ruleset; OpenBSD (since
// 2023) writes zeros there and never reads them, so we do the same. Receivers that used them
// (FreeBSD, old OpenBSD) only trust the state's rule number when they match; with zeros
// they never do, and a state is bound to the default rule, as OpenBSD does for pfsync.
//
// Dialects: the per-action record sizes and meanings are a table (`Dialect`). Only OpenBSD
// v6 is implemented; FreeBSD's v5 (no subheader length byte, EOF-terminated frames, other
// state structs, AF_INET6 = 28) would be a second table plus its own record structs.
#pragma once

#include "dataplane/reason_list.hpp"
#include "dataplane/state.hpp"
#include "dataplane/tcp_tracker.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

namespace syncwall::sync {

// ---------------------------------------------------------------------------------------
// Big-endian field types. Byte arrays, so every wire struct has alignment 1 and can sit at
// any offset of a packet.

struct Be16 {
    uint8_t b[2];
    constexpr uint16_t get() const { return uint16_t(b[0] << 8 | b[1]); }
    constexpr void set(uint16_t v) {
        b[0] = uint8_t(v >> 8);
        b[1] = uint8_t(v);
    }
};
struct Be32 {
    uint8_t b[4];
    constexpr uint32_t get() const {
        return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
    }
    constexpr void set(uint32_t v) {
        for (int i = 0; i < 4; i++)
            b[i] = uint8_t(v >> (24 - 8 * i));
    }
};
struct Be64 {
    uint8_t b[8];
    constexpr uint64_t get() const {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | b[i];
        return v;
    }
    constexpr void set(uint64_t v) {
        for (int i = 0; i < 8; i++)
            b[i] = uint8_t(v >> (56 - 8 * i));
    }
};
static_assert(sizeof(Be16) == 2 && alignof(Be16) == 1);
static_assert(sizeof(Be32) == 4 && alignof(Be32) == 1);
static_assert(sizeof(Be64) == 8 && alignof(Be64) == 1);

// ---------------------------------------------------------------------------------------
// Constants (docs/pfsync.md 1.1, 1.6, 1.9, 1.11)

inline constexpr uint8_t pfsync_version = 6;
inline constexpr uint8_t pfsync_ttl = 255;           // sent and required on receive
inline constexpr uint32_t pfsync_group = 0xe00000f0; // 224.0.0.240, host order
inline constexpr std::size_t ipv4_header_len = 20;   // what the caller puts in front

// OpenBSD's address-family constants as they appear on the wire.
inline constexpr uint8_t wire_af_inet = 2;
inline constexpr uint8_t wire_af_inet6 = 24;

inline constexpr uint8_t pftm_max = 20;          // PFTM_MAX: timeouts >= this are invalid
inline constexpr uint8_t pf_tcps_proxy_src = 11; // PF_TCPS_PROXY_SRC
inline constexpr uint8_t pf_tcps_proxy_dst = 12; // PF_TCPS_PROXY_DST: highest peer state
inline constexpr uint8_t pf_in = 1, pf_out = 2;  // PF_IN, PF_OUT
inline constexpr uint16_t pfstate_ack = 0x0010;  // PFSTATE_ACK: sender defers a packet
inline constexpr char ifname_floating[] = "all"; // IFG_ALL: a floating state's interface
inline constexpr uint32_t no_rule_wire = 0xffffffffu;

enum class Action : uint8_t {
    clr = 0,
    oins = 1, // deprecated
    ins_ack = 2,
    oupd = 3, // deprecated
    upd_c = 4,
    upd_req = 5,
    del = 6, // OpenBSD receives it but never sends it
    del_c = 7,
    ins_f = 8, // never implemented anywhere
    del_f = 9, // never implemented anywhere
    bus = 10,
    otdb = 11, // deprecated
    eof = 12,  // deprecated in v6 (FreeBSD v5 ends every frame with it)
    ins = 13,
    upd = 14,
    tdb = 15,
    max_ = 16, // PFSYNC_ACT_MAX
};

// The actions that carry a whole pfsync_state and that a PfsyncWriter sends.
enum class StateAction : uint8_t { ins = uint8_t(Action::ins), upd = uint8_t(Action::upd) };

enum class BusStatus : uint8_t { start = 1, end = 2 }; // PFSYNC_BUS_START / _END

// ---------------------------------------------------------------------------------------
// Layouts (docs/pfsync.md 1.4 - 1.9). Names follow OpenBSD's if_pfsync.h / pfvar.h.

//  0 version  1 _pad  2 len (bytes)  4 pfcksum[16]  20
struct [[gnu::packed]] PfsyncHeader {
    uint8_t version;
    uint8_t pad;
    Be16 len;
    uint8_t pfcksum[16];
};
static_assert(sizeof(PfsyncHeader) == 20);

//  0 action  1 len (one record, in 32-bit words)  2 count  4
struct [[gnu::packed]] PfsyncSubheader {
    uint8_t action;
    uint8_t len;
    Be16 count;
};
static_assert(sizeof(PfsyncSubheader) == 4);

// struct pf_addr: IPv4 in the first 4 bytes (network order), the rest zero.
struct [[gnu::packed]] PfAddr {
    uint8_t addr[16];
};
static_assert(sizeof(PfAddr) == 16);

//  0 pfss_flags  2 pfss_ttl  3 scrub_flag  4 pfss_ts_mod  8
struct [[gnu::packed]] PfsyncStateScrub {
    Be16 pfss_flags;
    uint8_t pfss_ttl;
    uint8_t scrub_flag;
    Be32 pfss_ts_mod;
};
static_assert(sizeof(PfsyncStateScrub) == 8);

//  0 scrub  8 seqlo  12 seqhi  16 seqdiff  20 max_win  22 mss  24 state  25 wscale
// 26 pad[6]  32
struct [[gnu::packed]] PfsyncStatePeer {
    PfsyncStateScrub scrub;
    Be32 seqlo;
    Be32 seqhi;
    Be32 seqdiff;
    Be16 max_win;
    Be16 mss;
    uint8_t state;
    uint8_t wscale;
    uint8_t pad[6];
};
static_assert(sizeof(PfsyncStatePeer) == 32);

//  0 addr[0]  16 addr[1]  32 port[0]  34 port[1] (network order)  36 rdomain  38 af
// 39 pad  40
struct [[gnu::packed]] PfsyncStateKey {
    PfAddr addr[2];
    Be16 port[2];
    Be16 rdomain;
    uint8_t af; // 0: "use pfsync_state.af"
    uint8_t pad;
};
static_assert(sizeof(PfsyncStateKey) == 40);

//   0 id            8 ifname[16]     24 key[0] (wire)   64 key[1] (stack)   104 src
// 136 dst         168 rt_addr      184 rule           188 anchor          192 nat_rule
// 196 creation (age, s)            200 expire (remaining, s)              204 packets[2][2]
// 220 bytes[2][2] ([hi32, lo32])   236 creatorid      240 rtableid[2]     248 max_mss
// 250 af  251 proto  252 direction  253 log  254 rt  255 timeout  256 sync_flags
// 257 updates  258 min_ttl  259 set_tos  260 state_flags  262 set_prio[2]  264
struct [[gnu::packed]] PfsyncState {
    Be64 id;
    char ifname[16];
    PfsyncStateKey key[2];
    PfsyncStatePeer src;
    PfsyncStatePeer dst;
    PfAddr rt_addr;
    Be32 rule;
    Be32 anchor;
    Be32 nat_rule;
    Be32 creation;
    Be32 expire;
    Be32 packets[2][2];
    Be32 bytes[2][2];
    Be32 creatorid;
    Be32 rtableid[2];
    Be16 max_mss;
    uint8_t af;
    uint8_t proto;
    uint8_t direction;
    uint8_t log;
    uint8_t rt;
    uint8_t timeout;
    uint8_t sync_flags;
    uint8_t updates;
    uint8_t min_ttl;
    uint8_t set_tos;
    Be16 state_flags;
    uint8_t set_prio[2];
};
static_assert(sizeof(PfsyncState) == 264);
static_assert(offsetof(PfsyncState, ifname) == 8);
static_assert(offsetof(PfsyncState, key) == 24);
static_assert(offsetof(PfsyncState, src) == 104);
static_assert(offsetof(PfsyncState, dst) == 136);
static_assert(offsetof(PfsyncState, rt_addr) == 168);
static_assert(offsetof(PfsyncState, rule) == 184);
static_assert(offsetof(PfsyncState, creation) == 196);
static_assert(offsetof(PfsyncState, packets) == 204);
static_assert(offsetof(PfsyncState, bytes) == 220);
static_assert(offsetof(PfsyncState, creatorid) == 236);
static_assert(offsetof(PfsyncState, rtableid) == 240);
static_assert(offsetof(PfsyncState, max_mss) == 248);
static_assert(offsetof(PfsyncState, af) == 250);
static_assert(offsetof(PfsyncState, timeout) == 255);
static_assert(offsetof(PfsyncState, state_flags) == 260);
static_assert(offsetof(PfsyncState, set_prio) == 262);

//  0 ifname[16] (empty: all interfaces)  16 creatorid  20
struct [[gnu::packed]] PfsyncClr {
    char ifname[16];
    Be32 creatorid;
};
static_assert(sizeof(PfsyncClr) == 20);

//  0 id  8 creatorid  12  (three distinct types of one shape)
struct [[gnu::packed]] PfsyncInsAck {
    Be64 id;
    Be32 creatorid;
};
struct [[gnu::packed]] PfsyncUpdReq {
    Be64 id; // id 0 and creatorid 0: request a bulk update
    Be32 creatorid;
};
struct [[gnu::packed]] PfsyncDelC {
    Be64 id;
    Be32 creatorid;
};
static_assert(sizeof(PfsyncInsAck) == 12 && sizeof(PfsyncUpdReq) == 12 && sizeof(PfsyncDelC) == 12);

//  0 id  8 src  40 dst  72 creatorid  76 expire (sent 0, ignored)  80 timeout
// 81 state_flags (sent 0, ignored)  82 pad[2]  84
struct [[gnu::packed]] PfsyncUpdC {
    Be64 id;
    PfsyncStatePeer src;
    PfsyncStatePeer dst;
    Be32 creatorid;
    Be32 expire;
    uint8_t timeout;
    uint8_t state_flags;
    uint8_t pad[2];
};
static_assert(sizeof(PfsyncUpdC) == 84);
static_assert(offsetof(PfsyncUpdC, creatorid) == 72 && offsetof(PfsyncUpdC, timeout) == 80);

//  0 creatorid  4 endtime  8 status  9 pad[3]  12
struct [[gnu::packed]] PfsyncBus {
    Be32 creatorid;
    Be32 endtime;
    uint8_t status;
    uint8_t pad[3];
};
static_assert(sizeof(PfsyncBus) == 12);

// Every record must be a whole number of 32-bit words: the subheader says its size in words.
static_assert(sizeof(PfsyncState) % 4 == 0 && sizeof(PfsyncUpdC) % 4 == 0 &&
              sizeof(PfsyncClr) % 4 == 0 && sizeof(PfsyncBus) % 4 == 0 &&
              sizeof(PfsyncDelC) % 4 == 0);

// ---------------------------------------------------------------------------------------
// Dialect: what each action code means and how big its record is.

enum class RecordKind : uint8_t {
    skip, // deprecated or unsupported here: skipped by length
    clr,
    ins_ack,
    upd_c,
    upd_req,
    del,
    del_c,
    bus,
    ins,
    upd,
    eof,
};

struct ActionSpec {
    uint16_t record_size; // bytes; a section whose records are smaller is skipped
    RecordKind kind;
    std::string_view name;
};

struct Dialect {
    uint8_t version;
    std::span<const ActionSpec> actions; // indexed by action code; codes beyond are unknown
};

// OpenBSD's pfsync_acts[] (if_pfsync.c): deprecated codes have size 0 and no handler.
// TDB is known to OpenBSD (52 bytes) but syncwall has no IPsec: skipped.
inline constexpr ActionSpec openbsd_v6_actions[] = {
    {sizeof(PfsyncClr), RecordKind::clr, "clr"},
    {0, RecordKind::skip, "oins"},
    {sizeof(PfsyncInsAck), RecordKind::ins_ack, "ins_ack"},
    {0, RecordKind::skip, "oupd"},
    {sizeof(PfsyncUpdC), RecordKind::upd_c, "upd_c"},
    {sizeof(PfsyncUpdReq), RecordKind::upd_req, "upd_req"},
    {sizeof(PfsyncState), RecordKind::del, "del"},
    {sizeof(PfsyncDelC), RecordKind::del_c, "del_c"},
    {0, RecordKind::skip, "ins_f"},
    {0, RecordKind::skip, "del_f"},
    {sizeof(PfsyncBus), RecordKind::bus, "bus"},
    {0, RecordKind::skip, "otdb"},
    {0, RecordKind::eof, "eof"},
    {sizeof(PfsyncState), RecordKind::ins, "ins"},
    {sizeof(PfsyncState), RecordKind::upd, "upd"},
    {52, RecordKind::skip, "tdb"},
};
static_assert(std::size(openbsd_v6_actions) == std::size_t(Action::max_));

inline constexpr Dialect openbsd_v6{pfsync_version, openbsd_v6_actions};

// ---------------------------------------------------------------------------------------
// Why a packet, a section or a record was refused. One list: the enum and the name and text
// tables come from it. `none` (first) is success and is never counted.

#define SYNCWALL_PFSYNC_ERRORS(X)                                                                  \
    X(none, "no error")                                                                            \
    /* Packet: the rest of the packet is dropped (nothing of it reaches the handler). */           \
    X(short_packet, "payload shorter than the pfsync header")                                      \
    X(bad_version, "pfsync header version is not 6")                                               \
    X(len_beyond_packet, "header len larger than the packet")                                      \
    X(len_below_header, "header len smaller than the pfsync header")                               \
    X(bad_action, "unknown action whose subheader gives no record length or count")                \
    X(section_truncated, "a section's records extend beyond the packet")                           \
    /* Section: skipped by its length, the packet goes on. */                                      \
    X(section_unknown_action, "section with an unknown action skipped")                            \
    X(section_short_records, "section whose records are smaller than the action's skipped")        \
    X(section_unhandled, "section of a deprecated or unsupported action skipped")                  \
    X(trailing_bytes, "bytes after the last section, too few for a subheader, ignored")            \
    /* Record: that record is skipped (pf's pfsyncs_badval). */                                    \
    X(creatorid_zero, "state with creator id 0")                                                   \
    X(bad_direction, "state direction not in (1) or out (2)")                                      \
    X(bad_timeout, "timeout class beyond PFTM_MAX")                                                \
    X(unsupported_timeout, "timeout class that is not a state class (adaptive, src node)")         \
    X(bad_peer_state, "peer state beyond PF_TCPS_PROXY_DST")                                       \
    X(bad_af, "address family neither inet (2) nor inet6 (24)")                                    \
    X(bad_key_af, "state key address family invalid or not the state's")                           \
    X(keys_differ, "wire and stack keys of different address families (af-to)")                    \
    X(proto_af_mismatch, "ICMP with inet6 or ICMPv6 with inet")                                    \
    X(nonzero_rdomain, "state in a routing domain other than 0")                                   \
    X(bad_bus_status, "bulk update status neither start (1) nor end (2)")

SYNCWALL_REASON_LIST(PfsyncError, SYNCWALL_PFSYNC_ERRORS, pfsync_error_count, pfsync_error_names,
                     pfsync_error_texts)

// Errors after which nothing more of the packet is read.
constexpr bool drops_packet(PfsyncError e) {
    return e >= PfsyncError::short_packet && e <= PfsyncError::section_truncated;
}

// ---------------------------------------------------------------------------------------
// State <-> pfsync_state (pf_state_export / pf_state_import, docs/pfsync.md 1.9, 1.10)

// Translated (NAT) states. pf keeps two keys per state, key[PF_SK_WIRE] (key[0]: the packet
// as it is on the wire) and key[PF_SK_STACK] (key[1]: as the stack sees it); they differ
// when a rule translated the connection (nat-to, rdr-to, binat-to). syncwall keeps
// State::key, the key of the state's first packet before translation, and the other key
// beside it, so that by pf's rule (pf_state_key_setup):
//   direction out (nat-to): State::key = stack key, other = wire key;
//   direction in (rdr-to):  State::key = wire key,  other = stack key.
// Both keys of a state share its protocol and address family; an af-to state, whose keys
// are of different families, is refused (keys_differ). Each key is laid out like an
// untranslated one (addr[0] = destination for an outbound state, docs/pfsync.md 1.9).

// Fill `out` from `s` as pf_state_export() does. `now` is the table clock (s.creation's);
// `remaining` the seconds until `s` expires (the caller's adaptive lifetime minus the idle
// time; 0 if already expired). `other`: the translated state's other key (see above), or
// nullptr for an untranslated state, whose one key goes out as both key[0] and key[1].
// With `other`, key[0] = the wire key and key[1] = the stack key by s.direction; its proto
// is not sent (the record has one: s.key's), and out.af is the wire key's, as pf's.
// Floating ifname "all", scrub zero, anchor and nat_rule 0xffffffff, rtableid as pf sets
// it (the state's direction routes in table 0, return traffic -1). PFSTATE_ACK is the
// caller's to OR into out.state_flags when it defers the state's first packet. A key af
// other than 4/6 goes out as 0 (receivers refuse).
void export_state(const dp::State &s, uint32_t now, uint32_t remaining, PfsyncState &out,
                  const dp::StateKey *other = nullptr);

// The full-state checks a receiver makes before importing (pfsync_in_ins, pf_state_import),
// plus syncwall's own limits (both keys of the state's af, so no af-to; rdomain 0 in both;
// timeout classes it has a table for). Keys that differ otherwise (NAT) are accepted.
PfsyncError check_state(const PfsyncState &sp);

struct ImportedState {
    dp::State state;            // creation and expire 0: see imported_times()
    dp::StateKey other{};       // the other key of a translated state; = state.key if not
    bool translated = false;    // the record's wire and stack keys differ (NAT)
    uint32_t age = 0;           // seconds since the sender created it
    uint32_t remaining = 0;     // seconds until it expires on the sender (0: no value)
    bool ack_requested = false; // PFSTATE_ACK was set: answer INS with INS_ACK (and the
                                // flag is cleared in state.state_flags, as pf does)
};

// Convert a received pfsync_state. On success returns PfsyncError::none and fills `out`:
// both keys (addresses kept, IPv4 padding zeroed, ports to host order, af 2/24 -> 4/6,
// the record's proto); when they differ (compared in that form: only an address's own
// bytes count), translated = true and state.key / other follow the record's direction as
// described above; when equal, translated = false and other = state.key. Also identity,
// rule number (the caller decides whether to trust it), peers (scrub ignored), counters,
// direction, log, timeout, state_flags, max_mss; iface floating, origin peer.
// Ignored: ifname, rt/rt_addr, rtableid, anchor, nat_rule, sync_flags, min_ttl, set_tos,
// set_prio. Otherwise returns why and leaves `out` unspecified.
PfsyncError import_state(const PfsyncState &sp, ImportedState &out);

// pf_state_import's time arithmetic: creation = now - age; last activity (State::expire)
// = now, back-dated when `remaining` is given so that `class_timeout` (the receiver's own
// lifetime for the state's class) leaves `remaining` seconds. Unlike pf, a `remaining`
// larger than `class_timeout` does not move the last activity into the future (pf's
// unsigned arithmetic expires such a state at once); it gives a full lifetime.
struct StateTimes {
    uint32_t creation, expire;
};
StateTimes imported_times(uint32_t now, uint32_t age, uint32_t remaining, uint32_t class_timeout);

// Peers in host form <-> wire form (pf_state_peer_hton / _ntoh; scrub written zero).
dp::TcpPeer peer_from_wire(const PfsyncStatePeer &w);
void peer_to_wire(const dp::TcpPeer &p, PfsyncStatePeer &w);

// ---------------------------------------------------------------------------------------
// Merging an update (pfsync_upd_tcp, docs/pfsync.md 2.2). Updates never move a state backwards.

struct Staleness {
    bool src = false; // our src peer is newer than the message's: keep ours
    bool dst = false; // likewise dst
    bool any() const { return src || dst; }
    int count() const { return int(src) + int(dst); }
    // pf: expire = now and timeout = the message's only when at most one side was stale.
    bool refresh_expire() const { return count() < 2; }
    // pf: when anything was stale, count it and queue our own newer copy to the peers.
    bool send_ours_back() const { return any(); }
};

// Given our copy of a state's peers and the message's (both host form): which of our peers
// are newer. TCP (proto 6): a peer is stale when its state is behind ours (except that a
// src may leave the synproxy states) or equal with our seqlo ahead in sequence space
// (seq_gt, so across the 2^32 wrap). Other protocols: when the pseudo-state is behind ours.
// Copy the message's peer only where the side is not stale (never the FreeBSD bug).
Staleness stale_update(uint8_t proto, const dp::TcpPeer &our_src, const dp::TcpPeer &our_dst,
                       const dp::TcpPeer &msg_src, const dp::TcpPeer &msg_dst);

// The UPD_C checks pf makes (pfsync_in_upd_c): timeout class and peer states.
PfsyncError check_upd_c(const PfsyncUpdC &u);

// ---------------------------------------------------------------------------------------
// Sending

// Builds one pfsync packet (the IP payload) in a caller's buffer. Records of the action of
// the last section are appended to it (its count grows); another action opens a section.
// An add_* that returns false wrote nothing: the record would pass the size limit; send
// what is there (finish()), reset() and add it again.
class PfsyncWriter {
  public:
    // `payload` is where the IP payload goes; the packet is limited to `mtu` (the pfsync
    // interface MTU, IP header included, as OpenBSD counts it) less the 20-byte IPv4 header,
    // and to payload.size().
    PfsyncWriter(std::span<uint8_t> payload, std::size_t mtu);

    // export_state() of `s` (and `other`, a translated state's other key), then PFSTATE_ACK
    // if `ack_requested`.
    bool add_state(StateAction a, const dp::State &s, uint32_t now, uint32_t remaining,
                   bool ack_requested = false, const dp::StateKey *other = nullptr);
    bool add_state(StateAction a, const PfsyncState &sp); // an already exported state
    bool add_upd_c(const dp::State &s);
    bool add_ins_ack(uint64_t id, uint32_t creatorid);
    bool add_upd_req(uint64_t id, uint32_t creatorid); // (0, 0): request a bulk update
    bool add_del_c(uint64_t id, uint32_t creatorid);
    bool add_bus(BusStatus status, uint32_t creatorid, uint32_t endtime = 0);
    bool add_clr(uint32_t creatorid, std::string_view ifname = {}); // empty: all interfaces

    // Fill the header's len; returns the payload length (what follows the IPv4 header).
    std::size_t finish();
    void reset(); // start a new packet in the same buffer

    std::size_t size() const { return len_; }
    std::size_t capacity() const { return cap_; }
    std::size_t records() const { return records_; }
    bool empty() const { return records_ == 0; }

  private:
    uint8_t *reserve(Action a, std::size_t record_size);

    std::span<uint8_t> buf_;
    std::size_t cap_ = 0;
    std::size_t len_ = 0;
    std::size_t last_subheader_ = 0; // offset of the last section's subheader; 0: none yet
    std::size_t records_ = 0;
};

// ---------------------------------------------------------------------------------------
// Receiving

// Called by decode() once per valid record, in packet order, and only for packets whose
// whole structure is valid. The references point at a copy: keep none beyond the call.
class PfsyncHandler {
  public:
    virtual ~PfsyncHandler() = default;
    virtual void on_packet(const PfsyncHeader &) {}
    virtual void on_clr(const PfsyncClr &) {}
    virtual void on_ins_ack(const PfsyncInsAck &) {}
    virtual void on_upd_c(const PfsyncUpdC &) {}
    virtual void on_upd_req(const PfsyncUpdReq &) {}
    virtual void on_del(const PfsyncState &) {}
    virtual void on_del_c(const PfsyncDelC &) {}
    virtual void on_bus(const PfsyncBus &) {}
    virtual void on_ins(const PfsyncState &) {} // passed check_state()
    virtual void on_upd(const PfsyncState &) {} // passed check_state()
    virtual void on_eof() {}                    // deprecated marker; v6 parsing goes on after it
};

struct DecodeStats {
    uint64_t packets = 0; // packets whose structure was valid
    uint64_t records = 0; // records handed to the handler
    std::array<uint64_t, pfsync_error_count> errors{};

    uint64_t &operator[](PfsyncError e) { return errors[std::size_t(e)]; }
    uint64_t operator[](PfsyncError e) const { return errors[std::size_t(e)]; }
    void add(const DecodeStats &o);
};

// Validate `payload` (the IP payload of a pfsync packet: from the pfsync header on) in
// layers, counting every failure in `stats`:
//   1. length >= 20, version, header len (bytes) within the packet (a packet longer than
//      len is cut to len, as pf does);
//   2. the section walk: subheader len is one record's size in 32-bit words; unknown
//      actions and sections with records smaller than the action's size are skipped by
//      len*4*count (fatal when len or count is 0); count records must fit;
//   3. per record (INS/UPD: check_state, UPD_C: check_upd_c, BUS: status): a bad one is
//      counted and skipped.
// Steps 1 and 2 complete before the handler sees anything: a packet that fails them
// delivers no record. Returns the packet-level error (none when the structure was valid).
PfsyncError decode(std::span<const uint8_t> payload, PfsyncHandler &handler, DecodeStats &stats,
                   const Dialect &dialect = openbsd_v6);

} // namespace syncwall::sync
