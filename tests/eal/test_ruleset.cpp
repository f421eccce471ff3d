// The compiled ruleset on rte_acl (suite "eal": no hugepages, no PCI): pf's decision (first
// matching quick rule, else the last matching rule) for hand-made keys, every kind of host,
// port and flag match, the limits, and a randomised cross-check against a plain
// rule-by-rule matcher written here.
#include "config/loader.hpp"
#include "config/pf_rule.hpp"
#include "dataplane/ruleset.hpp"

#include <catch2/catch.hpp>
#include <rte_acl.h>
#include <rte_memory.h>

#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using namespace syncwall;
using config::IpAddress;
using config::IpPrefix;

namespace {

constexpr uint8_t tcp = 6, udp = 17, icmp = 1, icmp6 = 58, gre = 47;
constexpr uint8_t S = config::tcp_flags::syn, A = config::tcp_flags::ack,
                  F = config::tcp_flags::fin, R = config::tcp_flags::rst;
constexpr uint32_t none = dp::Ruleset::default_rule;
enum Port { lan = 0, wan = 1, dmz = 2 };

IpAddress ip(const char *text) {
    auto a = config::parse_ip_address(text);
    if (!a) throw std::invalid_argument(std::string("bad address ") + text);
    return *a;
}
IpPrefix pfx(const char *text) {
    auto p = config::parse_ip_prefix(text);
    if (!p) throw std::invalid_argument(std::string("bad prefix ") + text);
    return *p;
}

// lan and wan have an IPv4 and an IPv6 network; dmz has two IPv4 networks and no IPv6.
config::Config test_config() {
    config::Config cfg;
    cfg.source_file = "fw.yaml";
    auto iface = [](const char *name, std::vector<IpPrefix> addresses) {
        config::InterfaceConfig i;
        i.name = name;
        i.addresses = std::move(addresses);
        return i;
    };
    cfg.interfaces = {iface("lan", {pfx("192.0.2.1/24"), pfx("2001:db8:1::1/64")}),
                      iface("wan", {pfx("198.51.100.1/24"), pfx("2001:db8:2::1/64")}),
                      iface("dmz", {pfx("203.0.113.1/25"), pfx("203.0.113.129/25")})};
    cfg.tables = {{"web", {pfx("10.1.0.0/16"), pfx("10.2.3.4/32"), pfx("2001:db8:99::/48")}, {}},
                  {"bad", {}, {}}};
    config::CarpVhostConfig vhost;
    vhost.vhid = 1;
    vhost.interface = "lan";
    vhost.addresses = {pfx("192.0.2.254/24")};
    cfg.carp.vhosts = {vhost};
    return cfg;
}

std::vector<std::string> names_of_interfaces(const config::Config &cfg) {
    std::vector<std::string> out;
    for (const auto &i : cfg.interfaces)
        out.push_back(i.name);
    return out;
}
std::vector<std::string> names_of_tables(const config::Config &cfg) {
    std::vector<std::string> out;
    for (const auto &t : cfg.tables)
        out.push_back(t.name);
    return out;
}

// Rule i of `lines` sits at fw.yaml line i + 1, column 1.
std::vector<config::PfRule> parse_rules(const config::Config &cfg,
                                        const std::vector<std::string> &lines) {
    std::vector<config::PfRule> rules;
    for (std::size_t i = 0; i < lines.size(); i++) {
        rules.push_back(config::parse_pf_rule(lines[i], {"fw.yaml", int(i + 1), 1},
                                              names_of_interfaces(cfg), names_of_tables(cfg)));
        rules.back().number = uint32_t(i);
    }
    return rules;
}

std::string unique_name() {
    static int n = 0;
    return "rstest" + std::to_string(n++);
}

std::unique_ptr<dp::Ruleset> compile(const std::vector<std::string> &lines,
                                     const config::Config &cfg = test_config()) {
    return std::make_unique<dp::Ruleset>(cfg, parse_rules(cfg, lines), 2, unique_name(),
                                         SOCKET_ID_ANY);
}

// A packet as the worker would describe it; the family is that of the addresses.
struct Packet {
    uint8_t proto = udp;
    IpAddress src = ip("192.0.2.10"), dst = ip("198.51.100.10");
    uint16_t sport = 40000, dport = 80;
    int iface = lan;
    bool out = false;
    uint8_t flags = 0; // TCP only

