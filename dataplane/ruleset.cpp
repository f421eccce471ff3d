// The rule compiler: pf rules -> one rte_acl context per address family (see ruleset.hpp).
//
// rte_acl walks a trie one input byte at a time. The first field is read as a single byte;
// every later input index is one 4-byte load at the offset of its first field, whose bytes
// are consumed in memory order by the fields of that index, in definition order. So the
// fields of an input index must be contiguous and add up to 4 bytes exactly. The first
// 4 bytes of a FilterKey are therefore described twice: `proto` alone as the 1-byte first
// field (input 0), then as input 1 a wildcard copy of proto, iface_dir, tcp_flags and pad.
//
// Byte order: the trie compares the first input byte of a field with the most significant
// byte of the rule's value (value and range bounds are host-order integers). Inputs must be
// big-endian, as rte_acl_classify() documents: addresses are (they come from the packet),
// but the key's ports are host order, so classify*() swaps them in a copy of the keys.
#include "dataplane/ruleset.hpp"

#include "config/loader.hpp"

#include <rte_acl.h>
#include <rte_byteorder.h>
#include <rte_errno.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <optional>
#include <stdexcept>

namespace syncwall::dp {

namespace {

using config::ConfigError;
using config::HostSpec;
using config::PfRule;
using config::PortRange;

__extension__ typedef unsigned __int128 u128;

constexpr std::size_t max_entries_per_rule = 100000;
constexpr std::size_t max_entries_total = 1000000;
constexpr std::size_t max_rules = 1000000;
constexpr unsigned max_classify_burst = 64;

// ---- ACL layout

enum Field4 : uint8_t {
    f4_proto,
    f4_proto_again,
    f4_iface_dir,
    f4_tcp_flags,
    f4_pad,
    f4_src,
    f4_dst,
    f4_sport,
    f4_dport,
    f4_count
};
enum Field6 : uint8_t {
    f6_proto,
    f6_proto_again,
    f6_iface_dir,
    f6_tcp_flags,
    f6_pad,
    f6_src, // four 32-bit words
    f6_dst = f6_src + 4,
    f6_sport = f6_dst + 4,
    f6_dport,
    f6_count
};

RTE_ACL_RULE_DEF(Acl4Rule, f4_count);
RTE_ACL_RULE_DEF(Acl6Rule, f6_count);

static_assert(offsetof(FilterKey4, proto) == 0 && offsetof(FilterKey4, iface_dir) == 1 &&
              offsetof(FilterKey4, tcp_flags) == 2 && offsetof(FilterKey4, pad) == 3 &&
              offsetof(FilterKey4, src) == 4 && offsetof(FilterKey4, dst) == 8 &&
              offsetof(FilterKey4, sport) == 12 && offsetof(FilterKey4, dport) == 14);
static_assert(offsetof(FilterKey6, proto) == 0 && offsetof(FilterKey6, iface_dir) == 1 &&
              offsetof(FilterKey6, tcp_flags) == 2 && offsetof(FilterKey6, pad) == 3 &&
              offsetof(FilterKey6, src) == 4 && offsetof(FilterKey6, dst) == 20 &&
              offsetof(FilterKey6, sport) == 36 && offsetof(FilterKey6, dport) == 38);

rte_acl_field_def field_def(uint8_t type, uint8_t size, uint8_t field, uint8_t input,
                            std::size_t offset) {
    rte_acl_field_def def{};
    def.type = type;
    def.size = size;
    def.field_index = field;
    def.input_index = input;
    def.offset = uint32_t(offset);
    return def;
}

// Input 0: proto; input 1: bytes 0..3 (proto again, always wild; iface_dir; tcp_flags;
// pad, always wild). Then one input per 4 address bytes, and one for both ports.
void header_defs(rte_acl_config &cfg) {
    cfg.defs[0] = field_def(RTE_ACL_FIELD_TYPE_BITMASK, 1, 0, 0, 0);
    cfg.defs[1] = field_def(RTE_ACL_FIELD_TYPE_BITMASK, 1, 1, 1, 0);
    cfg.defs[2] = field_def(RTE_ACL_FIELD_TYPE_BITMASK, 1, 2, 1, 1);
    cfg.defs[3] = field_def(RTE_ACL_FIELD_TYPE_BITMASK, 1, 3, 1, 2);
    cfg.defs[4] = field_def(RTE_ACL_FIELD_TYPE_BITMASK, 1, 4, 1, 3);
}

rte_acl_config config4() {
    rte_acl_config cfg{};
    cfg.num_categories = 1;
    cfg.num_fields = f4_count;
    header_defs(cfg);
    cfg.defs[f4_src] = field_def(RTE_ACL_FIELD_TYPE_MASK, 4, f4_src, 2, offsetof(FilterKey4, src));
    cfg.defs[f4_dst] = field_def(RTE_ACL_FIELD_TYPE_MASK, 4, f4_dst, 3, offsetof(FilterKey4, dst));
    cfg.defs[f4_sport] =
        field_def(RTE_ACL_FIELD_TYPE_RANGE, 2, f4_sport, 4, offsetof(FilterKey4, sport));
    cfg.defs[f4_dport] =
        field_def(RTE_ACL_FIELD_TYPE_RANGE, 2, f4_dport, 4, offsetof(FilterKey4, dport));
    return cfg;
}

rte_acl_config config6() {
    rte_acl_config cfg{};
    cfg.num_categories = 1;
    cfg.num_fields = f6_count;
    header_defs(cfg);
    for (uint8_t w = 0; w < 4; w++) {
        cfg.defs[f6_src + w] = field_def(RTE_ACL_FIELD_TYPE_MASK, 4, uint8_t(f6_src + w),
                                         uint8_t(2 + w), offsetof(FilterKey6, src) + 4u * w);
        cfg.defs[f6_dst + w] = field_def(RTE_ACL_FIELD_TYPE_MASK, 4, uint8_t(f6_dst + w),
                                         uint8_t(6 + w), offsetof(FilterKey6, dst) + 4u * w);
    }
    cfg.defs[f6_sport] =
        field_def(RTE_ACL_FIELD_TYPE_RANGE, 2, f6_sport, 10, offsetof(FilterKey6, sport));
    cfg.defs[f6_dport] =
        field_def(RTE_ACL_FIELD_TYPE_RANGE, 2, f6_dport, 10, offsetof(FilterKey6, dport));
    return cfg;
}

// ---- address sets: sorted, disjoint, non-adjacent intervals of a family's address space

struct Interval {
    u128 lo, hi; // inclusive
};
using Intervals = std::vector<Interval>;

struct Prefix {
    u128 value; // host order, right-aligned in the family's bits
    uint8_t length;
};

int family_bits(int family) {
    return family == 4 ? 32 : 128;
}

u128 space_max(int bits) {
    return bits == 128 ? ~u128(0) : (u128(1) << bits) - 1;
}

// The low `n` bits set.
u128 low_bits(int n) {
    return n >= 128 ? ~u128(0) : (u128(1) << n) - 1;
}

u128 address_value(const config::IpAddress &addr) {
    if (addr.is_v4()) return addr.v4_host_order();
    u128 v = 0;
    for (uint8_t b : addr.bytes)
        v = v << 8 | b;
    return v;
}

Interval prefix_interval(const config::IpAddress &addr, int length, int bits) {
    const u128 host = low_bits(bits - std::clamp(length, 0, bits));
    const u128 lo = address_value(addr) & ~host & space_max(bits);
    return {lo, lo | host};
}

Intervals normalise(Intervals set, int bits) {
    std::sort(set.begin(), set.end(),
              [](const Interval &a, const Interval &b) { return a.lo < b.lo; });
    Intervals out;
    for (const Interval &i : set) {
        if (!out.empty() && (out.back().hi == space_max(bits) || i.lo <= out.back().hi + 1)) {
            out.back().hi = std::max(out.back().hi, i.hi);
            continue;
        }
        out.push_back(i);
    }
    return out;
}

Intervals complement(const Intervals &set, int bits) {
    Intervals out;
    u128 next = 0;
    bool done = false; // the space is covered up to its end
    for (const Interval &i : set) {
        if (i.lo > next) out.push_back({next, i.lo - 1});
        if (i.hi == space_max(bits)) {
            done = true;
            break;
        }
        next = i.hi + 1;
    }
    if (!done) out.push_back({next, space_max(bits)});
    return out;
}

// The fewest prefixes that cover exactly `set` (which must be normalised): each interval's
// greedy CIDR split; intervals that are neither overlapping nor adjacent share no prefix.
std::vector<Prefix> to_prefixes(const Intervals &set, int bits) {
    std::vector<Prefix> out;
    for (Interval i : set) {
        for (;;) {
            int k = 0; // block of 2^k addresses at i.lo
            while (k < bits && (i.lo & low_bits(k + 1)) == 0 && i.hi - i.lo >= low_bits(k + 1))
                k++;
            out.push_back({i.lo, uint8_t(bits - k)});
            const u128 last = i.lo + low_bits(k);
            if (last >= i.hi) break;
            i.lo = last + 1;
        }
    }
    return out;
}

// ---- ports

std::vector<PortRange> port_ranges(const std::vector<config::PortSpec> &specs) {
    if (specs.empty()) return {{0, 65535}};
    std::vector<PortRange> all;
    for (const auto &spec : specs)
        for (const auto &r : spec.ranges())
            all.push_back(r);
    std::sort(all.begin(), all.end(),
              [](const PortRange &a, const PortRange &b) { return a.lo < b.lo; });
    std::vector<PortRange> out;
    for (const auto &r : all) {
        if (!out.empty() && uint32_t(r.lo) <= uint32_t(out.back().hi) + 1) {
            out.back().hi = std::max(out.back().hi, r.hi);
            continue;
        }
        out.push_back(r);
    }
    return out;
}

// ---- one pf rule

struct ProtoMatch {
    uint8_t value, mask, flags, flags_mask;
};

struct IfaceMatch {
    uint8_t value, mask;
};

struct L4Match {
    PortRange sport, dport;
};

// The parts of a rule whose cross product is its ACL entries.
struct Expansion {
    struct Variant {
        ProtoMatch proto;
        std::vector<L4Match> l4;
    };
    std::vector<Variant> variants;
    std::vector<IfaceMatch> ifaces;
    std::vector<Prefix> src[2], dst[2]; // [0] IPv4, [1] IPv6
};

std::size_t saturating_mul(std::size_t a, std::size_t b) {
    if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a)
        return std::numeric_limits<std::size_t>::max();
    return a * b;
}

std::size_t saturating_add(std::size_t a, std::size_t b) {
    return b > std::numeric_limits<std::size_t>::max() - a ? std::numeric_limits<std::size_t>::max()
                                                           : a + b;
}

class RuleCompiler {
  public:
    RuleCompiler(const config::Config &cfg, const PfRule &rule) : cfg_(cfg), rule_(rule) {}

