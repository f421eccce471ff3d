// pflog: what a `log` rule records, as OpenBSD's pflog(4) interface records it.
//
// Theory of operation: when the rule that decides a packet has `log`, the worker's filter
// (filter.cpp) fills a PflogRecord (the pflog header below and the first bytes of the IP
// packet) in a record from a dedicated pool and queues it for the PflogWriter
// (pflog_writer.hpp), a plain thread that appends it to a pcap file of link type DLT_PFLOG.
// tcpdump, tshark and Wireshark decode those files as they decode OpenBSD's pflog0.
// This header is pure (no DPDK): the layout and the fill functions are unit-tested alone.
//
// The link-layer header is `struct pfloghdr` of OpenBSD's sys/net/if_pflog.h (OpenBSD 4.9
// and later), 100 bytes, followed by the IP packet without its Ethernet header:
//
//    0 length       PFLOG_HDRLEN (100); readers skip this many bytes, rounded up to 4
//    1 af           OpenBSD's AF_INET 2 / AF_INET6 24 (not Linux's 10)
//    2 action       PF_PASS 0, PF_DROP 1
//    3 reason       PFRES_MATCH 0 (the packet matched the logging rule)
//    4 ifname[16]   the interface the packet was filtered on, NUL-padded
//   20 ruleset[16]  anchor name; empty (syncwall has no anchors)
//   36 rulenr       big-endian rule number, pfctl's @N (0-based)
//   40 subrulenr    big-endian rule number in the anchor; 0xffffffff: none
//   44 uid          host order (as pf writes it); 0xffffffff (UID_MAX): no socket lookup
//   48 pid          host order; NO_PID (100000)
//   52 rule_uid     host order; who loaded the rule (0)
//   56 rule_pid     host order; 0
//   60 dir          PF_IN 1, PF_OUT 2
//   61 rewritten    1 when NAT rewrote the packet; 0 (no NAT here)
//   62 naf          address family after translation (= af)
//   63 pad
//   64 saddr[16]    struct pf_addr: IPv4 in the first 4 bytes, the rest zero
//   80 daddr[16]
//   96 sport        network order: TCP/UDP port, ICMP echo id; 0 otherwise
//   98 dport
//  100
#pragma once

#include "dataplane/packet.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace syncwall::dp {

inline constexpr int dlt_pflog = 117; // DLT_PFLOG / LINKTYPE_PFLOG

// OpenBSD's values: readers decode these numbers whatever the writer's OS.
inline constexpr uint8_t pflog_af_inet = 2;
inline constexpr uint8_t pflog_af_inet6 = 24;
enum class PflogAction : uint8_t { pass = 0, drop = 1 }; // PF_PASS, PF_DROP
enum class PflogReason : uint8_t { match = 0 };          // PFRES_MATCH
enum class PflogDir : uint8_t { in = 1, out = 2 };       // PF_IN, PF_OUT

inline constexpr uint32_t pflog_no_subrule = 0xffffffffu;
inline constexpr uint32_t pflog_no_uid = 0xffffffffu; // UID_MAX
inline constexpr uint32_t pflog_no_pid = 100000;      // NO_PID (PID_MAX + 1)

// A 16- or 32-bit field stored big-endian, whatever the host.
struct Be16 {
    std::array<uint8_t, 2> b;
    void set(uint16_t v) { b = {uint8_t(v >> 8), uint8_t(v)}; }
    uint16_t get() const { return uint16_t(b[0] << 8 | b[1]); }
};
struct Be32 {
    std::array<uint8_t, 4> b;
    void set(uint32_t v) { b = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)}; }
    uint32_t get() const {
        return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
    }
};
static_assert(sizeof(Be16) == 2 && sizeof(Be32) == 4);

struct [[gnu::packed]] PflogHeader {
    uint8_t length;
    uint8_t af;
    uint8_t action;
    uint8_t reason;
    char ifname[16];
    char ruleset[16];
    Be32 rulenr;
    Be32 subrulenr;
    uint32_t uid; // host order, as in pf
    uint32_t pid;
    uint32_t rule_uid;
    uint32_t rule_pid;
    uint8_t dir;
    uint8_t rewritten;
    uint8_t naf;
    uint8_t pad;
    uint8_t saddr[16];
    uint8_t daddr[16];
    Be16 sport;
    Be16 dport;
};
static_assert(sizeof(PflogHeader) == 100);
static_assert(offsetof(PflogHeader, ifname) == 4);
static_assert(offsetof(PflogHeader, ruleset) == 20);
static_assert(offsetof(PflogHeader, rulenr) == 36);
static_assert(offsetof(PflogHeader, subrulenr) == 40);
static_assert(offsetof(PflogHeader, uid) == 44);
static_assert(offsetof(PflogHeader, rule_pid) == 56);
static_assert(offsetof(PflogHeader, dir) == 60);
static_assert(offsetof(PflogHeader, naf) == 62);
static_assert(offsetof(PflogHeader, saddr) == 64);
static_assert(offsetof(PflogHeader, daddr) == 80);
static_assert(offsetof(PflogHeader, sport) == 96);
static_assert(offsetof(PflogHeader, dport) == 98);
// PFLOG_HDRLEN, a multiple of 4 so that readers find the IP header right after it.
inline constexpr uint8_t pflog_hdrlen = sizeof(PflogHeader);
static_assert(pflog_hdrlen % 4 == 0);

// Bytes of the IP packet a record keeps (enough for IPv6 + extension headers + TCP + options).
inline constexpr std::size_t pflog_snaplen = 160;

// Why a packet is logged: the deciding rule and where it was filtered.
struct PflogMeta {
    uint32_t rule = 0;
    PflogAction action = PflogAction::pass;
    PflogReason reason = PflogReason::match;
    PflogDir dir = PflogDir::in;
    std::string_view ifname; // truncated to 15 characters (IFNAMSIZ - 1)
};

// One logged packet, fixed size, as it travels from a worker to the writer. `hdr` and
// `data` are contiguous: the pcap record is the `pcap_caplen()` bytes from `hdr`.
struct PflogRecord {
    uint64_t tsc = 0;      // when the worker logged it (TSC); the writer makes it a time
    uint32_t wire_len = 0; // length of the whole IP packet
    uint16_t caplen = 0;   // bytes of it in `data` (<= pflog_snaplen)
    uint16_t reserved = 0;
    PflogHeader hdr;
    uint8_t data[pflog_snaplen];

    const uint8_t *pcap_bytes() const { return reinterpret_cast<const uint8_t *>(&hdr); }
    uint32_t pcap_caplen() const { return uint32_t(sizeof(PflogHeader)) + caplen; }
    uint32_t pcap_len() const { return uint32_t(sizeof(PflogHeader)) + wire_len; }
};
static_assert(offsetof(PflogRecord, data) == offsetof(PflogRecord, hdr) + sizeof(PflogHeader));

// The pflog header for packet `d` (parsed, IPv4 or IPv6), logged for `meta`.
void pflog_fill_header(PflogHeader &h, const PflogMeta &meta, const PacketDesc &d);

// The whole record: header, then the IP packet of `frame` (what `d` was parsed from) from its
// IP header on, without Ethernet header or padding, cut at pflog_snaplen. `tsc` is stored.
void pflog_fill_record(PflogRecord &r, const PflogMeta &meta, const PacketDesc &d,
                       std::span<const uint8_t> frame, uint64_t tsc);

} // namespace syncwall::dp
