// The pf.conf rule grammar: one line of the YAML `rules:` list -> a typed PfRule.
//
// Theory of operation: the loader keeps each rule as text with its position (RuleLine).
// `parse_pf_rules()` turns them into PfRules on the control path (load and reload), checks
// every name against the Config's interfaces and tables, and applies pf's semantics and
// defaults: a pass rule keeps state and, when it can match TCP, takes `flags S/SA`. Errors
// are ConfigErrors pointing at the offending token. Host and port lists stay lists; the
// rule compiler (dataplane) expands their cross products and resolves what is symbolic
// here (tables, interface addresses, `self`). `to_string()` prints a rule back in the
// canonical form that `pfctl -sr` uses, for "show rules"; that text parses to the same
// rule. Pure std: no DPDK, no globals.
//
// Grammar, in pf.conf(5) order (a word in [] is optional, | separates choices):
//   pass | match | block [drop | return | return-rst | return-icmp]
//   [in | out] [log] [quick] [on [!]IFNAME] [inet | inet6]
//   [proto PROTO | proto { PROTO ... }]
//   [all | [from HOSTS [port PORTS]] [to HOSTS [port PORTS]]]
//   then, in any order, each at most once:
//   [flags A/B | flags /B | flags any]
//   [icmp-type TYPE [code CODE] | icmp6-type TYPE [code CODE] | either with a { list }]
//   [keep state [( max N, tcp.established N, ... )] | no state]   (not on match rules)
//   [label "TEXT"]
//   [nat-to POOL [port N | port N:M] [static-port] [round-robin | random | source-hash]]
//   [rdr-to POOL [port N] [round-robin | random | source-hash]]
//   [binat-to ADDRESS[/LEN]]
// HOSTS is one host or a { list } (commas optional) of: any, self, [!]ADDRESS[/LEN],
// [!]<TABLE>, [!]IFNAME (its addresses), [!]IFNAME:network. A from/to without hosts
// ("to port 22") means any. PORTS: N, NAME, = != < <= > >= N, A:B (inclusive), A >< B
// (strictly between), A <> B (outside), or a { list } of them.
// POOL is one of, or a { list } of: ADDRESS[/LEN], (IFNAME), IFNAME, <TABLE>; no `!`, any,
// self or IFNAME:network. static-port and the method follow the port, in either order.
// Translations (pfctl's rules): only on pass and match rules, and a pass rule must keep
// state; nat-to only on `out` rules, rdr-to only on `in` rules, and rdr-to's port only with
// proto tcp/udp; `port 50001:65535` (pf's default) reads as no port; static-port not with
// a port. binat-to: a rule with no direction, `on IFNAME` and `from` one address or prefix
// as long as binat-to's; not with nat-to or rdr-to. match rules never keep state and get
// no default flags. The family of literal translation addresses must be the rule's; a rule
// with no family of its own (written or from its addresses) takes theirs.
#pragma once

#include "config/config.hpp"
#include "config/timeout_class.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace syncwall::config {

// `match` applies its options (translations, log) to every packet it matches without
// deciding: the last matching pass or block rule decides, as in pf.
enum class Action : uint8_t { pass, block, match };

// What a block rule does with the packet it drops (pf's block-policy per rule). `return_`
// answers TCP with a RST and everything else with an ICMP(v6) unreachable.
enum class BlockPolicy : uint8_t { drop, return_, return_rst, return_icmp };

enum class Direction : uint8_t { both, in, out };

// One entry of a from/to host list.
struct HostSpec {
    enum class Kind : uint8_t {
        any,
        prefix,        // `prefix`, host bits cleared
        table,         // <name>: the addresses of a table from the config's `tables`
        iface_network, // name:network: the networks of an interface's addresses
        iface_address, // name: the addresses of an interface
        self,          // every address of this node (interfaces and CARP)
    };
    Kind kind = Kind::any;
    bool negated = false;
    IpPrefix prefix;      // Kind::prefix
    std::string name;     // Kind::table, iface_network, iface_address
    bool dynamic = false; // Kind::iface_address written `(IFNAME)` (translation pools only)

    bool operator==(const HostSpec &) const = default;
};

