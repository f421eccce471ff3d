// Sub-second failover: CARP at advbase 0 (timers, configuration, how show carp and the
// metrics page report them), the main loop's pass histogram, and the rule matching that a
// reload does off the main lcore.
#include "config/loader.hpp"
#include "config/pf_rule.hpp"
#include "control/carp/carp_vhost.hpp"
#include "control/loop_stall.hpp"
#include "control/mgmt/prometheus.hpp"
#include "control/mgmt/telemetry_view.hpp"
#include "control/mgmt/views.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

using namespace syncwall;
using namespace syncwall::ctl;
using namespace std::chrono_literals;
using Clock = CarpVhost::Clock;

namespace {

config::IpAddress ip(const std::string &text) {
    auto a = config::parse_ip_address(text);
    REQUIRE(a);
    return *a;
}

config::CarpVhostConfig vhost(uint8_t advbase, uint8_t advskew) {
    config::CarpVhostConfig c;
    c.vhid = 1;
    c.interface = "lan";
    c.addresses.push_back(config::IpPrefix{ip("192.0.2.254"), 24});
    c.advbase = advbase;
    c.advskew = advskew;
    c.pass = "syncwall-example";
    return c;
}

const Clock::time_point t0 = Clock::time_point{} + 1000s;

// 1/256 s as the steady clock counts it.
Clock::duration ticks(int64_t n) {
    return std::chrono::duration_cast<Clock::duration>(CarpVhost::Ticks(n));
}

const std::string head = "node:\n"
                         "  hostid: 1\n"
                         "interfaces:\n"
                         "  lan:\n"
                         "    devargs: net_null0\n"
                         "carp:\n"
                         "  vhosts:\n"
                         "    - {vhid: 1, interface: lan, addresses: [192.0.2.254/24], ";

std::string error_of(const std::string &yaml) {
    try {
        config::load_config_text(yaml, "config.yaml");
        return "";
    } catch (const config::ConfigError &e) {
        return e.what();
    }
}

} // namespace

TEST_CASE("carp timers at advbase 0: advskew/256 s between adverts, 3 of them to master down",
          "[carp][failover]") {
    // The lab's settings: master advskew 10, backup advskew 30.
    CHECK(carp_timer_ticks(0, 10) == 10);
    CHECK(carp_master_down_ticks(0, 10) == 30);
    CHECK(carp_ticks_ms(carp_timer_ticks(0, 10)) == 39.0625);
    CHECK(carp_ticks_ms(carp_master_down_ticks(0, 10)) == 117.1875);
    CHECK(carp_ticks_ms(carp_master_down_ticks(0, 30)) == 351.5625);
    // advbase 0 with advskew 0, as OpenBSD's carp_setrun treats it: 1/256 s, down after 3.
    CHECK(carp_timer_ticks(0, 0) == 1);
    CHECK(carp_master_down_ticks(0, 0) == 3);
    CHECK(carp_ticks_ms(carp_master_down_ticks(0, 0)) == 11.71875);
    // advbase >= 1 as OpenBSD (ip_carp.c 1.370): 3 x (advbase + advskew/256), the skew
    // tripled too; 1 and 40 give 3.46875 s (FreeBSD and ucarp: 3.15625 s).
    CHECK(carp_master_down_ticks(1, 40) == 3 * (256 + 40));
    CHECK(carp_ticks_ms(carp_master_down_ticks(1, 40)) == 3468.75);
    CHECK(carp_master_down_ticks(255, 254) == 3 * (255 * 256 + 254));
}

TEST_CASE("carp vhost at advbase 0: a backup takes over 3 x advskew/256 s after the last advert",
          "[carp][failover]") {
    CarpVhost b(vhost(0, 30), false, ip("10.0.0.2"), 0x2222);
    REQUIRE(b.start(t0).became == CarpRole::backup);
    CHECK(b.advert_interval() == CarpVhost::Ticks(30));
    CHECK(b.master_down_interval() == CarpVhost::Ticks(90));
    CHECK(b.next_deadline() == t0 + ticks(90));

    // The master's adverts (advbase 0, advskew 10) restart the timer each time.
    CarpAdvert ad;
    ad.vhid = 1;
    ad.advbase = 0;
    ad.advskew = 10;
    ad.counter = 0x1111;
    auto t = t0;
    for (int i = 0; i < 10; ++i) {
        t += ticks(10);
        CHECK(b.on_advert(ad, ip("10.0.0.1"), t).empty());
        CHECK(b.next_deadline() == t + ticks(90));
    }
    // A master at advbase 0 is never "too slow" for a backup at advbase 0 (OpenBSD guards
    // that rule with advbase != 0): no takeover from its adverts.
    CHECK(b.role() == CarpRole::backup);
    // Then the master dies: the backup waits 351.5625 ms, not a moment less.
    CHECK(b.on_timer(t + ticks(90) - 1ns).empty());
    const auto a = b.on_timer(t + ticks(90));
    CHECK(a.became == CarpRole::master);
    CHECK(a.reason == CarpTransitionReason::master_down);
    REQUIRE(a.advert);
    CHECK(a.advert->advbase == 0);
    CHECK(a.advert->advskew == 30);
}