    Packet &from(const char *a) { return src = ip(a), *this; }
    Packet &to(const char *a) { return dst = ip(a), *this; }
    Packet &ports(uint16_t s, uint16_t d) { return sport = s, dport = d, *this; }
    Packet &port(uint16_t d) { return dport = d, *this; }
    Packet &on(int i, bool outbound = false) { return iface = i, out = outbound, *this; }
    Packet &outbound() { return out = true, *this; }
};

Packet tcp_packet(uint8_t flags = S) {
    Packet p;
    p.proto = tcp;
    p.flags = flags;
    return p;
}
Packet udp_packet() {
    return Packet{};
}
Packet icmp_packet(uint8_t type, uint8_t code) {
    Packet p;
    p.proto = icmp;
    p.sport = type;
    p.dport = code;
    return p;
}
Packet proto_packet(uint8_t proto) {
    Packet p;
    p.proto = proto;
    p.sport = p.dport = 0;
    return p;
}

dp::FilterKey4 key4(const Packet &p) {
    dp::FilterKey4 k{};
    k.proto = p.proto;
    k.iface_dir = uint8_t(p.iface << 1 | (p.out ? 1 : 0));
    k.tcp_flags = p.proto == tcp ? p.flags : 0;
    std::memcpy(&k.src, p.src.bytes.data(), 4);
    std::memcpy(&k.dst, p.dst.bytes.data(), 4);
    k.sport = p.sport;
    k.dport = p.dport;
    return k;
}
dp::FilterKey6 key6(const Packet &p) {
    dp::FilterKey6 k{};
    k.proto = p.proto;
    k.iface_dir = uint8_t(p.iface << 1 | (p.out ? 1 : 0));
    k.tcp_flags = p.proto == tcp ? p.flags : 0;
    std::memcpy(k.src, p.src.bytes.data(), 16);
    std::memcpy(k.dst, p.dst.bytes.data(), 16);
    k.sport = p.sport;
    k.dport = p.dport;
    return k;
}

// The number of the deciding rule, or `none`.
uint32_t decide(const dp::Ruleset &rs, const Packet &p) {
    uint32_t result = 12345;
    if (p.src.is_v4()) {
        const dp::FilterKey4 k = key4(p);
        const dp::FilterKey4 *keys[1] = {&k};
        rs.classify4(keys, &result, 1);
    } else {
        const dp::FilterKey6 k = key6(p);
        const dp::FilterKey6 *keys[1] = {&k};
        rs.classify6(keys, &result, 1);
    }
    return result;
}

std::string compile_error(const std::vector<std::string> &lines, const config::Config &cfg) {
    try {
        compile(lines, cfg);
        return "";
    } catch (const config::ConfigError &e) {
        return e.what();
    }
}

// ---- a plain matcher: pf's rules one by one, as pf.conf(5) describes them

bool prefix_contains(const IpAddress &net, int length, const IpAddress &a) {
    if (net.family != a.family) return false;
    for (int bit = 0; bit < length; bit++) {
        const uint8_t m = uint8_t(0x80u >> (bit % 8));
        if ((net.bytes[bit / 8] & m) != (a.bytes[bit / 8] & m)) return false;
    }
    return true;
}

bool host_matches(const config::HostSpec &h, const IpAddress &a, const config::Config &cfg) {
    using K = config::HostSpec::Kind;
    const int full = a.is_v4() ? 32 : 128;
    bool inside = false;
    switch (h.kind) {
    case K::any:
        inside = true;
        break;
    case K::prefix:
        if (h.prefix.addr.family != a.family) return false; // a literal of the other family
        inside = prefix_contains(h.prefix.addr, h.prefix.length, a);
        break;
    case K::table:
        for (const auto &t : cfg.tables)
            if (t.name == h.name)
                for (const auto &e : t.entries)
                    inside |= prefix_contains(e.addr, e.length, a);
        break;
    case K::iface_network:
    case K::iface_address:
        for (const auto &i : cfg.interfaces)
            if (i.name == h.name)
                for (const auto &e : i.addresses)
                    inside |=
                        prefix_contains(e.addr, h.kind == K::iface_network ? e.length : full, a);
        break;
    case K::self:
        for (const auto &i : cfg.interfaces)
            for (const auto &e : i.addresses)
                inside |= e.addr == a;
        for (const auto &v : cfg.carp.vhosts)
            for (const auto &e : v.addresses)
                inside |= e.addr == a;
        break;
    }
    return inside != h.negated;
}

bool endpoint_matches(const config::Endpoint &e, const IpAddress &a, uint16_t port,
                      const config::Config &cfg) {
    bool host = false;
    for (const auto &h : e.hosts)
        host |= host_matches(h, a, cfg);
    if (!host) return false;
    if (e.ports.empty()) return true;
    for (const auto &p : e.ports)
        if (p.matches(port)) return true;
    return false;
}

bool rule_matches(const config::PfRule &r, const Packet &p, const config::Config &cfg) {
    if (r.af != 0 && r.af != p.src.family) return false;
    if (r.direction == config::Direction::in && p.out) return false;
    if (r.direction == config::Direction::out && !p.out) return false;
    if (!r.iface.empty() && (cfg.interface_index(r.iface) == p.iface) == r.iface_negated)
        return false;
    if (!r.protos.empty() && std::find(r.protos.begin(), r.protos.end(), p.proto) == r.protos.end())
        return false;
    if (p.proto == tcp && (p.flags & r.flags_mask) != r.flags) return false;
    if (!endpoint_matches(r.from, p.src, p.sport, cfg)) return false;
    if (!endpoint_matches(r.to, p.dst, p.dport, cfg)) return false;
    if (!r.icmp_types.empty()) {
        bool any = false;
        for (const auto &t : r.icmp_types)
            any |= t.type == p.sport && (t.code < 0 || t.code == p.dport);
        if (!any) return false;
    }
    return true;
}

uint32_t reference_decide(const std::vector<config::PfRule> &rules, const Packet &p,
                          const config::Config &cfg) {
    uint32_t decided = none;
    for (uint32_t i = 0; i < rules.size(); i++) {
        if (!rule_matches(rules[i], p, cfg)) continue;
        decided = i;
        if (rules[i].quick) break;
    }
    return decided;
}

} // namespace

// ---- pf's decision

TEST_CASE("the last matching rule decides", "[eal][ruleset]") {
    auto rs = compile({"pass all", "block in on lan proto tcp to port 22",
                       "pass in on lan proto tcp from 192.0.2.10 to port 22"});
    CHECK(decide(*rs, tcp_packet().from("192.0.2.10").port(22)) == 2);
    CHECK(decide(*rs, tcp_packet().from("192.0.2.11").port(22)) == 1);
    CHECK(decide(*rs, tcp_packet().from("192.0.2.11").port(80)) == 0);
    CHECK(decide(*rs, tcp_packet().from("192.0.2.10").port(22).on(wan)) == 0);
}

TEST_CASE("a quick rule wins over earlier and later non-quick rules", "[eal][ruleset]") {
    auto rs = compile({"block all", "pass quick proto tcp to port 22", "block proto tcp"});
    CHECK(decide(*rs, tcp_packet().port(22)) == 1);
    CHECK(decide(*rs, tcp_packet().port(80)) == 2);
    CHECK(decide(*rs, udp_packet().port(22)) == 0);
}

