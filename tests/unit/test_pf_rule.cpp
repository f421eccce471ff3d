// The pf.conf rule grammar: what each construct parses to, pf's defaults, the canonical
// text that parses back to the same rule, the exact message (and column) of each kind of
// mistake, and that no input gets anything but a ConfigError out.
#include "config/pf_rule.hpp"

#include "config/loader.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace syncwall::config;

namespace {

const std::vector<std::string> interfaces = {"lan", "wan", "dmz"};
const std::vector<std::string> tables = {"web", "bad"};

// Rules in these tests start at line 12, column 5 of fw.yaml: a token at byte offset N of
// the rule is reported at column 5 + N.
const SourcePos start{"fw.yaml", 12, 5};

PfRule parse(const std::string &text) {
    return parse_pf_rule(text, start, interfaces, tables);
}

// The message parsing `text` fails with, or "" when it parses.
std::string error_of(const std::string &text) {
    try {
        parse(text);
        return "";
    } catch (const ConfigError &e) {
        return e.what();
    }
}

IpPrefix prefix(const std::string &text) {
    return parse_ip_prefix(text).value();
}

HostSpec any_host() {
    return {};
}
HostSpec address(const std::string &text, bool negated = false) {
    return {HostSpec::Kind::prefix, negated, prefix(text), ""};
}
HostSpec named(HostSpec::Kind kind, const std::string &name, bool negated = false) {
    return {kind, negated, {}, name};
}

PortSpec port(PortOp op, uint16_t a, uint16_t b = 0) {
    return {op, a, b};
}

constexpr uint8_t S = tcp_flags::syn, A = tcp_flags::ack, F = tcp_flags::fin, R = tcp_flags::rst;

} // namespace

// ---- what each construct parses to

TEST_CASE("a typical pass rule parses into every field", "[pfrule]") {
    auto rule = parse("pass in on lan proto tcp from 192.0.2.0/24 to any port { 22 80 443 } "
                      "keep state");
    CHECK(rule.action == Action::pass);
    CHECK(rule.direction == Direction::in);
    CHECK_FALSE(rule.log);
    CHECK_FALSE(rule.quick);
    CHECK(rule.iface == "lan");
    CHECK_FALSE(rule.iface_negated);
    CHECK(rule.af == 4); // every source address is IPv4, as pfctl decides
    CHECK(rule.protos == std::vector<uint8_t>{6});
    CHECK(rule.from.hosts == std::vector{address("192.0.2.0/24")});
    CHECK(rule.from.ports.empty());
    CHECK(rule.to.hosts == std::vector{any_host()});
    CHECK(rule.to.ports ==
          std::vector{port(PortOp::eq, 22), port(PortOp::eq, 80), port(PortOp::eq, 443)});
    CHECK(rule.state.keep_state);
    CHECK(rule.flags == S);
    CHECK(rule.flags_mask == (S | A));
    CHECK_FALSE(rule.flags_explicit);
    CHECK(rule.icmp_types.empty());
    CHECK(rule.label.empty());
    CHECK(rule.pos.file == "fw.yaml");
    CHECK(rule.pos.line == 12);
    CHECK(rule.text ==
          "pass in on lan proto tcp from 192.0.2.0/24 to any port { 22 80 443 } keep state");
}

TEST_CASE("pass alone matches everything and keeps state with flags S/SA", "[pfrule]") {
    auto rule = parse("pass");
    CHECK(rule.direction == Direction::both);
    CHECK(rule.iface.empty());
    CHECK(rule.af == 0);
    CHECK(rule.protos.empty());
    CHECK(rule.from.hosts == std::vector{any_host()});
    CHECK(rule.to.hosts == std::vector{any_host()});
    CHECK(rule.state.keep_state);
    CHECK(rule.flags == S);
    CHECK(rule.flags_mask == (S | A));
    CHECK(to_string(rule) == "pass all flags S/SA keep state");
}

TEST_CASE("pf's pass defaults apply only where pf applies them", "[pfrule]") {
    SECTION("a udp rule keeps state without flags") {
        auto rule = parse("pass proto udp");
        CHECK(rule.state.keep_state);
        CHECK(rule.flags_mask == 0);
    }
    SECTION("a list with tcp gets flags S/SA (they test TCP packets only)") {
        auto rule = parse("pass proto { udp tcp }");
        CHECK(rule.flags == S);
        CHECK(rule.flags_mask == (S | A));
    }
    SECTION("no state means no default flags") {
        auto rule = parse("pass proto tcp no state");
        CHECK_FALSE(rule.state.keep_state);
        CHECK(rule.flags_mask == 0);
    }
    SECTION("explicit flags replace the default and are recorded as explicit") {
        auto rule = parse("pass proto tcp flags SA/SAFR");
        CHECK(rule.flags == (S | A));
        CHECK(rule.flags_mask == (S | A | F | R));
        CHECK(rule.flags_explicit);
    }
    SECTION("flags any turns the default off") {
        auto rule = parse("pass proto tcp flags any");
        CHECK(rule.flags == 0);
        CHECK(rule.flags_mask == 0);
        CHECK(rule.flags_explicit);
        CHECK(rule.state.keep_state);
    }
    SECTION("block rules keep no state and take no default flags") {
        auto rule = parse("block proto tcp");
        CHECK_FALSE(rule.state.keep_state);
        CHECK(rule.flags_mask == 0);
    }
    SECTION("block rules may still match on flags") {
        auto rule = parse("block in proto tcp flags /S no state");
        CHECK(rule.flags == 0);
        CHECK(rule.flags_mask == S);
    }
}

