// The main lcore's loop: one Boost.Asio io_context plus the slow path.
//
// Theory of operation: app/main builds the Dataplane, launches the workers and then calls
// ControlLoop::run() on the main lcore. run() alternates between running ready Asio
// handlers (timers, signals, sockets of the control plane) and draining the punt rings,
// sleeping briefly when neither had work, until SIGINT/SIGTERM or request_stop().
// Everything here runs on the main lcore alone, so control-plane state needs no locks.
// The management socket (mgmt_server.hpp) is served from the same io_context.
#pragma once

#include "control/carp.hpp"
#include "control/mgmt_server.hpp"
#include "control/observability.hpp"
#include "control/slow_path.hpp"
#include "dataplane/dataplane.hpp"
#include "sync/sync_engine.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <string>
#include <vector>

namespace syncwall::ctl {

class ControlLoop {
  public:
    // `config_path` is re-read by reload().
    ControlLoop(dp::Dataplane &dp, std::string config_path);

    void run();
    void request_stop();

    // Re-read the configuration file and install its rules and tables as a transaction:
    // the new ruleset is compiled beside the running one and swapped in only if all of it
    // is valid. Returns an empty string on success, else the error (nothing changed).
    // Other sections take effect at the next start. SIGHUP calls this too.
    std::string reload();
    uint64_t reloads() const { return reloads_; }

    boost::asio::io_context &io() { return io_; }
    SlowPath &slow_path() { return slow_; }
    // CARP (inert without carp vhosts). pfsync calls carp().set_sync_bulk_pending().
    Carp &carp() { return carp_; }
    // pfsync, when configured (app/main owns it). When it shares the main lcore (lcores.sync
    // == lcores.main) run() polls it; either way the tick feeds its bulk-update state to CARP.
    void set_sync(sync::SyncEngine *engine) { sync_ = engine; }
    sync::SyncEngine *sync() { return sync_; }
    // Why the loop stopped ("SIGTERM", "request"); empty while running.
    const std::string &stop_reason() const { return stop_reason_; }

  private:
    void arm_tick();
    void wait_signals();
    // SIGTERM/SIGINT/request_stop: CARP bows out, the workers get a moment to put that on
    // the wire, then everything stops.
    void begin_stop(const char *reason);
    void stop_when_sent(std::chrono::steady_clock::time_point deadline);

    dp::Dataplane &dp_;
    boost::asio::io_context io_;
    SlowPath slow_;
    Carp carp_;
    boost::asio::signal_set signals_;
    boost::asio::signal_set hup_;
    boost::asio::steady_timer tick_;
    boost::asio::steady_timer stop_timer_;
    std::string stop_reason_;
    std::string config_path_;
    std::vector<std::unique_ptr<config::Config>> configs_; // kept alive for the rulesets
    uint64_t reloads_ = 0;
    sync::SyncEngine *sync_ = nullptr;
    MgmtServer mgmt_; // uses the members above, and goes before them
    Observability obs_; // last: it runs mgmt_'s commands, and goes first
};

// Counters summed over every lcore, as text (one "name value" pair per line, grouped).
std::string format_counters(const dp::Dataplane &dp);

} // namespace syncwall::ctl
