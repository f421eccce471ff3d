// The management socket: the daemon's side of mgmt_protocol.hpp, on the main lcore.
//
// Theory of operation: ControlLoop owns one MgmtServer and starts it at construction. Its
// LineServer (line_server.hpp) listens on the Unix stream socket `control.socket` (mode
// `control.socket_mode`) and bounds the connections (an idle timeout, a slot always kept
// for a new client); every request line it reads is answered here, on the ControlLoop's
// io_context, so every command runs on the main lcore between the loop's other work. No
// input ends the process: every exception becomes an error reply.
//
// Results (the "result" member of an ok reply):
//   show states      {"states": [STATE...], "truncated": bool, "next": slot | null}: one
//                    page (state_pages.hpp); "cursor": next asks for the page after it
//                    STATE = {"id": "%016x", "creatorid": N, "interface": "lan" | "all",
//                     "direction": "in"|"out", "af": 4|6, "proto": N, "addr": [A0, A1],
//                     "port": [P0, P1], "src": PEER, "dst": PEER, "age": s, "expires_in": s,
//                     "timeout": "tcp.established", "packets": [n, n], "bytes": [n, n],
//                     "rule": N | null, "origin": "local" | "peer"}
//                    PEER = {"state", "seqlo", "seqhi", "seqdiff", "max_win", "wscale"}
//                    (the key, peers and counters as in state.hpp)
//   show info        {"node", "hostid", "running", "uptime": s, "states": {"current", "limit",
//                     "inserts", "removals", "insert_exists", "insert_full"}, "counters":
//                     {"forwarded", "punted", "handed_off", "drops_total", "pflog_dropped"},
//                     "drops": {reason: n, ...},
//                     "ports": [{"name", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes"}],
//                     "workers": [{"polls", "idle_polls", "sleeps", "forwarded",
//                     "handed_off", "twin_steps"}] (one per worker lcore, in order;
//                     twin_steps: out passes made in one step, filter.hpp),
//                     "main_loop": {"passes", "longest_ms", "sum_ms", "buckets": [{"le_ms",
//                     "count"}]} (loop_stall.hpp), "memory": {"eal_heap_bytes",
//                     "state_table_bytes", "state_table_huge_page_bytes" (the part of the
//                     table the kernel backed with 2 MiB pages at start: table_memory.hpp)}}
//   show rules       {"rules": [{"number", "text", "source", "matches", "packets", "bytes",
//                     "states_created", "states"}], "acl_rules": n, "reloads": n}
//   show interfaces  {"interfaces": [{"name", "devargs", "port_id", "mac", "addresses",
//                     "mtu", "sync", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes"}]}
//   show carp        {"available": true, "preempt": bool, "demotion": n, "demotion_reasons":
//                     [{"reason", "value"}], "vhids": [{"vhid", "interface", "role":
//                     "init"|"backup"|"master", "advbase", "advskew", "effective_advskew",
//                     "advert_interval_ms", "master_down_ms" (the timers the advertised
//                     skew gives),
//                     "demote", "addresses": ["192.0.2.254/24"], "transitions", "last_reason",
//                     "adverts_sent", "adverts_received", "adverts_rejected": {reason: n},
//                     "advert_sources": {"ipv4": "192.0.2.2", "ipv6": "fe80::..."} (the
//                     families the vhid advertises on), "adverts_by_family": {"ipv4":
//                     {"sent", "received"}, "ipv6": {"sent", "received"}}}]}
//                    or {"available": false, "reason": "..."} without carp vhosts
//   carp demote|promote  the show carp result after the change
//   show sync        {"available": true, "enabled", "interface", "peer", "peer_resolved",
//                     "creatorid", "authenticated", "queue_depth", "lag_ms", "max_lag_ms",
//                     "sent": {action: n, "packets", "bytes"}, "received": {...}, "errors":
//                     {reason: n}, ...} or {"available": false, "reason": "..."} without a
//                     sync: section
//   reload           {"rules": n, "reloads": n}, once the new rules are in force
//   kill states      {"killed": n}
#pragma once

#include "control/mgmt/line_server.hpp"
#include "control/mgmt/mgmt_protocol.hpp"
#include "dataplane/dataplane.hpp"

#include <boost/asio/io_context.hpp>

#include <array>
#include <functional>
#include <string>
#include <string_view>

namespace syncwall::ctl {

class ControlLoop;

class MgmtServer {
  public:
    MgmtServer(boost::asio::io_context &io, dp::Dataplane &dp, ControlLoop &loop);
    ~MgmtServer();
    MgmtServer(const MgmtServer &) = delete;
    MgmtServer &operator=(const MgmtServer &) = delete;

    // Listen on dp.cfg.control.socket. Throws std::runtime_error naming the path and why.
    void start();
    // Close the listener and every connection, remove the socket file. Idempotent.
    void stop();

    // One request line -> one reply line (no newline). Never throws.
    std::string handle_line(std::string_view line);
    // The same, answering through `reply` on the main lcore: at once, or for a reload once
    // the new rules are in force (it takes a compile and a grace period).
    void handle_line(std::string_view line, std::function<void(std::string)> reply);
    // Run a parsed request; throws std::runtime_error with the reply's error text.
    Json execute(const Request &request);

    const std::string &path() const { return listener_.path(); }

  private:
    // A command's handler: runs the parsed request, returns its result or throws with the
    // error text.
    struct Handler {
        Command cmd;
        Json (*run)(MgmtServer &, const Request &);
    };
    static const std::array<Handler, 11> handlers;
    static dp::Dataplane &check_handlers(dp::Dataplane &dp);

    Json show_states(const StateFilter &filter);
    Json show_info();
    Json show_rules();
    Json show_interfaces();
    Json show_sync();
    Json show_carp();
    Json change_carp_demotion(const Request &request); // carp demote and carp promote
    Json sync_resync();
    void start_reload(std::function<void(std::string)> reply);
    Json kill_states(const StateFilter &filter);

    dp::Dataplane &dp_;
    ControlLoop &loop_;
    LineServer listener_;
};

} // namespace syncwall::ctl
