// pf.conf rule lines: a tokenizer, a recursive-descent parser with pf's checks and
// defaults, and the canonical printer. The grammar is in pf_rule.hpp.
//
// The tokenizer splits a line into words, quoted strings and punctuation ({ } ( ) , ! = <
// > != <= >= <> ><), each with its byte offset, so that every error can point at its
// token. Words keep '.', ':' and '/' (addresses, prefixes, port ranges, flags S/SA); a
// table is the three tokens < name >, as in pf's grammar. The parser reads the tokens
// once, left to right, in pf.conf's order; the checks that need the whole rule (address
// family, return-rst, a translation's state) and pf's defaults run at the end.
#include "config/pf_rule.hpp"

#include "config/loader.hpp"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <limits>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace syncwall::config {

namespace {

constexpr size_t max_label_length = 63;               // pf's PF_RULE_LABEL_SIZE - 1
constexpr std::string_view flag_letters = "FSRPAUEW"; // letter i is bit i
constexpr uint64_t u32_max = std::numeric_limits<uint32_t>::max();

struct Named {
    std::string_view name;
    uint16_t number;
};

// The first name of a number is the one printed (pfctl prints /etc/protocols' first).
constexpr Named protocol_names[] = {
    {"icmp", 1},  {"igmp", 2},   {"ipencap", 4}, {"tcp", 6},        {"udp", 17},     {"ipv6", 41},
    {"gre", 47},  {"esp", 50},   {"ah", 51},     {"ipv6-icmp", 58}, {"icmp6", 58},   {"ospf", 89},
    {"pim", 103}, {"carp", 112}, {"vrrp", 112},  {"sctp", 132},     {"pfsync", 240},
};

// Port names, for tcp and udp alike; printed as numbers (as pfctl does without -N).
constexpr Named service_names[] = {
    {"ftp-data", 20},       {"ftp", 21},           {"ssh", 22},
    {"telnet", 23},         {"smtp", 25},          {"domain", 53},
    {"bootps", 67},         {"bootpc", 68},        {"tftp", 69},
    {"http", 80},           {"www", 80},           {"kerberos", 88},
    {"pop3", 110},          {"sunrpc", 111},       {"auth", 113},
    {"ntp", 123},           {"netbios-ns", 137},   {"netbios-dgm", 138},
    {"netbios-ssn", 139},   {"imap", 143},         {"snmp", 161},
    {"snmptrap", 162},      {"bgp", 179},          {"ldap", 389},
    {"https", 443},         {"microsoft-ds", 445}, {"submissions", 465},
    {"isakmp", 500},        {"syslog", 514},       {"dhcpv6-client", 546},
    {"dhcpv6-server", 547}, {"submission", 587},   {"ldaps", 636},
    {"domain-s", 853},      {"imaps", 993},        {"pop3s", 995},
    {"openvpn", 1194},      {"radius", 1812},      {"radius-acct", 1813},
    {"nfs", 2049},          {"mysql", 3306},       {"ms-wbt-server", 3389},
    {"ipsec-nat-t", 4500},  {"sip", 5060},         {"postgresql", 5432},
    {"http-alt", 8080},
};

// pf's icmp_type and icmp6_type tables (pfctl_parser.c).
constexpr Named icmp_type_names[] = {
    {"echorep", 0},    {"unreach", 3},    {"squench", 4},    {"redir", 5},     {"althost", 6},
    {"echoreq", 8},    {"routeradv", 9},  {"routersol", 10}, {"timex", 11},    {"paramprob", 12},
    {"timereq", 13},   {"timerep", 14},   {"inforeq", 15},   {"inforep", 16},  {"maskreq", 17},
    {"maskrep", 18},   {"trace", 30},     {"dataconv", 31},  {"mobredir", 32}, {"ipv6-where", 33},
    {"ipv6-here", 34}, {"mobregreq", 35}, {"mobregrep", 36}, {"skip", 39},     {"photuris", 40},
};
constexpr Named icmp6_type_names[] = {
    {"unreach", 1},      {"toobig", 2},       {"timex", 3},        {"paramprob", 4},
    {"echoreq", 128},    {"echorep", 129},    {"groupqry", 130},   {"listqry", 130},
    {"grouprep", 131},   {"listenrep", 131},  {"groupterm", 132},  {"listendone", 132},
    {"routersol", 133},  {"routeradv", 134},  {"neighbrsol", 135}, {"neighbradv", 136},
    {"redir", 137},      {"routrrenum", 138}, {"wrureq", 139},     {"wrurep", 140},
    {"fqdnreq", 139},    {"fqdnrep", 140},    {"niqry", 139},      {"nirep", 140},
    {"mtraceresp", 200}, {"mtrace", 201},
};

struct IcmpCodeName {
    std::string_view name;
    uint8_t type;
    uint8_t code;
};
constexpr IcmpCodeName icmp_code_names[] = {
    {"net-unr", 3, 0},        {"host-unr", 3, 1},       {"proto-unr", 3, 2},
    {"port-unr", 3, 3},       {"needfrag", 3, 4},       {"srcfail", 3, 5},
    {"net-unk", 3, 6},        {"host-unk", 3, 7},       {"isolate", 3, 8},
    {"net-prohib", 3, 9},     {"host-prohib", 3, 10},   {"net-tos", 3, 11},
    {"host-tos", 3, 12},      {"filter-prohib", 3, 13}, {"host-preced", 3, 14},
    {"cutoff-preced", 3, 15}, {"redir-net", 5, 0},      {"redir-host", 5, 1},
    {"redir-tos-net", 5, 2},  {"redir-tos-host", 5, 3}, {"normal-adv", 9, 0},
    {"common-adv", 9, 16},    {"transit", 11, 0},       {"reassemb", 11, 1},
    {"badhead", 12, 0},       {"optmiss", 12, 1},       {"badlen", 12, 2},
    {"unknown-ind", 40, 1},   {"auth-fail", 40, 2},     {"decrypt-fail", 40, 3},
};
constexpr IcmpCodeName icmp6_code_names[] = {
    {"noroute-unr", 1, 0}, {"admin-unr", 1, 1},     {"beyond-unr", 1, 2},    {"addr-unr", 1, 3},
    {"port-unr", 1, 4},    {"transit", 3, 0},       {"reassemb", 3, 1},      {"badhead", 4, 0},
    {"nxthdr", 4, 1},      {"redironlink", 137, 0}, {"redirrouter", 137, 1},
};

constexpr std::string_view timeout_names[state_timeout_count] = {
    "tcp.first",  "tcp.opening", "tcp.established", "tcp.closing",    "tcp.finwait",
    "tcp.closed", "udp.first",   "udp.single",      "udp.multiple",   "icmp.first",
    "icmp.error", "other.first", "other.single",    "other.multiple",
};

// Words of the rule's fixed part: met among the options, they are out of order.
constexpr std::string_view header_words[] = {
    "pass",  "block", "match", "drop",  "return", "return-rst", "return-icmp", "in", "out",  "log",
    "quick", "on",    "inet",  "inet6", "proto",  "all",        "from",        "to", "port",
};

// What may follow a translation's address (pf's pool options), and the methods among them.
constexpr std::string_view pool_method_words[] = {"round-robin", "random", "source-hash"};
constexpr PoolMethod pool_methods[] = {PoolMethod::round_robin, PoolMethod::random,
                                       PoolMethod::source_hash};
constexpr std::string_view unsupported_pool_options[] = {"bitmask", "sticky-address",
                                                         "least-states"};

// The pre-4.7 translation rules, which pf replaced with options of pass and match rules.
constexpr std::pair<std::string_view, std::string_view> old_translation_rules[] = {
    {"nat", "nat-to"},
    {"rdr", "rdr-to"},
    {"binat", "binat-to"},
};

// pf.conf words that syncwall knows and deliberately does not implement.
constexpr std::string_view unsupported_actions[] = {
    "anchor", "antispoof", "scrub", "table", "set", "load", "queue", "altq",
};
constexpr std::string_view unsupported_options[] = {
    "user",          "group",        "tag",        "tagged",      "queue",     "rtable",
    "route-to",      "reply-to",     "dup-to",     "af-to",       "divert-to", "divert-reply",
    "divert-packet", "probability",  "allow-opts", "fragment",    "once",      "set",
    "prio",          "max-pkt-rate", "os",         "received-on", "tos",       "scrub",
    "return-icmp6",  "sloppy",       "pflow",
};
constexpr std::string_view unsupported_state_options[] = {
    "no-sync",       "pflow",          "sloppy",       "source-track",
    "max-src-nodes", "max-src-states", "max-src-conn", "max-src-conn-rate",
    "overload",      "if-bound",       "floating",     "frag",
    "interval",      "adaptive.start", "adaptive.end",
};

template <typename T, size_t N> bool contains(const T (&list)[N], std::string_view word) {
    return std::find(std::begin(list), std::end(list), word) != std::end(list);
}

template <typename T, size_t N> const T *find_name(const T (&table)[N], std::string_view name) {
    for (const auto &entry : table)
        if (entry.name == name) return &entry;
    return nullptr;
}

std::optional<std::string_view> name_of(const Named *table, size_t n, uint16_t number) {
    for (size_t i = 0; i < n; i++)
        if (table[i].number == number) return table[i].name;
    return std::nullopt;
}

// A word as it goes into a message unquoted (words have no spaces or control characters).
std::string shorten(std::string_view word) {
    constexpr size_t max_shown = 64;
    return word.size() > max_shown ? std::string(word.substr(0, max_shown)) + "..."
                                   : std::string(word);
}

std::string join(const std::vector<std::string> &items) {
    std::string out;
    for (const auto &item : items)
        out += (out.empty() ? "" : ", ") + item;
    return out;
}

// Decimal digits only. Values past 2^40 read as 2^40: out of every range checked here.
std::optional<uint64_t> parse_decimal(std::string_view text) {
    constexpr uint64_t cap = uint64_t(1) << 40;
    if (text.empty()) return std::nullopt;
    uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = std::min(cap, value * 10 + uint64_t(c - '0'));
    }
    return value;
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool is_control(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}
bool ends_word(char c) {
    return is_space(c) || is_control(c) ||
           std::string_view("{}(),!<>=\"'#").find(c) != std::string_view::npos;
}

// "2001:db8::x", "10.0.0.256", "10": what can only have been meant as an address.
bool looks_like_address(std::string_view word) {
    return !word.empty() &&
           ((word[0] >= '0' && word[0] <= '9') || std::count(word.begin(), word.end(), ':') >= 2);
}

std::string family_name(uint8_t af) {
    return af == 4 ? "inet" : "inet6";
}

bool has_proto(const std::vector<uint8_t> &protos, uint8_t proto) {
    return std::find(protos.begin(), protos.end(), proto) != protos.end();
}

std::string proto_text(uint8_t proto) {
    auto name = name_of(protocol_names, std::size(protocol_names), proto);
    return name ? std::string(*name) : std::to_string(proto);
}

enum class TokenKind : uint8_t { word, string, punct, end };

struct Token {
    TokenKind kind = TokenKind::end;
    std::string text;  // the word, the string's content (unescaped), or the punctuation
    size_t offset = 0; // bytes from the start of the line
    size_t length = 0; // bytes in the line, quotes included
};

// An address written in the rule, for the address-family checks at the end.
struct Literal {
    uint8_t family;
    size_t offset;
    std::string text;
};

class Parser {
  public:
    Parser(const std::string &text, const SourcePos &pos,
           const std::vector<std::string> &interfaces, const std::vector<std::string> &tables)
        : text_(text), pos_(pos), interfaces_(interfaces), tables_(tables) {}

