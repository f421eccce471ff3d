#include "control/control_loop.hpp"

#include "dataplane/idle.hpp"

#include <rte_cycles.h>

#include <csignal>
#include <sstream>

namespace syncwall::ctl {

namespace {
constexpr auto tick_interval = std::chrono::milliseconds(100);
// The control plane tolerates a millisecond of latency; it never busy-polls.
constexpr uint32_t main_max_sleep_us = 1000;
} // namespace

ControlLoop::ControlLoop(dp::Dataplane &dp)
    : dp_(dp), slow_(dp), signals_(io_, SIGINT, SIGTERM), tick_(io_) {
    signals_.async_wait([this](const boost::system::error_code &ec, int sig) {
        if (ec) return;
        stop_reason_ = sig == SIGINT ? "SIGINT" : "SIGTERM";
        dp_.stopping.store(true);
    });
    arm_tick();
}

void ControlLoop::arm_tick() {
    tick_.expires_after(tick_interval);
    tick_.async_wait([this](const boost::system::error_code &ec) {
        if (ec) return;
        slow_.tick(SlowPath::Clock::now());
        arm_tick();
    });
}

void ControlLoop::request_stop() {
    if (stop_reason_.empty()) stop_reason_ = "request";
    dp_.stopping.store(true);
}

void ControlLoop::run() {
    dp::IdleBackoff idle(true, main_max_sleep_us, 64);
    while (!dp_.stopping.load()) {
        unsigned work = unsigned(io_.poll());
        work += slow_.drain(SlowPath::Clock::now());
        if (const uint32_t us = idle.after_poll(work); us != 0) rte_delay_us_sleep(us);
    }
    signals_.cancel();
    tick_.cancel();
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
    for (std::size_t r = 0; r < dp::drop_reason_count; r++)
        if (t.drops[r] != 0) o << "drop " << dp::drop_reason_names[r] << " " << t.drops[r] << "\n";
    o << "drops_total " << t.total_drops() << "\n";
    for (std::size_t w = 0; w < dp.worker_counters.size(); w++) {
        const auto &c = dp.worker_counters[w];
        o << "worker " << w << " polls " << c.polls.get() << " idle_polls " << c.idle_polls.get()
          << " sleeps " << c.sleeps.get() << " forwarded " << c.forwarded.get() << "\n";
    }
    return o.str();
}

} // namespace syncwall::ctl
