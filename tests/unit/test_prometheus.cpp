// The /metrics page from hand-made management results: the exposition format's rules
// (HELP and TYPE once per family, samples together, escaped labels) and each family's values,
// for results shaped as show info, show sync and show carp give them.
#include "control/mgmt/prometheus.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace syncwall::ctl;

namespace {

Json info_result() {
    return Json{
        {"node", "fw-a"},
        {"hostid", 167772161},
        {"running", true},
        {"uptime", 42},
        {"states",
         {{"current", 3},
          {"limit", 1000},
          {"inserts", 10},
          {"removals", 7},
          {"insert_exists", 1},
          {"insert_full", 2}}},
        {"counters", {{"forwarded", 100}, {"punted", 5}, {"drops_total", 9}, {"pflog_dropped", 4}}},
        {"drops", {{"filter_block", 6}, {"no_route", 3}}},
        {"memory",
         {{"eal_heap_bytes", 5000},
          {"state_table_bytes", 23068672},
          {"state_table_huge_page_bytes", 20971520}}},
        {"ports", Json::array({Json{{"name", "lan"},
                                    {"rx_packets", 11},
                                    {"rx_bytes", 1100},
                                    {"tx_packets", 12},
                                    {"tx_bytes", 1200}},
                               Json{{"name", "wan"},
                                    {"rx_packets", 21},
                                    {"rx_bytes", 2100},
                                    {"tx_packets", 22},
                                    {"tx_bytes", 2200}}})},
    };
}

Json sync_result() {
    return Json{
        {"available", true},
        {"enabled", true},
        {"interface", "sync"},
        {"peer", "224.0.0.240"},
        {"creatorid", 7},
        {"queue_depth", 12},
        {"lag_ms", 250},
        {"sent",
         {{"packets", 30},
          {"bytes", 3000},
          {"ins", 5},
          {"upd", 0},
          {"upd_c", 20},
          {"del_c", 4},
          {"upd_req", 0},
          {"bus", 2},
          {"clr", 0}}},
        {"received",
         {{"packets", 40},
          {"bytes", 4000},
          {"ins", 6},
          {"upd", 1},
          {"upd_c", 25},
          {"del_c", 3},
          {"del", 0},
          {"upd_req", 1},
          {"bus", 2},
          {"clr", 0},
          {"ins_ack", 0}}},
        {"errors", {{"bad_ttl", 2}, {"short", 1}}},
        {"stale", 8},
        {"ring_full", 0},
        {"bulk",
         {{"status", "receiving"},
          {"requests", 1},
          {"received_states", 500},
          {"sending", false},
          {"sent_states", 0}}},
    };
}

Json carp_result() {
    return Json{
        {"available", true},
        {"preempt", true},
        {"demotion", 240},
        {"demotion_reasons",
         Json::array({Json{{"reason", "bulk update pending"}, {"value", 240}}})},
        {"vhids", Json::array({Json{{"vhid", 1},
                                    {"interface", "lan"},
                                    {"role", "master"},
                                    {"advbase", 1},
                                    {"advskew", 0},
                                    {"effective_advskew", 240},
                                    {"demote", 240},
                                    {"addresses", {"192.0.2.1"}},
                                    {"transitions", 3},
                                    {"last_reason", "preempt"},
                                    {"adverts_sent", 100},
                                    {"adverts_received", 50},
                                    {"adverts_rejected", {{"bad_hmac", 2}}}},
                               Json{{"vhid", 2},
                                    {"interface", "wan"},
                                    {"role", "backup"},
                                    {"advbase", 1},
                                    {"advskew", 100},
                                    {"effective_advskew", 100},
                                    {"demote", 0},
                                    {"addresses", Json::array()},
                                    {"transitions", 1},
                                    {"last_reason", "start"},
                                    {"adverts_sent", 0},
                                    {"adverts_received", 70},
                                    {"adverts_rejected", Json::object()}},
                               Json{{"vhid", 3}, {"interface", "dmz"}, {"role", "init"}}})},
    };
}

Json unavailable() {
    return Json{{"available", false}, {"reason", "not in this build"}};
}

struct Page {
    std::map<std::string, std::string> help, type;
    std::map<std::string, double> samples; // "name{labels}" -> value
    std::vector<std::string> family_order;
};

// A strict reading of the text format: every line is a HELP, a TYPE or a sample of the
// family announced last; each family is announced once.
Page parse(const std::string &text) {
    Page page;
    std::istringstream in(text);
    std::string line, current;
    REQUIRE((text.empty() || text.back() == '\n'));
    while (std::getline(in, line)) {
        REQUIRE(!line.empty());
        if (line.rfind("# HELP ", 0) == 0) {
            const auto rest = line.substr(7);
            current = rest.substr(0, rest.find(' '));
            REQUIRE(page.help.count(current) == 0);
            page.help[current] = rest.substr(current.size() + 1);
            page.family_order.push_back(current);
        } else if (line.rfind("# TYPE ", 0) == 0) {
            const auto rest = line.substr(7);
            const auto name = rest.substr(0, rest.find(' '));
            REQUIRE(name == current);
            REQUIRE(page.type.count(name) == 0);
            page.type[name] = rest.substr(name.size() + 1);
        } else {
            REQUIRE(line[0] != '#');
            const auto space = line.rfind(' ');
            const auto key = line.substr(0, space);
            const auto name = key.substr(0, key.find('{'));
            INFO(line);
            REQUIRE(name == current);
            REQUIRE(page.type.count(name) == 1);
            REQUIRE(page.samples.count(key) == 0);
            page.samples[key] = std::stod(line.substr(space + 1));
        }
    }
    return page;
}

} // namespace

