// Management results flattened for DPDK telemetry: names telemetry accepts, values of the
// types it has, and the entry limit.
#include "control/mgmt/telemetry_view.hpp"

#include <catch2/catch.hpp>

using namespace syncwall::ctl;

TEST_CASE("nested results flatten to slash-joined names in document order", "[telemetry]") {
    const Json info{{"node", "fw-a"},
                    {"running", true},
                    {"states", {{"current", 3}, {"limit", 1000}}},
                    {"ports", Json::array({Json{{"name", "lan"}, {"rx_packets", 11}}})}};
    const std::vector<TelemetryEntry> want{
        {"node", std::string("fw-a")},        {"running", uint64_t(1)},
        {"states/current", uint64_t(3)},      {"states/limit", uint64_t(1000)},
        {"ports/0/name", std::string("lan")}, {"ports/0/rx_packets", uint64_t(11)},
    };
    CHECK(telemetry_entries(info, 256) == want);
}

TEST_CASE("values keep a type telemetry has", "[telemetry]") {
    const Json r{{"neg", -5},
                 {"big_neg", -5000000000LL},
                 {"frac", 0.25},
                 {"off", false},
                 {"none", nullptr},
                 {"empty", Json::object()},
                 {"list", Json::array()},
                 {"max", UINT64_MAX}};
    const std::vector<TelemetryEntry> want{
        {"neg", int32_t(-5)},          {"big_neg", std::string("-5000000000")},
        {"frac", std::string("0.25")}, {"off", uint64_t(0)},
        {"none", std::string("null")}, {"max", uint64_t(UINT64_MAX)},
    };
    CHECK(telemetry_entries(r, 256) == want);
}

TEST_CASE("characters telemetry refuses in a name become underscores", "[telemetry]") {
    const Json r{{"errors", {{"bad-ttl", 1}, {"a.b c", 2}}}};
    const auto e = telemetry_entries(r, 256);
    REQUIRE(e.size() == 2);
    CHECK(e[0].name == "errors/bad_ttl");
    CHECK(e[1].name == "errors/a_b_c");
}

TEST_CASE("more leaves than telemetry holds end with truncated", "[telemetry]") {
    Json r = Json::object();
    // An append, not `"k" + std::to_string(i)`: GCC 12 at -O3 flags that inlined prepend
    // with a false -Wrestrict (GCC bug 105329), which broke the release build (-Werror).
    for (int i = 0; i < 10; i++) {
        std::string key = "k";
        key += std::to_string(i);
        r[key] = i;
    }
    const auto e = telemetry_entries(r, 4);
    REQUIRE(e.size() == 4);
    CHECK(e[2].name == "k2");
    CHECK(e[3] == TelemetryEntry{"truncated", uint64_t(1)});
    CHECK(telemetry_entries(r, 10).size() == 10);
}
