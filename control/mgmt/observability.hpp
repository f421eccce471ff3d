// DPDK telemetry and Prometheus for the main lcore: both read the management results.
//
// Theory of operation: ControlLoop owns one Observability beside its MgmtServer. start()
// publishes a first telemetry snapshot, arms a timer that republishes every
// publish_interval, and, when control.metrics_listen is set, starts the MetricsServer. Both
// get their numbers from MgmtServer::execute (show info, show carp, show sync), on the main
// lcore, so a counter reads the same in syncwallctl, dpdk-telemetry.py and /metrics, and
// each command synchronises with the workers as mgmt_server.hpp says. Telemetry replies come
// from the last snapshot (telemetry.hpp: DPDK calls them on its own thread); a scrape runs
// the commands afresh.
#pragma once

#include "config/config.hpp"
#include "control/mgmt/metrics_server.hpp"
#include "control/mgmt/mgmt_protocol.hpp"
#include "control/mgmt/telemetry.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace syncwall::ctl {

class MgmtServer;

class Observability {
  public:
    static constexpr std::chrono::milliseconds publish_interval{500};

    Observability(boost::asio::io_context &io, const config::ControlConfig &cfg, MgmtServer &mgmt);
    ~Observability();
    Observability(const Observability &) = delete;
    Observability &operator=(const Observability &) = delete;

    // Throws std::runtime_error naming control.metrics_listen if it cannot listen.
    void start();
    // Stop publishing (telemetry then answers "not running") and close the metrics server.
    void stop();

    // The /metrics page as it would be served now.
    std::string metrics_text();

  private:
    void arm();
    void publish();
    // The result of a show command, or {"available": false, "reason": why} if it failed.
    Json result_of(Command cmd);

    MgmtServer &mgmt_;
    std::string metrics_listen_; // empty: no metrics server
    TelemetryPublisher telemetry_;
    boost::asio::steady_timer timer_;
    std::unique_ptr<MetricsServer> metrics_;
    bool running_ = false;
};

} // namespace syncwall::ctl
