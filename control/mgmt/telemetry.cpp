#include "control/mgmt/telemetry.hpp"

#include "control/mgmt/telemetry_view.hpp"

#include <rte_telemetry.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace syncwall::ctl {

namespace {

struct Snapshot {
    std::vector<TelemetryEntry> info, carp, sync;
};

struct Holder {
    std::mutex mutex;
    std::shared_ptr<const Snapshot> snapshot;
};

// Leaked on purpose: see the header (the telemetry thread outlives static destructors).
Holder &holder() {
    static Holder *h = new Holder;
    return *h;
}

std::shared_ptr<const Snapshot> current() {
    Holder &h = holder();
    std::lock_guard lock(h.mutex);
    return h.snapshot;
}

void fill(rte_tel_data *d, const std::vector<TelemetryEntry> &entries) {
    rte_tel_data_start_dict(d);
    for (const auto &e : entries) {
        std::visit(
            [&](const auto &v) {
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, uint64_t>)
                    rte_tel_data_add_dict_u64(d, e.name.c_str(), v);
                else if constexpr (std::is_same_v<T, int32_t>)
                    rte_tel_data_add_dict_int(d, e.name.c_str(), v);
                else
                    rte_tel_data_add_dict_string(d, e.name.c_str(), v.c_str());
            },
            e.value);
    }
}

template <std::vector<TelemetryEntry> Snapshot::*part>
int answer(const char *, const char *, rte_tel_data *d) {
    const auto snapshot = current();
    if (!snapshot) {
        rte_tel_data_start_dict(d);
        rte_tel_data_add_dict_u64(d, "available", 0);
        rte_tel_data_add_dict_string(d, "reason", "syncwall's control loop is not running");
        return 0;
    }
    fill(d, (*snapshot).*part);
    return 0;
}

void register_commands() {
    struct Command {
        const char *name;
        telemetry_cb fn;
        const char *help;
    };
    const Command commands[] = {
        {"/syncwall/info", answer<&Snapshot::info>,
         "syncwall status and counters (syncwallctl show info), flattened. Takes no parameters"},
        {"/syncwall/carp", answer<&Snapshot::carp>,
         "syncwall CARP virtual hosts (syncwallctl show carp), flattened. Takes no parameters"},
        {"/syncwall/sync", answer<&Snapshot::sync>,
         "syncwall pfsync status (syncwallctl show sync), flattened. Takes no parameters"},
    };
    for (const auto &c : commands)
        if (rte_telemetry_register_cmd(c.name, c.fn, c.help) != 0)
            std::fprintf(stderr, "syncwall: cannot register telemetry command %s\n", c.name);
}

} // namespace

TelemetryPublisher::TelemetryPublisher() {
    static std::once_flag once;
    std::call_once(once, register_commands);
}

TelemetryPublisher::~TelemetryPublisher() {
    withdraw();
}

void TelemetryPublisher::publish(const Json &info, const Json &carp, const Json &sync) {
    auto next = std::make_shared<Snapshot>();
    next->info = telemetry_entries(info, RTE_TEL_MAX_DICT_ENTRIES);
    next->carp = telemetry_entries(carp, RTE_TEL_MAX_DICT_ENTRIES);
    next->sync = telemetry_entries(sync, RTE_TEL_MAX_DICT_ENTRIES);
    std::shared_ptr<const Snapshot> old;
    {
        Holder &h = holder();
        std::lock_guard lock(h.mutex);
        old = std::exchange(h.snapshot, std::move(next));
    }
    // `old` is freed here, outside the lock; a callback holding it keeps it alive.
}

void TelemetryPublisher::withdraw() {
    std::shared_ptr<const Snapshot> old;
    Holder &h = holder();
    std::lock_guard lock(h.mutex);
    old = std::exchange(h.snapshot, nullptr);
}

} // namespace syncwall::ctl
