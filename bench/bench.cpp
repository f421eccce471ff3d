// syncwall-bench: testpmd-style throughput of the real worker, beside an io-forward baseline.
//
// Theory of operation
// * Ports: two net_ring ethdevs (lan, wan) made with rte_eth_from_rings over rings this
//   program owns, one ring per queue and direction, then handed to a normal Dataplane by
//   name. The generator (main lcore) fills lan's rx rings (and wan's, for SYN-ACKs) with
//   frames it writes from templates into fresh mbufs; the sink (main lcore as well) drains
//   both ports' tx rings and frees the mbufs in bulk. No pcap or socket I/O in the loop.
// * Phases, on the same ports and generator: first `io` (a plain rx -> tx loop, what
//   testpmd's io forward does), then `syncwall` (the real Worker::poll_once: parse, filter
//   in, route, filter out, neighbour, tx) with a real ruleset, routes and neighbour.
//   Every figure of the second is also printed as a ratio to the first.
// * Cycles per packet: TSC read around each poll that received packets, summed, divided by
//   those packets. Empty polls are not counted, so the figure is the worker's cost, not the
//   generator's speed. Mpps per worker = TSC Hz / cycles per packet.
// * States: `--states N` inserts N states (two per flow: in on lan, out on wan, as pf makes
//   for a forwarded connection) with the keys the traffic looks up, so the established
//   path runs against a table of that size. New connections (`--new-share`, or
//   `--traffic handshake`) take fresh flows and create states through the rules.
// * NAT (`--nat`): a `match out on wan ... nat-to` rule translates the clients' addresses.
//   The preloaded states are then made by the worker itself (a handshake per flow, before
//   the phases), so that each connection's outbound state holds its second key as
//   create_state makes it, and established traffic runs both ways (the servers' segments
//   come in on wan to the NAT address and port). Every frame carries its flow's index in
//   its payload (traffic.hpp), by which the sink knows translated frames; it learns each
//   flow's NAT address and port and checks a sample of the frames the worker sends for
//   their translation and checksums.
// * Sync (`--sync`): a SyncCore is the table's sink, as in syncwall; the main lcore polls it
//   and hands its packets to a peer SyncCore on its own table in this process.
//   `--sync-bench N` measures the sync role alone: N inserts and N updates encoded by one
//   SyncCore and applied by a peer, then a bulk transfer of the N states to a third.
// * Output: periodic lines, testpmd-like final blocks, and one `RESULT key=value ...` line
//   per phase for scripts (bench/run_matrix.sh, bench/check_smoke.py).
#include "bench/ring_ports.hpp"
#include "bench/traffic.hpp"
#include "config/pf_rule.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/ruleset.hpp"
#include "dataplane/state_logic.hpp"
#include "dataplane/state_table.hpp"
#include "dataplane/worker.hpp"
#include "sync/sync_core.hpp"

#include <CLI/CLI.hpp>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_ring.h>

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using namespace syncwall;

namespace {

constexpr uint16_t burst = 32;
constexpr unsigned ring_size = 1024;

struct Options {
    uint32_t states = 1000; // preloaded (two per flow)
    double new_share = 0;   // share of generated packets that open a new flow
    std::string traffic = "established";
    std::string proto = "tcp";
    uint16_t size = 64;
    uint32_t rules = 10;
    unsigned workers = 1;
    bool sync = false;
    double duration = 3;
    double period = 1;
    uint32_t max_new = 1000000; // new connections a run may open (bounds the table)
    uint32_t sync_bench = 0;
    bool no_baseline = false;
    bool no_forward = false;
    std::string prefix;
    uint32_t memory_mb = 0;
    bool no_prefault = false;
    bool thp = false;
    uint32_t thp_memory_mb = 0; // -m chosen by --thp's re-exec
    bool nat = false;
    std::string nat_to = "(wan) port 1024:65535"; // what follows nat-to in --nat's rule
    std::string direction;                        // lan-wan or both ("": both with --nat)
    bool device_checksums = false; // frames come marked as a NIC's rx checksum offload marks them
    bool twins_apart = false;      // preload every in state, then every out state
    double churn = 0;              // then replace churn * flows connections at random
    bool both_ways() const { return direction == "both"; }
};

// With --no-huge, EAL's memory is a memfd of 4 KiB pages that the kernel allocates and zeroes
// on first touch, and rte_zmalloc does not touch it (the heap's memory is zero already). A
// worker filling a fresh table would then spend much of its time in page faults, which a
// hugepage-backed EAL (production) pays once at start. Populate it all up front instead;
// the contents are not changed.
void prefault_eal_memory() {
#ifdef MADV_POPULATE_WRITE
    rte_memseg_list_walk(
        [](const rte_memseg_list *msl, void *) {
            if (msl->base_va != nullptr && msl->len != 0 &&
                madvise(msl->base_va, msl->len, MADV_POPULATE_WRITE) != 0)
                std::perror("syncwall-bench: madvise(MADV_POPULATE_WRITE) on EAL memory");
            return 0;
        },
        nullptr);
#endif
}

// --thp: EAL's --no-huge memory is one memfd mapping (a shmem file), which the kernel backs
// with 2 MiB transparent huge pages when shmem_enabled allows it and the mapping's address is
// 2 MiB aligned (shmem maps a huge page only where address and file offset agree modulo
// 2 MiB). This stands in for the hugetlbfs pages of a production box, which this machine
// does not have.
constexpr uint64_t huge_page_size = 2u << 20;

// Bytes of EAL's array of memseg descriptors for `mb` MiB of --no-huge memory (an fbarray:
// one 48-byte rte_memseg per 4 KiB page, a used-bit mask, page aligned). EAL maps it right
// before the memory, so -m moves where the memory starts; EAL rounds --base-virtaddr to
// 16 MiB, which cannot.
uint64_t memseg_array_bytes(uint64_t mb) {
    const uint64_t pages = mb << 8;
    const uint64_t bytes = sizeof(rte_memseg) * pages + 8 * ((pages + 63) / 64) + 8;
    return (bytes + 4095) & ~uint64_t(4095);
}

// The least -m from `mb` up whose memory EAL would place on a 2 MiB boundary, given that
// with `mb` it starts `off` bytes past one (0 if none within 1 GiB more).
uint32_t aligned_memory_mb(uint32_t mb, uint64_t off) {
    for (uint32_t m = mb + 1; m <= mb + 1024; m++)
        if ((off + memseg_array_bytes(m) - memseg_array_bytes(mb)) % huge_page_size == 0) return m;
    return 0;
}

// The bracketed word of /sys/kernel/mm/transparent_hugepage/shmem_enabled ("" if unknown).
std::string shmem_thp_mode() {
    std::FILE *f = std::fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r");
    if (f == nullptr) return "";
    char line[256] = {};
    const bool ok = std::fgets(line, sizeof line, f) != nullptr;
    std::fclose(f);
    if (!ok) return "";
    const std::string text = line;
    const auto open = text.find('['), close = text.find(']');
    if (open == std::string::npos || close == std::string::npos || close < open) return "";
    return text.substr(open + 1, close - open - 1);
}

// The memseg list of --no-huge memory: the one list with memory in it.
const rte_memseg_list *nohuge_memory() {
    const rte_memseg_list *found = nullptr;
    rte_memseg_list_walk(
        [](const rte_memseg_list *msl, void *arg) {
            if (msl->base_va == nullptr || msl->len == 0) return 0;
            *static_cast<const rte_memseg_list **>(arg) = msl;
            return 1;
        },
        &found);
    return found;
}

// KiB of the mapping at `base` that the kernel maps with huge pages, from /proc/self/smaps.
uint64_t huge_mapped_kb(const void *base) {
    std::FILE *f = std::fopen("/proc/self/smaps", "r");
    if (f == nullptr) return 0;
    char line[512];
    bool inside = false;
    uint64_t kb = 0;
    while (std::fgets(line, sizeof line, f) != nullptr) {
        unsigned long start = 0, end = 0;
        if (std::sscanf(line, "%lx-%lx ", &start, &end) == 2) {
            inside = start == reinterpret_cast<uintptr_t>(base);
            continue;
        }
        unsigned long value = 0;
        if (inside && (std::sscanf(line, "ShmemPmdMapped: %lu kB", &value) == 1 ||
                       std::sscanf(line, "FilePmdMapped: %lu kB", &value) == 1))
            kb += value;
    }
    std::fclose(f);
    return kb;
}

// Bytes the EAL heaps hand out now (tables, rings, pools, ACL): what the dataplane uses,
// whereas RSS also counts the pre-faulted free memory.
uint64_t heap_allocated() {
    uint64_t total = 0;
    for (unsigned s = 0; s < rte_socket_count(); s++) {
        rte_malloc_socket_stats st{};
        if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(s), &st) == 0)
            total += st.heap_allocsz_bytes;
    }
    return total;
}

double now_s() {
    return double(rte_get_tsc_cycles()) / double(rte_get_tsc_hz());
}
uint64_t now_ms() {
    return rte_get_tsc_cycles() * 1000 / rte_get_tsc_hz();
}

long peak_rss_kb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

// One worker's figures, written by it alone.
// Per-burst cycles/packet are also kept in a histogram (weighted by packets), because on a
// shared machine a worker descheduled in the middle of a burst adds the whole time slice to
// the sum; the median is what the code costs, the mean what this machine gave.
constexpr unsigned hist_buckets = 8192;
struct alignas(64) WorkerStats {
    std::atomic<uint64_t> packets{0}, busy_cycles{0}, busy_polls{0};
    std::vector<uint64_t> hist = std::vector<uint64_t>(hist_buckets + 1); // read after the join
    void account(uint64_t cycles, unsigned n) {
        hist[std::min<uint64_t>(cycles / n, hist_buckets)] += n;
    }
};

double hist_median(const std::vector<WorkerStats> &stats) {
    std::vector<uint64_t> h(hist_buckets + 1);
    uint64_t total = 0;
    for (const auto &s : stats)
        for (unsigned i = 0; i <= hist_buckets; i++) {
            h[i] += s.hist[i];
            total += s.hist[i];
        }
    uint64_t acc = 0;
    for (unsigned i = 0; i <= hist_buckets; i++) {
        acc += h[i];
        if (acc * 2 >= total && total != 0) return i + 0.5;
    }
    return 0;
}

