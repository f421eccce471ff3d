// The YAML loader: what a good file gives, the exact message of each kind of mistake,
// that no input gets anything but a ConfigError out, and the address parsers.
#include "config/loader.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

using namespace syncwall::config;

namespace {

// The message loading `yaml` fails with, or "" when it loads.
std::string error_of(const std::string &yaml) {
    try {
        load_config_text(yaml, "config.yaml");
        return "";
    } catch (const ConfigError &e) {
        return e.what();
    }
}

Config load(const std::string &yaml) {
    return load_config_text(yaml, "config.yaml");
}

// Five lines of a valid file; tests append to it, so their own text starts at line 6.
const std::string head = "node:\n"
                         "  hostid: 1\n"
                         "interfaces:\n"
                         "  lan:\n"
                         "    devargs: net_null0\n";

std::string read_text(const std::filesystem::path &path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

const std::filesystem::path examples =
    std::filesystem::path(SYNCWALL_SOURCE_ROOT) / "config" / "examples";

IpPrefix prefix(const std::string &text) {
    return parse_ip_prefix(text).value();
}
IpAddress address(const std::string &text) {
    return parse_ip_address(text).value();
}

} // namespace

TEST_CASE("a file with every field loads them all", "[config]") {
    auto config = load(R"(
node:
  name: fw-a
  hostid: 0x0a000001
dpdk:
  eal_args: ["--no-huge", "-m", 512]
  mbufs: 4095
  mbuf_cache: 128
  rx_desc: 1024
  tx_desc: 2048
  burst: 64
lcores:
  main: 0
  sync: 1
  workers: [2, 3]
  idle: adaptive
  idle_max_sleep_us: 250
interfaces:
  lan:
    devargs: "net_af_packet0,iface=veth-lan"
    addresses: [192.0.2.1/24, "2001:db8:1::1/64"]
    mtu: 9000
    mac: "02:00:00:AA:bb:01"
    promiscuous: yes
  wan:
    devargs: net_null1
  sync:
    devargs: net_null2
routes:
  - to: 0.0.0.0/0
    via: 198.51.100.254
    interface: wan
  - to: 2001:db8:ffff::1
    interface: lan
tables:
  web: [198.51.100.10, 198.51.100.0/28]
  empty: []
rules:
  - "pass in on lan proto tcp to port 22"
  - block all
sync:
  interface: sync
  peer: 192.0.2.99
  maxupd: 64
  interval_ms: 500
  bulk_timeout_ms: 3000
  bulk_max_requests: 5
  ring_size: 8192
  auth: { key_file: /etc/syncwall/sync.key }
carp:
  preempt: true
  tracked: [lan, wan]
  vhosts:
    - vhid: 1
      interface: lan
      addresses: [192.0.2.254/24]
      advbase: 2
      advskew: 100
      pass: secret
    - vhid: 2
      interface: wan
      addresses: [198.51.100.254]
timeouts:
  tcp.first: 121
  tcp.established: 3600
  other.multiple: 61
  interval: 5
  adaptive.start: 6000
  adaptive.end: 12000
limits:
  states: 200000
  neighbours: 1024
  pending_per_neighbour: 8
  punt_ring: 2048
control:
  socket: /tmp/sw.sock
  socket_mode: 0660
  metrics: 127.0.0.1:9101
  pflog: /var/log/syncwall/pflog.pcap
)");
    CHECK(config.source_file == "config.yaml");
    CHECK(config.node.name == "fw-a");
    CHECK(config.node.hostid == 0x0a000001);

    CHECK(config.dpdk.eal_args == std::vector<std::string>{"--no-huge", "-m", "512"});
    CHECK(config.dpdk.mbufs == 4095);
    CHECK(config.dpdk.mbuf_cache == 128);
    CHECK(config.dpdk.rx_desc == 1024);
    CHECK(config.dpdk.tx_desc == 2048);
    CHECK(config.dpdk.burst == 64);

    CHECK(config.lcores.main == 0);
    CHECK(config.lcores.sync == 1);
    CHECK(config.lcores.workers == std::vector<unsigned>{2, 3});
    CHECK(config.lcores.idle == IdlePolicy::adaptive);
    CHECK(config.lcores.idle_max_sleep_us == 250);

    REQUIRE(config.interfaces.size() == 3);
    const auto &lan = config.interfaces[0];
    CHECK(lan.name == "lan");
    CHECK(lan.devargs == "net_af_packet0,iface=veth-lan");
    CHECK(lan.addresses == std::vector{prefix("192.0.2.1/24"), prefix("2001:db8:1::1/64")});
    CHECK(lan.mtu == 9000);
    REQUIRE(lan.mac.has_value());
    CHECK(lan.mac->to_string() == "02:00:00:aa:bb:01");
    CHECK(lan.promiscuous);
    CHECK(lan.pos.file == "config.yaml");
    CHECK(lan.pos.line == 19);
    CHECK(lan.pos.column == 3);
    CHECK(config.interfaces[1].name == "wan");
    CHECK(config.interfaces[1].addresses.empty());
    CHECK(config.interfaces[1].mtu == 1500);
    CHECK_FALSE(config.interfaces[1].mac.has_value());
    CHECK_FALSE(config.interfaces[1].promiscuous);
    CHECK(config.interface_index("sync") == 2);
    CHECK(config.interface_index("dmz") == -1);

    REQUIRE(config.routes.size() == 2);
    CHECK(config.routes[0].to == prefix("0.0.0.0/0"));
    CHECK(config.routes[0].via == address("198.51.100.254"));
    CHECK(config.routes[0].iface == "wan");
    CHECK(config.routes[0].pos.line == 30);
    CHECK(config.routes[0].pos.column == 5);
    CHECK(config.routes[1].to == prefix("2001:db8:ffff::1/128"));
    CHECK_FALSE(config.routes[1].via.has_value());
    CHECK(config.routes[1].iface == "lan");

    REQUIRE(config.tables.size() == 2);
    CHECK(config.tables[0].name == "web");
    CHECK(config.tables[0].entries ==
          std::vector{prefix("198.51.100.10/32"), prefix("198.51.100.0/28")});
    CHECK(config.tables[0].pos.line == 36);
    CHECK(config.tables[1].name == "empty");
    CHECK(config.tables[1].entries.empty());

    REQUIRE(config.rules.size() == 2);
    CHECK(config.rules[0].text == "pass in on lan proto tcp to port 22");
    CHECK(config.rules[0].pos.line == 39);
    CHECK(config.rules[0].pos.column == 6); // the first character inside the quotes
    CHECK(config.rules[1].text == "block all");

    CHECK(config.sync.enabled);
    CHECK(config.sync.interface == "sync");
    CHECK(config.sync.peer == address("192.0.2.99"));
    CHECK(config.sync.maxupd == 64);
    CHECK(config.sync.interval_ms == 500);
    CHECK(config.sync.bulk_timeout_ms == 3000);
    CHECK(config.sync.bulk_max_requests == 5);
    CHECK(config.sync.ring_size == 8192);
    CHECK(config.sync.auth.key_file == "/etc/syncwall/sync.key");

    CHECK(config.carp.preempt);
    CHECK(config.carp.tracked == std::vector<std::string>{"lan", "wan"});
    REQUIRE(config.carp.vhosts.size() == 2);
    const auto &vhost = config.carp.vhosts[0];
    CHECK(vhost.vhid == 1);
    CHECK(vhost.interface == "lan");
    CHECK(vhost.addresses == std::vector{prefix("192.0.2.254/24")});
    CHECK(vhost.advbase == 2);
    CHECK(vhost.advskew == 100);
    CHECK(vhost.pass == "secret");
    CHECK(vhost.pos.line == 54);
    CHECK(config.carp.vhosts[1].addresses == std::vector{prefix("198.51.100.254/32")});
    CHECK(config.carp.vhosts[1].advbase == 1);
    CHECK(config.carp.vhosts[1].pass.empty());

    CHECK(config.timeouts.tcp_first == 121);
    CHECK(config.timeouts.tcp_established == 3600);
    CHECK(config.timeouts.other_multiple == 61);
    CHECK(config.timeouts.interval == 5);
    CHECK(config.timeouts.adaptive_start == 6000);
    CHECK(config.timeouts.adaptive_end == 12000);
    CHECK(config.timeouts.udp_first == 60); // untouched default

    CHECK(config.limits.states == 200000);
    CHECK(config.limits.neighbours == 1024);
    CHECK(config.limits.pending_per_neighbour == 8);
    CHECK(config.limits.punt_ring == 2048);

    CHECK(config.control.socket == "/tmp/sw.sock");
    CHECK(config.control.socket_mode == 0660);
    CHECK(config.control.metrics_listen == "127.0.0.1:9101");
    CHECK(config.control.pflog_file == "/var/log/syncwall/pflog.pcap");
}

TEST_CASE("a minimal file gets the documented defaults", "[config]") {
    auto config = load(head);
    CHECK(config.node.name == "syncwall");
    CHECK(config.node.hostid == 1);
    CHECK(config.dpdk.eal_args.empty());
    CHECK(config.dpdk.mbufs == 8191);
    CHECK(config.lcores.main == 0);
    CHECK(config.lcores.sync == 0);
    CHECK(config.lcores.workers == std::vector<unsigned>{1});
    CHECK(config.lcores.idle == IdlePolicy::busy);
    REQUIRE(config.interfaces.size() == 1);
    CHECK(config.interfaces[0].addresses.empty());
    CHECK(config.routes.empty());
    CHECK(config.tables.empty());
    CHECK(config.rules.empty());
    CHECK_FALSE(config.sync.enabled);
    CHECK_FALSE(config.carp.preempt);
    CHECK(config.carp.vhosts.empty());
    CHECK(config.timeouts.tcp_established == 86400);
    CHECK(config.limits.states == 100000);
    CHECK(config.control.socket == "/run/syncwall/syncwall.sock");
    CHECK(config.control.socket_mode == 0600);
    CHECK_FALSE(config.control.metrics_listen.has_value());
    CHECK_FALSE(config.control.pflog_file.has_value());
}

TEST_CASE("sync lcore defaults to main and the default worker avoids both", "[config]") {
    auto config = load(head + "lcores:\n  main: 1\n");
    CHECK(config.lcores.sync == 1);
    CHECK(config.lcores.workers == std::vector<unsigned>{0});

    config = load(head + "lcores:\n  main: 0\n  sync: 1\n");
    CHECK(config.lcores.workers == std::vector<unsigned>{2});
}

TEST_CASE("empty sections read as empty, and an empty sync section still enables sync",
          "[config]") {
    auto config = load(head + "routes:\ntables:\nrules:\ncarp:\ntimeouts:\n");
    CHECK(config.routes.empty());
    CHECK(config.tables.empty());
    CHECK(config.carp.vhosts.empty());
    CHECK(error_of(head + "sync:\n") ==
          "config.yaml:6:1: sync: missing required key \"interface\"");
}

TEST_CASE("every shipped example loads", "[config]") {
    int loaded = 0;
    for (const auto &entry : std::filesystem::directory_iterator(examples)) {
        if (entry.path().extension() != ".yaml") continue;
        INFO(entry.path().string());
        CHECK_NOTHROW(load_config(entry.path().string()));
        loaded++;
    }
    CHECK(loaded >= 3);
}

TEST_CASE("the HA examples are two nodes of one cluster", "[config]") {
    auto a = load_config((examples / "ha-node-a.yaml").string());
    auto b = load_config((examples / "ha-node-b.yaml").string());
    CHECK(a.source_file == (examples / "ha-node-a.yaml").string());
    CHECK(a.node.hostid != b.node.hostid);
    CHECK(a.sync.enabled);
    CHECK(b.sync.enabled);
    CHECK(a.sync.peer == b.interfaces[size_t(b.interface_index("sync"))].addresses[0].addr);
    CHECK(b.sync.peer == a.interfaces[size_t(a.interface_index("sync"))].addresses[0].addr);
    CHECK(a.carp.preempt);
    for (const auto *node : {&a, &b}) {
        REQUIRE(node->carp.vhosts.size() == 2);
        CHECK(node->carp.vhosts[0].vhid == 1);
        CHECK(node->carp.vhosts[0].interface == "lan");
        CHECK(node->carp.vhosts[0].addresses == std::vector{prefix("192.0.2.254/24")});
        CHECK(node->carp.vhosts[1].vhid == 2);
        CHECK(node->carp.vhosts[1].interface == "wan");
        CHECK(node->carp.vhosts[1].addresses == std::vector{prefix("198.51.100.254/24")});
    }
    CHECK(a.carp.vhosts[0].advskew == 0);
    CHECK(b.carp.vhosts[0].advskew == 100);
    CHECK(a.interfaces[0].devargs != b.interfaces[0].devargs);
    CHECK(a.dpdk.eal_args != b.dpdk.eal_args); // distinct --file-prefix

    auto single = load_config((examples / "default.yaml").string());
    CHECK(single.interfaces[0].devargs == "net_null0");
    CHECK(single.interfaces[1].devargs == "net_null1");
    CHECK(single.lcores.idle == IdlePolicy::adaptive);
    CHECK(single.routes[0].via == address("198.51.100.254"));
}

TEST_CASE("unknown key is an error naming its position and the keys allowed", "[config]") {
    CHECK(error_of(head + "nodee: {}\n") ==
          "config.yaml:6:1: unknown key \"nodee\" (expected one of: node, dpdk, lcores, "
          "interfaces, routes, tables, rules, sync, carp, timeouts, limits, control)");
    CHECK(error_of(head + "    mtux: 1500\n") ==
          "config.yaml:6:5: interfaces.lan: unknown key \"mtux\" (expected one of: devargs, "
          "addresses, mtu, mac, promiscuous)");
    CHECK(error_of(head + "sync:\n  interface: lan\n  auth: {keyfile: x}\n") ==
          "config.yaml:8:10: sync.auth: unknown key \"keyfile\" (expected one of: key_file)");
}

TEST_CASE("a value of the wrong type names what was expected and what was found", "[config]") {
    CHECK(error_of(head + "dpdk: [1, 2]\n") == "config.yaml:6:7: dpdk: expected a map, got a list");
    CHECK(error_of(head + "    addresses: 192.0.2.1/24\n") ==
          "config.yaml:6:16: interfaces.lan.addresses: expected a list, got \"192.0.2.1/24\"");
    CHECK(error_of(head + "    mtu: {a: 1}\n") ==
          "config.yaml:6:10: interfaces.lan.mtu: expected an integer 68..9216, got a map");
    CHECK(error_of(head + "rules: [[a]]\n") ==
          "config.yaml:6:9: rules[0]: expected a rule line, got a list");
    CHECK(error_of(head + "tables:\n  web: 10.0.0.1\n") ==
          "config.yaml:7:8: tables.web: expected a list, got \"10.0.0.1\"");
}

TEST_CASE("an empty value is reported at its key", "[config]") {
    CHECK(error_of("node:\n  hostid:\ninterfaces: {lan: {devargs: x}}\n") ==
          "config.yaml:2:3: node.hostid: expected an integer 1..4294967295, got nothing");
    CHECK(error_of("node: {hostid: 1}\ninterfaces:\n") ==
          "config.yaml:2:1: interfaces: expected a map of at least one interface, got nothing");
    CHECK(error_of("node: {hostid: 1}\ninterfaces: {}\n") ==
          "config.yaml:2:13: interfaces: expected a map of at least one interface, got an "
          "empty map");
}

TEST_CASE("integers out of range or not plain integers are errors", "[config]") {
    const std::string expected = "config.yaml:6:10: interfaces.lan.mtu: expected an integer "
                                 "68..9216, got ";
    CHECK(error_of(head + "    mtu: 9217\n") == expected + "\"9217\"");
    CHECK(error_of(head + "    mtu: 67\n") == expected + "\"67\"");
    CHECK(error_of(head + "    mtu: big\n") == expected + "\"big\"");
    for (std::string text : {"1.5", "-1", "+1500", "1_500", "1e3", "0x", "0x5dg", "1500.0",
                             "99999999999999999999999", "18446744073709551616"}) {
        INFO(text);
        CHECK(error_of(head + "    mtu: " + text + "\n") == expected + "\"" + text + "\"");
    }
    CHECK(error_of(head + "    mtu: \"\"\n") == expected + "\"\"");
    CHECK(load(head + "    mtu: 0x5dc\n").interfaces[0].mtu == 1500);
    CHECK(load(head + "    mtu: \"9216\"\n").interfaces[0].mtu == 9216);
}

TEST_CASE("hostid 0 is refused: it is the pfsync creator id", "[config]") {
    CHECK(error_of("node:\n  hostid: 0\ninterfaces: {lan: {devargs: x}}\n") ==
          "config.yaml:2:11: node.hostid: expected an integer 1..4294967295, got \"0\"");
    CHECK(error_of("node:\n  hostid: 0x100000000\ninterfaces: {lan: {devargs: x}}\n") ==
          "config.yaml:2:11: node.hostid: expected an integer 1..4294967295, got "
          "\"0x100000000\"");
    CHECK(load("node:\n  hostid: 0xffffffff\ninterfaces: {lan: {devargs: x}}\n").node.hostid ==
          0xffffffff);
}

TEST_CASE("missing required keys are reported at the map that lacks them", "[config]") {
    CHECK(error_of("node:\n  name: fw\ninterfaces:\n  lan: {devargs: x}\n") ==
          "config.yaml:2:3: node: missing required key \"hostid\"");
    CHECK(error_of("\ninterfaces:\n  lan: {devargs: x}\n") ==
          "config.yaml:2:1: missing required key \"node\"");
    CHECK(error_of("node: {hostid: 1}\n") ==
          "config.yaml:1:1: missing required key \"interfaces\"");
    CHECK(error_of("node: {hostid: 1}\ninterfaces:\n  lan:\n    mtu: 1500\n") ==
          "config.yaml:4:5: interfaces.lan: missing required key \"devargs\"");
    CHECK(error_of(head + "carp:\n  vhosts:\n    - {vhid: 1, interface: lan}\n") ==
          "config.yaml:8:7: carp.vhosts[0]: missing required key \"addresses\"");
}

TEST_CASE("a repeated key is an error pointing at both", "[config]") {
    CHECK(error_of(head + "    devargs: net_null1\n") ==
          "config.yaml:6:5: interfaces.lan: duplicate key \"devargs\" (first at line 5, column "
          "5)");
    CHECK(error_of(head + "interfaces: {}\n") ==
          "config.yaml:6:1: duplicate key \"interfaces\" (first at line 3, column 1)");
}

TEST_CASE("addresses are checked: syntax, prefix length, uniqueness", "[config]") {
    CHECK(error_of(head + "    addresses: [192.0.2.300/24]\n") ==
          "config.yaml:6:17: interfaces.lan.addresses[0]: expected an address with a prefix "
          "length, like 192.0.2.1/24, got \"192.0.2.300/24\"");
    CHECK(error_of(head + "    addresses: [192.0.2.1/24, 192.0.2.2]\n") ==
          "config.yaml:6:31: interfaces.lan.addresses[1]: expected an address with a prefix "
          "length, like 192.0.2.1/24, got \"192.0.2.2\"");
    CHECK(error_of(head + "    addresses: [192.0.2.1/33]\n") ==
          "config.yaml:6:17: interfaces.lan.addresses[0]: expected an address with a prefix "
          "length, like 192.0.2.1/24, got \"192.0.2.1/33\"");
    CHECK(error_of(head + "    addresses: [192.0.2.1/24]\n"
                          "  wan:\n"
                          "    devargs: net_null1\n"
                          "    addresses: [192.0.2.1/25]\n") ==
          "config.yaml:9:17: interfaces.wan.addresses[0]: duplicate address 192.0.2.1 (first "
          "at line 6, column 17)");
    CHECK(error_of(head + "    addresses: [192.0.2.1/24]\n"
                          "carp:\n"
                          "  vhosts:\n"
                          "    - {vhid: 1, interface: lan, addresses: [192.0.2.1]}\n") ==
          "config.yaml:9:45: carp.vhosts[0].addresses[0]: duplicate address 192.0.2.1 (first "
          "at line 6, column 17)");
    CHECK(error_of(head + "tables:\n  web: [10.0.0.0/8, nope]\n") ==
          "config.yaml:7:21: tables.web[1]: expected an IP address or prefix, like "
          "192.0.2.0/24, got \"nope\"");
}

TEST_CASE("a MAC must be a unicast aa:bb:cc:dd:ee:ff", "[config]") {
    const std::string expected = "config.yaml:6:10: interfaces.lan.mac: expected a unicast MAC "
                                 "address, like 02:00:00:00:00:01, got ";
    CHECK(error_of(head + "    mac: 02-00-00-00-00-01\n") == expected + "\"02-00-00-00-00-01\"");
    CHECK(error_of(head + "    mac: \"01:00:5e:00:00:01\"\n") ==
          expected + "\"01:00:5e:00:00:01\"");
    CHECK(error_of(head + "    mac: \"00:00:00:00:00:00\"\n") ==
          expected + "\"00:00:00:00:00:00\"");
}

TEST_CASE("interface names follow [A-Za-z][A-Za-z0-9_-]{0,14}", "[config]") {
    const std::string expected = "config.yaml:3:3: interfaces: expected an interface name: a "
                                 "letter, then up to 14 letters, digits, '_' or '-', got ";
    CHECK(error_of("node: {hostid: 1}\ninterfaces:\n  1lan: {devargs: x}\n") ==
          expected + "\"1lan\"");
    CHECK(error_of("node: {hostid: 1}\ninterfaces:\n  abcdefghijklmnop: {devargs: x}\n") ==
          expected + "\"abcdefghijklmnop\"");
    CHECK(load("node: {hostid: 1}\ninterfaces:\n  abcdefghijklmno: {devargs: x}\n")
              .interfaces[0]
              .name == "abcdefghijklmno");
    CHECK(load("node: {hostid: 1}\ninterfaces:\n  Lan_0-a: {devargs: x}\n").interfaces[0].name ==
          "Lan_0-a");
}

TEST_CASE("references to an unknown interface list the interfaces there are", "[config]") {
    CHECK(error_of(head + "routes:\n  - to: 0.0.0.0/0\n    interface: dmz\n") ==
          "config.yaml:8:16: routes[0].interface: expected the name of an interface (lan), got "
          "\"dmz\"");
    CHECK(error_of(head + "sync:\n  interface: snyc\n") ==
          "config.yaml:7:14: sync.interface: expected the name of an interface (lan), got "
          "\"snyc\"");
    CHECK(error_of(head + "carp:\n  tracked: [lan, wan]\n") ==
          "config.yaml:7:18: carp.tracked[1]: expected the name of an interface (lan), got "
          "\"wan\"");
    CHECK(error_of(head + "carp:\n  vhosts:\n    - {vhid: 1, interface: [lan], addresses: []}\n") ==
          "config.yaml:8:28: carp.vhosts[0].interface: expected the name of an interface (lan), "
          "got a list");
}

TEST_CASE("routes: next hop family, host bits, and a way out", "[config]") {
    CHECK(error_of(head + "routes:\n  - to: 2001:db8::/32\n    via: 192.0.2.254\n") ==
          "config.yaml:8:10: routes[0].via: expected an IPv6 address, the family of \"to\", got "
          "\"192.0.2.254\"");
    CHECK(error_of(head + "routes:\n  - to: 10.1.0.0/8\n    interface: lan\n") ==
          "config.yaml:7:9: routes[0].to: expected a prefix without host bits (10.0.0.0/8), got "
          "\"10.1.0.0/8\"");
    CHECK(error_of(head + "routes:\n  - to: 10.0.0.0/8\n") ==
          "config.yaml:7:5: routes[0]: missing \"via\" or \"interface\" (at least one is "
          "required)");
    CHECK(error_of(head + "routes:\n  - via: 192.0.2.254\n") ==
          "config.yaml:7:5: routes[0]: missing required key \"to\"");
    auto config = load(head + "routes:\n  - {to: 192.0.2.77, via: 192.0.2.254}\n");
    CHECK(config.routes[0].to == prefix("192.0.2.77/32"));
    CHECK_FALSE(config.routes[0].iface.has_value());
}

TEST_CASE("a repeated vhid is an error pointing at both", "[config]") {
    CHECK(error_of(head + "carp:\n"
                          "  vhosts:\n"
                          "    - {vhid: 7, interface: lan, addresses: [192.0.2.254]}\n"
                          "    - {vhid: 7, interface: lan, addresses: [192.0.2.253]}\n") ==
          "config.yaml:9:14: carp.vhosts[1].vhid: duplicate vhid 7 (first at line 8, column 14)");
    CHECK(error_of(head + "carp:\n  vhosts:\n    - {vhid: 256, interface: lan, addresses: []}\n") ==
          "config.yaml:8:14: carp.vhosts[0].vhid: expected an integer 1..255, got \"256\"");
    CHECK(error_of(head + "carp:\n  vhosts:\n    - {vhid: 1, interface: lan, addresses: []}\n") ==
          "config.yaml:8:44: carp.vhosts[0].addresses: expected a non-empty list of addresses, "
          "got an empty list");
}

TEST_CASE("lcores: workers are unique and apart from main and sync", "[config]") {
    CHECK(error_of(head + "lcores:\n  main: 0\n  workers: [0]\n") ==
          "config.yaml:8:13: lcores.workers[0]: expected an lcore other than main (0) and sync "
          "(0), got \"0\"");
    CHECK(error_of(head + "lcores:\n  sync: 3\n  workers: [1, 3]\n") ==
          "config.yaml:8:16: lcores.workers[1]: expected an lcore other than main (0) and sync "
          "(3), got \"3\"");
    CHECK(error_of(head + "lcores:\n  workers: [1, 2, 1]\n") ==
          "config.yaml:7:19: lcores.workers[2]: duplicate lcore 1 (first at line 7, column 13)");
    CHECK(error_of(head + "lcores:\n  workers: []\n") ==
          "config.yaml:7:12: lcores.workers: expected a non-empty list of lcore ids, got an "
          "empty list");
    CHECK(error_of(head + "lcores:\n  workers: [1024]\n") ==
          "config.yaml:7:13: lcores.workers[0]: expected an integer 0..1023, got \"1024\"");
    CHECK(error_of(head + "lcores:\n  idle: lazy\n") ==
          "config.yaml:7:9: lcores.idle: expected busy or adaptive, got \"lazy\"");
}

TEST_CASE("booleans accept YAML's true/false/yes/no and nothing else", "[config]") {
    for (std::string text : {"true", "yes", "True", "on"}) {
        INFO(text);
        CHECK(load(head + "    promiscuous: " + text + "\n").interfaces[0].promiscuous);
    }
    for (std::string text : {"false", "no", "False", "off"}) {
        INFO(text);
        CHECK_FALSE(load(head + "    promiscuous: " + text + "\n").interfaces[0].promiscuous);
    }
    CHECK(error_of(head + "    promiscuous: maybe\n") ==
          "config.yaml:6:18: interfaces.lan.promiscuous: expected true or false, got \"maybe\"");
    CHECK(error_of(head + "    promiscuous: 1\n") ==
          "config.yaml:6:18: interfaces.lan.promiscuous: expected true or false, got \"1\"");
}

TEST_CASE("sync: peer must be IPv4 unicast, ring size a power of two", "[config]") {
    const std::string sync = head + "sync:\n  interface: lan\n";
    CHECK(error_of(sync + "  peer: 224.0.0.240\n") ==
          "config.yaml:8:9: sync.peer: expected an IPv4 unicast address, got \"224.0.0.240\"");
    CHECK(error_of(sync + "  peer: \"2001:db8::1\"\n") ==
          "config.yaml:8:9: sync.peer: expected an IPv4 unicast address, got \"2001:db8::1\"");
    CHECK(error_of(sync + "  ring_size: 1000\n") ==
          "config.yaml:8:14: sync.ring_size: expected a power of two 64..1048576, got \"1000\"");
    CHECK(error_of(sync + "  ring_size: 32\n") ==
          "config.yaml:8:14: sync.ring_size: expected a power of two 64..1048576, got \"32\"");
    CHECK(error_of(sync + "  maxupd: 0\n") ==
          "config.yaml:8:11: sync.maxupd: expected an integer 1..255, got \"0\"");
    auto config = load(sync);
    CHECK(config.sync.enabled);
    CHECK_FALSE(config.sync.peer.has_value());
    CHECK(config.sync.auth.key_file.empty());
}

TEST_CASE("timeouts take pf.conf names and a sane adaptive range", "[config]") {
    CHECK(error_of(head + "timeouts:\n  tcp.establised: 5\n") ==
          "config.yaml:7:3: timeouts: unknown key \"tcp.establised\" (expected one of: "
          "tcp.first, tcp.opening, tcp.established, tcp.closing, tcp.finwait, tcp.closed, "
          "udp.first, udp.single, udp.multiple, icmp.first, icmp.error, other.first, "
          "other.single, other.multiple, frag, interval, adaptive.start, adaptive.end)");
    CHECK(error_of(head + "timeouts:\n  adaptive.start: 6000\n  adaptive.end: 5000\n") ==
          "config.yaml:8:17: timeouts.adaptive.end: expected a value above adaptive.start (6000), "
          "got \"5000\"");
    CHECK(error_of(head + "timeouts:\n  adaptive.start: 6000\n") ==
          "config.yaml:7:3: timeouts: missing required key \"adaptive.end\"");
    CHECK(load(head + "timeouts:\n  adaptive.end: 5000\n").timeouts.adaptive_end == 5000);
    CHECK(error_of(head + "timeouts:\n  interval: 0\n") ==
          "config.yaml:7:13: timeouts.interval: expected an integer 1..4294967295, got \"0\"");
    auto config = load(head + "timeouts:\n  udp.single: 0\n  frag: 4294967295\n");
    CHECK(config.timeouts.udp_single == 0);
    CHECK(config.timeouts.frag == 4294967295u);
}

TEST_CASE("control: octal socket mode and a host:port for metrics", "[config]") {
    CHECK(load(head + "control: {socket_mode: 0640}\n").control.socket_mode == 0640);
    CHECK(load(head + "control: {socket_mode: 660}\n").control.socket_mode == 0660);
    CHECK(load(head + "control: {socket_mode: \"0600\"}\n").control.socket_mode == 0600);
    CHECK(error_of(head + "control: {socket_mode: 0800}\n") ==
          "config.yaml:6:24: control.socket_mode: expected an octal file mode 0..0777, like "
          "0600, got \"0800\"");
    CHECK(error_of(head + "control: {socket_mode: 01777}\n") ==
          "config.yaml:6:24: control.socket_mode: expected an octal file mode 0..0777, like "
          "0600, got \"01777\"");

    CHECK(load(head + "control: {metrics: \"[::1]:9101\"}\n").control.metrics_listen ==
          "[::1]:9101");
    for (std::string text : {"localhost:9101", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                             "[127.0.0.1]:80", "::1:80", "127.0.0.1:", ":9101"}) {
        INFO(text);
        CHECK(error_of(head + "control: {metrics: \"" + text + "\"}\n") ==
              "config.yaml:6:20: control.metrics: expected an address and port, like "
              "127.0.0.1:9101 or [::1]:9101, got \"" +
                  text + "\"");
    }
}

TEST_CASE("documents that are not one map of sections are errors", "[config]") {
    CHECK(error_of("") == "config.yaml:1:1: expected a map of sections at the top level, got an "
                          "empty document");
    CHECK(error_of("# nothing but a comment\n") ==
          "config.yaml:1:1: expected a map of sections at the top level, got an empty document");
    CHECK(error_of("hello") ==
          "config.yaml:1:1: expected a map of sections at the top level, got \"hello\"");
    CHECK(error_of("- node\n") ==
          "config.yaml:1:1: expected a map of sections at the top level, got a list");
    CHECK(error_of(head + "---\nnode: {hostid: 2}\n") ==
          "config.yaml:6:1: expected one YAML document, got a second one");
    CHECK(error_of("? [a, b]\n: 1\n") == "config.yaml:1:3: expected a key name, got a list");
    CHECK(error_of(head + "---\n") ==
          "config.yaml:6:1: expected one YAML document, got a second one");
}

TEST_CASE("YAML syntax errors keep yaml-cpp's position, 1-based", "[config]") {
    CHECK(error_of(head + "    mtu: [1500\n") ==
          "config.yaml:7:1: invalid YAML: end of sequence flow not found");
    CHECK(error_of("node:\n\thostid: 1\n") == "config.yaml:2:8: invalid YAML: illegal map value");
    CHECK(error_of("node: *nope\n") ==
          "config.yaml:1:7: invalid YAML: the referenced anchor is not defined");
    CHECK(error_of(std::string(5000, '[')) == "config.yaml:1:1: invalid YAML: nested too deeply");
}

TEST_CASE("a stray comma at block level is an error, not a hang", "[config]") {
    // yaml-cpp 0.7's LoadAll() loops forever on these.
    CHECK(error_of(",") == "config.yaml:1:1: invalid YAML: unexpected \",\"");
    CHECK(error_of(", x\nnode: 1\n") == "config.yaml:1:1: invalid YAML: unexpected \",\"");
    CHECK(error_of("- a\n,\n") == "config.yaml:2:1: invalid YAML: unexpected \",\"");
    CHECK(error_of(head + "...\n,\n") == "config.yaml:7:1: invalid YAML: unexpected \",\"");
}

TEST_CASE("ConfigError keeps the position and the bare message apart", "[config]") {
    try {
        load(head + "    mtu: big\n");
        FAIL("loaded");
    } catch (const ConfigError &e) {
        CHECK(e.pos().file == "config.yaml");
        CHECK(e.pos().line == 6);
        CHECK(e.pos().column == 10);
        CHECK(e.message() == "interfaces.lan.mtu: expected an integer 68..9216, got \"big\"");
    }
}

TEST_CASE("a file that cannot be read is a ConfigError without a line", "[config]") {
    try {
        load_config("/nonexistent/syncwall.yaml");
        FAIL("loaded");
    } catch (const ConfigError &e) {
        CHECK(std::string(e.what()) ==
              "/nonexistent/syncwall.yaml: cannot open: No such file or directory");
        CHECK(e.pos().line == 0);
    }
    try {
        load_config(examples.string());
        FAIL("loaded");
    } catch (const ConfigError &e) {
        CHECK(std::string(e.what()) == examples.string() + ": cannot read: Is a directory");
    }
    try {
        load_config("/dev/zero");
        FAIL("loaded");
    } catch (const ConfigError &e) {
        CHECK(std::string(e.what()) == "/dev/zero: cannot read: larger than 16 MiB");
    }
}

TEST_CASE("no input gets anything but a ConfigError out of the loader", "[config]") {
    std::vector<std::string> seeds = {read_text(examples / "default.yaml"),
                                      read_text(examples / "ha-node-a.yaml"), head};
    std::vector<std::string> inputs = {
        std::string("\0", 1),
        std::string("\xff\xfe\x00\x01garbage", 11),
        "---",
        "--- |\n",
        "...",
        ",",
        "- a\n, b\n",
        "~",
        "[]",
        "{}",
        "42",
        "!!binary AAAA",
        "%YAML 1.2\n---\nnode: 1\n",
        "%TAG ! tag:example.com,2000:\n--- !foo bar\n",
        "&a [*a]",
        "node: &a {hostid: 1, x: *a}\ninterfaces: *a\n",
        "node: {hostid: 1}\ninterfaces: &i {lan: *i}\n",
        "node: {hostid: 99999999999999999999999999999999999999}\n",
        "node: {hostid: -1}\n",
        "node: {hostid: 1e9}\n",
        "? ? ? ? a\n",
        "node: !!map {hostid: !!str 1}\ninterfaces: {lan: {devargs: !!int x}}\n",
        std::string(100000, '{'),
        std::string(100000, '-'),
        std::string(100000, ' ') + "a: b",
        std::string(1 << 20, 'a'),
    };
    std::string nested;
    for (int i = 0; i < 2000; i++)
        nested += std::string(size_t(i), ' ') + "a:\n";
    inputs.push_back(nested);

    // Mutants of valid files: bytes dropped, replaced with YAML's special characters,
    // inserted at random, lines duplicated, the file cut short.
    std::mt19937 random(20240601);
    const std::string special = ":-[]{}&*!|>'\"%@`#,? \n\t\\0x~";
    auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random); };
    for (int i = 0; i < 3000; i++) {
        std::string text = seeds[pick(seeds.size())];
        for (size_t edits = 1 + pick(4); edits > 0; edits--) {
            size_t at = pick(text.size());
            switch (pick(5)) {
            case 0:
                text.erase(at, 1 + pick(8));
                break;
            case 1:
                text[at] = special[pick(special.size())];
                break;
            case 2:
                text.insert(at, 1, char(pick(256)));
                break;
            case 3: {
                size_t start = text.rfind('\n', at);
                start = start == std::string::npos ? 0 : start + 1;
                size_t end = text.find('\n', at);
                text.insert(start,
                            text.substr(start, end == std::string::npos ? end : end - start + 1));
                break;
            }
            default:
                text.resize(at);
                break;
            }
            // push_back, not `text = "x"`: GCC 12 at -O3 inlines that assignment into a
            // memcpy it wrongly flags as overlapping (-Wrestrict, GCC bug 105329), which
            // breaks the release build under -Werror.
            if (text.empty()) text.push_back('x');
        }
        inputs.push_back(text);
    }

    // Token soup: YAML's punctuation in random order, which finds parser loops.
    const std::vector<std::string> tokens = {
        ",",      "- ", ": ", "[", "]", "{", "}",   "\n",  "  ",   "&a ",    "*a", "? ",
        "!!str ", "'",  "\"", "|", ">", "#", "---", "...", "node", "hostid", "1",  "\t"};
    for (int i = 0; i < 2000; i++) {
        std::string text;
        for (size_t n = pick(30); n > 0; n--)
            text += tokens[pick(tokens.size())];
        inputs.push_back(text);
    }

    int loaded = 0;
    int refused = 0;
    for (const auto &text : inputs) {
        try {
            load_config_text(text, "fuzz.yaml");
            loaded++;
        } catch (const ConfigError &e) {
            refused++;
            auto lines = size_t(std::count(text.begin(), text.end(), '\n')) + 1;
            INFO(text.substr(0, 200) << "\n-> " << e.what());
            REQUIRE(std::string(e.what()).rfind("fuzz.yaml", 0) == 0);
            REQUIRE(e.pos().line >= 0);
            REQUIRE(size_t(e.pos().line) <= lines + 1);
        } catch (const std::exception &e) {
            FAIL("not a ConfigError: " << e.what() << "\ninput: " << text.substr(0, 200));
        }
    }
    CHECK(loaded > 0);
    CHECK(refused > 0);
}

