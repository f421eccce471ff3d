#include "control/mgmt/mgmt_protocol.hpp"

#include "control/mgmt/commands.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

namespace syncwall::ctl {

namespace {

constexpr std::array<std::pair<uint8_t, std::string_view>, 12> protocol_names{{
    {1, "icmp"},
    {2, "igmp"},
    {6, "tcp"},
    {17, "udp"},
    {47, "gre"},
    {50, "esp"},
    {51, "ah"},
    {58, "ipv6-icmp"},
    {103, "pim"},
    {112, "carp"},
    {132, "sctp"},
    {240, "pfsync"},
}};

// Json::parse with a bound on nesting, and every failure as text rather than an exception.
// nlohmann's own DOM builder does the work; this only counts levels around it, and stops
// the parse (sax_parse returns false) at the first level too many, so nothing deeper is
// ever built, copied or printed. Errors name the byte where the parser stopped.
class DepthLimitedSax {
  public:
    DepthLimitedSax(Json &root, std::size_t max_depth) : dom_(root, false), max_(max_depth) {}

    bool null() { return dom_.null(); }
    bool boolean(bool v) { return dom_.boolean(v); }
    bool number_integer(Json::number_integer_t v) { return dom_.number_integer(v); }
    bool number_unsigned(Json::number_unsigned_t v) { return dom_.number_unsigned(v); }
    bool number_float(Json::number_float_t v, const Json::string_t &s) {
        return dom_.number_float(v, s);
    }
    bool string(Json::string_t &v) { return dom_.string(v); }
    bool binary(Json::binary_t &v) { return dom_.binary(v); }
    bool key(Json::string_t &v) { return dom_.key(v); }
    bool start_object(std::size_t n) { return enter() && dom_.start_object(n); }
    bool end_object() { return leave() && dom_.end_object(); }
    bool start_array(std::size_t n) { return enter() && dom_.start_array(n); }
    bool end_array() { return leave() && dom_.end_array(); }
    bool parse_error(std::size_t position, const std::string &,
                     const nlohmann::detail::exception &e) {
        error_ = e.id == 406 ? "invalid JSON: number overflow at byte " + std::to_string(position)
                             : "invalid JSON at byte " + std::to_string(position);
        return false;
    }

    bool too_deep() const { return too_deep_; }
    const std::string &error() const { return error_; }

  private:
    bool enter() {
        if (++depth_ <= max_) return true;
        too_deep_ = true;
        return false;
    }
    bool leave() {
        depth_--;
        return true;
    }