// The source NAT rule of --nat: the clients' addresses leave on wan as the pool's.
std::string nat_rule(const Options &o) {
    return "match out on wan inet from 198.18.0.0/16 to any nat-to " + o.nat_to;
}

// The two ports' rings: rx rings are filled by the generator, tx rings drained by the sink.
// The generated pf ruleset: the three rules that decide the traffic (block in, pass out,
// pass in from the clients), after `n - 3` rules that never match it but that the ACL must
// still carry: distinct hosts and ports, as a large site's rules would be. With --nat the
// translating match rule comes last, beyond the n.
std::vector<config::RuleLine> make_rules(const Options &o) {
    const uint32_t n = o.rules;
    const std::string &proto = o.proto;
    std::vector<config::RuleLine> rules;
    const uint32_t filler = n > 3 ? n - 3 : 0;
    for (uint32_t i = 0; i < filler; i++) {
        char text[160];
        std::snprintf(text, sizeof(text),
                      "pass in on lan proto %s from 203.0.113.%u to 198.51.100.%u port %u",
                      i % 2 ? "udp" : "tcp", i & 0xff, (i * 7) & 0xff, 1024 + i % 60000);
        rules.push_back({text, {"<bench>", int(i + 1), 1}});
    }
    rules.push_back({"block in all", {"<bench>", int(filler + 1), 1}});
    rules.push_back({"pass out all", {"<bench>", int(filler + 2), 1}});
    rules.push_back({"pass in on lan proto " + proto + " from 198.18.0.0/16 to any",
                     {"<bench>", int(filler + 3), 1}});
    if (o.nat) rules.push_back({nat_rule(o), {"<bench>", int(filler + 4), 1}});
    return rules;
}

config::Config make_config(const Options &o, uint32_t capacity) {
    config::Config c;
    c.source_file = "<syncwall-bench>";
    c.node.hostid = 0xbe01;
    c.dpdk.mbufs = 4095;
    c.dpdk.burst = burst;
    c.lcores.main = rte_get_main_lcore();
    c.lcores.sync = c.lcores.main;
    unsigned lcore;
    RTE_LCORE_FOREACH_WORKER(lcore) {
        if (c.lcores.workers.size() < o.workers) c.lcores.workers.push_back(lcore);
    }
    c.lcores.idle = config::IdlePolicy::busy;
    bench::add_interfaces_and_routes(c, "lan", "wan", "<bench>");
    c.rules = make_rules(o);
    c.limits.states = capacity;
    c.limits.neighbours = 64;
    c.control.socket = "";
    return c;
}

// Established peers for every preloaded flow: the handshake run through pf's own tracking.
dp::State template_state(bool udp) {
    bench::FrameWriter fw(64, udp);
    const bench::Mac m{2, 0, 0, 0, 0, 1};
    auto desc = [&](bench::Segment seg) {
        std::array<uint8_t, 64> f{};
        fw.write(f.data(), 0, seg, m, m);
        dp::PacketDesc d;
        if (dp::parse_packet({f.data(), fw.frame_len()}, d))
            throw std::runtime_error("bench template frame does not parse");
        return d;
    };
    dp::State s;
    if (udp) {
        const dp::PacketDesc d = desc(bench::Segment::udp);
        dp::state_init_peers(s, d);
        bool changed = false;
        s.timeout = dp::pseudo_state_update(s.dst, s.src, 17, &changed);
        return s;
    }
    dp::state_init_peers(s, desc(bench::Segment::syn));
    dp::tcp_track(s.dst, s.src, desc(bench::Segment::syn_ack));
    dp::tcp_track(s.src, s.dst, desc(bench::Segment::ack));
    s.timeout = dp::Timeout::tcp_established;
    return s;
}

// Inserts a flow's two states one after the other, the out state near the in state (as a
// worker's out pass asks); with `twins_apart`, every flow's in state first and then every
// out state, in a shuffled order and without asking for a place, so that twins lie as far
// apart as a table that hands out slots with no regard for twins leaves them. With
// `churn` > 0, churn * flows connections picked at random are then replaced, 32
// at a time as a burst makes them: their states removed, and once the slots are free again,
// the in states made and then the out states, each near its in state. The table then holds
// its states where traffic that turned it over would have left them.
// Where the preload left each connection's two states: the share of connections whose
// states are partners (slots 2k and 2k + 1) and the share within 64 slots of each other.
struct TwinPlacement {
    double partners = -1, within_64 = -1; // -1: not preloaded here
};

TwinPlacement preload(dp::Dataplane &dp, uint32_t flows, bool udp, unsigned writer,
                      bool twins_apart, double churn) {
    if (flows == 0) return {};
    // The keys must be exactly what the worker computes for the generated frames.
    {
        bench::FrameWriter fw(64, udp);
        std::array<uint8_t, 64> f{};
        fw.write(f.data(), 12345, udp ? bench::Segment::udp : bench::Segment::ack, {}, {});
        dp::PacketDesc d;
        if (dp::parse_packet({f.data(), fw.frame_len()}, d) ||
            !(dp::state_key(d, dp::StateDirection::in) ==
              bench::flow_key(12345, udp, dp::StateDirection::in)) ||
            !(dp::state_key(d, dp::StateDirection::out) ==
              bench::flow_key(12345, udp, dp::StateDirection::out)))
            throw std::runtime_error("bench flow keys differ from the worker's state keys");
    }
    dp::State s = template_state(udp);
    s.creatorid = dp.cfg.node.hostid;
    s.rule = dp::no_rule;
    s.creation = s.expire = dp.now();
    const double t0 = now_s();
    std::vector<uint32_t> slot_of(std::size_t(flows) * 2, dp::StateTable::no_slot);
    uint64_t ids = uint64_t(1) << 48;
    auto insert = [&](uint32_t i, dp::StateDirection dir, bool near_in = true) {
        const bool out = dir == dp::StateDirection::out;
        s.key = bench::flow_key(i, udp, dir);
        s.direction = dir;
        s.iface = out ? 1 : 0;
        s.id = ids++;
        uint32_t &slot = slot_of[std::size_t(i) * 2 + out];
        const uint32_t near =
            out && near_in ? slot_of[std::size_t(i) * 2] : dp::StateTable::no_slot;
        if (dp.states->insert(s, writer, &slot, nullptr, nullptr, near) !=
            dp::StateTable::InsertResult::ok)
            throw std::runtime_error("preload: insert of flow " + std::to_string(i) +
                                     " failed (table full? raise -m)");
    };
    constexpr dp::StateDirection dirs[] = {dp::StateDirection::in, dp::StateDirection::out};
    std::mt19937_64 rng(0x5eed);
    if (twins_apart) {
        for (uint32_t i = 0; i < flows; i++)
            insert(i, dp::StateDirection::in);
        std::vector<uint32_t> order(flows);
        for (uint32_t i = 0; i < flows; i++)
            order[i] = i;
        std::shuffle(order.begin(), order.end(), rng);
        for (const uint32_t i : order)
            insert(i, dp::StateDirection::out, false);
    } else {
        for (uint32_t i = 0; i < flows; i++)
            for (const auto dir : dirs)
                insert(i, dir);
    }
    const double dt = now_s() - t0;
    std::printf("preloaded %u states (%u flows) in %.2f s (%.2f M inserts/s from the main lcore)\n",
                flows * 2, flows, dt, flows * 2 / dt / 1e6);
    auto placement = [&] {
        uint64_t partners = 0, near = 0;
        for (uint32_t i = 0; i < flows; i++) {
            const uint32_t a = slot_of[std::size_t(i) * 2], b = slot_of[std::size_t(i) * 2 + 1];
            partners += (a ^ 1) == b;
            near += (a > b ? a - b : b - a) < 64;
        }
        const TwinPlacement t{double(partners) / flows, double(near) / flows};
        std::printf("twin placement: %.1f %% of connections in partner slots, %.1f %% within 64 "
                    "slots\n",
                    t.partners * 100, t.within_64 * 100);
        return t;
    };
    if (churn <= 0) return placement();
    // No worker runs yet: with every reader offline, a removed slot is free again at the
    // next reclaim().
    const unsigned readers = dp.worker_count() + 1;
    for (unsigned r = 0; r < readers; r++)
        dp.states->reader_offline(r);
    const uint64_t replace = uint64_t(churn * flows);
    uint32_t burst[32];
    const double t1 = now_s();
    for (uint64_t done = 0; done < replace;) {
        const unsigned n = unsigned(std::min<uint64_t>(32, replace - done));
        for (unsigned k = 0; k < n; k++) {
            uint32_t i;
            do { // distinct flows within a burst
                i = uint32_t(rng() % flows);
            } while (std::find(burst, burst + k, i) != burst + k);
            burst[k] = i;
            for (int out = 0; out < 2; out++)
                if (!dp.states->remove(slot_of[std::size_t(i) * 2 + out], writer))
                    throw std::runtime_error("preload: churn lost a state");
        }
        dp.states->reclaim();
        for (const auto dir : dirs)
            for (unsigned k = 0; k < n; k++)
                insert(burst[k], dir);
        done += n;
    }
    for (unsigned r = 0; r < readers; r++)
        dp.states->reader_online(r);
    std::printf("preload churn: %" PRIu64 " connections replaced, 32 a burst (%.2f s)\n", replace,
                now_s() - t1);
    return placement();
}

// --nat: the pool of the bench's translation, what each flow was translated to (learned by
// the sink from the first of the flow's frames it checks on wan), and the sink's checks of
// translated frames.
struct NatView {
    dp::CompiledTranslation pool;
    bool udp = false;
    std::vector<std::array<uint8_t, 4>> addr; // per flow, valid where port != 0
    std::vector<uint16_t> port;
    uint64_t checked = 0, wrong = 0, learned = 0, unknown = 0;
    unsigned reported = 0;

    NatView(const dp::CompiledTranslation &t, bool is_udp, uint32_t flows)
        : pool(t), udp(is_udp), addr(flows), port(flows) {}

