// Network address translation on the wire: rewriting a packet to a translated state's other
// key, and choosing the addresses and ports of a new translation.
//
// Theory of operation: a translated state has two keys (state.hpp). A packet that finds it
// by one key leaves with the addresses and ports of the other: translate_packet() writes
// the fields that differ (addresses, TCP/UDP ports, the ICMP echo id) and patches every
// checksum that covers them incrementally (RFC 1624): the IPv4 header's, TCP's and UDP's
// (their pseudo-header holds the addresses), ICMP's (the echo id) and ICMPv6's (both). An
// IPv4 UDP datagram sent without a checksum (0) keeps none. An ICMP error that quotes a
// translated connection is translated as pf does: the quoted header as its packet was
// translated (translate_icmp_error()), and the outer addresses that were the quoted ones.
// Pure functions over bytes (no DPDK), unit-tested without EAL.
#pragma once

#include "dataplane/packet.hpp"
#include "dataplane/state.hpp"

#include <array>
#include <cstddef>
#include <cstdint>

namespace syncwall::dp {

// Rewrite the packet whose L3 header starts at frame + d.l3_offset (and whose transport
// header, when d.has_l4, at frame + d.l4_offset) so that, travelling in direction `dir`, it
// has the key `to` (built in that direction's convention, as state_key() builds a key);
// update `d` to match. The key's family and protocol must be the packet's. `len`: bytes
// of the packet from `frame` on; a transport checksum beyond them (a quoted header cut
// short) is left alone.
void translate_packet(uint8_t *frame, std::size_t len, PacketDesc &d, const StateKey &to,
                      StateDirection dir);

// An ICMP or ICMPv6 error `d` (parsed from the `len` bytes at `frame`) travelling in
// direction `dir` quotes a packet of a translated connection, which travelled the other
// way: rewrite the quoted packet to the key `to` (its IP header checksum, and its
// transport checksum where the quote holds it, patched), the outer destination (source)
// where it was the quoted packet's source (destination), the outer IPv4 header checksum,
// and the ICMP checksum over the whole message. Updates `d`. False (nothing written) when
// the quote cannot be parsed.
bool translate_icmp_error(uint8_t *frame, std::size_t len, PacketDesc &d, const StateKey &to,
                          StateDirection dir);

// One's complement sum helper: the checksum field `sum` (network order, at `field`) after
// 16-bit words `from` became `to` (n bytes each, n even), RFC 1624 eqn. 3. `udp`: a result
// of 0 is sent as 0xffff (0 means "no checksum" to UDP).
void checksum_replace(uint8_t *field, const uint8_t *from, const uint8_t *to, unsigned n,
                      bool udp = false);

} // namespace syncwall::dp
