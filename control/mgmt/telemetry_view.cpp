#include "control/mgmt/telemetry_view.hpp"

#include <charconv>
#include <limits>

namespace syncwall::ctl {

namespace {

bool allowed(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == '/';
}

std::string clean(std::string_view name) {
    std::string out(name);
    for (char &c : out)
        if (!allowed(c)) c = '_';
    return out;
}

std::string join(const std::string &path, std::string_view key) {
    return path.empty() ? clean(key) : path + "/" + clean(key);
}

std::variant<uint64_t, int32_t, std::string> leaf(const Json &j) {
    if (j.is_boolean()) return uint64_t(j.get<bool>() ? 1 : 0);
    if (j.is_number_unsigned()) return j.get<uint64_t>();
    if (j.is_number_integer()) {
        const int64_t v = j.get<int64_t>();
        if (v >= 0) return uint64_t(v);
        if (v >= std::numeric_limits<int32_t>::min()) return int32_t(v);
        return std::to_string(v);
    }
    if (j.is_number_float()) {
        char text[64];
        const auto r = std::to_chars(text, text + sizeof(text), j.get<double>());
        return std::string(text, r.ptr);
    }
    if (j.is_string()) return j.get<std::string>();
    return std::string("null");
}

void walk(const Json &j, const std::string &path, std::vector<TelemetryEntry> &out) {
    if (j.is_object()) {
        for (const auto &[key, value] : j.items())
            walk(value, join(path, key), out);
    } else if (j.is_array()) {
        for (std::size_t i = 0; i < j.size(); i++)
            walk(j[i], join(path, std::to_string(i)), out);
    } else {
        out.push_back({path.empty() ? std::string("value") : path, leaf(j)});
    }
}

} // namespace

std::vector<TelemetryEntry> telemetry_entries(const Json &result, std::size_t max_entries) {
    std::vector<TelemetryEntry> out;
    walk(result, "", out);
    if (out.size() > max_entries && max_entries > 0) {
        out.resize(max_entries - 1);
        out.push_back({"truncated", uint64_t(1)});
    }
    return out;
}

} // namespace syncwall::ctl
