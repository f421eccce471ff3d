// The Dataplane context: everything the lcores share, built from a Config.
//
// Theory of operation: app/main initialises EAL, then builds one Dataplane from the loaded
// Config on the main lcore. It opens every interface (rte_dev_probe of its devargs), makes
// one mbuf pool per NUMA socket, the per-worker punt rings (worker -> main, single
// producer/consumer), the hand-off rings between workers, the workers' reassembly pools, the
// per-port control tx rings (main -> the worker that owns queue 0 of the port), the route and
// neighbour tables and the per-lcore counters, and, when control.pflog names a file, the pflog
// writer for `log` rules (pflog_writer.hpp). Workers (worker.hpp) and the control loop (control/)
// receive a reference to it; there are no globals.
//
// Queues: each worker w polls rx queue w and transmits on tx queue w of every data port.
// The main lcore does not take a tx queue of its own: PMDs such as net_af_packet pair rx
// and tx queues, so a spare tx queue would bring a receive queue nobody polls. Its frames
// go through the port's control tx ring instead, which worker 0 drains into its own queue.
#pragma once

#include "config/config.hpp"
#include "config/pf_rule.hpp"
#include "dataplane/counters.hpp"
#include "dataplane/martian.hpp"
#include "dataplane/neighbours.hpp"
#include "dataplane/routes.hpp"
#include "dataplane/state_logic.hpp"
#include "dataplane/virtual_mac.hpp"

#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

struct rte_mempool;
struct rte_ring;
struct rte_mbuf;
struct rte_rcu_qsbr;

namespace syncwall::dp {

class StateTable;
class Ruleset;
struct CompiledRule;
class PflogWriter;

// Bursts, filter batches and bulk lookups are at most this many packets.
inline constexpr uint16_t max_burst = 64;
inline constexpr unsigned max_filter_batch = max_burst;

// Room for a burst's worth of T, left unconstructed: an array of a type with default member
// initialisers (StateKey, FilterVerdict, NeighbourKey) is zeroed whole on every call, 64
// elements whatever the burst's size (~7 KiB a burst of 32 across the filter's keys, the
// verdicts and the neighbour keys). Each element is made with std::construct_at before use.
template <class T, std::size_t N> union BurstArray {
    static_assert(std::is_trivially_destructible_v<T>);
    BurstArray() {}
    T v[N];
    T &operator[](std::size_t i) { return v[i]; }
    const T &operator[](std::size_t i) const { return v[i]; }
    T *data() { return v; }
};

struct Port {
    std::string name; // the interface name from the config
    std::string devargs;
    uint16_t port_id = 0; // DPDK port id
    Mac mac{};
    std::vector<config::IpPrefix> addresses;
    uint16_t mtu = 1500;
    bool is_sync = false;  // the dedicated pfsync port: not a data port
    bool soft_mac = false; // `mac` is configured but the device could not take it
    uint16_t rx_queues = 0, tx_queues = 0;
    // Checksums the device verifies on receive (RTE_ETH_RX_OFFLOAD_IPV4/TCP/UDP_CKSUM, those
    // it offers): its per-packet verdict in ol_flags then stands for ours (packet.hpp).
    uint64_t rx_checksum_offloads = 0;
    rte_ring *ctl_tx = nullptr; // frames from the main lcore, sent by worker 0