TEST_CASE("parse_ip_address takes IPv4 and IPv6 text and nothing else", "[config]") {
    auto v4 = parse_ip_address("192.0.2.1");
    REQUIRE(v4);
    CHECK(v4->is_v4());
    CHECK(v4->v4_host_order() == 0xc0000201);
    CHECK(v4->to_string() == "192.0.2.1");

    auto v6 = parse_ip_address("2001:DB8:0:0::1");
    REQUIRE(v6);
    CHECK(v6->is_v6());
    CHECK(v6->bytes[0] == 0x20);
    CHECK(v6->bytes[15] == 0x01);
    CHECK(v6->to_string() == "2001:db8::1");
    CHECK(parse_ip_address("::ffff:192.0.2.1")->to_string() == "::ffff:192.0.2.1");
    CHECK(parse_ip_address("::")->is_v6());

    for (std::string bad : std::vector<std::string>{
             "", "192.0.2", "192.0.2.256", "192.0.2.1.5", "1.2.3.04", " 1.2.3.4", "1.2.3.4 ",
             "0x7f.0.0.1", "192.0.2.1/24", "2001:db8:::1", "fe80::1%eth0", "host",
             std::string("1.2.3.4\0junk", 12)}) {
        INFO(bad);
        CHECK_FALSE(parse_ip_address(bad).has_value());
    }
    CHECK(IpAddress{}.to_string() == "unset");
}

