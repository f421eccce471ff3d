// syncwallctl: ask a running syncwall over its control socket, and print what it says the
// way pfctl would (or the raw JSON result with --json).
//
//   syncwallctl [-s SOCKET] [--json] [--timeout SECONDS] COMMAND [ARGS]
//
// The commands, their arguments and their views come from the command table
// (control/mgmt/commands.hpp); `syncwallctl --help` lists them.
//
// Exit status: 0 ok, 1 the daemon answered with an error, 2 usage error, 3 no daemon
// answering on the socket. The protocol is in control/mgmt/mgmt_protocol.hpp, the text views in
// control/mgmt/views.hpp; this file only makes the command line from the table and moves one
// line each way.
#include "config/config.hpp"
#include "control/mgmt/commands.hpp"
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
#include <map>
#include <optional>
#include <string>
#include <vector>

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

    // The subcommands, their options and help, from the command table (commands.hpp): "show
    // states" is `show`, then `states`. Each argument's text is kept to be read as the daemon
    // reads it.
    struct Leaf {
        const ctl::CommandSpec *spec;
        CLI::App *app;
        std::vector<std::string> values; // one per spec->args
    };
    std::vector<Leaf> leaves;
    leaves.reserve(ctl::command_table().size());
    bool verbose = false;
    std::map<std::string, CLI::App *> groups; // "show", "kill", ...
    for (const ctl::CommandSpec &spec : ctl::command_table()) {
        const std::string name(spec.name);
        const auto space = name.find(' ');
        CLI::App *parent = &app;
        std::string leaf_name = name;
        if (space != std::string::npos) {
            const std::string group = name.substr(0, space);
            leaf_name = name.substr(space + 1);
            parent = groups[group];
            if (parent == nullptr) {
                std::string members;
                for (const ctl::CommandSpec &other : ctl::command_table())
                    if (std::string_view(other.name).starts_with(group + " "))
                        members += (members.empty() ? "" : ", ") +
                                   std::string(other.name.substr(group.size() + 1));
                parent = groups[group] = app.add_subcommand(group, members);
                parent->require_subcommand(1);
                parent->fallthrough();
            }
        }
        Leaf &leaf = leaves.emplace_back(
            Leaf{&spec, parent->add_subcommand(leaf_name, std::string(spec.help)), {}});
        leaf.app->fallthrough();
        leaf.values.resize(spec.args.size());
        if (!spec.verbose_help.empty())
            leaf.app->add_flag("-v,--verbose", verbose, std::string(spec.verbose_help));
        for (std::size_t i = 0; i < spec.args.size(); i++) {
            const ctl::ArgSpec &a = spec.args[i];
            if (a.option.empty()) continue; // the socket's alone (show states' cursor)
            auto *opt =
                leaf.app->add_option(std::string(a.option), leaf.values[i], std::string(a.help));
            if (a.option.starts_with("-")) opt->type_name(std::string(a.metavar));
            if (a.required) opt->required();
        }
    }
    app.footer("Commands:\n" + ctl::command_synopsis());

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        const int rc = app.exit(e); // prints the help or the error
        return rc == 0 ? 0 : code(CtlExit::usage);
    }

    const Leaf *chosen = nullptr;
    for (const Leaf &leaf : leaves)
        if (leaf.app->parsed()) chosen = &leaf;
    if (chosen == nullptr) { // require_subcommand makes this unreachable
        std::cerr << "syncwallctl: no command\n";
        return code(CtlExit::usage);
    }
    const ctl::CommandSpec &spec = *chosen->spec;
    const ctl::Command cmd = spec.cmd;
    Json args = Json::object();
    for (std::size_t i = 0; i < spec.args.size(); i++) {
        const ctl::ArgSpec &a = spec.args[i];
        if (!a.option.empty() && chosen->app->count(std::string(a.option)) > 0)
            args[std::string(a.name)] = ctl::arg_from_text(a, chosen->values[i]);
    }
    // The daemon's own reading of the request: what it would refuse is a usage error here.
    if (const auto parsed = ctl::parse_request(ctl::request_line(cmd, args)); !parsed.request) {
        std::cerr << "syncwallctl: " << parsed.error << "\n";
        return code(CtlExit::usage);
    }
    // A paged command's --limit counts states over every page (state_pages.hpp).
    uint64_t limit = 0;
    if (spec.paged && args.contains("limit")) {
        limit = args["limit"].get<uint64_t>();
        args.erase("limit");
    }

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
        if (spec.paged) {
            // Page by page (control/mgmt/state_pages.hpp): text is printed as each page comes,
            // --json prints the pages joined into one result at the end.
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
