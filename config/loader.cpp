// YAML -> Config. The document is read with yaml-cpp, then walked section by section
// through `Value` (a node that knows its file, position and key path, for messages) and
// `MapReader` (a map whose keys were checked against the schema). Every problem becomes
// a ConfigError "FILE:LINE:COLUMN: KEY.PATH: expected WHAT, got WHAT"; nothing else
// escapes load_config(), whatever the input.
#include "config/loader.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <string_view>
#include <type_traits>
#include <utility>

namespace syncwall::config {

namespace {

constexpr unsigned max_lcore = 1023; // RTE_MAX_LCORE on the usual builds, minus one
constexpr size_t max_file_size = 16 << 20;
constexpr uint32_t u32_max = std::numeric_limits<uint32_t>::max();

std::string format_error(const SourcePos &pos, const std::string &message) {
    return pos.to_string() + ": " + message;
}

SourcePos position(const std::string &file, const YAML::Mark &mark) {
    if (mark.is_null()) return {file, 0, 0};
    return {file, mark.line + 1, mark.column + 1};
}

std::string at_line(const SourcePos &pos) {
    return "line " + std::to_string(pos.line) + ", column " + std::to_string(pos.column);
}

// What the file holds where something else was expected: the "got ..." of a message.
std::string describe(const YAML::Node &node) {
    switch (node.Type()) {
    case YAML::NodeType::Scalar:
        return quote_for_message(node.Scalar());
    case YAML::NodeType::Sequence:
        return node.size() == 0 ? "an empty list" : "a list";
    case YAML::NodeType::Map:
        return node.size() == 0 ? "an empty map" : "a map";
    default:
        return "nothing";
    }
}

std::string join(const std::vector<std::string> &items, std::string_view separator) {
    std::string out;
    for (const auto &item : items) {
        if (!out.empty()) out += separator;
        out += item;
    }
    return out;
}

std::string range_text(uint64_t min, uint64_t max) {
    return std::to_string(min) + ".." + std::to_string(max);
}

// Decimal, or hexadecimal after "0x". No sign, spaces, fractions or digit separators.
std::optional<uint64_t> parse_uint(std::string_view text, unsigned base = 10) {
    if (base == 10 && text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        text.remove_prefix(2);
    }
    if (text.empty()) return std::nullopt;
    uint64_t value = 0;
    for (char c : text) {
        unsigned digit = base;
        if (c >= '0' && c <= '9')
            digit = unsigned(c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = unsigned(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            digit = unsigned(c - 'A' + 10);
        if (digit >= base) return std::nullopt;
        if (value > (std::numeric_limits<uint64_t>::max() - digit) / base) return std::nullopt;
        value = value * base + digit;
    }
    return value;
}

bool is_power_of_two(uint64_t value) {
    return value != 0 && (value & (value - 1)) == 0;
}

// Letters, digits, '_' and '-', starting with a letter; what rules and the CLI can name.
bool is_identifier(std::string_view text, size_t max_length) {
    auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (text.empty() || text.size() > max_length || !alpha(text[0])) return false;
    for (char c : text)
        if (!alpha(c) && !digit(c) && c != '_' && c != '-') return false;
    return true;
}

class MapReader;
struct MapEntry;

// A node of the document with what a message about it needs: the file and 1-based
// position it came from and its key path ("interfaces.lan.mtu", "routes[0].via").
class Value {
  public:
    Value(YAML::Node node, std::string path, SourcePos pos)
        : node_(std::move(node)), path_(std::move(path)), pos_(std::move(pos)) {}

    const YAML::Node &node() const { return node_; }
    const std::string &path() const { return path_; }
    const SourcePos &pos() const { return pos_; }
    bool is_null() const { return !node_.IsDefined() || node_.IsNull(); }

    [[noreturn]] void error(const std::string &message) const {
        throw ConfigError(pos_, path_.empty() ? message : path_ + ": " + message);
    }
    [[noreturn]] void expected(const std::string &what) const {
        error("expected " + what + ", got " + describe(node_));
    }

    // A child of this node. yaml-cpp places an empty value at the token after it, often
    // on the next line, so an empty child is reported at `fallback` (its key) instead.
    Value child(const YAML::Node &item, const std::string &path, const SourcePos &fallback) const {
        bool empty = !item.IsDefined() || item.IsNull();
        return Value(item, path, empty ? fallback : position(pos_.file, item.Mark()));
    }
    std::string child_path(const std::string &key) const {
        return path_.empty() ? key : path_ + "." + key;
    }

    std::string as_string() const {
        if (!node_.IsScalar()) expected("a string");
        return node_.Scalar();
    }
    std::string as_nonempty_string(const std::string &what) const {
        if (!node_.IsScalar() || node_.Scalar().empty()) expected(what);
        return node_.Scalar();
    }
    bool as_bool() const {
        bool value = false;
        if (!node_.IsScalar() || !YAML::convert<bool>::decode(node_, value))
            expected("true or false");
        return value;
    }
    uint64_t as_uint(uint64_t min, uint64_t max) const {
        auto value = node_.IsScalar() ? parse_uint(node_.Scalar()) : std::nullopt;
        if (!value || *value < min || *value > max) expected("an integer " + range_text(min, max));
        return *value;
    }
    uint64_t as_power_of_two(uint64_t min, uint64_t max) const {
        auto value = node_.IsScalar() ? parse_uint(node_.Scalar()) : std::nullopt;
        if (!value || *value < min || *value > max || !is_power_of_two(*value))
            expected("a power of two " + range_text(min, max));
        return *value;
    }
    IpAddress as_address() const {
        auto addr = node_.IsScalar() ? parse_ip_address(node_.Scalar()) : std::nullopt;
        if (!addr) expected("an IP address");
        return *addr;
    }
    IpPrefix as_prefix(bool require_length) const {
        auto prefix =
            node_.IsScalar() ? parse_ip_prefix(node_.Scalar(), require_length) : std::nullopt;
        if (!prefix && require_length)
            expected("an address with a prefix length, like 192.0.2.1/24");
        if (!prefix) expected("an IP address or prefix, like 192.0.2.0/24");
        return *prefix;
    }

    // The items of a list; an empty value ("routes:") is an empty list.
    std::vector<Value> as_list() const {
        if (is_null()) return {};
        if (!node_.IsSequence()) expected("a list");
        std::vector<Value> items;
        for (const auto &item : node_)
            items.push_back(child(item, path_ + "[" + std::to_string(items.size()) + "]", pos_));
        return items;
    }

    // The entries of a map in file order; an empty value ("tables:") is an empty map.
    // Keys must be unique strings.
    std::vector<MapEntry> as_entries() const;
    MapReader as_map(std::vector<std::string_view> keys) const;

  private:
    YAML::Node node_;
    std::string path_;
    SourcePos pos_;
};

// Things that must be unique (keys, addresses, vhids, lcores), each remembered with where
// it was first seen so that a repeat can point at both.
template <typename T> class UniqueSet {
  public:
    explicit UniqueSet(std::string what) : what_(std::move(what)) {}

    void add(const T &item, const std::string &shown, const Value &where) {
        for (const auto &[seen, pos] : seen_)
            if (seen == item)
                where.error("duplicate " + what_ + " " + shown + " (first at " + at_line(pos) +
                            ")");
        seen_.emplace_back(item, where.pos());
    }

  private:
    std::string what_;
    std::vector<std::pair<T, SourcePos>> seen_;
};

// A key of a map and its value. The key's path is the map's (messages about a bad name
// read "interfaces: expected ..."), the value's is the map's plus the key.
struct MapEntry {
    std::string name;
    Value key;
    Value value;
};

std::vector<MapEntry> Value::as_entries() const {
    if (is_null()) return {};
    if (!node_.IsMap()) expected("a map");
    std::vector<MapEntry> entries;
    UniqueSet<std::string> names("key");
    for (const auto &pair : node_) {
        Value key = child(pair.first, path_, pos_);
        if (!pair.first.IsScalar()) key.expected("a key name");
        const std::string &name = pair.first.Scalar();
        names.add(name, quote_for_message(name), key);
        entries.push_back({name, key, child(pair.second, child_path(name), key.pos())});
    }
    return entries;
}

// A map whose keys are all known to the schema; fields are taken from it by name.
class MapReader {
  public:
    MapReader(const Value &map, std::vector<std::string_view> known)
        : map_(map), entries_(map.as_entries()) {
        for (const auto &entry : entries_) {
            bool is_known = false;
            for (auto name : known)
                is_known = is_known || entry.name == name;
            if (!is_known)
                entry.key.error("unknown key " + quote_for_message(entry.name) +
                                " (expected one of: " + join({known.begin(), known.end()}, ", ") +
                                ")");
        }
    }

    std::optional<Value> find(std::string_view name) const {
        for (const auto &entry : entries_)
            if (entry.name == name) return entry.value;
        return std::nullopt;
    }
    Value require(std::string_view name) const {
        if (auto value = find(name)) return *value;
        map_.error("missing required key " + quote_for_message(name));
    }
    // An optional section or list: an absent one reads as empty, placed at this map.
    Value section(std::string_view name) const {
        if (auto value = find(name)) return *value;
        return Value(YAML::Node(), map_.child_path(std::string(name)), map_.pos());
    }

    // Optional fields: `out` keeps its default when the key is absent.
    void read_string(std::string_view name, std::string &out) const {
        if (auto value = find(name)) out = value->as_string();
    }
    void read_bool(std::string_view name, bool &out) const {
        if (auto value = find(name)) out = value->as_bool();
    }
    template <typename T> void read_uint(std::string_view name, T &out, T min, T max) const {
        static_assert(std::is_unsigned_v<T>);
        if (auto value = find(name)) out = static_cast<T>(value->as_uint(min, max));
    }
    template <typename T>
    void read_power_of_two(std::string_view name, T &out, T min, T max) const {
        static_assert(std::is_unsigned_v<T>);
        if (auto value = find(name)) out = static_cast<T>(value->as_power_of_two(min, max));
    }

  private:
    Value map_;
    std::vector<MapEntry> entries_;
};

MapReader Value::as_map(std::vector<std::string_view> keys) const {
    return MapReader(*this, std::move(keys));
}

// Each address may be configured once on the node: on one interface or as one CARP
// virtual address.
using AddressSet = UniqueSet<IpAddress>;

std::string interface_ref(const Value &value, const std::vector<InterfaceConfig> &interfaces) {
    std::vector<std::string> names;
    for (const auto &iface : interfaces)
        names.push_back(iface.name);
    if (value.node().IsScalar())
        for (const auto &name : names)
            if (name == value.node().Scalar()) return name;
    value.expected("the name of an interface (" + join(names, ", ") + ")");
}

std::vector<IpPrefix> prefix_list(const Value &list, bool require_length, AddressSet *addresses) {
    std::vector<IpPrefix> prefixes;
    for (const auto &item : list.as_list()) {
        prefixes.push_back(item.as_prefix(require_length));
        if (addresses) addresses->add(prefixes.back().addr, prefixes.back().addr.to_string(), item);
    }
    return prefixes;
}

NodeConfig load_node(const Value &value) {
    NodeConfig node;
    auto map = value.as_map({"name", "hostid"});
    if (auto name = map.find("name")) node.name = name->as_nonempty_string("a node name");
    // The pfsync creator id: 0 would make this node's states look like nobody's.
    node.hostid = static_cast<uint32_t>(map.require("hostid").as_uint(1, u32_max));
    return node;
}

DpdkConfig load_dpdk(const Value &value) {
    DpdkConfig dpdk;
    auto map = value.as_map({"eal_args", "mbufs", "mbuf_cache", "rx_desc", "tx_desc", "burst"});
    for (const auto &arg : map.section("eal_args").as_list())
        dpdk.eal_args.push_back(arg.as_string());
    map.read_uint<uint32_t>("mbufs", dpdk.mbufs, 1023, 16777215);
    map.read_uint<uint32_t>("mbuf_cache", dpdk.mbuf_cache, 0, 512);
    map.read_uint<uint16_t>("rx_desc", dpdk.rx_desc, 64, 16384);
    map.read_uint<uint16_t>("tx_desc", dpdk.tx_desc, 64, 16384);
    map.read_uint<uint16_t>("burst", dpdk.burst, 1, 256);
    return dpdk;
}

LcoreConfig load_lcores(const Value &value) {
    LcoreConfig lcores;
    auto map = value.as_map({"main", "sync", "workers", "idle", "idle_max_sleep_us"});
    map.read_uint("main", lcores.main, 0u, max_lcore);
    lcores.sync = lcores.main;
    map.read_uint("sync", lcores.sync, 0u, max_lcore);
    auto is_taken = [&](unsigned id) { return id == lcores.main || id == lcores.sync; };

    if (auto workers = map.find("workers")) {
        auto items = workers->as_list();
        if (items.empty()) workers->expected("a non-empty list of lcore ids");
        UniqueSet<unsigned> ids("lcore");
        for (const auto &item : items) {
            auto id = static_cast<unsigned>(item.as_uint(0, max_lcore));
            if (is_taken(id))
                item.expected("an lcore other than main (" + std::to_string(lcores.main) +
                              ") and sync (" + std::to_string(lcores.sync) + ")");
            ids.add(id, std::to_string(id), item);
            lcores.workers.push_back(id);
        }
    } else {
        // One worker, on the lowest lcore that has no other role.
        unsigned id = 0;
        while (is_taken(id))
            id++;
        lcores.workers.push_back(id);
    }

    if (auto idle = map.find("idle")) {
        std::string policy = idle->node().IsScalar() ? idle->node().Scalar() : "";
        if (policy == "busy")
            lcores.idle = IdlePolicy::busy;
        else if (policy == "adaptive")
            lcores.idle = IdlePolicy::adaptive;
        else
            idle->expected("busy or adaptive");
    }
    map.read_uint<uint32_t>("idle_max_sleep_us", lcores.idle_max_sleep_us, 1, 100000);
    return lcores;
}

InterfaceConfig load_interface(const MapEntry &entry, AddressSet &addresses) {
    InterfaceConfig iface;
    if (!is_identifier(entry.name, 15))
        entry.key.expected("an interface name: a letter, then up to 14 letters, digits, "
                           "'_' or '-'");
    iface.name = entry.name;
    iface.pos = entry.key.pos();
    auto map = entry.value.as_map({"devargs", "addresses", "mtu", "mac", "promiscuous"});
    iface.devargs = map.require("devargs").as_nonempty_string("DPDK device arguments");
    iface.addresses = prefix_list(map.section("addresses"), true, &addresses);
    map.read_uint<uint16_t>("mtu", iface.mtu, 68, 9216);
    if (auto mac = map.find("mac")) {
        auto parsed = mac->node().IsScalar() ? parse_mac(mac->node().Scalar()) : std::nullopt;
        // A port's own address must be unicast (group bit clear) and not all zeroes.
        if (!parsed || (parsed->bytes[0] & 1) != 0 || *parsed == MacAddress{})
            mac->expected("a unicast MAC address, like 02:00:00:00:00:01");
        iface.mac = parsed;
    }
    map.read_bool("promiscuous", iface.promiscuous);
    return iface;
}

std::vector<InterfaceConfig> load_interfaces(const Value &value, AddressSet &addresses) {
    auto entries = value.as_entries();
    if (entries.empty()) value.expected("a map of at least one interface");
    std::vector<InterfaceConfig> interfaces;
    for (const auto &entry : entries)
        interfaces.push_back(load_interface(entry, addresses));
    return interfaces;
}

RouteConfig load_route(const Value &value, const std::vector<InterfaceConfig> &interfaces) {
    RouteConfig route;
    route.pos = value.pos();
    auto map = value.as_map({"to", "via", "interface"});
    auto to = map.require("to");
    route.to = to.as_prefix(false);
    if (network_of(route.to) != route.to)
        to.expected("a prefix without host bits (" + network_of(route.to).to_string() + ")");
    if (auto via = map.find("via")) {
        route.via = via->as_address();
        if (route.via->family != route.to.addr.family)
            via->expected(std::string(route.to.addr.is_v4() ? "an IPv4" : "an IPv6") +
                          " address, the family of \"to\"");
    }
    if (auto iface = map.find("interface")) route.iface = interface_ref(*iface, interfaces);
    if (!route.via && !route.iface)
        value.error("missing \"via\" or \"interface\" (at least one is required)");
    return route;
}

std::vector<TableConfig> load_tables(const Value &value) {
    std::vector<TableConfig> tables;
    for (const auto &entry : value.as_entries()) {
        // pf's table names fit PF_TABLE_NAME_SIZE (32) with their NUL.
        if (!is_identifier(entry.name, 31))
            entry.key.expected("a table name: a letter, then up to 30 letters, digits, "
                               "'_' or '-'");
        tables.push_back({entry.name, prefix_list(entry.value, false, nullptr), entry.key.pos()});
    }
    return tables;
}

std::vector<RuleLine> load_rules(const Value &value) {
    std::vector<RuleLine> rules;
    for (const auto &item : value.as_list()) {
        // The rule parser counts columns from the rule's first character; yaml-cpp marks a
        // quoted scalar (tag "!") at its opening quote.
        SourcePos pos = item.pos();
        if (item.node().Tag() == "!") pos.column += 1;
        rules.push_back({item.as_nonempty_string("a rule line"), pos});
    }
    return rules;
}

SyncConfig load_sync(const Value &value, const std::vector<InterfaceConfig> &interfaces) {
    SyncConfig sync;
    sync.enabled = true;
    auto map = value.as_map({"interface", "peer", "maxupd", "interval_ms", "bulk_timeout_ms",
                             "bulk_max_requests", "ring_size", "auth"});
    sync.interface = interface_ref(map.require("interface"), interfaces);
    if (auto peer = map.find("peer")) {
        auto addr = peer->as_address();
        uint32_t host = addr.v4_host_order();
        bool unicast = addr.is_v4() && host != 0 && host != u32_max && (host >> 28) != 0xe;
        if (!unicast) peer->expected("an IPv4 unicast address");
        sync.peer = addr;
    }
    map.read_uint<uint16_t>("maxupd", sync.maxupd, 1, 255);
    map.read_uint<uint32_t>("interval_ms", sync.interval_ms, 10, 10000);
    map.read_uint<uint32_t>("bulk_timeout_ms", sync.bulk_timeout_ms, 100, 60000);
    map.read_uint<uint32_t>("bulk_max_requests", sync.bulk_max_requests, 1, 1000);
    map.read_power_of_two<uint32_t>("ring_size", sync.ring_size, 64, 1048576);
    if (auto auth = map.find("auth"))
        sync.auth.key_file =
            auth->as_map({"key_file"}).require("key_file").as_nonempty_string("a file name");
    return sync;
}

CarpVhostConfig load_vhost(const Value &value, const std::vector<InterfaceConfig> &interfaces,
                           UniqueSet<unsigned> &vhids, AddressSet &addresses) {
    CarpVhostConfig vhost;
    vhost.pos = value.pos();
    auto map = value.as_map({"vhid", "interface", "addresses", "advbase", "advskew", "pass"});
    auto vhid = map.require("vhid");
    vhost.vhid = static_cast<uint8_t>(vhid.as_uint(1, 255));
    vhids.add(vhost.vhid, std::to_string(vhost.vhid), vhid);
    vhost.interface = interface_ref(map.require("interface"), interfaces);
    auto list = map.require("addresses");
    vhost.addresses = prefix_list(list, false, &addresses);
    if (vhost.addresses.empty()) list.expected("a non-empty list of addresses");
    // 0 as OpenBSD allows: the interval is then advskew/256 s (1/256 s when advskew is 0).
    map.read_uint<uint8_t>("advbase", vhost.advbase, 0, 255);
    map.read_uint<uint8_t>("advskew", vhost.advskew, 0, 254);
    map.read_string("pass", vhost.pass);
    return vhost;
}

CarpConfig load_carp(const Value &value, const std::vector<InterfaceConfig> &interfaces,
                     AddressSet &addresses) {
    CarpConfig carp;
    auto map = value.as_map({"preempt", "tracked", "vhosts"});
    map.read_bool("preempt", carp.preempt);
    for (const auto &item : map.section("tracked").as_list())
        carp.tracked.push_back(interface_ref(item, interfaces));
    UniqueSet<unsigned> vhids("vhid");
    for (const auto &vhost : map.section("vhosts").as_list())
        carp.vhosts.push_back(load_vhost(vhost, interfaces, vhids, addresses));
    return carp;
}

TimeoutConfig load_timeouts(const Value &value) {
    struct Field {
        std::string_view name;
        uint32_t TimeoutConfig::*member;
        uint32_t min;
    };
    static constexpr Field fields[] = {
        {"tcp.first", &TimeoutConfig::tcp_first, 0},
        {"tcp.opening", &TimeoutConfig::tcp_opening, 0},
        {"tcp.established", &TimeoutConfig::tcp_established, 0},
        {"tcp.closing", &TimeoutConfig::tcp_closing, 0},
        {"tcp.finwait", &TimeoutConfig::tcp_finwait, 0},
        {"tcp.closed", &TimeoutConfig::tcp_closed, 0},
        {"udp.first", &TimeoutConfig::udp_first, 0},
        {"udp.single", &TimeoutConfig::udp_single, 0},
        {"udp.multiple", &TimeoutConfig::udp_multiple, 0},
        {"icmp.first", &TimeoutConfig::icmp_first, 0},
        {"icmp.error", &TimeoutConfig::icmp_error, 0},
        {"other.first", &TimeoutConfig::other_first, 0},
        {"other.single", &TimeoutConfig::other_single, 0},
        {"other.multiple", &TimeoutConfig::other_multiple, 0},
        {"frag", &TimeoutConfig::frag, 0},
        {"interval", &TimeoutConfig::interval, 1}, // the expiry sweep period
        {"adaptive.start", &TimeoutConfig::adaptive_start, 0},
        {"adaptive.end", &TimeoutConfig::adaptive_end, 0},
    };
    std::vector<std::string_view> names;
    for (const auto &field : fields)
        names.push_back(field.name);

    TimeoutConfig timeouts;
    auto map = value.as_map(names);
    for (const auto &field : fields)
        map.read_uint<uint32_t>(field.name, timeouts.*field.member, field.min, u32_max);
    // Adaptive scaling is off (pf's defaults) with both at 0, else it needs start < end.
    if (timeouts.adaptive_start != 0 && timeouts.adaptive_start >= timeouts.adaptive_end) {
        auto end = map.require("adaptive.end");
        end.expected("a value above adaptive.start (" + std::to_string(timeouts.adaptive_start) +
                     ")");
    }
    return timeouts;
}

LimitsConfig load_limits(const Value &value) {
    LimitsConfig limits;
    auto map =
        value.as_map({"states", "neighbours", "pending_per_neighbour", "punt_ring", "frags"});
    map.read_uint<uint32_t>("states", limits.states, 1, 100000000);
    map.read_uint<uint32_t>("neighbours", limits.neighbours, 1, 16777216);
    map.read_uint<uint32_t>("pending_per_neighbour", limits.pending_per_neighbour, 1, 1024);
    map.read_power_of_two<uint32_t>("punt_ring", limits.punt_ring, 64, 1048576);
    map.read_uint<uint32_t>("frags", limits.frags, 1, 1048576);
    return limits;
}

// "127.0.0.1:9101" or "[::1]:9101".
bool is_listen_address(const std::string &text) {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        auto addr = parse_ip_address(host.substr(1, host.size() - 2));
        if (!addr || !addr->is_v6()) return false;
    } else {
        auto addr = parse_ip_address(host);
        if (!addr || !addr->is_v4()) return false;
    }
    auto port = parse_uint(std::string_view(text).substr(colon + 1));
    return port && *port >= 1 && *port <= 65535;
}

ControlConfig load_control(const Value &value) {
    ControlConfig control;
    auto map = value.as_map({"socket", "socket_mode", "metrics", "pflog"});
    if (auto socket = map.find("socket")) control.socket = socket->as_nonempty_string("a path");
    if (auto mode = map.find("socket_mode")) {
        // Always octal, as chmod reads it: 600 and 0600 are both rw-------.
        auto bits = mode->node().IsScalar() ? parse_uint(mode->node().Scalar(), 8) : std::nullopt;
        if (!bits || *bits > 0777) mode->expected("an octal file mode 0..0777, like 0600");
        control.socket_mode = static_cast<uint32_t>(*bits);
    }
    if (auto metrics = map.find("metrics")) {
        if (!metrics->node().IsScalar() || !is_listen_address(metrics->node().Scalar()))
            metrics->expected("an address and port, like 127.0.0.1:9101 or [::1]:9101");
        control.metrics_listen = metrics->node().Scalar();
    }
    if (auto pflog = map.find("pflog")) control.pflog_file = pflog->as_nonempty_string("a path");
    return control;
}

Config load_document(const YAML::Node &root, const std::string &file) {
    Value document(root, "", position(file, root.Mark()));
    if (!root.IsMap()) document.expected("a map of sections at the top level");
    auto top = document.as_map({"node", "dpdk", "lcores", "interfaces", "routes", "tables", "rules",
                                "sync", "carp", "timeouts", "limits", "control"});
    Config config;
    config.source_file = file;
    config.node = load_node(top.require("node"));
    config.dpdk = load_dpdk(top.section("dpdk"));
    config.lcores = load_lcores(top.section("lcores"));
    AddressSet addresses("address");
    config.interfaces = load_interfaces(top.require("interfaces"), addresses);
    for (const auto &route : top.section("routes").as_list())
        config.routes.push_back(load_route(route, config.interfaces));
    config.tables = load_tables(top.section("tables"));
    config.rules = load_rules(top.section("rules"));
    if (auto sync = top.find("sync")) config.sync = load_sync(*sync, config.interfaces);
    config.carp = load_carp(top.section("carp"), config.interfaces, addresses);
    config.timeouts = load_timeouts(top.section("timeouts"));
    config.limits = load_limits(top.section("limits"));
    config.control = load_control(top.section("control"));
    return config;
}

// Records where each document starts; ignores everything else.
class DocumentStarts : public YAML::EventHandler {
  public:
    std::vector<YAML::Mark> starts;

    void OnDocumentStart(const YAML::Mark &mark) override { starts.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark &, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark &, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark &, const std::string &, YAML::anchor_t,
                  const std::string &) override {}
    void OnSequenceStart(const YAML::Mark &, const std::string &, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark &, const std::string &, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
};

// Refuses a file with no document or with more than one. yaml-cpp 0.7's LoadAll() would
// say, but it never returns on a stray flow token at block level ("- a\n,"): the parser
// reports an empty document without consuming the token, forever (yaml-cpp#1040, fixed
// in 0.8 by #1319). Here a document that starts where the previous one did stops it.
void check_single_document(const std::string &text, const std::string &file) {
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    DocumentStarts documents;
    auto &starts = documents.starts;
    while (starts.size() < 3 && parser.HandleNextDocument(documents)) {
        size_t n = starts.size();
        if (n >= 2 && starts[n - 1].pos == starts[n - 2].pos) {
            size_t at = size_t(std::max(starts[n - 1].pos, 0));
            throw ConfigError(
                position(file, starts[n - 1]),
                "invalid YAML: unexpected " +
                    (at < text.size() ? quote_for_message(text.substr(at, 1)) : "input"));
        }
    }
    if (starts.empty())
        throw ConfigError({file, 1, 1},
                          "expected a map of sections at the top level, got an empty document");
    if (starts.size() > 1)
        throw ConfigError(position(file, starts[1]),
                          "expected one YAML document, got a second one");
}

// The file's bytes; an unreadable file is a ConfigError without a position.
std::string read_file(const std::string &path) {
    std::unique_ptr<FILE, int (*)(FILE *)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) throw ConfigError({path, 0, 0}, std::string("cannot open: ") + std::strerror(errno));
    std::string text;
    char buffer[16384];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0) {
        text.append(buffer, n);
        if (text.size() > max_file_size) // /dev/zero, a log file named by mistake
            throw ConfigError({path, 0, 0}, "cannot read: larger than " +
                                                std::to_string(max_file_size >> 20) + " MiB");
    }
    if (std::ferror(file.get()))
        throw ConfigError({path, 0, 0}, std::string("cannot read: ") + std::strerror(errno));
    return text;
}

} // namespace

std::string quote_for_message(std::string_view text) {
    constexpr size_t max_shown = 64;
    std::string out = "\"";
    for (size_t i = 0; i < text.size() && i < max_shown; i++) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20 || c == 0x7f) {
            char escaped[5];
            std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
            out += escaped;
        } else {
            out += char(c);
        }
    }
    if (text.size() > max_shown) out += "...";
    return out + "\"";
}

ConfigError::ConfigError(SourcePos pos, const std::string &message)
    : std::runtime_error(format_error(pos, message)), pos_(std::move(pos)), message_(message) {}

Config load_config(const std::string &path) {
    return load_config_text(read_file(path), path);
}

Config load_config_text(const std::string &text, const std::string &name) {
    try {
        check_single_document(text, name);
        return load_document(YAML::Load(text), name);
    } catch (const ConfigError &) {
        throw;
    } catch (const YAML::DeepRecursion &e) {
        // yaml-cpp's own message for this one is "bad file".
        throw ConfigError(position(name, e.mark), "invalid YAML: nested too deeply");
    } catch (const YAML::Exception &e) {
        throw ConfigError(position(name, e.mark), "invalid YAML: " + e.msg);
    } catch (const std::exception &e) {
        throw ConfigError({name, 0, 0}, std::string("cannot load: ") + e.what());
    }
}

} // namespace syncwall::config
