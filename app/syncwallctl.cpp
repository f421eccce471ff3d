// syncwallctl: ask a running syncwall over its control socket, and print what it says the
// way pfctl would (or the raw JSON result with --json).
//
//   syncwallctl [-s SOCKET] [--json] show states [-v] [--addr A] [--port P] [--proto X] [--limit N]
//   syncwallctl show info | show rules | show interfaces | show carp | show sync
//   syncwallctl reload
//   syncwallctl kill states --addr A [--port P] [--proto X]
//   syncwallctl carp demote N | carp promote
//
// Exit status: 0 ok, 1 the daemon answered with an error, 2 usage error, 3 no daemon
// answering on the socket. The protocol is in control/mgmt/mgmt_protocol.hpp, the text views in
// control/mgmt/views.hpp; this file only parses the command line and moves one line each way.
#include "config/config.hpp"
#include "control/mgmt/mgmt_protocol.hpp"
#include "control/mgmt/state_pages.hpp"
#include "control/mgmt/views.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

using namespace syncwall;
using ctl::CtlExit;
using ctl::Json;

namespace {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

constexpr std::size_t max_reply_bytes = std::size_t(1) << 30;

int code(CtlExit e) {
    return int(e);
}

// One connection to the daemon: request lines out, reply lines back, one at a time, each
// exchange bounded by the timeout.
class Connection {
  public:
    Connection(std::string path, std::chrono::milliseconds timeout)
        : path_(std::move(path)), timeout_(timeout), socket_(io_) {}

    // Connect; on failure says why in *error.
    bool open(std::string *error) {
        bool done = false;
        try {
            socket_.async_connect(Local::endpoint(path_), [&](const boost::system::error_code &ec) {
                done = true;
                if (ec) *error = "cannot connect to " + path_ + ": " + ec.message();
            });
        } catch (const boost::system::system_error &e) {
            *error = "cannot connect to " + path_ + ": " + e.code().message();
            return false;
        }
        run(&done, error);
        return error->empty();
    }

    // Send one request line and read one reply line. On failure, says why in *error.
    std::optional<std::string> exchange(const std::string &request, std::string *error) {
        out_ = request + "\n";
        std::optional<std::string> reply;
        bool done = false;
        asio::async_write(
            socket_, asio::buffer(out_), [&](const boost::system::error_code &ec, std::size_t) {
                if (ec) {
                    done = true;
                    *error = "cannot send to " + path_ + ": " + ec.message();
                    return;
                }
                asio::async_read_until(
                    socket_, asio::dynamic_buffer(in_, max_reply_bytes), '\n',
                    [&](const boost::system::error_code &ec, std::size_t n) {
                        done = true;
                        if (ec) {
                            *error = ec == asio::error::eof
                                         ? "syncwall closed the connection without answering"
                                         : "no answer from " + path_ + ": " + ec.message();
                            return;
                        }
                        reply = in_.substr(0, n - 1);
                        in_.erase(0, n);
                    });
            });
        run(&done, error);
        return reply;
    }

  private:
    void run(const bool *done, std::string *error) {
        io_.restart();
        io_.run_for(timeout_);
        if (!*done && error->empty()) {
            boost::system::error_code ignored;
            socket_.close(ignored); // cancels what is pending
            char seconds[32];
            std::snprintf(seconds, sizeof(seconds), "%g", double(timeout_.count()) / 1000.0);
            *error = "no answer from " + path_ + " within " + seconds + " s";
        }
    }

    std::string path_;
    std::chrono::milliseconds timeout_;
    asio::io_context io_;
    Local::socket socket_;
    std::string out_, in_;
};

} // namespace

