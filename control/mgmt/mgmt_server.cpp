#include "control/mgmt/mgmt_server.hpp"

#include "config/pf_rule.hpp"
#include "control/control_loop.hpp"
#include "control/mgmt/commands.hpp"
#include "control/mgmt/state_pages.hpp"
#include "dataplane/ruleset.hpp"
#include "dataplane/state_table.hpp"

#include <rte_lcore.h>
#include <rte_malloc.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <stdexcept>

namespace syncwall::ctl {

namespace asio = boost::asio;

namespace {

// The second key of the translated state copied as `s` from `slot`; false when it has none
// (or it ended since the copy).
bool other_key_of(const dp::StateTable &t, uint32_t slot, const dp::State &s, dp::StateKey &k) {
    return dp::translated(s) && t.other_key(slot, k);
}

std::string hex64(uint64_t v) {
    char text[17];
    std::snprintf(text, sizeof(text), "%016llx", (unsigned long long)v);
    return text;
}

std::string address_text(const std::array<uint8_t, 16> &bytes, uint8_t af) {
    config::IpAddress a;
    a.family = af;
    a.bytes = bytes;
    return a.to_string();
}

Json peer_json(const dp::TcpPeer &p) {
    return Json{{"state", p.state},     {"seqlo", p.seqlo},     {"seqhi", p.seqhi},
                {"seqdiff", p.seqdiff}, {"max_win", p.max_win}, {"wscale", p.wscale}};
}

std::string timeout_name(dp::Timeout t) {
    const auto c = std::size_t(t);
    if (c < config::state_timeout_count)
        return std::string(config::state_timeout_name(config::Timeout(c)));
    return t == dp::Timeout::frag ? "frag" : "interval";
}

// Bytes allocated from the EAL heaps (rte_malloc, memzones: ACL contexts, tables, rings).
uint64_t eal_heap_bytes() {
    uint64_t total = 0;
    for (unsigned i = 0; i < rte_socket_count(); i++) {
        rte_malloc_socket_stats st{};
        if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &st) == 0)
            total += st.heap_allocsz_bytes;
    }
    return total;
}

} // namespace

// Every command of the table has its handler, or the daemon does not start.
dp::Dataplane &MgmtServer::check_handlers(dp::Dataplane &dp) {
    for (const CommandSpec &spec : command_table())
        if (std::none_of(handlers.begin(), handlers.end(),
                         [&](const Handler &h) { return h.cmd == spec.cmd; }))
            throw std::logic_error("management command \"" + std::string(spec.name) +
                                   "\" has no handler");
    return dp;
}

MgmtServer::MgmtServer(asio::io_context &io, dp::Dataplane &dp, ControlLoop &loop)
    : dp_(check_handlers(dp)), loop_(loop),
      listener_(io, "control.socket", dp.cfg.control.socket, dp.cfg.control.socket_mode,
                [this](std::string_view line, LineServer::Reply reply) {
                    handle_line(line, std::move(reply));
                },
                {}) {}

MgmtServer::~MgmtServer() {
    stop();
}

void MgmtServer::start() {
    listener_.start();
}

void MgmtServer::stop() {
    listener_.stop();
}

// --- requests --------------------------------------------------------------------------------

// Every exception ends here as an error reply: nothing a client sends may end the process.
std::string MgmtServer::handle_line(std::string_view line) {
    try {
        ParsedRequest parsed = parse_request(line);
        if (!parsed.request) return error_reply(parsed.error);
        return ok_reply(execute(*parsed.request));
    } catch (const std::exception &e) {
        return error_reply(e.what());
    }
}

void MgmtServer::handle_line(std::string_view line, std::function<void(std::string)> reply) {
    ParsedRequest parsed = parse_request(line);
    if (!parsed.request || parsed.request->cmd != Command::reload) {
        reply(handle_line(line));
        return;
    }
    start_reload(std::move(reply));
}

