// The management socket: the daemon's side of mgmt_protocol.hpp, on the main lcore.
//
// Theory of operation: ControlLoop owns one MgmtServer and starts it at construction. It
// listens on the Unix stream socket `control.socket` (mode `control.socket_mode`, parent
// directory made if missing; a socket file left by a dead process is removed, one that a
// live process answers on is an error) and serves any number of clients with asynchronous
// accept, read and write on the ControlLoop's io_context: no threads of its own, so every
// command runs on the main lcore between the loop's other work. Per connection it holds
// one request line (at most max_request_bytes, see LineFramer) and one reply; requests on
// one connection are answered in order, one at a time. stop() closes everything and
// removes the socket file if it is still ours.
//
// Results (the "result" member of an ok reply):
//   show states      {"states": [STATE...], "truncated": bool}
//                    STATE = {"id": "%016x", "creatorid": N, "interface": "lan" | "all",
//                     "direction": "in"|"out", "af": 4|6, "proto": N, "addr": [A0, A1],
//                     "port": [P0, P1], "src": PEER, "dst": PEER, "age": s, "expires_in": s,
//                     "timeout": "tcp.established", "packets": [n, n], "bytes": [n, n],
//                     "rule": N | null, "origin": "local" | "peer"}
//                    PEER = {"state", "seqlo", "seqhi", "seqdiff", "max_win", "wscale"}
//                    (the key, peers and counters as in state.hpp)
//   show info        {"node", "hostid", "running", "uptime": s, "states": {"current", "limit",
//                     "inserts", "removals", "insert_exists", "insert_full"}, "counters":
//                     {"forwarded", "punted", "drops_total", "pflog_dropped"},
//                     "drops": {reason: n, ...},
//                     "ports": [{"name", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes"}],
//                     "main_loop": {"passes", "longest_ms", "sum_ms", "buckets": [{"le_ms",
//                     "count"}]} (loop_stall.hpp), "memory": {"eal_heap_bytes"}}
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
//   show sync        {"available": false, "reason": "..."} until pfsync exists
//   reload           {"rules": n, "reloads": n}, once the new rules are in force
//   kill states      {"killed": n}
#pragma once

#include "control/mgmt_protocol.hpp"
#include "dataplane/dataplane.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace syncwall::ctl {

class ControlLoop;

class MgmtServer {
  public:
    // At most this many clients at once; the next one is told so and closed.
    static constexpr std::size_t max_connections = 64;

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

    const std::string &path() const { return path_; }

  private:
    class Connection;

    void accept();
    Json show_states(const StateFilter &filter);
    Json show_info();
    Json show_rules();
    Json show_interfaces();
    Json show_sync();
    void start_reload(std::function<void(std::string)> reply);
    Json kill_states(const StateFilter &filter);

    boost::asio::io_context &io_;
    dp::Dataplane &dp_;
    ControlLoop &loop_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
    boost::asio::steady_timer retry_;
    std::vector<std::weak_ptr<Connection>> connections_;
    std::string path_;
    dev_t socket_dev_ = 0; // the file we bound, so that stop() removes ours only
    ino_t socket_ino_ = 0;
    bool listening_ = false;
};

} // namespace syncwall::ctl
