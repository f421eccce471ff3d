// The management protocol without a socket: what each request parses to, the exact error
// each kind of malformed request gets, line framing with its size bound, state filters,
// and how syncwallctl reads replies into its exit status.
#include "control/mgmt/mgmt_protocol.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>

using namespace syncwall;
using namespace syncwall::ctl;

namespace {

std::string error_of(std::string_view line) {
    const ParsedRequest p = parse_request(line);
    REQUIRE_FALSE(p.request);
    return p.error;
}

Request parsed(std::string_view line) {
    const ParsedRequest p = parse_request(line);
    INFO(p.error);
    REQUIRE(p.request);
    return *p.request;
}

dp::StateKey key4(const char *a0, uint16_t p0, const char *a1, uint16_t p1, uint8_t proto) {
    dp::StateKey k;
    k.af = 4;
    k.proto = proto;
    REQUIRE(inet_pton(AF_INET, a0, k.addr[0].data()) == 1);
    REQUIRE(inet_pton(AF_INET, a1, k.addr[1].data()) == 1);
    k.port[0] = p0;
    k.port[1] = p1;
    return k;
}

} // namespace

TEST_CASE("every command name parses to its command", "[mgmt]") {
    const std::pair<const char *, Command> all[] = {
        {"show states", Command::show_states}, {"show info", Command::show_info},
        {"show rules", Command::show_rules},   {"show interfaces", Command::show_interfaces},
        {"show carp", Command::show_carp},     {"show sync", Command::show_sync},
        {"reload", Command::reload},           {"kill states", Command::kill_states},
        {"carp demote", Command::carp_demote}, {"carp promote", Command::carp_promote},
        {"sync resync", Command::sync_resync},
    };
    for (const auto &[name, cmd] : all) {
        const std::string args = cmd == Command::kill_states   ? R"(,"args":{"port":22})"
                                 : cmd == Command::carp_demote ? R"(,"args":{"n":1})"
                                                               : "";
        CHECK(parsed(std::string(R"({"v":1,"cmd":")") + name + "\"" + args + "}").cmd == cmd);
        CHECK(command_name(cmd) == name);
    }
}

TEST_CASE("show states takes addr, port, proto by name or number, and limit", "[mgmt]") {
    const Request r = parsed(
        R"({"v":1,"cmd":"show states","args":{"addr":"192.0.2.10","port":80,"proto":"tcp","limit":5}})");
    REQUIRE(r.filter.addr);
    CHECK(r.filter.addr->to_string() == "192.0.2.10");
    CHECK(r.filter.port == uint16_t(80));
    CHECK(r.filter.proto == uint8_t(6));
    CHECK(r.filter.limit == uint64_t(5));

    CHECK(parsed(R"({"v":1,"cmd":"show states","args":{"proto":17}})").filter.proto == uint8_t(17));
    CHECK(parsed(R"({"v":1,"cmd":"show states","args":{"proto":"icmp6"}})").filter.proto ==
          uint8_t(58));
    CHECK(parsed(R"({"v":1,"cmd":"show states","args":{"addr":"2001:db8::1"}})")
              .filter.addr->family == 6);
    const Request none = parsed(R"({"v":1,"cmd":"show states"})");
    CHECK_FALSE(none.filter.addr);
    CHECK_FALSE(none.filter.port);
    CHECK_FALSE(none.filter.proto);
    CHECK_FALSE(none.filter.limit);
    // Whitespace, key order and a CRLF-free line with spaces are all fine.
    CHECK(parsed(R"(  { "cmd" : "show info" , "v" : 1 , "args" : { } }  )").cmd ==
          Command::show_info);
}