    PfRule parse() {
        tokenize();
        rule_.text = text_;
        rule_.pos = pos_;
        parse_action();
        if (at_word("in") || at_word("out"))
            rule_.direction = next().text == "in" ? Direction::in : Direction::out;
        parse_log_quick();
        if (at_word("on")) parse_on();
        if (at_word("inet") || at_word("inet6")) rule_.af = next().text == "inet" ? 4 : 6;
        if (at_word("proto")) parse_protos();
        if (at_word("all")) {
            next();
        } else {
            if (at_word("from")) {
                from_hosts_at_ = at_ + 1;
                parse_endpoint(rule_.from, from_literals_);
            }
            if (at_word("to")) parse_endpoint(rule_.to, to_literals_);
        }
        while (peek().kind != TokenKind::end)
            parse_option();
        finish();
        return rule_;
    }

  private:
    // ---- tokens and errors

    void tokenize() {
        const std::string &s = text_;
        size_t i = 0;
        while (i < s.size()) {
            char c = s[i];
            size_t start = i;
            if (is_space(c)) {
                i++;
            } else if (is_control(c)) {
                fail(i, "unexpected control character " + quote_for_message(std::string(1, c)));
            } else if (c == '#') {
                fail(i, "unexpected \"#\": a rule line has no comments (put a YAML comment "
                        "after the rule)");
            } else if (c == '"' || c == '\'') {
                std::string content;
                for (i++;; i++) {
                    if (i >= s.size())
                        fail(start, std::string("unterminated quoted string: no closing ") + c);
                    if (s[i] == c) break;
                    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == c || s[i + 1] == '\\'))
                        i++;
                    else if (is_control(s[i]))
                        fail(i, "unexpected control character " +
                                    quote_for_message(std::string(1, s[i])) +
                                    " in a quoted string");
                    content += s[i];
                }
                i++;
                tokens_.push_back({TokenKind::string, content, start, i - start});
            } else if (std::string_view two = std::string_view(s).substr(i, 2);
                       two == "!=" || two == "<=" || two == ">=" || two == "<>" || two == "><") {
                i += 2;
                tokens_.push_back({TokenKind::punct, std::string(two), start, 2});
            } else if (std::string_view("{}(),!<>=").find(c) != std::string_view::npos) {
                i++;
                tokens_.push_back({TokenKind::punct, std::string(1, c), start, 1});
            } else {
                while (i < s.size() && !ends_word(s[i]))
                    i++;
                tokens_.push_back({TokenKind::word, s.substr(start, i - start), start, i - start});
            }
        }
        tokens_.push_back({TokenKind::end, "", s.size(), 0});
    }

    const Token &peek(size_t ahead = 0) const {
        return tokens_[std::min(at_ + ahead, tokens_.size() - 1)];
    }
    const Token &next() {
        const Token &token = peek();
        if (at_ + 1 < tokens_.size()) at_++;
        return token;
    }
    static bool is_word(const Token &token, std::string_view word) {
        return token.kind == TokenKind::word && token.text == word;
    }
    static bool is_punct(const Token &token, std::string_view punct) {
        return token.kind == TokenKind::punct && token.text == punct;
    }
    bool at_word(std::string_view word) const { return is_word(peek(), word); }
    bool at_punct(std::string_view punct) const { return is_punct(peek(), punct); }

    std::string shown(const Token &token) const {
        if (token.kind == TokenKind::end) return "end of rule";
        return quote_for_message(std::string_view(text_).substr(token.offset, token.length));
    }

    [[noreturn]] void fail(size_t offset, const std::string &message) const {
        SourcePos at = pos_;
        at.column += int(std::min<size_t>(offset, size_t(std::numeric_limits<int>::max() / 2)));
        throw ConfigError(at, "rule: " + message);
    }
    [[noreturn]] void fail(const Token &token, const std::string &message) const {
        fail(token.offset, message);
    }
    [[noreturn]] void expected(const std::string &what, const Token &token) const {
        fail(token, "expected " + what + ", got " + shown(token));
    }

    bool is_interface(std::string_view name) const {
        return std::find(interfaces_.begin(), interfaces_.end(), name) != interfaces_.end();
    }
    bool is_table(std::string_view name) const {
        return std::find(tables_.begin(), tables_.end(), name) != tables_.end();
    }

    // `{ item, item item }`, commas optional; at "{". `item(context)` parses one item and
    // names `context` ("after ...", "in the list") in its messages.
    template <typename ParseItem> void parse_list(ParseItem item) {
        const Token &open = next();
        bool closed = false;
        for (size_t i = at_; i < tokens_.size() && !closed; i++)
            closed = is_punct(tokens_[i], "}");
        if (!closed) fail(open, "unterminated list: \"{\" has no matching \"}\"");
        if (at_punct("}")) fail(peek(), "empty list");
        item("after \"{\"");
        while (!at_punct("}")) {
            if (at_punct(",")) next();
            item("in the list");
        }
        next();
    }

    // ---- the fixed part

    void parse_action() {
        const Token &token = next();
        if (is_word(token, "pass") || is_word(token, "match")) {
            rule_.action = token.text == "pass" ? Action::pass : Action::match;
            const Token &policy = peek();
            if (is_word(policy, "drop") || is_word(policy, "return") ||
                is_word(policy, "return-rst") || is_word(policy, "return-icmp"))
                fail(policy, quote_for_message(policy.text) + " applies only to block rules");
        } else if (is_word(token, "block")) {
            rule_.action = Action::block;
            const Token &policy = peek();
            if (is_word(policy, "drop")) {
                rule_.block_policy = BlockPolicy::drop;
            } else if (is_word(policy, "return")) {
                rule_.block_policy = BlockPolicy::return_;
            } else if (is_word(policy, "return-rst")) {
                rule_.block_policy = BlockPolicy::return_rst;
                return_rst_ = &policy;
            } else if (is_word(policy, "return-icmp")) {
                rule_.block_policy = BlockPolicy::return_icmp;
            } else if (is_word(policy, "return-icmp6")) {
                fail(policy, "\"return-icmp6\" is not supported (\"return-icmp\" answers IPv6 "
                             "with ICMPv6)");
            } else {
                return;
            }
            next();
            if (at_punct("("))
                fail(peek(), "options of " + policy.text + " (ttl, icmp code) are not supported");
        } else if (token.kind == TokenKind::word && contains(unsupported_actions, token.text)) {
            fail(token, quote_for_message(token.text) +
                            " rules are not supported: a rule starts with "
                            "\"pass\", \"block\" or \"match\"");
        } else if (auto old = std::find_if(
                       std::begin(old_translation_rules), std::end(old_translation_rules),
                       [&](const auto &entry) { return is_word(token, entry.first); });
                   old != std::end(old_translation_rules)) {
            fail(token, quote_for_message(token.text) +
                            " rules are not supported (pf replaced them in OpenBSD 4.7): use " +
                            quote_for_message(old->second) + " on a pass or match rule");
        } else {
            expected("\"pass\", \"block\" or \"match\"", token);
        }
    }

    void parse_log_quick() {
        bool log = false, quick = false;
        for (;;) {
            const Token &token = peek();
            bool is_log = is_word(token, "log");
            if (!is_log && !is_word(token, "quick")) break;
            bool &seen = is_log ? log : quick;
            if (seen) fail(token, "duplicate " + quote_for_message(token.text));
            seen = true;
            next();
            if (is_log && at_punct("("))
                fail(peek(), "log options (all, matches, to, user) are not supported: write "
                             "\"log\" alone");
        }
        rule_.log = log;
        rule_.quick = quick;
    }

    void parse_on() {
        const Token &on = next();
        bool negated = at_punct("!");
        if (negated) next();
        const Token &name = peek();
        if (is_punct(name, "{"))
            fail(name, "interface lists are not supported: write one rule per interface");
        if (name.kind != TokenKind::word)
            expected("an interface name after " + quote_for_message(negated ? "!" : on.text), name);
        if (!is_interface(name.text))
            fail(name, "unknown interface " + quote_for_message(name.text) +
                           " (interfaces: " + join(interfaces_) + ")");
        next();
        rule_.iface = name.text;
        rule_.iface_negated = negated;
    }

    void parse_protos() {
        next();
        auto item = [&](const std::string &context) {
            uint8_t proto = parse_proto(context);
            if (!has_proto(rule_.protos, proto)) rule_.protos.push_back(proto);
        };
        if (at_punct("{"))
            parse_list(item);
        else
            item("after \"proto\"");
    }

    uint8_t parse_proto(const std::string &context) {
        const Token &token = peek();
        if (token.kind != TokenKind::word) expected("a protocol name or number " + context, token);
        next();
        if (auto number = parse_decimal(token.text)) {
            if (*number > 255)
                fail(token, "protocol " + shorten(token.text) + " out of range (1..255)");
            if (*number == 0)
                fail(token, "protocol 0 is not a protocol (leave \"proto\" out to match any)");
            return uint8_t(*number);
        }
        if (const Named *named = find_name(protocol_names, token.text))
            return uint8_t(named->number);
        fail(token, "unknown protocol " + quote_for_message(token.text) +
                        " (use a name like tcp, udp, "
                        "icmp, icmp6 or a number)");
    }

    // ---- from / to

    void parse_endpoint(Endpoint &endpoint, std::vector<Literal> &literals) {
        const Token &keyword = next();
        if (!at_word("port")) parse_hosts(endpoint.hosts, literals, keyword);
        if (!at_word("port")) return;
        const Token &port = next();
        if (rule_.protos.empty())
            fail(port, "port only applies to tcp/udp: add \"proto tcp\" or \"proto udp\"");
        for (uint8_t proto : rule_.protos)
            if (proto != ipproto_tcp && proto != ipproto_udp)
                fail(port, "port only applies to tcp/udp, not " + proto_text(proto));
        endpoint.ports.clear();
        auto item = [&](const std::string &context) {
            endpoint.ports.push_back(parse_port_item(context));
        };
        if (at_punct("{"))
            parse_list(item);
        else
            item("after \"port\"");
    }

    void parse_hosts(std::vector<HostSpec> &hosts, std::vector<Literal> &literals,
                     const Token &keyword) {
        hosts.clear();
        auto item = [&](const std::string &context) {
            hosts.push_back(parse_host(literals, context));
        };
        if (at_punct("{"))
            parse_list(item);
        else
            item("after " + quote_for_message(keyword.text));
    }

    HostSpec parse_host(std::vector<Literal> &literals, const std::string &context) {
        const std::string what = "an address, <table>, interface, self or any";
        HostSpec host;
        const Token &first = peek();
        if (is_punct(first, "!")) {
            next();
            host.negated = true;
        }
        const Token &token = peek();
        if (is_punct(token, "{"))
            fail(token, host.negated ? "\"!\" cannot negate a list: put it before each item "
                                       "inside the list"
                                     : "lists cannot be nested");
        if (is_punct(token, "<")) return parse_table(host);
        if (is_punct(token, "("))
            fail(token, "dynamic interface addresses like (lan) are not supported: use lan or "
                        "lan:network");
        if (token.kind != TokenKind::word)
            expected(what + " " + (host.negated ? "after \"!\"" : context), token);
        next();
        const std::string &word = token.text;
        if (word == "any") {
            if (host.negated) fail(first, "\"! any\" matches nothing");
            return host;
        }
        if (word == "self") {
            host.kind = HostSpec::Kind::self;
            return host;
        }
        if (word == "no-route" || word == "urpf-failed" || word == "route")
            fail(token, quote_for_message(word) + " is not supported");
        if (auto prefix = parse_ip_prefix(word)) {
            host.kind = HostSpec::Kind::prefix;
            host.prefix = network_of(*prefix);
            uint8_t family = prefix->addr.family;
            if (rule_.af != 0 && family != rule_.af)
                fail(token, "address family mismatch: " + shorten(word) + " is " +
                                (family == 4 ? "IPv4" : "IPv6") + ", but the rule is " +
                                family_name(rule_.af));
            literals.push_back({family, token.offset, word});
            return host;
        }
        size_t colon = word.find(':');
        if (colon != std::string::npos && is_interface(word.substr(0, colon))) {
            std::string name = word.substr(0, colon), modifier = word.substr(colon);
            if (modifier != ":network") {
                bool known = modifier == ":broadcast" || modifier == ":peer" || modifier == ":0";
                fail(token.offset + colon,
                     (known ? "interface modifier " + quote_for_message(modifier) +
                                  " is not supported"
                            : "unknown interface modifier " + quote_for_message(modifier)) +
                         " (use " + name + ":network or " + name + ")");
            }
            host.kind = HostSpec::Kind::iface_network;
            host.name = name;
            return host;
        }
        if (is_interface(word)) {
            host.kind = HostSpec::Kind::iface_address;
            host.name = word;
            return host;
        }
        if (looks_like_address(word)) fail(token, "bad address " + quote_for_message(word));
        expected(what + " " + (host.negated ? "after \"!\"" : context), token);
    }

    HostSpec parse_table(HostSpec host) {
        const Token &open = next();
        const Token &name = peek();
        if (name.kind != TokenKind::word) expected("a table name after \"<\"", name);
        next();
        if (!at_punct(">")) expected("\">\" after the table name", peek());
        next();
        if (!is_table(name.text))
            fail(open,
                 "unknown table <" + shorten(name.text) + "> (" +
                     (tables_.empty() ? "no tables are declared" : "tables: " + join(tables_)) +
                     ")");
        host.kind = HostSpec::Kind::table;
        host.name = name.text;
        return host;
    }

    PortSpec parse_port_item(const std::string &context) {
        static constexpr std::pair<std::string_view, PortOp> unary[] = {
            {"=", PortOp::eq},  {"!=", PortOp::ne}, {"<", PortOp::lt},
            {"<=", PortOp::le}, {">", PortOp::gt},  {">=", PortOp::ge},
        };
        PortSpec spec;
        const Token &token = peek();
        for (const auto &[text, op] : unary) {
            if (!is_punct(token, text)) continue;
            next();
            const Token &value = peek();
            if (value.kind != TokenKind::word)
                expected("a port number or name after " + quote_for_message(text), value);
            next();
            if (value.text.find(':') != std::string::npos)
                fail(value, "a port range takes no operator: write " + shorten(value.text));
            spec.op = op;
            spec.a = port_value(value.text, value.offset);
            return spec;
        }
        if (token.kind != TokenKind::word) expected("a port number or name " + context, token);
        next();
        size_t colon = token.text.find(':');
        if (colon != std::string::npos) {
            if (colon == 0 || colon + 1 == token.text.size())
                fail(token,
                     "expected a port range like 1000:2000, got " + quote_for_message(token.text));
            spec.op = PortOp::range;
            spec.a = port_value(token.text.substr(0, colon), token.offset);
            spec.b = port_value(token.text.substr(colon + 1), token.offset + colon + 1);
            if (spec.a > spec.b) fail(token, "port range " + shorten(token.text) + " is backwards");
            return spec;
        }
        spec.a = port_value(token.text, token.offset);
        if (at_punct("><") || at_punct("<>")) {
            const Token &op = next();
            spec.op = op.text == "><" ? PortOp::between : PortOp::outside;
            const Token &value = peek();
            if (value.kind != TokenKind::word)
                expected("a port number or name after " + quote_for_message(op.text), value);
            next();
            spec.b = port_value(value.text, value.offset);
            if (spec.a > spec.b)
                fail(token, "port range " + token.text + " " + op.text + " " + shorten(value.text) +
                                " is backwards");
        }
        return spec;
    }

    uint16_t port_value(const std::string &text, size_t offset) const {
        if (auto number = parse_decimal(text)) {
            if (*number > 65535) fail(offset, "port " + shorten(text) + " out of range (0..65535)");
            return uint16_t(*number);
        }
        if (const Named *named = find_name(service_names, text)) return named->number;
        fail(offset, "unknown port name " + quote_for_message(text) + " (use a number)");
    }

    // ---- options

    void parse_option() {
        const Token &token = peek();
        if (token.kind != TokenKind::word)
            expected("an option (flags, icmp-type, icmp6-type, keep state, no state, label, "
                     "nat-to, rdr-to, binat-to) or the end of the rule",
                     token);
        const std::string &word = token.text;
        if (word == "flags") {
            parse_flags();
        } else if (word == "icmp-type" || word == "icmp6-type") {
            parse_icmp();
        } else if (word == "keep" || word == "no" || word == "modulate" || word == "synproxy") {
            parse_state();
        } else if (word == "label") {
            parse_label();
        } else if (word == "nat-to" || word == "rdr-to" || word == "binat-to") {
            parse_translation();
        } else if (word == "static-port" || contains(pool_method_words, word)) {
            fail(token, quote_for_message(word) +
                            " is out of place: it goes right after the address (and port) "
                            "of nat-to or rdr-to");
        } else if (contains(header_words, word)) {
            fail(token, quote_for_message(word) +
                            " is out of place (the order is: pass, block or match, in or "
                            "out, log, quick, on, inet or inet6, proto, all or "
                            "from ... to ..., then the options)");
        } else if (contains(unsupported_options, word)) {
            fail(token, "pf option " + quote_for_message(word) + " is not supported");
        } else if (is_interface(word)) {
            fail(token, "unexpected interface name " + quote_for_message(word) + " (\"on " + word +
                            "\" goes right after in/out, log and quick)");
        } else {
            fail(token, "unknown keyword " + quote_for_message(word));
        }
    }

    void parse_flags() {
        const Token &keyword = next();
        if (rule_.flags_explicit) fail(keyword, "duplicate \"flags\"");
        const std::string what = "flags like S/SA, /SA or any after \"flags\"";
        const Token &token = peek();
        if (token.kind != TokenKind::word) expected(what, token);
        next();
        rule_.flags_explicit = true;
        if (token.text == "any") return;
        size_t slash = token.text.find('/');
        if (slash == std::string::npos || slash + 1 == token.text.size()) expected(what, token);
        rule_.flags = flag_bits(std::string_view(token.text).substr(0, slash), token.offset);
        rule_.flags_mask =
            flag_bits(std::string_view(token.text).substr(slash + 1), token.offset + slash + 1);
        // pf: flags on a rule that cannot match TCP are an error (flags any is not).
        if (!rule_.protos.empty() && !has_proto(rule_.protos, ipproto_tcp))
            fail(keyword, "flags only apply to tcp");
        if ((rule_.flags & rule_.flags_mask) != rule_.flags)
            fail(token, "flags " + shorten(token.text) +
                            " never match: every flag before \"/\" "
                            "must also be after it");
    }

    uint8_t flag_bits(std::string_view letters, size_t offset) const {
        uint8_t bits = 0;
        for (size_t i = 0; i < letters.size(); i++) {
            size_t bit = flag_letters.find(letters[i]);
            if (bit == std::string_view::npos)
                fail(offset + i, "unknown TCP flag " + quote_for_message(letters.substr(i, 1)) +
                                     " (flags are F S R P A U E W)");
            bits = uint8_t(bits | 1u << bit);
        }
        return bits;
    }

    void parse_icmp() {
        const Token &keyword = next();
        bool v6 = keyword.text == "icmp6-type";
        if (icmp_keyword_)
            fail(keyword, icmp_keyword_->text == keyword.text
                              ? "duplicate " + quote_for_message(keyword.text)
                              : quote_for_message(keyword.text) + " cannot be combined with " +
                                    quote_for_message(icmp_keyword_->text));
        uint8_t proto = v6 ? ipproto_icmpv6 : ipproto_icmp;
        if (rule_.protos != std::vector<uint8_t>{proto})
            fail(keyword, quote_for_message(keyword.text) + " requires \"proto " +
                              (v6 ? "icmp6" : "icmp") + "\"");
        uint8_t af = v6 ? 6 : 4;
        if (rule_.af != 0 && rule_.af != af)
            fail(keyword, quote_for_message(keyword.text) + " applies to " + family_name(af) +
                              ", but the rule is " + family_name(rule_.af));
        icmp_keyword_ = &keyword;
        auto item = [&](const std::string &context) {
            rule_.icmp_types.push_back(parse_icmp_item(v6, context));
        };
        if (at_punct("{"))
            parse_list(item);
        else
            item("after " + quote_for_message(keyword.text));
    }

    IcmpSpec parse_icmp_item(bool v6, const std::string &context) {
        const std::string kind = v6 ? "icmp6-type" : "icmp-type";
        IcmpSpec spec;
        const Token &type = peek();
        if (type.kind != TokenKind::word) expected("an ICMP type name or number " + context, type);
        next();
        if (auto number = parse_decimal(type.text)) {
            if (*number > 255)
                fail(type, kind + " " + shorten(type.text) + " out of range (0..255)");
            spec.type = uint8_t(*number);
        } else if (const Named *named = v6 ? find_name(icmp6_type_names, type.text)
                                           : find_name(icmp_type_names, type.text)) {
            spec.type = uint8_t(named->number);
        } else {
            fail(type, "unknown " + kind + " " + quote_for_message(type.text));
        }
        if (!at_word("code")) return spec;
        next();
        const Token &code = peek();
        if (code.kind != TokenKind::word)
            expected("an ICMP code name or number after \"code\"", code);
        next();
        if (auto number = parse_decimal(code.text)) {
            if (*number > 255)
                fail(code, "icmp code " + shorten(code.text) + " out of range (0..255)");
            spec.code = int16_t(*number);
            return spec;
        }
        const IcmpCodeName *named =
            v6 ? find_name(icmp6_code_names, code.text) : find_name(icmp_code_names, code.text);
        if (!named) fail(code, "unknown icmp code " + quote_for_message(code.text));
        if (named->type != spec.type)
            fail(code, "code " + quote_for_message(code.text) + " belongs to " + kind + " " +
                           icmp_type_text(named->type, v6) + ", not " +
                           icmp_type_text(spec.type, v6));
        spec.code = named->code;
        return spec;
    }

    static std::string icmp_type_text(uint8_t type, bool v6) {
        auto name = v6 ? name_of(icmp6_type_names, std::size(icmp6_type_names), type)
                       : name_of(icmp_type_names, std::size(icmp_type_names), type);
        return name ? std::string(*name) : std::to_string(type);
    }

    void parse_state() {
        const Token &keyword = next();
        if (!at_word("state"))
            expected("\"state\" after " + quote_for_message(keyword.text), peek());
        next();
        if (rule_.action == Action::match)
            fail(keyword, quote_for_message(keyword.text + " state") +
                              " cannot be used on match rules: they never keep state");
        if (keyword.text == "modulate" || keyword.text == "synproxy")
            fail(keyword, quote_for_message(keyword.text + " state") +
                              " is not supported (use \"keep "
                              "state\")");
        if (state_given_)
            fail(keyword, quote_for_message(keyword.text + " state") +
                              ": the rule's state is already given");
        state_given_ = true;
        if (keyword.text == "no") {
            no_state_ = &keyword;
            rule_.state.keep_state = false;
            return;
        }
        if (rule_.action != Action::pass)
            fail(keyword, "\"keep state\" applies only to pass rules");
        rule_.state.keep_state = true;
        if (at_punct("(")) parse_state_options();
    }

    void parse_state_options() {
        const Token &open = next();
        bool closed = false;
        for (size_t i = at_; i < tokens_.size() && !closed; i++)
            closed = is_punct(tokens_[i], ")");
        if (!closed) fail(open, "unterminated state options: \"(\" has no matching \")\"");
        parse_state_option("after \"(\"");
        while (!at_punct(")")) {
            if (at_punct(",")) next();
            parse_state_option("in the state options");
        }
        next();
    }

    void parse_state_option(const std::string &context) {
        const Token &name = peek();
        if (name.kind != TokenKind::word)
            expected("a state option (max or a timeout like tcp.established) " + context, name);
        next();
        uint32_t *slot = nullptr;
        if (name.text == "max") {
            slot = &rule_.state.max_states;
        } else if (auto it =
                       std::find(std::begin(timeout_names), std::end(timeout_names), name.text);
                   it != std::end(timeout_names)) {
            slot = &rule_.state.timeouts[size_t(it - std::begin(timeout_names))];
        } else if (contains(unsupported_state_options, name.text)) {
            fail(name, "state option " + quote_for_message(name.text) + " is not supported");
        } else {
            fail(name, "unknown state option " + quote_for_message(name.text) +
                           " (max, tcp.first, tcp.opening, tcp.established, tcp.closing, "
                           "tcp.finwait, tcp.closed, udp.first, udp.single, udp.multiple, "
                           "icmp.first, icmp.error, other.first, other.single, "
                           "other.multiple)");
        }
        if (*slot != 0) fail(name, "duplicate state option " + quote_for_message(name.text));
        const Token &value = peek();
        auto number = value.kind == TokenKind::word ? parse_decimal(value.text) : std::nullopt;
        if (!number) expected("a number after " + quote_for_message(name.text), value);
        next();
        if (*number < 1 || *number > u32_max)
            fail(value, name.text + " " + shorten(value.text) + " out of range (1..4294967295)");
        *slot = uint32_t(*number);
    }

    void parse_label() {
        const Token &keyword = next();
        if (!rule_.label.empty()) fail(keyword, "duplicate \"label\"");
        const Token &token = peek();
        if (token.kind != TokenKind::string && token.kind != TokenKind::word)
            expected("a quoted label after \"label\"", token);
        next();
        if (token.text.empty()) fail(token, "empty label");
        if (token.text.size() > max_label_length)
            fail(token, "label longer than " + std::to_string(max_label_length) + " bytes");
        rule_.label = token.text;
    }

    // ---- translations: nat-to, rdr-to, binat-to

    void parse_translation() {
        const Token &keyword = next();
        const std::string &word = keyword.text;
        const bool rdr = word == "rdr-to", binat = word == "binat-to";
        // pf: each at most once; nat-to and binat-to share the rule's nat.
        const Token *&slot = rdr ? rdr_keyword_ : nat_keyword_;
        if (slot)
            fail(keyword, slot->text == word
                              ? "duplicate " + quote_for_message(word)
                              : quote_for_message(word) + " cannot be combined with " +
                                    quote_for_message(slot->text));
        const Token *other = binat ? rdr_keyword_
                             : rdr && nat_keyword_ && nat_keyword_->text == "binat-to"
                                 ? nat_keyword_
                                 : nullptr;
        if (other)
            fail(keyword, quote_for_message(word) + " cannot be combined with " +
                              quote_for_message(other->text));
        slot = &keyword;
        if (rule_.action == Action::block)
            fail(keyword, quote_for_message(word) + " applies only to pass and match rules");
        if (binat) {
            parse_binat(keyword);
            return;
        }
        if (!rdr && rule_.direction != Direction::out)
            fail(keyword, "nat-to can only be used on outbound rules (\"out\")");
        if (rdr && rule_.direction != Direction::in)
            fail(keyword, "rdr-to can only be used on inbound rules (\"in\")");

        Translation &translation = rdr ? rule_.rdr : rule_.nat;
        translation.set = true;
        auto item = [&](const std::string &context) {
            translation.pool.push_back(parse_pool_item(context));
        };
        if (at_punct("{"))
            parse_list(item);
        else
            item("after " + quote_for_message(word));
        const Token *port = at_word("port") ? &peek() : nullptr;
        if (port) parse_translation_port(translation, rdr);
        parse_pool_options(translation, keyword, port);
    }

    // One entry of a nat-to or rdr-to pool: ADDRESS[/LEN], (IFNAME), IFNAME or <TABLE>.
    HostSpec parse_pool_item(const std::string &context) {
        const std::string what = "an address, (interface) or <table>";
        HostSpec host;
        const Token &token = peek();
        if (is_punct(token, "!")) fail(token, "a translation address cannot be negated");
        if (is_punct(token, "{")) fail(token, "lists cannot be nested");
        if (is_punct(token, "<")) return parse_table(host);
        if (is_punct(token, "(")) {
            next();
            const Token &name = peek();
            if (name.kind != TokenKind::word) expected("an interface name after \"(\"", name);
            if (!is_interface(name.text))
                fail(name, "unknown interface " + quote_for_message(name.text) +
                               " (interfaces: " + join(interfaces_) + ")");
            next();
            if (!at_punct(")")) expected("\")\" after the interface name", peek());
            next();
            host.kind = HostSpec::Kind::iface_address;
            host.name = name.text;
            host.dynamic = true;
            return host;
        }
        if (token.kind != TokenKind::word) expected(what + " " + context, token);
        const std::string &word = token.text;
        if (word == "any" || word == "self")
            fail(token, quote_for_message(word) +
                            " cannot be a translation address (use an address, (interface) or "
                            "<table>)");
        if (auto prefix = parse_ip_prefix(word)) {
            next();
            host.kind = HostSpec::Kind::prefix;
            host.prefix = network_of(*prefix);
            pool_literals_.push_back({prefix->addr.family, token.offset, word});
            return host;
        }
        size_t colon = word.find(':');
        if (colon != std::string::npos && is_interface(word.substr(0, colon))) {
            std::string name = word.substr(0, colon);
            fail(token, quote_for_message(word) + " cannot be a translation address (use (" + name +
                            ") or " + name + ")");
        }
        if (is_interface(word)) {
            next();
            host.kind = HostSpec::Kind::iface_address;
            host.name = word;
            return host;
        }
        if (looks_like_address(word)) fail(token, "bad address " + quote_for_message(word));
        expected(what + " " + context, token);
    }

    // `port N` (nat-to, rdr-to) or `port N:M` (nat-to); at "port".
    void parse_translation_port(Translation &translation, bool rdr) {
        const Token &keyword = next();
        if (rdr) {
            if (rule_.protos.empty())
                fail(keyword, "rdr-to's port only applies to tcp/udp: add \"proto tcp\" or "
                              "\"proto udp\"");
            for (uint8_t proto : rule_.protos)
                if (proto != ipproto_tcp && proto != ipproto_udp)
                    fail(keyword,
                         "rdr-to's port only applies to tcp/udp, not " + proto_text(proto));
        }
        const Token &value = peek();
        if (value.kind != TokenKind::word) expected("a port number or name after \"port\"", value);
        next();
        uint16_t lo = 0, hi = 0;
        size_t colon = value.text.find(':');
        if (colon != std::string::npos) {
            if (rdr) fail(value, "rdr-to takes one port, not a range");
            if (colon == 0 || colon + 1 == value.text.size())
                fail(value, "expected a port range like 50001:65535, got " +
                                quote_for_message(value.text));
            lo = port_value(value.text.substr(0, colon), value.offset);
            hi = port_value(value.text.substr(colon + 1), value.offset + colon + 1);
            if (lo > hi) fail(value, "port range " + shorten(value.text) + " is backwards");
        } else {
            lo = hi = port_value(value.text, value.offset);
        }
        if (lo == 0) fail(value, "port 0 cannot be a translation port (1..65535)");
        // pf's default range, written out, is the default: keep one form of the rule.
        if (!rdr && lo == 50001 && hi == 65535) lo = hi = 0;
        translation.port_lo = lo;
        translation.port_hi = hi;
    }

    // static-port and the pool method, in either order, each at most once.
    void parse_pool_options(Translation &translation, const Token &keyword, const Token *port) {
        const Token *static_port = nullptr, *method = nullptr;
        for (;;) {
            const Token &token = peek();
            if (token.kind != TokenKind::word) return;
            const std::string &word = token.text;
            if (word == "static-port") {
                if (keyword.text != "nat-to") fail(token, "\"static-port\" applies only to nat-to");
                if (static_port) fail(token, "duplicate \"static-port\"");
                if (port)
                    fail(token, "\"static-port\" cannot be combined with \"port\" (it keeps "
                                "the source port)");
                static_port = &token;
                translation.static_port = true;
            } else if (auto it = std::find(std::begin(pool_method_words),
                                           std::end(pool_method_words), word);
                       it != std::end(pool_method_words)) {
                if (method)
                    fail(token, method->text == word
                                    ? "duplicate " + quote_for_message(word)
                                    : quote_for_message(word) + " cannot be combined with " +
                                          quote_for_message(method->text));
                method = &token;
                translation.method = pool_methods[it - std::begin(pool_method_words)];
                next();
                const Token &key = peek();
                if (word == "source-hash" &&
                    (key.kind == TokenKind::string ||
                     (key.kind == TokenKind::word && key.text.rfind("0x", 0) == 0)))
                    fail(key, "source-hash keys are not supported (write \"source-hash\" "
                              "alone)");
                continue;
            } else if (contains(unsupported_pool_options, word)) {
                fail(token, "pool option " + quote_for_message(word) + " is not supported");
            } else if (word == "port") {
                fail(token, port ? "duplicate \"port\""
                                 : "\"port\" goes right after the address of " + keyword.text);
            } else {
                return;
            }
            next();
        }
    }

    // `binat-to ADDRESS` on a rule `on IFNAME from ADDRESS`, no direction; at the address.
    void parse_binat(const Token &keyword) {
        if (rule_.direction != Direction::both)
            fail(keyword, std::string("binat-to translates both directions: leave out \"") +
                              (rule_.direction == Direction::in ? "in" : "out") + "\"");
        if (rule_.iface.empty())
            fail(keyword, "binat-to needs the interface it translates on: add \"on IFNAME\"");
        if (rule_.iface_negated)
            fail(keyword, "binat-to cannot be used on \"on ! " + rule_.iface +
                              "\": name the interface it translates on");
        const Token *from = from_hosts_at_ < tokens_.size() ? &tokens_[from_hosts_at_] : nullptr;
        if (!from || is_word(*from, "port"))
            fail(keyword, "binat-to needs the address it translates: add \"from ADDRESS\"");
        const std::vector<HostSpec> &sources = rule_.from.hosts;
        if (sources.size() != 1) fail(*from, "binat-to needs one source address, not a list");
        if (sources[0].negated) fail(*from, "binat-to cannot translate a negated source");
        if (sources[0].kind != HostSpec::Kind::prefix)
            fail(*from, "binat-to needs a source address or prefix (not a table, interface, "
                        "self or any)");

        const Token &token = peek();
        if (is_punct(token, "{")) fail(token, "binat-to takes one address, not a list");
        if (is_punct(token, "<")) fail(token, "binat-to takes an address, not a table");
        if (is_punct(token, "(")) fail(token, "binat-to takes an address, not an interface");
        if (is_punct(token, "!")) fail(token, "a translation address cannot be negated");
        const std::string what = "an address or prefix after \"binat-to\"";
        if (token.kind != TokenKind::word) expected(what, token);
        auto prefix = parse_ip_prefix(token.text);
        if (!prefix) {
            size_t colon = token.text.find(':');
            if (is_interface(token.text) ||
                (colon != std::string::npos && is_interface(token.text.substr(0, colon))))
                fail(token, "binat-to takes an address, not an interface");
            if (looks_like_address(token.text))
                fail(token, "bad address " + quote_for_message(token.text));
            expected(what, token);
        }
        next();
        const IpPrefix &source = sources[0].prefix;
        if (prefix->addr.family == source.addr.family && prefix->length != source.length)
            fail(token, "binat-to " + shorten(token.text) + " is a /" +
                            std::to_string(prefix->length) + " but the source " +
                            host_prefix_text(source) + " is a /" + std::to_string(source.length) +
                            ": they must be as long");
        pool_literals_.push_back({prefix->addr.family, token.offset, token.text});
        HostSpec host;
        host.kind = HostSpec::Kind::prefix;
        host.prefix = network_of(*prefix);
        rule_.binat = true;
        rule_.nat.set = true;
        rule_.nat.pool = {host};

        const Token &after = peek();
        if (after.kind == TokenKind::word && (after.text == "port" || after.text == "static-port" ||
                                              contains(pool_method_words, after.text) ||
                                              contains(unsupported_pool_options, after.text)))
            fail(after, quote_for_message(after.text) +
                            " cannot be used with binat-to (it maps one address, or prefix, "
                            "to another)");
    }

    static std::string host_prefix_text(const IpPrefix &prefix) {
        bool full = prefix.length == (prefix.addr.is_v4() ? 32 : 128);
        return full ? prefix.addr.to_string() : prefix.to_string();
    }

    // ---- whole-rule checks and pf's defaults

    void finish() {
        if (return_rst_ && rule_.protos != std::vector<uint8_t>{ipproto_tcp})
            fail(*return_rst_, "\"return-rst\" applies only to \"proto tcp\" rules");
        // pfctl: "nat-to and rdr-to require keep state" (binat-to too).
        if (no_state_ && (nat_keyword_ || rdr_keyword_))
            fail(*no_state_,
                 "\"no state\" cannot be used with " +
                     quote_for_message((nat_keyword_ ? nat_keyword_ : rdr_keyword_)->text) +
                     ": a translation needs the state");

        // Address family: written, implied by icmp-type, or that of every address on one
        // side (pf's decide_address_family); then every address must agree with it.
        std::string reason = rule_.af != 0 ? "the rule is " + family_name(rule_.af) : "";
        if (rule_.af == 0 && icmp_keyword_) {
            rule_.af = rule_.protos[0] == ipproto_icmpv6 ? 6 : 4;
            reason = icmp_keyword_->text + " is for " + family_name(rule_.af);
        }
        if (rule_.af == 0) {
            if (uint8_t af = uniform_family(rule_.from, from_literals_)) {
                rule_.af = af;
                reason = "the source addresses are " + std::string(af == 4 ? "IPv4" : "IPv6");
            } else if (uint8_t af = uniform_family(rule_.to, to_literals_)) {
                rule_.af = af;
                reason = "the destination addresses are " + std::string(af == 4 ? "IPv4" : "IPv6");
            } else if (!pool_literals_.empty()) {
                // A translation address of one family: only that family can be translated.
                rule_.af = pool_literals_.front().family;
                reason =
                    "the translation addresses are " + std::string(rule_.af == 4 ? "IPv4" : "IPv6");
            }
        }
        if (rule_.af != 0)
            for (const auto *literals : {&from_literals_, &to_literals_, &pool_literals_})
                for (const auto &literal : *literals)
                    if (literal.family != rule_.af)
                        fail(literal.offset, "address family mismatch: " + shorten(literal.text) +
                                                 " is " + (literal.family == 4 ? "IPv4" : "IPv6") +
                                                 ", but " + reason);

        if (rule_.action == Action::pass && !state_given_) rule_.state.keep_state = true;
        bool tcp_capable = rule_.protos.empty() || has_proto(rule_.protos, ipproto_tcp);
        if (rule_.action == Action::pass && rule_.state.keep_state && !rule_.flags_explicit &&
            tcp_capable) {
            rule_.flags = tcp_flags::syn;
            rule_.flags_mask = tcp_flags::syn | tcp_flags::ack;
        }
    }

    // 4 or 6 when every host of the list is an address of that family, else 0.
    static uint8_t uniform_family(const Endpoint &endpoint, const std::vector<Literal> &literals) {
        if (literals.size() != endpoint.hosts.size()) return 0; // something symbolic
        uint8_t af = literals.front().family;
        for (const auto &literal : literals)
            if (literal.family != af) return 0;
        return af;
    }

    const std::string &text_;
    const SourcePos &pos_;
    const std::vector<std::string> &interfaces_;
    const std::vector<std::string> &tables_;
    std::vector<Token> tokens_;
    size_t at_ = 0;
    PfRule rule_;
    std::vector<Literal> from_literals_, to_literals_;
    std::vector<Literal> pool_literals_; // nat-to, rdr-to and binat-to addresses
    size_t from_hosts_at_ = std::numeric_limits<size_t>::max(); // token after "from"
    const Token *return_rst_ = nullptr;
    const Token *no_state_ = nullptr;
    const Token *nat_keyword_ = nullptr; // nat-to or binat-to
    const Token *rdr_keyword_ = nullptr;
    const Token *icmp_keyword_ = nullptr;
    bool state_given_ = false;
};

