// Text forms of addresses, and the lookups a loaded Config offers.
#include "config/config.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstdio>

namespace syncwall::config {

namespace {

// inet_pton reads a C string: text with an embedded NUL must not parse as its prefix.
bool has_nul(const std::string &text) {
    return text.find('\0') != std::string::npos;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// "24" -> 24; at most three decimal digits, no sign or spaces.
std::optional<unsigned> parse_prefix_length(const std::string &text) {
    if (text.empty() || text.size() > 3) return std::nullopt;
    unsigned value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + unsigned(c - '0');
    }
    return value;
}

} // namespace

std::string SourcePos::to_string() const {
    if (line <= 0) return file;
    return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

IpPrefix network_of(IpPrefix prefix) {
    for (size_t bit = prefix.length; bit < size_t(prefix.addr.is_v4() ? 32 : 128); bit++)
        prefix.addr.bytes[bit / 8] &= uint8_t(~(0x80u >> (bit % 8)));
    return prefix;
}

std::string IpAddress::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    int af = is_v4() ? AF_INET : is_v6() ? AF_INET6 : 0;
    if (af == 0 || inet_ntop(af, bytes.data(), text, sizeof(text)) == nullptr) return "unset";
    return text;
}

std::string IpPrefix::to_string() const {
    return addr.to_string() + "/" + std::to_string(length);
}

std::optional<IpAddress> parse_ip_address(const std::string &text) {
    if (has_nul(text)) return std::nullopt;
    IpAddress addr;
    bool v6 = text.find(':') != std::string::npos;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, text.c_str(), addr.bytes.data()) != 1)
        return std::nullopt;
    addr.family = v6 ? 6 : 4;
    return addr;
}

std::optional<IpPrefix> parse_ip_prefix(const std::string &text, bool require_length) {
    size_t slash = text.find('/');
    if (slash == std::string::npos && require_length) return std::nullopt;
    auto addr = parse_ip_address(text.substr(0, slash));
    if (!addr) return std::nullopt;
    unsigned max_length = addr->is_v4() ? 32 : 128;
    if (slash == std::string::npos) return IpPrefix{*addr, uint8_t(max_length)};
    auto length = parse_prefix_length(text.substr(slash + 1));
    if (!length || *length > max_length) return std::nullopt;
    return IpPrefix{*addr, uint8_t(*length)};
}

std::string MacAddress::to_string() const {
    char text[18];
    std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                  bytes[3], bytes[4], bytes[5]);
    return text;
}

std::optional<MacAddress> parse_mac(const std::string &text) {
    // Exactly "hh:hh:hh:hh:hh:hh": 6 pairs of hex digits and 5 colons.
    if (text.size() != 17) return std::nullopt;
    MacAddress mac;
    for (size_t i = 0; i < mac.bytes.size(); i++) {
        size_t at = i * 3;
        if (i > 0 && text[at - 1] != ':') return std::nullopt;
        int high = hex_digit(text[at]);
        int low = hex_digit(text[at + 1]);
        if (high < 0 || low < 0) return std::nullopt;
        mac.bytes[i] = uint8_t(high << 4 | low);
    }
    return mac;
}

int Config::interface_index(const std::string &name) const {
    for (size_t i = 0; i < interfaces.size(); i++)
        if (interfaces[i].name == name) return int(i);
    return -1;
}

} // namespace syncwall::config
