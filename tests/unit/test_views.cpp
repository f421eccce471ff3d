// syncwallctl's text views, from hand-made results: the exact lines an operator sees, in
// pfctl's shapes (pfctl -ss / -vvss, -si, -vvsr).
#include "control/mgmt/views.hpp"

#include <catch2/catch.hpp>

using namespace syncwall::ctl;

namespace {

Json peer(unsigned state, uint32_t seqlo, uint32_t seqhi, unsigned wscale, uint32_t seqdiff = 0) {
    return Json{{"state", state},     {"seqlo", seqlo},   {"seqhi", seqhi},
                {"seqdiff", seqdiff}, {"max_win", 65535}, {"wscale", wscale}};
}

// The inbound state of a connection 192.0.2.10:40000 -> 198.51.100.10:80 made on lan.
Json tcp_in_state() {
    return Json{
        {"id", "0123456789abcdef"},
        {"creatorid", 0x0a000001},
        {"interface", "lan"},
        {"direction", "in"},
        {"af", 4},
        {"proto", 6},
        {"addr", {"192.0.2.10", "198.51.100.10"}},
        {"port", {40000, 80}},
        {"src", peer(4, 1000, 66535, 0x87)},
        {"dst", peer(4, 5000, 70000, 0x80 | 2)},
        {"age", 3723},
        {"expires_in", 86398},
        {"timeout", "tcp.established"},
        {"packets", {12, 34}},
        {"bytes", {5678, 9012}},
        {"rule", 3},
        {"origin", "local"},
    };
}

} // namespace

TEST_CASE("an inbound TCP state prints as pfctl -ss does", "[mgmt]") {
    CHECK(format_state(tcp_in_state(), false) ==
          "all tcp 198.51.100.10:80 <- 192.0.2.10:40000       ESTABLISHED:ESTABLISHED\n");
}

TEST_CASE("an outbound state has the arrow the other way and its peers in key order", "[mgmt]") {
    Json s = tcp_in_state();
    s["direction"] = "out";
    s["interface"] = "wan";
    s["addr"] = {"198.51.100.10", "192.0.2.10"};
    s["port"] = {80, 40000};
    s["src"]["state"] = 2; // SYN_SENT: the client, first for an outbound state
    CHECK(format_state(s, false) ==
          "all tcp 192.0.2.10:40000 -> 198.51.100.10:80       SYN_SENT:ESTABLISHED\n");
    s["direction"] = "in";
    CHECK(format_state(s, false) ==
          "all tcp 192.0.2.10:40000 <- 198.51.100.10:80       ESTABLISHED:SYN_SENT\n");
}

TEST_CASE("a translated state prints its other key with its own in parentheses, as pfctl",
          "[mgmt][nat]") {
    // nat-to: the state's key is the stack key (inside), the other one the wire key.
    Json s = tcp_in_state();
    s["direction"] = "out";
    s["addr"] = {"203.0.113.80", "192.0.2.10"};
    s["port"] = {443, 40000};
    s["nat"] = {{"addr", {"203.0.113.80", "198.51.100.1"}}, {"port", {443, 61234}}};
    CHECK(format_state(s, false) ==
          "all tcp 198.51.100.1:61234 (192.0.2.10:40000) -> 203.0.113.80:443       "
          "ESTABLISHED:ESTABLISHED\n");
    // rdr-to: the state's key is the wire key, the other one the stack key (inside).
    Json r = tcp_in_state();
    r["addr"] = {"203.0.113.9", "198.51.100.1"};
    r["port"] = {50000, 8080};
    r["nat"] = {{"addr", {"203.0.113.9", "192.0.2.10"}}, {"port", {50000, 80}}};
    CHECK(format_state(r, false) ==
          "all tcp 192.0.2.10:80 (198.51.100.1:8080) <- 203.0.113.9:50000       "
          "ESTABLISHED:ESTABLISHED\n");
}

