#include "control/mgmt/prometheus.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <utility>
#include <vector>

namespace syncwall::ctl {

namespace {

using Labels = std::vector<std::pair<std::string_view, std::string>>;

constexpr std::string_view counter = "counter";
constexpr std::string_view gauge = "gauge";

// The families in the order they first get a sample; each family's samples stay together,
// as the format requires, whatever order the results list them in.
class Page {
  public:
    // `suffix` names a histogram's samples (_bucket, _sum, _count) within its family.
    void add(std::string_view name, std::string_view type, std::string_view help,
             const Labels &labels, const std::string &value, std::string_view suffix = {}) {
        Family *f = nullptr;
        for (auto &each : families_)
            if (each.name == name) f = &each;
        if (f == nullptr) {
            families_.push_back(
                Family{std::string(name), std::string(type), std::string(help), {}});
            f = &families_.back();
        }
        f->samples += "syncwall_";
        f->samples += name;
        f->samples += suffix;
        if (!labels.empty()) {
            f->samples += '{';
            for (std::size_t i = 0; i < labels.size(); i++) {
                if (i != 0) f->samples += ',';
                f->samples += labels[i].first;
                f->samples += "=\"";
                f->samples += prometheus_escape_label(labels[i].second);
                f->samples += '"';
            }
            f->samples += '}';
        }
        f->samples += ' ';
        f->samples += value;
        f->samples += '\n';
    }

    std::string text() const {
        std::string out;
        for (const auto &f : families_) {
            out += "# HELP syncwall_" + f.name + " " + prometheus_escape_help(f.help) + "\n";
            out += "# TYPE syncwall_" + f.name + " " + f.type + "\n";
            out += f.samples;
        }
        return out;
    }

