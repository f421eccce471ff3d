// syncwall configuration: typed, immutable, validated.
//
// Theory of operation: `load_config()` (loader.hpp) reads a YAML file with yaml-cpp,
// checks every key against the schema below and returns a `Config` by value. Nothing
// downstream reads YAML. A Config is never modified after loading; a reload builds a new
// one beside the running one. Every error found while loading names file:line:column.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace syncwall::config {

// Where a value came from in the YAML file (1-based line and column), for error messages
// raised after loading (for instance by the rule compiler).
struct SourcePos {
    std::string file;
    int line = 0;
    int column = 0;
    // "file:line:column", or the file alone when no line is known.
    std::string to_string() const;
};

// An IPv4 or IPv6 address, network byte order in `bytes` (IPv4 uses bytes[0..3]).
struct IpAddress {
    uint8_t family = 0; // 4 or 6; 0 = unset
    std::array<uint8_t, 16> bytes{};

    bool is_v4() const { return family == 4; }
    bool is_v6() const { return family == 6; }
    uint32_t v4_host_order() const {
        return uint32_t(bytes[0]) << 24 | uint32_t(bytes[1]) << 16 | uint32_t(bytes[2]) << 8 |
               bytes[3];
    }
    std::string to_string() const;
    bool operator==(const IpAddress &) const = default;
};

// An address with a prefix length: "192.0.2.1/24", "2001:db8::1/64".
struct IpPrefix {
    IpAddress addr;
    uint8_t length = 0;
    std::string to_string() const;
    bool operator==(const IpPrefix &) const = default;
};

// The prefix with every bit past its length cleared: 10.1.2.3/8 -> 10.0.0.0/8.
IpPrefix network_of(IpPrefix prefix);

// Parse "192.0.2.1", "2001:db8::1". Returns nullopt on anything else.
std::optional<IpAddress> parse_ip_address(const std::string &text);
// Parse "192.0.2.0/24" or a bare address (full-length prefix). With `require_length`
// the "/N" part is mandatory. Returns nullopt on anything else, including N too large.
std::optional<IpPrefix> parse_ip_prefix(const std::string &text, bool require_length = false);

struct MacAddress {
    std::array<uint8_t, 6> bytes{};
    std::string to_string() const;
    bool operator==(const MacAddress &) const = default;
};
std::optional<MacAddress> parse_mac(const std::string &text);

struct NodeConfig {
    std::string name = "syncwall";
    uint32_t hostid = 0; // pfsync creatorid; never 0 after loading
};

struct DpdkConfig {
    std::vector<std::string> eal_args; // passed to rte_eal_init after argv[0]
    uint32_t mbufs = 8191;             // mbufs per socket pool
    uint32_t mbuf_cache = 256;
    uint16_t rx_desc = 512;
    uint16_t tx_desc = 512;
    uint16_t burst = 32;
};

enum class IdlePolicy { busy, adaptive };

struct LcoreConfig {
    unsigned main = 0;
    unsigned sync = 0; // equal to main: the sync role runs on the main lcore
    std::vector<unsigned> workers;
    IdlePolicy idle = IdlePolicy::busy;
    uint32_t idle_max_sleep_us = 500; // adaptive: longest sleep between empty polls
};

struct InterfaceConfig {
    std::string name;    // operator's name, used by rules ("on lan") and the CLI
    std::string devargs; // DPDK device: "net_af_packet0,iface=veth0" or a PCI address
    std::vector<IpPrefix> addresses;
    uint16_t mtu = 1500;
    std::optional<MacAddress> mac; // override the port's MAC
    bool promiscuous = false;
    SourcePos pos;
};

struct RouteConfig {
    IpPrefix to;
    std::optional<IpAddress> via;     // next hop; unset = directly connected
    std::optional<std::string> iface; // egress interface; derived from `via` when unset
    SourcePos pos;
};

// A rule line as written, kept with its position; the filter compiles it.
struct RuleLine {
    std::string text;
    SourcePos pos;
};

struct TableConfig {
    std::string name;
    std::vector<IpPrefix> entries;
    SourcePos pos;
};

struct SyncAuthConfig {
    std::string key_file; // empty = authentication off
};

struct SyncConfig {
    bool enabled = false;
    std::string interface;           // a name from `interfaces`
    std::optional<IpAddress> peer;   // unicast peer; unset = multicast 224.0.0.240
    uint16_t maxupd = 128;           // updates of one state before it is sent
    uint32_t interval_ms = 1000;     // longest a change waits before it is sent
    uint32_t bulk_timeout_ms = 2000; // a bulk request is repeated after this
    uint32_t bulk_max_requests = 12; // then the node gives up waiting and undemotes
    uint32_t ring_size = 4096;       // per-worker delta ring entries (power of two)
    SyncAuthConfig auth;
};

struct CarpVhostConfig {
    uint8_t vhid = 0; // 1..255
    std::string interface;
    std::vector<IpPrefix> addresses;
    uint8_t advbase = 1; // seconds, 0..255 (0: advskew/256 s, as OpenBSD)
    uint8_t advskew = 0; // 0..254
    std::string pass;    // HMAC passphrase (may be empty)
    SourcePos pos;
};

struct CarpConfig {
    bool preempt = false;
    std::vector<std::string> tracked; // interface names; losing link demotes every vhid
    std::vector<CarpVhostConfig> vhosts;
};

// pf's timeout table, in seconds. Names follow pf.conf ("tcp.first", ...).
struct TimeoutConfig {
    uint32_t tcp_first = 120;
    uint32_t tcp_opening = 30;
    uint32_t tcp_established = 86400;
    uint32_t tcp_closing = 900;
    uint32_t tcp_finwait = 45;
    uint32_t tcp_closed = 90;
    uint32_t udp_first = 60;
    uint32_t udp_single = 30;
    uint32_t udp_multiple = 60;
    uint32_t icmp_first = 20;
    uint32_t icmp_error = 10;
    uint32_t other_first = 60;
    uint32_t other_single = 30;
    uint32_t other_multiple = 60;
    uint32_t frag = 60;
    uint32_t interval = 10;
    // Adaptive scaling: 0/0 means pf's default (60 % and 120 % of limits.states).
    uint32_t adaptive_start = 0;
    uint32_t adaptive_end = 0;
};

struct LimitsConfig {
    uint32_t states = 100000;
    uint32_t neighbours = 4096;
    uint32_t pending_per_neighbour = 16; // packets held while a next hop is resolved
    uint32_t punt_ring = 1024;
    uint32_t frags = 1024; // fragments held for reassembly, shared out among the workers
};

struct ControlConfig {
    std::string socket = "/run/syncwall/syncwall.sock";
    uint32_t socket_mode = 0600;
    std::optional<std::string> metrics_listen; // "127.0.0.1:9101"; unset = off
    std::optional<std::string> pflog_file;     // pcap file for `log` rules; unset = off
};

struct Config {
    std::string source_file;
    NodeConfig node;
    DpdkConfig dpdk;
    LcoreConfig lcores;
    std::vector<InterfaceConfig> interfaces; // in file order: port index = position
    std::vector<RouteConfig> routes;
    std::vector<TableConfig> tables;
    std::vector<RuleLine> rules;
    SyncConfig sync;
    CarpConfig carp;
    TimeoutConfig timeouts;
    LimitsConfig limits;
    ControlConfig control;

    // Index of the interface named `name` in `interfaces`, or -1.
    int interface_index(const std::string &name) const;
};

} // namespace syncwall::config
