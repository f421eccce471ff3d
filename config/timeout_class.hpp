// pf's timeout classes (PFTM_*), numbered as on the pfsync wire (docs/pfsync.md 1.11): one
// list for the rule parser (a rule's own timeouts), the state table and the sync role.
#pragma once

#include <cstddef>
#include <cstdint>

namespace syncwall::config {

enum class Timeout : uint8_t {
    tcp_first = 0,
    tcp_opening,
    tcp_established,
    tcp_closing,
    tcp_finwait,
    tcp_closed,
    udp_first,
    udp_single,
    udp_multiple,
    icmp_first,
    icmp_error,
    other_first,
    other_single,
    other_multiple,
    frag,
    interval,
    count_
};

// The classes a rule may set for its states (`timeout tcp.first 30`): all but the two
// global ones, frag and interval.
inline constexpr std::size_t state_timeout_count = std::size_t(Timeout::frag);

} // namespace syncwall::config