TEST_CASE("carp vhost at advbase 0: a master advertises every advskew/256 s, every 1/256 s at 0",
          "[carp][failover]") {
    CarpVhost m(vhost(0, 10), false, ip("10.0.0.1"), 0x1111);
    m.start(t0);
    auto t = m.next_deadline();
    REQUIRE(t == t0 + ticks(30));
    REQUIRE(m.on_timer(t).became == CarpRole::master);
    for (int i = 0; i < 5; ++i) {
        CHECK(m.next_deadline() == t + ticks(10));
        t += ticks(10);
        CHECK(m.on_timer(t).advert);
    }
    CarpVhost z(vhost(0, 0), false, ip("10.0.0.1"), 0x3333);
    z.start(t0);
    CHECK(z.next_deadline() == t0 + ticks(3));
    REQUIRE(z.on_timer(t0 + ticks(3)).became == CarpRole::master);
    CHECK(z.next_deadline() == t0 + ticks(4));
}

TEST_CASE("carp at advbase 0: the lower advskew wins the election both ways", "[carp][failover]") {
    // Master 10, backup 30: the backup does not preempt, a master hearing 10 steps down.
    CarpVhost fast(vhost(0, 10), true, ip("10.0.0.1"), 0x1111);
    CarpVhost slow(vhost(0, 30), true, ip("10.0.0.2"), 0x2222);
    fast.start(t0);
    slow.start(t0);
    REQUIRE(slow.on_timer(slow.next_deadline()).became == CarpRole::master);
    // The faster node, preempting, takes over on the first advert it hears of the slower one.
    CarpAdvert ad;
    ad.vhid = 1;
    ad.advbase = 0;
    ad.advskew = 30;
    ad.counter = 0x2222;
    CHECK(fast.on_advert(ad, ip("10.0.0.2"), t0 + 1s).became == CarpRole::master);
    ad.advskew = 10;
    ad.counter = 0x1111;
    CHECK(slow.on_advert(ad, ip("10.0.0.1"), t0 + 1s).became == CarpRole::backup);
}

TEST_CASE("carp config: advbase 0 is accepted, 256 refused with the range", "[config][failover]") {
    const auto cfg = config::load_config_text(head + "advbase: 0, advskew: 10}\n", "config.yaml");
    REQUIRE(cfg.carp.vhosts.size() == 1);
    CHECK(cfg.carp.vhosts[0].advbase == 0);
    CHECK(cfg.carp.vhosts[0].advskew == 10);
    CHECK(config::load_config_text(head + "advbase: 0, advskew: 0}\n", "config.yaml")
              .carp.vhosts[0]
              .advbase == 0);
    CHECK(error_of(head + "advbase: 256}\n")
              .find("advbase: expected an integer 0..255, got "
                    "\"256\"") != std::string::npos);
    CHECK(error_of(head + "advbase: -1}\n").find("expected an integer 0..255") !=
          std::string::npos);
    CHECK(error_of(head + "advskew: 255}\n").find("expected an integer 0..254") !=
          std::string::npos);
}