    bool in_pool(const uint8_t *a) const {
        for (const auto &b : pool.blocks) {
            const unsigned bits = std::min<unsigned>(b.length, 32);
            uint32_t mask = bits == 0 ? 0 : ~uint32_t(0) << (32 - bits);
            if ((dp::load_be32(a) & mask) == (dp::load_be32(b.addr.bytes.data()) & mask))
                return true;
        }
        return false;
    }
    bool port_fits(uint16_t p, uint16_t client_port) const {
        return pool.static_port ? p == client_port : p >= pool.port_lo && p <= pool.port_hi;
    }
    void complain(const char *what, uint32_t flow, const uint8_t *f) {
        wrong++;
        if (reported++ >= 5) return;
        const uint8_t *ip = f + bench::eth_len, *l4 = ip + bench::ip_len;
        std::fprintf(stderr,
                     "syncwall-bench: nat check: flow %u: %s (%u.%u.%u.%u:%u -> %u.%u.%u.%u:%u)\n",
                     flow, what, ip[12], ip[13], ip[14], ip[15], l4[0] << 8 | l4[1], ip[16], ip[17],
                     ip[18], ip[19], l4[2] << 8 | l4[3]);
    }
    // What both checks read of a frame: its flow (from the tag), the flow's tuple as sent,
    // the IP header and the two ports; nullopt (counted and reported) for no flow of ours.
    struct Seen {
        uint32_t flow;
        bench::FlowTuple t;
        const uint8_t *ip;
        uint16_t sport, dport;
    };
    std::optional<Seen> open(const bench::FrameWriter &fw, const uint8_t *f) {
        checked++;
        const uint32_t flow = fw.tag_of(f);
        if (flow >= port.size()) {
            complain("no flow of ours in the payload", flow, f);
            return std::nullopt;
        }
        const uint8_t *ip = f + bench::eth_len, *l4 = ip + bench::ip_len;
        return Seen{flow, bench::flow_tuple(flow, udp), ip, uint16_t(l4[0] << 8 | l4[1]),
                    uint16_t(l4[2] << 8 | l4[3])};
    }
    // The flow, or ~0u (reported) when a check found the frame `bad`.
    uint32_t verdict(const char *bad, uint32_t flow, const uint8_t *f) {
        if (bad == nullptr) return flow;
        complain(bad, flow, f);
        return ~0u;
    }
    // A frame the worker sent on wan (the client's, translated): from the pool, to the
    // flow's server, the same translation as the flow's first, checksums right. The flow,
    // or ~0u when the frame is wrong.
    uint32_t check_out(const bench::FrameWriter &fw, const uint8_t *f, std::size_t len) {
        const auto seen = open(fw, f);
        if (!seen) return ~0u;
        const auto &[flow, t, ip, sport, dport] = *seen;
        const char *bad = nullptr;
        if (!in_pool(ip + 12))
            bad = "source not translated to the pool";
        else if (!port_fits(sport, t.client_port))
            bad = "source port outside the pool's range";
        else if (std::memcmp(ip + 16, t.server.data(), 4) != 0 || dport != t.server_port)
            bad = "destination changed";
        else if (!bench::checksums_ok(f, len))
            bad = "checksum wrong after translation";
        else if (port[flow] == 0) {
            std::memcpy(addr[flow].data(), ip + 12, 4);
            port[flow] = sport;
            learned++;
        } else if (port[flow] != sport || std::memcmp(addr[flow].data(), ip + 12, 4) != 0)
            bad = "translated otherwise than the flow's earlier frames";
        return verdict(bad, flow, f);
    }
    // A frame the worker sent on lan (the server's, translated back): to the flow's client
    // address and port again, from its server, checksums right.
    uint32_t check_back(const bench::FrameWriter &fw, const uint8_t *f, std::size_t len) {
        const auto seen = open(fw, f);
        if (!seen) return ~0u;
        const auto &[flow, t, ip, sport, dport] = *seen;
        const char *bad = nullptr;
        if (std::memcmp(ip + 16, t.client.data(), 4) != 0 || dport != t.client_port)
            bad = "reply not translated back to the client";
        else if (std::memcmp(ip + 12, t.server.data(), 4) != 0 || sport != t.server_port)
            bad = "reply's source changed";
        else if (!bench::checksums_ok(f, len))
            bad = "checksum wrong after translation back";
        return verdict(bad, flow, f);
    }
};

// The generator and sink, on the main lcore.
class Generator {
  public:
    // `nat`: translated traffic (--nat): frames carry their flow's index, the servers' go to
    // the flow's NAT address and port, and the sink checks what comes out (`check`: not in
    // the io phase, which translates nothing).
    Generator(const Options &o, rte_mempool *pool, bench::RingPort &lan, bench::RingPort &wan,
              bench::Mac lan_mac, bench::Mac wan_mac, uint32_t preloaded_flows,
              NatView *nat = nullptr, bool check = false)
        : o_(o), pool_(pool), lan_(lan), wan_(wan), lan_mac_(lan_mac), wan_mac_(wan_mac),
          fw_(o.size, o.proto == "udp", nat != nullptr), flows_(preloaded_flows),
          next_new_(preloaded_flows), nat_(nat), check_(check) {
        udp_ = o.proto == "udp";
        // A NIC with receive checksum offload (which syncwall switches on where the device
        // has it) marks each frame's headers as verified; net_ring marks nothing.
        if (o.device_checksums)
            rx_flags_ = RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
        handshake_ = o.traffic == "handshake";
        both_ = o.both_ways();
        if (nat_ != nullptr && handshake_) stage_.resize(std::size_t(flows_) + o.max_new);
        new_threshold_ = uint32_t(o.new_share * 4294967295.0);
        if (flows_ == 0 && !handshake_) new_threshold_ = 0xffffffffu; // nothing to re-send
    }

    // One pass: fill every rx ring that has room for a burst, drain every tx ring.
    void step() {
        for (unsigned q = 0; q < lan_.rx.size(); q++) {
            drain(lan_.tx[q], false);
            drain(wan_.tx[q], true);
            if (paced_ && in_flight() + 2 * burst + 2 * burst > ring_size - 1) continue;
            if (!replies_wan_.empty() || !retry_wan_.empty() || (both_ && flows_ != 0))
                send(wan_.rx[q], true);
            if (!replies_lan_.empty() || !retry_lan_.empty() || !exhausted())
                send(lan_.rx[q], false);
        }
    }

    // Lossless (--nat's preload): send only while everything in flight, the worker's two
    // bursts included, fits one tx ring, so that the worker never finds one full and no
    // handshake needs retry().
    void set_paced() { paced_ = true; }
    unsigned in_flight() const {
        unsigned n = 0;
        for (const auto *port : {&lan_, &wan_})
            for (unsigned q = 0; q < port->rx.size(); q++)
                n += rte_ring_count(port->rx[q]) + rte_ring_count(port->tx[q]);
        return n;
    }

    // --nat's handshakes: queue the next frame of every handshake that stopped short (one of
    // its frames dropped by the worker: a full tx ring while the sink was descheduled, say).
    // Returns how many were queued. A SYN that passed the filter but was lost after it
    // cannot be helped so: our SYNs carry the frame's payload (10 bytes at 64 bytes), and
    // after the SYN is seen twice syncwall's tracker takes only a SYN-ACK that acknowledges
    // that data (filter_synack_bad_ack), which the emulated server does not send.
    std::size_t retry() {
        for (uint32_t f = flows_; f < next_new_ && f < stage_.size(); f++) {
            switch (stage_[f]) {
            case 0:
                retry_lan_.push_back({f, udp_ ? bench::Segment::udp : bench::Segment::syn});
                break;
            case 1:
                retry_wan_.push_back(
                    {f, udp_ ? bench::Segment::udp_reply : bench::Segment::syn_ack});
                break;
            case 2:
                retry_lan_.push_back({f, bench::Segment::ack});
                break;
            default:
                break;
            }
        }
        return retry_lan_.size() + retry_wan_.size();
    }

    // How many of the handshakes not done stopped at which stage (for the preload's error).
    std::string stages() const {
        uint64_t n[4] = {};
        for (uint32_t f = flows_; f < next_new_ && f < stage_.size(); f++)
            n[std::min<uint8_t>(stage_[f], 3)]++;
        char text[160];
        std::snprintf(text, sizeof text,
                      "nothing seen %" PRIu64 ", first frame out on wan %" PRIu64
                      ", SYN-ACK out on lan %" PRIu64,
                      n[0], n[1], n[2]);
        return text;
    }

    bool exhausted() const {
        return (handshake_ || new_threshold_ != 0) && next_new_ - flows_ >= o_.max_new &&
               replies_lan_.empty() && replies_wan_.empty() && (handshake_ || flows_ == 0);
    }
    uint64_t sent = 0, received = 0, new_flows = 0, established = 0, alloc_failed = 0;

    // After a phase: take what the workers sent last.
    void drain_tx() {
        for (unsigned q = 0; q < lan_.rx.size(); q++)
            for (int i = 0; i < 32; i++) {
                drain(lan_.tx[q], false);
                drain(wan_.tx[q], true);
            }
    }
    // After a phase: free what the workers never took off the rx rings (not drops).
    uint64_t purge_rx() {
        uint64_t n = 0;
        for (auto *port : {&lan_, &wan_})
            for (rte_ring *r : port->rx) {
                rte_mbuf *m;
                while (rte_ring_sc_dequeue(r, reinterpret_cast<void **>(&m)) == 0) {
                    rte_pktmbuf_free(m);
                    n++;
                }
            }
        return n;
    }

  private:
    void send(rte_ring *ring, bool to_wan) {
        if (rte_ring_free_count(ring) < burst) return;
        rte_mbuf *m[burst];
        if (rte_pktmbuf_alloc_bulk(pool_, m, burst) != 0) {
            alloc_failed++;
            return;
        }
        unsigned n = 0;
        for (; n < burst; n++) {
            uint32_t flow;
            bench::Segment seg;
            if (!pick(to_wan, &flow, &seg)) break;
            uint8_t *data = rte_pktmbuf_mtod(m[n], uint8_t *);
            if (to_wan && nat_ != nullptr) {
                // The server answers the address and port the client's frames came from.
                bench::FlowTuple t = bench::flow_tuple(flow, udp_);
                t.client = nat_->addr[flow];
                t.client_port = nat_->port[flow];
                if (t.client_port == 0) nat_->unknown++;
                fw_.write(data, t, flow, seg, wan_mac_, peer_mac_);
            } else if (to_wan) {
                fw_.write(data, flow, seg, wan_mac_, peer_mac_);
            } else {
                fw_.write(data, flow, seg, lan_mac_, peer_mac_);
            }
            m[n]->data_len = m[n]->pkt_len = fw_.frame_len();
            m[n]->ol_flags = rx_flags_;
        }
        const unsigned done =
            n == 0 ? 0 : rte_ring_sp_enqueue_burst(ring, reinterpret_cast<void **>(m), n, nullptr);
        if (done < burst) rte_pktmbuf_free_bulk(m + done, burst - done);
        sent += done;
    }