TEST_CASE("block takes each return policy, drop by default", "[pfrule]") {
    CHECK(parse("block").block_policy == BlockPolicy::drop);
    CHECK(parse("block drop all").block_policy == BlockPolicy::drop);
    CHECK(parse("block return").block_policy == BlockPolicy::return_);
    CHECK(parse("block return-rst proto tcp").block_policy == BlockPolicy::return_rst);
    CHECK(parse("block return-icmp in").block_policy == BlockPolicy::return_icmp);
    CHECK(parse("block return-icmp in").action == Action::block);
    CHECK(parse("block return-icmp in").direction == Direction::in);
}

TEST_CASE("log and quick are read in either order and on takes a negation", "[pfrule]") {
    auto a = parse("block out log quick on ! wan");
    auto b = parse("block out quick log on !wan");
    for (const auto &rule : {a, b}) {
        CHECK(rule.direction == Direction::out);
        CHECK(rule.log);
        CHECK(rule.quick);
        CHECK(rule.iface == "wan");
        CHECK(rule.iface_negated);
    }
}

TEST_CASE("protocols by name and number, in a list without repeats", "[pfrule]") {
    CHECK(parse("pass proto tcp").protos == std::vector<uint8_t>{6});
    CHECK(parse("pass proto 47").protos == std::vector<uint8_t>{47});
    CHECK(parse("pass proto icmp6").protos == std::vector<uint8_t>{58});
    CHECK(parse("pass proto ipv6-icmp").protos == std::vector<uint8_t>{58});
    CHECK(parse("pass proto { gre esp ah carp pfsync }").protos ==
          std::vector<uint8_t>{47, 50, 51, 112, 240});
    CHECK(parse("pass proto { tcp, udp tcp 255 }").protos == std::vector<uint8_t>{6, 17, 255});
}

TEST_CASE("hosts of every kind, negated, and in lists", "[pfrule]") {
    auto rule = parse("pass from { any, !192.0.2.77/24 198.51.100.1, ! <bad> lan:network } "
                      "to { wan !dmz self 2001:db8::/32 }");
    CHECK(rule.from.hosts == std::vector{any_host(), address("192.0.2.0/24", true),
                                         address("198.51.100.1/32"),
                                         named(HostSpec::Kind::table, "bad", true),
                                         named(HostSpec::Kind::iface_network, "lan")});
    CHECK(rule.to.hosts == std::vector{named(HostSpec::Kind::iface_address, "wan"),
                                       named(HostSpec::Kind::iface_address, "dmz", true),
                                       named(HostSpec::Kind::self, ""), address("2001:db8::/32")});
    CHECK(rule.af == 0); // both families, and symbolic hosts: the compiler pairs them

    CHECK(parse("pass from 2001:db8::1").from.hosts == std::vector{address("2001:db8::1/128")});
    CHECK(parse("pass to < web >").to.hosts == std::vector{named(HostSpec::Kind::table, "web")});
    CHECK(parse("pass from any to any").to.hosts == std::vector{any_host()});
}

TEST_CASE("from and to may each be left out, or name ports without hosts", "[pfrule]") {
    auto rule = parse("pass proto udp from port domain");
    CHECK(rule.from.hosts == std::vector{any_host()});
    CHECK(rule.from.ports == std::vector{port(PortOp::eq, 53)});
    CHECK(rule.to.hosts == std::vector{any_host()});
    CHECK(rule.to.ports.empty());

    rule = parse("pass proto tcp to port ssh");
    CHECK(rule.from.hosts == std::vector{any_host()});
    CHECK(rule.to.ports == std::vector{port(PortOp::eq, 22)});

    rule = parse("pass proto tcp from 10.0.0.0/8 port > 1023 to <web> port https");
    CHECK(rule.from.ports == std::vector{port(PortOp::gt, 1023)});
    CHECK(rule.to.ports == std::vector{port(PortOp::eq, 443)});
}

TEST_CASE("every port operator and port names", "[pfrule]") {
    auto ports = [](const std::string &spec) {
        return parse("pass proto tcp to port " + spec).to.ports;
    };
    CHECK(ports("22") == std::vector{port(PortOp::eq, 22)});
    CHECK(ports("= 22") == std::vector{port(PortOp::eq, 22)});
    CHECK(ports("!= 22") == std::vector{port(PortOp::ne, 22)});
    CHECK(ports("< 1024") == std::vector{port(PortOp::lt, 1024)});
    CHECK(ports("<=1024") == std::vector{port(PortOp::le, 1024)});
    CHECK(ports("> 1023") == std::vector{port(PortOp::gt, 1023)});
    CHECK(ports(">= 1024") == std::vector{port(PortOp::ge, 1024)});
    CHECK(ports("6000:6010") == std::vector{port(PortOp::range, 6000, 6010)});
    CHECK(ports("ftp-data:ssh") == std::vector{port(PortOp::range, 20, 22)});
    CHECK(ports("1000 >< 2000") == std::vector{port(PortOp::between, 1000, 2000)});
    CHECK(ports("1000<>2000") == std::vector{port(PortOp::outside, 1000, 2000)});
    CHECK(ports("0") == std::vector{port(PortOp::eq, 0)});
    CHECK(ports("65535") == std::vector{port(PortOp::eq, 65535)});
    CHECK(ports("{ ssh, domain http, https smtp ntp snmp ftp telnet bgp ldap imap pop3 syslog "
                "isakmp submission }") ==
          std::vector{port(PortOp::eq, 22), port(PortOp::eq, 53), port(PortOp::eq, 80),
                      port(PortOp::eq, 443), port(PortOp::eq, 25), port(PortOp::eq, 123),
                      port(PortOp::eq, 161), port(PortOp::eq, 21), port(PortOp::eq, 23),
                      port(PortOp::eq, 179), port(PortOp::eq, 389), port(PortOp::eq, 143),
                      port(PortOp::eq, 110), port(PortOp::eq, 514), port(PortOp::eq, 500),
                      port(PortOp::eq, 587)});
    CHECK(ports("{ = 22, > 1024 1:5 8 >< 10 }") ==
          std::vector{port(PortOp::eq, 22), port(PortOp::gt, 1024), port(PortOp::range, 1, 5),
                      port(PortOp::between, 8, 10)});
}