int main(int argc, char **argv) {
    CLI::App app{"syncwallctl: ask a running syncwall about its states, rules and counters"};
    app.fallthrough();
    std::string socket_path = config::ControlConfig{}.socket;
    bool json = false;
    double timeout = 60;
    app.add_option("-s,--socket", socket_path, "the daemon's control socket (control.socket)")
        ->capture_default_str();
    app.add_flag("--json", json, "print the raw JSON result");
    app.add_option("--timeout", timeout, "seconds to wait for an answer")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.require_subcommand(1);

    auto *show = app.add_subcommand("show", "show states, counters, rules or interfaces");
    show->require_subcommand(1);
    show->fallthrough();
    auto *show_states = show->add_subcommand("states", "list states (pfctl -ss)");
    auto *show_info = show->add_subcommand("info", "status and counters (pfctl -si)");
    auto *show_rules = show->add_subcommand("rules", "rules with their counters (pfctl -vsr)");
    auto *show_interfaces = show->add_subcommand("interfaces", "ports, addresses, counters");
    auto *show_carp = show->add_subcommand("carp", "CARP virtual hosts");
    auto *show_sync = show->add_subcommand("sync", "pfsync status");
    auto *reload = app.add_subcommand("reload", "re-read the configuration's rules and tables");
    auto *kill = app.add_subcommand("kill", "remove states");
    kill->require_subcommand(1);
    kill->fallthrough();
    auto *kill_states = kill->add_subcommand("states", "remove the states matching --addr/--port");
    auto *carp = app.add_subcommand("carp", "raise or clear the operator's CARP demotion");
    carp->require_subcommand(1);
    carp->fallthrough();
    unsigned demote_by = 0;
    auto *carp_demote = carp->add_subcommand("demote", "add N to the demotion of every vhid");
    carp_demote->add_option("N", demote_by, "1..255")->required()->check(CLI::Range(1, 255));
    auto *carp_promote = carp->add_subcommand("promote", "remove the operator's demotion");
    carp_demote->fallthrough();
    carp_promote->fallthrough();
    auto *sync_cmd = app.add_subcommand("sync", "pfsync");
    sync_cmd->require_subcommand(1);
    sync_cmd->fallthrough();
    auto *sync_resync =
        sync_cmd->add_subcommand("resync", "ask the peers for every state (bulk update)");
    sync_resync->fallthrough();
    for (auto *sub : {show_states, show_info, show_rules, show_interfaces, show_carp, show_sync,
                      reload, kill_states})
        sub->fallthrough();

    bool verbose = false;
    std::string addr, proto;
    int port = -1;
    uint64_t limit = 0;
    show_states->add_flag("-v,--verbose", verbose, "windows, age, expiry, counters, rule, id");
    for (auto *sub : {show_states, kill_states}) {
        sub->add_option("--addr", addr, "either address of the state is A");
        sub->add_option("--port", port, "either port of the state is P")
            ->check(CLI::Range(0, 65535));
        sub->add_option("--proto", proto, "protocol name or number");
    }
    show_states
        ->add_option("--limit", limit,
                     "list at most N states (default: every one, fetched a page at a time)")
        ->check(CLI::PositiveNumber);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        const int rc = app.exit(e); // prints the help or the error
        return rc == 0 ? 0 : code(CtlExit::usage);
    }

    ctl::Command cmd = ctl::Command::show_info;
    if (show_states->parsed())
        cmd = ctl::Command::show_states;
    else if (show_info->parsed())
        cmd = ctl::Command::show_info;
    else if (show_rules->parsed())
        cmd = ctl::Command::show_rules;
    else if (show_interfaces->parsed())
        cmd = ctl::Command::show_interfaces;
    else if (show_carp->parsed())
        cmd = ctl::Command::show_carp;
    else if (show_sync->parsed())
        cmd = ctl::Command::show_sync;
    else if (reload->parsed())
        cmd = ctl::Command::reload;
    else if (kill_states->parsed())
        cmd = ctl::Command::kill_states;
    else if (carp_demote->parsed())
        cmd = ctl::Command::carp_demote;
    else if (carp_promote->parsed())
        cmd = ctl::Command::carp_promote;
    else if (sync_resync->parsed())
        cmd = ctl::Command::sync_resync;

    Json args = Json::object();
    if (cmd == ctl::Command::show_states || cmd == ctl::Command::kill_states) {
        const std::string name(ctl::command_name(cmd));
        if (!addr.empty()) {
            if (!config::parse_ip_address(addr)) {
                std::cerr << "syncwallctl: " << name << ": --addr " << addr
                          << " is not an IPv4 or IPv6 address\n";
                return code(CtlExit::usage);
            }
            args["addr"] = addr;
        }
        if (port >= 0) args["port"] = port;
        if (!proto.empty()) {
            const auto number = ctl::protocol_number(proto);
            if (!number) {
                std::cerr << "syncwallctl: " << name << ": unknown protocol " << proto
                          << " (a name such as tcp, udp, icmp, icmp6, or a number 0..255)\n";
                return code(CtlExit::usage);
            }
            args["proto"] = *number;
        }
        if (limit > 0) args["limit"] = limit;
        if (cmd == ctl::Command::kill_states && addr.empty() && port < 0) {
            std::cerr << "syncwallctl: kill states: needs --addr or --port\n";
            return code(CtlExit::usage);
        }
    }

    if (cmd == ctl::Command::carp_demote) args["n"] = demote_by;

    std::string error;
    Connection conn(socket_path, std::chrono::milliseconds(int64_t(timeout * 1000)));
    if (!conn.open(&error)) {
        std::cerr << "syncwallctl: " << error << "\n";
        return code(CtlExit::no_connection);
    }
    // One request and its reply; nullopt (after saying why) when there is no usable result.
    int failed = 0;
    const auto call = [&](const Json &call_args) -> std::optional<Json> {
        const auto line = conn.exchange(ctl::request_line(cmd, call_args), &error);
        if (!line) {
            std::cerr << "syncwallctl: " << error << "\n";
            failed = code(CtlExit::no_connection);
            return std::nullopt;
        }
        ctl::Reply reply = ctl::parse_reply(*line);
        if (!reply.ok) {
            std::cerr << "syncwallctl: " << reply.error << "\n";
            failed = code(ctl::exit_for(reply));
            return std::nullopt;
        }
        return std::move(reply.result);
    };

    try {
        if (cmd == ctl::Command::show_states) {
            // Page by page (control/mgmt/state_pages.hpp): text is printed as each page comes,
            // --json prints the pages joined into one result at the end.
            args.erase("limit");
            ctl::StatesWalk walk(args, limit);
            Json all = Json::array();
            while (const auto page_args = walk.next_args()) {
                const auto result = call(*page_args);
                if (!result) return failed;
                Json states = walk.take(*result);
                if (json) {
                    for (auto &s : states)
                        all.push_back(std::move(s));
                } else {
                    std::cout << ctl::format_states(Json{{"states", std::move(states)}}, verbose);
                }
            }
            if (json) {
                const Json joined{{"states", std::move(all)}, {"truncated", walk.truncated()}};
                std::cout << joined.dump(2) << "\n";
            }
            return code(CtlExit::ok);
        }
        const auto result = call(args);
        if (!result) return failed;
        if (json)
            std::cout << result->dump(2) << "\n";
        else
            std::cout << ctl::format_result(cmd, *result, verbose);
    } catch (const std::exception &e) { // a Json exception, or a page that does not follow
        std::cerr << "syncwallctl: unreadable result from syncwall: " << e.what() << "\n";
        return code(CtlExit::daemon_error);
    }
    return code(CtlExit::ok);
}
