// Every packet syncwall drops is dropped for one named reason (pf's PFRES_* idea).
// The list is the single source of truth: the enum and the name table are generated
// from it, and every lcore keeps one counter per reason.
#pragma once

#include "dataplane/reason_list.hpp"

#include <array>
#include <cstdint>
#include <string_view>

namespace syncwall::dp {

#define SYNCWALL_DROP_REASONS(X)                                                                   \
    X(frame_truncated, "frame shorter than an Ethernet header")                                    \
    X(vlan_truncated, "802.1Q tag truncated")                                                      \
    X(vlan_stacked, "more than one 802.1Q tag")                                                    \
    X(arp_malformed, "ARP packet malformed or not Ethernet/IPv4")                                  \
    X(ipv4_truncated, "IPv4 header truncated")                                                     \
    X(ipv4_bad_version, "IPv4 version field is not 4")                                             \
    X(ipv4_bad_header_length, "IPv4 header length below 20 or beyond the packet")                  \
    X(ipv4_bad_total_length, "IPv4 total length inconsistent with the frame")                      \
    X(ipv4_bad_checksum, "IPv4 header checksum wrong")                                             \
    X(ipv4_bad_options, "IPv4 options malformed")                                                  \
    X(ipv4_bad_source, "IPv4 source is multicast or limited broadcast")                            \
    X(ipv6_truncated, "IPv6 header truncated")                                                     \
    X(ipv6_bad_version, "IPv6 version field is not 6")                                             \
    X(ipv6_bad_payload_length, "IPv6 payload length beyond the frame")                             \
    X(ipv6_ext_truncated, "IPv6 extension header truncated")                                       \
    X(ipv6_ext_chain_too_long, "IPv6 extension header chain too long")                             \
    X(ipv6_bad_source, "IPv6 source is multicast")                                                 \
    X(fragment_too_short, "IP fragment too short to carry the transport header")                   \
    X(tcp_truncated, "TCP header truncated")                                                       \
    X(tcp_bad_offset, "TCP data offset below 5 or beyond the packet")                              \
    X(tcp_bad_options, "TCP options malformed")                                                    \
    X(tcp_bad_flags, "TCP flag combination never valid")                                           \
    X(udp_truncated, "UDP header truncated")                                                       \
    X(udp_bad_length, "UDP length inconsistent with the IP payload")                               \
    X(icmp_truncated, "ICMP header truncated")                                                     \
    X(icmp6_truncated, "ICMPv6 header truncated")                                                  \
    X(unsupported_ethertype, "Ethernet type not handled")                                          \
    X(vlan_unconfigured, "802.1Q-tagged frame on a port with no VLAN configured")                  \
    X(not_our_mac, "unicast frame for another MAC")                                                \
    X(carp_not_master, "frame for a CARP virtual MAC while this node is not its master")           \
    X(martian_src_this_network, "source in 0.0.0.0/8")                                             \
    X(martian_src_loopback, "loopback source (127.0.0.0/8, ::1)")                                  \
    X(martian_dst_this_network, "destination in 0.0.0.0/8 or ::")                                  \
    X(martian_dst_loopback, "loopback destination (127.0.0.0/8, ::1)")                             \
    X(martian_dst_link_local, "link-local destination not ours (169.254/16, fe80::/10)")           \
    X(martian_dst_multicast, "multicast destination in a unicast frame")                           \
    X(martian_dst_reserved, "destination in 240.0.0.0/4")                                          \
    X(martian_dst_broadcast, "broadcast destination (limited, or a connected network's)")          \
    X(no_route, "no route to the destination")                                                     \
    X(ttl_exceeded, "TTL or hop limit expired")                                                    \
    X(too_big, "packet larger than the egress MTU")                                                \
    X(frag_bad, "IP fragment empty, misaligned, too long or contradicting its datagram's end")     \
    X(frag_covered, "IPv4 fragment wholly overlapped by another of its datagram")                  \
    X(frag_overlap, "IPv6 datagram with overlapping fragments (RFC 5722)")                         \
    X(frag_too_many, "datagram in more fragments than reassembly takes")                           \
    X(frag_timeout, "datagram not reassembled within timeouts.frag")                               \
    X(frag_limit, "fragment evicted: limits.frags fragments held")                                 \
    X(frag_no_buffer, "no buffer to reassemble or refragment a datagram")                          \
    X(neighbour_queue_full, "too many packets waiting for next-hop resolution")                    \
    X(neighbour_hold_full, "packets held for next-hop resolution reached their total cap")         \
    X(neighbour_unresolved, "next hop did not answer address resolution")                          \
    X(punt_ring_full, "slow-path ring to the main lcore full")                                     \
    X(handoff_ring_full, "ring to the worker that owns the packet's state full")                   \
    X(to_us_unhandled, "packet for one of our addresses with no local service")                    \
    X(tx_ring_full, "transmit queue full")                                                         \
    X(proto_cksum, "transport checksum wrong (pf's PFRES_PROTCKSUM)")                              \
    X(filter_block, "blocked by a rule")                                                           \
    X(filter_state_mismatch, "did not fit the state's TCP windows")                                \
    X(filter_synack_bad_ack, "SYN|ACK not acknowledging the SYN it answers")                       \
    X(filter_state_limit, "state limit reached")                                                   \
    X(filter_state_collision, "state with the same key or id created meanwhile")                   \
    X(nat_exhausted, "translation: no free port or address in the pool")                           \
    X(nat_no_room, "translation: the state table was made without room for translated states")     \
    X(nat_family, "translation: the pool has no address of the packet's family")                   \
    X(filter_icmp_no_state, "ICMP error quoting no known connection")                              \
    X(filter_icmp_wrong_destination, "ICMP error not sent to the quoted packet's source")

SYNCWALL_REASON_LIST(DropReason, SYNCWALL_DROP_REASONS, drop_reason_count, drop_reason_names,
                     drop_reason_texts)

} // namespace syncwall::dp