    // The next segment for a ring: replies owed by the emulated end first, then new flows
    // at their share, then established traffic on the preloaded flows (on wan: the
    // servers' segments of the preloaded flows, with --direction both).
    bool pick(bool to_wan, uint32_t *flow, bench::Segment *seg) {
        auto &retries = to_wan ? retry_wan_ : retry_lan_;
        if (!retries.empty()) [[unlikely]] {
            *flow = retries.front().first;
            *seg = retries.front().second;
            retries.pop_front();
            return true;
        }
        auto &replies = to_wan ? replies_wan_ : replies_lan_;
        if (!replies.empty()) {
            *flow = replies.front();
            replies.pop_front();
            *seg = !to_wan ? bench::Segment::ack
                   : udp_  ? bench::Segment::udp_reply
                           : bench::Segment::syn_ack;
            return true;
        }
        if (to_wan) {
            if (!both_ || flows_ == 0) return false;
            rng_ ^= rng_ << 13;
            rng_ ^= rng_ >> 7;
            rng_ ^= rng_ << 17;
            *flow = uint32_t((uint64_t(uint32_t(rng_ >> 32)) * flows_) >> 32);
            *seg = udp_ ? bench::Segment::udp_reply : bench::Segment::server_ack;
            return true;
        }
        rng_ ^= rng_ << 13;
        rng_ ^= rng_ >> 7;
        rng_ ^= rng_ << 17;
        const uint32_t r = uint32_t(rng_);
        const bool want_new = handshake_ || r < new_threshold_ || flows_ == 0;
        if (want_new && next_new_ - flows_ < o_.max_new && next_new_ < bench::max_flows &&
            replies_wan_.size() < max_replies) {
            *flow = next_new_++;
            new_flows++;
            *seg = udp_ ? bench::Segment::udp : bench::Segment::syn;
            return true;
        }
        if (flows_ == 0) return false;
        *flow = uint32_t((uint64_t(uint32_t(rng_ >> 32)) * flows_) >> 32);
        *seg = udp_ ? bench::Segment::udp : bench::Segment::ack;
        return true;
    }

    // The emulated server answers a SYN that came out on wan; the client acknowledges a
    // SYN-ACK that came out on lan.
    void drain(rte_ring *ring, bool from_wan) {
        rte_mbuf *m[64];
        const unsigned n =
            rte_ring_sc_dequeue_burst(ring, reinterpret_cast<void **>(m), 64, nullptr);
        if (n == 0) return;
        received += n;
        if (nat_ != nullptr) {
            if (check_) inspect(m, n, from_wan);
        } else if (handshake_) {
            for (unsigned i = 0; i < n; i++) {
                const uint8_t *f = rte_pktmbuf_mtod(m[i], const uint8_t *);
                const uint8_t flags = bench::tcp_flags_of(f);
                if (from_wan && flags == 0x02)
                    replies_wan_.push_back(bench::flow_of(f, true));
                else if (!from_wan && flags == 0x12)
                    replies_lan_.push_back(bench::flow_of(f, false));
                else if (from_wan && flags == 0x10)
                    established++;
            }
        }
        rte_pktmbuf_free_bulk(m, n);
    }

    // --nat: check the translation of what the worker sent (every frame of a handshake, whose
    // flow the replies need; else one in 16), learn each flow's NAT address and port, and
    // answer a handshake as drain() does, keeping how far each one came (retry()).
    void inspect(rte_mbuf *const *m, unsigned n, bool from_wan) {
        for (unsigned i = 0; i < n; i++) {
            if (!handshake_ && (sampled_++ & 15) != 0) continue;
            const uint8_t *f = rte_pktmbuf_mtod(m[i], const uint8_t *);
            const uint32_t flow = from_wan ? nat_->check_out(fw_, f, m[i]->data_len)
                                           : nat_->check_back(fw_, f, m[i]->data_len);
            if (!handshake_ || flow == ~0u || flow >= stage_.size()) continue;
            uint8_t &stage = stage_[flow];
            // udp: the client's datagram out on wan, the server's answer on lan.
            const uint8_t flags = udp_ ? 0 : bench::tcp_flags_of(f);
            if (from_wan && (udp_ || flags == 0x02)) {
                if (stage == 0) replies_wan_.push_back(flow);
                stage = std::max<uint8_t>(stage, 1);
            } else if (!from_wan && !udp_ && flags == 0x12) {
                if (stage < 2) replies_lan_.push_back(flow);
                stage = std::max<uint8_t>(stage, 2);
            } else if ((from_wan && flags == 0x10) || (!from_wan && udp_)) {
                if (stage != 3) established++;
                stage = 3;
            }
        }
    }

    static constexpr std::size_t max_replies = 65536;
    const Options &o_;
    rte_mempool *pool_;
    bench::RingPort &lan_, &wan_;
    bench::Mac lan_mac_, wan_mac_, peer_mac_{0x02, 0xbe, 0, 0, 0, 2};
    bench::FrameWriter fw_;
    uint32_t flows_, next_new_;
    uint32_t new_threshold_ = 0;
    NatView *nat_;
    bool check_;
    // --nat handshakes: per new flow 0 (nothing seen), 1 (the client's first frame out on
    // wan), 2 (the SYN-ACK out on lan), 3 (done); frames to send again (retry()).
    std::vector<uint8_t> stage_;
    std::deque<std::pair<uint32_t, bench::Segment>> retry_wan_, retry_lan_;
    bool udp_ = false, handshake_ = false, both_ = false, paced_ = false;
    uint64_t rx_flags_ = 0; // ol_flags of every frame sent (--device-checksums)
    uint64_t sampled_ = 0;
    uint64_t rng_ = 0x9e3779b97f4a7c15ull;
    std::deque<uint32_t> replies_wan_, replies_lan_;
};

struct Phase {
    std::string name;
    double seconds = 0;
    uint64_t gen_sent = 0, sink_received = 0, worker_packets = 0, busy_cycles = 0, busy_polls = 0;
    uint64_t drops = 0, new_flows = 0, states_created = 0, established = 0;
    uint64_t left_in_rx = 0;  // generated but never received by a worker when the phase ended
    double median_cycles = 0; // per packet, median over bursts (see WorkerStats)
    double mean_cycles() const { return worker_packets ? double(busy_cycles) / worker_packets : 0; }
    double cycles_per_packet() const { return median_cycles; }
    double capacity_mpps() const {
        const double c = cycles_per_packet();
        return c > 0 ? double(rte_get_tsc_hz()) / c / 1e6 : 0;
    }
};

struct Context {
    Options o;
    dp::Dataplane *dp = nullptr;
    std::vector<WorkerStats> stats;
    // With keep_workers (--nat, whose preload forwards before the phases), each worker
    // lcore's Worker is made on its first forwarding phase and kept for the next, as its
    // filter hands out state ids in sequence (a fresh one would start over, on ids the
    // preload's states hold). Otherwise each phase makes its own, on the lcore's stack.
    bool keep_workers = false;
    std::vector<std::unique_ptr<dp::Worker>> workers;
    std::atomic<bool> stop{false};
    bool io_mode = true;
    TwinPlacement twins; // where the preload left each connection's states
};

int worker_main(void *arg) {
    auto &ctx = *static_cast<Context *>(arg);
    const unsigned lcore = rte_lcore_id();
    const auto &ws = ctx.dp->cfg.lcores.workers;
    const unsigned index = unsigned(std::find(ws.begin(), ws.end(), lcore) - ws.begin());
    if (index >= ws.size()) return 0;
    WorkerStats &st = ctx.stats[index];
    uint64_t packets = 0, cycles = 0, polls = 0;
    auto publish = [&] {
        st.packets.store(packets, std::memory_order_relaxed);
        st.busy_cycles.store(cycles, std::memory_order_relaxed);
        st.busy_polls.store(polls, std::memory_order_relaxed);
    };
    // A poll that moved n packets, begun at TSC t0.
    auto account = [&](uint64_t t0, unsigned n) {
        const uint64_t dt = rte_rdtsc() - t0;
        cycles += dt;
        st.account(dt, n);
        packets += n;
        polls++;
    };
    if (ctx.io_mode) {
        // testpmd's io forward: lan <-> wan, packets untouched.
        const uint16_t ports[2] = {ctx.dp->ports[0].port_id, ctx.dp->ports[1].port_id};
        rte_mbuf *m[burst];
        while (!ctx.stop.load(std::memory_order_relaxed)) {
            for (int p = 0; p < 2; p++) {
                const uint64_t t0 = rte_rdtsc();
                const uint16_t n = rte_eth_rx_burst(ports[p], uint16_t(index), m, burst);
                if (n == 0) continue;
                const uint16_t sent = rte_eth_tx_burst(ports[1 - p], uint16_t(index), m, n);
                if (sent < n) rte_pktmbuf_free_bulk(m + sent, n - sent);
                account(t0, n);
            }
            if ((polls & 63) == 0) publish();
        }
    } else {
        auto forward = [&](dp::Worker &w) {
            while (!ctx.stop.load(std::memory_order_relaxed)) {
                const uint64_t t0 = rte_rdtsc();
                const unsigned n = w.poll_once();
                if (n != 0) {
                    account(t0, n);
                    if ((polls & 63) == 0) publish();
                }
                ctx.dp->quiescent(index);
            }
            w.flush();
        };
        if (ctx.keep_workers) {
            auto &made = ctx.workers[index];
            if (!made) made = std::make_unique<dp::Worker>(*ctx.dp, index);
            forward(*made);
        } else {
            dp::Worker w(*ctx.dp, index);
            forward(w);
        }
    }
    publish();
    return 0;
}

// The sync role for `--sync`: a SyncCore on the dataplane's table and a peer on its own.
struct SyncPair {
    dp::TimeoutTable peer_timeouts;
    std::unique_ptr<dp::StateTable> peer_table;
    std::unique_ptr<sync::SyncCore> peer, ours;
    std::vector<std::vector<uint8_t>> to_peer;

