#include "control/mgmt_server.hpp"

#include "config/pf_rule.hpp"
#include "control/accept_loop.hpp"
#include "control/control_loop.hpp"
#include "dataplane/ruleset.hpp"
#include "dataplane/state_table.hpp"

#include <boost/asio/write.hpp>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace syncwall::ctl {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

namespace {

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
        return std::string(config::state_timeout_name(config::StateTimeout(c)));
    return t == dp::Timeout::frag ? "frag" : "interval";
}

std::string errno_text(int err) {
    return std::strerror(err);
}

} // namespace

// --- one client ------------------------------------------------------------------------------

class MgmtServer::Connection : public std::enable_shared_from_this<Connection> {
  public:
    Connection(MgmtServer &server, Local::socket socket)
        : server_(server), socket_(std::move(socket)) {}

    void start() { read(); }

    // Tell a client we cannot serve that, then hang up.
    void refuse(std::string reply) {
        out_ = std::move(reply) + "\n";
        asio::async_write(socket_, asio::buffer(out_),
                          [self = shared_from_this()](const boost::system::error_code &,
                                                      std::size_t) { self->close(); });
    }

    void close() {
        boost::system::error_code ignored;
        socket_.close(ignored);
    }

  private:
    void read() {
        socket_.async_read_some(
            asio::buffer(chunk_),
            [self = shared_from_this()](const boost::system::error_code &ec, std::size_t n) {
                if (ec == asio::error::eof) {
                    self->framer_.finish(); // a last request without its newline is still answered
                    self->eof_ = true;
                } else if (ec) {
                    self->close();
                    return;
                }
                self->framer_.feed(std::string_view(self->chunk_.data(), n));
                self->process();
            });
    }

    // Answer the next buffered request, or read more. The framer holds at most one line
    // (max_request_bytes) plus one chunk, and a reply is written before the next is made.
    void process() {
        auto item = framer_.next();
        if (!item) {
            if (eof_)
                close();
            else
                read();
            return;
        }
        out_ = item->kind == LineFramer::Kind::too_long ? error_reply(too_long_error())
                                                        : server_.handle_line(item->text);
        out_ += '\n';
        asio::async_write(
            socket_, asio::buffer(out_),
            [self = shared_from_this()](const boost::system::error_code &ec, std::size_t) {
                if (ec) {
                    self->close();
                    return;
                }
                self->process();
            });
    }

    MgmtServer &server_;
    Local::socket socket_;
    std::array<char, 4096> chunk_{};
    LineFramer framer_;
    std::string out_;
    bool eof_ = false;
};

// --- listening -------------------------------------------------------------------------------

MgmtServer::MgmtServer(asio::io_context &io, dp::Dataplane &dp, ControlLoop &loop)
    : io_(io), dp_(dp), loop_(loop), acceptor_(io), retry_(io), path_(dp.cfg.control.socket) {}

MgmtServer::~MgmtServer() {
    stop();
}

void MgmtServer::start() {
    const std::string what = "control.socket " + path_ + ": ";
    if (path_.size() >= sizeof(sockaddr_un::sun_path))
        throw std::runtime_error(what + "longer than " +
                                 std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                 " bytes, the limit of a Unix socket path");
    const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        if (ec)
            throw std::runtime_error(what + "cannot create " + parent.string() + ": " +
                                     ec.message());
    }
    const Local::endpoint endpoint(path_);
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            throw std::runtime_error(what + "exists and is not a socket; not removing it");
        // A socket nobody answers on was left by a process that died: remove it. One that
        // answers belongs to a live process (another syncwall?): leave it alone.
        Local::socket probe(io_);
        boost::system::error_code ec;
        probe.connect(endpoint, ec);
        if (!ec)
            throw std::runtime_error(what + "another process answers on it (is another "
                                            "syncwall running with this control.socket?)");
        if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
            throw std::runtime_error(what + "cannot remove the stale socket: " + errno_text(errno));
    }
    try {
        acceptor_.open(endpoint.protocol());
        acceptor_.bind(endpoint);
    } catch (const boost::system::system_error &e) {
        throw std::runtime_error(what + "cannot bind: " + e.code().message());
    }
    // Before listen(): no client can connect while the file still has the umask's mode.
    if (::chmod(path_.c_str(), mode_t(dp_.cfg.control.socket_mode)) != 0 ||
        ::lstat(path_.c_str(), &st) != 0) {
        const int err = errno;
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        ::unlink(path_.c_str());
        throw std::runtime_error(what + "cannot set its mode: " + errno_text(err));
    }
    socket_dev_ = st.st_dev;
    socket_ino_ = st.st_ino;
    try {
        acceptor_.listen(int(max_connections));
    } catch (const boost::system::system_error &e) {
        stop();
        throw std::runtime_error(what + "cannot listen: " + e.code().message());
    }
    listening_ = true;
    accept();
}