TEST_CASE("the first matching quick rule wins among quick rules", "[eal][ruleset]") {
    auto rs = compile({"block all", "block quick proto tcp from 192.0.2.0/24",
                       "pass quick proto tcp to port 22", "pass quick all"});
    CHECK(decide(*rs, tcp_packet().from("192.0.2.9").port(22)) == 1);
    CHECK(decide(*rs, tcp_packet().from("10.0.0.9").port(22)) == 2);
    CHECK(decide(*rs, tcp_packet().from("10.0.0.9").port(23)) == 3);
}

TEST_CASE("in, out and both directions", "[eal][ruleset]") {
    auto rs = compile({"block in proto udp", "pass out proto udp", "block proto udp to port 53"});
    CHECK(decide(*rs, udp_packet().port(80)) == 0);
    CHECK(decide(*rs, udp_packet().port(80).outbound()) == 1);
    CHECK(decide(*rs, udp_packet().port(53)) == 2);
    CHECK(decide(*rs, udp_packet().port(53).outbound()) == 2);
}

TEST_CASE("on lan matches lan only; on ! lan every other interface", "[eal][ruleset]") {
    auto rs = compile({"block on lan proto udp", "pass out on ! lan proto udp to port 53"});
    CHECK(decide(*rs, udp_packet().port(80).on(lan)) == 0);
    CHECK(decide(*rs, udp_packet().port(80).on(wan)) == none);
    CHECK(decide(*rs, udp_packet().port(53).on(wan, true)) == 1);
    CHECK(decide(*rs, udp_packet().port(53).on(dmz, true)) == 1);
    CHECK(decide(*rs, udp_packet().port(53).on(dmz, false)) == none);
    CHECK(decide(*rs, udp_packet().port(53).on(lan, true)) == 0);
}

TEST_CASE("a protocol list matches each of its protocols and no other", "[eal][ruleset]") {
    auto rs = compile({"block proto { udp icmp }", "pass proto 47"});
    CHECK(decide(*rs, udp_packet()) == 0);
    CHECK(decide(*rs, icmp_packet(8, 0)) == 0);
    CHECK(decide(*rs, proto_packet(gre)) == 1);
    CHECK(decide(*rs, tcp_packet()) == none);
    CHECK(decide(*rs, proto_packet(50)) == none);
}

TEST_CASE("every port operator matches the ports pf's operator does", "[eal][ruleset]") {
    struct Case {
        const char *ports;
        std::vector<uint16_t> match, miss;
    };
    const std::vector<Case> cases = {
        {"80", {80}, {79, 81, 0, 65535}},
        {"= 80", {80}, {79, 81}},
        {"!= 80", {0, 79, 81, 65535}, {80}},
        {"< 1024", {0, 1023}, {1024, 65535}},
        {"<= 1024", {0, 1024}, {1025}},
        {"> 1024", {1025, 65535}, {1024, 0}},
        {">= 1024", {1024, 65535}, {1023}},
        {"1000:2000", {1000, 1500, 2000}, {999, 2001}},
        {"1000 >< 2000", {1001, 1999}, {1000, 2000, 999}},
        {"1000 <> 2000", {0, 999, 2001, 65535}, {1000, 1500, 2000}},
        {"{ 22 80 443 }", {22, 80, 443}, {21, 23, 81, 442, 444}},
        {"{ < 10 > 65530 }", {0, 9, 65531, 65535}, {10, 65530, 1000}},
        {"{ 1:100 50:200 }", {1, 100, 150, 200}, {0, 201}},
        {"65535", {65535}, {65534, 0}},
        {"0", {0}, {1}},
    };
    for (const auto &c : cases) {
        INFO("port " << c.ports);
        auto rs = compile({std::string("pass proto tcp to port ") + c.ports + " flags any",
                           std::string("block proto udp from port ") + c.ports});
        for (uint16_t p : c.match) {
            INFO("port " << p);
            CHECK(decide(*rs, tcp_packet(A).port(p)) == 0);
            CHECK(decide(*rs, udp_packet().ports(p, 7)) == 1);
        }
        for (uint16_t p : c.miss) {
            INFO("port " << p);
            CHECK(decide(*rs, tcp_packet(A).port(p)) == none);
            CHECK(decide(*rs, udp_packet().ports(p, 7)) == none);
        }
    }
}

TEST_CASE("ports are host order in the key and addresses network order", "[eal][ruleset]") {
    // 258 = 0x0102 and 513 = 0x0201: a byte-order mistake would swap them.
    auto rs = compile({"block proto udp from 10.0.0.1 port 258 to 10.0.0.2 port 1"});
    CHECK(decide(*rs, udp_packet().from("10.0.0.1").to("10.0.0.2").ports(258, 1)) == 0);
    CHECK(decide(*rs, udp_packet().from("10.0.0.1").to("10.0.0.2").ports(513, 1)) == none);
    CHECK(decide(*rs, udp_packet().from("10.0.0.1").to("10.0.0.2").ports(258, 256)) == none);
    CHECK(decide(*rs, udp_packet().from("1.0.0.10").to("10.0.0.2").ports(258, 1)) == none);
    CHECK(decide(*rs, udp_packet().from("10.0.0.1").to("2.0.0.10").ports(258, 1)) == none);
}

// ---- hosts

TEST_CASE("a table matches each of its entries in both families", "[eal][ruleset]") {
    auto rs = compile({"block from <web>", "pass to <bad>"});
    CHECK(decide(*rs, udp_packet().from("10.1.2.3")) == 0);
    CHECK(decide(*rs, udp_packet().from("10.1.255.255")) == 0);
    CHECK(decide(*rs, udp_packet().from("10.2.3.4")) == 0);
    CHECK(decide(*rs, udp_packet().from("10.2.3.5")) == none);
    CHECK(decide(*rs, udp_packet().from("10.0.255.255")) == none);
    CHECK(decide(*rs, udp_packet().from("2001:db8:99:ffff::1").to("2001:db8:2::5")) == 0);
    CHECK(decide(*rs, udp_packet().from("2001:db8:98::1").to("2001:db8:2::5")) == none);
}