    SyncPair(dp::Dataplane &dp, uint32_t capacity) {
        dp::StateTableConfig tc;
        tc.name = "bench_peer";
        tc.capacity = capacity;
        tc.translations = dp.states->translations(); // the peer runs the same rules (--nat)
        tc.reader_threads = 0;
        peer_table = std::make_unique<dp::StateTable>(tc);
        peer_timeouts = dp::TimeoutTable::from_config(config::TimeoutConfig{}, capacity);
        sync::SyncCoreConfig pc;
        pc.name = "bench_peer";
        pc.creatorid = 0xbe02;
        pc.producers = 1;
        pc.sync_writer = 0;
        peer = std::make_unique<sync::SyncCore>(pc, *peer_table, peer_timeouts,
                                                [](std::span<const uint8_t>) { return true; });
        sync::SyncCoreConfig oc;
        oc.name = "bench_sync";
        oc.creatorid = dp.cfg.node.hostid;
        oc.producers = dp.worker_count() + 2;
        oc.sync_writer = dp.sync_writer();
        oc.ring_size = 16384;
        ours = std::make_unique<sync::SyncCore>(oc, *dp.states, dp.timeouts,
                                                [this](std::span<const uint8_t> p) {
                                                    to_peer.emplace_back(p.begin(), p.end());
                                                    return true;
                                                });
        dp.states->set_sink(ours.get());
    }
    void poll(uint32_t table_now) {
        const uint64_t ms = now_ms();
        ours->poll(ms, table_now);
        for (auto &p : to_peer)
            peer->receive(p, 0xc0000201, ms, table_now);
        to_peer.clear();
    }
};

Phase run_phase(Context &ctx, Generator &gen, bool io, SyncPair *sync) {
    auto &dp = *ctx.dp;
    ctx.io_mode = io;
    ctx.stop.store(false);
    for (auto &s : ctx.stats) {
        s.packets = 0;
        s.busy_cycles = 0;
        s.busy_polls = 0;
        std::fill(s.hist.begin(), s.hist.end(), 0);
    }
    Phase ph;
    ph.name = io ? "io" : "syncwall";
    const uint64_t drops0 = dp.totals().total_drops();
    const uint64_t inserts0 = dp.states->stats().inserts;
    const uint64_t sent0 = gen.sent, recv0 = gen.received, new0 = gen.new_flows,
                   est0 = gen.established;
    std::printf("\n---- phase %s: %.1f s ----\n", ph.name.c_str(), ctx.o.duration);
    for (unsigned w : dp.cfg.lcores.workers)
        rte_eal_remote_launch(worker_main, &ctx, w);
    const double t0 = now_s();
    double next = t0 + ctx.o.period, last_t = t0;
    uint64_t last_sent = gen.sent, last_recv = gen.received, last_pk = 0, last_cy = 0;
    unsigned polls = 0;
    double grace_end = 0; // after the last new flow: let the replies and stragglers through
    while (true) {
        gen.step();
        if (sync != nullptr && (++polls & 15) == 0) sync->poll(dp.now());
        const double t = now_s();
        if (t >= next || t - t0 >= ctx.o.duration ||
            (gen.exhausted() && (grace_end == 0 || t >= grace_end))) {
            uint64_t pk = 0, cy = 0;
            for (auto &s : ctx.stats) {
                pk += s.packets.load();
                cy += s.busy_cycles.load();
            }
            const double dt = t - last_t;
            std::printf("  %5.1fs  RX-pps(gen): %10.0f  TX-pps(sink): %10.0f  worker-pps: %10.0f  "
                        "cycles/pkt: %7.1f  drops: %" PRIu64 "\n",
                        t - t0, (gen.sent - last_sent) / dt, (gen.received - last_recv) / dt,
                        (pk - last_pk) / dt,
                        pk > last_pk ? double(cy - last_cy) / double(pk - last_pk) : 0.0,
                        dp.totals().total_drops() - drops0);
            std::fflush(stdout);
            last_t = t;
            last_sent = gen.sent;
            last_recv = gen.received;
            last_pk = pk;
            last_cy = cy;
            next += ctx.o.period;
            if (t - t0 >= ctx.o.duration) break;
            if (gen.exhausted()) {
                if (grace_end == 0) grace_end = t + 0.05;
                if (t >= grace_end) break;
            }
        }
    }
    ctx.stop.store(true);
    rte_eal_mp_wait_lcore();
    ph.seconds = now_s() - t0;
    // Let the sink take what the worker sent last, so tx counts are complete.
    gen.drain_tx();
    ph.left_in_rx = gen.purge_rx();
    for (auto &s : ctx.stats) {
        ph.worker_packets += s.packets.load();
        ph.busy_cycles += s.busy_cycles.load();
        ph.busy_polls += s.busy_polls.load();
    }
    ph.median_cycles = hist_median(ctx.stats);
    if (sync != nullptr) {
        sync->ours->flush(now_ms(), dp.now());
        sync->poll(dp.now());
    }
    ph.gen_sent = gen.sent - sent0 - ph.left_in_rx;
    ph.sink_received = gen.received - recv0;
    ph.new_flows = gen.new_flows - new0;
    ph.established = gen.established - est0;
    ph.drops = dp.totals().total_drops() - drops0;
    ph.states_created = dp.states->stats().inserts - inserts0;
    return ph;
}

void print_phase(const Context &ctx, const Phase &p, const Phase *base) {
    const double busy_s = double(p.busy_cycles) / double(rte_get_tsc_hz());
    const unsigned w = ctx.o.workers;
    std::printf("\n  ######## %s: final statistics (%u worker%s, %.2f s) ########\n",
                p.name.c_str(), w, w == 1 ? "" : "s", p.seconds);
    std::printf("  RX-packets (generated): %-12" PRIu64 " TX-packets (sunk): %-12" PRIu64
                " drops: %" PRIu64 "\n",
                p.gen_sent, p.sink_received, p.gen_sent - std::min(p.gen_sent, p.sink_received));
    std::printf("  throughput: %.3f Mpps (sink), worker busy %.0f%%, %.1f packets per busy poll\n",
                p.sink_received / p.seconds / 1e6, 100.0 * busy_s / (p.seconds * w),
                p.busy_polls ? double(p.worker_packets) / p.busy_polls : 0.0);
    std::printf("  cycles/packet: %.1f median over bursts (mean %.1f, with preemption)   "
                "capacity: %.3f Mpps per worker\n",
                p.cycles_per_packet(), p.mean_cycles(), p.capacity_mpps());
    // New states a worker makes per second at the median cost of its bursts (the capacity),
    // beside what it made per second it was busy (preemption included).
    const double new_capacity =
        p.worker_packets
            ? p.capacity_mpps() * 1e6 * double(p.states_created) / double(p.worker_packets) / w
            : 0.0;
    if (p.states_created != 0)
        std::printf("  new states: %" PRIu64 " (%.3f M/s wall, %.3f M/s per busy worker-second, "
                    "capacity %.3f M/s per worker)\n",
                    p.states_created, p.states_created / p.seconds / 1e6,
                    busy_s > 0 ? p.states_created / busy_s / 1e6 : 0.0, new_capacity / 1e6);
    if (p.established != 0)
        std::printf("  handshakes completed: %" PRIu64 " (%.3f M/s)\n", p.established,
                    p.established / p.seconds / 1e6);
    if (base != nullptr && base->cycles_per_packet() > 0)
        std::printf("  vs io-forward: capacity %.3fx, cycles %.2fx, observed pps %.3fx\n",
                    p.capacity_mpps() / base->capacity_mpps(),
                    p.cycles_per_packet() / base->cycles_per_packet(),
                    base->sink_received
                        ? (p.sink_received / p.seconds) / (base->sink_received / base->seconds)
                        : 0.0);
    const double ratio = base != nullptr && base->capacity_mpps() > 0
                             ? p.capacity_mpps() / base->capacity_mpps()
                             : 1.0;
    // Fields that a plain run (the scripts' format) does not print.
    const std::string extra =
        (ctx.o.nat || ctx.o.both_ways()
             ? " nat=" + std::to_string(ctx.o.nat ? 1 : 0) + " direction=" + ctx.o.direction
             : "") +
        (ctx.o.twins_apart ? " twins_apart=1" : "") +
        (ctx.o.churn > 0 ? " churn=" + std::to_string(ctx.o.churn) : "") +
        (ctx.twins.partners >= 0 ? " twins_partner=" + std::to_string(ctx.twins.partners) +
                                       " twins_within_64=" + std::to_string(ctx.twins.within_64)
                                 : "");
    std::printf(
        "RESULT phase=%s states=%u rules=%u size=%u workers=%u traffic=%s proto=%s new_share=%.3f "
        "sync=%d seconds=%.3f generated=%" PRIu64 " forwarded=%" PRIu64 " drops=%" PRIu64
        " pps=%.0f cycles_per_packet=%.2f mean_cycles_per_packet=%.2f mpps_per_worker=%.4f "
        "states_created=%" PRIu64 " new_states_per_s_per_worker=%.0f "
        "new_states_capacity_per_worker=%.0f ratio_to_io=%.4f%s\n",
        p.name.c_str(), ctx.o.states, ctx.o.rules, ctx.o.size, w, ctx.o.traffic.c_str(),
        ctx.o.proto.c_str(), ctx.o.new_share, ctx.o.sync ? 1 : 0, p.seconds, p.gen_sent,
        p.sink_received, p.gen_sent - std::min(p.gen_sent, p.sink_received),
        p.sink_received / p.seconds, p.cycles_per_packet(), p.mean_cycles(), p.capacity_mpps() / w,
        p.states_created, busy_s > 0 ? p.states_created / busy_s / w : 0.0, new_capacity, ratio,
        extra.c_str());
}

// --- the sync role alone ----------------------------------------------------------------

struct SyncNode {
    dp::TimeoutTable timeouts;
    std::unique_ptr<dp::StateTable> table;
    std::unique_ptr<sync::SyncCore> core;
    std::vector<std::vector<uint8_t>> outbox;
    uint64_t tx_bytes = 0;