// ---- printing

std::string host_text(const HostSpec &host) {
    std::string out = host.negated ? "! " : "";
    switch (host.kind) {
    case HostSpec::Kind::any:
        return out + "any";
    case HostSpec::Kind::prefix: {
        bool full = host.prefix.length == (host.prefix.addr.is_v4() ? 32 : 128);
        return out + (full ? host.prefix.addr.to_string() : host.prefix.to_string());
    }
    case HostSpec::Kind::table:
        return out + "<" + host.name + ">";
    case HostSpec::Kind::iface_network:
        return out + host.name + ":network";
    case HostSpec::Kind::iface_address:
        return out + (host.dynamic ? "(" + host.name + ")" : host.name);
    case HostSpec::Kind::self:
        return out + "self";
    }
    return out;
}

// pfctl prints a lone port as "= 22"; in a list a plain "22" reads better.
std::string port_text(const PortSpec &port, bool in_list) {
    std::string a = std::to_string(port.a), b = std::to_string(port.b);
    switch (port.op) {
    case PortOp::eq:
        return in_list ? a : "= " + a;
    case PortOp::ne:
        return "!= " + a;
    case PortOp::lt:
        return "< " + a;
    case PortOp::le:
        return "<= " + a;
    case PortOp::gt:
        return "> " + a;
    case PortOp::ge:
        return ">= " + a;
    case PortOp::range:
        return a + ":" + b;
    case PortOp::between:
        return a + " >< " + b;
    case PortOp::outside:
        return a + " <> " + b;
    }
    return a;
}