  private:
    struct Family {
        std::string name; // without the prefix
        std::string type;
        std::string help;
        std::string samples;
    };
    std::vector<Family> families_;
};

// obj[key] when obj is an object that has it.
const Json *member(const Json *obj, std::string_view key) {
    if (obj == nullptr || !obj->is_object()) return nullptr;
    const auto it = obj->find(std::string(key));
    return it == obj->end() ? nullptr : &*it;
}

std::string float_text(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char text[64];
    const auto r = std::to_chars(text, text + sizeof(text), v);
    return std::string(text, r.ptr);
}

// A sample value from a JSON number or boolean; nothing for anything else.
std::optional<std::string> value_text(const Json *j, double scale = 1) {
    if (j == nullptr) return std::nullopt;
    if (j->is_boolean()) return j->get<bool>() ? "1" : "0";
    if (!j->is_number()) return std::nullopt;
    if (scale != 1) return float_text(j->get<double>() * scale);
    if (j->is_number_unsigned()) return std::to_string(j->get<uint64_t>());
    if (j->is_number_integer()) return std::to_string(j->get<int64_t>());
    return float_text(j->get<double>());
}

// A label value from a JSON string or number.
std::optional<std::string> label_text(const Json *j) {
    if (j == nullptr) return std::nullopt;
    if (j->is_string()) return j->get<std::string>();
    if (j->is_number_unsigned()) return std::to_string(j->get<uint64_t>());
    if (j->is_number_integer()) return std::to_string(j->get<int64_t>());
    return std::nullopt;
}

void add(Page &page, std::string_view name, std::string_view type, std::string_view help,
         const Labels &labels, const Json *j, double scale = 1) {
    if (auto v = value_text(j, scale)) page.add(name, type, help, labels, *v);
}

// One sample per member of a {"name": n, ...} object, the member's name in `label`.
void add_each(Page &page, std::string_view name, std::string_view type, std::string_view help,
              Labels labels, std::string_view label, const Json *obj) {
    if (obj == nullptr || !obj->is_object()) return;
    labels.emplace_back(label, std::string());
    for (const auto &[key, value] : obj->items()) {
        labels.back().second = key;
        add(page, name, type, help, labels, &value);
    }
}

// A result that says it is not available (CARP or pfsync not running) has no metrics.
bool available(const Json &result) {
    if (!result.is_object()) return false;
    const Json *a = member(&result, "available");
    return a == nullptr || !a->is_boolean() || a->get<bool>();
}

// show info's "main_loop" (loop_stall.hpp) as a histogram in seconds, and its longest pass.
void main_loop_metrics(Page &page, const Json *loop) {
    const Json *buckets = member(loop, "buckets");
    if (buckets == nullptr || !buckets->is_array()) return;
    constexpr std::string_view name = "main_loop_pass_seconds";
    constexpr std::string_view help =
        "Time the main lcore spent per pass of its loop, away from its timers (CARP adverts).";
    std::string count;
    for (const auto &b : *buckets) {
        const Json *le = member(&b, "le_ms");
        const auto n = value_text(member(&b, "count"));
        if (le == nullptr || !n) continue;
        const std::string bound = le->is_number() ? float_text(le->get<double>() / 1000) : "+Inf";
        page.add(name, "histogram", help, {{"le", bound}}, *n, "_bucket");
        if (!le->is_number()) count = *n;
    }
    if (auto sum = value_text(member(loop, "sum_ms"), 0.001))
        page.add(name, "histogram", help, {}, *sum, "_sum");
    if (!count.empty()) page.add(name, "histogram", help, {}, count, "_count");
    add(page, "main_loop_longest_pass_seconds", gauge,
        "The longest pass of the main lcore's loop since start.", {}, member(loop, "longest_ms"),
        0.001);
}

void info_metrics(Page &page, const Json &info) {
    if (!available(info)) return;
    const Json *r = &info;
    if (auto node = label_text(member(r, "node"))) {
        Labels labels{{"node", *node}};
        if (auto hostid = label_text(member(r, "hostid"))) labels.emplace_back("hostid", *hostid);
        page.add("info", gauge, "This node: its name and hostid (always 1).", labels, "1");
    }
    add(page, "running", gauge, "1 while the dataplane runs, 0 while it stops.", {},
        member(r, "running"));
    add(page, "uptime_seconds", gauge, "Seconds since the dataplane started.", {},
        member(r, "uptime"));
    if (const Json *ports = member(r, "ports"); ports && ports->is_array()) {
        for (const auto &p : *ports) {
            const auto iface = label_text(member(&p, "name"));
            if (!iface) continue;
            for (const auto dir : {"rx", "tx"}) {
                const Labels labels{{"interface", *iface}, {"direction", dir}};
                add(page, "interface_packets_total", counter,
                    "Packets received (rx) or sent (tx) on an interface.", labels,
                    member(&p, std::string(dir) + "_packets"));
                add(page, "interface_bytes_total", counter,
                    "Bytes received (rx) or sent (tx) on an interface.", labels,
                    member(&p, std::string(dir) + "_bytes"));
            }
        }
    }
    add_each(page, "drops_total", counter, "Packets dropped, by reason.", {}, "reason",
             member(r, "drops"));
    const Json *counters = member(r, "counters");
    add(page, "forwarded_packets_total", counter, "Packets forwarded by the workers.", {},
        member(counters, "forwarded"));
    add(page, "punted_packets_total", counter,
        "Packets handed to the main lcore (ARP, ICMP to us, ...).", {}, member(counters, "punted"));
    add(page, "handed_off_packets_total", counter,
        "Packets a worker handed to the worker that owns their state.", {},
        member(counters, "handed_off"));
    add(page, "pflog_dropped_total", counter,
        "Log entries of `log` rules dropped because the pflog ring was full.", {},
        member(counters, "pflog_dropped"));
    const Json *states = member(r, "states");
    add(page, "states", gauge, "States in the state table.", {}, member(states, "current"));
    add(page, "states_limit", gauge, "Capacity of the state table (limits.states).", {},
        member(states, "limit"));
    add(page, "state_inserts_total", counter, "States inserted.", {}, member(states, "inserts"));
    add(page, "state_removals_total", counter, "States removed.", {}, member(states, "removals"));
    for (const auto &[reason, key] :
         {std::pair{"exists", "insert_exists"}, {"full", "insert_full"}})
        add(page, "state_insert_failures_total", counter,
            "State inserts refused: the key or id existed, or the table was full.",
            {{"reason", reason}}, member(states, key));
    const Json *memory = member(r, "memory");
    add(page, "state_table_bytes", gauge,
        "Bytes the state table takes (slots, indexes, free map, RCU defer queue).", {},
        member(memory, "state_table_bytes"));
    add(page, "state_table_huge_page_bytes", gauge,
        "Bytes of the state table the kernel backed with 2 MiB transparent huge pages at "
        "start (0 on EAL's heap).",
        {}, member(memory, "state_table_huge_page_bytes"));
    main_loop_metrics(page, member(r, "main_loop"));
}

void sync_metrics(Page &page, const Json &sync) {
    if (!available(sync)) return;
    const Json *r = &sync;
    add(page, "sync_enabled", gauge, "1 if pfsync is enabled.", {}, member(r, "enabled"));
    for (const auto dir : {"sent", "received"}) {
        const Json *d = member(r, dir);
        if (d == nullptr || !d->is_object()) continue;
        const Labels labels{{"direction", dir}};
        add(page, "sync_packets_total", counter, "pfsync packets sent or received.", labels,
            member(d, "packets"));
        add(page, "sync_bytes_total", counter, "pfsync bytes sent or received.", labels,
            member(d, "bytes"));
        for (const auto &[action, value] : d->items()) {
            if (action == "packets" || action == "bytes") continue;
            add(page, "sync_messages_total", counter,
                "pfsync messages sent or received, by action (ins, upd_c, del_c, ...).",
                {{"direction", dir}, {"action", action}}, &value);
        }
    }
    add_each(page, "sync_errors_total", counter, "pfsync packets or messages rejected, by reason.",
             {}, "reason", member(r, "errors"));
    add(page, "sync_stale_total", counter,
        "Received updates ignored because they would move a state backwards.", {},
        member(r, "stale"));
    add(page, "sync_ring_full_total", counter,
        "State changes not queued for pfsync because a delta ring was full.", {},
        member(r, "ring_full"));
    add(page, "sync_queue_depth", gauge, "State changes waiting to be sent.", {},
        member(r, "queue_depth"));
    add(page, "sync_lag_seconds", gauge, "Age of the oldest state change waiting to be sent.", {},
        member(r, "lag_ms"), 0.001);
    const Json *bulk = member(r, "bulk");
    if (const Json *status = member(bulk, "status"); status && status->is_string()) {
        // One sample per status, 1 for the current one: the usual encoding of an enum.
        std::vector<std::string> statuses{"none", "requested", "receiving", "done", "failed"};
        const std::string current = status->get<std::string>();
        if (std::find(statuses.begin(), statuses.end(), current) == statuses.end())
            statuses.push_back(current);
        for (const auto &s : statuses)
            page.add("sync_bulk_status", gauge,
                     "Bulk update this node asked for: 1 for its current status.", {{"status", s}},
                     s == current ? "1" : "0");
    }
    add(page, "sync_bulk_requests_total", counter, "Bulk updates requested by this node.", {},
        member(bulk, "requests"));
    add(page, "sync_bulk_received_states_total", counter, "States received in bulk updates.", {},
        member(bulk, "received_states"));
    add(page, "sync_bulk_sending", gauge, "1 while this node sends a bulk update to a peer.", {},
        member(bulk, "sending"));
    add(page, "sync_bulk_sent_states_total", counter, "States sent in bulk updates.", {},
        member(bulk, "sent_states"));
}

void carp_metrics(Page &page, const Json &carp) {
    if (!available(carp)) return;
    const Json *r = &carp;
    add(page, "carp_preempt", gauge, "1 if CARP preemption is on.", {}, member(r, "preempt"));
    add(page, "carp_demotion", gauge, "CARP demotion counter of this node.", {},
        member(r, "demotion"));
    if (const Json *reasons = member(r, "demotion_reasons"); reasons && reasons->is_array())
        for (const auto &d : *reasons)
            if (auto reason = label_text(member(&d, "reason")))
                add(page, "carp_demotion_reason", gauge, "CARP demotion, by its reason.",
                    {{"reason", *reason}}, member(&d, "value"));
    const Json *vhids = member(r, "vhids");
    if (vhids == nullptr || !vhids->is_array()) return;
    for (const auto &v : *vhids) {
        const auto vhid = label_text(member(&v, "vhid"));
        if (!vhid) continue;
        const Labels labels{{"vhid", *vhid},
                            {"interface", label_text(member(&v, "interface")).value_or("")}};
        if (const Json *role = member(&v, "role"); role && role->is_string()) {
            const std::string name = role->get<std::string>();
            const char *code = name == "init"     ? "0"
                               : name == "backup" ? "1"
                               : name == "master" ? "2"
                                                  : nullptr;
            if (code)
                page.add("carp_role", gauge,
                         "CARP role of a virtual host: 0 init, 1 backup, 2 master.", labels, code);
        }
        add(page, "carp_advbase_seconds", gauge, "CARP advertisement base interval.", labels,
            member(&v, "advbase"));
        add(page, "carp_advskew", gauge, "CARP advskew as configured.", labels,
            member(&v, "advskew"));
        add(page, "carp_advert_interval_seconds", gauge,
            "CARP advertisement interval: advbase + advertised advskew/256.", labels,
            member(&v, "advert_interval_ms"), 0.001);
        add(page, "carp_master_down_seconds", gauge,
            "Silence after which a CARP backup takes over: 3 advertisement intervals.", labels,
            member(&v, "master_down_ms"), 0.001);
        add(page, "carp_effective_advskew", gauge, "CARP advskew as advertised (with demotion).",
            labels, member(&v, "effective_advskew"));
        add(page, "carp_demote", gauge, "Demote value this virtual host advertises.", labels,
            member(&v, "demote"));
        add(page, "carp_transitions_total", counter, "CARP role changes of a virtual host.", labels,
            member(&v, "transitions"));
        add(page, "carp_adverts_sent_total", counter, "CARP advertisements sent.", labels,
            member(&v, "adverts_sent"));
        add(page, "carp_adverts_received_total", counter, "CARP advertisements received.", labels,
            member(&v, "adverts_received"));
        add_each(page, "carp_adverts_rejected_total", counter,
                 "CARP advertisements rejected, by reason.", labels, "reason",
                 member(&v, "adverts_rejected"));
    }
}

} // namespace

std::string prometheus_escape_label(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string prometheus_escape_help(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string prometheus_text(const Json &info, const Json &carp, const Json &sync) {
    Page page;
    info_metrics(page, info);
    sync_metrics(page, sync);
    carp_metrics(page, carp);
    return page.text();
}

} // namespace syncwall::ctl
