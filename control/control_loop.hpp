// The main lcore's loop: one Boost.Asio io_context plus the slow path.
//
// Theory of operation: app/main builds the Dataplane, launches the workers and then calls
// ControlLoop::run() on the main lcore. run() alternates between running ready Asio
// handlers (timers, signals, sockets of the control plane) and draining the punt rings,
// sleeping briefly when neither had work, until SIGINT/SIGTERM or request_stop().
// Everything here runs on the main lcore alone, so control-plane state needs no locks.
#pragma once

#include "control/slow_path.hpp"
#include "dataplane/dataplane.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <string>

namespace syncwall::ctl {

class ControlLoop {
  public:
    explicit ControlLoop(dp::Dataplane &dp);

    void run();
    void request_stop();

    boost::asio::io_context &io() { return io_; }
    SlowPath &slow_path() { return slow_; }
    // Why the loop stopped ("SIGTERM", "request"); empty while running.
    const std::string &stop_reason() const { return stop_reason_; }

  private:
    void arm_tick();

    dp::Dataplane &dp_;
    boost::asio::io_context io_;
    SlowPath slow_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer tick_;
    std::string stop_reason_;
};

// Counters summed over every lcore, as text (one "name value" pair per line, grouped).
std::string format_counters(const dp::Dataplane &dp);

} // namespace syncwall::ctl
