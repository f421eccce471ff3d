#include "control/control_loop.hpp"
#include "control/service_notify.hpp"

#include "config/loader.hpp"
#include "config/pf_rule.hpp"
#include "dataplane/idle.hpp"
#include "dataplane/ruleset.hpp"
#include "dataplane/state_table.hpp"

#include <rte_cycles.h>

#include <rte_lcore.h>
#include <rte_ring.h>

#include <csignal>
#include <cstdio>
#include <sstream>

namespace syncwall::ctl {

namespace {
constexpr auto tick_interval = std::chrono::milliseconds(100);
// The control plane tolerates a millisecond of latency; it never busy-polls.
constexpr uint32_t main_max_sleep_us = 1000;
} // namespace

ControlLoop::ControlLoop(dp::Dataplane &dp, std::string config_path)
    : dp_(dp), slow_(dp), carp_(io_, dp, slow_), signals_(io_, SIGINT, SIGTERM), hup_(io_, SIGHUP),
      tick_(io_), stop_timer_(io_),
      config_path_(std::move(config_path)), mgmt_(io_, dp, *this),
      obs_(io_, dp.cfg.control, mgmt_) {
    signals_.async_wait([this](const boost::system::error_code &ec, int sig) {
        if (ec) return;
        begin_stop(sig == SIGINT ? "SIGINT" : "SIGTERM");
    });
    wait_signals();
    arm_tick();
    mgmt_.start(); // throws, naming control.socket, if it cannot listen
    obs_.start(); // telemetry; throws, naming control.metrics_listen, if it cannot listen
}

void ControlLoop::wait_signals() {
    hup_.async_wait([this](const boost::system::error_code &ec, int) {
        if (ec) return;
        const std::string err = reload();
        if (err.empty())
            std::printf("syncwall: reloaded %s\n", config_path_.c_str());
        else
            std::printf("syncwall: reload failed, still running the previous rules: %s\n", err.c_str());
        std::fflush(stdout);
        wait_signals();
    });
}

std::string ControlLoop::reload() {
    try {
        auto next = std::make_unique<config::Config>(config::load_config(config_path_));
        if (next->interfaces.size() != dp_.cfg.interfaces.size())
            return config_path_ + ": interfaces changed: a restart is needed to apply that";
        for (std::size_t i = 0; i < next->interfaces.size(); i++)
            if (next->interfaces[i].name != dp_.cfg.interfaces[i].name)
                return config_path_ + ": interfaces changed: a restart is needed to apply that";
        auto rules = config::parse_pf_rules(*next);
        const std::string name = "syncwall_acl" + std::to_string(reloads_ + 1);
        auto rs = std::make_unique<dp::Ruleset>(*next, std::move(rules), dp_.worker_count(), name,
                                                int(rte_socket_id()));
        dp_.publish_ruleset(std::move(rs));
        configs_.push_back(std::move(next));
        reloads_++;
        return {};
    } catch (const std::exception &e) {
        return e.what();
    }
}

void ControlLoop::arm_tick() {
    tick_.expires_after(tick_interval);
    tick_.async_wait([this](const boost::system::error_code &ec) {
        if (ec) return;
        watchdog_tick(); // systemd's WatchdogSec: a hung main lcore stops these pings
        slow_.tick(SlowPath::Clock::now());
        // Sweep expired states incrementally: the whole table once per `interval`.
        const uint64_t ticks = uint64_t(dp_.cfg.timeouts.interval) * 1000 / tick_interval.count();
        dp_.expire_states(uint32_t(dp_.states->slots() / (ticks == 0 ? 1 : ticks) + 1));
        // A node still waiting for its bulk update stays demoted (it would be master with
        // an empty state table otherwise).
        if (sync_ != nullptr) carp_.set_sync_bulk_pending(sync_->bulk_pending());
        arm_tick();
    });
}

void ControlLoop::request_stop() { begin_stop("request"); }

void ControlLoop::begin_stop(const char *reason) {
    if (!stop_reason_.empty()) return; // already stopping
    stop_reason_ = reason;
    carp_.stop();
    // Worker 0 drains the control tx rings into its queue and flushes before it looks at
    // `stopping` again, so an empty ring means the bow-outs are on their way.
    stop_when_sent(std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
}

void ControlLoop::stop_when_sent(std::chrono::steady_clock::time_point deadline) {
    bool queued = false;
    for (const auto &p : dp_.ports)
        if (p.ctl_tx != nullptr && rte_ring_count(p.ctl_tx) != 0) queued = true;
    if (!queued || std::chrono::steady_clock::now() >= deadline) {
        dp_.stopping.store(true);
        return;
    }
    stop_timer_.expires_after(std::chrono::milliseconds(1));
    stop_timer_.async_wait([this, deadline](const boost::system::error_code &ec) {
        if (ec) {
            dp_.stopping.store(true);
            return;
        }
        stop_when_sent(deadline);
    });
}

void ControlLoop::run() {
    dp::IdleBackoff idle(true, main_max_sleep_us, 64);
    if (sync_ != nullptr) carp_.set_sync_bulk_pending(sync_->bulk_pending());
    carp_.start(); // the ports are up now
    while (!dp_.stopping.load()) {
        unsigned work = unsigned(io_.poll());
        work += slow_.drain(SlowPath::Clock::now());
        if (sync_ != nullptr && dp_.cfg.lcores.sync == dp_.cfg.lcores.main) work += sync_->poll_once();
        if (const uint32_t us = idle.after_poll(work); us != 0) rte_delay_us_sleep(us);
    }
    if (sync_ != nullptr && dp_.cfg.lcores.sync == dp_.cfg.lcores.main) sync_->finish();
    signals_.cancel();
    hup_.cancel();
    tick_.cancel();
    stop_timer_.cancel();
    carp_.stop(); // stopped another way than begin_stop(): no bow-out can leave any more
    obs_.stop();
    mgmt_.stop();
    io_.poll();
}

std::string format_counters(const dp::Dataplane &dp) {
    const dp::CounterTotals t = dp.totals();
    std::ostringstream o;
    for (std::size_t i = 0; i < dp.ports.size(); i++) {
        const auto &p = t.ports[i];
        o << "port " << dp.ports[i].name << " rx_packets " << p.rx_packets << " rx_bytes "
          << p.rx_bytes << " tx_packets " << p.tx_packets << " tx_bytes " << p.tx_bytes << "\n";
    }
    o << "forwarded " << t.forwarded << "\npunted " << t.punted << "\n";
    const auto st = dp.states->stats();
    o << "states " << dp.states->count() << "\nstate_inserts " << st.inserts
      << "\nstate_removals " << st.removals << "\n";
    for (std::size_t r = 0; r < dp::drop_reason_count; r++)
        if (t.drops[r] != 0) o << "drop " << dp::drop_reason_names[r] << " " << t.drops[r] << "\n";
    o << "drops_total " << t.total_drops() << "\n";
    o << "pflog_dropped " << t.pflog_dropped << "\n";
    for (std::size_t w = 0; w < dp.worker_counters.size(); w++) {
        const auto &c = dp.worker_counters[w];
        o << "worker " << w << " polls " << c.polls.get() << " idle_polls " << c.idle_polls.get()
          << " sleeps " << c.sleeps.get() << " forwarded " << c.forwarded.get() << "\n";
    }
    return o.str();
}

} // namespace syncwall::ctl