    SyncNode(const std::string &name, uint32_t hostid, uint32_t capacity) {
        dp::StateTableConfig tc;
        tc.name = name;
        tc.capacity = capacity;
        tc.reader_threads = 0;
        table = std::make_unique<dp::StateTable>(tc);
        timeouts = dp::TimeoutTable::from_config(config::TimeoutConfig{}, capacity);
        sync::SyncCoreConfig cc;
        cc.name = name;
        cc.creatorid = hostid;
        cc.producers = 3; // writer 0: a worker; 1: this sync lcore; 2: main
        cc.sync_writer = 1;
        cc.ring_size = 16384;
        cc.maxupd = 0;
        cc.interval_ms = 1000000; // packed when flushed: the bench decides when
        cc.bulk_timeout_ms = 600000;
        core = std::make_unique<sync::SyncCore>(cc, *table, timeouts,
                                                [this](std::span<const uint8_t> p) {
                                                    outbox.emplace_back(p.begin(), p.end());
                                                    tx_bytes += p.size();
                                                    return true;
                                                });
        table->set_sink(core.get());
    }
    ~SyncNode() { table->set_sink(nullptr); }
};

// Hand `from`'s packets to `to`; returns the seconds `to` spent applying them.
double deliver(SyncNode &from, SyncNode &to, uint32_t source) {
    const double t0 = now_s();
    for (auto &p : from.outbox)
        to.core->receive(p, source, now_ms(), 10);
    from.outbox.clear();
    return now_s() - t0;
}

void sync_bench(uint32_t n) {
    std::printf("\n---- sync: %u states, one SyncCore encoding, a peer applying (one lcore) ----\n",
                n);
    SyncNode a("sb_a", 0xa, n), b("sb_b", 0xb, n);
    const dp::State tmpl = template_state(false);
    constexpr uint32_t chunk = 8192; // within the delta ring, so that no change is lost
    double produce = 0, encode = 0, apply = 0;
    // Pack every queued change (a flush drains at most a ring burst), then the peer applies.
    auto pack_and_deliver = [&] {
        const double t0 = now_s();
        do
            a.core->flush(now_ms(), 10);
        while (a.core->queue_depth() != 0);
        encode += now_s() - t0;
        apply += deliver(a, b, 0xa);
    };
    std::vector<uint32_t> slots(n);
    for (uint32_t base = 0; base < n; base += chunk) {
        const uint32_t end = std::min(n, base + chunk);
        const double t0 = now_s();
        for (uint32_t i = base; i < end; i++) {
            dp::State s = tmpl;
            s.key = bench::flow_key(i, false, dp::StateDirection::in);
            s.creatorid = 0xa;
            s.id = i + 1;
            s.creation = s.expire = 10;
            if (a.table->insert(s, 0, &slots[i]) != dp::StateTable::InsertResult::ok)
                throw std::runtime_error("sync bench: insert failed");
        }
        produce += now_s() - t0;
        pack_and_deliver();
    }
    const auto &sa = a.core->stats();
    const uint64_t ins_pk = sa.tx_packets.load(), ins_bytes = sa.tx_bytes.load();
    const uint64_t applied_ins = b.core->stats().inserted.load();
    std::printf(
        "  INS:   %u states: enqueue %.2f M/s (worker side), encode %.2f M/s, apply %.2f M/s; "
        "%" PRIu64 " packets, %.1f states/packet, %.1f bytes/state; applied %" PRIu64 "\n",
        n, n / produce / 1e6, n / encode / 1e6, n / apply / 1e6, ins_pk, double(n) / ins_pk,
        double(ins_bytes) / n, applied_ins);
    std::printf(
        "RESULT phase=sync_ins states=%u encode_per_s=%.0f apply_per_s=%.0f packets=%" PRIu64
        " bytes_per_update=%.1f updates_per_packet=%.1f applied=%" PRIu64 "\n",
        n, n / encode, n / apply, ins_pk, double(ins_bytes) / n, double(n) / ins_pk, applied_ins);

    // Updates: every state's sender moves forward (an ACK of new data), as a worker does.
    produce = encode = apply = 0;
    const uint64_t upd0 = b.core->stats().updated.load();
    for (uint32_t base = 0; base < n; base += chunk) {
        const uint32_t end = std::min(n, base + chunk);
        const double t0 = now_s();
        for (uint32_t i = base; i < end; i++) {
            if (!a.table->lock(slots[i])) continue;
            a.table->state(slots[i]).src.seqlo += 1000;
            a.table->notify_update(slots[i], 0);
            a.table->unlock(slots[i]);
        }
        produce += now_s() - t0;
        pack_and_deliver();
    }
    const uint64_t upd_pk = sa.tx_packets.load() - ins_pk,
                   upd_bytes = sa.tx_bytes.load() - ins_bytes;
    const uint64_t applied_upd = b.core->stats().updated.load() - upd0;
    std::printf("  UPD_C: %u updates: enqueue %.2f M/s, encode %.2f M/s, apply %.2f M/s, pipeline "
                "%.2f M/s; "
                "%" PRIu64 " packets, %.1f updates/packet, %.1f bytes/update; applied %" PRIu64
                "\n",
                n, n / produce / 1e6, n / encode / 1e6, n / apply / 1e6, n / (encode + apply) / 1e6,
                upd_pk, double(n) / upd_pk, double(upd_bytes) / n, applied_upd);
    std::printf("RESULT phase=sync_upd states=%u encode_per_s=%.0f apply_per_s=%.0f "
                "pipeline_per_s=%.0f packets=%" PRIu64
                " bytes_per_update=%.1f updates_per_packet=%.1f applied=%" PRIu64 "\n",
                n, n / encode, n / apply, n / (encode + apply), upd_pk, double(upd_bytes) / n,
                double(n) / upd_pk, applied_upd);

    // Bulk: a node joins and asks for everything; both ends run here, one after the other,
    // so the time is the sum of the sender's and the receiver's work.
    SyncNode c("sb_c", 0xc, n);
    const uint64_t bytes0 = a.tx_bytes, pk0 = sa.tx_packets.load();
    const double t0 = now_s();
    c.core->start_bulk_request(now_ms());
    c.core->poll(now_ms(), 10);
    deliver(c, a, 0xc);
    while (c.core->bulk_status() != sync::BulkStatus::done) {
        a.core->poll(now_ms(), 10);
        deliver(a, c, 0xa);
        c.core->poll(now_ms(), 10);
        c.outbox.clear();
        if (now_s() - t0 > 120) break;
    }
    const double dt = now_s() - t0;
    const uint32_t got = c.table->count();
    std::printf("  bulk:  %u of %u states to a joining peer in %.3f s (%.2f M states/s), "
                "%" PRIu64 " packets, %.1f bytes/state, status %s\n",
                got, n, dt, got / dt / 1e6, sa.tx_packets.load() - pk0,
                double(a.tx_bytes - bytes0) / std::max<uint32_t>(got, 1),
                std::string(sync::name_of(c.core->bulk_status())).c_str());
    std::printf(
        "RESULT phase=sync_bulk states=%u received=%u seconds=%.4f states_per_s=%.0f done=%d\n", n,
        got, dt, got / dt, c.core->bulk_status() == sync::BulkStatus::done ? 1 : 0);
}

// " name=count" for each drop reason counted since `before` (" none" if none).
std::string drop_reasons_since(const dp::CounterTotals &now, const dp::CounterTotals *before) {
    std::string out;
    for (std::size_t r = 0; r < dp::drop_reason_count; r++) {
        const uint64_t n = now.drops[r] - (before != nullptr ? before->drops[r] : 0);
        if (n == 0) continue;
        out.append(" ").append(dp::drop_reason_names[r]).append("=").append(std::to_string(n));
    }
    return out.empty() ? " none" : out;
}

// --nat: the preloaded connections made by the worker itself, as a firewall makes them:
// each flow's SYN, SYN-ACK and ACK (UDP: a datagram each way) through the rules, so that
// every outbound state holds its second key as create_state chose it. The sink learns each
// flow's NAT address and port on the way and checks every frame.
void preload_through_worker(Context &ctx, Generator &gen, uint32_t flows, NatView &nat) {
    auto &dp = *ctx.dp;
    const bool udp = ctx.o.proto == "udp";
    const uint64_t inserts0 = dp.states->stats().inserts;
    const dp::CounterTotals totals0 = dp.totals();
    ctx.io_mode = false;
    ctx.stop.store(false);
    for (unsigned w : dp.cfg.lcores.workers)
        rte_eal_remote_launch(worker_main, &ctx, w);
    const double t0 = now_s();
    double progress_at = t0;
    uint64_t done = 0, retried = 0;
    unsigned polls = 0, rounds = 0;
    while (gen.established < flows) {
        gen.step();
        if ((++polls & 1023) != 0) continue;
        const double t = now_s();
        if (gen.established != done) {
            done = gen.established;
            progress_at = t;
        } else if (t - progress_at > 0.2) {
            // Handshakes whose frame the worker dropped (tx_ring_full while the sink was off
            // the CPU): send their next frame again, a few times at most.
            if (gen.exhausted() && rounds++ < 5) {
                retried += gen.retry();
                progress_at = t;
            } else if (t - progress_at > 2) {
                break; // stuck: reported below
            }
        }
    }
    ctx.stop.store(true);
    rte_eal_mp_wait_lcore();
    const double dt = now_s() - t0;
    gen.drain_tx();
    gen.purge_rx();
    const uint64_t made = dp.states->stats().inserts - inserts0;
    std::printf("preloaded %" PRIu64 " states (%u flows) through the worker in %.2f s (%s, "
                "%.2f M connections/s): %" PRIu64 " established, %" PRIu64
                " translations learned, %" PRIu64 " frames sent again; table holds %u states; "
                "drops:%s\n",
                made, flows, dt, udp ? "a datagram each way" : "SYN, SYN-ACK, ACK",
                flows / dt / 1e6, gen.established, nat.learned, retried, dp.states->count(),
                drop_reasons_since(dp.totals(), &totals0).c_str());
    if (gen.established < flows)
        std::printf("  handshakes stopped short: %s\n", gen.stages().c_str());
    // The states as the dataplane made them: the inbound one on lan plain, the outbound one
    // on wan translated, its second key the wire key the sink saw (a sample of the flows).
    uint64_t sampled = 0, bad = 0;
    const uint32_t step = std::max<uint32_t>(1, flows / 1000);
    for (uint32_t i = 0; i < flows; i += step) {
        sampled++;
        const uint32_t in = dp.states->lookup(bench::flow_key(i, udp, dp::StateDirection::in));
        const dp::StateKey out_key = bench::flow_key(i, udp, dp::StateDirection::out);
        const uint32_t out = dp.states->lookup(out_key);
        dp::State s_in, s_out;
        dp::StateKey wire;
        if (in == dp::StateTable::no_slot || out == dp::StateTable::no_slot ||
            !dp.states->read(in, s_in) || !dp.states->read(out, s_out) || dp::translated(s_in) ||
            !dp::translated(s_out) || !(s_out.key == out_key) || !dp.states->other_key(out, wire)) {
            bad++;
            continue;
        }
        dp::StateKey expect = out_key; // out: addr[1], port[1] are the source's
        std::memcpy(expect.addr[1].data(), nat.addr[i].data(), 4);
        expect.port[1] = nat.port[i];
        if (!(wire == expect) || dp.states->lookup(wire) != out) bad++; // either key finds it
    }
    std::printf("RESULT phase=nat_preload flows=%u established=%" PRIu64 " states_created=%" PRIu64
                " seconds=%.3f learned=%" PRIu64 " checked=%" PRIu64 " wrong=%" PRIu64
                " resent=%" PRIu64 " states_sampled=%" PRIu64 " states_wrong=%" PRIu64 "\n",
                flows, gen.established, made, dt, nat.learned, nat.checked, nat.wrong, retried,
                sampled, bad);
    if (gen.established < flows || bad != 0 || nat.wrong != 0)
        throw std::runtime_error("--nat preload: " + std::to_string(gen.established) + " of " +
                                 std::to_string(flows) + " handshakes completed, " +
                                 std::to_string(bad) + " of " + std::to_string(sampled) +
                                 " sampled flows' states not as create_state makes them, " +
                                 std::to_string(nat.wrong) + " frames translated wrongly");
}

