// CARP version 2 on the wire, as OpenBSD speaks it (docs/carp.md, sections 1.1 to 1.5).
//
// Theory of operation: this header owns every byte of CARP. The control loop (main lcore)
// hands a received advertisement's IP payload and TTL to validate_carp() (or to
// CarpVhost::validate(), which adds the loop check), and turns what a CarpVhost asks for
// into frames with build_carp_advert_v4/_v6() and build_carp_garp(). Everything is pure:
// no DPDK, no clock, no allocation except in CarpAuth (built once per vhid) and in
// computing a digest (once per advertisement, on the control path).
//
// The carp_header (36 bytes, network byte order), struct carp_header in ip_carp.h:
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-------+-------+---------------+---------------+---------------+
//   |version| type  |     vhid      |    advskew    |    authlen    |  0
//   +-------+-------+---------------+---------------+---------------+
//   |    demote     |    advbase    |           checksum            |  4
//   +---------------+---------------+-------------------------------+
//   |                    counter (64 bits, big-endian)              |  8
//   |                                                               |
//   +---------------------------------------------------------------+
//   |                  HMAC-SHA1 digest (20 bytes)                  | 16
//   ~                                                               ~
//   +---------------------------------------------------------------+ 36
//
// version 2 (high nibble), type 1 = advertisement; authlen always 7 (not checked on
// receive); demote is OpenBSD's demotion count (FreeBSD/ucarp: reserved, 0); the checksum
// is the internet checksum over these 36 bytes alone, with no pseudo-header.
//
// Authentication (docs/carp.md 1.3): key = the passphrase as ifconfig stores it (strlcpy into
// 20 bytes: at most 19 characters, NUL-padded), message = 0x02, 0x01, [the carp lladdr,
// only when changed by hand], vhid, the IPv4 addresses in ascending numeric order, the
// IPv6 addresses in ascending memcmp order, the 8 counter bytes as on the wire. Plain
// RFC 2104 HMAC-SHA1. advbase, advskew and demote are not covered. IPv6 addresses with an
// embedded scope (link-local unicast, interface- and link-local multicast) are hashed with
// bytes 2-3 zeroed (where KAME kernels keep the scope id) and sorted as such; OpenBSD sends
// the digest without them (HMAC_NOV6LL) and accepts it with or without them. The same
// digest goes into IPv4 and IPv6 adverts: it covers every address of the vhid.
#pragma once

#include "config/config.hpp"
#include "control/slowpath/replies.hpp"
#include "dataplane/reason_list.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace syncwall::ctl {

inline constexpr uint8_t carp_version = 2;
inline constexpr uint8_t carp_type_advertisement = 1;
inline constexpr uint8_t carp_ttl = 255;           // CARP_DFLTTL: sent, and required on receive
inline constexpr uint8_t carp_authlen = 7;         // counter + digest in 32-bit words
inline constexpr uint8_t carp_max_skew = 240;      // CARP_MAXSKEW: ceiling of a demoted advskew
inline constexpr uint8_t carp_bow_out_value = 255; // advbase = advskew = 255: "bow-out"
inline constexpr uint8_t carp_ipv4_tos = 0x10;     // IPTOS_LOWDELAY, as OpenBSD sends
inline constexpr std::size_t carp_header_len = 36;
inline constexpr std::size_t carp_key_len = 20; // CARP_KEY_LEN
inline constexpr std::size_t carp_digest_len = 20;
inline constexpr std::size_t carp_advert_v4_frame_len = ether_header_len + 20 + carp_header_len;
inline constexpr std::size_t carp_advert_v6_frame_len = ether_header_len + 40 + carp_header_len;

inline constexpr Ip4 carp_group_v4{224, 0, 0, 18}; // INADDR_CARP_GROUP
inline constexpr Mac carp_group_mac_v4{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12};
inline constexpr Ip6 carp_group_v6{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12};
inline constexpr Mac carp_group_mac_v6{0x33, 0x33, 0x00, 0x00, 0x00, 0x12};

