// A management result as DPDK telemetry can carry it: a flat list of named values.
//
// Theory of operation: DPDK 22.11's rte_tel_data holds a dict of at most
// RTE_TEL_MAX_DICT_ENTRIES values (strings, 32-bit ints, u64) and arrays one level down,
// with names of letters, digits, '_' and '/' only; the results of show info, show carp and
// show sync nest deeper than that. So telemetry.hpp publishes them flattened: every leaf
// under its path joined with '/' ("states/current", "drops/filter_block",
// "ports/0/rx_packets", "vhids/0/role"), array elements by index. Pure (no DPDK) so that
// the naming rules are unit-tested; telemetry.cpp only copies the entries into rte_tel_data.
//
//   numbers >= 0          u64
//   negative numbers      int when they fit in 32 bits, else their decimal text
//   booleans              u64 1 or 0
//   fractions, strings    text; null is "null"
//   empty objects/arrays  nothing
#pragma once

#include "control/mgmt/mgmt_protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace syncwall::ctl {

struct TelemetryEntry {
    std::string name;
    std::variant<uint64_t, int32_t, std::string> value;

    bool operator==(const TelemetryEntry &) const = default;
};

// The leaves of `result` in document order. Characters telemetry refuses in a name become
// '_'. When there are more than `max_entries` leaves, the first max_entries - 1 are kept and
// the last entry is {"truncated", 1}.
std::vector<TelemetryEntry> telemetry_entries(const Json &result, std::size_t max_entries);

} // namespace syncwall::ctl
