#include "control/mgmt/commands.hpp"

#include "control/mgmt/views.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

namespace syncwall::ctl {

namespace {

// The arguments, each declared once and shared by the commands that take it.
constexpr ArgSpec addr_arg{ArgKind::address, "addr", "--addr", "A",
                           "either address of the state is A"};
constexpr ArgSpec port_arg{ArgKind::port, "port", "--port", "P", "either port of the state is P"};
constexpr ArgSpec proto_arg{ArgKind::protocol, "proto", "--proto", "X",
                            "protocol name (tcp, udp, icmp, icmp6, ...) or number"};
constexpr ArgSpec limit_arg{ArgKind::limit, "limit", "--limit", "N",
                            "list at most N states (default: every one, fetched a page at a time)"};
constexpr ArgSpec cursor_arg{ArgKind::cursor, "cursor", "", "", "the slot to go on from"};
constexpr ArgSpec demotion_arg{ArgKind::demotion, "n", "N", "N", "1..255", true};

constexpr std::array show_states_args{addr_arg, port_arg, proto_arg, limit_arg, cursor_arg};
constexpr std::array kill_states_args{addr_arg, port_arg, proto_arg};
constexpr std::array carp_demote_args{demotion_arg};
constexpr std::array<std::string_view, 2> addr_or_port{"addr", "port"};

std::string view_states(const Json &r, bool verbose) {
    return format_states(r, verbose);
}
// A view without a longer form, as a command's view.
template <std::string (*format)(const Json &)> std::string plain(const Json &r, bool) {
    return format(r);
}

const std::array<CommandSpec, 11> table{{
    {Command::show_states, "show states", "list states, as pfctl -ss (-v: as pfctl -vvss)",
     show_states_args, view_states, "windows, age, expiry, counters, rule, id", true},
    {Command::show_info,
     "show info",
     "status, interface stats, state table, drops by reason (pfctl -si)",
     {},
     plain<format_info>},
    {Command::show_rules,
     "show rules",
     "each rule with its matches, packets, bytes and states (pfctl -vvsr)",
     {},
     plain<format_rules>},
    {Command::show_interfaces,
     "show interfaces",
     "ports, MACs, addresses, counters",
     {},
     plain<format_interfaces>},
    {Command::show_carp,
     "show carp",
     "CARP virtual hosts: role, timers, demotion, adverts",
     {},
     plain<format_carp>},
    {Command::show_sync,
     "show sync",
     "pfsync: peer, queue and lag, bulk update, counters",
     {},
     plain<format_sync>},
    {Command::reload,
     "reload",
     "re-read the rules and tables, as SIGHUP does; answers once the new rules are in force",
     {},
     plain<format_reload>},
    {Command::kill_states,
     "kill states",
     "remove the states matching --addr and/or --port (one of them is needed)",
     kill_states_args,
     plain<format_kill>,
     {},
     false,
     addr_or_port,
     "it never kills every state"},
    {Command::carp_demote, "carp demote", "add N to the operator's demotion of every vhid",
     carp_demote_args, plain<format_carp>},
    {Command::carp_promote,
     "carp promote",
     "remove the operator's demotion",
     {},
     plain<format_carp>},
    {Command::sync_resync,
     "sync resync",
     "ask the pfsync peers for every state (bulk update)",
     {},
     plain<format_sync>},
}};

bool is_digits(const std::string &text) {
    return !text.empty() && text.size() <= 19 &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

} // namespace

std::span<const CommandSpec> command_table() {
    return table;
}

const CommandSpec &command_spec(Command cmd) {
    for (const auto &spec : table)
        if (spec.cmd == cmd) return spec;
    throw std::logic_error("a command missing from the command table");
}

std::optional<Command> command_by_name(std::string_view name) {
    for (const auto &spec : table)
        if (spec.name == name) return spec.cmd;
    return std::nullopt;
}

std::string_view command_name(Command cmd) {
    for (const auto &spec : table)
        if (spec.cmd == cmd) return spec.name;
    return "?";
}

namespace {

// What an argument of each kind must be, as errors say it.
std::string_view expected(ArgKind kind) {
    switch (kind) {
    case ArgKind::address:
        return "an IPv4 or IPv6 address";
    case ArgKind::port:
        return "an integer 0..65535";
    case ArgKind::protocol:
        return "a protocol name or a number 0..255";
    case ArgKind::limit:
        return "an integer >= 0";
    case ArgKind::cursor:
        return "an integer >= 0 (a page's \"next\")";
    case ArgKind::demotion:
        return "an integer 1..255";
    }
    return "?";
}

std::string arg_error(const CommandSpec &spec, const ArgSpec &arg, const std::string &got) {
    return std::string(spec.name) + ": \"" + std::string(arg.name) + "\" must be " +
           std::string(expected(arg.kind)) + ", got " + got;
}

} // namespace

std::string read_arg(const CommandSpec &spec, const ArgSpec &arg, const Json &value,
                     Request &request) {
    StateFilter &filter = request.filter;
    switch (arg.kind) {
    case ArgKind::address:
        if (value.is_string()) filter.addr = config::parse_ip_address(value.get<std::string>());
        if (!value.is_string() || !filter.addr) break;
        return {};
    case ArgKind::port:
        if (const auto port = as_unsigned(value); port && *port <= 65535) {
            filter.port = uint16_t(*port);
            return {};
        }
        break;
    case ArgKind::protocol:
        if (value.is_string())
            filter.proto = protocol_number(value.get<std::string>());
        else if (const auto n = as_unsigned(value); n && *n <= 255)
            filter.proto = uint8_t(*n);
        if (!filter.proto) break;
        return {};
    case ArgKind::limit:
        if (!(filter.limit = as_unsigned(value))) break;
        return {};
    case ArgKind::cursor:
        if (!(filter.cursor = as_unsigned(value))) break;
        return {};
    case ArgKind::demotion:
        if (const auto n = as_unsigned(value); n && *n >= 1 && *n <= 255) {
            request.demote = unsigned(*n);
            return {};
        }
        break;
    }
    return arg_error(spec, arg, shown(value));
}

std::string read_args(const CommandSpec &spec, const Json &args, Request &request) {
    const std::string name(spec.name);
    for (const auto &item : args.items()) {
        const std::string &key = item.key();
        const Json &value = item.value();
        const auto arg = std::find_if(spec.args.begin(), spec.args.end(),
                                      [&](const ArgSpec &a) { return a.name == key; });
        if (arg == spec.args.end()) {
            if (spec.args.empty()) return name + ": takes no arguments, got \"" + key + "\"";
            std::string allowed;
            for (const ArgSpec &a : spec.args)
                allowed += (allowed.empty() ? "" : ", ") + std::string(a.name);
            return name + ": unknown argument \"" + key + "\" (arguments: " + allowed + ")";
        }
        if (std::string error = read_arg(spec, *arg, value, request); !error.empty()) return error;
    }
    for (const ArgSpec &a : spec.args)
        if (a.required && !args.contains(a.name)) return arg_error(spec, a, "nothing");
    if (!spec.needs_one_of.empty() &&
        std::none_of(spec.needs_one_of.begin(), spec.needs_one_of.end(),
                     [&](std::string_view n) { return args.contains(n); })) {
        std::string which;
        for (std::size_t i = 0; i < spec.needs_one_of.size(); i++)
            which += std::string(i == 0                              ? ""
                                 : i + 1 == spec.needs_one_of.size() ? " or "
                                                                     : ", ") +
                     "\"" + std::string(spec.needs_one_of[i]) + "\"";
        return name + ": needs " + which + " (" + std::string(spec.needs_why) + ")";
    }
    return {};
}

Json arg_from_text(const ArgSpec &arg, const std::string &text) {
    switch (arg.kind) {
    case ArgKind::port:
    case ArgKind::limit:
    case ArgKind::cursor:
    case ArgKind::demotion:
        if (is_digits(text)) return Json(std::stoull(text));
        return Json(text);
    case ArgKind::protocol: // names and numbers alike, as the daemon reads them
    case ArgKind::address:
        return Json(text);
    }
    return Json(text);
}

std::string command_synopsis() {
    std::string out = "syncwallctl [-s SOCKET] [--json] [--timeout SECONDS] COMMAND\n";
    for (const CommandSpec &spec : table) {
        std::string line = "  " + std::string(spec.name);
        if (!spec.verbose_help.empty()) line += " [-v]";
        for (const ArgSpec &a : spec.args) {
            if (a.option.empty()) continue;
            const bool positional = !a.option.starts_with("-");
            const std::string text = positional
                                         ? std::string(a.metavar)
                                         : std::string(a.option) + " " + std::string(a.metavar);
            line += a.required ? " " + text : " [" + text + "]";
        }
        out += line + "\n      " + std::string(spec.help) + "\n";
    }
    return out;
}

} // namespace syncwall::ctl