// The virtual MAC of a vhid: 00:00:5e:00:01:<vhid> (the IPv4 VRRP MAC of VRID = vhid).
constexpr Mac carp_virtual_mac(uint8_t vhid) {
    return {0x00, 0x00, 0x5e, 0x00, 0x01, vhid};
}

// The byte layout. Multi-byte fields are byte arrays read and written big-endian.
struct [[gnu::packed]] CarpHeader {
    uint8_t version_type; // version << 4 | type
    uint8_t vhid;
    uint8_t advskew;
    uint8_t authlen;
    uint8_t demote;
    uint8_t advbase;
    std::array<uint8_t, 2> checksum;
    std::array<uint8_t, 8> counter; // two big-endian 32-bit words = one big-endian 64-bit
    std::array<uint8_t, carp_digest_len> digest;
};
static_assert(sizeof(CarpHeader) == carp_header_len);
static_assert(offsetof(CarpHeader, vhid) == 1);
static_assert(offsetof(CarpHeader, advskew) == 2);
static_assert(offsetof(CarpHeader, authlen) == 3);
static_assert(offsetof(CarpHeader, demote) == 4);
static_assert(offsetof(CarpHeader, advbase) == 5);
static_assert(offsetof(CarpHeader, checksum) == 6);
static_assert(offsetof(CarpHeader, counter) == 8);
static_assert(offsetof(CarpHeader, digest) == 16);

// A decoded header, fields in host order.
struct CarpAdvert {
    uint8_t version = carp_version;
    uint8_t type = carp_type_advertisement;
    uint8_t vhid = 0;
    uint8_t advskew = 0;
    uint8_t authlen = carp_authlen;
    uint8_t demote = 0;
    uint8_t advbase = 1;
    uint16_t checksum = 0; // as received; encode_carp() computes its own
    uint64_t counter = 0;  // the 8 counter bytes read big-endian
    std::array<uint8_t, carp_digest_len> digest{};

    // OpenBSD's graceful-stop advertisement.
    bool is_bow_out() const {
        return advbase == carp_bow_out_value && advskew == carp_bow_out_value;
    }
    bool operator==(const CarpAdvert &) const = default;
};

// The 8 counter bytes as they go on the wire (and into the HMAC).
std::array<uint8_t, 8> carp_counter_bytes(uint64_t counter);

// The 36 header bytes with the checksum computed (advert.checksum is ignored). Returns 36,
// or 0 when `out` is smaller.
std::size_t encode_carp(std::span<uint8_t> out, const CarpAdvert &advert);
// Reads the first 36 bytes of `in` (trailing bytes are ignored, as the kernels do). Checks
// nothing but the length; returns false when `in` is shorter than 36 bytes.
bool decode_carp(std::span<const uint8_t> in, CarpAdvert &out);
// Internet checksum of the 36 header bytes as they are: 0 when a received header is
// intact; over a header whose checksum field is zero, the value to store there.
uint16_t carp_checksum(std::span<const uint8_t, carp_header_len> header);

// The interval an advertisement announces, in 1/256 s: advbase * 256 + advskew. OpenBSD
// replaces 0 by 1 (1/256 s) when it schedules timers; carp_timer_ticks() does that.
constexpr uint32_t carp_interval_ticks(uint8_t advbase, uint8_t advskew) {
    return uint32_t(advbase) * 256 + advskew;
}
constexpr uint32_t carp_timer_ticks(uint8_t advbase, uint8_t advskew) {
    const uint32_t t = carp_interval_ticks(advbase, advskew);
    return t == 0 ? 1 : t;
}
// The master-down timer of a backup, in 1/256 s: 3 advertisement intervals, as OpenBSD's
// carp_setrun schedules it (ip_carp.c 1.370: 3 x (advbase + advskew/256) s, 1/256 s when
// that is 0). FreeBSD, ucarp and OpenBSD before the timeout_add_usec rewrite wait
// 3 x advbase + advskew/256 s instead (the skew not tripled), which at advbase 0 would
// leave a backup a single interval of silence.
constexpr uint32_t carp_master_down_ticks(uint8_t advbase, uint8_t advskew) {
    return 3 * carp_timer_ticks(advbase, advskew);
}
// 1/256 s in milliseconds, exactly (a multiple of 1/256 is exact in a double).
constexpr double carp_ticks_ms(uint32_t ticks) {
    return double(ticks) * 1000.0 / 256.0;
}

