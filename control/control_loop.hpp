// The main lcore's loop: one Boost.Asio io_context plus the slow path.
//
// Theory of operation: app/main builds the Dataplane, launches the workers and then calls
// ControlLoop::run() on the main lcore. run() alternates between running ready Asio
// handlers (timers, signals, sockets of the control plane) and draining the punt rings,
// sleeping briefly when neither had work, until SIGINT/SIGTERM or request_stop().
// Everything here runs on the main lcore alone, so control-plane state needs no locks.
// The management socket (mgmt_server.hpp) is served from the same io_context.
//
// Nothing may hold the loop for long: at advbase 0 a backup takes over after about 100 ms
// without an advert. So a reload compiles off the main lcore (a DPDK control thread at a
// lower priority, which posts its result back to the io_context) and the swap runs a slice
// per pass of the loop (Dataplane::ruleset_swap_step). Each pass is timed into
// loop_stalls(), which `show info` and the metrics page report.
#pragma once

#include "control/carp/carp.hpp"
#include "control/loop_stall.hpp"
#include "control/mgmt/mgmt_server.hpp"
#include "control/mgmt/observability.hpp"
#include "control/slowpath/slow_path.hpp"
#include "dataplane/dataplane.hpp"
#include "sync/sync_engine.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <memory>
#include <pthread.h>
#include <string>
#include <vector>

namespace syncwall::ctl {

class ControlLoop {
  public:
    // `config_path` is re-read by reload().
    ControlLoop(dp::Dataplane &dp, std::string config_path);

    void run();
    void request_stop();

    ~ControlLoop();

    // Re-read the configuration file and install its rules and tables as a transaction:
    // the new ruleset is compiled beside the running one, off the main lcore, and swapped
    // in only if all of it is valid. `done` is called on the main lcore once the new rules
    // are in force and the old ones (and their Config) freed, with an empty string, or with
    // the error (nothing changed). A reload asked for while one is under way runs after
    // it, so that it reads the file as it is then. Other sections take effect at the next
    // start. SIGHUP calls this too.
    using ReloadDone = std::function<void(const std::string &error)>;
    void reload(ReloadDone done);
    uint64_t reloads() const { return reloads_; }
    const LoopStallHistogram &loop_stalls() const { return stalls_; }

    boost::asio::io_context &io() { return io_; }
    SlowPath &slow_path() { return slow_; }
    // CARP (inert without carp vhosts). pfsync calls carp().set_sync_bulk_pending().
    Carp &carp() { return carp_; }
    // pfsync, when configured (app/main owns it). When it shares the main lcore (lcores.sync
    // == lcores.main) run() polls it; either way the tick feeds its bulk-update state to CARP.
    void set_sync(sync::SyncEngine *engine) { sync_ = engine; }
    sync::SyncEngine *sync() { return sync_; }
    // The result of a command that takes no arguments (show info, show sync), as the
    // management socket would answer it; also after run() has returned.
    Json result_of(Command cmd) { return mgmt_.execute(Request{cmd, {}, 0}); }
    // Why the loop stopped ("SIGTERM", "request"); empty while running.
    const std::string &stop_reason() const { return stop_reason_; }

  private:
    struct Compiled; // what the compile thread hands back
    void start_reload_job();
    void on_compiled(std::shared_ptr<Compiled> result);
    // One slice of a ruleset swap under way; true when it did some work.
    bool reload_step();
    void finish_reload(const std::string &error);
    void join_compile_thread();

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
    // The Config of the running ruleset (null: still the one app/main loaded), and the one
    // of the ruleset a swap is replacing, freed with it after the workers' grace period.
    std::unique_ptr<config::Config> config_;
    std::unique_ptr<config::Config> retiring_config_;
    std::unique_ptr<config::Config> swapping_in_config_;
    std::vector<ReloadDone> reload_waiters_; // callers of the reload under way
    std::vector<ReloadDone> reload_queued_;  // callers that came during it: the next one
    bool swapping_ = false;
    bool compile_running_ = false;
    pthread_t compile_thread_{};
    uint64_t reload_jobs_ = 0; // names each attempt's ACL contexts
    uint64_t reloads_ = 0;
    LoopStallHistogram stalls_;
    sync::SyncEngine *sync_ = nullptr;
    MgmtServer mgmt_;   // uses the members above, and goes before them
    Observability obs_; // last: it runs mgmt_'s commands, and goes first
};

} // namespace syncwall::ctl
