// The adaptive idle policy: how long a poll-mode lcore sleeps after finding no work.
//
// Busy polling is the production default (lowest latency, one core per lcore). On a small
// machine that runs two instances and test traffic on two cores, lcores instead back off:
// after `spin_polls` empty polls in a row they sleep, doubling the sleep up to `max_us`,
// and return to full-speed polling on the first packet. Pure: the caller does the sleeping.
#pragma once

#include <cstdint>

namespace syncwall::dp {

class IdleBackoff {
  public:
    IdleBackoff(bool adaptive, uint32_t max_us, uint32_t spin_polls = 256)
        : adaptive_(adaptive), max_us_(max_us == 0 ? 1 : max_us), spin_polls_(spin_polls) {}

    // Report one poll that found `work` items; returns microseconds to sleep (0: none).
    uint32_t after_poll(unsigned work) {
        if (!adaptive_ || work != 0) {
            empty_ = 0;
            sleep_us_ = 0;
            return 0;
        }
        if (++empty_ < spin_polls_) return 0;
        sleep_us_ =
            sleep_us_ == 0 ? first_sleep_us : (sleep_us_ * 2 > max_us_ ? max_us_ : sleep_us_ * 2);
        if (sleep_us_ > max_us_) sleep_us_ = max_us_;
        return sleep_us_;
    }

    static constexpr uint32_t first_sleep_us = 10;

  private:
    bool adaptive_;
    uint32_t max_us_;
    uint32_t spin_polls_;
    uint32_t empty_ = 0;
    uint32_t sleep_us_ = 0;
};

} // namespace syncwall::dp
