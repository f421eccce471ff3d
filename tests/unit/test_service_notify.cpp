#include "control/service_notify.hpp"

#include <catch2/catch.hpp>

using namespace syncwall::ctl;
using namespace std::chrono_literals;

TEST_CASE("watchdog pings at least every half period and at most every quarter", "[service]") {
    WatchdogPacer pacer(2s);
    const auto t0 = WatchdogPacer::Clock::time_point{} + 100s;
    CHECK(pacer.due(t0)); // the first tick pings at once
    CHECK_FALSE(pacer.due(t0 + 100ms));
    CHECK_FALSE(pacer.due(t0 + 499ms));
    CHECK(pacer.due(t0 + 500ms)); // a quarter of 2 s
    CHECK_FALSE(pacer.due(t0 + 900ms));
    CHECK(pacer.due(t0 + 1000ms));
}

TEST_CASE("no watchdog period means no pings", "[service]") {
    WatchdogPacer pacer(0us);
    CHECK_FALSE(pacer.enabled());
    CHECK_FALSE(pacer.due(WatchdogPacer::Clock::now()));
}

TEST_CASE("JOURNAL_STREAM matches only the same device and inode", "[service]") {
    CHECK(journal_stream_is("8:12345", 8, 12345));
    CHECK_FALSE(journal_stream_is("8:12345", 8, 12346));
    CHECK_FALSE(journal_stream_is("9:12345", 8, 12345));
    CHECK_FALSE(journal_stream_is(nullptr, 8, 12345));
    CHECK_FALSE(journal_stream_is("", 0, 0));
    CHECK_FALSE(journal_stream_is("8:12345x", 8, 12345));
    CHECK_FALSE(journal_stream_is("garbage", 0, 0));
}

TEST_CASE("log lines carry a syslog priority only when stdout is the journal", "[service]") {
    CHECK(log_prefix(3, true) == "<3>");
    CHECK(log_prefix(6, true) == "<6>");
    CHECK(log_prefix(3, false).empty());
    CHECK(log_prefix(9, true).empty());
}