// pf's port operators (PF_OP_*).
enum class PortOp : uint8_t {
    eq,      // = a   (also a bare port)
    ne,      // != a
    lt,      // < a
    le,      // <= a
    gt,      // > a
    ge,      // >= a
    range,   // a:b   a <= port <= b
    between, // a >< b   a < port < b
    outside, // a <> b   port < a or port > b
};

struct PortRange {
    uint16_t lo = 0, hi = 0; // inclusive
    bool operator==(const PortRange &) const = default;
};

struct PortSpec {
    PortOp op = PortOp::eq;
    uint16_t a = 0;
    uint16_t b = 0; // range, between, outside only; a <= b

    bool matches(uint16_t port) const;
    // The ports matched as at most two inclusive ranges, ascending; none when it matches
    // no port (`< 0`, `1 >< 2`). What an rte_acl range field needs.
    std::vector<PortRange> ranges() const;
    bool operator==(const PortSpec &) const = default;
};

// The source or the destination of a rule.
struct Endpoint {
    std::vector<HostSpec> hosts; // never empty; "any" is one HostSpec of Kind::any
    std::vector<PortSpec> ports; // empty: any port; otherwise any of them (tcp/udp only)
    bool operator==(const Endpoint &) const = default;
};

// One item of icmp-type / icmp6-type; which of the two the rule's protocol says.
struct IcmpSpec {
    uint8_t type = 0;
    int16_t code = -1; // 0..255, or -1 for any code

    bool operator==(const IcmpSpec &) const = default;
};

// "tcp.first", "udp.single", ...: the pf.conf name.
std::string_view state_timeout_name(Timeout timeout);

struct StateOptions {
    bool keep_state = false;
    uint32_t max_states = 0; // `max N`; 0 = no limit of its own
    // Seconds, indexed by Timeout (config/timeout_class.hpp); 0 = the global value from
    // `timeouts:`.
    std::array<uint32_t, state_timeout_count> timeouts{};

    bool operator==(const StateOptions &) const = default;
};

// TCP header flag bits, for PfRule::flags and flags_mask (letters F S R P A U E W).
namespace tcp_flags {
inline constexpr uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10, urg = 0x20,
                         ece = 0x40, cwr = 0x80;
}

// IP protocol numbers the grammar treats specially.
inline constexpr uint8_t ipproto_icmp = 1, ipproto_tcp = 6, ipproto_udp = 17, ipproto_icmpv6 = 58;

// How a translation picks an address from a pool of several (pf's pool options).
// `none`: the pool is one address (or the method was not written and pf's default applies:
// round-robin for a list or table, the one address otherwise).
enum class PoolMethod : uint8_t { none, round_robin, random, source_hash };

// A translation target: `nat-to`, `rdr-to` or `binat-to` and what follows it.
//   nat-to  POOL [port N | port N:M] [static-port] [round-robin | random | source-hash]
//   rdr-to  POOL [port N]             [round-robin | random | source-hash]
//   binat-to ADDRESS                  (one address, or a prefix as long as the source's)
// POOL is one HostSpec or a { list } of them: an address or prefix (Kind::prefix), an
// interface's addresses written `(IFNAME)` (Kind::iface_address with `dynamic` set: the
// interface's CARP virtual addresses when it has any, so that an HA pair translates to an
// address that moves with mastership; else its own), or <TABLE> (Kind::table).
struct Translation {
    bool set = false;           // the option was written
    std::vector<HostSpec> pool; // never empty when set; no negation, no any/self
    uint16_t port_lo = 0;       // nat-to: source ports to use (0/0 = 50001:65535, pf's
    uint16_t port_hi = 0;       //   default); rdr-to: the destination port (lo == hi), 0 = kept
    bool static_port = false;   // nat-to: keep the source port
    PoolMethod method = PoolMethod::none;

    bool operator==(const Translation &) const = default;
};

