#include "control/mgmt/state_pages.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace syncwall::ctl {

Json state_page(const StateFilter &filter, uint32_t slots, const SlotWalk &walk,
                const DescribeState &describe, const OtherKey &other_key) {
    const uint64_t size = std::min(filter.limit.value_or(default_state_page), max_state_page);
    const uint64_t first = filter.cursor.value_or(0);
    Json states = Json::array();
    std::optional<uint32_t> next;
    if (first < slots) {
        const uint32_t from = uint32_t(first);
        const uint32_t count = std::min(slots - from, state_page_scan);
        const uint32_t stopped = walk(from, count, [&](uint32_t slot, const dp::State &s) {
            dp::StateKey other;
            if (!filter.matches(s.key) &&
                !(other_key && other_key(slot, s, other) && filter.matches(other)))
                return true;
            if (states.size() >= size) return false; // the next page starts here
            states.push_back(describe(slot, s));
            return true;
        });
        if (stopped < slots) next = stopped;
    }
    return Json{{"states", std::move(states)},
                {"truncated", next.has_value()},
                {"next", next ? Json(*next) : Json(nullptr)}};
}

std::optional<Json> StatesWalk::next_args() const {
    if (done_) return std::nullopt;
    Json args = filter_;
    if (want_ > 0) args["limit"] = std::min(want_ - listed_, max_state_page);
    if (cursor_) args["cursor"] = *cursor_;
    return args;
}

Json StatesWalk::take(const Json &result) {
    Json states = result.at("states");
    if (!states.is_array()) throw std::runtime_error("\"states\" is not a list");
    if (want_ > 0 && states.size() > want_ - listed_) {
        states.erase(states.begin() + std::ptrdiff_t(want_ - listed_), states.end());
        truncated_ = true;
    }
    listed_ += states.size();
    // A daemon that does not page (no "next") gave everything in one reply.
    const Json next = result.contains("next") ? result["next"] : Json(nullptr);
    if (next.is_null()) {
        done_ = true;
    } else {
        const bool slot = next.is_number_integer() && next.get<int64_t>() >= 0;
        const uint64_t n = slot ? next.get<uint64_t>() : 0;
        if (!slot || (cursor_ && n <= *cursor_))
            throw std::runtime_error("the next page (\"next\": " + next.dump() +
                                     ") does not follow the last one");
        cursor_ = n;
        if (want_ > 0 && listed_ >= want_) {
            truncated_ = true;
            done_ = true;
        }
    }
    return states;
}

} // namespace syncwall::ctl