TEST_CASE("parse_ip_prefix: length bounds, bare addresses, require_length", "[config]") {
    CHECK(parse_ip_prefix("192.0.2.0/24")->length == 24);
    CHECK(parse_ip_prefix("0.0.0.0/0")->length == 0);
    CHECK(parse_ip_prefix("192.0.2.1/32")->length == 32);
    CHECK(parse_ip_prefix("2001:db8::/128")->length == 128);
    CHECK(parse_ip_prefix("192.0.2.1")->length == 32);
    CHECK(parse_ip_prefix("2001:db8::1")->length == 128);
    CHECK_FALSE(parse_ip_prefix("192.0.2.1", true).has_value());
    CHECK(parse_ip_prefix("192.0.2.1/24", true)->to_string() == "192.0.2.1/24");
    CHECK(parse_ip_prefix("2001:DB8::/32")->to_string() == "2001:db8::/32");
    for (std::string bad :
         {"192.0.2.0/33", "2001:db8::/129", "192.0.2.0/", "192.0.2.0/-1", "192.0.2.0/+8",
          "192.0.2.0/8/8", "192.0.2.0/ 8", "192.0.2.0/1000", "/24", "192.0.2.0/x", "nope/8"}) {
        INFO(bad);
        CHECK_FALSE(parse_ip_prefix(bad).has_value());
    }
}

