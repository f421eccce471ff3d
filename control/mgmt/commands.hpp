// The management commands, declared once: each command's name, its arguments (how the
// socket reads them and how syncwallctl spells them), its help line and its text view.
//
// Theory of operation: one table (commands.cpp) is read by every side that needs to know
// the commands, so that none of them keeps a list of its own:
// * the daemon: parse_request (mgmt_protocol.cpp) finds the command by name and reads each
//   argument through its ArgSpec; MgmtServer keeps one handler per Command and checks at
//   start that every command in the table has one;
// * syncwallctl: its subcommands, options, help and the request it sends are made from the
//   table, and it checks the request with the daemon's own parse_request before sending it;
// * the views: format_result calls the command's view;
// * the README's command list and syncwallctl's help are command_synopsis(); a unit test
//   holds the README, the man page and the bash completion to the table.
#pragma once

#include "control/mgmt/mgmt_protocol.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace syncwall::ctl {

// What an argument holds, and so how it is read (from JSON on the socket, from text on
// syncwallctl's command line) and where it goes in a Request.
enum class ArgKind : uint8_t {
    address,  // an IPv4 or IPv6 address: filter.addr
    port,     // 0..65535: filter.port
    protocol, // a name ("tcp", "icmp6") or 0..255: filter.proto
    limit,    // an integer >= 0: filter.limit
    cursor,   // an integer >= 0, a page's "next": filter.cursor
    demotion, // 1..255: demote
};

struct ArgSpec {
    ArgKind kind;
    std::string_view name;    // the key in the request's "args"
    std::string_view option;  // syncwallctl's spelling ("--addr"), "" when only the socket has it
    std::string_view metavar; // "A" in "--addr A"; an option without "--" is positional
    std::string_view help;    // syncwallctl's help for the option
    bool required = false;
};

struct CommandSpec {
    Command cmd;
    std::string_view name; // the request's "cmd"; its words are syncwallctl's subcommands
    std::string_view help; // one line: syncwallctl's help and the README's list
    std::span<const ArgSpec> args;
    // The text of the command's result (views.hpp); `verbose` is syncwallctl's -v.
    std::string (*view)(const Json &result, bool verbose);
    // syncwallctl's -v for the view, and what it adds; "" when the view has no longer form.
    std::string_view verbose_help = {};
    // The result is a page with "next" (state_pages.hpp): syncwallctl follows the pages, and
    // its --limit counts states over all of them rather than naming a page's size.
    bool paged = false;
    // Among these arguments at least one must be given (kill states never kills everything).
    std::span<const std::string_view> needs_one_of = {};
    std::string_view needs_why = {}; // why, for the error
};

// Every command, in the order help lists them.
std::span<const CommandSpec> command_table();
const CommandSpec &command_spec(Command cmd);
std::optional<Command> command_by_name(std::string_view name);

// Read one argument of `spec` from the request's JSON into `request`; "" or the error
// ("show states: \"port\" must be an integer 0..65535, got 70000").
std::string read_arg(const CommandSpec &spec, const ArgSpec &arg, const Json &value,
                     Request &request);
// Read every argument of a request (unknown ones, missing required ones, needs_one_of);
// "" or the error.
std::string read_args(const CommandSpec &spec, const Json &args, Request &request);
// An argument as syncwallctl's command line gives it (text) as the JSON value to send: a
// number where the argument is one and the text is digits, the text otherwise (read_arg
// then says what is wrong with it, in the daemon's words).
Json arg_from_text(const ArgSpec &arg, const std::string &text);

// The command list as the README and `syncwallctl --help` show it: one line per command,
// its options and its help, after the global options' line.
std::string command_synopsis();

} // namespace syncwall::ctl