std::string icmp_text(const IcmpSpec &icmp, bool v6) {
    auto type = v6 ? name_of(icmp6_type_names, std::size(icmp6_type_names), icmp.type)
                   : name_of(icmp_type_names, std::size(icmp_type_names), icmp.type);
    std::string out = type ? std::string(*type) : std::to_string(icmp.type);
    if (icmp.code < 0) return out;
    std::string code = std::to_string(icmp.code);
    auto names = v6 ? std::begin(icmp6_code_names) : std::begin(icmp_code_names);
    auto end = v6 ? std::end(icmp6_code_names) : std::end(icmp_code_names);
    for (auto it = names; it != end; ++it)
        if (it->type == icmp.type && it->code == icmp.code) {
            code = it->name;
            break;
        }
    return out + " code " + code;
}

template <typename T, typename Text> std::string list_text(const std::vector<T> &items, Text text) {
    if (items.size() == 1) return text(items[0], false);
    std::string out = "{ ";
    for (size_t i = 0; i < items.size(); i++)
        out += (i ? ", " : "") + text(items[i], true);
    return out + " }";
}

std::string flags_text(uint8_t bits) {
    std::string out;
    for (size_t i = 0; i < flag_letters.size(); i++)
        if (bits & (1u << i)) out += flag_letters[i];
    return out;
}