void MgmtServer::accept() {
    accept_connections(acceptor_, retry_, listening_, [this](Local::socket socket) {
        std::erase_if(connections_, [](const auto &c) { return c.expired(); });
        auto conn = std::make_shared<Connection>(*this, std::move(socket));
        if (connections_.size() >= max_connections) {
            conn->refuse(error_reply("too many management connections (" +
                                     std::to_string(max_connections) + "); try again"));
        } else {
            connections_.push_back(conn);
            conn->start();
        }
    });
}

void MgmtServer::stop() {
    if (!listening_ && !acceptor_.is_open()) return;
    listening_ = false;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    for (auto &weak : connections_)
        if (auto c = weak.lock()) c->close();
    connections_.clear();
    // Remove the socket file only if it is still the one we made (a later instance may have
    // replaced it after deciding ours was stale).
    struct stat st {};
    if (socket_ino_ != 0 && ::lstat(path_.c_str(), &st) == 0 && st.st_dev == socket_dev_ &&
        st.st_ino == socket_ino_)
        ::unlink(path_.c_str());
    socket_ino_ = 0;
}

// --- requests --------------------------------------------------------------------------------

std::string MgmtServer::handle_line(std::string_view line) {
    ParsedRequest parsed = parse_request(line);
    if (!parsed.request) return error_reply(parsed.error);
    try {
        return ok_reply(execute(*parsed.request));
    } catch (const std::exception &e) {
        return error_reply(e.what());
    }
}

Json MgmtServer::execute(const Request &request) {
    switch (request.cmd) {
    case Command::show_states:
        return show_states(request.filter);
    case Command::show_info:
        return show_info();
    case Command::show_rules:
        return show_rules();
    case Command::show_interfaces:
        return show_interfaces();
    // CARP lives on this (the main) lcore: nothing to synchronise with.
    case Command::show_carp:
        return loop_.carp().status();
    case Command::carp_demote:
    case Command::carp_promote:
        if (!loop_.carp().configured())
            throw std::runtime_error(std::string(command_name(request.cmd)) +
                                     ": no CARP virtual hosts are configured");
        if (request.cmd == Command::carp_demote)
            loop_.carp().demote(request.demote);
        else
            loop_.carp().promote();
        return loop_.carp().status();
    case Command::show_sync:
        return show_sync();
    case Command::sync_resync:
        // Handed to the sync lcore through an atomic flag; it sends the request next poll.
        if (loop_.sync() == nullptr)
            throw std::runtime_error("sync resync: pfsync is not configured (no sync: section)");
        loop_.sync()->request_resync();
        return show_sync();
    case Command::reload:
        return reload();
    case Command::kill_states:
        return kill_states(request.filter);
    }
    throw std::runtime_error("unhandled command");
}

