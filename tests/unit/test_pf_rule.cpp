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
// `(name)` in a translation pool.
HostSpec dynamic_iface(const std::string &name) {
    return {HostSpec::Kind::iface_address, false, {}, name, true};
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

// ---- translations: match rules, nat-to, rdr-to, binat-to

TEST_CASE("match rules apply their options without state, flags defaults or a policy", "[pfrule]") {
    auto rule = parse("match out log on wan from 192.0.2.0/24 nat-to (wan)");
    CHECK(rule.action == Action::match);
    CHECK(rule.direction == Direction::out);
    CHECK(rule.log);
    CHECK(rule.iface == "wan");
    CHECK_FALSE(rule.state.keep_state);
    CHECK(rule.flags_mask == 0); // pf's S/SA is for pass rules keeping state only
    CHECK(rule.block_policy == BlockPolicy::drop);
    CHECK(rule.nat.set);
    CHECK(rule.nat.pool == std::vector{dynamic_iface("wan")});
    CHECK_FALSE(rule.rdr.set);
    CHECK_FALSE(rule.binat);

    auto plain = parse("match in quick proto tcp");
    CHECK(plain.action == Action::match);
    CHECK(plain.quick);
    CHECK_FALSE(plain.state.keep_state);
    CHECK(plain.flags_mask == 0);
    CHECK_FALSE(plain.nat.set);
    CHECK(to_string(plain) == "match in quick proto tcp all");

    auto flags = parse("match proto tcp flags S/SA");
    CHECK(flags.flags == S);
    CHECK(flags.flags_mask == (S | A));
    CHECK(to_string(parse("match")) == "match all");
}

TEST_CASE("nat-to takes an address, prefix, interface, table or list", "[pfrule]") {
    auto nat = [](const std::string &rest) { return parse("pass out on wan " + rest).nat; };
    SECTION("one address: no port range (pf's default), no method") {
        auto rule = parse("pass out on wan nat-to 198.51.100.1");
        CHECK(rule.nat.set);
        CHECK(rule.nat.pool == std::vector{address("198.51.100.1/32")});
        CHECK(rule.nat.port_lo == 0);
        CHECK(rule.nat.port_hi == 0);
        CHECK_FALSE(rule.nat.static_port);
        CHECK(rule.nat.method == PoolMethod::none);
        CHECK_FALSE(rule.rdr.set);
        CHECK_FALSE(rule.binat);
        CHECK(rule.state.keep_state); // a pass rule still keeps state, with S/SA
        CHECK(rule.flags_mask == (S | A));
        CHECK(rule.af == 4); // from the translation address, as pfctl does
    }
    SECTION("(interface) is dynamic, a bare interface is not") {
        CHECK(nat("nat-to (wan)").pool == std::vector{dynamic_iface("wan")});
        CHECK(nat("nat-to ( dmz )").pool == std::vector{dynamic_iface("dmz")});
        CHECK(nat("nat-to wan").pool == std::vector{named(HostSpec::Kind::iface_address, "wan")});
        CHECK_FALSE(nat("nat-to wan").pool[0].dynamic);
        CHECK(parse("pass out on wan nat-to (wan)").af == 0);
    }
    SECTION("a prefix has its host bits cleared") {
        CHECK(nat("nat-to 198.51.100.7/29").pool == std::vector{address("198.51.100.0/29")});
    }
    SECTION("a table") {
        auto translation = nat("nat-to <web>");
        CHECK(translation.pool == std::vector{named(HostSpec::Kind::table, "web")});
        CHECK(translation.method == PoolMethod::none); // the compiler applies pf's default
        CHECK(parse("pass out nat-to < bad >").nat.pool ==
              std::vector{named(HostSpec::Kind::table, "bad")});
    }
    SECTION("a list, commas optional, of every kind") {
        auto translation = nat("nat-to { 198.51.100.1, 198.51.100.8/29 (wan) dmz <web> }");
        CHECK(translation.pool == std::vector{address("198.51.100.1/32"),
                                              address("198.51.100.8/29"), dynamic_iface("wan"),
                                              named(HostSpec::Kind::iface_address, "dmz"),
                                              named(HostSpec::Kind::table, "web")});
        CHECK(translation.method == PoolMethod::none);
    }
    SECTION("port N and port N:M, by number or name") {
        auto one = nat("nat-to 198.51.100.1 port 4000");
        CHECK(one.port_lo == 4000);
        CHECK(one.port_hi == 4000);
        auto range = nat("nat-to 198.51.100.1 port 1024:2047");
        CHECK(range.port_lo == 1024);
        CHECK(range.port_hi == 2047);
        auto named_port = nat("nat-to 198.51.100.1 port http-alt");
        CHECK(named_port.port_lo == 8080);
        CHECK(named_port.port_hi == 8080);
    }
    SECTION("pf's default range written out is the default") {
        auto translation = nat("nat-to (wan) port 50001:65535");
        CHECK(translation.port_lo == 0);
        CHECK(translation.port_hi == 0);
        CHECK(translation == nat("nat-to (wan)"));
    }
    SECTION("static-port") {
        auto translation = nat("nat-to 198.51.100.1 static-port");
        CHECK(translation.static_port);
        CHECK(translation.port_lo == 0);
    }
    SECTION("each method, before or after static-port") {
        CHECK(nat("nat-to <web> round-robin").method == PoolMethod::round_robin);
        CHECK(nat("nat-to <web> random").method == PoolMethod::random);
        CHECK(nat("nat-to <web> source-hash").method == PoolMethod::source_hash);
        auto both = nat("nat-to { 198.51.100.1 198.51.100.2 } random static-port");
        CHECK(both.method == PoolMethod::random);
        CHECK(both.static_port);
        CHECK(both == nat("nat-to { 198.51.100.1 198.51.100.2 } static-port random"));
        auto ported = nat("nat-to 198.51.100.0/28 port 2000:3000 source-hash");
        CHECK(ported.method == PoolMethod::source_hash);
        CHECK(ported.port_lo == 2000);
        CHECK(ported.port_hi == 3000);
    }
    SECTION("the other options may come before or after it") {
        auto rule = parse("pass out on wan proto tcp label x nat-to (wan) round-robin flags any "
                          "keep state (max 9)");
        CHECK(rule.label == "x");
        CHECK(rule.nat.pool == std::vector{dynamic_iface("wan")});
        CHECK(rule.nat.method == PoolMethod::round_robin);
        CHECK(rule.flags_explicit);
        CHECK(rule.state.max_states == 9);
    }
    SECTION("IPv6: NAT66 to an address or a prefix") {
        auto rule = parse("pass out on wan inet6 from fd00::/64 nat-to 2001:db8::1");
        CHECK(rule.af == 6);
        CHECK(rule.nat.pool == std::vector{address("2001:db8::1/128")});
        auto prefixed = parse("match out on wan nat-to 2001:db8:0:1::5/64");
        CHECK(prefixed.af == 6); // from the translation address
        CHECK(prefixed.nat.pool == std::vector{address("2001:db8:0:1::/64")});
    }
}

TEST_CASE("rdr-to takes a pool and an optional port", "[pfrule]") {
    auto rule = parse("pass in on wan proto tcp to port 80 rdr-to 10.0.0.10");
    CHECK(rule.rdr.set);
    CHECK(rule.rdr.pool == std::vector{address("10.0.0.10/32")});
    CHECK(rule.rdr.port_lo == 0); // the destination port is kept
    CHECK(rule.rdr.port_hi == 0);
    CHECK(rule.rdr.method == PoolMethod::none);
    CHECK_FALSE(rule.nat.set);
    CHECK(rule.af == 4);
    CHECK(rule.state.keep_state);

    auto ported = parse("pass in on wan proto { tcp udp } to port 8080 rdr-to 10.0.0.10 port 80");
    CHECK(ported.rdr.port_lo == 80);
    CHECK(ported.rdr.port_hi == 80);
    CHECK(parse("pass in proto tcp rdr-to 10.0.0.10 port www").rdr.port_lo == 80);

    auto pool =
        parse("match in on wan proto tcp to port 443 rdr-to { 10.0.0.10 10.0.0.11 } source-hash");
    CHECK(pool.action == Action::match);
    CHECK(pool.rdr.pool == std::vector{address("10.0.0.10/32"), address("10.0.0.11/32")});
    CHECK(pool.rdr.method == PoolMethod::source_hash);
    CHECK(parse("pass in rdr-to <web> round-robin").rdr.method == PoolMethod::round_robin);
    CHECK(parse("pass in rdr-to (lan) random").rdr.pool == std::vector{dynamic_iface("lan")});
    CHECK(parse("pass in inet6 proto tcp rdr-to 2001:db8::10 port 80").rdr.pool ==
          std::vector{address("2001:db8::10/128")});
}

TEST_CASE("binat-to maps one source address or prefix on an interface", "[pfrule]") {
    auto rule = parse("pass on wan from 10.0.0.10 binat-to 198.51.100.10");
    CHECK(rule.binat);
    CHECK(rule.nat.set);
    CHECK(rule.nat.pool == std::vector{address("198.51.100.10/32")});
    CHECK(rule.nat.port_lo == 0);
    CHECK_FALSE(rule.nat.static_port); // the compiler makes binat's static port
    CHECK(rule.nat.method == PoolMethod::none);
    CHECK_FALSE(rule.rdr.set);
    CHECK(rule.direction == Direction::both);
    CHECK(rule.af == 4);

    auto net = parse("match on wan from 10.0.1.0/24 to any binat-to 198.51.100.77/24");
    CHECK(net.binat);
    CHECK(net.nat.pool == std::vector{address("198.51.100.0/24")});
    auto six = parse("pass on wan from { fd00::10 } binat-to 2001:db8::10");
    CHECK(six.binat);
    CHECK(six.af == 6);
    CHECK(six.nat.pool == std::vector{address("2001:db8::10/128")});
}

TEST_CASE("translations print in canonical form, which parses to the same rule", "[pfrule]") {
    struct Case {
        std::string input, canonical;
    };
    std::vector<Case> cases = {
        {"match out on wan from 192.0.2.0/24 nat-to (wan) port 50001:65535 round-robin",
         "match out on wan inet from 192.0.2.0/24 to any nat-to (wan) round-robin"},
        {"pass out on wan nat-to 198.51.100.1",
         "pass out on wan inet all flags S/SA keep state nat-to 198.51.100.1"},
        {"pass out on wan nat-to wan static-port",
         "pass out on wan all flags S/SA keep state nat-to wan static-port"},
        {"match out on wan nat-to 198.51.100.5/28 source-hash",
         "match out on wan inet all nat-to 198.51.100.0/28 source-hash"},
        {"match out nat-to < web > random", "match out all nat-to <web> random"},
        {"match out nat-to { 198.51.100.1 198.51.100.2 } port 1024:2047 round-robin",
         "match out inet all nat-to { 198.51.100.1, 198.51.100.2 } port 1024:2047 round-robin"},
        {"match out nat-to 198.51.100.1 port 4000", "match out inet all nat-to 198.51.100.1 port "
                                                    "4000"},
        {"match out nat-to { (wan) , <web> }", "match out all nat-to { (wan), <web> }"},
        {"match out nat-to 198.51.100.1 random static-port",
         "match out inet all nat-to 198.51.100.1 static-port random"},
        {"pass out on wan inet6 from fd00::/64 nat-to 2001:db8::1",
         "pass out on wan inet6 from fd00::/64 to any flags S/SA keep state nat-to 2001:db8::1"},
        {"match out log quick on wan proto udp nat-to (wan) label nat",
         "match out log quick on wan proto udp all label \"nat\" nat-to (wan)"},
        {"pass in on wan proto tcp to port 80 rdr-to 10.0.0.10 port 8080",
         "pass in on wan inet proto tcp from any to any port = 80 flags S/SA keep state rdr-to "
         "10.0.0.10 port 8080"},
        {"match in on wan proto tcp to port 443 rdr-to { 10.0.0.10 10.0.0.11 } source-hash",
         "match in on wan inet proto tcp from any to any port = 443 rdr-to { 10.0.0.10, "
         "10.0.0.11 } source-hash"},
        {"pass in on wan rdr-to 10.0.0.10", "pass in on wan inet all flags S/SA keep state "
                                            "rdr-to 10.0.0.10"},
        {"pass in rdr-to (lan) random", "pass in all flags S/SA keep state rdr-to (lan) random"},
        {"pass on wan from 10.0.0.10 binat-to 198.51.100.10",
         "pass on wan inet from 10.0.0.10 to any flags S/SA keep state binat-to 198.51.100.10"},
        {"match on wan from 10.0.1.0/24 binat-to 198.51.100.0/24",
         "match on wan inet from 10.0.1.0/24 to any binat-to 198.51.100.0/24"},
        {"match in proto tcp flags S/SA", "match in proto tcp all flags S/SA"},
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

TEST_CASE("same_filter tells translations apart", "[pfrule]") {
    auto a = parse("pass out on wan nat-to 198.51.100.1");
    CHECK(same_filter(a, parse("pass out on wan nat-to { 198.51.100.1 }")));
    CHECK_FALSE(same_filter(a, parse("pass out on wan nat-to 198.51.100.2")));
    CHECK_FALSE(same_filter(a, parse("pass out on wan nat-to 198.51.100.1 port 1024:2047")));
    CHECK_FALSE(same_filter(a, parse("pass out on wan nat-to 198.51.100.1 static-port")));
    CHECK_FALSE(same_filter(a, parse("pass out on wan nat-to 198.51.100.1 random")));
    CHECK_FALSE(same_filter(a, parse("pass out on wan inet")));
    CHECK_FALSE(
        same_filter(parse("match out on wan nat-to (wan)"), parse("match out on wan nat-to wan")));
    CHECK_FALSE(same_filter(parse("match out on wan"), parse("pass out on wan no state")));
    CHECK_FALSE(same_filter(parse("pass in proto tcp rdr-to 10.0.0.1"),
                            parse("pass in proto tcp rdr-to 10.0.0.1 port 80")));
    CHECK_FALSE(same_filter(parse("pass in proto tcp rdr-to 10.0.0.1"),
                            parse("pass in proto tcp rdr-to 10.0.0.2")));
    auto binat = parse("pass on wan from 10.0.0.1 binat-to 198.51.100.1");
    auto cleared = binat;
    cleared.binat = false;
    CHECK_FALSE(same_filter(binat, cleared));
    CHECK(same_filter(binat, parse("pass on wan from 10.0.0.1 binat-to 198.51.100.1/32")));
}

TEST_CASE("each translation mistake names the token and its column", "[pfrule]") {
    struct Case {
        std::string rule, message;
    };
    std::vector<Case> cases = {
        // direction and action
        {"pass in on lan nat-to 192.0.2.1",
         "fw.yaml:12:20: rule: nat-to can only be used on outbound rules (\"out\")"},
        {"pass nat-to 192.0.2.1",
         "fw.yaml:12:10: rule: nat-to can only be used on outbound rules (\"out\")"},
        {"pass out on wan rdr-to 192.0.2.1",
         "fw.yaml:12:21: rule: rdr-to can only be used on inbound rules (\"in\")"},
        {"block out nat-to 192.0.2.1",
         "fw.yaml:12:15: rule: \"nat-to\" applies only to pass and match rules"},
        {"block in on wan rdr-to 10.0.0.1",
         "fw.yaml:12:21: rule: \"rdr-to\" applies only to pass and match rules"},
        {"block on wan from 10.0.0.1 binat-to 192.0.2.1",
         "fw.yaml:12:32: rule: \"binat-to\" applies only to pass and match rules"},
        // each at most once; binat-to alone
        {"pass out nat-to 192.0.2.1 nat-to 192.0.2.2", "fw.yaml:12:31: rule: duplicate \"nat-to\""},
        {"pass in proto tcp rdr-to 10.0.0.1 rdr-to 10.0.0.2",
         "fw.yaml:12:39: rule: duplicate \"rdr-to\""},
        {"pass out on wan from 10.0.0.1 nat-to 192.0.2.9 binat-to 192.0.2.1",
         "fw.yaml:12:52: rule: \"binat-to\" cannot be combined with \"nat-to\""},
        {"pass on wan from 10.0.0.1 binat-to 192.0.2.1 nat-to 192.0.2.2",
         "fw.yaml:12:50: rule: \"nat-to\" cannot be combined with \"binat-to\""},
        {"pass on wan from 10.0.0.1 binat-to 192.0.2.1 rdr-to 10.0.0.2",
         "fw.yaml:12:50: rule: \"rdr-to\" cannot be combined with \"binat-to\""},
        {"pass on wan from 10.0.0.1 binat-to 192.0.2.1 binat-to 192.0.2.2",
         "fw.yaml:12:50: rule: duplicate \"binat-to\""},
        // the pool
        {"pass out nat-to port 5", "fw.yaml:12:21: rule: expected an address, (interface) or "
                                   "<table> after \"nat-to\", got \"port\""},
        {"pass out nat-to", "fw.yaml:12:20: rule: expected an address, (interface) or <table> "
                            "after \"nat-to\", got end of rule"},
        {"pass out nat-to lann", "fw.yaml:12:21: rule: expected an address, (interface) or <table> "
                                 "after \"nat-to\", got \"lann\""},
        {"pass out nat-to { 192.0.2.1, lann }", "fw.yaml:12:34: rule: expected an address, "
                                                "(interface) or <table> in the list, got \"lann\""},
        {"pass out nat-to any", "fw.yaml:12:21: rule: \"any\" cannot be a translation address (use "
                                "an address, (interface) or <table>)"},
        {"pass out nat-to { 192.0.2.1 self }",
         "fw.yaml:12:33: rule: \"self\" cannot be a translation address (use an address, "
         "(interface) or <table>)"},
        {"pass out nat-to ! 192.0.2.1",
         "fw.yaml:12:21: rule: a translation address cannot be negated"},
        {"pass out nat-to wan:network",
         "fw.yaml:12:21: rule: \"wan:network\" cannot be a translation address (use (wan) or wan)"},
        {"pass out nat-to (wann)",
         "fw.yaml:12:22: rule: unknown interface \"wann\" (interfaces: lan, wan, dmz)"},
        {"pass out nat-to (wan",
         "fw.yaml:12:25: rule: expected \")\" after the interface name, got end of rule"},
        {"pass out nat-to ()",
         "fw.yaml:12:22: rule: expected an interface name after \"(\", got \")\""},
        {"pass out nat-to <webb>", "fw.yaml:12:21: rule: unknown table <webb> (tables: web, bad)"},
        {"pass out nat-to { 192.0.2.1 { 192.0.2.2 } }",
         "fw.yaml:12:33: rule: lists cannot be nested"},
        {"pass out nat-to { 192.0.2.1",
         "fw.yaml:12:21: rule: unterminated list: \"{\" has no matching \"}\""},
        {"pass out nat-to 192.0.2.300", "fw.yaml:12:21: rule: bad address \"192.0.2.300\""},
        // ports, static-port, methods
        {"pass out nat-to 192.0.2.1 port",
         "fw.yaml:12:35: rule: expected a port number or name after \"port\", got end of rule"},
        {"pass out nat-to 192.0.2.1 port 2000:1000",
         "fw.yaml:12:36: rule: port range 2000:1000 is backwards"},
        {"pass out nat-to 192.0.2.1 port 0",
         "fw.yaml:12:36: rule: port 0 cannot be a translation port (1..65535)"},
        {"pass out nat-to 192.0.2.1 port 1:70000",
         "fw.yaml:12:38: rule: port 70000 out of range (0..65535)"},
        {"pass out nat-to 192.0.2.1 port 1000 static-port",
         "fw.yaml:12:41: rule: \"static-port\" cannot be combined with \"port\" (it keeps the "
         "source port)"},
        {"pass out nat-to 192.0.2.1 port 1024:2047 static-port",
         "fw.yaml:12:46: rule: \"static-port\" cannot be combined with \"port\" (it keeps the "
         "source port)"},
        {"pass out nat-to 192.0.2.1 static-port static-port",
         "fw.yaml:12:43: rule: duplicate \"static-port\""},
        {"pass out nat-to 192.0.2.1 static-port port 5",
         "fw.yaml:12:43: rule: \"port\" goes right after the address of nat-to"},
        {"pass out nat-to 192.0.2.1 port 5 port 6", "fw.yaml:12:38: rule: duplicate \"port\""},
        {"pass out nat-to { 192.0.2.1 192.0.2.2 } random round-robin",
         "fw.yaml:12:52: rule: \"round-robin\" cannot be combined with \"random\""},
        {"pass out nat-to <web> random random", "fw.yaml:12:34: rule: duplicate \"random\""},
        {"pass out nat-to <web> sticky-address",
         "fw.yaml:12:27: rule: pool option \"sticky-address\" is not supported"},
        {"pass out nat-to <web> source-hash 0x0123456789abcdef",
         "fw.yaml:12:39: rule: source-hash keys are not supported (write \"source-hash\" alone)"},
        {"pass out static-port", "fw.yaml:12:14: rule: \"static-port\" is out of place: it goes "
                                 "right after the address (and port) of nat-to or rdr-to"},
        {"pass out nat-to 192.0.2.1 label x random",
         "fw.yaml:12:39: rule: \"random\" is out of place: it goes right after the address (and "
         "port) of nat-to or rdr-to"},
        {"pass in proto tcp rdr-to 10.0.0.1 static-port",
         "fw.yaml:12:39: rule: \"static-port\" applies only to nat-to"},
        {"pass in proto tcp rdr-to 10.0.0.1 port 80:90",
         "fw.yaml:12:44: rule: rdr-to takes one port, not a range"},
        {"pass in rdr-to 10.0.0.1 port 80", "fw.yaml:12:29: rule: rdr-to's port only applies to "
                                            "tcp/udp: add \"proto tcp\" or \"proto udp\""},
        {"pass in proto { tcp icmp } rdr-to 10.0.0.1 port 80",
         "fw.yaml:12:48: rule: rdr-to's port only applies to tcp/udp, not icmp"},
        // state
        {"pass out nat-to 192.0.2.1 no state", "fw.yaml:12:31: rule: \"no state\" cannot be used "
                                               "with \"nat-to\": a translation needs the state"},
        {"pass in proto tcp no state rdr-to 10.0.0.1",
         "fw.yaml:12:23: rule: \"no state\" cannot be used with \"rdr-to\": a translation needs "
         "the state"},
        {"pass on wan from 10.0.0.1 binat-to 192.0.2.1 no state",
         "fw.yaml:12:50: rule: \"no state\" cannot be used with \"binat-to\": a translation needs "
         "the state"},
        {"match out nat-to 192.0.2.1 keep state", "fw.yaml:12:32: rule: \"keep state\" cannot be "
                                                  "used on match rules: they never keep state"},
        {"match out no state",
         "fw.yaml:12:15: rule: \"no state\" cannot be used on match rules: they never keep state"},
        {"match drop", "fw.yaml:12:11: rule: \"drop\" applies only to block rules"},
        // address family
        {"pass out inet6 nat-to 192.0.2.1",
         "fw.yaml:12:27: rule: address family mismatch: 192.0.2.1 is IPv4, but the rule is inet6"},
        {"pass out from 192.0.2.0/24 nat-to 2001:db8::1",
         "fw.yaml:12:39: rule: address family mismatch: 2001:db8::1 is IPv6, but the source "
         "addresses are IPv4"},
        {"pass out nat-to { 192.0.2.1 2001:db8::1 }",
         "fw.yaml:12:33: rule: address family mismatch: 2001:db8::1 is IPv6, but the translation "
         "addresses are IPv4"},
        {"pass out proto icmp6 nat-to 192.0.2.1 icmp6-type echoreq",
         "fw.yaml:12:33: rule: address family mismatch: 192.0.2.1 is IPv4, but icmp6-type is for "
         "inet6"},
        {"pass in inet proto tcp rdr-to 2001:db8::1 port 80",
         "fw.yaml:12:35: rule: address family mismatch: 2001:db8::1 is IPv6, but the rule is inet"},
        {"pass on wan from 10.0.0.1 binat-to 2001:db8::1",
         "fw.yaml:12:40: rule: address family mismatch: 2001:db8::1 is IPv6, but the source "
         "addresses are IPv4"},
        // binat-to
        {"pass in on wan from 10.0.0.1 binat-to 192.0.2.1",
         "fw.yaml:12:34: rule: binat-to translates both directions: leave out \"in\""},
        {"pass out on wan from 10.0.0.1 binat-to 192.0.2.1",
         "fw.yaml:12:35: rule: binat-to translates both directions: leave out \"out\""},
        {"pass from 10.0.0.1 binat-to 192.0.2.1",
         "fw.yaml:12:24: rule: binat-to needs the interface it translates on: add \"on IFNAME\""},
        {"pass on ! wan from 10.0.0.1 binat-to 192.0.2.1",
         "fw.yaml:12:33: rule: binat-to cannot be used on \"on ! wan\": name the interface it "
         "translates on"},
        {"pass on wan binat-to 192.0.2.1",
         "fw.yaml:12:17: rule: binat-to needs the address it translates: add \"from ADDRESS\""},
        {"pass on wan all binat-to 192.0.2.1",
         "fw.yaml:12:21: rule: binat-to needs the address it translates: add \"from ADDRESS\""},
        {"pass on wan proto tcp from port 22 binat-to 192.0.2.1",
         "fw.yaml:12:40: rule: binat-to needs the address it translates: add \"from ADDRESS\""},
        {"pass on wan from { 10.0.0.1 10.0.0.2 } binat-to 192.0.2.1",
         "fw.yaml:12:22: rule: binat-to needs one source address, not a list"},
        {"pass on wan from <web> binat-to 192.0.2.1",
         "fw.yaml:12:22: rule: binat-to needs a source address or prefix (not a table, interface, "
         "self or any)"},
        {"pass on wan from any binat-to 192.0.2.1",
         "fw.yaml:12:22: rule: binat-to needs a source address or prefix (not a table, interface, "
         "self or any)"},
        {"pass on wan from ! 10.0.0.1 binat-to 192.0.2.1",
         "fw.yaml:12:22: rule: binat-to cannot translate a negated source"},
        {"pass on wan from 10.0.0.1 binat-to { 192.0.2.1 }",
         "fw.yaml:12:40: rule: binat-to takes one address, not a list"},
        {"pass on wan from 10.0.0.1 binat-to <web>",
         "fw.yaml:12:40: rule: binat-to takes an address, not a table"},
        {"pass on wan from 10.0.0.1 binat-to (wan)",
         "fw.yaml:12:40: rule: binat-to takes an address, not an interface"},
        {"pass on wan from 10.0.0.1 binat-to wan",
         "fw.yaml:12:40: rule: binat-to takes an address, not an interface"},
        {"pass on wan from 10.0.0.1 binat-to",
         "fw.yaml:12:39: rule: expected an address or prefix after \"binat-to\", got end of rule"},
        {"pass on wan from 10.0.0.1 binat-to 192.0.2.1.5",
         "fw.yaml:12:40: rule: bad address \"192.0.2.1.5\""},
        {"pass on wan from 10.0.0.0/28 binat-to 192.0.2.1",
         "fw.yaml:12:43: rule: binat-to 192.0.2.1 is a /32 but the source 10.0.0.0/28 is a /28: "
         "they must be as long"},
        {"pass on wan from 10.0.0.1 binat-to 192.0.2.1 port 80",
         "fw.yaml:12:50: rule: \"port\" cannot be used with binat-to (it maps one address, or "
         "prefix, to another)"},
        {"pass on wan from 10.0.0.1 binat-to 192.0.2.1 static-port",
         "fw.yaml:12:50: rule: \"static-port\" cannot be used with binat-to (it maps one address, "
         "or prefix, to another)"},
        {"pass on wan from 10.0.0.1 binat-to 192.0.2.1 round-robin",
         "fw.yaml:12:50: rule: \"round-robin\" cannot be used with binat-to (it maps one address, "
         "or prefix, to another)"},
        // pre-4.7 translation rules
        {"nat on wan from lan:network to any -> (wan)",
         "fw.yaml:12:5: rule: \"nat\" rules are not supported (pf replaced them in OpenBSD 4.7): "
         "use \"nat-to\" on a pass or match rule"},
        {"rdr on wan proto tcp to port 80 -> 10.0.0.1",
         "fw.yaml:12:5: rule: \"rdr\" rules are not supported (pf replaced them in OpenBSD 4.7): "
         "use \"rdr-to\" on a pass or match rule"},
        {"binat on wan from 10.0.0.1 to any -> 192.0.2.1",
         "fw.yaml:12:5: rule: \"binat\" rules are not supported (pf replaced them in OpenBSD 4.7): "
         "use \"binat-to\" on a pass or match rule"},
    };
    for (const auto &c : cases) {
        CAPTURE(c.rule);
        CHECK(error_of(c.rule) == c.message);
    }
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
        {"", "fw.yaml:12:5: rule: expected \"pass\", \"block\" or \"match\", got end of rule"},
        {"allow in", "fw.yaml:12:5: rule: expected \"pass\", \"block\" or \"match\", got "
                     "\"allow\""},
        {"anchor in all", "fw.yaml:12:5: rule: \"anchor\" rules are not supported: a rule "
                          "starts with \"pass\", \"block\" or \"match\""},
        {"pass drop", "fw.yaml:12:10: rule: \"drop\" applies only to block rules"},
        {"block return-rst all", "fw.yaml:12:11: rule: \"return-rst\" applies only to \"proto "
                                 "tcp\" rules"},
        {"block return-icmp6", "fw.yaml:12:11: rule: \"return-icmp6\" is not supported "
                               "(\"return-icmp\" answers IPv6 with ICMPv6)"},
        {"pass log log", "fw.yaml:12:14: rule: duplicate \"log\""},
        {"pass on lan quick", "fw.yaml:12:17: rule: \"quick\" is out of place (the order is: "
                              "pass, block or match, in or out, log, quick, on, inet or inet6, "
                              "proto, all or from ... to ..., then the options)"},
        {"pass all from any", "fw.yaml:12:14: rule: \"from\" is out of place (the order is: "
                              "pass, block or match, in or out, log, quick, on, inet or inet6, "
                              "proto, all or from ... to ..., then the options)"},
        {"pass all match", "fw.yaml:12:14: rule: \"match\" is out of place (the order is: "
                           "pass, block or match, in or out, log, quick, on, inet or inet6, "
                           "proto, all or from ... to ..., then the options)"},
        {"pass proto tcp from any route-to 10.0.0.1", "fw.yaml:12:29: rule: pf option "
                                                      "\"route-to\" is not supported"},
        {"pass in lan", "fw.yaml:12:13: rule: unexpected interface name \"lan\" (\"on lan\" goes "
                        "right after in/out, log and quick)"},
        {"pass all ,", "fw.yaml:12:14: rule: expected an option (flags, icmp-type, icmp6-type, "
                       "keep state, no state, label, nat-to, rdr-to, binat-to) or the end of "
                       "the rule, got \",\""},
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
    "match out log on wan inet from { 192.0.2.0/24 lan:network } to ! <bad> nat-to { (wan) "
    "198.51.100.0/28 <web> } port 1024:65535 round-robin label nat",
    "pass in on wan proto tcp to port { 80 443 } rdr-to { 10.0.0.10, 10.0.0.11 } port 8080 "
    "source-hash keep state (max 50)",
    "pass out on wan inet6 proto udp from fd00::/64 nat-to 2001:db8::/64 static-port random",
    "pass on wan from 10.0.0.0/24 to any binat-to 198.51.100.0/24",
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
        "match",
        "nat-to",
        "rdr-to",
        "binat-to",
        "(wan)",
        "static-port",
        "round-robin",
        "random",
        "source-hash",
        "50001:65535",
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