namespace {

Json carp_result(double interval_ms, double down_ms) {
    return Json{
        {"available", true},
        {"preempt", false},
        {"demotion", 0},
        {"demotion_reasons", Json::array()},
        {"vhids", Json::array({Json{{"vhid", 1},
                                    {"interface", "lan"},
                                    {"role", "master"},
                                    {"advbase", 0},
                                    {"advskew", 10},
                                    {"effective_advskew", 10},
                                    {"advert_interval_ms", interval_ms},
                                    {"master_down_ms", down_ms},
                                    {"demote", 0},
                                    {"addresses", {"192.0.2.254/24"}},
                                    {"transitions", 1},
                                    {"last_reason", ""},
                                    {"adverts_sent", 5},
                                    {"adverts_received", 0},
                                    {"adverts_rejected", Json::object()}}})},
    };
}

Json info_with_loop(const LoopStallHistogram &h) {
    return Json{
        {"node", "fw-a"},
        {"hostid", 1},
        {"running", true},
        {"uptime", 10},
        {"states",
         {{"current", 0},
          {"limit", 10},
          {"inserts", 0},
          {"removals", 0},
          {"insert_exists", 0},
          {"insert_full", 0}}},
        {"counters", {{"forwarded", 0}, {"punted", 0}, {"drops_total", 0}, {"pflog_dropped", 0}}},
        {"drops", Json::object()},
        {"ports", Json::array()},
        {"main_loop", h.to_json<Json>()}};
}

Json unavailable() {
    return Json{{"available", false}, {"reason", "off"}};
}

} // namespace

TEST_CASE("show carp prints the advert interval and master-down time in milliseconds",
          "[mgmt][failover]") {
    const std::string text = format_carp(carp_result(39.0625, 117.1875));
    CHECK(text.find("vhid 1 on lan: MASTER advbase 0 advskew 10\n"
                    "\tadvert every 39.062 ms, master down after 117.188 ms\n") !=
          std::string::npos);
}

TEST_CASE("the metrics page gives the CARP timers in seconds", "[prometheus][failover]") {
    const std::string page =
        prometheus_text(unavailable(), carp_result(39.0625, 117.1875), unavailable());
    CHECK(page.find("# TYPE syncwall_carp_advert_interval_seconds gauge\n"
                    "syncwall_carp_advert_interval_seconds{vhid=\"1\",interface=\"lan\"} "
                    "0.0390625\n") != std::string::npos);
    CHECK(page.find("syncwall_carp_master_down_seconds{vhid=\"1\",interface=\"lan\"} "
                    "0.1171875\n") != std::string::npos);
}