// Runs alongside the workers: StateTable::for_each copies each live state under its slot
// lock, so every state listed is consistent in itself; the list as a whole is not one
// instant (states come and go while it is walked). The ruleset (for per-rule timeouts) is
// only ever replaced and freed on this lcore, so reading it here needs no RCU. The walk
// visits every slot: it pauses the main lcore for as long as a table of limits.states
// takes (milliseconds), never the workers.
Json MgmtServer::show_states(const StateFilter &filter) {
    const uint32_t now = dp_.now();
    const uint32_t count = dp_.states->count();
    const dp::Ruleset *rs = dp_.ruleset.load(std::memory_order_acquire);
    Json states = Json::array();
    bool truncated = false;
    dp_.states->for_each([&](uint32_t, const dp::State &s) {
        if (!filter.matches(s.key)) return;
        if (filter.limit && states.size() >= *filter.limit) {
            truncated = true;
            return;
        }
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
        j["src"] = peer_json(s.src);
        j["dst"] = peer_json(s.dst);
        j["age"] = now - s.creation;
        j["expires_in"] = idle < lifetime ? lifetime - idle : 0;
        j["timeout"] = timeout_name(s.timeout);
        j["packets"] = {s.packets[0], s.packets[1]};
        j["bytes"] = {s.bytes[0], s.bytes[1]};
        j["rule"] = s.rule == dp::no_rule ? Json(nullptr) : Json(s.rule);
        j["origin"] = s.origin == dp::state_origin::peer ? "peer" : "local";
        states.push_back(std::move(j));
    });
    return Json{{"states", std::move(states)}, {"truncated", truncated}};
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
        {"counters",
         Json{{"forwarded", t.forwarded},
              {"punted", t.punted},
              {"drops_total", t.total_drops()},
              {"pflog_dropped", t.pflog_dropped}}},
        {"fragments",
         Json{{"reassembled", t.frag_reassembled},
              {"refragmented", t.frag_refragmented},
              {"held", t.frags_held},
              {"limit", dp_.cfg.limits.frags},
              {"timed_out", t.drops[std::size_t(dp::DropReason::frag_timeout)]}}},
        {"drops", std::move(drops)},
        {"ports", std::move(ports)},
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
            {"source", rule.pos.file + ":" + std::to_string(rule.pos.line) + ":" +
                           std::to_string(rule.pos.column)},
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
            {"rx_packets", t.ports[i].rx_packets},
            {"rx_bytes", t.ports[i].rx_bytes},
            {"tx_packets", t.ports[i].tx_packets},
            {"tx_bytes", t.ports[i].tx_bytes},
        });
    }
    return Json{{"interfaces", std::move(list)}};
}

// A transaction through ControlLoop::reload(): the new ruleset is compiled beside the
// running one and published with an atomic pointer swap; the old one is freed after an
// RCU grace period of the workers (this command waits for it). A failure changes nothing
// and its message is the reply's error.
Json MgmtServer::reload() {
    if (std::string error = loop_.reload(); !error.empty()) {
        std::printf("syncwall: reload (control socket) failed, still running the previous "
                    "rules: %s\n",
                    error.c_str());
        std::fflush(stdout);
        throw std::runtime_error(error);
    }
    std::printf("syncwall: reloaded %s (control socket)\n", dp_.cfg.source_file.c_str());
    std::fflush(stdout);
    const dp::Ruleset *rs = dp_.ruleset.load(std::memory_order_acquire);
    return Json{{"rules", rs->size()}, {"reloads", loop_.reloads()}};
}

// Runs alongside the workers: matching states are found with for_each (copies under the
// slot locks) and removed with Dataplane::remove_state as the main lcore's writer
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
        if (filter.matches(s.key)) victims.push_back({slot, s.key, s.id, s.creatorid});
    });
    uint64_t killed = 0;
    for (const Victim &v : victims) {
        if (!dp_.states->lock(v.slot)) continue; // gone meanwhile
        const dp::State &s = dp_.states->state(v.slot);
        const bool same = s.key == v.key && s.id == v.id && s.creatorid == v.creatorid;
        dp_.states->unlock(v.slot);
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
    Json sent = actions(st.sent, {A::ins, A::upd, A::upd_c, A::del_c, A::upd_req, A::bus, A::clr,
                                  A::ins_ack});
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
        {"applied", {{"inserted", load(st.inserted)}, {"updated", load(st.updated)},
                     {"removed", load(st.removed)}}},
        {"bulk", {{"status", std::string(sync::name_of(core.bulk_status()))},
                  {"requests", load(st.bulk_requests)},
                  {"received_states", load(st.bulk_received_states)},
                  {"sending", core.bulk_sending()},
                  {"sends", load(st.bulk_sends)},
                  {"sent_states", load(st.bulk_sent_states)}}},
    };
}

} // namespace syncwall::ctl