TEST_CASE("label values escape backslash, quote and newline", "[prometheus]") {
    CHECK(prometheus_escape_label("lan") == "lan");
    CHECK(prometheus_escape_label("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
    CHECK(prometheus_escape_help("say \"x\" \\ and\nmore") == "say \"x\" \\\\ and\\nmore");
}

TEST_CASE("show info becomes interface, drop, state and packet families", "[prometheus]") {
    const Page p = parse(prometheus_text(info_result(), unavailable(), unavailable()));
    CHECK(p.samples.at("syncwall_info{node=\"fw-a\",hostid=\"167772161\"}") == 1);
    CHECK(p.samples.at("syncwall_running") == 1);
    CHECK(p.samples.at("syncwall_uptime_seconds") == 42);
    CHECK(p.samples.at("syncwall_interface_packets_total{interface=\"lan\",direction=\"rx\"}") ==
          11);
    CHECK(p.samples.at("syncwall_interface_packets_total{interface=\"lan\",direction=\"tx\"}") ==
          12);
    CHECK(p.samples.at("syncwall_interface_bytes_total{interface=\"wan\",direction=\"rx\"}") ==
          2100);
    CHECK(p.samples.at("syncwall_interface_bytes_total{interface=\"wan\",direction=\"tx\"}") ==
          2200);
    CHECK(p.samples.at("syncwall_drops_total{reason=\"filter_block\"}") == 6);
    CHECK(p.samples.at("syncwall_drops_total{reason=\"no_route\"}") == 3);
    CHECK(p.samples.at("syncwall_forwarded_packets_total") == 100);
    CHECK(p.samples.at("syncwall_punted_packets_total") == 5);
    CHECK(p.samples.at("syncwall_pflog_dropped_total") == 4);
    CHECK(p.samples.at("syncwall_states") == 3);
    CHECK(p.samples.at("syncwall_states_limit") == 1000);
    CHECK(p.samples.at("syncwall_state_inserts_total") == 10);
    CHECK(p.samples.at("syncwall_state_removals_total") == 7);
    CHECK(p.samples.at("syncwall_state_insert_failures_total{reason=\"exists\"}") == 1);
    CHECK(p.samples.at("syncwall_state_insert_failures_total{reason=\"full\"}") == 2);
    CHECK(p.samples.at("syncwall_state_table_bytes") == 23068672);
    CHECK(p.samples.at("syncwall_state_table_huge_page_bytes") == 20971520);
    CHECK(p.type.at("syncwall_state_table_huge_page_bytes") == "gauge");
    CHECK(p.type.at("syncwall_drops_total") == "counter");
    CHECK(p.type.at("syncwall_states") == "gauge");
    // Interface families interleave in the result (lan packets, lan bytes, wan ...) but each
    // family's samples are printed together: parse() would have failed otherwise.
    CHECK(p.family_order.size() == p.type.size());
}

TEST_CASE("unavailable CARP and pfsync contribute no family", "[prometheus]") {
    const std::string text = prometheus_text(info_result(), unavailable(), unavailable());
    CHECK(text.find("syncwall_sync_") == std::string::npos);
    CHECK(text.find("syncwall_carp_") == std::string::npos);
}

TEST_CASE("show sync becomes per-direction, per-action and bulk families", "[prometheus]") {
    const Page p = parse(prometheus_text(info_result(), unavailable(), sync_result()));
    CHECK(p.samples.at("syncwall_sync_enabled") == 1);
    CHECK(p.samples.at("syncwall_sync_packets_total{direction=\"sent\"}") == 30);
    CHECK(p.samples.at("syncwall_sync_bytes_total{direction=\"received\"}") == 4000);
    CHECK(p.samples.at("syncwall_sync_messages_total{direction=\"sent\",action=\"upd_c\"}") == 20);
    CHECK(p.samples.at("syncwall_sync_messages_total{direction=\"received\",action=\"ins_ack\"}") ==
          0);
    CHECK(p.samples.count("syncwall_sync_messages_total{direction=\"sent\",action=\"packets\"}") ==
          0);
    CHECK(p.samples.at("syncwall_sync_errors_total{reason=\"bad_ttl\"}") == 2);
    CHECK(p.samples.at("syncwall_sync_stale_total") == 8);
    CHECK(p.samples.at("syncwall_sync_ring_full_total") == 0);
    CHECK(p.samples.at("syncwall_sync_queue_depth") == 12);
    CHECK(p.samples.at("syncwall_sync_lag_seconds") == Approx(0.25));
    CHECK(p.samples.at("syncwall_sync_bulk_status{status=\"receiving\"}") == 1);
    CHECK(p.samples.at("syncwall_sync_bulk_status{status=\"done\"}") == 0);
    CHECK(p.samples.at("syncwall_sync_bulk_requests_total") == 1);
    CHECK(p.samples.at("syncwall_sync_bulk_received_states_total") == 500);
    CHECK(p.samples.at("syncwall_sync_bulk_sending") == 0);
    CHECK(p.samples.at("syncwall_sync_bulk_sent_states_total") == 0);
}

TEST_CASE("show carp becomes a role gauge per vhid and demotion", "[prometheus]") {
    const Page p = parse(prometheus_text(info_result(), carp_result(), unavailable()));
    CHECK(p.samples.at("syncwall_carp_role{vhid=\"1\",interface=\"lan\"}") == 2);
    CHECK(p.samples.at("syncwall_carp_role{vhid=\"2\",interface=\"wan\"}") == 1);
    CHECK(p.samples.at("syncwall_carp_role{vhid=\"3\",interface=\"dmz\"}") == 0);
    CHECK(p.samples.at("syncwall_carp_preempt") == 1);
    CHECK(p.samples.at("syncwall_carp_demotion") == 240);
    CHECK(p.samples.at("syncwall_carp_demotion_reason{reason=\"bulk update pending\"}") == 240);
    CHECK(p.samples.at("syncwall_carp_effective_advskew{vhid=\"1\",interface=\"lan\"}") == 240);
    CHECK(p.samples.at("syncwall_carp_advskew{vhid=\"2\",interface=\"wan\"}") == 100);
    CHECK(p.samples.at("syncwall_carp_transitions_total{vhid=\"1\",interface=\"lan\"}") == 3);
    CHECK(p.samples.at("syncwall_carp_adverts_received_total{vhid=\"2\",interface=\"wan\"}") == 70);
    CHECK(p.samples.at("syncwall_carp_adverts_rejected_total{vhid=\"1\",interface=\"lan\",reason="
                       "\"bad_hmac\"}") == 2);
    // vhid 3 has only its role: nothing else is made up for it.
    CHECK(p.samples.count("syncwall_carp_advskew{vhid=\"3\",interface=\"dmz\"}") == 0);
}

TEST_CASE("labels from the results are escaped", "[prometheus]") {
    Json info = info_result();
    info["node"] = "fw \"a\"\\\n";
    info["drops"] = Json{{"odd\"reason", 1}};
    const std::string text = prometheus_text(info, unavailable(), unavailable());
    CHECK(text.find("syncwall_info{node=\"fw \\\"a\\\"\\\\\\n\",hostid=\"167772161\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("syncwall_drops_total{reason=\"odd\\\"reason\"} 1\n") != std::string::npos);
}

TEST_CASE("missing keys and wrong types drop samples, not the page", "[prometheus]") {
    Json info = info_result();
    info.erase("counters");
    info["states"]["current"] = "many";
    info["ports"][0].erase("name");
    Json sync = sync_result();
    sync.erase("bulk");
    sync["sent"] = 5;
    Json carp = carp_result();
    carp["vhids"][0]["role"] = "dancing";
    const Page p = parse(prometheus_text(info, carp, sync));
    CHECK(p.samples.count("syncwall_forwarded_packets_total") == 0);
    CHECK(p.samples.count("syncwall_states") == 0);
    CHECK(p.samples.at("syncwall_states_limit") == 1000);
    CHECK(p.samples.count("syncwall_interface_packets_total{interface=\"lan\",direction=\"rx\"}") ==
          0);
    CHECK(p.samples.at("syncwall_interface_packets_total{interface=\"wan\",direction=\"rx\"}") ==
          21);
    CHECK(p.samples.count("syncwall_sync_bulk_status{status=\"none\"}") == 0);
    CHECK(p.samples.count("syncwall_sync_packets_total{direction=\"sent\"}") == 0);
    CHECK(p.samples.at("syncwall_sync_packets_total{direction=\"received\"}") == 40);
    CHECK(p.samples.count("syncwall_carp_role{vhid=\"1\",interface=\"lan\"}") == 0);
    CHECK(p.samples.at("syncwall_carp_role{vhid=\"2\",interface=\"wan\"}") == 1);
    CHECK(prometheus_text(Json(nullptr), Json::array(), Json("x")).empty());
}
