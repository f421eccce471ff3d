// The command table (control/mgmt/commands.hpp): every command reads its arguments through
// it, has a view, and is listed the same way by syncwallctl's help, the README, the man page
// and the bash completion.
#include "control/mgmt/commands.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <sstream>

using namespace syncwall;
using namespace syncwall::ctl;

namespace {

std::string source_file(const std::string &path) {
    std::ifstream in(std::string(SYNCWALL_SOURCE_ROOT) + "/" + path);
    REQUIRE(in);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// A value every argument of its kind accepts.
Json good_value(ArgKind kind) {
    switch (kind) {
    case ArgKind::address:
        return "192.0.2.10";
    case ArgKind::port:
        return 22;
    case ArgKind::protocol:
        return "tcp";
    case ArgKind::limit:
    case ArgKind::cursor:
        return 5;
    case ArgKind::demotion:
        return 7;
    }
    return nullptr;
}

// "\-\-addr" as groff wants a "-" written.
std::string man_escaped(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '-') out += '\\';
        out += c;
    }
    return out;
}

} // namespace

TEST_CASE("every command is in the table once, with a view and arguments named once",
          "[mgmt][commands]") {
    std::set<std::string_view> names;
    std::set<Command> cmds;
    for (const CommandSpec &spec : command_table()) {
        INFO(spec.name);
        CHECK(names.insert(spec.name).second);
        CHECK(cmds.insert(spec.cmd).second);
        CHECK(spec.view != nullptr);
        CHECK_FALSE(spec.help.empty());
        CHECK(command_by_name(spec.name) == spec.cmd);
        CHECK(&command_spec(spec.cmd) == &spec);
        std::set<std::string_view> args;
        for (const ArgSpec &a : spec.args)
            CHECK(args.insert(a.name).second);
        for (std::string_view n : spec.needs_one_of)
            CHECK(args.count(n) == 1);
    }
    CHECK(cmds.size() == std::size_t(Command::sync_resync) + 1);
    CHECK_FALSE(command_by_name("show everything"));
}

TEST_CASE("each command's request with all its arguments parses to what was sent",
          "[mgmt][commands]") {
    for (const CommandSpec &spec : command_table()) {
        INFO(spec.name);
        Json args = Json::object();
        for (const ArgSpec &a : spec.args)
            args[std::string(a.name)] = good_value(a.kind);
        const ParsedRequest p = parse_request(request_line(spec.cmd, args));
        INFO(p.error);
        REQUIRE(p.request);
        CHECK(p.request->cmd == spec.cmd);
        for (const ArgSpec &a : spec.args) {
            switch (a.kind) {
            case ArgKind::address:
                CHECK(p.request->filter.addr->to_string() == "192.0.2.10");
                break;
            case ArgKind::port:
                CHECK(p.request->filter.port == uint16_t(22));
                break;
            case ArgKind::protocol:
                CHECK(p.request->filter.proto == uint8_t(6));
                break;
            case ArgKind::limit:
                CHECK(p.request->filter.limit == uint64_t(5));
                break;
            case ArgKind::cursor:
                CHECK(p.request->filter.cursor == uint64_t(5));
                break;
            case ArgKind::demotion:
                CHECK(p.request->demote == 7u);
                break;
            }
        }
    }
}

TEST_CASE("syncwallctl's text arguments become the values the daemon reads", "[mgmt][commands]") {
    const CommandSpec &states = command_spec(Command::show_states);
    const auto arg = [&](std::string_view name) -> const ArgSpec & {
        for (const ArgSpec &a : states.args)
            if (a.name == name) return a;
        FAIL("no argument " << name);
        throw;
    };
    CHECK(arg_from_text(arg("port"), "80") == Json(80));
    CHECK(arg_from_text(arg("port"), "eighty") == Json("eighty"));
    CHECK(arg_from_text(arg("proto"), "6") == Json("6"));
    CHECK(arg_from_text(arg("addr"), "2001:db8::1") == Json("2001:db8::1"));
    Request r;
    CHECK(read_arg(states, arg("port"), arg_from_text(arg("port"), "70000"), r) ==
          "show states: \"port\" must be an integer 0..65535, got 70000");
    CHECK(read_arg(states, arg("port"), arg_from_text(arg("port"), "-1"), r) ==
          "show states: \"port\" must be an integer 0..65535, got \"-1\"");
    CHECK(read_arg(states, arg("proto"), arg_from_text(arg("proto"), "6"), r).empty());
    CHECK(r.filter.proto == uint8_t(6));
}

TEST_CASE("the README lists the commands as syncwallctl --help does", "[mgmt][commands]") {
    const std::string readme = source_file("README.md");
    INFO("README.md's command list is command_synopsis():\n" << command_synopsis());
    CHECK(readme.find("```sh\n" + command_synopsis() + "```\n") != std::string::npos);
}

TEST_CASE("the man page and the bash completion know every command and option",
          "[mgmt][commands]") {
    const std::string man = source_file("dist/man/syncwallctl.8");
    const std::string completion = source_file("dist/syncwallctl.bash-completion");
    std::set<std::string> man_commands;
    std::istringstream lines(man);
    for (std::string line; std::getline(lines, line);)
        if (line.starts_with(".TP")) {
            std::string next;
            if (std::getline(lines, next) && next.starts_with(".B ")) {
                std::string words = next.substr(3);
                words = words.substr(0, words.find(" \\f"));
                man_commands.insert(words);
            }
        }
    std::set<std::string> table_commands;
    for (const CommandSpec &spec : command_table()) {
        INFO(spec.name);
        table_commands.insert(std::string(spec.name));
        // The man page's line for the command, with its options.
        const auto at = man.find(".B " + std::string(spec.name));
        REQUIRE(at != std::string::npos);
        const std::string line = man.substr(at, man.find('\n', at) - at);
        if (!spec.verbose_help.empty()) CHECK(line.find("\\-v") != std::string::npos);
        for (const ArgSpec &a : spec.args) {
            if (a.option.empty()) continue;
            INFO(a.option);
            CHECK(line.find(man_escaped(a.option)) != std::string::npos);
            if (a.option.starts_with("-"))
                CHECK(completion.find(std::string(a.option)) != std::string::npos);
        }
        // Both words of "show states" among the completion's words.
        std::istringstream words{std::string(spec.name)};
        for (std::string w; words >> w;)
            CHECK(completion.find(w) != std::string::npos);
    }
    // Options of the man page's command list: nothing the table does not have.
    std::set<std::string> extra;
    for (const auto &c : man_commands)
        if (!c.starts_with("\\-") && table_commands.count(c) == 0) extra.insert(c);
    CHECK(extra.empty());
}