TEST_CASE("a port spec matches as pf's operators do, and as its ranges say", "[pfrule]") {
    struct Case {
        PortSpec spec;
        std::vector<PortRange> ranges;
    };
    std::vector<Case> cases = {
        {port(PortOp::eq, 22), {{22, 22}}},
        {port(PortOp::ne, 22), {{0, 21}, {23, 65535}}},
        {port(PortOp::ne, 0), {{1, 65535}}},
        {port(PortOp::lt, 1024), {{0, 1023}}},
        {port(PortOp::lt, 0), {}},
        {port(PortOp::le, 1024), {{0, 1024}}},
        {port(PortOp::gt, 1023), {{1024, 65535}}},
        {port(PortOp::gt, 65535), {}},
        {port(PortOp::ge, 1024), {{1024, 65535}}},
        {port(PortOp::range, 6000, 6010), {{6000, 6010}}},
        {port(PortOp::between, 1000, 2000), {{1001, 1999}}},
        {port(PortOp::between, 1, 2), {}},
        {port(PortOp::outside, 1000, 2000), {{0, 999}, {2001, 65535}}},
        {port(PortOp::outside, 0, 65535), {}},
    };
    for (const auto &c : cases) {
        CAPTURE(int(c.spec.op), c.spec.a, c.spec.b);
        CHECK(c.spec.ranges() == c.ranges);
        // ranges() and matches() agree on every port.
        for (uint32_t p = 0; p <= 65535; p++) {
            bool in_ranges = false;
            for (const auto &r : c.ranges)
                in_ranges = in_ranges || (p >= r.lo && p <= r.hi);
            if (c.spec.matches(uint16_t(p)) != in_ranges) FAIL("port " << p);
        }
    }
}

TEST_CASE("flags take pf's letters, a bare mask, or any", "[pfrule]") {
    auto rule = parse("pass proto tcp flags FSRPAUEW/FSRPAUEW");
    CHECK(rule.flags == 0xff);
    CHECK(rule.flags_mask == 0xff);
    rule = parse("pass proto tcp flags /SA");
    CHECK(rule.flags == 0);
    CHECK(rule.flags_mask == (S | A));
    rule = parse("pass flags S/SA"); // no proto: flags test TCP packets
    CHECK(rule.flags_explicit);
    rule = parse("pass proto udp flags any"); // any is no test at all, so pf allows it
    CHECK(rule.flags_mask == 0);
}

TEST_CASE("icmp-type and icmp6-type by name and number, with codes and lists", "[pfrule]") {
    auto rule = parse("pass inet proto icmp icmp-type echoreq");
    CHECK(rule.icmp_types == std::vector<IcmpSpec>{{8, -1}});

    rule = parse("pass proto icmp icmp-type { echorep, unreach code port-unr, timex code 1 "
                 "paramprob redir squench 42 code 7 }");
    CHECK(rule.icmp_types ==
          std::vector<IcmpSpec>{{0, -1}, {3, 3}, {11, 1}, {12, -1}, {5, -1}, {4, -1}, {42, 7}});
    CHECK(rule.af == 4); // icmp-type implies inet

    rule = parse("pass proto icmp6 icmp6-type { echoreq echorep unreach toobig timex paramprob "
                 "neighbrsol neighbradv routersol routeradv }");
    CHECK(rule.icmp_types == std::vector<IcmpSpec>{{128, -1},
                                                   {129, -1},
                                                   {1, -1},
                                                   {2, -1},
                                                   {3, -1},
                                                   {4, -1},
                                                   {135, -1},
                                                   {136, -1},
                                                   {133, -1},
                                                   {134, -1}});
    CHECK(rule.af == 6);

    rule = parse("pass inet6 proto icmp6 icmp6-type unreach code admin-unr");
    CHECK(rule.icmp_types == std::vector<IcmpSpec>{{1, 1}});
}

TEST_CASE("state options: max and every pf timeout name", "[pfrule]") {
    auto rule = parse("pass proto tcp keep state (max 1000, tcp.first 1 tcp.opening 2, "
                      "tcp.established 3 tcp.closing 4 tcp.finwait 5 tcp.closed 6 udp.first 7 "
                      "udp.single 8 udp.multiple 9 icmp.first 10 icmp.error 11 other.first 12 "
                      "other.single 13 other.multiple 14)");
    CHECK(rule.state.keep_state);
    CHECK(rule.state.max_states == 1000);
    for (size_t i = 0; i < state_timeout_count; i++) {
        CAPTURE(state_timeout_name(Timeout(i)));
        CHECK(rule.state.timeouts[i] == i + 1);
    }
    CHECK(state_timeout_name(Timeout::tcp_established) == "tcp.established");
    CHECK(state_timeout_name(Timeout::other_multiple) == "other.multiple");

    rule = parse("pass keep state (udp.single 20)");
    CHECK(rule.state.max_states == 0);
    CHECK(rule.state.timeouts[size_t(Timeout::udp_single)] == 20);
    CHECK(rule.state.timeouts[size_t(Timeout::tcp_first)] == 0);
}