TEST_CASE("malformed requests get an error naming what is wrong", "[mgmt]") {
    CHECK(error_of("") == "empty request");
    CHECK(error_of("   ") == "empty request");
    CHECK(error_of("garbage") == "invalid JSON at byte 1");
    // nlohmann counts bytes from 1; the end of the input is one past the last byte.
    CHECK(error_of(R"({"v":1,"cmd":"show info")") == "invalid JSON at byte 25");
    CHECK(error_of("[1,2]") == "a request must be a JSON object");
    CHECK(error_of("\"show info\"") == "a request must be a JSON object");
    CHECK(error_of(R"({"cmd":"show info"})") ==
          "missing \"v\" (the protocol version; this syncwall speaks 1)");
    CHECK(error_of(R"({"v":2,"cmd":"show info"})") ==
          "unsupported protocol version 2 (this syncwall speaks 1)");
    CHECK(error_of(R"({"v":"1","cmd":"show info"})") ==
          "unsupported protocol version \"1\" (this syncwall speaks 1)");
    CHECK(error_of(R"({"v":1})") == "missing \"cmd\"");
    CHECK(error_of(R"({"v":1,"cmd":7})") == "\"cmd\" must be a string, got 7");
    CHECK(error_of(R"({"v":1,"cmd":"show everything"})") ==
          "unknown command \"show everything\" (commands: show states, show info, show rules, "
          "show interfaces, show carp, show sync, reload, kill states, carp demote, carp promote, "
          "sync resync)");
    CHECK(error_of(R"({"v":1,"cmd":"show info","id":3})") ==
          "unknown field \"id\" (fields: v, cmd, args)");
    CHECK(error_of(R"({"v":1,"cmd":"show info","args":[]})") ==
          "\"args\" must be an object, got []");
    CHECK(error_of(R"({"v":1,"cmd":"show info","args":{"verbose":true}})") ==
          "show info: takes no arguments, got \"verbose\"");
}

TEST_CASE("state filter arguments of the wrong type or range are refused", "[mgmt]") {
    const auto states = [](const std::string &args) {
        return error_of(R"({"v":1,"cmd":"show states","args":)" + args + "}");
    };
    CHECK(states(R"({"port":"80"})") ==
          "show states: \"port\" must be an integer 0..65535, got \"80\"");
    CHECK(states(R"({"port":65536})") ==
          "show states: \"port\" must be an integer 0..65535, got 65536");
    CHECK(states(R"({"port":-1})") == "show states: \"port\" must be an integer 0..65535, got -1");
    CHECK(states(R"({"port":8.5})") ==
          "show states: \"port\" must be an integer 0..65535, got 8.5");
    CHECK(states(R"({"addr":"192.0.2.300"})") ==
          "show states: \"addr\" must be an IPv4 or IPv6 address, got \"192.0.2.300\"");
    CHECK(states(R"({"addr":3232235777})") ==
          "show states: \"addr\" must be an IPv4 or IPv6 address, got 3232235777");
    CHECK(states(R"({"proto":"tcpp"})") ==
          "show states: \"proto\" must be a protocol name or a number 0..255, got \"tcpp\"");
    CHECK(states(R"({"proto":256})") ==
          "show states: \"proto\" must be a protocol name or a number 0..255, got 256");
    CHECK(states(R"({"proto":true})") ==
          "show states: \"proto\" must be a protocol name or a number 0..255, got true");
    CHECK(states(R"({"limit":-3})") == "show states: \"limit\" must be an integer >= 0, got -3");
    CHECK(states(R"({"host":"192.0.2.1"})") ==
          "show states: unknown argument \"host\" (arguments: addr, port, proto, limit, cursor)");
    // A long value is cut short in the message.
    CHECK(states(R"({"addr":")" + std::string(100, 'x') + "\"}") ==
          "show states: \"addr\" must be an IPv4 or IPv6 address, got \"" + std::string(36, 'x') +
              "...");
}