// The handler of each command in the table (commands.hpp); the constructor checks that
// none is missing.
const std::array<MgmtServer::Handler, 11> MgmtServer::handlers{{
    {Command::show_states, [](MgmtServer &m, const Request &r) { return m.show_states(r.filter); }},
    {Command::show_info, [](MgmtServer &m, const Request &) { return m.show_info(); }},
    {Command::show_rules, [](MgmtServer &m, const Request &) { return m.show_rules(); }},
    {Command::show_interfaces, [](MgmtServer &m, const Request &) { return m.show_interfaces(); }},
    {Command::show_carp, [](MgmtServer &m, const Request &) { return m.show_carp(); }},
    {Command::show_sync, [](MgmtServer &m, const Request &) { return m.show_sync(); }},
    {Command::reload,
     [](MgmtServer &m, const Request &) {
         // Without a connection to answer later: start it and say so.
         m.start_reload({});
         return Json{{"reloading", true}, {"reloads", m.loop_.reloads()}};
     }},
    {Command::kill_states, [](MgmtServer &m, const Request &r) { return m.kill_states(r.filter); }},
    {Command::carp_demote,
     [](MgmtServer &m, const Request &r) { return m.change_carp_demotion(r); }},
    {Command::carp_promote,
     [](MgmtServer &m, const Request &r) { return m.change_carp_demotion(r); }},
    {Command::sync_resync, [](MgmtServer &m, const Request &) { return m.sync_resync(); }},
}};

Json MgmtServer::execute(const Request &request) {
    for (const Handler &h : handlers)
        if (h.cmd == request.cmd) return h.run(*this, request);
    throw std::runtime_error(std::string(command_name(request.cmd)) + ": no handler");
}

// CARP lives on this (the main) lcore: nothing to synchronise with.
Json MgmtServer::show_carp() {
    const CarpStatus st = loop_.carp().status();
    if (!st.configured)
        return Json{{"available", false},
                    {"reason", "no CARP virtual hosts are configured (carp.vhosts is empty)"}};
    Json reasons = Json::array();
    for (const auto &[reason, value] : st.demotion_reasons)
        reasons.push_back(Json{{"reason", reason}, {"value", value}});
    Json vhids = Json::array();
    for (const CarpVhidStatus &v : st.vhids) {
        Json rejected = Json::object();
        for (std::size_t r = 0; r < carp_drop_count; r++)
            rejected[std::string(carp_drop_names[r])] = v.adverts_rejected[r];
        Json sources = Json::object();
        Json by_family = Json::object();
        for (std::size_t f = 0; f < 2; f++) {
            const char *family = f == 0 ? "ipv4" : "ipv6";
            if (!v.source[f].empty()) sources[family] = v.source[f];
            by_family[family] =
                Json{{"sent", v.sent_by_family[f]}, {"received", v.received_by_family[f]}};
        }
        std::string role(name_of(v.role)); // "MASTER" as logged, "master" in JSON
        std::transform(role.begin(), role.end(), role.begin(),
                       [](unsigned char c) { return char(std::tolower(c)); });
        vhids.push_back(Json{
            {"vhid", v.vhid},
            {"interface", v.interface},
            {"role", role},
            {"advbase", v.advbase},
            {"advskew", v.advskew},
            {"effective_advskew", v.effective_advskew},
            {"advert_interval_ms", v.advert_interval_ms},
            {"master_down_ms", v.master_down_ms},
            {"demote", v.demote},
            {"addresses", v.addresses},
            {"transitions", v.transitions},
            {"last_reason", v.last_reason},
            {"adverts_sent", v.adverts_sent},
            {"adverts_received", v.adverts_received},
            {"adverts_rejected", std::move(rejected)},
            {"advert_sources", std::move(sources)},
            {"adverts_by_family", std::move(by_family)},
        });
    }
    return Json{{"available", true},
                {"preempt", st.preempt},
                {"demotion", st.demotion},
                {"demotion_reasons", std::move(reasons)},
                {"vhids", std::move(vhids)}};
}

Json MgmtServer::change_carp_demotion(const Request &request) {
    if (!loop_.carp().configured())
        throw std::runtime_error(std::string(command_name(request.cmd)) +
                                 ": no CARP virtual hosts are configured");
    if (request.cmd == Command::carp_demote)
        loop_.carp().demote(request.demote);
    else
        loop_.carp().promote();
    return show_carp();
}

// Handed to the sync lcore through an atomic flag; it sends the request next poll.
Json MgmtServer::sync_resync() {
    if (loop_.sync() == nullptr)
        throw std::runtime_error("sync resync: pfsync is not configured (no sync: section)");
    loop_.sync()->request_resync();
    return show_sync();
}