std::string endpoint_text(const Endpoint &endpoint) {
    std::string out =
        list_text(endpoint.hosts, [](const HostSpec &host, bool) { return host_text(host); });
    if (!endpoint.ports.empty()) out += " port " + list_text(endpoint.ports, port_text);
    return out;
}

// POOL [port N[:M]] [static-port] [method], as nat-to and rdr-to take it.
std::string translation_text(const Translation &translation) {
    std::string out =
        list_text(translation.pool, [](const HostSpec &host, bool) { return host_text(host); });
    if (translation.port_lo != 0 || translation.port_hi != 0) {
        out += " port " + std::to_string(translation.port_lo);
        if (translation.port_hi != translation.port_lo)
            out += ":" + std::to_string(translation.port_hi);
    }
    if (translation.static_port) out += " static-port";
    switch (translation.method) {
    case PoolMethod::none:
        break;
    case PoolMethod::round_robin:
        out += " round-robin";
        break;
    case PoolMethod::random:
        out += " random";
        break;
    case PoolMethod::source_hash:
        out += " source-hash";
        break;
    }
    return out;
}

bool is_any(const Endpoint &endpoint) {
    return endpoint.ports.empty() && endpoint.hosts.size() == 1 && endpoint.hosts[0] == HostSpec{};
}

} // namespace