TEST_CASE("parse_mac reads six colon-separated hex pairs in either case", "[config]") {
    auto mac = parse_mac("02:00:5E:aB:cd:FF");
    REQUIRE(mac);
    CHECK(mac->bytes == std::array<uint8_t, 6>{0x02, 0x00, 0x5e, 0xab, 0xcd, 0xff});
    CHECK(mac->to_string() == "02:00:5e:ab:cd:ff");
    for (std::string bad :
         {"", "02:00:5e:ab:cd", "02:00:5e:ab:cd:ff:00", "02-00-5e-ab-cd-ff", "0200.5eab.cdff",
          "2:0:5e:ab:cd:ff", "02:00:5e:ab:cd:fg", "02:00:5e:ab:cd:ff ", "02::00:5e:ab:cd:f"}) {
        INFO(bad);
        CHECK_FALSE(parse_mac(bad).has_value());
    }
}

TEST_CASE("limits.frags and timeouts.frag set reassembly's cap and timeout", "[config]") {
    const Config defaults = load(head);
    CHECK(defaults.limits.frags == 1024);
    CHECK(defaults.timeouts.frag == 60);
    const Config c = load(head + "limits:\n  frags: 4096\ntimeouts:\n  frag: 30\n");
    CHECK(c.limits.frags == 4096);
    CHECK(c.timeouts.frag == 30);
    CHECK(error_of(head + "limits:\n  frags: 0\n") != "");
}