TEST_CASE("a negated address matches every other address of its family", "[eal][ruleset]") {
    auto rs = compile({"block from ! 10.0.0.0/8"});
    CHECK(decide(*rs, udp_packet().from("10.1.1.1")) == none);
    CHECK(decide(*rs, udp_packet().from("11.0.0.0")) == 0);
    CHECK(decide(*rs, udp_packet().from("9.255.255.255")) == 0);
    CHECK(decide(*rs, udp_packet().from("255.255.255.255")) == 0);
    CHECK(decide(*rs, udp_packet().from("0.0.0.0")) == 0);
    CHECK(decide(*rs, udp_packet().from("2001:db8::1").to("2001:db8::2")) == none);
    // The complement of a /8 is 8 prefixes, no more.
    CHECK(rs->acl_rules() == 8);
}

TEST_CASE("a negated table matches what is in none of its entries", "[eal][ruleset]") {
    auto rs = compile({"block to ! <web>"});
    CHECK(decide(*rs, udp_packet().to("10.1.0.1")) == none);
    CHECK(decide(*rs, udp_packet().to("10.2.3.4")) == none);
    CHECK(decide(*rs, udp_packet().to("10.2.3.5")) == 0);
    CHECK(decide(*rs, udp_packet().to("10.3.0.1")) == 0);
    CHECK(decide(*rs, udp_packet().from("2001:db8:1::5").to("2001:db8:99::1")) == none);
    CHECK(decide(*rs, udp_packet().from("2001:db8:1::5").to("2001:db8:98::1")) == 0);
}

TEST_CASE("a list with a negated element matches when any element does, as pf's lists do",
          "[eal][ruleset]") {
    // 10.1.2.3 is in the first element, 11.1.1.1 not in the second: pf's list matches both.
    auto every = compile({"block from { 10.0.0.0/8 ! 10.1.0.0/16 }"});
    CHECK(decide(*every, udp_packet().from("10.1.2.3")) == 0);
    CHECK(decide(*every, udp_packet().from("11.1.1.1")) == 0);
    auto two_negations = compile({"block from { ! 10.0.0.0/8 ! 11.0.0.0/8 }"});
    CHECK(decide(*two_negations, udp_packet().from("10.0.0.1")) == 0);
    CHECK(decide(*two_negations, udp_packet().from("11.0.0.1")) == 0);
    auto mixed = compile({"block from { 192.0.2.0/24 ! <web> }"});
    CHECK(decide(*mixed, udp_packet().from("192.0.2.5")) == 0);
    CHECK(decide(*mixed, udp_packet().from("10.9.9.9")) == 0);
    CHECK(decide(*mixed, udp_packet().from("10.1.2.3")) == none);
    CHECK(decide(*mixed, udp_packet().from("2001:db8:99::1").to("2001:db8:1::1")) == none);
    CHECK(decide(*mixed, udp_packet().from("2001:db8:98::1").to("2001:db8:1::1")) == 0);
}

TEST_CASE("an interface's networks and its addresses", "[eal][ruleset]") {
    auto rs = compile({"block from lan:network", "pass from dmz:network", "block to lan"});
    CHECK(decide(*rs, udp_packet().from("192.0.2.77").to("8.8.8.8")) == 0);
    CHECK(decide(*rs, udp_packet().from("192.0.3.1").to("8.8.8.8")) == none);
    CHECK(decide(*rs, udp_packet().from("2001:db8:1::abcd").to("2001:db8:5::1")) == 0);
    CHECK(decide(*rs, udp_packet().from("2001:db8:2::1").to("2001:db8:5::1")) == none);
    CHECK(decide(*rs, udp_packet().from("203.0.113.5").to("8.8.8.8")) == 1);
    CHECK(decide(*rs, udp_packet().from("203.0.113.200").to("8.8.8.8")) == 1);
    CHECK(decide(*rs, udp_packet().from("2001:db8:3::1").to("2001:db8:5::1")) == none);
    CHECK(decide(*rs, udp_packet().from("203.0.113.5").to("192.0.2.1")) == 2);
    CHECK(decide(*rs, udp_packet().from("203.0.113.5").to("192.0.2.2")) == 1);
    CHECK(decide(*rs, udp_packet().from("2001:db8:3::1").to("2001:db8:1::1")) == 2);
}

TEST_CASE("self is every address of every interface and of CARP", "[eal][ruleset]") {
    auto rs = compile({"block to self", "pass from ! self to 8.8.8.8"});
    for (const char *a :
         {"192.0.2.1", "198.51.100.1", "203.0.113.1", "203.0.113.129", "192.0.2.254"}) {
        INFO(a);
        CHECK(decide(*rs, udp_packet().to(a)) == 0);
        CHECK(decide(*rs, udp_packet().from(a).to("8.8.8.8")) == none);
    }
    CHECK(decide(*rs, udp_packet().from("2001:db8:7::1").to("2001:db8:2::1")) == 0);
    CHECK(decide(*rs, udp_packet().to("192.0.2.2")) == none);
    CHECK(decide(*rs, udp_packet().from("192.0.2.2").to("8.8.8.8")) == 1);
}

// ---- TCP flags and ICMP

TEST_CASE("flags S/SA matches a SYN but not a SYN+ACK or an ACK", "[eal][ruleset]") {
    auto rs = compile({"pass proto tcp flags S/SA"});
    CHECK(decide(*rs, tcp_packet(S)) == 0);
    CHECK(decide(*rs, tcp_packet(S | F)) == 0);
    CHECK(decide(*rs, tcp_packet(S | A)) == none);
    CHECK(decide(*rs, tcp_packet(A)) == none);
    CHECK(decide(*rs, tcp_packet(0)) == none);
}