int run(const Options &o) {
    const bool udp = o.proto == "udp";
    const uint32_t flows = o.states / 2;
    const bool makes_states = o.new_share > 0 || o.traffic == "handshake" || flows == 0;
    const uint32_t capacity =
        std::max<uint32_t>(64, flows * 2 + (makes_states ? 2 * o.max_new + 64 : 0));

    Context ctx;
    ctx.o = o;
    ctx.stats = std::vector<WorkerStats>(o.workers);
    ctx.keep_workers = o.nat;
    ctx.workers.resize(o.workers);
    const unsigned ncpu = unsigned(sysconf(_SC_NPROCESSORS_ONLN));
    std::printf("syncwall-bench: %u worker(s), %u states preloaded, table capacity %u, %u rules, "
                "%s %s, %u-byte frames, new-share %.2f, sync %s, TSC %.2f GHz, %u CPUs\n",
                o.workers, flows * 2, capacity, o.rules, o.proto.c_str(), o.traffic.c_str(),
                bench::FrameWriter(o.size, udp).frame_len(), o.new_share, o.sync ? "on" : "off",
                rte_get_tsc_hz() / 1e9, ncpu);
    if (o.twins_apart)
        std::printf("preload: every in state, then every out state in a shuffled order, "
                    "placed without regard to its twin (--twins-apart)\n");
    std::printf("receive checksums: %s\n",
                o.device_checksums ? "verified by the device (--device-checksums: every frame "
                                     "marked RX_IP/L4_CKSUM_GOOD, as a NIC with rx checksum "
                                     "offload marks it)"
                                   : "summed by the worker (net_ring verifies none)");
    if (o.nat || o.both_ways())
        std::printf("translation: %s; established traffic: %s\n",
                    o.nat ? nat_rule(o).c_str() : "none",
                    o.both_ways() ? "both ways (clients' segments in on lan, servers' in on wan)"
                                  : "lan to wan");

    bench::RingPort lan = bench::make_ring_port("lan", o.workers, ring_size, ring_size),
                    wan = bench::make_ring_port("wan", o.workers, ring_size, ring_size);
    const config::Config cfg = make_config(o, capacity);
    rte_mempool *pool = rte_pktmbuf_pool_create("bench_gen", 16383, 256, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE, int(rte_socket_id()));
    if (pool == nullptr) throw std::runtime_error("cannot create the generator's mbuf pool");

    double t0 = now_s();
    auto dp = std::make_unique<dp::Dataplane>(cfg);
    std::printf("dataplane built in %.2f s (ruleset of %zu rules compiled)\n", now_s() - t0,
                dp->ruleset.load()->size());
    ctx.dp = dp.get();
    const bench::Mac peer{0x02, 0xbe, 0, 0, 0, 2};
    bench::add_gateway_neighbours(*dp, peer);
    dp->start_ports();
    std::unique_ptr<NatView> nat;
    if (o.nat) {
        const dp::Ruleset &rs = *dp->ruleset.load();
        if (!rs.translates() || !dp->states->translations())
            throw std::runtime_error("--nat: the ruleset does not translate");
        const dp::CompiledTranslation &t = rs.translation(0);
        if (t.family != 4) throw std::runtime_error("--nat: the pool must be IPv4");
        // Flows the phases may use: the preloaded ones, then the new ones.
        nat = std::make_unique<NatView>(t, udp, flows + (makes_states ? o.max_new : 0) + 1);
        std::printf(
            "nat pool: %" PRIu64 " address%s from %u.%u.%u.%u, %s\n", t.size,
            t.size == 1 ? "" : "es", t.address(0)[0], t.address(0)[1], t.address(0)[2],
            t.address(0)[3],
            t.static_port
                ? "static-port"
                : ("ports " + std::to_string(t.port_lo) + ":" + std::to_string(t.port_hi)).c_str());
        if (flows != 0) {
            Options h = o;
            h.traffic = "handshake";
            h.new_share = 0;
            h.max_new = flows;
            h.direction = "lan-wan";
            Generator gen(h, pool, lan, wan, dp->ports[0].mac, dp->ports[1].mac, 0, nat.get(),
                          true);
            gen.set_paced();
            preload_through_worker(ctx, gen, flows, *nat);
        }
    } else {
        ctx.twins = preload(*dp, flows, udp, dp->main_writer(), o.twins_apart, o.churn);
    }
    const rte_memseg_list *memory = nohuge_memory();
    const auto huge_mib = [&] {
        return memory == nullptr ? 0.0 : huge_mapped_kb(memory->base_va) / 1024.0;
    };
    std::printf("memory per state: %zu bytes (StateTable::bytes_per_state, hash indexes + slot); "
                "EAL heap in use %.1f MiB; peak RSS %.1f MiB%s; on 2 MiB pages: %.0f MiB of "
                "EAL's memory, %.0f MiB of the state table's own\n",
                dp->states->bytes_per_state(), heap_allocated() / 1048576.0, peak_rss_kb() / 1024.0,
                o.no_prefault ? "" : " (all of -m: pre-faulted)", huge_mib(),
                dp->states->huge_page_bytes() / 1048576.0);

    std::unique_ptr<SyncPair> sync;
    Phase base, ours;
    {
        Generator gen(o, pool, lan, wan, dp->ports[0].mac, dp->ports[1].mac, flows, nat.get());
        if (!o.no_baseline) {
            base = run_phase(ctx, gen, true, nullptr);
            print_phase(ctx, base, nullptr);
        }
    }
    if (!o.no_forward) {
        if (o.sync) sync = std::make_unique<SyncPair>(*dp, capacity);
        // A fresh generator: new flows start after the preloaded ones again, so that the
        // baseline's SYNs (which made no state) do not count as known flows here.
        Generator gen(o, pool, lan, wan, dp->ports[0].mac, dp->ports[1].mac, flows, nat.get(),
                      true);
        const uint64_t checked0 = nat ? nat->checked : 0, wrong0 = nat ? nat->wrong : 0;
        ours = run_phase(ctx, gen, false, sync.get());
        print_phase(ctx, ours, o.no_baseline ? nullptr : &base);
        const auto t = dp->totals();
        std::printf("  drop reasons:%s\n", drop_reasons_since(t, nullptr).c_str());
        if (nat) {
            const uint64_t checked = nat->checked - checked0, wrong = nat->wrong - wrong0;
            const uint64_t exhausted = t.drops[std::size_t(dp::DropReason::nat_exhausted)];
            std::printf("  nat: %" PRIu64 " forwarded frames checked (%s), %" PRIu64
                        " translated wrongly; %" PRIu64 " flows' translations seen; %" PRIu64
                        " new connections refused for want of a port; table holds %u states\n",
                        checked, o.traffic == "handshake" ? "all" : "1 in 16", wrong, nat->learned,
                        exhausted, dp->states->count());
            std::printf("RESULT phase=nat checked=%" PRIu64 " wrong=%" PRIu64 " learned=%" PRIu64
                        " unknown=%" PRIu64 " nat_exhausted=%" PRIu64 " table_states=%u\n",
                        checked, wrong, nat->learned, nat->unknown, exhausted, dp->states->count());
        }
        if (sync) {
            const auto &s = sync->ours->stats();
            const uint64_t ins = s.sent[std::size_t(sync::Action::ins)].load();
            const uint64_t upd = s.sent[std::size_t(sync::Action::upd_c)].load();
            std::printf("  sync: %" PRIu64 " INS + %" PRIu64 " UPD_C in %" PRIu64
                        " packets (%" PRIu64 " bytes); peer applied %" PRIu64
                        " inserts; ring full %" PRIu64 "\n",
                        ins, upd, s.tx_packets.load(), s.tx_bytes.load(),
                        sync->peer->stats().inserted.load(), s.ring_full.load());
            std::printf("RESULT phase=sync_forward sent_states=%" PRIu64 " packets=%" PRIu64
                        " bytes=%" PRIu64 " peer_inserted=%" PRIu64 " ring_full=%" PRIu64 "\n",
                        ins + upd, s.tx_packets.load(), s.tx_bytes.load(),
                        sync->peer->stats().inserted.load(), s.ring_full.load());
        }
    }
    if (o.sync_bench > 0) sync_bench(o.sync_bench);
    if (!o.no_forward)
        std::printf("\nRESULT phase=memory bytes_per_state=%zu heap_mib=%.1f peak_rss_mib=%.1f "
                    "prefault=%d huge_page_mib=%.0f table_huge_page_mib=%.0f\n",
                    dp->states->bytes_per_state(), heap_allocated() / 1048576.0,
                    peak_rss_kb() / 1024.0, o.no_prefault ? 0 : 1, huge_mib(),
                    dp->states->huge_page_bytes() / 1048576.0);

    if (sync) dp->states->set_sink(nullptr);
    sync.reset();
    ctx.workers.clear();
    dp.reset();
    for (auto *p : {&lan, &wan}) { // the Dataplane closed the ports; the rings are ours
        for (auto *r : p->rx) {
            rte_mbuf *m;
            while (rte_ring_dequeue(r, reinterpret_cast<void **>(&m)) == 0)
                rte_pktmbuf_free(m);
            rte_ring_free(r);
        }
        for (auto *r : p->tx) {
            rte_mbuf *m;
            while (rte_ring_dequeue(r, reinterpret_cast<void **>(&m)) == 0)
                rte_pktmbuf_free(m);
            rte_ring_free(r);
        }
    }
    rte_mempool_free(pool);
    return 0;
}

