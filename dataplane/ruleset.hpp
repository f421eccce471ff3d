// The compiled ruleset: pf rules as rte_acl contexts.
//
// Theory of operation: the main lcore compiles the parsed rules (config/pf_rule.hpp) into one
// rte_acl context per address family, beside the running ruleset, and publishes it with an
// atomic pointer swap; the old one is freed after an RCU grace period (see Dataplane). Workers
// classify packets that matched no state, in bursts.
//
// pf's decision in one ACL lookup: every rule becomes one or more ACL rules (lists, tables,
// negations, `!=` ports and interface networks expand into ranges and prefixes), all with
// the rule's priority: a `quick` rule outranks every non-quick one and earlier quick rules
// outrank later ones; among non-quick rules the later one wins. rte_acl returns the highest
// priority match, which is exactly "first matching quick rule, else last matching rule".
// No match means pf's default rule: pass, no state.
//
// The ACL input is a FilterKey: protocol, interface+direction, TCP flags, addresses, ports.
// For ICMP the "ports" are the type (sport) and code (dport), so icmp-type matches there.
#pragma once

#include "config/config.hpp"
#include "config/pf_rule.hpp"
#include "dataplane/counters.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct rte_acl_ctx;

namespace syncwall::dp {

// The ACL's input, one per packet and direction. Layout is fixed by the ACL field
// definitions in ruleset.cpp: keep it as is (static_asserts there).
struct FilterKey4 {
    uint8_t proto;
    uint8_t iface_dir; // port index << 1 | (1 = out, 0 = in)
    uint8_t tcp_flags; // 0 for non-TCP
    uint8_t pad;
    uint32_t src, dst;     // network byte order (as in the packet)
    uint16_t sport, dport; // host order; ICMP: type, code
};
static_assert(sizeof(FilterKey4) == 16);

struct FilterKey6 {
    uint8_t proto;
    uint8_t iface_dir;
    uint8_t tcp_flags;
    uint8_t pad;
    uint8_t src[16], dst[16]; // network byte order
    uint16_t sport, dport;
};
static_assert(sizeof(FilterKey6) == 40);

// A translation as the worker applies it (nat-to, rdr-to, each half of binat-to).
struct CompiledTranslation {
    enum class Kind : uint8_t { nat, rdr };
    Kind kind = Kind::nat;
    config::PoolMethod method = config::PoolMethod::none;
    bool static_port = false;
    uint16_t port_lo = 0, port_hi = 0; // nat: source ports; rdr: lo = the new port (0 = kept)
    uint8_t family = 0;                // of the pool's addresses
    // The pool, one entry per address block (a /32 or /128 for one address); addresses are
    // numbered across the blocks in order, `size` of them in all (capped at 2^32).
    std::vector<config::IpPrefix> blocks;
    uint64_t size = 0;

    // Address number i (< size) of the pool, into 16 bytes (IPv4 in the first 4).
    std::array<uint8_t, 16> address(uint64_t i) const;
};

// What the worker needs of the rule that decided.
struct CompiledRule {
    uint32_t number = 0;
    config::Action action = config::Action::pass;
    config::BlockPolicy block_policy = config::BlockPolicy::drop;
    bool quick = false;
    bool log = false;
    bool keep_state = false;
    uint32_t max_states = 0; // 0 = no per-rule limit
    // Per-rule timeouts in seconds indexed by Timeout class; 0 = use the global one.
    std::array<uint32_t, config::state_timeout_count> timeouts{};
    // Translations (indexes into Ruleset::translation(); no_translation = none): outbound
    // packets the rule decides get `nat`, inbound ones `rdr`.
    static constexpr uint16_t no_translation = 0xffff;
    uint16_t nat = no_translation, rdr = no_translation;
};

// Per-rule counters: each lcore writes its own row; readers sum. `states` is shared
// (inserted by workers, removed by the expiry sweep), so it is atomic.
struct RuleCounters {
    OwnedCounter matches, packets, bytes, states_created;
};

class Ruleset {
  public:
    static constexpr uint32_t default_rule = 0xffffffffu; // result: no rule matched

    // Compile. `rules` are numbered 0..n-1 in order. `lcores` = number of counter rows
    // (workers + other lcores that classify). Throws config::ConfigError naming the rule
    // (file:line:col) when a rule cannot be compiled (e.g. too many expansions), or
    // std::runtime_error for an rte_acl failure.
    Ruleset(const config::Config &cfg, std::vector<config::PfRule> rules, unsigned lcores,
            const std::string &name, int socket_id);
    ~Ruleset();
    Ruleset(const Ruleset &) = delete;
    Ruleset &operator=(const Ruleset &) = delete;

    // results[i] = number of the deciding rule, or default_rule. n <= 64.
    void classify4(const FilterKey4 *const *keys, uint32_t *results, unsigned n) const;
    void classify6(const FilterKey6 *const *keys, uint32_t *results, unsigned n) const;
    // The `match` rules that translate, in a context of their own (rte_acl gives one winner
    // per context): results[i] = number of the last matching one, or default_rule.
    bool has_match_rules() const { return match4_ != nullptr || match6_ != nullptr; }
    void classify_match4(const FilterKey4 *const *keys, uint32_t *results, unsigned n) const;
    void classify_match6(const FilterKey6 *const *keys, uint32_t *results, unsigned n) const;
    const CompiledTranslation &translation(uint16_t i) const { return translations_[i]; }
    // Whether any rule translates (the state table must have been made with room for it).
    bool translates() const { return !translations_.empty(); }

    const CompiledRule &rule(uint32_t number) const { return compiled_[number]; }
    std::size_t size() const { return compiled_.size(); }
    const std::vector<config::PfRule> &rules() const { return rules_; }
    // Number of ACL rules the pf rules expanded into (v4 + v6), for `show rules`.
    std::size_t acl_rules() const { return acl_rules_; }

    RuleCounters &counters(unsigned lcore, uint32_t rule) {
        return counters_[lcore * size() + rule];
    }
    // Current states per rule (for `max N` and `show rules`).
    std::atomic<uint32_t> &live_states(uint32_t rule) { return live_states_[rule]; }

    struct RuleTotals {
        uint64_t matches = 0, packets = 0, bytes = 0, states_created = 0;
        uint32_t states = 0;
    };
    RuleTotals totals(uint32_t rule) const;

  private:
    std::vector<config::PfRule> rules_;
    std::vector<CompiledRule> compiled_;
    rte_acl_ctx *acl4_ = nullptr;
    rte_acl_ctx *acl6_ = nullptr;
    rte_acl_ctx *match4_ = nullptr;
    rte_acl_ctx *match6_ = nullptr;
    std::vector<CompiledTranslation> translations_;
    std::size_t acl_rules_ = 0;
    void free_contexts();
    unsigned lcores_ = 0;
    std::unique_ptr<RuleCounters[]> counters_;
    std::unique_ptr<std::atomic<uint32_t>[]> live_states_;
};

// The rte_acl priority for a rule: quick rules above all others, earlier quick first;
// otherwise later rules first. Pure; exposed for tests.
int32_t acl_priority(uint32_t number, bool quick, std::size_t rule_count);

} // namespace syncwall::dp
