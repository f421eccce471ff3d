// service_notify: what syncwall tells its service manager (systemd's sd_notify protocol).
// The main lcore calls ready() once the ports are up and watchdog_tick() from the control
// loop's tick; a hung control loop stops the WATCHDOG=1 pings and systemd restarts it.
// Without NOTIFY_SOCKET (started by hand, or by the tests) every call does nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace syncwall::ctl {

// Decides when to ping: at most once a quarter of the watchdog period, so that a ping
// reaches systemd well inside half the period even when a tick runs late. Pure: time is
// passed in.
class WatchdogPacer {
  public:
    using Clock = std::chrono::steady_clock;
    explicit WatchdogPacer(std::chrono::microseconds period) : period_(period) {}
    bool enabled() const { return period_.count() > 0; }
    bool due(Clock::time_point now);

  private:
    std::chrono::microseconds period_;
    Clock::time_point last_{};
    bool sent_ = false;
};

// True when JOURNAL_STREAM ("DEV:INODE") names the file that fd refers to: stdout is then
// the journal, and log lines carry syslog priority prefixes ("<3>").
bool journal_stream_is(const char *journal_stream, uint64_t dev, uint64_t ino);

// The prefix for a log line of a syslog priority (0..7) on stdout/stderr: "<N>" when
// that stream is the journal, "" otherwise. Computed once per process.
std::string_view log_prefix(int priority);
std::string_view log_prefix(int priority, bool journal); // the same, told where stdout goes

void notify_ready();  // READY=1 and a STATUS line
void watchdog_tick(); // WATCHDOG=1 when due (paced by WatchdogPacer)

} // namespace syncwall::ctl