// Runs alongside the workers: StateTable::walk copies each live state with a seqlock read
// (StateTable::read: no lock, no wait for the workers), so every state listed is consistent
// in itself; a page is not one instant (states come and go while it is walked), nor are
// the pages together (state_pages.hpp). The ruleset (for per-rule timeouts) is only ever
// replaced and freed on this lcore, so reading it here needs no RCU. One page visits at most
// state_page_scan slots and describes at most max_state_page states: it pauses the main lcore for
// milliseconds, never the workers.
Json MgmtServer::show_states(const StateFilter &filter) {
    const uint32_t now = dp_.now();
    const uint32_t count = dp_.states->count();
    const dp::Ruleset *rs = dp_.ruleset.load(std::memory_order_acquire);
    const auto walk = [this](uint32_t first, uint32_t n, const auto &visit) {
        return dp_.states->walk(first, n, visit);
    };
    const auto describe = [&](uint32_t slot, const dp::State &s) {
        uint32_t override_s = 0;
        const auto c = std::size_t(s.timeout);
        if (s.rule < rs->size() && c < config::state_timeout_count)
            override_s = rs->rule(s.rule).timeouts[c];
        const uint32_t lifetime = dp_.timeouts.lifetime(s.timeout, count, override_s);
        const uint32_t idle = now - s.expire;
        Json j;
        j["id"] = hex64(s.id);
        j["creatorid"] = s.creatorid;
        j["interface"] = s.iface < dp_.ports.size() ? dp_.ports[s.iface].name : "all";
        j["direction"] = s.direction == dp::StateDirection::out ? "out" : "in";
        j["af"] = s.key.af;
        j["proto"] = s.key.proto;
        j["addr"] = {address_text(s.key.addr[0], s.key.af), address_text(s.key.addr[1], s.key.af)};
        j["port"] = {s.key.port[0], s.key.port[1]};
        // A translated state's other key (pf's wire key of an outbound state, stack key of an
        // inbound one), as pfctl prints it beside the first.
        dp::StateKey other;
        if (other_key_of(*dp_.states, slot, s, other)) {
            j["nat"] = {
                {"addr",
                 {address_text(other.addr[0], other.af), address_text(other.addr[1], other.af)}},
                {"port", {other.port[0], other.port[1]}}};
        }
        j["src"] = peer_json(s.src);
        j["dst"] = peer_json(s.dst);
        j["age"] = now - s.creation;
        j["expires_in"] = idle < lifetime ? lifetime - idle : 0;
        j["timeout"] = timeout_name(s.timeout);
        j["packets"] = {s.packets[0], s.packets[1]};
        j["bytes"] = {s.bytes[0], s.bytes[1]};
        j["rule"] = s.rule == dp::no_rule ? Json(nullptr) : Json(s.rule);
        j["origin"] = s.origin == dp::state_origin::peer ? "peer" : "local";
        return j;
    };
    const auto other_key = [this](uint32_t slot, const dp::State &s, dp::StateKey &k) {
        return other_key_of(*dp_.states, slot, s, k);
    };
    return state_page(filter, dp_.states->slots(), walk, describe, other_key);
}

// Runs alongside the workers: sums the per-lcore counters (each written by its own lcore
// with relaxed stores, so a total may be a few packets old but is never torn) and reads the
// state table's relaxed-atomic statistics.
Json MgmtServer::show_info() {
    const dp::CounterTotals t = dp_.totals();
    const auto st = dp_.states->stats();
    Json drops = Json::object();
    for (std::size_t r = 0; r < dp::drop_reason_count; r++)
        drops[std::string(dp::drop_reason_names[r])] = t.drops[r];
    Json ports = Json::array();
    for (std::size_t i = 0; i < dp_.ports.size() && i < dp::max_ports; i++)
        ports.push_back(Json{{"name", dp_.ports[i].name},
                             {"rx_packets", t.ports[i].rx_packets},
                             {"rx_bytes", t.ports[i].rx_bytes},
                             {"tx_packets", t.ports[i].tx_packets},
                             {"tx_bytes", t.ports[i].tx_bytes}});
    Json workers = Json::array();
    for (const dp::LcoreCounters &c : dp_.worker_counters)
        workers.push_back(Json{{"polls", c.polls.get()},
                               {"idle_polls", c.idle_polls.get()},
                               {"sleeps", c.sleeps.get()},
                               {"forwarded", c.forwarded.get()},
                               {"handed_off", c.handed_off.get()},
                               {"twin_steps", c.twin_steps.get()}});
    return Json{
        {"node", dp_.cfg.node.name},
        {"hostid", dp_.cfg.node.hostid},
        {"running", !dp_.stopping.load()},
        {"uptime", dp_.now()},
        {"states", Json{{"current", dp_.states->count()},
                        {"limit", dp_.states->capacity()},
                        {"inserts", st.inserts},
                        {"removals", st.removals},
                        {"insert_exists", st.insert_exists},
                        {"insert_full", st.insert_full}}},
        {"counters", Json{{"forwarded", t.forwarded},
                          {"punted", t.punted},
                          {"handed_off", t.handed_off},
                          {"drops_total", t.total_drops()},
                          {"pflog_dropped", t.pflog_dropped}}},
        {"fragments", Json{{"reassembled", t.frag_reassembled},
                           {"refragmented", t.frag_refragmented},
                           {"held", t.frags_held},
                           {"limit", dp_.cfg.limits.frags},
                           {"timed_out", t.drops[std::size_t(dp::DropReason::frag_timeout)]}}},
        {"drops", std::move(drops)},
        {"ports", std::move(ports)},
        {"workers", std::move(workers)},
        {"main_loop", loop_.loop_stalls().to_json<Json>()},
        {"memory", Json{{"eal_heap_bytes", eal_heap_bytes()},
                        {"state_table_bytes", dp_.states->memory_bytes()},
                        {"state_table_huge_page_bytes", dp_.states->huge_page_bytes()}}},
    };
}