struct PfRule {
    Action action = Action::pass;
    BlockPolicy block_policy = BlockPolicy::drop; // block rules only
    Direction direction = Direction::both;
    bool log = false;
    bool quick = false;
    std::string iface; // `on`: an interface of the config; empty = every interface
    bool iface_negated = false;
    // 4 (inet), 6 (inet6) or 0 (both). Set by inet/inet6, implied by icmp-type (4) and
    // icmp6-type (6), else taken from the addresses when every literal one has the same
    // family (as pfctl does). With 0 and a list of both families, the compiler skips the
    // source/destination pairs whose families differ.
    uint8_t af = 0;
    std::vector<uint8_t> protos; // in the order written, without repeats; empty = any
    Endpoint from{{HostSpec{}}, {}};
    Endpoint to{{HostSpec{}}, {}};
    // TCP flags: match when (tcp flags & flags_mask) == flags. 0/0 = any; only TCP
    // packets are tested (a rule with `proto { tcp udp }` applies them to TCP only).
    uint8_t flags = 0;
    uint8_t flags_mask = 0;
    bool flags_explicit = false;      // written in the rule (else pf's default or none)
    std::vector<IcmpSpec> icmp_types; // empty = any type
    StateOptions state;
    std::string label; // empty = none; at most 63 bytes
    // Translations. nat-to only on `out` rules, rdr-to only on `in` rules (as pfctl
    // insists); `binat-to X` on a rule `on IF from A` is kept as written here (binat set,
    // nat holding X) and the compiler makes both directions of it: outbound from A nat-to X
    // (static port), inbound to X rdr-to A.
    Translation nat; // nat-to (or binat-to's address)
    Translation rdr; // rdr-to
    bool binat = false;

    // Where the rule came from: not part of what it matches (see same_filter()).
    uint32_t number = 0; // position in the ruleset, 0-based
    SourcePos pos;
    std::string text; // the line as written
};

// True when `a` and `b` filter alike: every field equal except number, pos, text and
// flags_explicit. What a reload uses to tell a changed rule, and what
// parse(to_string(rule)) preserves.
bool same_filter(const PfRule &a, const PfRule &b);

// What a reload does with the states of each old rule: result[i] is the index in `next` of
// the first rule, not yet given to an earlier old rule, that filters like old[i]
// (same_filter), or `no_match`. Rules are bucketed by their canonical text (to_string), so
// it takes time in proportion to the rules, not their product (10 000 rules each side:
// milliseconds, not the seconds a pairwise comparison took).
inline constexpr uint32_t no_match = 0xffffffffu;
std::vector<uint32_t> match_rules(const std::vector<PfRule> &old, const std::vector<PfRule> &next);

// Parse one rule line. `pos` is where the text starts in the YAML file: the line and
// column of its first character. For a quoted YAML scalar that is the character after the
// opening quote, not the quote (yaml-cpp's mark for the node), so the caller adds one to
// the mark's column; escapes inside a double-quoted scalar and line folding can still
// shift later columns, which are exact for single-line scalars without escapes. An error
// is a ConfigError at line pos.line, column pos.column + the token's byte offset in `text`
// (or its end, for "got end of rule"), whose message names the token:
//   fw.yaml:12:31: rule: expected a port number or name after "port", got "to"
//   fw.yaml:13:40: rule: unknown table <webb> (tables: web)
//   fw.yaml:14:12: rule: unknown interface "lann" (interfaces: lan, wan)
// Never throws anything else, whatever the text.
PfRule parse_pf_rule(const std::string &text, const SourcePos &pos,
                     const std::vector<std::string> &interface_names,
                     const std::vector<std::string> &table_names);

// Every rule of `cfg`, in order, numbered from 0, against cfg's interfaces and tables;
// the first error is thrown as by parse_pf_rule(). Each RuleLine's pos is used as given:
// it must be the position of the text's first character (see parse_pf_rule()).
std::vector<PfRule> parse_pf_rules(const Config &cfg);

// The rule as `pfctl -sr` prints it, with its lists kept, defaults made explicit and
// addresses normalised, e.g.
//   pass in quick on lan inet proto tcp from 192.0.2.0/24 to any port = 22 flags S/SA
//   keep state
// (one line). parse_pf_rule() of this text gives a rule for which same_filter() is true.
std::string to_string(const PfRule &rule);

} // namespace syncwall::config
