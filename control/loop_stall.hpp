// How long the main lcore's loop went without looking at its timers: one sample per pass of
// ControlLoop::run() (the handlers, the punt rings and pfsync it ran, not the idle sleep).
//
// Theory of operation: the control loop times each pass with the steady clock and calls
// record(); `show info` reports to_json() under "main_loop" and the metrics page turns that
// into a Prometheus histogram. A CARP backup at advbase 0, advskew 10 declares the master
// down after 117 ms of silence, so a pass that long on the master is a false takeover: the
// longest pass and the buckets above 50 ms are what an operator watches. Main lcore only.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace syncwall::ctl {

class LoopStallHistogram {
  public:
    // Upper bounds of the buckets, in microseconds (the last bucket is everything above).
    static constexpr std::array<uint64_t, 11> bounds_us = {
        100, 1'000, 2'000, 5'000, 10'000, 20'000, 50'000, 100'000, 200'000, 500'000, 1'000'000};

    void record(std::chrono::nanoseconds pass) {
        const uint64_t ns = pass.count() < 0 ? 0 : uint64_t(pass.count());
        std::size_t b = 0;
        while (b < bounds_us.size() && ns > bounds_us[b] * 1000)
            ++b;
        ++counts_[b];
        ++count_;
        sum_ns_ += ns;
        if (ns > longest_ns_) longest_ns_ = ns;
    }

    uint64_t count() const { return count_; }
    uint64_t longest_ns() const { return longest_ns_; }
    // Passes that took at most bounds_us[i] (cumulative, as Prometheus buckets are).
    uint64_t at_most(std::size_t i) const {
        uint64_t n = 0;
        for (std::size_t b = 0; b <= i && b < counts_.size(); ++b)
            n += counts_[b];
        return n;
    }

    // {"passes": n, "longest_ms": x, "sum_ms": x, "buckets": [{"le_ms": x, "count": n}...]}
    // with cumulative counts; the last bucket, le_ms null, counts every pass.
    template <class Json> Json to_json() const {
        Json buckets = Json::array();
        for (std::size_t i = 0; i < bounds_us.size(); ++i)
            buckets.push_back(
                Json{{"le_ms", double(bounds_us[i]) / 1000.0}, {"count", at_most(i)}});
        buckets.push_back(Json{{"le_ms", nullptr}, {"count", count_}});
        return Json{{"passes", count_},
                    {"longest_ms", double(longest_ns_) / 1e6},
                    {"sum_ms", double(sum_ns_) / 1e6},
                    {"buckets", std::move(buckets)}};
    }

  private:
    std::array<uint64_t, bounds_us.size() + 1> counts_{};
    uint64_t count_ = 0;
    uint64_t sum_ns_ = 0;
    uint64_t longest_ns_ = 0;
};

} // namespace syncwall::ctl