std::string_view state_timeout_name(Timeout timeout) {
    size_t index = size_t(timeout);
    return index < state_timeout_count ? timeout_names[index] : std::string_view("unknown");
}

bool PortSpec::matches(uint16_t port) const {
    switch (op) {
    case PortOp::eq:
        return port == a;
    case PortOp::ne:
        return port != a;
    case PortOp::lt:
        return port < a;
    case PortOp::le:
        return port <= a;
    case PortOp::gt:
        return port > a;
    case PortOp::ge:
        return port >= a;
    case PortOp::range:
        return port >= a && port <= b;
    case PortOp::between:
        return port > a && port < b;
    case PortOp::outside:
        return port < a || port > b;
    }
    return false;
}

std::vector<PortRange> PortSpec::ranges() const {
    constexpr uint16_t max = 65535;
    std::vector<PortRange> out;
    auto add = [&](uint32_t lo, uint32_t hi) {
        if (lo <= hi && hi <= max) out.push_back({uint16_t(lo), uint16_t(hi)});
    };
    switch (op) {
    case PortOp::eq:
        add(a, a);
        break;
    case PortOp::ne:
        if (a > 0) add(0, a - 1u);
        add(a + 1u, max);
        break;
    case PortOp::lt:
        if (a > 0) add(0, a - 1u);
        break;
    case PortOp::le:
        add(0, a);
        break;
    case PortOp::gt:
        add(a + 1u, max);
        break;
    case PortOp::ge:
        add(a, max);
        break;
    case PortOp::range:
        add(a, b);
        break;
    case PortOp::between:
        if (b > 0) add(a + 1u, b - 1u);
        break;
    case PortOp::outside:
        if (a > 0) add(0, a - 1u);
        add(b + 1u, max);
        break;
    }
    return out;
}