TEST_CASE("flags apply to TCP only: a tcp-and-udp rule matches UDP whatever the flags",
          "[eal][ruleset]") {
    auto rs = compile({"pass proto { tcp udp } flags S/SA", "block proto tcp flags /R"});
    CHECK(decide(*rs, udp_packet()) == 0); // rule 1 is TCP only
    CHECK(decide(*rs, tcp_packet(S)) == 1);
    CHECK(decide(*rs, tcp_packet(S | A)) == 1);
    CHECK(decide(*rs, tcp_packet(R)) == none);
    // `pass all` takes flags S/SA: TCP is tested, every other protocol passes.
    auto all = compile({"pass all"});
    CHECK(decide(*all, tcp_packet(S)) == 0);
    CHECK(decide(*all, tcp_packet(A)) == none);
    CHECK(decide(*all, udp_packet()) == 0);
    CHECK(decide(*all, icmp_packet(8, 0)) == 0);
    for (unsigned proto = 0; proto < 256; proto++) {
        INFO("proto " << proto);
        CHECK(decide(*all, proto_packet(uint8_t(proto)).from("10.0.0.1")) ==
              (proto == tcp ? none : 0));
    }
}

TEST_CASE("icmp-type matches the type, and the code when one is given", "[eal][ruleset]") {
    auto rs = compile({"block proto icmp icmp-type echoreq",
                       "pass proto icmp icmp-type { unreach code port-unr 11 }"});
    CHECK(decide(*rs, icmp_packet(8, 0)) == 0);
    CHECK(decide(*rs, icmp_packet(8, 5)) == 0);
    CHECK(decide(*rs, icmp_packet(0, 0)) == none);
    CHECK(decide(*rs, icmp_packet(3, 3)) == 1);
    CHECK(decide(*rs, icmp_packet(3, 1)) == none);
    CHECK(decide(*rs, icmp_packet(11, 0)) == 1);
    CHECK(decide(*rs, icmp_packet(11, 1)) == 1);
    auto v6 = compile({"block proto icmp6 icmp6-type echoreq"});
    Packet echo6 = icmp_packet(128, 0).from("2001:db8:1::5").to("2001:db8:2::5");
    echo6.proto = icmp6;
    CHECK(decide(*v6, echo6) == 0);
    echo6.sport = 129;
    CHECK(decide(*v6, echo6) == none);
    CHECK(decide(*v6, icmp_packet(128, 0)) == none);
}

// ---- families

TEST_CASE("inet6 rules match IPv6 keys on every word of the address", "[eal][ruleset]") {
    auto rs = compile({"pass inet6 proto tcp from 2001:db8:1::/64 to 2001:db8:2::10 port 443",
                       "block inet6 from 2001:db8:1:0:8000::/65", "block inet6 to ::ffff:0:0/96",
                       "pass inet6 from 2001:db8:5::1:0:0/100"});
    const auto syn = tcp_packet(S).port(443);
    CHECK(decide(*rs, Packet(syn).from("2001:db8:1::7").to("2001:db8:2::10")) == 0);
    CHECK(decide(*rs, Packet(syn).from("2001:db8:1::7").to("2001:db8:2::11")) == none);
    CHECK(decide(*rs, Packet(syn).from("2001:db8:1:1::7").to("2001:db8:2::10")) == none);
    CHECK(decide(*rs, Packet(syn).from("2001:db8:1:0:8000::7").to("2001:db8:2::10")) == 1);
    CHECK(decide(*rs, Packet(syn).from("2001:db8:1:0:7fff::7").to("2001:db8:2::10")) == 0);
    CHECK(decide(*rs, udp_packet().from("2001:db8:1::7").to("::ffff:1.2.3.4")) == 2);
    CHECK(decide(*rs, udp_packet().from("2001:db8:1::7").to("::fffe:1.2.3.4")) == none);
    CHECK(decide(*rs, udp_packet().from("2001:db8:5::1:fff:ffff").to("::1")) == 3);
    CHECK(decide(*rs, udp_packet().from("2001:db8:5::2:0:0").to("::1")) == none);
    CHECK(decide(*rs, Packet(syn).from("192.0.2.7").to("198.51.100.10")) == none);
}

TEST_CASE("a rule without a family matches both; inet and inet6 one each", "[eal][ruleset]") {
    auto both = compile({"pass all"});
    CHECK(decide(*both, udp_packet()) == 0);
    CHECK(decide(*both, udp_packet().from("2001:db8:1::1").to("2001:db8:2::1")) == 0);
    CHECK(both->acl_rules() == 2 * 9); // TCP with flags + 8 blocks of other protocols, twice
    auto v4 = compile({"pass inet proto udp"});
    CHECK(decide(*v4, udp_packet()) == 0);
    CHECK(decide(*v4, udp_packet().from("2001:db8:1::1").to("2001:db8:2::1")) == none);
    auto v6 = compile({"pass inet6 proto udp"});
    CHECK(decide(*v6, udp_packet()) == none);
    CHECK(decide(*v6, udp_packet().from("2001:db8:1::1").to("2001:db8:2::1")) == 0);
}

TEST_CASE("an address list of both families pairs addresses of one family only", "[eal][ruleset]") {
    auto rs = compile({"block from { 10.0.0.1 2001:db8:1::1 } to <web>"});
    CHECK(decide(*rs, udp_packet().from("10.0.0.1").to("10.1.0.1")) == 0);
    CHECK(decide(*rs, udp_packet().from("2001:db8:1::1").to("2001:db8:99::1")) == 0);
    CHECK(decide(*rs, udp_packet().from("10.0.0.2").to("10.1.0.1")) == none);
    CHECK(rs->acl_rules() == 3); // 10.0.0.1 x 2 IPv4 entries + 2001:db8:1::1 x 1
}