    Expansion expand() const {
        Expansion e;
        e.variants = variants();
        e.ifaces = ifaces();
        for (int f = 0; f < 2; f++) {
            const int family = f == 0 ? 4 : 6;
            if (rule_.af != 0 && rule_.af != family) continue;
            e.src[f] = endpoint_prefixes(rule_.from, family);
            e.dst[f] = endpoint_prefixes(rule_.to, family);
        }
        return e;
    }

    [[noreturn]] void fail(const std::string &message) const {
        throw ConfigError(rule_.pos, "rule: " + message);
    }

  private:
    std::vector<Expansion::Variant> variants() const {
        const auto &protos = rule_.protos;
        const bool has_ports = !rule_.from.ports.empty() || !rule_.to.ports.empty();
        if (has_ports &&
            (protos.empty() || std::any_of(protos.begin(), protos.end(), [](uint8_t p) {
                 return p != config::ipproto_tcp && p != config::ipproto_udp;
             })))
            fail("port only applies to tcp/udp");
        if (!rule_.icmp_types.empty() && protos != std::vector<uint8_t>{config::ipproto_icmp} &&
            protos != std::vector<uint8_t>{config::ipproto_icmpv6})
            fail("icmp-type requires \"proto icmp\" or \"proto icmp6\" alone");

        const uint8_t flags_mask = rule_.flags_mask;
        const uint8_t flags = rule_.flags & flags_mask;
        const std::vector<L4Match> any_l4{{{0, 65535}, {0, 65535}}};
        std::vector<Expansion::Variant> out;
        if (protos.empty()) {
            // Flags apply to TCP only. Other packets carry tcp_flags 0, which passes a test
            // that wants no flag set; otherwise TCP with flags + every other protocol.
            if (flags == 0) {
                out.push_back({{0, 0, flags, flags_mask}, any_l4});
                return out;
            }
            out.push_back({{config::ipproto_tcp, 0xff, flags, flags_mask}, any_l4});
            for (int bit = 7; bit >= 0; bit--) { // protocols != tcp, as 8 disjoint blocks
                const uint8_t mask = uint8_t(0xff << bit);
                out.push_back(
                    {{uint8_t((config::ipproto_tcp & mask) ^ (1u << bit)), mask, 0, 0}, any_l4});
            }
            return out;
        }
        const auto sports = port_ranges(rule_.from.ports), dports = port_ranges(rule_.to.ports);
        for (uint8_t p : protos) {
            Expansion::Variant v{{p, 0xff, 0, 0}, {}};
            if (p == config::ipproto_tcp) v.proto = {p, 0xff, flags, flags_mask};
            if (p == config::ipproto_tcp || p == config::ipproto_udp) {
                for (const auto &s : sports)
                    for (const auto &d : dports)
                        v.l4.push_back({s, d});
            } else if (!rule_.icmp_types.empty()) {
                // ICMP: type in the source port, code in the destination port.
                for (const auto &t : rule_.icmp_types)
                    v.l4.push_back({{t.type, t.type},
                                    t.code < 0 ? PortRange{0, 65535}
                                               : PortRange{uint16_t(t.code), uint16_t(t.code)}});
            } else {
                v.l4 = any_l4;
            }
            out.push_back(std::move(v));
        }
        return out;
    }

