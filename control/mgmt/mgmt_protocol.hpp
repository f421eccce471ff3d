// The management protocol: what travels on the control socket, without the socket.
//
// Theory of operation: the daemon (mgmt_server.hpp, main lcore) and syncwallctl speak one
// JSON object per line each way over a Unix stream socket, version 1:
//
//   request   {"v":1,"cmd":"show states","args":{"addr":"192.0.2.10","proto":"tcp"}}
//   reply     {"v":1,"ok":true,"result":{...}}
//   or        {"v":1,"ok":false,"error":"show states: \"port\" must be an integer 0..65535"}
//
// Every request gets exactly one reply line, in order; a malformed one (not JSON, not an
// object, another version, an unknown command or argument, a wrong type, a line longer than
// max_request_bytes) gets an error reply and the connection stays usable. Everything here
// is pure (no DPDK, no sockets) so that parsing, framing and the client's exit codes are
// unit-tested on their own; the result objects of each command are documented in
// mgmt_server.hpp and turned into text by views.hpp.
#pragma once

#include "config/config.hpp"
#include "dataplane/state.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace syncwall::ctl {

// Key order is kept (drop reasons in enum order, fields as written), on both sides.
using Json = nlohmann::ordered_json;

inline constexpr int mgmt_version = 1;
inline constexpr std::size_t max_request_bytes = 64 * 1024; // one line, without its newline
// Arrays and objects inside one another: a request needs 2 (itself, its args), a reply a few
// more. Deeper input is refused while it is parsed, before anything copies or prints it
// (both recurse once per level).
inline constexpr std::size_t max_request_depth = 4;
inline constexpr std::size_t max_reply_depth = 32;

enum class Command : uint8_t {
    show_states,
    show_info,
    show_rules,
    show_interfaces,
    show_carp,
    show_sync,
    reload,
    kill_states,
    carp_demote,  // args {"n": 1..255}: add n to the operator's CARP demotion
    carp_promote, // remove the operator's CARP demotion
    sync_resync,  // ask the pfsync peers for a bulk update
};

// "show states", "kill states", ...: the `cmd` string (commands.hpp holds the table).
std::string_view command_name(Command cmd);

// A value quoted in an error message, cut short so that replies stay small.
std::string shown(const Json &value);
// A JSON integer >= 0, or nullopt (a float, a negative number, anything else).
std::optional<uint64_t> as_unsigned(const Json &value);

// Which states `show states` lists and `kill states` removes. Unset fields match anything.
struct StateFilter {
    std::optional<config::IpAddress> addr; // either address of the key
    std::optional<uint16_t> port;          // either port of the key
    std::optional<uint8_t> proto;
    std::optional<uint64_t> limit;  // show states: a page of at most this many (state_pages.hpp)
    std::optional<uint64_t> cursor; // show states: the slot to go on from (a page's "next")

    bool matches(const dp::StateKey &key) const;
};

struct Request {
    Command cmd = Command::show_info;
    StateFilter filter;  // show states, kill states
    unsigned demote = 0; // carp demote
};

// A parsed request, or the error text to reply with.
struct ParsedRequest {
    std::optional<Request> request;
    std::string error;
};
ParsedRequest parse_request(std::string_view line);

// Reply lines, without the trailing newline.
std::string ok_reply(const Json &result);
std::string error_reply(std::string_view error);
// The error for a line longer than max_request_bytes.
std::string too_long_error();

// Protocol names as pfctl prints them ("tcp", "ipv6-icmp"), or the number.
std::string protocol_name(uint8_t proto);
// "tcp", "udp", "icmp", "icmp6" (or "ipv6-icmp"), a few more, or "0".."255".
std::optional<uint8_t> protocol_number(std::string_view text);

// Reassembles request lines from what a stream delivers, holding at most max_line bytes
// (plus the last chunk fed). A line longer than max_line is reported once as too_long and
// then skipped up to its newline, so that the next request is read normally.
class LineFramer {
  public:
    explicit LineFramer(std::size_t max_line = max_request_bytes) : max_(max_line) {}

    enum class Kind : uint8_t { line, too_long };
    struct Item {
        Kind kind;
        std::string text; // the line without "\n" (and without a "\r" before it)
    };

    void feed(std::string_view bytes) { buf_.append(bytes); }
    // The stream ended: a last line without a newline still counts.
    void finish() { finished_ = true; }
    // The next complete line or too_long event, if any.
    std::optional<Item> next();
    std::size_t buffered() const { return buf_.size(); }

  private:
    std::string buf_;
    std::size_t max_;
    bool discarding_ = false; // inside a line already reported as too long
    bool finished_ = false;
};

// --- the client side (syncwallctl) -------------------------------------------------------

// syncwallctl's exit status.
enum class CtlExit : int {
    ok = 0,
    daemon_error = 1,  // the daemon answered with an error (or with something unreadable)
    usage = 2,         // bad command line
    no_connection = 3, // no daemon on the socket, or it went away before answering
};

// The request line for a command, without the trailing newline.
std::string request_line(Command cmd, const Json &args = Json::object());

// A reply line as the client sees it: ok with a result, or an error message (the daemon's,
// or why the reply could not be read).
struct Reply {
    bool ok = false;
    Json result;
    std::string error;
};
Reply parse_reply(std::string_view line);
CtlExit exit_for(const Reply &reply);

} // namespace syncwall::ctl