TEST_CASE("an empty ruleset decides nothing", "[eal][ruleset]") {
    auto rs = compile({});
    CHECK(rs->size() == 0);
    CHECK(rs->acl_rules() == 0);
    CHECK(decide(*rs, tcp_packet()) == none);
    CHECK(decide(*rs, udp_packet().from("2001:db8:1::1").to("2001:db8:2::1")) == none);
    // A ruleset that matches nothing in one family has no context for it.
    auto v4only = compile({"block from <bad>", "pass inet all"});
    CHECK(decide(*v4only, udp_packet()) == 1);
    CHECK(decide(*v4only, udp_packet().from("2001:db8:1::1").to("2001:db8:2::1")) == none);
}

TEST_CASE("a burst of keys is classified as each key alone", "[eal][ruleset]") {
    auto rs = compile({"block all", "pass proto udp to port 53", "pass quick proto udp to port 5"});
    std::vector<dp::FilterKey4> keys;
    for (uint16_t p = 0; p < 64; p++)
        keys.push_back(key4(udp_packet().port(p)));
    std::vector<const dp::FilterKey4 *> ptrs;
    for (const auto &k : keys)
        ptrs.push_back(&k);
    std::vector<uint32_t> results(64, 0);
    rs->classify4(ptrs.data(), results.data(), 64);
    for (uint16_t p = 0; p < 64; p++) {
        INFO("port " << p);
        CHECK(results[p] == (p == 5 ? 2u : p == 53 ? 1u : 0u));
    }
}

// ---- priorities, limits, rule data and counters

TEST_CASE("acl priorities put quick rules first in order, then later rules before earlier",
          "[eal][ruleset]") {
    std::mt19937 rng(7);
    const std::size_t n = 1000000;
    std::uniform_int_distribution<uint32_t> number(0, uint32_t(n - 1));
    for (int i = 0; i < 10000; i++) {
        uint32_t a = number(rng), b = number(rng);
        if (a == b) continue;
        if (a > b) std::swap(a, b);
        INFO(a << " < " << b);
        CHECK(dp::acl_priority(a, true, n) > dp::acl_priority(b, true, n));
        CHECK(dp::acl_priority(b, false, n) > dp::acl_priority(a, false, n));
        CHECK(dp::acl_priority(b, true, n) > dp::acl_priority(a, false, n));
        CHECK(dp::acl_priority(a, true, n) > dp::acl_priority(b, false, n));
    }
    for (uint32_t k : {0u, 1u, uint32_t(n - 1)})
        for (bool quick : {false, true}) {
            CHECK(dp::acl_priority(k, quick, n) >= RTE_ACL_MIN_PRIORITY);
            CHECK(dp::acl_priority(k, quick, n) <= RTE_ACL_MAX_PRIORITY);
        }
}

TEST_CASE("a rule that expands into too many entries is an error at the rule", "[eal][ruleset]") {
    auto cfg = test_config();
    config::TableConfig big{"big", {}, {}};
    for (int i = 0; i < 400; i++)
        big.entries.push_back(pfx( // odd addresses: no two merge into a shorter prefix
            ("10.9." + std::to_string(i / 100) + "." + std::to_string(i % 100 * 2 + 1)).c_str()));
    cfg.tables.push_back(big);
    CHECK(compile_error({"pass all", "block from <big> to <big>"}, cfg) ==
          "fw.yaml:2:1: rule: the rule expands into more than 100000 entries");
    CHECK(compile_error({"block from <big> to <web>"}, cfg) == ""); // 400 x 2 is fine
}

TEST_CASE("each rule keeps its action, policy, log, state options and timeouts", "[eal][ruleset]") {
    auto rs = compile({"pass in log quick proto tcp keep state (max 100, tcp.established 3600)",
                       "block return proto udp", "pass proto udp no state"});
    REQUIRE(rs->size() == 3);
    const auto &r0 = rs->rule(0);
    CHECK(r0.number == 0);
    CHECK(r0.action == config::Action::pass);
    CHECK(r0.quick);
    CHECK(r0.log);
    CHECK(r0.keep_state);
    CHECK(r0.max_states == 100);
    CHECK(r0.timeouts[std::size_t(config::Timeout::tcp_established)] == 3600);
    CHECK(r0.timeouts[std::size_t(config::Timeout::tcp_first)] == 0);
    const auto &r1 = rs->rule(1);
    CHECK(r1.number == 1);
    CHECK(r1.action == config::Action::block);
    CHECK(r1.block_policy == config::BlockPolicy::return_);
    CHECK_FALSE(r1.keep_state);
    CHECK_FALSE(rs->rule(2).keep_state);
    CHECK(rs->rules().at(2).number == 2);
}

TEST_CASE("per-rule counters are summed over lcores; live states are shared", "[eal][ruleset]") {
    auto rs = compile({"pass all", "block proto udp"});
    rs->counters(0, 1).matches.add(3);
    rs->counters(1, 1).matches.add(4);
    rs->counters(1, 1).bytes.add(1500);
    rs->counters(0, 0).packets.inc();
    rs->counters(1, 1).states_created.inc();
    rs->live_states(1) += 5;
    const auto t1 = rs->totals(1);
    CHECK(t1.matches == 7);
    CHECK(t1.bytes == 1500);
    CHECK(t1.packets == 0);
    CHECK(t1.states_created == 1);
    CHECK(t1.states == 5);
    const auto t0 = rs->totals(0);
    CHECK(t0.packets == 1);
    CHECK(t0.matches == 0);
    CHECK(t0.states == 0);
}

TEST_CASE("a context name already in use is refused, not shared", "[eal][ruleset]") {
    auto cfg = test_config();
    const std::string name = unique_name();
    dp::Ruleset first(cfg, parse_rules(cfg, {"pass all"}), 1, name, SOCKET_ID_ANY);
    CHECK_THROWS_AS(dp::Ruleset(cfg, parse_rules(cfg, {"block all"}), 1, name, SOCKET_ID_ANY),
                    std::runtime_error);
    CHECK(decide(first, udp_packet()) == 0);
}