// Runs alongside the workers: Ruleset::totals() sums the per-lcore rule counters; the live
// state count per rule is a relaxed atomic. The ruleset is replaced and freed on this lcore
// only (reload), so the pointer read here stays valid for the whole command.
Json MgmtServer::show_rules() {
    const dp::Ruleset *rs = dp_.ruleset.load(std::memory_order_acquire);
    Json rules = Json::array();
    for (uint32_t i = 0; i < rs->size(); i++) {
        const config::PfRule &rule = rs->rules()[i];
        const auto tot = rs->totals(i);
        rules.push_back(Json{
            {"number", i},
            {"text", config::to_string(rule)},
            {"source", rule.pos.to_string()},
            {"matches", tot.matches},
            {"packets", tot.packets},
            {"bytes", tot.bytes},
            {"states_created", tot.states_created},
            {"states", tot.states},
        });
    }
    return Json{
        {"rules", std::move(rules)}, {"acl_rules", rs->acl_rules()}, {"reloads", loop_.reloads()}};
}

// Runs alongside the workers: the port list is fixed after start; counters are summed as
// for show info.
Json MgmtServer::show_interfaces() {
    const dp::CounterTotals t = dp_.totals();
    Json list = Json::array();
    for (std::size_t i = 0; i < dp_.ports.size() && i < dp::max_ports; i++) {
        const dp::Port &p = dp_.ports[i];
        Json addresses = Json::array();
        for (const auto &a : p.addresses)
            addresses.push_back(a.to_string());
        list.push_back(Json{
            {"name", p.name},
            {"devargs", p.devargs},
            {"port_id", p.port_id},
            {"mac", config::MacAddress{p.mac}.to_string()},
            {"addresses", std::move(addresses)},
            {"mtu", p.mtu},
            {"sync", p.is_sync},
            {"rx_checksums_by_device", p.device_checksums()},
            {"rx_packets", t.ports[i].rx_packets},
            {"rx_bytes", t.ports[i].rx_bytes},
            {"tx_packets", t.ports[i].tx_packets},
            {"tx_bytes", t.ports[i].tx_bytes},
        });
    }
    return Json{{"interfaces", std::move(list)}};
}

// A transaction through ControlLoop::reload(): the new ruleset is compiled beside the
// running one on another thread and published with an atomic pointer swap; the old one is
// freed after an RCU grace period of the workers. The reply waits for all of that, while
// the main lcore goes on with its other work (CARP adverts among it). A failure changes
// nothing and its message is the reply's error.
void MgmtServer::start_reload(std::function<void(std::string)> reply) {
    loop_.reload([this, reply = std::move(reply)](const std::string &error) {
        if (!error.empty()) {
            std::printf("syncwall: reload (control socket) failed, still running the previous "
                        "rules: %s\n",
                        error.c_str());
            std::fflush(stdout);
            if (reply) reply(error_reply(error));
            return;
        }
        std::printf("syncwall: reloaded %s (control socket)\n", dp_.cfg.source_file.c_str());
        std::fflush(stdout);
        const dp::Ruleset *rs = dp_.ruleset.load(std::memory_order_acquire);
        if (reply) reply(ok_reply(Json{{"rules", rs->size()}, {"reloads", loop_.reloads()}}));
    });
}