    std::vector<IfaceMatch> ifaces() const {
        uint8_t dir = 0, dir_mask = 0;
        if (rule_.direction == config::Direction::in) dir_mask = 1;
        if (rule_.direction == config::Direction::out) dir = dir_mask = 1;
        if (rule_.iface.empty()) return {{dir, dir_mask}};
        if (cfg_.interfaces.size() > 127) fail("more than 127 interfaces");
        const int index = cfg_.interface_index(rule_.iface);
        if (index < 0) fail("unknown interface \"" + rule_.iface + "\"");
        const uint8_t mask = uint8_t(0xfe | dir_mask);
        if (!rule_.iface_negated) return {{uint8_t(index << 1 | dir), mask}};
        std::vector<IfaceMatch> out;
        for (int i = 0; i < int(cfg_.interfaces.size()); i++)
            if (i != index) out.push_back({uint8_t(i << 1 | dir), mask});
        return out;
    }

    // pf's host list: matches when any element does; `!X` matches every address of the
    // family that X does not. An address literal of the other family has no part in this
    // family, negated or not (pfctl makes it a rule of its own family).
    std::vector<Prefix> endpoint_prefixes(const config::Endpoint &endpoint, int family) const {
        const int bits = family_bits(family);
        Intervals set;
        for (const auto &host : endpoint.hosts) {
            auto base = host_set(host, family);
            if (!base) continue;
            Intervals part = normalise(std::move(*base), bits);
            if (host.negated) part = complement(part, bits);
            set.insert(set.end(), part.begin(), part.end());
        }
        return to_prefixes(normalise(std::move(set), bits), bits);
    }