TEST_CASE("-v adds the windows, age, expiry, counters, rule and id lines", "[mgmt]") {
    CHECK(format_state(tcp_in_state(), true) ==
          "all tcp 198.51.100.10:80 <- 192.0.2.10:40000       ESTABLISHED:ESTABLISHED\n"
          "   [5000 + 65000] wscale 2  [1000 + 65535] wscale 7\n"
          "   age 01:02:03, expires in 23:59:58, 12:34 pkts, 5678:9012 bytes, rule 3\n"
          "   id: 0123456789abcdef creatorid: 0a000001\n");
}

TEST_CASE("window scaling is shown only when both peers use it; a modulator is shown", "[mgmt]") {
    Json s = tcp_in_state();
    s["src"] = peer(4, 1000, 1010, 0);
    s["dst"] = peer(9, 4294967290u, 4, 0x87, 5); // seqhi wrapped past 2^32
    s["rule"] = nullptr;
    s["age"] = 100 * 3600;
    CHECK(format_state(s, true) ==
          "all tcp 198.51.100.10:80 <- 192.0.2.10:40000       FIN_WAIT_2:ESTABLISHED\n"
          "   [4294967290 + 10](+5)  [1000 + 10]\n"
          "   age 100:00:00, expires in 23:59:58, 12:34 pkts, 5678:9012 bytes\n"
          "   id: 0123456789abcdef creatorid: 0a000001\n");
}

TEST_CASE("UDP, ICMP, other protocols and IPv6 print as pfctl prints them", "[mgmt]") {
    Json s = tcp_in_state();
    s["proto"] = 17;
    s["direction"] = "out";
    s["addr"] = {"198.51.100.10", "192.0.2.10"};
    s["port"] = {5353, 40001};
    s["src"]["state"] = 2;
    s["dst"]["state"] = 1;
    CHECK(format_state(s, false) ==
          "all udp 192.0.2.10:40001 -> 198.51.100.10:5353       MULTIPLE:SINGLE\n");
    // No window line for anything but TCP.
    CHECK(format_state(s, true) ==
          "all udp 192.0.2.10:40001 -> 198.51.100.10:5353       MULTIPLE:SINGLE\n"
          "   age 01:02:03, expires in 23:59:58, 12:34 pkts, 5678:9012 bytes, rule 3\n"
          "   id: 0123456789abcdef creatorid: 0a000001\n");

    s["proto"] = 1;
    s["port"] = {4711, 4711}; // the echo id
    s["src"]["state"] = 0;
    s["dst"]["state"] = 1;
    CHECK(format_state(s, false) == "all icmp 192.0.2.10:4711 -> 198.51.100.10:4711       0:1\n");

    s["proto"] = 50;
    s["port"] = {0, 0};
    CHECK(format_state(s, false) ==
          "all esp 192.0.2.10 -> 198.51.100.10       NO_TRAFFIC:SINGLE\n");

    s["proto"] = 6;
    s["af"] = 6;
    s["direction"] = "in";
    s["addr"] = {"2001:db8:1::10", "2001:db8:2::10"};
    s["port"] = {40000, 80};
    s["src"]["state"] = 4;
    s["dst"]["state"] = 12;
    CHECK(format_state(s, false) ==
          "all tcp 2001:db8:2::10[80] <- 2001:db8:1::10[40000]       <BAD STATE LEVELS 12:4>\n");
}

TEST_CASE("show states prints one entry per state, nothing when there is none", "[mgmt]") {
    Json s2 = tcp_in_state();
    s2["port"] = {40002, 80};
    const Json result{{"states", {tcp_in_state(), s2}}, {"truncated", false}};
    CHECK(format_states(result, false) ==
          "all tcp 198.51.100.10:80 <- 192.0.2.10:40000       ESTABLISHED:ESTABLISHED\n"
          "all tcp 198.51.100.10:80 <- 192.0.2.10:40002       ESTABLISHED:ESTABLISHED\n");
    CHECK(format_states(Json{{"states", Json::array()}, {"truncated", false}}, true).empty());
    CHECK(format_result(Command::show_states, result, false) == format_states(result, false));
}