    nlohmann::detail::json_sax_dom_parser<Json> dom_;
    std::size_t max_;
    std::size_t depth_ = 0;
    bool too_deep_ = false;
    std::string error_;
};

struct ParsedJson {
    std::optional<Json> value;
    std::string error;     // why there is no value
    bool too_deep = false; // the error is the depth (the caller names the limit)
};

ParsedJson parse_json(std::string_view text, std::size_t max_depth) {
    ParsedJson out;
    Json value;
    DepthLimitedSax sax(value, max_depth);
    try {
        if (Json::sax_parse(text, &sax)) {
            out.value = std::move(value);
            return out;
        }
    } catch (const std::exception &e) { // not expected (errors reach parse_error), but never fatal
        out.error = std::string("invalid JSON: ") + e.what();
        return out;
    }
    out.too_deep = sax.too_deep();
    out.error = sax.error().empty() ? "invalid JSON" : sax.error();
    return out;
}

ParsedRequest fail(std::string error) {
    return ParsedRequest{std::nullopt, std::move(error)};
}

} // namespace

std::string shown(const Json &value) {
    std::string text = value.dump();
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return text;
}

std::optional<uint64_t> as_unsigned(const Json &value) {
    if (value.is_number_unsigned()) return value.get<uint64_t>();
    if (value.is_number_integer() && value.get<int64_t>() >= 0)
        return uint64_t(value.get<int64_t>());
    return std::nullopt;
}

bool StateFilter::matches(const dp::StateKey &key) const {
    if (proto && key.proto != *proto) return false;
    if (port && key.port[0] != *port && key.port[1] != *port) return false;
    if (addr) {
        if (key.af != addr->family) return false;
        const std::size_t len = addr->is_v4() ? 4 : 16;
        if (std::memcmp(key.addr[0].data(), addr->bytes.data(), len) != 0 &&
            std::memcmp(key.addr[1].data(), addr->bytes.data(), len) != 0)
            return false;
    }
    return true;
}

ParsedRequest parse_request(std::string_view line) {
    if (line.size() > max_request_bytes) return fail(too_long_error());
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return fail("empty request");
    ParsedJson parsed = parse_json(line, max_request_depth);
    if (parsed.too_deep)
        return fail("request nested deeper than " + std::to_string(max_request_depth) + " levels");
    if (!parsed.value) return fail(std::move(parsed.error));
    Json &req = *parsed.value;
    if (!req.is_object()) return fail("a request must be a JSON object");
    for (const auto &[key, value] : req.items())
        if (key != "v" && key != "cmd" && key != "args")
            return fail("unknown field \"" + key + "\" (fields: v, cmd, args)");
    if (!req.contains("v"))
        return fail("missing \"v\" (the protocol version; this syncwall speaks " +
                    std::to_string(mgmt_version) + ")");
    if (const auto v = as_unsigned(req["v"]); !v || *v != uint64_t(mgmt_version))
        return fail("unsupported protocol version " + shown(req["v"]) + " (this syncwall speaks " +
                    std::to_string(mgmt_version) + ")");
    if (!req.contains("cmd")) return fail("missing \"cmd\"");
    if (!req["cmd"].is_string()) return fail("\"cmd\" must be a string, got " + shown(req["cmd"]));
    const std::string cmd_text = req["cmd"].get<std::string>();
    const auto cmd = command_by_name(cmd_text);
    if (!cmd) {
        std::string all;
        for (const CommandSpec &spec : command_table())
            all += (all.empty() ? "" : ", ") + std::string(spec.name);
        return fail("unknown command " + shown(req["cmd"]) + " (commands: " + all + ")");
    }
    Request request;
    request.cmd = *cmd;
    Json args = Json::object();
    if (req.contains("args")) {
        if (!req["args"].is_object())
            return fail("\"args\" must be an object, got " + shown(req["args"]));
        args = req["args"];
    }
    if (std::string error = read_args(command_spec(*cmd), args, request); !error.empty())
        return fail(std::move(error));
    return ParsedRequest{request, {}};
}

std::string too_long_error() {
    return "request longer than " + std::to_string(max_request_bytes) + " bytes";
}

std::string ok_reply(const Json &result) {
    Json reply;
    reply["v"] = mgmt_version;
    reply["ok"] = true;
    reply["result"] = result;
    // Invalid UTF-8 in a string (an interface's devargs, say) is replaced, never thrown.
    return reply.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string error_reply(std::string_view error) {
    Json reply;
    reply["v"] = mgmt_version;
    reply["ok"] = false;
    reply["error"] = std::string(error);
    return reply.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string protocol_name(uint8_t proto) {
    for (const auto &[n, name] : protocol_names)
        if (n == proto) return std::string(name);
    return std::to_string(proto);
}

std::optional<uint8_t> protocol_number(std::string_view text) {
    if (text == "icmp6") return uint8_t(58);
    for (const auto &[n, name] : protocol_names)
        if (name == text) return n;
    if (text.empty() || text.size() > 3) return std::nullopt;
    unsigned value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + unsigned(c - '0');
    }
    if (value > 255) return std::nullopt;
    return uint8_t(value);
}

std::optional<LineFramer::Item> LineFramer::next() {
    for (;;) {
        const std::size_t nl = buf_.find('\n');
        if (nl == std::string::npos) {
            if (discarding_) {
                buf_.clear();
            } else if (buf_.size() > max_ + 1) { // + 1: a "\r" may still come before "\n"
                buf_.clear();
                discarding_ = true;
                return Item{Kind::too_long, {}};
            } else if (finished_ && !buf_.empty()) {
                Item item{Kind::line, std::move(buf_)};
                buf_.clear();
                if (!item.text.empty() && item.text.back() == '\r') item.text.pop_back();
                return item;
            }
            return std::nullopt;
        }
        if (discarding_) {
            buf_.erase(0, nl + 1);
            discarding_ = false;
            continue;
        }
        std::size_t len = nl;
        if (len > 0 && buf_[len - 1] == '\r') len--;
        if (len > max_) {
            buf_.erase(0, nl + 1);
            return Item{Kind::too_long, {}};
        }
        Item item{Kind::line, buf_.substr(0, len)};
        buf_.erase(0, nl + 1);
        return item;
    }
}

std::string request_line(Command cmd, const Json &args) {
    Json req;
    req["v"] = mgmt_version;
    req["cmd"] = std::string(command_name(cmd));
    if (!args.empty()) req["args"] = args;
    return req.dump();
}

Reply parse_reply(std::string_view line) {
    Reply reply;
    ParsedJson parsed = parse_json(line, max_reply_depth);
    if (!parsed.value) {
        reply.error = parsed.too_deep ? "unreadable reply (nested deeper than " +
                                            std::to_string(max_reply_depth) + " levels)"
                                      : "unreadable reply (" + parsed.error + ")";
        return reply;
    }
    Json &j = *parsed.value;
    if (!j.is_object() || !j.contains("ok") || !j["ok"].is_boolean()) {
        reply.error = "unreadable reply (not a reply object)";
        return reply;
    }
    if (!j.contains("v") || as_unsigned(j["v"]) != uint64_t(mgmt_version)) {
        reply.error = "reply of protocol version " + (j.contains("v") ? shown(j["v"]) : "?") +
                      " (syncwallctl speaks " + std::to_string(mgmt_version) + ")";
        return reply;
    }
    if (j["ok"].get<bool>()) {
        reply.ok = true;
        if (j.contains("result")) reply.result = std::move(j["result"]);
        return reply;
    }
    reply.error = j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>()
                                                                : "error without a message";
    return reply;
}

CtlExit exit_for(const Reply &reply) {
    return reply.ok ? CtlExit::ok : CtlExit::daemon_error;
}

} // namespace syncwall::ctl