// ---- randomised cross-check against the plain matcher

namespace {

template <typename T> const T &pick(std::mt19937 &rng, const std::vector<T> &v) {
    return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng)];
}

bool chance(std::mt19937 &rng, int percent) {
    return std::uniform_int_distribution<int>(0, 99)(rng) < percent;
}

const std::vector<std::string> host_words = {"any",
                                             "self",
                                             "<web>",
                                             "<bad>",
                                             "lan",
                                             "dmz",
                                             "lan:network",
                                             "wan:network",
                                             "dmz:network",
                                             "10.0.0.0/8",
                                             "10.1.0.0/16",
                                             "10.1.2.3",
                                             "192.0.2.0/25",
                                             "198.51.100.7",
                                             "0.0.0.0/1",
                                             "2001:db8::/32",
                                             "2001:db8:1::/64",
                                             "2001:db8:1::1",
                                             "2001:db8:99:1::/64",
                                             "2001:db8:1:0:8000::/65"};

std::string random_hosts(std::mt19937 &rng) {
    auto one = [&] {
        std::string w = pick(rng, host_words);
        if (w != "any" && chance(rng, 20)) w = "! " + w;
        return w;
    };
    if (chance(rng, 25)) return "any";
    if (!chance(rng, 30)) return one();
    std::string list = "{";
    // Two appends, not `" " + one()`: GCC 12 at -O3 flags the inlined prepend with a false
    // -Wrestrict (GCC bug 105329), which broke the release build under -Werror.
    for (int i = 0, n = std::uniform_int_distribution<int>(2, 3)(rng); i < n; i++) {
        list += ' ';
        list += one();
    }
    return list + " }";
}

std::string random_rule(std::mt19937 &rng) {
    static const std::vector<std::string> ports = {
        "80",        "!= 80",        "< 1024",       "<= 1000",       "> 1000",           ">= 2000",
        "1000:2000", "1000 >< 2000", "1000 <> 2000", "{ 22 80 443 }", "{ < 10 > 65530 }", "0",
        "65535"};
    static const std::vector<std::string> flags = {"flags S/SA", "flags any", "flags SA/SAF",
                                                   "flags /R", "flags S/S"};
    static const std::vector<std::string> icmp_types = {"icmp-type echoreq", "icmp-type 3 code 1",
                                                        "icmp-type { 0 8 }", "icmp-type unreach"};
    std::string r = chance(rng, 50) ? "pass" : "block";
    if (chance(rng, 25))
        r += " in";
    else if (chance(rng, 30))
        r += " out";
    if (chance(rng, 30)) r += " quick";
    if (chance(rng, 30))
        r += pick(rng, std::vector<std::string>{" on lan", " on ! wan", " on dmz"});
    if (chance(rng, 20)) r += chance(rng, 50) ? " inet" : " inet6";
    const int proto = std::uniform_int_distribution<int>(0, 6)(rng);
    static const std::vector<std::string> proto_text = {"",
                                                        " proto tcp",
                                                        " proto udp",
                                                        " proto { tcp udp }",
                                                        " proto icmp",
                                                        " proto icmp6",
                                                        " proto { udp 47 }"};
    r += proto_text[std::size_t(proto)];
    const bool has_ports = proto >= 1 && proto <= 3;
    if (chance(rng, 15)) {
        r += " all";
    } else {
        if (chance(rng, 70)) r += " from " + random_hosts(rng);
        if (has_ports && chance(rng, 30)) r += " from port " + pick(rng, ports);
        if (chance(rng, 70)) r += " to " + random_hosts(rng);
        if (has_ports && chance(rng, 50)) r += " to port " + pick(rng, ports);
        if (r.find(" from ") == std::string::npos && r.find(" to ") == std::string::npos)
            r += " all";
    }
    if ((proto == 0 || proto == 1 || proto == 3) && chance(rng, 40)) r += " " + pick(rng, flags);
    if (proto == 4 && chance(rng, 50)) r += " " + pick(rng, icmp_types);
    if (proto == 5 && chance(rng, 50)) r += " icmp6-type echoreq";
    if (r.rfind("pass", 0) == 0 && chance(rng, 20)) r += " no state";
    return r;
}

const std::vector<std::string> v4_addresses = {
    "10.1.2.3",      "10.1.2.4",      "10.1.255.255", "10.0.255.255",   "10.2.3.4",
    "10.2.3.5",      "10.0.0.0",      "11.0.0.0",     "9.255.255.255",  "127.255.255.255",
    "128.0.0.0",     "192.0.2.0",     "192.0.2.1",    "192.0.2.127",    "192.0.2.128",
    "192.0.2.254",   "198.51.100.1",  "198.51.100.7", "203.0.113.1",    "203.0.113.5",
    "203.0.113.129", "203.0.113.200", "0.0.0.0",      "255.255.255.255"};