TEST_CASE("show info prints as pfctl -si, with rates over the uptime", "[mgmt]") {
    Json drops = Json::object();
    drops["filter_block"] = 7;
    drops["no_route"] = 0;
    const Json result{
        {"node", "fw-a"},
        {"hostid", 0x0a000001},
        {"running", true},
        {"uptime", 90061},
        {"states",
         {{"current", 2},
          {"limit", 100},
          {"inserts", 4505},
          {"removals", 4503},
          {"insert_exists", 0},
          {"insert_full", 0}}},
        {"counters", {{"forwarded", 9006100}, {"punted", 45}, {"drops_total", 7}}},
        {"drops", drops},
        {"ports",
         {{{"name", "lan"},
           {"rx_packets", 1801},
           {"rx_bytes", 180122},
           {"tx_packets", 901},
           {"tx_bytes", 90061}}}},
    };
    CHECK(format_info(result) == "Status: Enabled for 1 days 01:01:01         Hostid: 0x0a000001\n"
                                 "\n"
                                 "Interface Stats for lan              Total             Rate\n"
                                 "  Bytes In                          180122            2.0/s\n"
                                 "  Bytes Out                          90061            1.0/s\n"
                                 "  Packets In                          1801            0.0/s\n"
                                 "  Packets Out                          901            0.0/s\n"
                                 "\n"
                                 "State Table                          Total             Rate\n"
                                 "  current entries                        2               \n"
                                 "  inserts                             4505            0.1/s\n"
                                 "  removals                            4503            0.0/s\n"
                                 "Counters\n"
                                 "  forwarded                        9006100          100.0/s\n"
                                 "  punted                                45            0.0/s\n"
                                 "  filter_block                           7            0.0/s\n"
                                 "  no_route                               0            0.0/s\n");
}

TEST_CASE("show info leaves the rates out while the uptime is zero", "[mgmt]") {
    const Json result{
        {"node", "fw-a"},
        {"hostid", 0x0a000001},
        {"running", true},
        {"uptime", 0},
        {"states",
         {{"current", 0},
          {"limit", 100},
          {"inserts", 0},
          {"removals", 0},
          {"insert_exists", 0},
          {"insert_full", 0}}},
        {"counters", {{"forwarded", 0}, {"punted", 0}, {"drops_total", 0}}},
        {"drops", {{"filter_block", 0}}},
        {"ports",
         {{{"name", "wan"},
           {"rx_packets", 3},
           {"rx_bytes", 300},
           {"tx_packets", 9},
           {"tx_bytes", 900}}}},
    };
    CHECK(format_info(result) == "Status: Enabled for 0 days 00:00:00         Hostid: 0x0a000001\n"
                                 "\n"
                                 "Interface Stats for wan              Total             Rate\n"
                                 "  Bytes In                             300               \n"
                                 "  Bytes Out                            900               \n"
                                 "  Packets In                             3               \n"
                                 "  Packets Out                            9               \n"
                                 "\n"
                                 "State Table                          Total             Rate\n"
                                 "  current entries                        0               \n"
                                 "  inserts                                0               \n"
                                 "  removals                               0               \n"
                                 "Counters\n"
                                 "  forwarded                              0               \n"
                                 "  punted                                 0               \n"
                                 "  filter_block                           0               \n");
}