bool same_filter(const PfRule &a, const PfRule &b) {
    auto fields = [](const PfRule &r) {
        return std::tie(r.action, r.block_policy, r.direction, r.log, r.quick, r.iface,
                        r.iface_negated, r.af, r.protos, r.from, r.to, r.flags, r.flags_mask,
                        r.icmp_types, r.state, r.label, r.nat, r.rdr, r.binat);
    };
    return fields(a) == fields(b);
}

std::vector<uint32_t> match_rules(const std::vector<PfRule> &old, const std::vector<PfRule> &next) {
    // Candidates per canonical text, in ascending order; `used` counts the ones handed out.
    struct Bucket {
        std::vector<uint32_t> rules;
        std::size_t used = 0;
    };
    std::unordered_map<std::string, Bucket> buckets;
    buckets.reserve(next.size());
    for (uint32_t j = 0; j < next.size(); j++)
        buckets[to_string(next[j])].rules.push_back(j);
    std::vector<uint32_t> out(old.size(), no_match);
    for (uint32_t i = 0; i < old.size(); i++) {
        const auto it = buckets.find(to_string(old[i]));
        if (it == buckets.end()) continue;
        Bucket &b = it->second;
        // Equal texts filter alike (the text is canonical); same_filter() confirms it.
        while (b.used < b.rules.size()) {
            const uint32_t j = b.rules[b.used++];
            if (same_filter(old[i], next[j])) {
                out[i] = j;
                break;
            }
        }
    }
    return out;
}