TEST_CASE("carp demote takes n in 1..255; carp promote takes nothing", "[mgmt]") {
    CHECK(parsed(R"({"v":1,"cmd":"carp demote","args":{"n":32}})").demote == 32u);
    CHECK(parsed(R"({"v":1,"cmd":"carp demote","args":{"n":255}})").demote == 255u);
    CHECK(error_of(R"({"v":1,"cmd":"carp demote"})") ==
          "carp demote: \"n\" must be an integer 1..255, got nothing");
    CHECK(error_of(R"({"v":1,"cmd":"carp demote","args":{"n":0}})") ==
          "carp demote: \"n\" must be an integer 1..255, got 0");
    CHECK(error_of(R"({"v":1,"cmd":"carp demote","args":{"n":256}})") ==
          "carp demote: \"n\" must be an integer 1..255, got 256");
    CHECK(error_of(R"({"v":1,"cmd":"carp demote","args":{"n":"5"}})") ==
          "carp demote: \"n\" must be an integer 1..255, got \"5\"");
    CHECK(error_of(R"({"v":1,"cmd":"carp demote","args":{"n":1,"by":2}})") ==
          "carp demote: unknown argument \"by\" (arguments: n)");
    CHECK(parsed(R"({"v":1,"cmd":"carp promote"})").cmd == Command::carp_promote);
    CHECK(error_of(R"({"v":1,"cmd":"carp promote","args":{"n":1}})") ==
          "carp promote: takes no arguments, got \"n\"");
}

TEST_CASE("kill states needs an address or a port and takes no limit", "[mgmt]") {
    CHECK(error_of(R"({"v":1,"cmd":"kill states"})") ==
          "kill states: needs \"addr\" or \"port\" (it never kills every state)");
    CHECK(error_of(R"({"v":1,"cmd":"kill states","args":{"proto":"tcp"}})") ==
          "kill states: needs \"addr\" or \"port\" (it never kills every state)");
    CHECK(error_of(R"({"v":1,"cmd":"kill states","args":{"port":22,"limit":1}})") ==
          "kill states: unknown argument \"limit\" (arguments: addr, port, proto)");
    const Request r = parsed(R"({"v":1,"cmd":"kill states","args":{"addr":"192.0.2.10"}})");
    CHECK(r.cmd == Command::kill_states);
    CHECK(r.filter.addr->to_string() == "192.0.2.10");
}

TEST_CASE("a request line longer than 64 KiB is refused", "[mgmt]") {
    std::string line = R"({"v":1,"cmd":"show info","args":{}})";
    line.insert(line.size() - 2, std::string(max_request_bytes, ' '));
    CHECK(error_of(line) == "request longer than 65536 bytes");
    CHECK(too_long_error() == "request longer than 65536 bytes");
    // Exactly the limit is fine.
    std::string fits = R"({"v":1,"cmd":"show info"})";
    fits.append(max_request_bytes - fits.size(), ' ');
    CHECK(parsed(fits).cmd == Command::show_info);
}

TEST_CASE("replies are one JSON object with the version", "[mgmt]") {
    CHECK(ok_reply(Json{{"killed", 2}}) == R"({"v":1,"ok":true,"result":{"killed":2}})");
    CHECK(error_reply("unknown command \"x\"") ==
          R"({"v":1,"ok":false,"error":"unknown command \"x\""})");
    // Bytes that are not UTF-8 (a devargs string, say) do not make the reply throw.
    CHECK(ok_reply(Json{{"devargs", std::string("a\xff")}}) ==
          "{\"v\":1,\"ok\":true,\"result\":{\"devargs\":\"a\xef\xbf\xbd\"}}");
}