TEST_CASE("show rules prints as pfctl -vvsr, with Matches for Evaluations", "[mgmt]") {
    const Json result{
        {"rules",
         {{{"number", 0},
           {"text", "block return all"},
           {"source", "fw.yaml:20:5"},
           {"matches", 0},
           {"packets", 0},
           {"bytes", 0},
           {"states_created", 0},
           {"states", 0}},
          {{"number", 1},
           {"text", "pass in on lan proto tcp from any to any port = 80 flags S/SA keep state"},
           {"source", "fw.yaml:21:5"},
           {"matches", 123456789},
           {"packets", 40},
           {"bytes", 4000},
           {"states_created", 2},
           {"states", 1}}}},
        {"acl_rules", 2},
        {"reloads", 0},
    };
    CHECK(format_rules(result) ==
          "@0 block return all\n"
          "  [ Matches: 0         Packets: 0         Bytes: 0           States: 0     ]\n"
          "  [ State Creations: 0     ]\n"
          "@1 pass in on lan proto tcp from any to any port = 80 flags S/SA keep state\n"
          "  [ Matches: 123456789  Packets: 40        Bytes: 4000        States: 1     ]\n"
          "  [ State Creations: 2     ]\n");
}

TEST_CASE("show interfaces prints one block per port", "[mgmt]") {
    const Json result{{"interfaces",
                       {{{"name", "lan"},
                         {"devargs", "net_af_packet0,iface=fw-lan"},
                         {"port_id", 0},
                         {"mac", "02:00:00:00:00:01"},
                         {"addresses", {"192.0.2.1/24", "2001:db8:1::1/64"}},
                         {"mtu", 1500},
                         {"sync", false},
                         {"rx_checksums_by_device", Json::array()},
                         {"rx_packets", 10},
                         {"rx_bytes", 1000},
                         {"tx_packets", 12},
                         {"tx_bytes", 1200}},
                        {{"name", "pfsync"},
                         {"devargs", "0000:03:00.1"},
                         {"port_id", 2},
                         {"mac", "02:00:00:00:00:03"},
                         {"addresses", Json::array()},
                         {"mtu", 9000},
                         {"sync", true},
                         {"rx_checksums_by_device", {"ipv4", "tcp", "udp"}},
                         {"rx_packets", 0},
                         {"rx_bytes", 0},
                         {"tx_packets", 0},
                         {"tx_bytes", 0}}}}};
    CHECK(format_interfaces(result) == "lan: port 0 mtu 1500\n"
                                       "\tlladdr 02:00:00:00:00:01\n"
                                       "\tdevargs net_af_packet0,iface=fw-lan\n"
                                       "\tinet 192.0.2.1/24\n"
                                       "\tinet6 2001:db8:1::1/64\n"
                                       "\trx checksums summed by syncwall\n"
                                       "\trx 10 packets 1000 bytes, tx 12 packets 1200 bytes\n"
                                       "pfsync: port 2 mtu 9000 (sync)\n"
                                       "\tlladdr 02:00:00:00:00:03\n"
                                       "\tdevargs 0000:03:00.1\n"
                                       "\trx checksums verified by the device: ipv4 tcp udp\n"
                                       "\trx 0 packets 0 bytes, tx 0 packets 0 bytes\n");
}

TEST_CASE("carp and sync say plainly that they are not available", "[mgmt]") {
    const Json result{{"available", false},
                      {"reason", "CARP is not implemented in this build yet"}};
    CHECK(format_result(Command::show_carp, result, false) ==
          "carp: not available: CARP is not implemented in this build yet\n");
    CHECK(format_availability("sync", Json{{"available", false}, {"reason", "not yet"}}) ==
          "sync: not available: not yet\n");
}

namespace {

Json carp_result() {
    Json rejected = Json::object();
    rejected["bad_ttl"] = 0;
    rejected["bad_digest"] = 2;
    rejected["looped"] = 1;
    Json untouched = rejected;
    for (auto &[k, v] : untouched.items())
        v = 0;
    return Json{
        {"available", true},
        {"preempt", true},
        {"demotion", 32},
        {"demotion_reasons", {Json{{"reason", "pfsync bulk update pending"}, {"value", 32}}}},
        {"vhids",
         {Json{{"vhid", 1},
               {"interface", "lan"},
               {"role", "backup"},
               {"advbase", 1},
               {"advskew", 100},
               {"effective_advskew", 132},
               {"demote", 32},
               {"addresses", {"192.0.2.254/24", "2001:db8:1::fe/64"}},
               {"transitions", 2},
               {"last_reason", "a less demoted master"},
               {"adverts_sent", 7},
               {"adverts_received", 40},
               {"adverts_rejected", rejected}},
          Json{{"vhid", 2},
               {"interface", "wan"},
               {"role", "master"},
               {"advbase", 1},
               {"advskew", 0},
               {"effective_advskew", 0},
               {"demote", 0},
               {"addresses", {"198.51.100.254/24"}},
               {"transitions", 1},
               {"last_reason", ""},
               {"adverts_sent", 1},
               {"adverts_received", 0},
               {"adverts_rejected", untouched}}}},
    };
}

} // namespace

