// Management results as text: what syncwallctl prints without --json, shaped like pfctl.
//
// Pure functions from a command's JSON result (mgmt_server.hpp documents each one) to the
// lines an operator reads; no DPDK, no sockets, so every view is unit-tested from a
// hand-made result. A result that lacks a field or has one of the wrong type throws a
// Json exception (syncwallctl reports it as an unreadable reply).
//
//   show states      pfctl -ss:   all tcp 198.51.100.10:80 <- 192.0.2.10:40000
//   ESTABLISHED:ESTABLISHED
//                    with -v also the windows, age/expiry/counters and id lines (pfctl -vvss)
//   show info        pfctl -si:   Status, per-interface stats, State Table, Counters
//   show rules       pfctl -vvsr: @N rule text, then [ Matches ... ] lines
//   show interfaces  one block per port, ifconfig-like
#pragma once

#include "control/mgmt/mgmt_protocol.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace syncwall::ctl {

// "ESTABLISHED:ESTABLISHED", "SINGLE:MULTIPLE", "0:0" (ICMP): pfctl's pair of peer states,
// `first` printed first.
std::string peer_state_names(uint8_t proto, uint8_t first, uint8_t second);

// One state (an element of show states' "states"), one line, or four with `verbose`.
std::string format_state(const Json &state, bool verbose);
std::string format_states(const Json &result, bool verbose);
std::string format_info(const Json &result);
std::string format_rules(const Json &result);
std::string format_interfaces(const Json &result);
// show carp / show sync: `what` names the subsystem ("carp", "sync").
std::string format_availability(std::string_view what, const Json &result);
// show carp (and carp demote / promote), ifconfig carp's shape:
//   carp: preempt yes, demotion 32
//   	demoted by pfsync bulk update pending: 32
//   vhid 1 on lan: MASTER advbase 1 advskew 0 (advertised advskew 32, demote 32)
//   	inet 192.0.2.254/24
//   	2 transitions, last: no advertisement for 3 intervals
//   	adverts: 12 sent, 40 received, 1 rejected (bad_digest 1)
std::string format_carp(const Json &result);
std::string format_sync(const Json &result);
std::string format_reload(const Json &result);
std::string format_kill(const Json &result);

// What syncwall prints when it stops: show info's and show sync's counters, one "name
// value" pair per line ("port lan rx_packets N rx_bytes N ...", "drop REASON N", "worker W
// polls N ...", "sync_tx_packets N"); drops and the sync lines only where there are some.
std::string format_exit_counters(const Json &info, const Json &sync);

// The view of `cmd`'s result.
std::string format_result(Command cmd, const Json &result, bool verbose);

} // namespace syncwall::ctl