TEST_CASE("the line framer splits requests and bounds what it holds", "[mgmt]") {
    LineFramer f(16);
    f.feed("{\"a\":1}\n{\"b\"");
    auto item = f.next();
    REQUIRE(item);
    CHECK(item->kind == LineFramer::Kind::line);
    CHECK(item->text == "{\"a\":1}");
    CHECK_FALSE(f.next());
    f.feed(":2}\r\n");
    item = f.next();
    REQUIRE(item);
    CHECK(item->text == "{\"b\":2}");

    SECTION("an overlong line is reported once, skipped, and the next line read normally") {
        f.feed(std::string(10, 'x'));
        CHECK_FALSE(f.next());
        f.feed(std::string(10, 'x'));
        item = f.next();
        REQUIRE(item);
        CHECK(item->kind == LineFramer::Kind::too_long);
        CHECK(f.buffered() == 0);
        f.feed(std::string(1000, 'y'));
        CHECK_FALSE(f.next()); // still inside the long line: dropped as it comes
        CHECK(f.buffered() == 0);
        f.feed("yyy\nok\n");
        item = f.next();
        REQUIRE(item);
        CHECK(item->kind == LineFramer::Kind::line);
        CHECK(item->text == "ok");
        CHECK_FALSE(f.next());
    }
    SECTION("an overlong line arriving whole with its newline is reported too") {
        f.feed(std::string(17, 'z') + "\nnext\n");
        item = f.next();
        REQUIRE(item);
        CHECK(item->kind == LineFramer::Kind::too_long);
        item = f.next();
        REQUIRE(item);
        CHECK(item->text == "next");
    }
    SECTION("a line of exactly the limit passes, CRLF included") {
        f.feed(std::string(16, 'a') + "\r");
        CHECK_FALSE(f.next());
        f.feed("\n");
        item = f.next();
        REQUIRE(item);
        CHECK(item->kind == LineFramer::Kind::line);
        CHECK(item->text == std::string(16, 'a'));
    }
    SECTION("a last line without a newline counts once the stream ends") {
        f.feed("{\"c\":3}");
        CHECK_FALSE(f.next());
        f.finish();
        item = f.next();
        REQUIRE(item);
        CHECK(item->text == "{\"c\":3}");
        CHECK_FALSE(f.next());
    }
    SECTION("empty lines are lines (they get an error reply)") {
        f.feed("\n\n");
        CHECK(f.next()->text.empty());
        CHECK(f.next()->text.empty());
        CHECK_FALSE(f.next());
    }
}

TEST_CASE("a state filter matches either address and either port", "[mgmt]") {
    const dp::StateKey k = key4("192.0.2.10", 40000, "198.51.100.10", 80, 6);
    StateFilter f;
    CHECK(f.matches(k));
    f.addr = config::parse_ip_address("198.51.100.10");
    CHECK(f.matches(k));
    f.addr = config::parse_ip_address("192.0.2.10");
    CHECK(f.matches(k));
    f.port = 80;
    CHECK(f.matches(k));
    f.port = 40000;
    CHECK(f.matches(k));
    f.proto = 17;
    CHECK_FALSE(f.matches(k));
    f.proto = 6;
    CHECK(f.matches(k));
    f.port = 443;
    CHECK_FALSE(f.matches(k));
    f.port.reset();
    f.addr = config::parse_ip_address("192.0.2.11");
    CHECK_FALSE(f.matches(k));
    // The IPv6 address whose first bytes spell the IPv4 one is another address.
    f.addr = config::parse_ip_address("c000:20a::");
    CHECK_FALSE(f.matches(k));
}

TEST_CASE("protocol names as pfctl prints them", "[mgmt]") {
    CHECK(protocol_name(6) == "tcp");
    CHECK(protocol_name(17) == "udp");
    CHECK(protocol_name(1) == "icmp");
    CHECK(protocol_name(58) == "ipv6-icmp");
    CHECK(protocol_name(99) == "99");
    CHECK(protocol_number("ipv6-icmp") == uint8_t(58));
    CHECK(protocol_number("132") == uint8_t(132));
    CHECK_FALSE(protocol_number("256"));
    CHECK_FALSE(protocol_number(""));
    CHECK_FALSE(protocol_number("TCP"));
}