TEST_CASE("show carp prints each vhid as ifconfig carp does, with the demotion's reasons",
          "[mgmt]") {
    const std::string expected =
        "carp: preempt yes, demotion 32\n"
        "\tdemoted by pfsync bulk update pending: 32\n"
        "vhid 1 on lan: BACKUP advbase 1 advskew 100 (advertised advskew "
        "132, demote 32)\n"
        "\tinet 192.0.2.254/24\n"
        "\tinet6 2001:db8:1::fe/64\n"
        "\t2 transitions, last: a less demoted master\n"
        "\tadverts: 7 sent, 40 received, 3 rejected (bad_digest 2, looped 1)\n"
        "vhid 2 on wan: MASTER advbase 1 advskew 0\n"
        "\tinet 198.51.100.254/24\n"
        "\t1 transition\n"
        "\tadverts: 1 sent, 0 received, 0 rejected\n";
    CHECK(format_result(Command::show_carp, carp_result(), false) == expected);
    // demote and promote answer with the same result, printed the same way.
    CHECK(format_result(Command::carp_demote, carp_result(), false) == expected);
    CHECK(format_result(Command::carp_promote, carp_result(), false) == expected);
    CHECK(format_carp(Json{{"available", false}, {"reason", "no CARP virtual hosts"}}) ==
          "carp: not available: no CARP virtual hosts\n");
}

TEST_CASE("reload and kill states confirm what they did", "[mgmt]") {
    CHECK(format_result(Command::reload, Json{{"rules", 6}, {"reloads", 2}}, false) ==
          "reloaded: 6 rules\n");
    CHECK(format_result(Command::kill_states, Json{{"killed", 2}}, false) == "killed 2 states\n");
    CHECK(format_kill(Json{{"killed", 1}}) == "killed 1 state\n");
}

TEST_CASE("a result without the fields a view needs throws instead of printing junk", "[mgmt]") {
    CHECK_THROWS_AS(format_info(Json{{"uptime", 1}}), Json::exception);
    CHECK_THROWS_AS(format_states(Json{{"states", {Json{{"proto", "tcp"}}}}}, false),
                    Json::exception);
    CHECK_THROWS_AS(format_kill(Json::array()), Json::exception);
}

TEST_CASE("show sync prints the peer, the bulk update, the queue and the non-zero counters",
          "[mgmt]") {
    const Json result{
        {"available", true},
        {"interface", "sync"},
        {"peer", "224.0.0.240"},
        {"peer_resolved", true},
        {"creatorid", 0x0a000001},
        {"authenticated", false},
        {"queue_depth", 3},
        {"lag_ms", 40},
        {"max_lag_ms", 101},
        {"coalesced", 17},
        {"ring_full", 0},
        {"stale", 2},
        {"sent", {{"packets", 5}, {"bytes", 900}, {"ins", 4}, {"upd_c", 9}, {"del_c", 0}}},
        {"received", {{"packets", 1}, {"bytes", 60}, {"upd_req", 1}, {"bus", 0}}},
        {"errors", {{"bad_ttl", 0}, {"auth_bad_mac", 3}}},
        {"bulk",
         {{"status", "done"},
          {"requests", 1},
          {"received_states", 12},
          {"sending", false},
          {"sends", 1},
          {"sent_states", 7}}},
    };
    CHECK(format_result(Command::show_sync, result, false) ==
          "pfsync: on sync to 224.0.0.240, creatorid 0a000001\n"
          "\tbulk update: done (1 request, 12 states received); 7 states sent in 1 bulk transfers\n"
          "\tqueue 3, lag 40 ms (max 101 ms), 17 coalesced, 0 ring full, 2 stale\n"
          "\tsent     5 packets, 900 bytes: ins 4 upd_c 9\n"
          "\treceived 1 packets, 60 bytes: upd_req 1\n"
          "\terrors: auth_bad_mac 3\n");
    const Json off{{"available", false}, {"reason", "pfsync is not configured"}};
    CHECK(format_result(Command::show_sync, off, false) ==
          "sync: not available: pfsync is not configured\n");
}