// The advskew syncwall advertises: the configured one plus the node's demotion, as
// FreeBSD does so that FreeBSD and ucarp peers react, clamped to 240. Never lower than
// the configured skew (a configured 241..254 is kept, not pulled down to 240).
constexpr uint8_t carp_demoted_skew(uint8_t advskew, unsigned demotion) {
    if (demotion == 0 || advskew >= carp_max_skew) return advskew;
    const unsigned sum = unsigned(advskew) + demotion;
    return uint8_t(sum > carp_max_skew || sum < demotion ? carp_max_skew : sum);
}
// The demote byte: OpenBSD's count, capped at 255.
constexpr uint8_t carp_demote_byte(unsigned demotion) {
    return uint8_t(demotion > 255 ? 255 : demotion);
}

// HMAC-SHA1 key and message prefix of one vhid, built once (OpenBSD carp_hmac_prepare).
class CarpAuth {
  public:
    // `addresses` are the vhid's virtual addresses (any order, duplicates ignored).
    // `changed_lladdr`: only to talk to an OpenBSD peer whose carp interface lladdr was
    // set by hand (docs/carp.md 1.3 row 3); syncwall itself always uses the virtual MAC.
    CarpAuth(std::string_view passphrase, uint8_t vhid,
             std::span<const config::IpAddress> addresses,
             std::optional<Mac> changed_lladdr = std::nullopt);

    // The digest syncwall sends: IPv6 link-local addresses left out (OpenBSD HMAC_NOV6LL).
    std::array<uint8_t, carp_digest_len> digest(uint64_t counter) const;
    // True when `digest` matches either variant OpenBSD accepts (without or with the IPv6
    // link-local addresses). Compared in constant time.
    bool verify(uint64_t counter, std::span<const uint8_t, carp_digest_len> digest) const;

    // For tests and diagnostics: the key and the message before the counter.
    const std::array<uint8_t, carp_key_len> &key() const { return key_; }
    const std::vector<uint8_t> &message_prefix() const { return prefix_nov6ll_; }
    const std::vector<uint8_t> &message_prefix_with_v6ll() const { return prefix_all_; }

  private:
    std::array<uint8_t, carp_key_len> key_{};
    std::vector<uint8_t> prefix_nov6ll_;
    std::vector<uint8_t> prefix_all_;
};

// Why a received advertisement was not accepted. One enum, one name table.
#define SYNCWALL_CARP_DROPS(X)                                                                     \
    X(bad_ttl, "TTL or hop limit is not 255")                                                      \
    X(bad_length, "shorter than the 36-byte CARP header")                                          \
    X(bad_checksum, "CARP checksum wrong")                                                         \
    X(wrong_vhid, "vhid is not the one configured")                                                \
    X(bad_version, "CARP version is not 2")                                                        \
    X(unknown_type, "CARP type is not 1 (advertisement)")                                          \
    X(bad_digest, "HMAC wrong: check vhid, passphrase and virtual addresses")                      \
    X(looped, "our own advertisement came back (replay or network loop)")

SYNCWALL_REASON_LIST(CarpDrop, SYNCWALL_CARP_DROPS, carp_drop_count, carp_drop_names,
                     carp_drop_texts)