    // The addresses of one (unnegated) host element in `family`; nullopt when the element
    // belongs to the other family.
    std::optional<Intervals> host_set(const HostSpec &host, int family) const {
        const int bits = family_bits(family);
        Intervals out;
        auto add = [&](const config::IpPrefix &p, bool whole_address) {
            if (p.addr.family == family)
                out.push_back(prefix_interval(p.addr, whole_address ? bits : p.length, bits));
        };
        switch (host.kind) {
        case HostSpec::Kind::any:
            out.push_back({0, space_max(bits)});
            break;
        case HostSpec::Kind::prefix:
            if (host.prefix.addr.family != family) return std::nullopt;
            add(host.prefix, false);
            break;
        case HostSpec::Kind::table: {
            auto it = std::find_if(cfg_.tables.begin(), cfg_.tables.end(),
                                   [&](const auto &t) { return t.name == host.name; });
            if (it == cfg_.tables.end()) fail("unknown table <" + host.name + ">");
            for (const auto &p : it->entries)
                add(p, false);
            break;
        }
        case HostSpec::Kind::iface_network:
        case HostSpec::Kind::iface_address: {
            const int index = cfg_.interface_index(host.name);
            if (index < 0) fail("unknown interface \"" + host.name + "\"");
            for (const auto &p : cfg_.interfaces[std::size_t(index)].addresses)
                add(p, host.kind == HostSpec::Kind::iface_address);
            break;
        }
        case HostSpec::Kind::self:
            for (const auto &iface : cfg_.interfaces)
                for (const auto &p : iface.addresses)
                    add(p, true);
            for (const auto &vhost : cfg_.carp.vhosts)
                for (const auto &p : vhost.addresses)
                    add(p, true);
            break;
        }
        return out;
    }

