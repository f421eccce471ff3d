// DPDK telemetry: /syncwall/info, /syncwall/carp and /syncwall/sync for dpdk-telemetry.py.
//
// Theory of operation: DPDK answers telemetry requests on its own thread (made by
// rte_eal_init unless --no-telemetry), not on an lcore of ours, so the callbacks must not
// touch the Dataplane, the MgmtServer or anything else the main lcore owns. Instead the main
// lcore (observability.hpp, every half second) runs show info, show carp and show sync and
// publish()es their results, flattened by telemetry_view.hpp, as one immutable snapshot; a
// callback takes the snapshot's shared_ptr under a mutex (held for a pointer copy, never
// while building a reply) and copies it into rte_tel_data. A reply is therefore at most one
// publication interval old.
//
// DPDK 22.11's callbacks get no context pointer and commands cannot be unregistered, so the
// snapshot lives in one process-wide holder (the only global of its kind here, forced by
// that API) that is never destroyed: the telemetry thread may still call in while the
// process exits. Until the first publish() and after withdraw() the commands answer
// {"available": 0, "reason": ...}.
#pragma once

#include "control/mgmt/mgmt_protocol.hpp"

namespace syncwall::ctl {

class TelemetryPublisher {
  public:
    // Registers the commands (once per process).
    TelemetryPublisher();
    // Withdraws the snapshot.
    ~TelemetryPublisher();
    TelemetryPublisher(const TelemetryPublisher &) = delete;
    TelemetryPublisher &operator=(const TelemetryPublisher &) = delete;

    // Main lcore: replace the snapshot the commands answer with.
    void publish(const Json &info, const Json &carp, const Json &sync);
    // Main lcore: answer "not running" from now on (the control loop is stopping).
    void withdraw();
};

} // namespace syncwall::ctl