TEST_CASE("show info has a Fragments section when the node reports one", "[mgmt]") {
    const Json result{
        {"node", "fw-a"},
        {"hostid", 1},
        {"running", true},
        {"uptime", 10},
        {"states",
         {{"current", 0},
          {"limit", 100},
          {"inserts", 0},
          {"removals", 0},
          {"insert_exists", 0},
          {"insert_full", 0}}},
        {"fragments",
         {{"held", 3},
          {"limit", 1024},
          {"reassembled", 20},
          {"refragmented", 10},
          {"timed_out", 1}}},
        {"counters", {{"forwarded", 0}, {"punted", 0}, {"drops_total", 0}}},
        {"drops", Json::object()},
        {"ports", Json::array()},
    };
    const std::string text = format_info(result);
    CHECK(text.find("Fragments                            Total             Rate\n"
                    "  held                                   3               \n"
                    "  reassembled                           20            2.0/s\n"
                    "  refragmented                          10            1.0/s\n"
                    "  timed out                              1            0.1/s\n"
                    "Counters\n") != std::string::npos);
}

TEST_CASE("the exit counters are show info's and show sync's, one name and value per line",
          "[mgmt]") {
    Json drops = Json::object();
    drops["filter_block"] = 3;
    drops["no_route"] = 0;
    const Json info{
        {"states", {{"current", 2}, {"inserts", 5}, {"removals", 3}}},
        {"counters", {{"forwarded", 20}, {"punted", 4}, {"drops_total", 3}, {"pflog_dropped", 0}}},
        {"fragments", {{"reassembled", 6}, {"refragmented", 4}, {"held", 0}}},
        {"drops", drops},
        {"ports",
         {{{"name", "lan"},
           {"rx_packets", 11},
           {"rx_bytes", 1100},
           {"tx_packets", 9},
           {"tx_bytes", 900}}}},
        {"workers", {{{"polls", 100}, {"idle_polls", 90}, {"sleeps", 7}, {"forwarded", 20}}}},
    };
    const std::string counters = "port lan rx_packets 11 rx_bytes 1100 tx_packets 9 tx_bytes 900\n"
                                 "forwarded 20\npunted 4\nstates 2\nstate_inserts 5\n"
                                 "state_removals 3\ndrop filter_block 3\ndrops_total 3\n"
                                 "pflog_dropped 0\nfrag_reassembled 6\nfrag_refragmented 4\n"
                                 "frags_held 0\nworker 0 polls 100 idle_polls 90 sleeps 7 "
                                 "forwarded 20\n";
    CHECK(format_exit_counters(info, Json{{"available", false}, {"reason", "no sync"}}) ==
          counters);
    const Json sync{{"available", true},
                    {"sent", {{"packets", 12}}},
                    {"received", {{"packets", 10}}},
                    {"errors", {{"bad_ttl", 1}, {"bad_hmac", 2}}},
                    {"stale", 5},
                    {"ring_full", 0},
                    {"bulk", {{"status", "done"}}}};
    CHECK(format_exit_counters(info, sync) ==
          counters + "sync_tx_packets 12\nsync_rx_packets 10\nsync_errors 3\nsync_stale 5\n"
                     "sync_ring_full 0\nsync_bulk done\n");
}