TEST_CASE("the main loop's passes fall into cumulative buckets; the longest is kept",
          "[failover]") {
    LoopStallHistogram h;
    h.record(50us);   // <= 0.1 ms
    h.record(1ms);    // <= 1 ms (bounds are inclusive)
    h.record(1001us); // <= 2 ms
    h.record(120ms);  // <= 200 ms: a pass long enough for a false takeover at advskew 10
    h.record(3s);     // above every bound
    h.record(-5ns);   // a clock oddity counts as 0
    CHECK(h.count() == 6);
    CHECK(h.longest_ns() == 3'000'000'000u);
    CHECK(h.at_most(0) == 2);
    CHECK(h.at_most(1) == 3);
    CHECK(h.at_most(2) == 4);
    CHECK(h.at_most(6) == 4);  // <= 50 ms
    CHECK(h.at_most(8) == 5);  // <= 200 ms
    CHECK(h.at_most(10) == 5); // <= 1 s
    const Json j = h.to_json<Json>();
    CHECK(j.at("passes") == 6);
    CHECK(j.at("longest_ms").get<double>() == 3000.0);
    REQUIRE(j.at("buckets").size() == LoopStallHistogram::bounds_us.size() + 1);
    CHECK(j.at("buckets")[7].at("le_ms").get<double>() == 100.0);
    CHECK(j.at("buckets")[7].at("count") == 4);
    CHECK(j.at("buckets").back().at("le_ms").is_null());
    CHECK(j.at("buckets").back().at("count") == 6);
}

TEST_CASE("show info and the metrics page report the main loop's longest pass and histogram",
          "[mgmt][prometheus][failover]") {
    LoopStallHistogram h;
    h.record(500us);
    h.record(80ms);
    h.record(2ms);
    const Json info = info_with_loop(h);
    const std::string text = format_info(info);
    CHECK(text.find("Main loop\n") != std::string::npos);
    CHECK(text.find("longest pass") != std::string::npos);
    CHECK(text.find("80.000 ms") != std::string::npos);
    CHECK(text.find("  passes over 50 ms                      1\n") != std::string::npos);

    const std::string page = prometheus_text(info, unavailable(), unavailable());
    CHECK(page.find("# TYPE syncwall_main_loop_pass_seconds histogram\n") != std::string::npos);
    CHECK(page.find("syncwall_main_loop_pass_seconds_bucket{le=\"0.001\"} 1\n") !=
          std::string::npos);
    CHECK(page.find("syncwall_main_loop_pass_seconds_bucket{le=\"0.05\"} 2\n") !=
          std::string::npos);
    CHECK(page.find("syncwall_main_loop_pass_seconds_bucket{le=\"0.1\"} 3\n") != std::string::npos);
    CHECK(page.find("syncwall_main_loop_pass_seconds_bucket{le=\"+Inf\"} 3\n") !=
          std::string::npos);
    CHECK(page.find("syncwall_main_loop_pass_seconds_count 3\n") != std::string::npos);
    CHECK(page.find("syncwall_main_loop_pass_seconds_sum 0.0825\n") != std::string::npos);
    CHECK(page.find("syncwall_main_loop_longest_pass_seconds 0.08\n") != std::string::npos);
}

namespace {

std::vector<config::PfRule> rules_of(const std::vector<std::string> &lines) {
    std::vector<config::PfRule> out;
    for (const auto &l : lines) {
        out.push_back(
            config::parse_pf_rule(l, config::SourcePos{"fw.yaml", 1, 1}, {"lan", "wan"}, {}));
        out.back().number = uint32_t(out.size() - 1);
    }
    return out;
}

// What a reload did before: for each old rule, the first untaken identical new rule.
std::vector<uint32_t> pairwise(const std::vector<config::PfRule> &old,
                               const std::vector<config::PfRule> &next) {
    std::vector<uint32_t> out(old.size(), config::no_match);
    std::vector<bool> taken(next.size(), false);
    for (std::size_t i = 0; i < old.size(); i++)
        for (std::size_t j = 0; j < next.size(); j++)
            if (!taken[j] && config::same_filter(old[i], next[j])) {
                out[i] = uint32_t(j);
                taken[j] = true;
                break;
            }
    return out;
}

} // namespace

TEST_CASE("a reload keeps each state's rule where an identical rule remains, duplicates in order",
          "[failover][pf_rule]") {
    const auto old =
        rules_of({"pass in on lan proto tcp from 10.0.0.1 to any port 22", "block in all",
                  "pass in on lan proto tcp from 10.0.0.1 to any port 22",
                  "pass out on wan proto udp to 192.0.2.1 port 53",
                  "pass in on lan proto tcp from 10.0.0.9 to any port 80"});
    // Reordered, one duplicate gone, one rule changed (port 80 -> 81), one written another
    // way that filters alike (the same rule, extra spaces).
    const auto next = rules_of({"block in all", "pass out   on wan proto udp to 192.0.2.1 port 53",
                                "pass in on lan proto tcp from 10.0.0.1 to any port 22",
                                "pass in on lan proto tcp from 10.0.0.9 to any port 81"});
    const auto m = config::match_rules(old, next);
    CHECK(m == std::vector<uint32_t>{2, 0, config::no_match, 1, config::no_match});
    CHECK(m == pairwise(old, next));
    CHECK(config::match_rules({}, next).empty());
    CHECK(config::match_rules(old, {}) == std::vector<uint32_t>(old.size(), config::no_match));
}

TEST_CASE("reload rule matching agrees with the pairwise comparison on random rulesets",
          "[failover][pf_rule]") {
    std::mt19937 rng(18);
    auto random_rules = [&](std::size_t n) {
        std::vector<std::string> lines;
        for (std::size_t i = 0; i < n; i++) {
            const unsigned a = rng() % 6, p = rng() % 4;
            lines.push_back(std::string(rng() % 3 == 0 ? "block" : "pass") + " in on " +
                            (rng() % 2 ? "lan" : "wan") + " proto tcp from 10.0.0." +
                            std::to_string(a) + " to any port " + std::to_string(20 + p));
        }
        return rules_of(lines);
    };
    for (int round = 0; round < 20; round++) {
        const auto old = random_rules(30), next = random_rules(30);
        CHECK(config::match_rules(old, next) == pairwise(old, next));
    }
}

TEST_CASE("DPDK telemetry gives the CARP timers in milliseconds", "[telemetry][failover]") {
    const auto entries = telemetry_entries(carp_result(39.0625, 117.1875), 256);
    const TelemetryEntry interval{"vhids/0/advert_interval_ms", std::string("39.0625")};
    const TelemetryEntry down{"vhids/0/master_down_ms", std::string("117.1875")};
    CHECK(std::find(entries.begin(), entries.end(), interval) != entries.end());
    CHECK(std::find(entries.begin(), entries.end(), down) != entries.end());
}
