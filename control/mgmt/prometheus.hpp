// The Prometheus view: what GET /metrics answers, as a pure function of the JSON results of
// show info, show carp and show sync (mgmt_server.hpp documents each one).
//
// Theory of operation: metrics_server.hpp runs the three commands on the main lcore for each
// scrape and hands their results here; this file turns them into the text exposition format,
// version 0.0.4 (one "# HELP" and one "# TYPE" line per metric family, then its samples as
// `name{label="value",...} number`, label values escaped). No DPDK, no sockets: the whole
// page is unit-tested from hand-made results. Building from the control socket's results
// means a counter has one definition whichever way it is read (syncwallctl, telemetry,
// Prometheus).
//
// A result that says {"available": false} (CARP or pfsync not running) contributes nothing;
// a missing key or one of an unexpected type drops the samples that needed it, never the
// page: a scrape must not fail because one subsystem changed shape.
//
// Families (all prefixed syncwall_):
//   info{node,hostid} 1, running, uptime_seconds
//   interface_packets_total{interface,direction="rx"|"tx"}, interface_bytes_total{...}
//   drops_total{reason}, forwarded_packets_total, punted_packets_total,
//   handed_off_packets_total, pflog_dropped_total
//   states, states_limit, state_inserts_total, state_removals_total,
//   state_insert_failures_total{reason="exists"|"full"}, state_table_bytes,
//   state_table_huge_page_bytes
//   sync_enabled, sync_packets_total{direction="sent"|"received"}, sync_bytes_total{...},
//   sync_messages_total{direction,action}, sync_errors_total{reason}, sync_stale_total,
//   sync_ring_full_total, sync_queue_depth, sync_lag_seconds, sync_bulk_status{status} (1 for
//   the current one), sync_bulk_requests_total, sync_bulk_received_states_total,
//   sync_bulk_sending, sync_bulk_sent_states_total
//   carp_preempt, carp_demotion, carp_demotion_reason{reason}, and per {vhid,interface}:
//   carp_role (0 init, 1 backup, 2 master), carp_advbase_seconds, carp_advskew,
//   carp_effective_advskew, carp_demote, carp_transitions_total, carp_adverts_sent_total,
//   carp_adverts_received_total, carp_adverts_rejected_total{vhid,interface,reason}
#pragma once

#include "control/mgmt/mgmt_protocol.hpp"

#include <string>
#include <string_view>

namespace syncwall::ctl {

// The Content-Type of the page.
inline constexpr std::string_view prometheus_content_type =
    "text/plain; version=0.0.4; charset=utf-8";

// The whole exposition from the three results. Never throws on a result's shape.
std::string prometheus_text(const Json &info, const Json &carp, const Json &sync);

// A label value as it goes between the quotes: \ " and newline escaped.
std::string prometheus_escape_label(std::string_view value);
// A HELP text: \ and newline escaped (quotes stay as they are).
std::string prometheus_escape_help(std::string_view text);

} // namespace syncwall::ctl