// An argv for `args` (which must outlive it), ending in nullptr as main's does.
std::vector<char *> c_argv(std::vector<std::string> &args) {
    std::vector<char *> v;
    for (auto &a : args)
        v.push_back(a.data());
    v.push_back(nullptr);
    return v;
}

// EAL leaves its runtime directory (/var/run/dpdk/PREFIX) behind; nothing else uses it.
void close_eal(const std::string &prefix) {
    const std::string runtime_dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    std::error_code ec;
    if (runtime_dir.find(prefix) != std::string::npos) std::filesystem::remove_all(runtime_dir, ec);
}

} // namespace

int main(int argc, char **argv) {
    Options o;
    CLI::App app{
        "syncwall-bench: the syncwall worker on net_ring ports, beside an io-forward baseline"};
    app.add_option("--states", o.states, "states preloaded (two per flow: in on lan, out on wan)");
    app.add_option("--new-share", o.new_share, "share of packets that open a new flow (0..1)")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--traffic", o.traffic,
                   "established: data segments of preloaded flows (plus "
                   "--new-share SYNs); handshake: SYN, SYN-ACK, ACK of new flows")
        ->check(CLI::IsMember({"established", "handshake"}));
    app.add_option("--proto", o.proto, "tcp or udp")->check(CLI::IsMember({"tcp", "udp"}));
    app.add_option("--size", o.size, "Ethernet frame size without FCS")
        ->check(CLI::Range(60, 1514));
    app.add_option("--rules", o.rules,
                   "pf rules in the ruleset (3 decide, the rest never match; --nat adds one)")
        ->check(CLI::Range(3u, 100000u));
    app.add_option("--workers", o.workers, "worker lcores")->check(CLI::Range(1u, 64u));
    app.add_flag("--sync", o.sync, "state changes go through a SyncCore to an in-process peer");
    app.add_option("--duration", o.duration, "seconds per phase");
    app.add_option("--stats-period", o.period, "seconds between periodic lines");
    app.add_option("--max-new", o.max_new, "new connections a phase may open (bounds the table)");
    app.add_option("--sync-bench", o.sync_bench, "also measure sync alone with this many states");
    app.add_flag("--no-baseline", o.no_baseline, "skip the io-forward phase");
    app.add_flag("--no-forward", o.no_forward, "skip the forwarding phases (with --sync-bench)");
    app.add_flag("--no-prefault", o.no_prefault,
                 "leave EAL's --no-huge memory to be faulted in "
                 "on first touch (by the workers)");
    app.add_option("--file-prefix", o.prefix, "EAL --file-prefix (default: syncwall-bench-PID)");
    app.add_option("-m,--memory", o.memory_mb, "EAL memory in MiB (default: from --states)");
    app.add_flag("--thp", o.thp,
                 "back EAL's memory with 2 MiB transparent huge pages (needs "
                 "/sys/kernel/mm/transparent_hugepage/shmem_enabled at advise or always)");
    app.add_option("--thp-memory", o.thp_memory_mb, "EAL memory in MiB (--thp sets it)")->group("");
    CLI::Option *nat_flag =
        app.add_flag("--nat", o.nat,
                     "source NAT: add `match out on wan inet from 198.18.0.0/16 to any nat-to "
                     "(wan) port 1024:65535`; preloaded states are made by handshakes through "
                     "the worker, and the sink checks the translation");
    app.add_option("--nat-to", o.nat_to,
                   "what follows nat-to in --nat's rule (a pool on wan, e.g. '192.0.2.64/28 "
                   "port 1024:65535')")
        ->capture_default_str();
    app.add_flag("--twins-apart", o.twins_apart,
                 "preload every flow's in state, then every out state in a shuffled order "
                 "without asking for a place near the in state, so that a connection's two "
                 "states lie apart (as a table that ignores twins leaves them); default: one "
                 "after the other, the out state near the in state as a worker makes it; not "
                 "with --nat, whose preload goes through the worker")
        ->excludes(nat_flag);
    app.add_option("--churn", o.churn,
                   "after the preload, replace this many times the preloaded connections, "
                   "picked at random, 32 a burst (removed, then made again in and out as a "
                   "worker makes them), so that states lie where traffic that turned the table "
                   "over leaves them; not with --nat")
        ->check(CLI::Range(0.0, 100.0))
        ->excludes(nat_flag);
    app.add_flag("--device-checksums", o.device_checksums,
                 "frames arrive marked with good IPv4 and L4 checksums, as a NIC with receive "
                 "checksum offload marks them (the worker then sums none); default: unmarked, "
                 "as net_ring delivers them, and the worker sums every header");
    app.add_option("--direction", o.direction,
                   "established traffic: lan-wan (the clients' segments only; the default) or "
                   "both (the servers' too, in on wan; the default with --nat)")
        ->check(CLI::IsMember({"lan-wan", "both"}));
    CLI11_PARSE(app, argc, argv);
    if (o.no_forward) o.no_baseline = true;
    if (o.traffic == "handshake" && o.proto != "tcp") {
        std::fprintf(stderr, "--traffic handshake needs --proto tcp\n");
        return 2;
    }
    if (o.direction.empty()) o.direction = o.nat ? "both" : "lan-wan";
    if (!o.nat && app.count("--nat-to") != 0) {
        std::fprintf(stderr, "--nat-to needs --nat\n");
        return 2;
    }

    if (o.prefix.empty()) o.prefix = "syncwall-bench-" + std::to_string(getpid());
    if (o.memory_mb == 0) {
        // ~350 bytes a state in the dataplane table (400 with slack), the sync pair's
        // tables, ACL, pools. All of it is pre-faulted, so do not ask for much more.
        const bool new_flows = o.new_share > 0 || o.traffic == "handshake" || o.states < 2;
        const uint64_t states = uint64_t(o.states) + (new_flows ? 2ull * o.max_new : 0) + 64;
        uint64_t mb = 384 + states * 400 / (1 << 20) + o.rules / 8;
        if (o.sync) mb += states * 400 / (1 << 20);
        // Translated states: a second key in the index and an alias slot each.
        if (o.nat) mb += states * 300 / (1 << 20);
        mb += uint64_t(o.sync_bench) * 3 * 400 / (1 << 20);
        o.memory_mb = uint32_t(mb);
    }
    if (o.thp_memory_mb != 0) o.memory_mb = o.thp_memory_mb;
    if (o.thp) {
        const std::string mode = shmem_thp_mode();
        if (mode != "always" && mode != "advise" && mode != "within_size" && mode != "force") {
            std::fprintf(stderr,
                         "syncwall-bench: --thp needs transparent huge pages for shmem, but "
                         "/sys/kernel/mm/transparent_hugepage/shmem_enabled is '%s'; as root: "
                         "echo advise > /sys/kernel/mm/transparent_hugepage/shmem_enabled\n",
                         mode.empty() ? "unreadable" : mode.c_str());
            return 2;
        }
    }
    const unsigned ncpu = unsigned(sysconf(_SC_NPROCESSORS_ONLN));
    std::string lcores;
    for (unsigned i = 0; i <= o.workers; i++)
        lcores += (i ? "," : "") + std::to_string(i) + "@" + std::to_string(i % ncpu);
    std::vector<std::string> eal{
        "syncwall-bench", "--no-huge",   "--no-pci",          "-m",   std::to_string(o.memory_mb),
        "--file-prefix",  o.prefix,      "--lcores",          lcores, "--log-level",
        "lib.eal:error",  "--log-level", "pmd.net.ring:error"};
    std::vector<char *> eal_argv = c_argv(eal);
    if (rte_eal_init(int(eal.size()), eal_argv.data()) < 0) {
        std::fprintf(stderr, "syncwall-bench: EAL init failed (memory %u MiB)\n", o.memory_mb);
        return 2;
    }
    if (o.thp) {
        const rte_memseg_list *msl = nohuge_memory();
        if (msl == nullptr) {
            std::fprintf(stderr, "syncwall-bench: --thp: EAL has no --no-huge memory\n");
            close_eal(o.prefix);
            return 2;
        }
        const uintptr_t at = reinterpret_cast<uintptr_t>(msl->base_va);
        const uint64_t off = at % huge_page_size;
        if (off != 0) {
            close_eal(o.prefix);
            const uint32_t mb = o.thp_memory_mb != 0 ? 0 : aligned_memory_mb(o.memory_mb, off);
            if (mb == 0) {
                std::fprintf(stderr,
                             "syncwall-bench: --thp: EAL memory at 0x%" PRIxPTR
                             " (-m %u) is not on a 2 MiB boundary, and no -m found to put it "
                             "there\n",
                             at, o.memory_mb);
                return 2;
            }
            // Start again with that much memory.
            std::vector<std::string> again(argv, argv + argc);
            again.insert(again.end(), {"--thp-memory", std::to_string(mb)});
            execv("/proc/self/exe", c_argv(again).data());
            std::perror("syncwall-bench: --thp: execv");
            return 2;
        }
        if (madvise(msl->base_va, msl->len, MADV_HUGEPAGE) != 0)
            std::perror("syncwall-bench: madvise(MADV_HUGEPAGE) on EAL memory");
    }
    if (!o.no_prefault) prefault_eal_memory();
    int rc = 0;
    try {
        rc = run(o);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "syncwall-bench: %s\n", e.what());
        rc = 1;
    }
    close_eal(o.prefix);
    return rc;
}