TEST_CASE("labels, quoted or not, with escapes; options in any order", "[pfrule]") {
    CHECK(parse("pass label \"ssh from the lan\"").label == "ssh from the lan");
    CHECK(parse("pass label web").label == "web");
    CHECK(parse("pass label 'single'").label == "single");
    CHECK(parse(R"(pass label "say \"hi\" \\o/")").label == R"(say "hi" \o/)");
    CHECK(parse("pass label \"" + std::string(63, 'x') + "\"").label.size() == 63);

    auto rule = parse("pass proto tcp label \"x\" keep state (max 5) flags S/SA");
    CHECK(rule.label == "x");
    CHECK(rule.state.max_states == 5);
    CHECK(rule.flags_explicit);
}

TEST_CASE("the address family is written, implied by icmp-type, or taken from one side",
          "[pfrule]") {
    CHECK(parse("pass inet6").af == 6);
    CHECK(parse("pass from 192.0.2.1 to <web>").af == 4);
    CHECK(parse("pass from <web> to 2001:db8::1").af == 6);
    CHECK(parse("pass from ! 192.0.2.1").af == 4); // pf: negated addresses count too
    CHECK(parse("pass from { 192.0.2.1 <web> }").af == 0);
    CHECK(parse("pass from { 192.0.2.1 2001:db8::1 } to any").af == 0);
    CHECK(parse("pass from lan:network").af == 0);
    CHECK(parse("pass from any to { 192.0.2.1, 198.51.100.0/24 }").af == 4);
}

TEST_CASE("a ruleset is numbered in order and parsed against the config", "[pfrule]") {
    Config cfg;
    cfg.source_file = "fw.yaml";
    for (const char *name : {"lan", "wan"}) {
        InterfaceConfig iface;
        iface.name = name;
        cfg.interfaces.push_back(iface);
    }
    cfg.tables.push_back({"web", {prefix("198.51.100.10/32")}, {"fw.yaml", 3, 3}});
    cfg.rules = {{"block in all", {"fw.yaml", 20, 5}},
                 {"pass in on wan proto tcp to <web> port 443", {"fw.yaml", 21, 5}},
                 {"pass out", {"fw.yaml", 22, 5}}};
    auto rules = parse_pf_rules(cfg);
    REQUIRE(rules.size() == 3);
    for (uint32_t i = 0; i < 3; i++) {
        CHECK(rules[i].number == i);
        CHECK(rules[i].pos.line == 20 + int(i));
        CHECK(rules[i].text == cfg.rules[i].text);
    }
    CHECK(rules[1].iface == "wan");
    CHECK(rules[1].to.hosts == std::vector{named(HostSpec::Kind::table, "web")});

    cfg.rules.push_back({"pass in on dmz", {"fw.yaml", 23, 7}});
    try {
        parse_pf_rules(cfg);
        FAIL("no error");
    } catch (const ConfigError &e) {
        CHECK(std::string(e.what()) ==
              "fw.yaml:23:18: rule: unknown interface \"dmz\" (interfaces: lan, wan)");
        CHECK(e.pos().line == 23);
        CHECK(e.pos().column == 18);
    }
}

TEST_CASE("rules from a loaded file point errors at the file's line and column", "[pfrule]") {
    // Plain (unquoted) scalars: the loader's position is the rule's first character.
    auto config = load_config_text("node:\n"
                                   "  hostid: 1\n"
                                   "interfaces:\n"
                                   "  lan:\n"
                                   "    devargs: net_null0\n"
                                   "tables:\n"
                                   "  web: [192.0.2.10]\n"
                                   "rules:\n"
                                   "  - pass in on lan proto tcp to <web> port 443\n"
                                   "  - block in on lan proto tcp to <webb>\n",
                                   "fw.yaml");
    try {
        parse_pf_rules(config);
        FAIL("no error");
    } catch (const ConfigError &e) {
        CHECK(std::string(e.what()) == "fw.yaml:10:34: rule: unknown table <webb> (tables: web)");
    }
}

// ---- canonical text

TEST_CASE("to_string prints the canonical pfctl form, which parses to the same rule", "[pfrule]") {
    struct Case {
        std::string input, canonical;
    };
    std::vector<Case> cases = {
        {"pass in quick on lan proto tcp from 192.0.2.0/24 to any port 22",
         "pass in quick on lan inet proto tcp from 192.0.2.0/24 to any port = 22 flags S/SA "
         "keep state"},
        {"pass in on lan proto tcp from 192.0.2.0/24 to any port { 22 80 443 } keep state",
         "pass in on lan inet proto tcp from 192.0.2.0/24 to any port { 22, 80, 443 } flags "
         "S/SA keep state"},
        {"block", "block drop all"},
        {"block in log all", "block drop in log all"},
        {"block return out quick on ! wan", "block return out quick on ! wan all"},
        {"block return-rst in proto tcp to port 6000:6010",
         "block return-rst in proto tcp from any to any port 6000:6010"},
        {"block return-icmp in proto udp", "block return-icmp in proto udp all"},
        {"pass out inet6 proto { tcp, udp } to port domain",
         "pass out inet6 proto { tcp, udp } from any to any port = 53 flags S/SA keep state"},
        {"pass proto 250", "pass proto 250 all keep state"},
        {"pass proto { gre icmp6 vrrp }", "pass proto { gre, ipv6-icmp, carp } all keep state"},
        {"pass from { any, !192.0.2.77/24 198.51.100.1, ! <bad> lan:network } to { wan !dmz "
         "self 2001:db8::/32 }",
         "pass from { any, ! 192.0.2.0/24, 198.51.100.1, ! <bad>, lan:network } to { wan, ! "
         "dmz, self, 2001:db8::/32 } flags S/SA keep state"},
        {"pass proto udp from port domain", "pass proto udp from any port = 53 to any keep state"},
        {"pass proto tcp to port { != 22, < 1024 <= 5 > 7 >= 9 1:2 3 >< 8 3 <> 8 }",
         "pass proto tcp from any to any port { != 22, < 1024, <= 5, > 7, >= 9, 1:2, 3 >< 8, 3 "
         "<> 8 } flags S/SA keep state"},
        {"pass proto tcp to port 1000 >< 2000",
         "pass proto tcp from any to any port 1000 >< 2000 flags S/SA keep state"},
        {"pass proto tcp flags any", "pass proto tcp all flags any keep state"},
        {"pass proto tcp flags /SA no state", "pass proto tcp all flags /SA no state"},
        {"pass proto tcp flags WEUAPRSF/WEUAPRSF", "pass proto tcp all flags FSRPAUEW/FSRPAUEW "
                                                   "keep state"},
        {"pass proto udp no state", "pass proto udp all no state"},
        {"block proto tcp flags S/SA no state", "block drop proto tcp all flags S/SA"},
        {"pass proto icmp icmp-type { echoreq, unreach code 3 } ",
         "pass inet proto icmp all icmp-type { echoreq, unreach code port-unr } keep state"},
        {"pass proto icmp icmp-type 42 code 250", "pass inet proto icmp all icmp-type 42 code 250 "
                                                  "keep state"},
        {"pass proto icmp6 icmp6-type neighbrsol",
         "pass inet6 proto ipv6-icmp all icmp6-type neighbrsol keep state"},
        {"pass proto tcp keep state (tcp.established 3600, max 100)",
         "pass proto tcp all flags S/SA keep state (max 100, tcp.established 3600)"},
        {"pass label \"say \\\"hi\\\" \\\\o/\"",
         "pass all flags S/SA keep state label \"say \\\"hi\\\" \\\\o/\""},
        {"pass log quick on lan from lan to self label web",
         "pass log quick on lan from lan to self flags S/SA keep state label \"web\""},
        {"pass from 2001:db8::1/128 to 2001:DB8:0:0::/64",
         "pass inet6 from 2001:db8::1 to 2001:db8::/64 flags S/SA keep state"},
    };
    for (const auto &c : cases) {
        CAPTURE(c.input);
        auto rule = parse(c.input);
        CHECK(to_string(rule) == c.canonical);
        auto again = parse(to_string(rule));
        CHECK(same_filter(again, rule));
        CHECK(to_string(again) == c.canonical);
    }
}

TEST_CASE("same_filter ignores where a rule came from but nothing it matches", "[pfrule]") {
    auto a = parse_pf_rule("pass in proto tcp", {"a.yaml", 1, 1}, interfaces, tables);
    auto b =
        parse_pf_rule("pass  in  proto  tcp  flags S/SA", {"b.yaml", 9, 9}, interfaces, tables);
    b.number = 7;
    CHECK(same_filter(a, b));
    CHECK_FALSE(same_filter(a, parse("pass out proto tcp")));
    CHECK_FALSE(same_filter(a, parse("pass in proto tcp label x")));
    CHECK_FALSE(same_filter(a, parse("pass in proto tcp keep state (max 9)")));
    CHECK_FALSE(same_filter(a, parse("pass in proto tcp to port 1")));
    CHECK_FALSE(same_filter(a, parse("pass in proto tcp flags any")));
}

// ---- errors: exact messages, columns at the offending token (rule starts at column 5)

TEST_CASE("each kind of mistake names the token and its column", "[pfrule]") {
    struct Case {
        std::string rule, message;
    };
    std::vector<Case> cases = {
        // unknown keyword: "frm" at offset 15
        {"pass in on lan frm any", "fw.yaml:12:20: rule: unknown keyword \"frm\""},
        // missing port number: the end of the rule, offset 22
        {"pass proto tcp to port",
         "fw.yaml:12:27: rule: expected a port number or name after \"port\", got end of rule"},
        {"pass proto tcp to port {",
         "fw.yaml:12:28: rule: unterminated list: \"{\" has no matching \"}\""},
        {"pass proto tcp to port { }", "fw.yaml:12:30: rule: empty list"},
        {"pass proto tcp to port { 22, }",
         "fw.yaml:12:34: rule: expected a port number or name in the list, got \"}\""},
        {"pass proto tcp to port <",
         "fw.yaml:12:29: rule: expected a port number or name after \"<\", got end of rule"},
        {"pass proto tcp to port htp", "fw.yaml:12:28: rule: unknown port name \"htp\" (use a "
                                       "number)"},
        // port without tcp/udp: "port" at offset 23 / 26 / 8
        {"pass proto icmp to any port 22",
         "fw.yaml:12:28: rule: port only applies to tcp/udp, not icmp"},
        {"pass proto { tcp gre } to port 22",
         "fw.yaml:12:31: rule: port only applies to tcp/udp, not gre"},
        {"pass to port 22",
         "fw.yaml:12:13: rule: port only applies to tcp/udp: add \"proto tcp\" or \"proto udp\""},
        // bad address: offset 10
        {"pass from 192.0.2.300 to any", "fw.yaml:12:15: rule: bad address \"192.0.2.300\""},
        {"pass from 10.0.0.0/33", "fw.yaml:12:15: rule: bad address \"10.0.0.0/33\""},
        {"pass to 2001:db8::g", "fw.yaml:12:13: rule: bad address \"2001:db8::g\""},
        {"pass from lann",
         "fw.yaml:12:15: rule: expected an address, <table>, interface, self or any after "
         "\"from\", got \"lann\""},
        {"pass from", "fw.yaml:12:14: rule: expected an address, <table>, interface, self or any "
                      "after \"from\", got end of rule"},
        // unknown table: at its "<", offset 10
        {"pass from <webb> to any", "fw.yaml:12:15: rule: unknown table <webb> (tables: web, bad)"},
        {"pass from <web", "fw.yaml:12:19: rule: expected \">\" after the table name, got end of "
                           "rule"},
        // unknown interface: offset 11
        {"pass in on lann", "fw.yaml:12:16: rule: unknown interface \"lann\" (interfaces: lan, "
                            "wan, dmz)"},
        {"pass on { lan wan }", "fw.yaml:12:13: rule: interface lists are not supported: write "
                                "one rule per interface"},
        {"pass from lan:nework", "fw.yaml:12:18: rule: unknown interface modifier \":nework\" "
                                 "(use lan:network or lan)"},
        {"pass from lan:broadcast", "fw.yaml:12:18: rule: interface modifier \":broadcast\" is "
                                    "not supported (use lan:network or lan)"},
        // unterminated list: at its "{", offset 27 / 10
        {"pass proto tcp to any port { 22 80",
         "fw.yaml:12:32: rule: unterminated list: \"{\" has no matching \"}\""},
        {"pass from { 10.0.0.1 to any", "fw.yaml:12:15: rule: unterminated list: \"{\" has no "
                                        "matching \"}\""},
        {"pass from { 10.0.0.1 { 10.0.0.2 } }", "fw.yaml:12:26: rule: lists cannot be nested"},
        {"pass from ! { 10.0.0.1 }", "fw.yaml:12:17: rule: \"!\" cannot negate a list: put it "
                                     "before each item inside the list"},
        {"pass from ! any", "fw.yaml:12:15: rule: \"! any\" matches nothing"},
        // unterminated quote: at the quote, offset 15
        {"pass all label \"web", "fw.yaml:12:20: rule: unterminated quoted string: no closing \""},
        {"pass all label", "fw.yaml:12:19: rule: expected a quoted label after \"label\", got end "
                           "of rule"},
        {"pass label \"\"", "fw.yaml:12:16: rule: empty label"},
        {"pass label \"" + std::string(64, 'x') + "\"",
         "fw.yaml:12:16: rule: label longer than 63 bytes"},
        {"pass label a label b", "fw.yaml:12:18: rule: duplicate \"label\""},
        // flags on udp: at "flags", offset 15
        {"pass proto udp flags S/SA", "fw.yaml:12:20: rule: flags only apply to tcp"},
        {"pass proto tcp flags S/SA flags any", "fw.yaml:12:31: rule: duplicate \"flags\""},
        {"pass proto tcp flags S", "fw.yaml:12:26: rule: expected flags like S/SA, /SA or any "
                                   "after \"flags\", got \"S\""},
        {"pass proto tcp flags S/sA", "fw.yaml:12:28: rule: unknown TCP flag \"s\" (flags are F S "
                                      "R P A U E W)"},
        {"pass proto tcp flags SA/S", "fw.yaml:12:26: rule: flags SA/S never match: every flag "
                                      "before \"/\" must also be after it"},
        // numbers out of range
        {"pass proto tcp to port 70000", "fw.yaml:12:28: rule: port 70000 out of range "
                                         "(0..65535)"},
        {"pass proto tcp to port 1:70000", "fw.yaml:12:30: rule: port 70000 out of range "
                                           "(0..65535)"},
        {"pass proto tcp to port 99999999999999999999999",
         "fw.yaml:12:28: rule: port 99999999999999999999999 out of range (0..65535)"},
        {"pass proto tcp to port 2000:1000", "fw.yaml:12:28: rule: port range 2000:1000 is "
                                             "backwards"},
        {"pass proto 256", "fw.yaml:12:16: rule: protocol 256 out of range (1..255)"},
        {"pass proto 0", "fw.yaml:12:16: rule: protocol 0 is not a protocol (leave \"proto\" out "
                         "to match any)"},
        {"pass proto tpc", "fw.yaml:12:16: rule: unknown protocol \"tpc\" (use a name like tcp, "
                           "udp, icmp, icmp6 or a number)"},
        {"pass proto icmp icmp-type 256", "fw.yaml:12:31: rule: icmp-type 256 out of range "
                                          "(0..255)"},
        {"pass proto tcp keep state (max 0)", "fw.yaml:12:36: rule: max 0 out of range "
                                              "(1..4294967295)"},
        {"pass proto tcp keep state (tcp.first 4294967296)",
         "fw.yaml:12:42: rule: tcp.first 4294967296 out of range (1..4294967295)"},
        // address family
        {"pass inet from 2001:db8::1 to any", "fw.yaml:12:20: rule: address family mismatch: "
                                              "2001:db8::1 is IPv6, but the rule is inet"},
        {"pass inet6 to { 2001:db8::1 192.0.2.1 }",
         "fw.yaml:12:33: rule: address family mismatch: 192.0.2.1 is IPv4, but the rule is "
         "inet6"},
        {"pass from 192.0.2.1 to 2001:db8::1", "fw.yaml:12:28: rule: address family mismatch: "
                                               "2001:db8::1 is IPv6, but the source addresses "
                                               "are IPv4"},
        {"pass proto icmp from 2001:db8::1 icmp-type echoreq",
         "fw.yaml:12:26: rule: address family mismatch: 2001:db8::1 is IPv6, but icmp-type is "
         "for inet"},
        // state
        {"pass proto tcp synproxy state", "fw.yaml:12:20: rule: \"synproxy state\" is not "
                                          "supported (use \"keep state\")"},
        {"pass proto tcp modulate state", "fw.yaml:12:20: rule: \"modulate state\" is not "
                                          "supported (use \"keep state\")"},
        {"pass keep", "fw.yaml:12:14: rule: expected \"state\" after \"keep\", got end of rule"},
        {"pass keep state no state", "fw.yaml:12:21: rule: \"no state\": the rule's state is "
                                     "already given"},
        {"block keep state", "fw.yaml:12:11: rule: \"keep state\" applies only to pass rules"},
        {"pass keep state (max 5", "fw.yaml:12:21: rule: unterminated state options: \"(\" has no "
                                   "matching \")\""},
        {"pass keep state ()", "fw.yaml:12:22: rule: expected a state option (max or a timeout "
                               "like tcp.established) after \"(\", got \")\""},
        {"pass keep state (max 5, max 6)", "fw.yaml:12:29: rule: duplicate state option \"max\""},
        {"pass keep state (tcp.frist 5)",
         "fw.yaml:12:22: rule: unknown state option \"tcp.frist\" (max, tcp.first, tcp.opening, "
         "tcp.established, tcp.closing, tcp.finwait, tcp.closed, udp.first, udp.single, "
         "udp.multiple, icmp.first, icmp.error, other.first, other.single, other.multiple)"},
        {"pass keep state (no-sync)", "fw.yaml:12:22: rule: state option \"no-sync\" is not "
                                      "supported"},
        {"pass keep state (max x)", "fw.yaml:12:26: rule: expected a number after \"max\", got "
                                    "\"x\""},
        // icmp
        {"pass icmp-type echoreq", "fw.yaml:12:10: rule: \"icmp-type\" requires \"proto icmp\""},
        {"pass proto icmp icmp6-type echoreq", "fw.yaml:12:21: rule: \"icmp6-type\" requires "
                                               "\"proto icmp6\""},
        {"pass inet6 proto icmp icmp-type echoreq", "fw.yaml:12:27: rule: \"icmp-type\" applies "
                                                    "to inet, but the rule is inet6"},
        {"pass proto icmp icmp-type echorequest", "fw.yaml:12:31: rule: unknown icmp-type "
                                                  "\"echorequest\""},
        {"pass proto icmp icmp-type echoreq code port-unr",
         "fw.yaml:12:44: rule: code \"port-unr\" belongs to icmp-type unreach, not echoreq"},
        {"pass proto icmp icmp-type echoreq icmp-type echorep",
         "fw.yaml:12:39: rule: duplicate \"icmp-type\""},
        // the action and the order of things
        {"", "fw.yaml:12:5: rule: expected \"pass\" or \"block\", got end of rule"},
        {"allow in", "fw.yaml:12:5: rule: expected \"pass\" or \"block\", got \"allow\""},
        {"match in all", "fw.yaml:12:5: rule: \"match\" rules are not supported: a rule starts "
                         "with \"pass\" or \"block\""},
        {"pass drop", "fw.yaml:12:10: rule: \"drop\" applies only to block rules"},
        {"block return-rst all", "fw.yaml:12:11: rule: \"return-rst\" applies only to \"proto "
                                 "tcp\" rules"},
        {"block return-icmp6", "fw.yaml:12:11: rule: \"return-icmp6\" is not supported "
                               "(\"return-icmp\" answers IPv6 with ICMPv6)"},
        {"pass log log", "fw.yaml:12:14: rule: duplicate \"log\""},
        {"pass on lan quick", "fw.yaml:12:17: rule: \"quick\" is out of place (the order is: pass "
                              "or block, in or out, log, quick, on, inet or inet6, proto, all or "
                              "from ... to ..., then the options)"},
        {"pass all from any", "fw.yaml:12:14: rule: \"from\" is out of place (the order is: pass "
                              "or block, in or out, log, quick, on, inet or inet6, proto, all or "
                              "from ... to ..., then the options)"},
        {"pass proto tcp from any nat-to 10.0.0.1", "fw.yaml:12:29: rule: pf option \"nat-to\" is "
                                                    "not supported"},
        {"pass in lan", "fw.yaml:12:13: rule: unexpected interface name \"lan\" (\"on lan\" goes "
                        "right after in/out, log and quick)"},
        {"pass all ,", "fw.yaml:12:14: rule: expected an option (flags, icmp-type, icmp6-type, "
                       "keep state, no state, label) or the end of the rule, got \",\""},
        {"pass all # ssh", "fw.yaml:12:14: rule: unexpected \"#\": a rule line has no comments "
                           "(put a YAML comment after the rule)"},
        {std::string("pass\x01"), "fw.yaml:12:9: rule: unexpected control character \"\\x01\""},
    };
    for (const auto &c : cases) {
        CAPTURE(c.rule);
        CHECK(error_of(c.rule) == c.message);
    }
}

TEST_CASE("an error carries its position as well as its text", "[pfrule]") {
    try {
        parse("pass proto tcp to port 70000");
        FAIL("no error");
    } catch (const ConfigError &e) {
        CHECK(e.pos().file == "fw.yaml");
        CHECK(e.pos().line == 12);
        CHECK(e.pos().column == 28);
        CHECK(e.message() == "rule: port 70000 out of range (0..65535)");
    }
}

// ---- robustness

namespace {

// Parses or throws ConfigError pointing inside the rule (or just past its end); a rule
// that parses prints as text that parses to the same rule. Returns whether it parsed.
bool check_robust(const std::string &text) {
    PfRule rule;
    try {
        rule = parse(text);
    } catch (const ConfigError &e) {
        if (e.pos().line != 12 || e.pos().column < 5 || e.pos().column > 5 + int(text.size()))
            FAIL("error outside the rule: " << e.what() << " for " << text);
        return false;
    }
    std::string canonical = to_string(rule);
    PfRule again;
    try {
        again = parse(canonical);
    } catch (const ConfigError &e) {
        FAIL("canonical text does not parse: " << e.what() << " for " << text);
    }
    if (!same_filter(rule, again) || to_string(again) != canonical)
        FAIL("round trip changed " << text << " -> " << canonical << " -> " << to_string(again));
    return true;
}

const std::vector<std::string> valid_lines = {
    "pass in on lan proto tcp from 192.0.2.0/24 to any port { 22 80 443 } keep state",
    "block return-rst in log quick on ! wan inet proto tcp from ! <bad> port 1:1024 to self "
    "port 1000 >< 2000 flags S/SA",
    "pass out inet6 proto { udp tcp } from { 2001:db8::/32, lan:network } to dmz port "
    "{ domain, >= 8000 } keep state (max 100, udp.single 20) label \"dns \\\"out\\\"\"",
    "pass proto icmp icmp-type { echoreq, unreach code port-unr } no state",
    "pass inet6 proto icmp6 icmp6-type neighbrsol label nd",
    "block return-icmp from any to 10.0.0.0/8",
};

} // namespace

TEST_CASE("every prefix of a valid rule parses or fails cleanly", "[pfrule]") {
    for (const auto &line : valid_lines) {
        CAPTURE(line);
        CHECK_NOTHROW(parse(line));
        int parsed = 0;
        for (size_t n = 0; n <= line.size(); n++)
            parsed += check_robust(line.substr(0, n));
        CHECK(parsed >= 3); // "pass"/"block" and the whole line at least
    }
}

TEST_CASE("random token soups parse or fail cleanly, and what parses round-trips", "[pfrule]") {
    const std::vector<std::string> vocabulary = {
        "pass",
        "block",
        "drop",
        "return",
        "return-rst",
        "return-icmp",
        "in",
        "out",
        "log",
        "quick",
        "on",
        "lan",
        "wan",
        "!",
        "inet",
        "inet6",
        "proto",
        "tcp",
        "udp",
        "icmp",
        "icmp6",
        "gre",
        "255",
        "256",
        "0",
        "all",
        "from",
        "to",
        "any",
        "self",
        "port",
        "22",
        "70000",
        "1:2",
        "ssh",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "><",
        "<>",
        "{",
        "}",
        ",",
        "<web>",
        "<nope>",
        "<",
        ">",
        "192.0.2.1",
        "10.0.0.0/8",
        "2001:db8::/32",
        "lan:network",
        "flags",
        "S/SA",
        "any",
        "/A",
        "icmp-type",
        "icmp6-type",
        "echoreq",
        "unreach",
        "code",
        "3",
        "port-unr",
        "keep",
        "no",
        "state",
        "modulate",
        "synproxy",
        "(",
        ")",
        "max",
        "5",
        "tcp.first",
        "label",
        "\"x y\"",
        "\"",
        "'",
        "#",
        "\\",
        "\t",
        ":",
        "/",
        "::",
    };
    std::mt19937 random(20240601);
    int parsed = 0;
    for (int i = 0; i < 20000; i++) {
        std::string text;
        int tokens = std::uniform_int_distribution<int>(0, 14)(random);
        for (int t = 0; t < tokens; t++) {
            text += vocabulary[random() % vocabulary.size()];
            if (random() % 4 != 0) text += ' ';
        }
        parsed += check_robust(text);
    }
    // Rules that begin well, then go anywhere.
    for (int i = 0; i < 20000; i++) {
        std::string text = i % 2 ? "pass proto tcp" : "block in quick on lan proto { tcp udp }";
        int tokens = std::uniform_int_distribution<int>(0, 8)(random);
        for (int t = 0; t < tokens; t++)
            text += " " + vocabulary[random() % vocabulary.size()];
        parsed += check_robust(text);
    }
    // Enough of them parse for the round trip to have been tried on many shapes.
    CHECK(parsed > 2000);
    // Bytes, control characters and NULs included.
    for (int i = 0; i < 5000; i++) {
        std::string text = "pass ";
        int length = std::uniform_int_distribution<int>(0, 40)(random);
        for (int b = 0; b < length; b++)
            text += char(random() % 256);
        check_robust(text);
    }
}