const std::vector<std::string> v6_addresses = {"2001:db8:1::1",
                                               "2001:db8:1::2",
                                               "2001:db8:1::fff:ffff",
                                               "2001:db8:1::1000:0",
                                               "2001:db8:1:0:8000::1",
                                               "2001:db8:1:0:7fff:ffff:ffff:ffff",
                                               "2001:db8:99::1",
                                               "2001:db8:99:1::5",
                                               "2001:db8:99:2::5",
                                               "2001:db8:2::1",
                                               "2001:db8:2::2",
                                               "2001:db9::1",
                                               "::",
                                               "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                                               "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"};

IpAddress random_address(std::mt19937 &rng, bool v6) {
    IpAddress a = ip(pick(rng, v6 ? v6_addresses : v4_addresses).c_str());
    if (chance(rng, 15)) // anywhere at all
        for (std::size_t i = 0; i < (v6 ? 16u : 4u); i++)
            a.bytes[i] = uint8_t(std::uniform_int_distribution<int>(0, 255)(rng));
    return a;
}

Packet random_packet(std::mt19937 &rng, bool v6) {
    static const std::vector<uint16_t> ports = {0,    1,    9,    10,   21,    22,    23,   79,
                                                80,   81,   443,  999,  1000,  1001,  1023, 1024,
                                                1999, 2000, 2001, 8080, 65530, 65531, 65535};
    Packet p;
    p.src = random_address(rng, v6);
    p.dst = random_address(rng, v6);
    p.iface = std::uniform_int_distribution<int>(0, 2)(rng);
    p.out = chance(rng, 50);
    static const std::vector<uint8_t> protos = {tcp, tcp, udp, udp, icmp, icmp6, gre, 50};
    p.proto = pick(rng, protos);
    if (p.proto == tcp || p.proto == udp) {
        p.sport = chance(rng, 70) ? pick(rng, ports) : uint16_t(rng());
        p.dport = chance(rng, 70) ? pick(rng, ports) : uint16_t(rng());
    } else if (p.proto == icmp || p.proto == icmp6) {
        static const std::vector<uint16_t> types = {0, 3, 8, 11, 128, 129};
        p.sport = chance(rng, 80) ? pick(rng, types) : uint16_t(rng() % 256);
        p.dport = uint16_t(rng() % 4);
    } else {
        p.sport = p.dport = 0;
    }
    p.flags = p.proto == tcp ? uint8_t(rng()) : 0;
    return p;
}

} // namespace

TEST_CASE("random rulesets decide as the plain rule-by-rule matcher does", "[eal][ruleset]") {
    const auto cfg = test_config();
    std::mt19937 rng(20240611);
    const int sets = 200;
    unsigned compared = 0, decided = 0, algorithms_run = 0;
    for (int set = 0; set < sets; set++) {
        std::vector<std::string> lines;
        std::vector<config::PfRule> rules;
        const int count = std::uniform_int_distribution<int>(1, 8)(rng);
        while (int(rules.size()) < count) {
            const std::string line = random_rule(rng);
            try {
                rules.push_back(config::parse_pf_rule(
                    line, {"fw.yaml", 1, 1}, names_of_interfaces(cfg), names_of_tables(cfg)));
                lines.push_back(line);
            } catch (const config::ConfigError &) {
                // a combination the grammar refuses (inet6 with an IPv4 literal...)
            }
        }
        const std::string name = unique_name();
        dp::Ruleset rs(cfg, rules, 1, name, SOCKET_ID_ANY);
        // The contexts are `name`4 and `name`6 (absent when empty): every classify method
        // that this CPU has must agree with the plain matcher.
        rte_acl_ctx *contexts[2] = {rte_acl_find_existing((name + "4").c_str()),
                                    rte_acl_find_existing((name + "6").c_str())};
        for (int burst = 0; burst < 8; burst++) {
            const bool v6 = burst % 2 == 1;
            std::vector<Packet> packets;
            std::vector<dp::FilterKey4> k4;
            std::vector<dp::FilterKey6> k6;
            for (int i = 0; i < 64; i++) {
                packets.push_back(random_packet(rng, v6));
                if (v6)
                    k6.push_back(key6(packets.back()));
                else
                    k4.push_back(key4(packets.back()));
            }
            std::vector<uint32_t> expected;
            for (const Packet &p : packets) {
                expected.push_back(reference_decide(rules, p, cfg));
                compared++;
                decided += expected.back() != none;
            }
            for (auto alg :
                 {RTE_ACL_CLASSIFY_DEFAULT, RTE_ACL_CLASSIFY_SCALAR, RTE_ACL_CLASSIFY_SSE,
                  RTE_ACL_CLASSIFY_AVX2, RTE_ACL_CLASSIFY_AVX512X16, RTE_ACL_CLASSIFY_AVX512X32}) {
                rte_acl_ctx *ctx = contexts[v6 ? 1 : 0];
                if (ctx != nullptr && rte_acl_set_ctx_classify(ctx, alg) != 0) continue;
                std::vector<uint32_t> results(64);
                if (v6) {
                    std::vector<const dp::FilterKey6 *> ptrs;
                    for (const auto &k : k6)
                        ptrs.push_back(&k);
                    rs.classify6(ptrs.data(), results.data(), 64);
                } else {
                    std::vector<const dp::FilterKey4 *> ptrs;
                    for (const auto &k : k4)
                        ptrs.push_back(&k);
                    rs.classify4(ptrs.data(), results.data(), 64);
                }
                algorithms_run += alg == RTE_ACL_CLASSIFY_SCALAR && ctx != nullptr;
                for (std::size_t i = 0; i < 64; i++) {
                    if (results[i] == expected[i]) continue;
                    const Packet &p = packets[i];
                    std::string text;
                    for (std::size_t r = 0; r < lines.size(); r++)
                        text += std::to_string(r) + ": " + lines[r] + "\n";
                    INFO("classify method " << int(alg) << ", rules:\n"
                                            << text << "packet: proto " << int(p.proto) << " "
                                            << p.src.to_string() << ":" << p.sport << " -> "
                                            << p.dst.to_string() << ":" << p.dport << " iface "
                                            << p.iface << (p.out ? " out" : " in") << " flags "
                                            << int(p.flags));
                    CHECK(results[i] == expected[i]);
                }
            }
        }
    }
    CHECK(compared == unsigned(sets) * 8 * 64);
    // The keys must exercise both outcomes, or the comparison proves little.
    CHECK(decided > compared / 5);
    CHECK(decided < compared - compared / 5);
    CHECK(algorithms_run > 0); // the scalar method, at least, was compared too
}
