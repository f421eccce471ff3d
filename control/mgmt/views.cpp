#include "control/mgmt/views.hpp"

#include "config/pf_rule.hpp"
#include "control/mgmt/commands.hpp"

#include <array>
#include <cstdarg>
#include <cstdio>

namespace syncwall::ctl {

namespace {

__attribute__((format(printf, 1, 2))) std::string strf(const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    va_list again;
    va_copy(again, ap);
    const int n = std::vsnprintf(nullptr, 0, format, ap);
    va_end(ap);
    std::string out(n > 0 ? std::size_t(n) : 0, '\0');
    if (n > 0) std::vsnprintf(out.data(), out.size() + 1, format, again);
    va_end(again);
    return out;
}

unsigned long long u64(const Json &j, const char *key) {
    return j.at(key).get<unsigned long long>();
}

// BSD's tcpstates[] (tcp_fsm.h) and pf's PFUDPS_NAMES / PFOTHERS_NAMES.
constexpr std::array<const char *, 11> tcp_state_names = {
    "CLOSED",     "LISTEN",  "SYN_SENT", "SYN_RCVD",   "ESTABLISHED", "CLOSE_WAIT",
    "FIN_WAIT_1", "CLOSING", "LAST_ACK", "FIN_WAIT_2", "TIME_WAIT"};
constexpr std::array<const char *, 3> pseudo_state_names = {"NO_TRAFFIC", "SINGLE", "MULTIPLE"};

// pfctl's print_host: "192.0.2.1:80", "2001:db8::1[80]", no port part when it is 0.
std::string host(const std::string &addr, unsigned port, unsigned af) {
    if (port == 0) return addr;
    return af == 6 ? strf("%s[%u]", addr.c_str(), port) : strf("%s:%u", addr.c_str(), port);
}

// pfctl's print_seq: "[seqlo + seqhi-seqlo]", and "(+seqdiff)" when modulated.
std::string seq(const Json &peer) {
    const auto lo = peer.at("seqlo").get<uint32_t>();
    const auto hi = peer.at("seqhi").get<uint32_t>();
    const auto diff = peer.at("seqdiff").get<uint32_t>();
    std::string out = strf("[%u + %u]", lo, uint32_t(hi - lo));
    if (diff != 0) out += strf("(+%u)", diff);
    return out;
}

std::string hms(uint64_t seconds) {
    return strf("%.2llu:%.2llu:%.2llu", (unsigned long long)(seconds / 3600),
                (unsigned long long)(seconds / 60 % 60), (unsigned long long)(seconds % 60));
}

// A "  name   total   rate/s" row of pfctl -si; no rate when the uptime is unknown (0).
std::string counter_row(const std::string &name, unsigned long long total, uint64_t uptime) {
    std::string out = strf("  %-25s %14llu ", name.c_str(), total);
    if (uptime > 0)
        out += strf("%14.1f/s\n", double(total) / double(uptime));
    else
        out += strf("%14s\n", "");
    return out;
}

} // namespace

std::string peer_state_names(uint8_t proto, uint8_t first, uint8_t second) {
    if (proto == config::ipproto_tcp) {
        if (first < tcp_state_names.size() && second < tcp_state_names.size())
            return strf("%s:%s", tcp_state_names[first], tcp_state_names[second]);
        return strf("<BAD STATE LEVELS %u:%u>", first, second);
    }
    // ICMP has no state levels: pfctl prints the numbers.
    if (proto != config::ipproto_icmp && proto != config::ipproto_icmpv6 &&
        first < pseudo_state_names.size() && second < pseudo_state_names.size())
        return strf("%s:%s", pseudo_state_names[first], pseudo_state_names[second]);
    return strf("%u:%u", first, second);
}

std::string format_state(const Json &s, bool verbose) {
    const auto proto = s.at("proto").get<uint8_t>();
    const auto af = s.at("af").get<unsigned>();
    const bool out = s.at("direction").get<std::string>() == "out";
    const auto &addr = s.at("addr");
    const auto &port = s.at("port");
    // pfctl's print_state: the key's [1] side, the arrow of the direction, the [0] side;
    // the peers in the order of the key's sides (so swapped for an inbound state).
    const Json &first = out ? s.at("src") : s.at("dst");
    const Json &second = out ? s.at("dst") : s.at("src");
    // A translated state: pfctl prints the other key's side, and the state's own in
    // parentheses where they differ ("198.51.100.1:61234 (192.0.2.10:40000) -> ...").
    const Json *nat = s.contains("nat") ? &s.at("nat") : nullptr;
    auto side = [&](int i) {
        const std::string own = host(addr.at(i).get<std::string>(), port.at(i).get<unsigned>(), af);
        if (nat == nullptr) return own;
        const std::string other = host(nat->at("addr").at(i).get<std::string>(),
                                       nat->at("port").at(i).get<unsigned>(), af);
        return other == own ? own : other + " (" + own + ")";
    };
    // States float (pf's "all"): they match on every interface.
    std::string text = "all " + protocol_name(proto) + " " + side(1) + (out ? " -> " : " <- ") +
                       side(0) + "       " +
                       peer_state_names(proto, first.at("state").get<uint8_t>(),
                                        second.at("state").get<uint8_t>()) +
                       "\n";
    if (!verbose) return text;
    if (proto == config::ipproto_tcp) {
        const auto ws1 = first.at("wscale").get<uint8_t>(),
                   ws2 = second.at("wscale").get<uint8_t>();
        const bool scaled = ws1 != 0 && ws2 != 0;
        text += "   " + seq(first);
        if (scaled) text += strf(" wscale %u", ws1 & 0x0fu);
        text += "  " + seq(second);
        if (scaled) text += strf(" wscale %u", ws2 & 0x0fu);
        text += "\n";
    }
    const auto &packets = s.at("packets");
    const auto &bytes = s.at("bytes");
    text += "   age " + hms(u64(s, "age")) + ", expires in " + hms(u64(s, "expires_in")) +
            strf(", %llu:%llu pkts, %llu:%llu bytes", packets.at(0).get<unsigned long long>(),
                 packets.at(1).get<unsigned long long>(), bytes.at(0).get<unsigned long long>(),
                 bytes.at(1).get<unsigned long long>());
    if (!s.at("rule").is_null()) text += strf(", rule %llu", u64(s, "rule"));
    text += "\n";
    text += strf("   id: %s creatorid: %08x\n", s.at("id").get<std::string>().c_str(),
                 s.at("creatorid").get<uint32_t>());
    return text;
}

std::string format_states(const Json &result, bool verbose) {
    std::string text;
    for (const auto &s : result.at("states"))
        text += format_state(s, verbose);
    return text;
}

std::string format_info(const Json &r) {
    const uint64_t uptime = u64(r, "uptime");
    const std::string status =
        strf("Status: %s for %llu days %s", r.at("running").get<bool>() ? "Enabled" : "Disabled",
             (unsigned long long)(uptime / 86400), hms(uptime % 86400).c_str());
    std::string text = strf("%-44s%18s\n\n", status.c_str(),
                            strf("Hostid: 0x%08x", r.at("hostid").get<uint32_t>()).c_str());
    for (const auto &p : r.at("ports")) {
        const std::string head = "Interface Stats for " + p.at("name").get<std::string>();
        text += strf("%-27s %14s %16s\n", head.c_str(), "Total", "Rate");
        text += counter_row("Bytes In", u64(p, "rx_bytes"), uptime);
        text += counter_row("Bytes Out", u64(p, "tx_bytes"), uptime);
        text += counter_row("Packets In", u64(p, "rx_packets"), uptime);
        text += counter_row("Packets Out", u64(p, "tx_packets"), uptime);
        text += "\n";
    }
    const auto &st = r.at("states");
    text += strf("%-27s %14s %16s\n", "State Table", "Total", "Rate");
    text += strf("  %-25s %14llu %14s\n", "current entries", u64(st, "current"), "");
    // pf's "searches" has no counterpart: lookups are not counted on the hot path.
    text += counter_row("inserts", u64(st, "inserts"), uptime);
    text += counter_row("removals", u64(st, "removals"), uptime);
    if (r.contains("fragments")) {
        const auto &f = r.at("fragments");
        text += strf("%-27s %14s %16s\n", "Fragments", "Total", "Rate");
        text += strf("  %-25s %14llu %14s\n", "held", u64(f, "held"), "");
        text += counter_row("reassembled", u64(f, "reassembled"), uptime);
        text += counter_row("refragmented", u64(f, "refragmented"), uptime);
        text += counter_row("timed out", u64(f, "timed_out"), uptime);
    }
    text += "Counters\n";
    const auto &c = r.at("counters");
    text += counter_row("forwarded", u64(c, "forwarded"), uptime);
    text += counter_row("punted", u64(c, "punted"), uptime);
    if (c.contains("handed_off")) text += counter_row("handed off", u64(c, "handed_off"), uptime);
    for (const auto &[reason, count] : r.at("drops").items())
        text += counter_row(reason, count.get<unsigned long long>(), uptime);
    if (r.contains("main_loop")) {
        // How long the main lcore went without serving its timers (CARP adverts).
        const auto &loop = r.at("main_loop");
        unsigned long long over_50ms = 0;
        for (const auto &b : loop.at("buckets"))
            if (b.at("le_ms").is_number() && b.at("le_ms").get<double>() == 50.0)
                over_50ms = u64(loop, "passes") - u64(b, "count");
        text += "Main loop\n";
        text += strf("  %-25s %14.3f ms\n", "longest pass", loop.at("longest_ms").get<double>());
        text += strf("  %-25s %14llu\n", "passes", u64(loop, "passes"));
        text += strf("  %-25s %14llu\n", "passes over 50 ms", over_50ms);
    }
    return text;
}

std::string format_rules(const Json &result) {
    std::string text;
    for (const auto &rule : result.at("rules")) {
        text += strf("@%llu %s\n", u64(rule, "number"), rule.at("text").get<std::string>().c_str());
        // pfctl's first field is "Evaluations"; rte_acl classifies a packet against every
        // rule at once and reports only the deciding one, so syncwall counts how often a
        // rule decided ("Matches") instead.
        text += strf("  [ Matches: %-8llu  Packets: %-8llu  Bytes: %-10llu  States: %-6llu]\n",
                     u64(rule, "matches"), u64(rule, "packets"), u64(rule, "bytes"),
                     u64(rule, "states"));
        text += strf("  [ State Creations: %-6llu]\n", u64(rule, "states_created"));
    }
    return text;
}

std::string format_interfaces(const Json &result) {
    std::string text;
    for (const auto &p : result.at("interfaces")) {
        text += strf("%s: port %llu mtu %llu%s\n", p.at("name").get<std::string>().c_str(),
                     u64(p, "port_id"), u64(p, "mtu"), p.at("sync").get<bool>() ? " (sync)" : "");
        text += "\tlladdr " + p.at("mac").get<std::string>() + "\n";
        text += "\tdevargs " + p.at("devargs").get<std::string>() + "\n";
        for (const auto &a : p.at("addresses")) {
            const std::string prefix = a.get<std::string>();
            text +=
                (prefix.find(':') != std::string::npos ? "\tinet6 " : "\tinet ") + prefix + "\n";
        }
        if (p.contains("rx_checksums_by_device")) {
            const Json &checksums = p.at("rx_checksums_by_device");
            text += checksums.empty() ? "\trx checksums summed by syncwall\n"
                                      : "\trx checksums verified by the device:";
            for (const auto &c : checksums)
                text.append(" ").append(c.get<std::string>());
            if (!checksums.empty()) text += "\n";
        }
        text +=
            strf("\trx %llu packets %llu bytes, tx %llu packets %llu bytes\n", u64(p, "rx_packets"),
                 u64(p, "rx_bytes"), u64(p, "tx_packets"), u64(p, "tx_bytes"));
    }
    return text;
}

std::string format_availability(std::string_view what, const Json &result) {
    if (!result.at("available").get<bool>()) {
        return std::string(what) + ": not available: " + result.at("reason").get<std::string>() +
               "\n";
    }
    return result.dump(2) + "\n";
}

std::string format_carp(const Json &result) {
    if (!result.at("available").get<bool>()) return format_availability("carp", result);
    std::string text =
        strf("carp: preempt %s, demotion %llu\n", result.at("preempt").get<bool>() ? "yes" : "no",
             u64(result, "demotion"));
    for (const auto &r : result.at("demotion_reasons"))
        text += strf("\tdemoted by %s: %llu\n", r.at("reason").get<std::string>().c_str(),
                     u64(r, "value"));
    for (const auto &v : result.at("vhids")) {
        std::string role = v.at("role").get<std::string>();
        for (char &c : role)
            c = char(c - 'a' + 'A');
        text += strf("vhid %llu on %s: %s advbase %llu advskew %llu", u64(v, "vhid"),
                     v.at("interface").get<std::string>().c_str(), role.c_str(), u64(v, "advbase"),
                     u64(v, "advskew"));
        if (u64(v, "effective_advskew") != u64(v, "advskew") || u64(v, "demote") != 0)
            text += strf(" (advertised advskew %llu, demote %llu)", u64(v, "effective_advskew"),
                         u64(v, "demote"));
        text += "\n";
        if (v.contains("advert_interval_ms") && v.contains("master_down_ms"))
            text += strf("\tadvert every %.3f ms, master down after %.3f ms\n",
                         v.at("advert_interval_ms").get<double>(),
                         v.at("master_down_ms").get<double>());
        for (const auto &a : v.at("addresses")) {
            const std::string prefix = a.get<std::string>();
            text +=
                (prefix.find(':') != std::string::npos ? "\tinet6 " : "\tinet ") + prefix + "\n";
        }
        const auto transitions = u64(v, "transitions");
        text += strf("\t%llu transition%s", transitions, transitions == 1 ? "" : "s");
        const std::string last = v.at("last_reason").get<std::string>();
        if (!last.empty()) text += ", last: " + last;
        text += "\n";
        unsigned long long rejected = 0;
        std::string why;
        for (const auto &[reason, n] : v.at("adverts_rejected").items()) {
            const auto count = n.get<unsigned long long>();
            if (count == 0) continue;
            rejected += count;
            why += strf("%s%s %llu", why.empty() ? "" : ", ", reason.c_str(), count);
        }
        text += strf("\tadverts: %llu sent, %llu received, %llu rejected", u64(v, "adverts_sent"),
                     u64(v, "adverts_received"), rejected);
        if (!why.empty()) text += " (" + why + ")";
        text += "\n";
    }
    return text;
}

// pfsync's status, like `ifconfig pfsync0` plus `netstat -s -p pfsync`.
std::string format_sync(const Json &result) {
    if (!result.at("available").get<bool>()) return format_availability("sync", result);
    std::string text = strf("pfsync: on %s to %s%s, creatorid %08llx%s\n",
                            result.at("interface").get<std::string>().c_str(),
                            result.at("peer").get<std::string>().c_str(),
                            result.value("peer_resolved", true) ? "" : " (peer MAC unresolved)",
                            u64(result, "creatorid"),
                            result.value("authenticated", false) ? ", authenticated" : "");
    const Json &bulk = result.at("bulk");
    text += strf("\tbulk update: %s (%llu request%s, %llu states received)",
                 bulk.at("status").get<std::string>().c_str(), u64(bulk, "requests"),
                 u64(bulk, "requests") == 1 ? "" : "s", u64(bulk, "received_states"));
    if (bulk.value("sending", false)) text += ", sending one to a peer";
    text += strf("; %llu states sent in %llu bulk transfers\n", u64(bulk, "sent_states"),
                 u64(bulk, "sends"));
    text += strf(
        "\tqueue %llu, lag %llu ms (max %llu ms), %llu coalesced, %llu ring full, %llu stale\n",
        u64(result, "queue_depth"), u64(result, "lag_ms"), u64(result, "max_lag_ms"),
        u64(result, "coalesced"), u64(result, "ring_full"), u64(result, "stale"));
    for (const char *dir : {"sent", "received"}) {
        const Json &d = result.at(dir);
        text += strf("\t%-8s %llu packets, %llu bytes:", dir, u64(d, "packets"), u64(d, "bytes"));
        for (const auto &[action, n] : d.items())
            if (action != "packets" && action != "bytes" && n.get<unsigned long long>() != 0)
                text += strf(" %s %llu", action.c_str(), n.get<unsigned long long>());
        text += "\n";
    }
    std::string errors;
    for (const auto &[reason, n] : result.at("errors").items())
        if (n.get<unsigned long long>() != 0)
            errors += strf("%s %s %llu", errors.empty() ? "" : ",", reason.c_str(),
                           n.get<unsigned long long>());
    text += "\terrors:" + (errors.empty() ? std::string(" none") : errors) + "\n";
    return text;
}

std::string format_reload(const Json &result) {
    return strf("reloaded: %llu rules\n", u64(result, "rules"));
}

std::string format_kill(const Json &result) {
    const auto n = u64(result, "killed");
    return strf("killed %llu state%s\n", n, n == 1 ? "" : "s");
}

std::string format_exit_counters(const Json &info, const Json &sync) {
    std::string o;
    for (const auto &p : info.at("ports"))
        o += strf("port %s rx_packets %llu rx_bytes %llu tx_packets %llu tx_bytes %llu\n",
                  p.at("name").get<std::string>().c_str(), u64(p, "rx_packets"), u64(p, "rx_bytes"),
                  u64(p, "tx_packets"), u64(p, "tx_bytes"));
    const Json &counters = info.at("counters");
    const Json &states = info.at("states");
    o += strf("forwarded %llu\npunted %llu\nstates %llu\nstate_inserts %llu\nstate_removals %llu\n",
              u64(counters, "forwarded"), u64(counters, "punted"), u64(states, "current"),
              u64(states, "inserts"), u64(states, "removals"));
    if (counters.contains("handed_off"))
        o += strf("handed_off %llu\n", u64(counters, "handed_off"));
    for (const auto &[reason, n] : info.at("drops").items())
        if (n.get<uint64_t>() != 0)
            o += strf("drop %s %llu\n", reason.c_str(), (unsigned long long)n.get<uint64_t>());
    o += strf("drops_total %llu\npflog_dropped %llu\n", u64(counters, "drops_total"),
              u64(counters, "pflog_dropped"));
    const Json &frags = info.at("fragments");
    o += strf("frag_reassembled %llu\nfrag_refragmented %llu\nfrags_held %llu\n",
              u64(frags, "reassembled"), u64(frags, "refragmented"), u64(frags, "held"));
    const Json &workers = info.at("workers");
    for (std::size_t w = 0; w < workers.size(); w++) {
        o += strf("worker %zu polls %llu idle_polls %llu sleeps %llu forwarded %llu", w,
                  u64(workers[w], "polls"), u64(workers[w], "idle_polls"),
                  u64(workers[w], "sleeps"), u64(workers[w], "forwarded"));
        if (workers[w].contains("handed_off"))
            o += strf(" handed_off %llu", u64(workers[w], "handed_off"));
        o += "\n";
    }
    if (sync.value("available", false)) {
        unsigned long long errors = 0;
        for (const auto &[reason, n] : sync.at("errors").items())
            errors += n.get<unsigned long long>();
        o += strf("sync_tx_packets %llu\nsync_rx_packets %llu\nsync_errors %llu\nsync_stale "
                  "%llu\nsync_ring_full %llu\nsync_bulk %s\n",
                  u64(sync.at("sent"), "packets"), u64(sync.at("received"), "packets"), errors,
                  u64(sync, "stale"), u64(sync, "ring_full"),
                  sync.at("bulk").at("status").get<std::string>().c_str());
    }
    return o;
}

std::string format_result(Command cmd, const Json &result, bool verbose) {
    return command_spec(cmd).view(result, verbose);
}

} // namespace syncwall::ctl
