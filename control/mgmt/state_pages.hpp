// `show states` a page at a time: the bounds, the daemon's page and syncwallctl's walk.
//
// The main lcore answers `show states` with one page: at most max_state_page states (the
// request's "limit", default_state_page without one) found in at most state_page_scan slots
// of the state table, so the size of a reply and the time its walk holds the main lcore are
// bounded whatever the table holds. The reply's "next" is the slot to go on from, which the
// client sends back as "cursor"; it is null once the walk has reached the table's end.
// Pages walk the slots in order, so no state is ever listed twice, but they are not one
// snapshot: a state created behind the cursor after its page was made is not listed.
// Pure (no DPDK): the table is reached through a SlotWalk, so all of it is unit-tested.
#pragma once

#include "control/mgmt/mgmt_protocol.hpp"
#include "dataplane/state.hpp"

#include <cstdint>
#include <functional>
#include <optional>

namespace syncwall::ctl {

inline constexpr uint64_t default_state_page = 1000;
inline constexpr uint64_t max_state_page = 2000;
inline constexpr uint32_t state_page_scan = 1u << 16;

// Visits the live states of slots [first, first + count) (clipped to the table) in order,
// each a copy, until visit returns false. Returns the first slot not finished with: the
// one whose visit returned false, or the end of the range.
using SlotWalk = std::function<uint32_t(
    uint32_t first, uint32_t count, const std::function<bool(uint32_t, const dp::State &)> &visit)>;
// One state as an element of show states' "states" (mgmt_server.hpp).
using DescribeState = std::function<Json(uint32_t slot, const dp::State &)>;

// A translated state's other key (NAT), if the state in `slot` has one.
using OtherKey = std::function<bool(uint32_t slot, const dp::State &, dp::StateKey &)>;

// The show states result for `filter` (its limit and cursor) over a table of `slots` slots:
// {"states": [...], "truncated": bool, "next": slot | null}; truncated is next != null.
// A translated state matches when either of its keys does (`other_key`, optional).
Json state_page(const StateFilter &filter, uint32_t slots, const SlotWalk &walk,
                const DescribeState &describe, const OtherKey &other_key = nullptr);

// syncwallctl's walk through the pages of one `show states`, on one connection.
class StatesWalk {
  public:
    // `filter`: the request's addr/port/proto arguments; `want`: list at most this many
    // states in all (0: every one).
    StatesWalk(Json filter, uint64_t want) : filter_(std::move(filter)), want_(want) {}

    // The next request's arguments, or nullopt once the walk is over.
    std::optional<Json> next_args() const;
    // Take one page's result and return its states, in order, to print as they come.
    // Throws std::runtime_error (or a Json exception) for a result that is malformed or
    // whose "next" does not move on, so that a confused daemon cannot loop the client.
    Json take(const Json &result);

    uint64_t listed() const { return listed_; }
    // Stopped at `want` with states left to list.
    bool truncated() const { return truncated_; }

  private:
    Json filter_;
    uint64_t want_;
    uint64_t listed_ = 0;
    std::optional<uint64_t> cursor_;
    bool done_ = false;
    bool truncated_ = false;
};

} // namespace syncwall::ctl