    bool has_address(const uint8_t *addr, uint8_t family) const;
    // "ipv4", "tcp", "udp": the checksums in rx_checksum_offloads, for show interfaces.
    std::vector<std::string> device_checksums() const;
};

// Why a worker hands a packet to the main lcore (PuntMeta::kind).
enum class PuntKind : uint8_t {
    arp,          // ARP for us or to learn from
    local,        // addressed to one of our addresses
    resolve,      // next hop has no neighbour entry yet
    ttl_exceeded, // ICMP time exceeded owed to the sender
    too_big,      // ICMP fragmentation needed / packet too big owed to the sender
    multicast,    // link-local multicast/broadcast for the control plane (CARP, ND, ...)
    block_return, // blocked by a `block return` rule: a RST or ICMP unreachable is owed
    reply,        // a reply the worker built in place (challenge ACK): route and send it
};

// What travels with a packet handed to the main lcore, in a dynamic field of its mbuf
// (rte_mbuf_dynfield, registered by the Dataplane; punt_meta()).
struct PuntMeta {
    PuntKind kind;
    uint16_t in_port;                 // our port index it arrived on
    uint32_t next_hop;                // route next-hop id (resolve, too_big, ttl_exceeded)
    config::BlockPolicy block_policy; // block_return: what the rule answers with
    // Held by the main lcore for neighbour resolution: a forwarded packet whose TTL is yet
    // to be decremented (false for a frame the main lcore built itself).
    bool owes_ttl_decrement;
};

// The dynamic field's offset in every mbuf; -1 until a Dataplane registered it.
inline int punt_meta_offset = -1;
inline PuntMeta &punt_meta(rte_mbuf *m) {
    return *RTE_MBUF_DYNFIELD(m, punt_meta_offset, PuntMeta *);
}

// What travels with a packet one worker hands to another (the state's owner: worker.hpp),
// in the same dynamic field as PuntMeta: a packet is handed or punted, never both at once.
struct HandoffMeta {
    uint16_t in_port; // our port index it arrived on
    // Its inbound pass is done (the state it matched there, if any, is the receiver's): the
    // owner routes it and filters it outbound only. Otherwise the owner filters it from the
    // inbound pass on.
    bool inbound_done;
};
static_assert(sizeof(HandoffMeta) <= sizeof(PuntMeta));
inline HandoffMeta &handoff_meta(rte_mbuf *m) {
    return *RTE_MBUF_DYNFIELD(m, punt_meta_offset, HandoffMeta *);
}

// One direction between two workers: a single-producer, single-consumer ring of packets.
// The producer publishes how many it has put in after each enqueue (a release store), and
// the consumer takes no more than that (after an acquire load): the packets' bytes are
// ordered before their use by an atomic the C++ memory model (and ThreadSanitizer) sees,
// not only by the ring's own, which Debian's uninstrumented DPDK hides.
struct HandoffRing {
    rte_ring *ring = nullptr;
    alignas(64) std::atomic<uint64_t> produced{0}; // written by the producing worker
    alignas(64) uint64_t consumed = 0;             // the consuming worker's own count
};
inline constexpr unsigned handoff_ring_size = 1024; // packets; a full ring drops (counted)

class Dataplane {
  public:
    explicit Dataplane(const config::Config &cfg); // EAL must be initialised
    ~Dataplane();
    Dataplane(const Dataplane &) = delete;
    Dataplane &operator=(const Dataplane &) = delete;

    void start_ports();
    void stop_ports();

    const config::Config &cfg;
    rte_mempool *pool = nullptr;      // on the main lcore's socket, for frames it builds
    std::vector<Port> ports;          // config order; index = "our port index"
    std::vector<uint16_t> data_ports; // indices of data (non-sync) ports
    int sync_port = -1;               // index of the sync port, or -1
    std::unique_ptr<RouteTable> routes;
    std::unique_ptr<NeighbourTable> neighbours;
    MartianCheck martians;              // never filtered nor routed (martian.hpp)
    std::vector<rte_ring *> punt_rings; // one per worker
    // With more than one worker: handoff(from, to) for every ordered pair (from != to).
    HandoffRing &handoff(unsigned from, unsigned to) {
        return handoff_rings_[from * worker_count() + to];
    }
    // Worker `w`'s pool of reassembled datagrams, made on its first call (on the caller's
    // socket) and freed with the Dataplane, after the rings that may hold its buffers: a
    // reassembled datagram may be handed to another worker.
    rte_mempool *reassembly_pool(unsigned w);
    std::vector<LcoreCounters> worker_counters;
    LcoreCounters main_counters;
    std::atomic<bool> stopping{false};
    // Per port (our index): the CARP virtual MACs it accepts frames for. Written by the main
    // lcore's CARP code, read by the workers without locks (virtual_mac.hpp).
    std::array<VirtualMacs, max_ports> virtual_macs;
    // Packets of `log` rules to control.pflog (pflog_writer.hpp); null when that is unset.
    std::unique_ptr<PflogWriter> pflog;