    const config::Config &cfg_;
    const PfRule &rule_;
};

std::size_t entry_count(const Expansion &e) {
    std::size_t l4 = 0;
    for (const auto &v : e.variants)
        l4 = saturating_add(l4, v.l4.size());
    const std::size_t per_pair = saturating_mul(l4, e.ifaces.size());
    std::size_t total = 0;
    for (int f = 0; f < 2; f++)
        total = saturating_add(
            total, saturating_mul(per_pair, saturating_mul(e.src[f].size(), e.dst[f].size())));
    return total;
}

void set_bitmask(rte_acl_field &field, uint8_t value, uint8_t mask) {
    field.value.u8 = uint8_t(value & mask);
    field.mask_range.u8 = mask;
}

void set_range(rte_acl_field &field, PortRange r) {
    field.value.u16 = r.lo;
    field.mask_range.u16 = r.hi;
}

// 32-bit word `w` (0 = most significant) of an IPv6 prefix, as a MASK field.
void set_word(rte_acl_field &field, const Prefix &p, int w) {
    field.value.u32 = uint32_t(p.value >> (96 - 32 * w));
    field.mask_range.u32 = uint32_t(std::clamp(int(p.length) - 32 * w, 0, 32));
}

template <typename AclRule>
void set_common(AclRule &r, const ProtoMatch &proto, const IfaceMatch &iface, int32_t priority,
                uint32_t userdata) {
    r.data.category_mask = 1;
    r.data.priority = priority;
    r.data.userdata = userdata;
    set_bitmask(r.field[0], proto.value, proto.mask);
    set_bitmask(r.field[1], 0, 0);
    set_bitmask(r.field[2], iface.value, iface.mask);
    set_bitmask(r.field[3], proto.flags, proto.flags_mask);
    set_bitmask(r.field[4], 0, 0);
}

void emit(const Expansion &e, int32_t priority, uint32_t userdata, std::vector<Acl4Rule> &out4,
          std::vector<Acl6Rule> &out6) {
    for (const auto &v : e.variants)
        for (const auto &l4 : v.l4)
            for (const auto &iface : e.ifaces) {
                for (const auto &s : e.src[0])
                    for (const auto &d : e.dst[0]) {
                        Acl4Rule r{};
                        set_common(r, v.proto, iface, priority, userdata);
                        r.field[f4_src].value.u32 = uint32_t(s.value);
                        r.field[f4_src].mask_range.u32 = s.length;
                        r.field[f4_dst].value.u32 = uint32_t(d.value);
                        r.field[f4_dst].mask_range.u32 = d.length;
                        set_range(r.field[f4_sport], l4.sport);
                        set_range(r.field[f4_dport], l4.dport);
                        out4.push_back(r);
                    }
                for (const auto &s : e.src[1])
                    for (const auto &d : e.dst[1]) {
                        Acl6Rule r{};
                        set_common(r, v.proto, iface, priority, userdata);
                        for (int w = 0; w < 4; w++) {
                            set_word(r.field[f6_src + w], s, w);
                            set_word(r.field[f6_dst + w], d, w);
                        }
                        set_range(r.field[f6_sport], l4.sport);
                        set_range(r.field[f6_dport], l4.dport);
                        out6.push_back(r);
                    }
            }
}

std::runtime_error acl_error(const std::string &what, const std::string &name, int err) {
    return std::runtime_error("ruleset: " + what + " for ACL context " + name + ": " +
                              rte_strerror(err));
}

// A built context of `rules`, or nullptr when there are none (rte_acl refuses to build an
// empty context; with no rules every packet takes the default rule).
template <typename AclRule>
rte_acl_ctx *build_context(const std::string &name, int socket_id,
                           const std::vector<AclRule> &rules, const rte_acl_config &cfg) {
    if (rules.empty()) return nullptr;
    if (name.size() >= RTE_ACL_NAMESIZE)
        throw std::runtime_error("ruleset: ACL context name " + name + " is too long");
    // rte_acl_create() hands back an existing context of the same name.
    if (rte_acl_find_existing(name.c_str()) != nullptr)
        throw std::runtime_error("ruleset: ACL context " + name + " already exists");
    rte_acl_param param{};
    param.name = name.c_str();
    param.socket_id = socket_id;
    param.rule_size = RTE_ACL_RULE_SZ(sizeof(AclRule::field) / sizeof(rte_acl_field));
    param.max_rule_num = uint32_t(rules.size());
    static_assert(sizeof(AclRule) ==
                  RTE_ACL_RULE_SZ(sizeof(AclRule::field) / sizeof(rte_acl_field)));
    rte_acl_ctx *ctx = rte_acl_create(&param);
    if (ctx == nullptr) throw acl_error("rte_acl_create", name, rte_errno);
    int rc = rte_acl_add_rules(ctx, reinterpret_cast<const rte_acl_rule *>(rules.data()),
                               uint32_t(rules.size()));
    if (rc == 0) {
        rc = rte_acl_build(ctx, &cfg);
        if (rc != 0) {
            rte_acl_free(ctx);
            throw acl_error("rte_acl_build", name, -rc);
        }
        return ctx;
    }
    rte_acl_free(ctx);
    throw acl_error("rte_acl_add_rules", name, -rc);
}

uint32_t result_of(uint32_t userdata) {
    return userdata == 0 ? Ruleset::default_rule : userdata - 1;
}

// The addresses a translation pool stands for, as address blocks, and its family.
CompiledTranslation resolve_pool(const config::Config &cfg, const PfRule &rule,
                                 const config::Translation &t, CompiledTranslation::Kind kind) {
    auto fail = [&](const std::string &m) -> void { throw ConfigError(rule.pos, "rule: " + m); };
    auto host_block = [](config::IpPrefix p) {
        p.length = p.addr.family == 4 ? 32 : 128;
        return p;
    };
    CompiledTranslation c;
    c.kind = kind;
    c.method = t.method;
    c.static_port = t.static_port;
    c.port_lo = t.port_lo;
    c.port_hi = t.port_hi;
    for (const HostSpec &h : t.pool) {
        switch (h.kind) {
        case HostSpec::Kind::prefix:
            c.blocks.push_back(h.prefix);
            break;
        case HostSpec::Kind::table: {
            auto it = std::find_if(cfg.tables.begin(), cfg.tables.end(),
                                   [&](const auto &tb) { return tb.name == h.name; });
            if (it == cfg.tables.end()) fail("unknown table <" + h.name + ">");
            c.blocks.insert(c.blocks.end(), it->entries.begin(), it->entries.end());
            break;
        }
        case HostSpec::Kind::iface_address: {
            const int index = cfg.interface_index(h.name);
            if (index < 0) fail("unknown interface \"" + h.name + "\"");
            // (IFNAME): the interface's CARP addresses when it has any, so that an HA pair
            // translates to an address that moves with mastership; else its own.
            std::size_t before = c.blocks.size();
            if (h.dynamic)
                for (const auto &v : cfg.carp.vhosts)
                    if (v.interface == h.name)
                        for (const auto &a : v.addresses)
                            c.blocks.push_back(host_block(a));
            if (c.blocks.size() == before)
                for (const auto &a : cfg.interfaces[std::size_t(index)].addresses)
                    c.blocks.push_back(host_block(a));
            break;
        }
        default:
            fail("a translation pool holds addresses, (interface)s or <table>s only");
        }
    }
    // pfctl takes a rule's family from its pool: one family per pool, the rule's if it has one.
    std::erase_if(c.blocks, [&](const config::IpPrefix &p) {
        return rule.af != 0 && p.addr.family != rule.af;
    });
    if (c.blocks.empty()) fail("the translation pool has no address of the rule's family");
    c.family = c.blocks.front().addr.family;
    for (const auto &b : c.blocks) {
        if (b.addr.family != c.family)
            fail("the translation pool mixes IPv4 and IPv6 addresses: write inet or inet6");
        const int host_bits = (c.family == 4 ? 32 : 128) - b.length;
        const uint64_t n = host_bits >= 32 ? (uint64_t(1) << 32) : uint64_t(1) << host_bits;
        c.size = std::min<uint64_t>(c.size + n, uint64_t(1) << 32);
    }
    if (kind == CompiledTranslation::Kind::nat && c.port_lo == 0 && !c.static_port) {
        c.port_lo = 50001; // pf's PF_NAT_PROXY_PORT_LOW..HIGH
        c.port_hi = 65535;
    }
    if (c.method == config::PoolMethod::none && c.size > 1)
        c.method = config::PoolMethod::round_robin;
    return c;
}

} // namespace