// Checks a received CARP message in OpenBSD's order: TTL (the caller passes the IPv4 TTL
// or IPv6 hop limit), length, checksum, vhid, version, type, digest. `carp` is the IP
// payload. On success fills `out` and returns nullopt. The loop check (a counter equal to
// our own cookie) needs the vhost: CarpVhost::validate() adds it.
std::optional<CarpDrop> validate_carp(std::span<const uint8_t> carp, uint8_t ttl,
                                      uint8_t expected_vhid, const CarpAuth &auth, CarpAdvert &out);

// A whole IPv4 advertisement frame (70 bytes): Ethernet from the virtual MAC of
// advert.vhid to `eth_dst`, IPv4 with TOS 0x10, DF, TTL 255, protocol 112, the given id and
// header checksum, then the header encoded by encode_carp(). The destination defaults to
// 224.0.0.18 / 01:00:5e:00:00:12; pass a unicast peer and its MAC otherwise. Returns the
// frame length, or 0 when `out` is too small.
std::size_t build_carp_advert_v4(std::span<uint8_t> out, const CarpAdvert &advert, const Ip4 &src,
                                 uint16_t ip_id, const Ip4 &dst = carp_group_v4,
                                 const Mac &eth_dst = carp_group_mac_v4);

// A whole IPv6 advertisement frame (90 bytes): Ethernet from the virtual MAC of advert.vhid
// to 33:33:00:00:00:12, IPv6 with traffic class and flow label 0, payload length 36, next
// header 112 (no extension headers), hop limit 255, from `src` (carp_advert_sources()) to
// ff02::12, then the header encoded by encode_carp(): the same 36 bytes as over IPv4, the
// checksum again over them alone (no pseudo-header). Returns 90, or 0 when `out` is too
// small.
std::size_t build_carp_advert_v6(std::span<uint8_t> out, const CarpAdvert &advert, const Ip6 &src);

// The link-local address a port would autoconfigure: fe80::/64 with the modified EUI-64
// interface identifier of its MAC (RFC 4291 appendix A: ff:fe in the middle, the
// universal/local bit flipped). 02:00:00:00:00:01 gives fe80::ff:fe00:1.
Ip6 ipv6_link_local_of(const Mac &mac);

// The families a vhid advertises on and the source address of each, as OpenBSD's
// carp_send_ad chooses them: IPv4 (224.0.0.18) when the vhid has an IPv4 virtual address,
// IPv6 (ff02::12) when it has an IPv6 one, both when it has both (one state machine; an
// advert of either family counts on receive).
// * IPv4 source: the port's first IPv4 address; without one, the vhid's first IPv4
//   virtual address (OpenBSD falls back to the carp interface's own address).
// * IPv6 source: a link-local address. OpenBSD sends from the parent interface's first
//   IPv6 address (ifaof_ifpforaddr with an empty AF_INET6 sockaddr), which is the
//   link-local the kernel configures when IPv6 comes up, before any other. syncwall's
//   ports have no kernel behind them, so: the first link-local address configured on the
//   port, else the one the port would autoconfigure (ipv6_link_local_of its MAC). Never a
//   global address: ff02::12 is link-scope, link-scope control protocols (ND, MLD, VRRPv3
//   for IPv6) send from link-local addresses, and a link-local source cannot change when
//   global addresses are renumbered, so the tie-break below stays put.
struct CarpAdvertSources {
    std::optional<Ip4> v4;
    std::optional<Ip6> v6;
    // The address CarpVhost's tie-break compares: the IPv4 source when the vhid has both
    // families (so that a mixed pair settles on one family only), else the IPv6 source.
    config::IpAddress primary() const;
};
CarpAdvertSources carp_advert_sources(std::span<const config::IpPrefix> vhid_addresses,
                                      std::span<const config::IpPrefix> port_addresses,
                                      const Mac &port_mac);

// The gratuitous ARP OpenBSD sends on becoming master (carp_send_arp): a broadcast ARP
// request from the virtual MAC with sender IP = target IP = `vip`, target MAC zero.
std::size_t build_carp_garp(std::span<uint8_t> out, uint8_t vhid, const Ip4 &vip);

} // namespace syncwall::ctl
