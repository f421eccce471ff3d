#include "control/service_notify.hpp"

#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace syncwall::ctl {

bool WatchdogPacer::due(Clock::time_point now) {
    if (!enabled()) return false;
    if (sent_ && now - last_ < period_ / 4) return false;
    sent_ = true;
    last_ = now;
    return true;
}

bool journal_stream_is(const char *journal_stream, uint64_t dev, uint64_t ino) {
    if (journal_stream == nullptr || *journal_stream == '\0') return false;
    unsigned long long d = 0, i = 0;
    char tail = 0;
    if (std::sscanf(journal_stream, "%llu:%llu%c", &d, &i, &tail) != 2) return false;
    return d == dev && i == ino;
}

namespace {
bool stdout_is_journal() {
    struct stat st {};
    if (fstat(STDOUT_FILENO, &st) != 0) return false;
    return journal_stream_is(std::getenv("JOURNAL_STREAM"), uint64_t(st.st_dev),
                             uint64_t(st.st_ino));
}
} // namespace

std::string_view log_prefix(int priority) {
    static const bool journal = stdout_is_journal();
    return log_prefix(priority, journal);
}

std::string_view log_prefix(int priority, bool journal) {
    static constexpr std::array<std::string_view, 8> prefixes{"<0>", "<1>", "<2>", "<3>",
                                                              "<4>", "<5>", "<6>", "<7>"};
    if (!journal || priority < 0 || priority > 7) return {};
    return prefixes[std::size_t(priority)];
}

void notify_ready() {
    sd_notify(0, "READY=1\nSTATUS=ports up, forwarding");
}

void watchdog_tick() {
    static WatchdogPacer pacer = [] {
        uint64_t usec = 0;
        if (sd_watchdog_enabled(0, &usec) <= 0) usec = 0;
        return WatchdogPacer(std::chrono::microseconds(usec));
    }();
    if (pacer.due(WatchdogPacer::Clock::now())) sd_notify(0, "WATCHDOG=1");
}

} // namespace syncwall::ctl