std::array<uint8_t, 16> CompiledTranslation::address(uint64_t i) const {
    for (const auto &b : blocks) {
        const int host_bits = (family == 4 ? 32 : 128) - b.length;
        const uint64_t n = host_bits >= 32 ? (uint64_t(1) << 32) : uint64_t(1) << host_bits;
        if (i >= n) {
            i -= n;
            continue;
        }
        std::array<uint8_t, 16> a = b.addr.bytes;
        const int len = family == 4 ? 4 : 16;
        // Add i to the block's (host-bits-clear) base, from the last byte up.
        uint64_t carry = i;
        for (int k = len - 1; k >= 0 && carry != 0; k--) {
            const uint64_t v = uint64_t(a[std::size_t(k)]) + (carry & 0xff);
            a[std::size_t(k)] = uint8_t(v);
            carry = (carry >> 8) + (v >> 8);
        }
        return a;
    }
    return blocks.empty() ? std::array<uint8_t, 16>{} : blocks.front().addr.bytes;
}

int32_t acl_priority(uint32_t number, bool quick, std::size_t rule_count) {
    // Quick: MAX .. MAX - n + 1, non-quick: 1 .. n. They do not meet while n < MAX / 2,
    // which the rule limit keeps.
    (void)rule_count;
    return quick ? int32_t(RTE_ACL_MAX_PRIORITY - number) : int32_t(number + 1);
}

