// Frames the control plane builds: ARP, ICMP/ICMPv6 echo replies and errors, IPv6 ND.
//
// Pure byte-level builders (no DPDK, no allocation): the slow path (slow_path.hpp) calls
// them into mbuf data; unit tests call them into plain buffers. Every builder returns the
// number of bytes written, or 0 when `out` is too small.
#pragma once

#include "dataplane/arp.hpp"
#include "dataplane/frame_writer.hpp"
#include "dataplane/packet.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace syncwall::ctl {

using dp::ether_header_len;
using dp::Mac;
using dp::write_ether;
using Ip4 = std::array<uint8_t, 4>;
using Ip6 = std::array<uint8_t, 16>;

inline constexpr Mac broadcast_mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// A whole Ethernet + ARP frame (42 bytes).
inline constexpr std::size_t arp_frame_len = ether_header_len + dp::arp_len;
std::size_t build_arp(std::span<uint8_t> out, uint16_t op, const Mac &eth_dst, const Mac &sha,
                      const Ip4 &spa, const Mac &tha, const Ip4 &tpa);

// Turn a parsed ICMP echo request (IPv4) or ICMPv6 echo request, in place, into its reply:
// addresses swapped, type changed, TTL/hop limit 64, checksums recomputed. Ethernet
// addresses are left for the sender to fill. Returns false if `d` is not an echo request.
bool echo_request_to_reply(std::span<uint8_t> frame, const dp::PacketDesc &d);

// An IPv4 ICMP error (IP header + ICMP header + the start of the offending datagram, at
// most 576 bytes in all as RFC 1812 says), written at out[0] (no Ethernet header).
// `extra` is the 32-bit word after the checksum (next-hop MTU for "fragmentation needed").
std::size_t build_icmp4_error(std::span<uint8_t> out, uint8_t type, uint8_t code, uint32_t extra,
                              const Ip4 &src, const Ip4 &dst, std::span<const uint8_t> offending,
                              uint16_t ip_id);

// An ICMPv6 error (at most 1280 bytes in all, RFC 4443), written at out[0].
std::size_t build_icmp6_error(std::span<uint8_t> out, uint8_t type, uint8_t code, uint32_t extra,
                              const Ip6 &src, const Ip6 &dst, std::span<const uint8_t> offending);

// IPv6 neighbour solicitation for `target` to its solicited-node multicast group, with
// our link-layer address option. Written at out[0] (IPv6 packet, no Ethernet header).
std::size_t build_neighbour_solicitation(std::span<uint8_t> out, const Ip6 &src, const Ip6 &target,
                                         const Mac &our_mac);
// An NS or NA as those two write it: IPv6 header (40), ICMPv6 ND message (24) and one
// link-layer address option (8).
inline constexpr std::size_t nd_packet_len = 72;
// Solicited-node multicast address and its Ethernet address.
Ip6 solicited_node(const Ip6 &target);
Mac ipv6_multicast_mac(const Ip6 &group);

// IPv6 neighbour advertisement for `target` (one of ours) with the target link-layer
// address option; `solicited` sets the S flag, override the O flag.
std::size_t build_neighbour_advertisement(std::span<uint8_t> out, const Ip6 &target, const Ip6 &dst,
                                          const Mac &our_mac, bool solicited);

// The target address and, when present, the link-layer address option of a parsed
// neighbour solicitation or advertisement (`icmp` points at the ICMPv6 header).
struct NdMessage {
    Ip6 target{};
    bool has_lladdr = false;
    Mac lladdr{};
    bool solicited = false;
    bool override_flag = false; // NA: O, the advertised address replaces a cached one
};
bool parse_nd(std::span<const uint8_t> icmp, NdMessage &out);

// The RST that answers TCP segment `d` (pf's `block return` for TCP): from its destination
// to its source, ports swapped; seq = its ack if it carried ACK, else seq 0 with
// ack = its seq + length (+1 for SYN, +1 for FIN) and RST|ACK (RFC 793, "Reset
// Generation"). Written at out[0] as an IPv4 or IPv6 packet (no Ethernet header).
std::size_t build_tcp_rst(std::span<uint8_t> out, const dp::PacketDesc &d);
// The most build_tcp_rst writes: an IPv6 header (40) and a TCP header (20).
inline constexpr std::size_t max_rst_len = 60;

using dp::set_ipv4_checksum;

} // namespace syncwall::ctl