TEST_CASE("syncwallctl requests and how it reads replies into its exit status", "[mgmt]") {
    CHECK(request_line(Command::show_info) == R"({"v":1,"cmd":"show info"})");
    CHECK(request_line(Command::kill_states, Json{{"addr", "192.0.2.10"}}) ==
          R"({"v":1,"cmd":"kill states","args":{"addr":"192.0.2.10"}})");
    // What the client sends is what the daemon accepts.
    CHECK(
        parsed(request_line(Command::show_states, Json{{"port", 80}, {"proto", 6}})).filter.port ==
        uint16_t(80));

    Reply ok = parse_reply(R"({"v":1,"ok":true,"result":{"killed":2}})");
    CHECK(ok.ok);
    CHECK(ok.result["killed"] == 2);
    CHECK(exit_for(ok) == CtlExit::ok);

    Reply err = parse_reply(R"({"v":1,"ok":false,"error":"fw.yaml:3:5: rule: bad"})");
    CHECK_FALSE(err.ok);
    CHECK(err.error == "fw.yaml:3:5: rule: bad");
    CHECK(exit_for(err) == CtlExit::daemon_error);

    CHECK(parse_reply("nonsense").error ==
          "unreadable reply (invalid JSON at byte 2)"); // "n" may start null
    CHECK(parse_reply("[]").error == "unreadable reply (not a reply object)");
    CHECK(parse_reply(R"({"v":2,"ok":true})").error ==
          "reply of protocol version 2 (syncwallctl speaks 1)");
    CHECK(parse_reply(R"({"v":1,"ok":false})").error == "error without a message");
    CHECK(exit_for(parse_reply("nonsense")) == CtlExit::daemon_error);
    CHECK(int(CtlExit::usage) == 2);
    CHECK(int(CtlExit::no_connection) == 3);
}

TEST_CASE("a number too large for a double is an error reply, not an exception", "[mgmt]") {
    // nlohmann throws out_of_range (not parse_error) for these: the parser must catch it.
    std::string error;
    REQUIRE_NOTHROW(error = parse_request("1e999").error);
    CHECK(error == "invalid JSON: number overflow at byte 5");
    REQUIRE_NOTHROW(
        error = parse_request(R"({"v":1,"cmd":"show states","args":{"limit":1e999}})").error);
    CHECK(error == "invalid JSON: number overflow at byte 48");
    REQUIRE_NOTHROW(error = parse_request("-1e400").error);
    CHECK_FALSE(error.empty());

    Reply reply;
    REQUIRE_NOTHROW(reply = parse_reply(R"({"v":1,"ok":true,"result":{"uptime":1e999}})"));
    CHECK_FALSE(reply.ok);
    CHECK(reply.error == "unreadable reply (invalid JSON: number overflow at byte 41)");
    CHECK(exit_for(reply) == CtlExit::daemon_error);
}

TEST_CASE("requests nested deeper than the limit are refused before they are copied", "[mgmt]") {
    // A 64 KiB line of "[[[[..." as args: refused with its depth, whatever comes after it.
    std::string deep = R"({"v":1,"cmd":"show states","args":)";
    deep.append(max_request_bytes - deep.size() - 1, '[');
    deep += "}";
    REQUIRE(deep.size() == max_request_bytes);
    std::string error;
    REQUIRE_NOTHROW(error = parse_request(deep).error);
    CHECK(error == "request nested deeper than " + std::to_string(max_request_depth) + " levels");
    // Deep but well-formed, and deep inside an argument's value.
    std::string nested = R"({"v":1,"cmd":"show states","args":{"addr":)";
    for (int i = 0; i < 20000; i++)
        nested += "[";
    for (int i = 0; i < 20000; i++)
        nested += "]";
    nested += "}}";
    CHECK(error_of(nested) ==
          "request nested deeper than " + std::to_string(max_request_depth) + " levels");
    // The limit itself still parses (and is then refused for what it says, not its depth).
    std::string at_limit = R"({"v":1,"cmd":"show states","args":{"addr":)";
    for (std::size_t i = 2; i < max_request_depth; i++)
        at_limit += "[";
    for (std::size_t i = 2; i < max_request_depth; i++)
        at_limit += "]";
    at_limit += "}}";
    CHECK(error_of(at_limit).starts_with("show states: \"addr\" must be an IPv4 or IPv6 address"));
    // A reply as deep is unreadable to the client, not a crash.
    std::string deep_reply = R"({"v":1,"ok":true,"result":)";
    for (int i = 0; i < 100000; i++)
        deep_reply += "[";
    for (int i = 0; i < 100000; i++)
        deep_reply += "]";
    deep_reply += "}";
    Reply reply;
    REQUIRE_NOTHROW(reply = parse_reply(deep_reply));
    CHECK_FALSE(reply.ok);
    CHECK(reply.error ==
          "unreadable reply (nested deeper than " + std::to_string(max_reply_depth) + " levels)");
}