    // The stateful filter. Writers on the state table: workers 0..W-1, then sync_writer()
    // and main_writer(). RCU readers: workers 0..W-1 and the sync lcore (W).
    std::unique_ptr<StateTable> states;
    std::atomic<Ruleset *> ruleset{nullptr}; // owned; replaced by begin_ruleset_swap()
    TimeoutTable timeouts;
    uint64_t start_time = 0; // wall-clock seconds at start: the high half of state ids
    unsigned sync_writer() const { return worker_count(); }
    unsigned main_writer() const { return worker_count() + 1; }

    // Seconds since start on the TSC: the state table's clock. Cheap; call once per burst.
    uint32_t now() const;
    // Workers report a quiescent state once per poll loop (ruleset and state slots).
    void quiescent(unsigned worker);
    // Main lcore: install a new ruleset without stalling the main lcore. States keep their
    // rule when an identical rule exists in the new set: `remap` (config::match_rules of the
    // running rules against the new ones, computed off the main lcore) gives each old rule
    // its new index. begin publishes the new ruleset at once and returns; each step then
    // does a bounded part of the rest: wait for the workers' grace period without blocking
    // (rte_rcu_qsbr_check), rebind `slot_budget` slots' states to their new rule, and at
    // the end free the old ruleset. Returns true when the swap is complete. Until then the
    // states not yet visited still carry their old rule number (as a one-piece walk's did
    // for as long as it ran); removals release rule counts saturating at zero, so such a
    // state can never wrap a rule's count, and the expiry sweep waits for the end.
    void begin_ruleset_swap(std::unique_ptr<Ruleset> next, std::vector<uint32_t> remap);
    bool ruleset_swap_step(uint32_t slot_budget);
    bool ruleset_swap_pending() const { return swap_.old != nullptr; }
    // Main/sync lcores: delete a state and release its rule's state count.
    bool remove_state(uint32_t slot, unsigned writer);
    // Main lcore: delete up to `budget` slots' worth of expired states (incremental sweep).
    uint32_t expire_states(uint32_t budget);

    unsigned worker_count() const { return unsigned(cfg.lcores.workers.size()); }
    int port_index_of(uint16_t dpdk_port) const {
        return dpdk_port < port_index_.size() ? port_index_[dpdk_port] : -1;
    }
    CounterTotals totals() const;

    // Main lcore: is `port`'s (our index) link up? DPDK's word, except for net_af_packet,
    // which reports its link up from start to stop whatever the kernel interface does:
    // there the kernel's (administratively up and with carrier; a veth whose peer is down
    // has none).
    bool link_up(uint16_t port);

    // Queue a frame built by the main lcore for transmission on `port` (our index).
    // Takes ownership of `m` (freed and counted if the ring is full).
    void send_from_main(uint16_t port, rte_mbuf *m);

  private:
    void open_port(const config::InterfaceConfig &ic, bool is_sync);
    rte_mempool *pool_for_socket(int socket); // one mbuf pool per NUMA socket, made on demand
    std::vector<std::pair<int, rte_mempool *>> pools_;
    rte_rcu_qsbr *config_rcu_ = nullptr; // guards the ruleset swaps
    struct RulesetSwap {
        Ruleset *old = nullptr;      // the ruleset being replaced; null: no swap under way
        std::vector<uint32_t> remap; // old rule index -> new, or no_rule
        uint64_t token = 0;          // RCU token of the publication
        bool grace_over = false;
        uint32_t next_slot = 0; // the walk's progress
    };
    RulesetSwap swap_;
    uint64_t tsc_start_ = 0, tsc_hz_ = 1;
    std::vector<int> port_index_;
    std::unique_ptr<HandoffRing[]> handoff_rings_; // W * W, the diagonal unused
    std::vector<rte_mempool *> reassembly_pools_;  // per worker, made on demand
    int ifreq_socket_ = -1; // link_up(): SIOCGIFFLAGS on net_af_packet's kernel interfaces
};

} // namespace syncwall::dp