Ruleset::Ruleset(const config::Config &cfg, std::vector<config::PfRule> rules, unsigned lcores,
                 const std::string &name, int socket_id)
    : rules_(std::move(rules)), lcores_(lcores) {
    if (rules_.size() > max_rules)
        throw std::runtime_error("ruleset: more than " + std::to_string(max_rules) + " rules");
    std::vector<Acl4Rule> acl4, match4;
    std::vector<Acl6Rule> acl6, match6;
    compiled_.reserve(rules_.size());
    for (std::size_t i = 0; i < rules_.size(); i++) {
        PfRule &rule = rules_[i];
        rule.number = uint32_t(i);
        CompiledRule c;
        using Kind = CompiledTranslation::Kind;
        auto add_translation = [&](const PfRule &r, const config::Translation &t, Kind kind) {
            if (translations_.size() >= CompiledRule::no_translation)
                throw ConfigError(r.pos, "rule: too many translations in the ruleset");
            translations_.push_back(resolve_pool(cfg, r, t, kind));
            return uint16_t(translations_.size() - 1);
        };
        // The halves the rule compiles into: itself, or binat-to's outbound nat-to and
        // inbound rdr-to (pf: "on IF from A to B binat-to X" is "out from A to B nat-to X
        // static-port" and "in from B to X rdr-to A").
        std::vector<PfRule> halves;
        if (rule.binat) {
            PfRule out = rule, in = rule;
            out.direction = config::Direction::out;
            out.nat.static_port = true;
            c.nat = add_translation(out, out.nat, Kind::nat);
            in.direction = config::Direction::in;
            in.nat = {};
            in.from = rule.to;
            in.to = config::Endpoint{rule.nat.pool, {}};
            in.rdr.set = true;
            in.rdr.pool = rule.from.hosts;
            c.rdr = add_translation(in, in.rdr, Kind::rdr);
            in.af = translations_[c.rdr].family;
            out.af = translations_[c.nat].family;
            halves.push_back(std::move(out));
            halves.push_back(std::move(in));
        } else {
            PfRule r = rule;
            if (rule.nat.set) {
                c.nat = add_translation(rule, rule.nat, Kind::nat);
                if (r.af == 0) r.af = translations_[c.nat].family;
            }
            if (rule.rdr.set) {
                c.rdr = add_translation(rule, rule.rdr, Kind::rdr);
                if (r.af == 0) r.af = translations_[c.rdr].family;
            }
            halves.push_back(std::move(r));
        }
        // Match rules that translate go to the match context; others change nothing here.
        const bool is_match = rule.action == config::Action::match;
        const bool emitted = !is_match || c.nat != CompiledRule::no_translation ||
                             c.rdr != CompiledRule::no_translation;
        for (const PfRule &half : halves) {
            if (!emitted) break;
            RuleCompiler compiler(cfg, half);
            const Expansion expansion = compiler.expand();
            const std::size_t entries = entry_count(expansion);
            if (entries > max_entries_per_rule)
                compiler.fail("the rule expands into more than " +
                              std::to_string(max_entries_per_rule) + " entries");
            if (acl4.size() + acl6.size() + match4.size() + match6.size() + entries >
                max_entries_total)
                compiler.fail("the ruleset expands into more than " +
                              std::to_string(max_entries_total) + " entries at this rule");
            emit(expansion, acl_priority(rule.number, rule.quick, rules_.size()), rule.number + 1,
                 is_match ? match4 : acl4, is_match ? match6 : acl6);
        }

        c.number = rule.number;
        c.action = rule.action;
        c.block_policy = rule.block_policy;
        c.quick = rule.quick;
        c.log = rule.log;
        c.keep_state = rule.state.keep_state;
        c.max_states = rule.state.max_states;
        c.timeouts = rule.state.timeouts;
        compiled_.push_back(c);
    }
    acl_rules_ = acl4.size() + acl6.size();
    // Plain new: each lcore touches only its own row.
    counters_.reset(new RuleCounters[std::size_t(lcores_) * compiled_.size()]);
    live_states_.reset(new std::atomic<uint32_t>[compiled_.size()]());

    try {
        acl4_ = build_context(name + "4", socket_id, acl4, config4());
        acl6_ = build_context(name + "6", socket_id, acl6, config6());
        match4_ = build_context(name + "m4", socket_id, match4, config4());
        match6_ = build_context(name + "m6", socket_id, match6, config6());
    } catch (...) {
        free_contexts();
        throw;
    }
    acl_rules_ += match4.size() + match6.size();
}