// Runs alongside the workers: matching states are found with for_each (seqlock copies, no
// lock) and removed with Dataplane::remove_state as the main lcore's writer
// (main_writer()), the same path the expiry sweep takes: the state table serialises the
// removal with the slot's lock, releases the rule's state count, tells the change sink
// (pfsync will turn it into a delete) and recycles the slot after an RCU grace period. A
// slot is re-checked (same key and id) just before removal, so a state that ended and was
// replaced by another in the meantime is not killed by mistake.
Json MgmtServer::kill_states(const StateFilter &filter) {
    struct Victim {
        uint32_t slot;
        dp::StateKey key;
        uint64_t id;
        uint32_t creatorid;
    };
    std::vector<Victim> victims;
    dp_.states->for_each([&](uint32_t slot, const dp::State &s) {
        dp::StateKey other;
        const bool match = filter.matches(s.key) ||
                           (other_key_of(*dp_.states, slot, s, other) && filter.matches(other));
        if (match) victims.push_back({slot, s.key, s.id, s.creatorid});
    });
    uint64_t killed = 0;
    for (const Victim &v : victims) {
        dp::State s;
        if (!dp_.states->read(v.slot, s)) continue; // gone meanwhile
        const bool same = s.key == v.key && s.id == v.id && s.creatorid == v.creatorid;
        if (same && dp_.remove_state(v.slot, dp_.main_writer())) killed++;
    }
    dp_.states->reclaim();
    return Json{{"killed", killed}};
}

// Runs alongside the sync lcore: its counters are relaxed atomics, read one by one (a
// snapshot of each counter, not of all of them at one instant).
Json MgmtServer::show_sync() {
    const sync::SyncEngine *engine = loop_.sync();
    if (engine == nullptr)
        return Json{{"available", false},
                    {"reason", "pfsync is not configured (no sync: section): states stay local"}};
    const sync::SyncCore &core = engine->core();
    const sync::SyncStats &st = core.stats();
    auto load = [](const std::atomic<uint64_t> &c) { return c.load(std::memory_order_relaxed); };
    auto actions = [&](const sync::ActionCounters &c, std::initializer_list<sync::Action> which) {
        Json j = Json::object();
        for (const sync::Action a : which)
            j[std::string(sync::openbsd_v6_actions[std::size_t(a)].name)] = load(c[std::size_t(a)]);
        return j;
    };
    using A = sync::Action;
    Json sent = actions(
        st.sent, {A::ins, A::upd, A::upd_c, A::del_c, A::upd_req, A::bus, A::clr, A::ins_ack});
    sent["packets"] = load(st.tx_packets);
    sent["bytes"] = load(st.tx_bytes);
    Json received = actions(st.received, {A::ins, A::upd, A::upd_c, A::del_c, A::del, A::upd_req,
                                          A::bus, A::clr, A::ins_ack});
    received["packets"] = load(st.rx_packets);
    received["bytes"] = load(st.rx_bytes);
    Json errors = Json::object();
    for (std::size_t e = 0; e < sync::sync_error_count; e++)
        errors[std::string(sync::sync_error_names[e])] = load(st.errors[e]);
    for (std::size_t e = 1; e < sync::pfsync_error_count; e++)
        errors[std::string(sync::pfsync_error_names[e])] = load(st.decode_errors[e]);
    return Json{
        {"available", true},
        {"enabled", true},
        {"interface", engine->interface()},
        {"peer", engine->destination()},
        {"peer_resolved", engine->peer_resolved()},
        {"creatorid", dp_.cfg.node.hostid},
        {"authenticated", !dp_.cfg.sync.auth.key_file.empty()},
        {"queue_depth", core.queue_depth()},
        {"lag_ms", core.lag_ms(engine->now_ms())},
        {"max_lag_ms", load(st.max_lag_ms)},
        {"sent", sent},
        {"received", received},
        {"errors", errors},
        {"stale", load(st.stale)},
        {"ring_full", load(st.ring_full)},
        {"queued", load(st.queued)},
        {"coalesced", load(st.coalesced)},
        {"applied",
         {{"inserted", load(st.inserted)},
          {"updated", load(st.updated)},
          {"removed", load(st.removed)}}},
        {"bulk",
         {{"status", std::string(sync::name_of(core.bulk_status()))},
          {"requests", load(st.bulk_requests)},
          {"received_states", load(st.bulk_received_states)},
          {"sending", core.bulk_sending()},
          {"sends", load(st.bulk_sends)},
          {"sent_states", load(st.bulk_sent_states)}}},
    };
}

} // namespace syncwall::ctl