PfRule parse_pf_rule(const std::string &text, const SourcePos &pos,
                     const std::vector<std::string> &interface_names,
                     const std::vector<std::string> &table_names) {
    return Parser(text, pos, interface_names, table_names).parse();
}

std::vector<PfRule> parse_pf_rules(const Config &cfg) {
    std::vector<std::string> interfaces, tables;
    for (const auto &iface : cfg.interfaces)
        interfaces.push_back(iface.name);
    for (const auto &table : cfg.tables)
        tables.push_back(table.name);
    std::vector<PfRule> rules;
    rules.reserve(cfg.rules.size());
    for (const auto &line : cfg.rules) {
        rules.push_back(parse_pf_rule(line.text, line.pos, interfaces, tables));
        rules.back().number = uint32_t(rules.size() - 1);
    }
    return rules;
}

std::string to_string(const PfRule &rule) {
    std::string out = rule.action == Action::pass    ? "pass"
                      : rule.action == Action::block ? "block"
                                                     : "match";
    if (rule.action == Action::block) {
        switch (rule.block_policy) {
        case BlockPolicy::drop:
            out += " drop";
            break;
        case BlockPolicy::return_:
            out += " return";
            break;
        case BlockPolicy::return_rst:
            out += " return-rst";
            break;
        case BlockPolicy::return_icmp:
            out += " return-icmp";
            break;
        }
    }
    if (rule.direction != Direction::both) out += rule.direction == Direction::in ? " in" : " out";
    if (rule.log) out += " log";
    if (rule.quick) out += " quick";
    if (!rule.iface.empty())
        out += " on " + std::string(rule.iface_negated ? "! " : "") + rule.iface;
    if (rule.af != 0) out += " " + family_name(rule.af);
    if (!rule.protos.empty())
        out += " proto " +
               list_text(rule.protos, [](uint8_t proto, bool) { return proto_text(proto); });
    if (is_any(rule.from) && is_any(rule.to))
        out += " all";
    else
        out += " from " + endpoint_text(rule.from) + " to " + endpoint_text(rule.to);

    bool tcp_capable = rule.protos.empty() || has_proto(rule.protos, ipproto_tcp);
    if (rule.flags_mask != 0)
        out += " flags " + flags_text(rule.flags) + "/" + flags_text(rule.flags_mask);
    else if (rule.action == Action::pass && rule.state.keep_state && tcp_capable)
        out += " flags any"; // else parsing it back would add pf's default S/SA
    if (!rule.icmp_types.empty()) {
        bool v6 = rule.protos == std::vector<uint8_t>{ipproto_icmpv6};
        out += v6 ? " icmp6-type " : " icmp-type ";
        out += list_text(rule.icmp_types,
                         [v6](const IcmpSpec &icmp, bool) { return icmp_text(icmp, v6); });
    }
    if (rule.action == Action::pass) {
        if (!rule.state.keep_state) {
            out += " no state";
        } else {
            out += " keep state";
            std::vector<std::string> options;
            if (rule.state.max_states)
                options.push_back("max " + std::to_string(rule.state.max_states));
            for (size_t i = 0; i < state_timeout_count; i++)
                if (rule.state.timeouts[i])
                    options.push_back(std::string(timeout_names[i]) + " " +
                                      std::to_string(rule.state.timeouts[i]));
            if (!options.empty()) out += " (" + join(options) + ")";
        }
    }
    if (!rule.label.empty()) {
        out += " label \"";
        for (char c : rule.label) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += "\"";
    }
    if (rule.binat) {
        out += " binat-to " + translation_text(rule.nat);
    } else {
        if (rule.nat.set) out += " nat-to " + translation_text(rule.nat);
        if (rule.rdr.set) out += " rdr-to " + translation_text(rule.rdr);
    }
    return out;
}

} // namespace syncwall::config