void Ruleset::free_contexts() {
    for (rte_acl_ctx **c : {&acl4_, &acl6_, &match4_, &match6_}) {
        rte_acl_free(*c);
        *c = nullptr;
    }
}

Ruleset::~Ruleset() {
    free_contexts();
}

namespace {

// rte_acl matches ports in network order; the keys carry them in host order.
template <class Key>
void classify_keys(const rte_acl_ctx *acl, const Key *const *keys, uint32_t *results, unsigned n) {
    if (acl == nullptr) {
        std::fill(results, results + n, Ruleset::default_rule);
        return;
    }
    Key copies[max_classify_burst];
    const uint8_t *data[max_classify_burst];
    for (unsigned done = 0; done < n; done += max_classify_burst) {
        const unsigned burst = std::min(n - done, max_classify_burst);
        for (unsigned i = 0; i < burst; i++) {
            copies[i] = *keys[done + i];
            copies[i].sport = rte_cpu_to_be_16(copies[i].sport);
            copies[i].dport = rte_cpu_to_be_16(copies[i].dport);
            data[i] = reinterpret_cast<const uint8_t *>(&copies[i]);
        }
        rte_acl_classify(acl, data, results + done, burst, 1);
        for (unsigned i = 0; i < burst; i++)
            results[done + i] = result_of(results[done + i]);
    }
}

} // namespace

void Ruleset::classify4(const FilterKey4 *const *keys, uint32_t *results, unsigned n) const {
    classify_keys(acl4_, keys, results, n);
}

void Ruleset::classify6(const FilterKey6 *const *keys, uint32_t *results, unsigned n) const {
    classify_keys(acl6_, keys, results, n);
}

void Ruleset::classify_match4(const FilterKey4 *const *keys, uint32_t *results, unsigned n) const {
    classify_keys(match4_, keys, results, n);
}

void Ruleset::classify_match6(const FilterKey6 *const *keys, uint32_t *results, unsigned n) const {
    classify_keys(match6_, keys, results, n);
}

Ruleset::RuleTotals Ruleset::totals(uint32_t rule) const {
    RuleTotals t;
    for (unsigned l = 0; l < lcores_; l++) {
        const RuleCounters &c = counters_[std::size_t(l) * size() + rule];
        t.matches += c.matches.get();
        t.packets += c.packets.get();
        t.bytes += c.bytes.get();
        t.states_created += c.states_created.get();
    }
    t.states = live_states_[rule].load(std::memory_order_relaxed);
    return t;
}

} // namespace syncwall::dp
