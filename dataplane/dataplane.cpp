#include "dataplane/dataplane.hpp"

#include "config/pf_rule.hpp"
#include "dataplane/pflog_writer.hpp"
#include "dataplane/reassembly.hpp"
#include "dataplane/ruleset.hpp"
#include "dataplane/state_table.hpp"

#include <rte_common.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <limits>
#include <net/if.h>
#include <stdexcept>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace syncwall::dp {

namespace {

std::string dpdk_error(int err) {
    return rte_strerror(err < 0 ? -err : err);
}

// A symmetric RSS key (0x6d5a repeated) sends both directions of a flow to one queue, so
// one worker sees every packet of a connection.
constexpr uint8_t symmetric_rss_byte(unsigned i) {
    return i % 2 == 0 ? 0x6d : 0x5a;
}

} // namespace

std::vector<std::string> Port::device_checksums() const {
    std::vector<std::string> names;
    for (const auto &[flag, name] : {std::pair{RTE_ETH_RX_OFFLOAD_IPV4_CKSUM, "ipv4"},
                                     std::pair{RTE_ETH_RX_OFFLOAD_TCP_CKSUM, "tcp"},
                                     std::pair{RTE_ETH_RX_OFFLOAD_UDP_CKSUM, "udp"}})
        if ((rx_checksum_offloads & flag) != 0) names.emplace_back(name);
    return names;
}

bool Port::has_address(const uint8_t *addr, uint8_t family) const {
    const std::size_t len = family == 4 ? 4 : 16;
    for (const auto &a : addresses)
        if (a.addr.family == family && std::memcmp(a.addr.bytes.data(), addr, len) == 0)
            return true;
    return false;
}

Dataplane::Dataplane(const config::Config &c) : cfg(c), worker_counters(c.lcores.workers.size()) {
    const int socket = int(rte_socket_id());
    // The same name and size give the same offset to a second Dataplane in this process.
    static const rte_mbuf_dynfield punt_field = {"syncwall_punt_meta", sizeof(PuntMeta),
                                                 alignof(PuntMeta), 0};
    punt_meta_offset = rte_mbuf_dynfield_register(&punt_field);
    if (punt_meta_offset < 0)
        throw std::runtime_error("cannot register the punt metadata mbuf field: " +
                                 dpdk_error(rte_errno));
    if (cfg.interfaces.size() > max_ports)
        throw std::runtime_error("at most " + std::to_string(max_ports) + " interfaces");
    if (cfg.lcores.main != rte_get_main_lcore())
        throw std::runtime_error("lcores.main is " + std::to_string(cfg.lcores.main) +
                                 " but EAL's main lcore is " +
                                 std::to_string(rte_get_main_lcore()) +
                                 " (check --lcores/-l and --main-lcore in dpdk.eal_args)");
    if (worker_count() > max_workers) // State::owner is one byte
        throw std::runtime_error("at most " + std::to_string(max_workers) + " workers");
    for (unsigned w : cfg.lcores.workers)
        if (!rte_lcore_is_enabled(w))
            throw std::runtime_error("worker lcore " + std::to_string(w) +
                                     " is not enabled in EAL (dpdk.eal_args -l/--lcores)");

    pool = pool_for_socket(socket); // the main lcore's own allocations

    for (const auto &ic : cfg.interfaces)
        open_port(ic, cfg.sync.enabled && ic.name == cfg.sync.interface);

    std::vector<RoutedInterface> routed;
    for (uint16_t i = 0; i < ports.size(); i++) {
        if (ports[i].is_sync) continue;
        RoutedInterface ri{ports[i].name, i, ports[i].addresses, {}};
        for (const auto &v : cfg.carp.vhosts) {
            if (v.interface != ports[i].name) continue;
            virtual_macs[i].configure(v.vhid);
            for (const auto &a : v.addresses)
                ri.virtual_addresses.push_back(a.addr);
        }
        routed.push_back(std::move(ri));
    }
    routes = std::make_unique<RouteTable>("syncwall_fib0", routed, cfg.routes, socket);
    std::vector<config::IpPrefix> connected;
    std::vector<config::IpAddress> own;
    for (const auto &ri : routed) {
        for (const auto &a : ri.addresses) {
            connected.push_back(a);
            own.push_back(a.addr);
        }
        own.insert(own.end(), ri.virtual_addresses.begin(), ri.virtual_addresses.end());
    }
    martians = MartianCheck(connected, own);
    neighbours = std::make_unique<NeighbourTable>("syncwall_nbr", cfg.limits.neighbours, socket);

    // The stateful filter: state table, timeouts, ruleset, and the RCU that guards swaps.
    start_time = uint64_t(std::time(nullptr));
    tsc_hz_ = rte_get_tsc_hz();
    tsc_start_ = rte_get_tsc_cycles();
    timeouts = TimeoutTable::from_config(cfg.timeouts, cfg.limits.states);
    std::vector<config::PfRule> rules = config::parse_pf_rules(cfg);
    StateTableConfig stc;
    stc.capacity = cfg.limits.states;
    // Translated states take a second key each: room for them only where rules translate
    // (a reload cannot add it; see control_loop.cpp).
    stc.translations = std::any_of(rules.begin(), rules.end(), [](const config::PfRule &r) {
        return r.nat.set || r.rdr.set || r.binat;
    });
    stc.reader_threads = worker_count() + 1; // workers, then the sync lcore
    stc.socket_id = socket;
    states = std::make_unique<StateTable>(stc);
    // Without pfsync nobody polls as reader W: keep it from holding up grace periods.
    if (!cfg.sync.enabled) states->reader_offline(worker_count());
    const std::size_t rcu_size = rte_rcu_qsbr_get_memsize(worker_count());
    config_rcu_ = static_cast<rte_rcu_qsbr *>(
        rte_zmalloc_socket("syncwall_rcu", rcu_size, RTE_CACHE_LINE_SIZE, socket));
    if (config_rcu_ == nullptr || rte_rcu_qsbr_init(config_rcu_, worker_count()) != 0)
        throw std::runtime_error("cannot create the RCU variable for ruleset swaps");
    for (unsigned w = 0; w < worker_count(); w++) {
        rte_rcu_qsbr_thread_register(config_rcu_, w);
        rte_rcu_qsbr_thread_online(config_rcu_, w);
    }
    ruleset.store(new Ruleset(cfg, std::move(rules), worker_count(), "syncwall_acl0", socket));

    for (unsigned w = 0; w < worker_count(); w++) {
        const std::string name = "syncwall_punt" + std::to_string(w);
        rte_ring *r = rte_ring_create(name.c_str(), rte_align32pow2(cfg.limits.punt_ring), socket,
                                      RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (r == nullptr)
            throw std::runtime_error("cannot create punt ring: " + dpdk_error(rte_errno));
        punt_rings.push_back(r);
    }

    reassembly_pools_.assign(worker_count(), nullptr);
    if (worker_count() > 1) {
        handoff_rings_ = std::make_unique<HandoffRing[]>(worker_count() * worker_count());
        for (unsigned from = 0; from < worker_count(); from++) {
            for (unsigned to = 0; to < worker_count(); to++) {
                if (from == to) continue;
                const std::string name =
                    "syncwall_ho" + std::to_string(from) + "_" + std::to_string(to);
                rte_ring *r = rte_ring_create(name.c_str(), handoff_ring_size, socket,
                                              RING_F_SP_ENQ | RING_F_SC_DEQ);
                if (r == nullptr)
                    throw std::runtime_error("cannot create hand-off ring: " +
                                             dpdk_error(rte_errno));
                handoff(from, to).ring = r;
            }
        }
    }

    if (cfg.control.pflog_file)
        pflog = std::make_unique<PflogWriter>(*cfg.control.pflog_file, PflogWriter::default_records,
                                              socket);
}

rte_mempool *Dataplane::pool_for_socket(int socket) {
    if (socket < 0) socket = int(rte_socket_id());
    for (const auto &[s, p] : pools_)
        if (s == socket) return p;
    const std::string name = "syncwall_mbufs" + std::to_string(socket);
    rte_mempool *p = rte_pktmbuf_pool_create(name.c_str(), cfg.dpdk.mbufs, cfg.dpdk.mbuf_cache, 0,
                                             RTE_MBUF_DEFAULT_BUF_SIZE, socket);
    if (p == nullptr)
        throw std::runtime_error("cannot create mbuf pool of " + std::to_string(cfg.dpdk.mbufs) +
                                 " mbufs on socket " + std::to_string(socket) + ": " +
                                 dpdk_error(rte_errno) +
                                 " (raise -m in dpdk.eal_args or lower dpdk.mbufs)");
    pools_.emplace_back(socket, p);
    return p;
}

void Dataplane::open_port(const config::InterfaceConfig &ic, bool is_sync) {
    const std::string where = ic.pos.to_string() + ": interface " + ic.name;
    int rc = rte_dev_probe(ic.devargs.c_str());
    if (rc < 0 && rc != -EEXIST)
        throw std::runtime_error(where + ": cannot open device \"" + ic.devargs +
                                 "\": " + dpdk_error(rc));
    const std::string dev_name = ic.devargs.substr(0, ic.devargs.find(','));
    uint16_t port_id = 0;
    if (rte_eth_dev_get_port_by_name(dev_name.c_str(), &port_id) != 0)
        throw std::runtime_error(where + ": device \"" + dev_name + "\" has no ethernet port");

    rte_eth_dev_info info{};
    rc = rte_eth_dev_info_get(port_id, &info);
    if (rc != 0) throw std::runtime_error(where + ": cannot read device info: " + dpdk_error(rc));

    Port p;
    p.name = ic.name;
    p.devargs = ic.devargs;
    p.port_id = port_id;
    p.addresses = ic.addresses;
    p.mtu = ic.mtu;
    p.is_sync = is_sync;
    // The sync port belongs to the sync role alone; data ports give each worker a queue.
    const uint16_t queues = is_sync ? 1 : uint16_t(worker_count());
    if (info.max_rx_queues < queues || info.max_tx_queues < queues)
        throw std::runtime_error(where + ": needs " + std::to_string(queues) +
                                 " rx/tx queues (one per worker) but the device offers " +
                                 std::to_string(info.max_rx_queues) + "/" +
                                 std::to_string(info.max_tx_queues) +
                                 " (for net_af_packet add qpairs=N to the devargs)");
    p.rx_queues = p.tx_queues = queues;

    rte_eth_conf conf{};
    conf.rxmode.mtu = ic.mtu;
    // The filter must not let a segment with a bad checksum touch a state, nor forward a
    // bad IPv4 header: a NIC that verifies them spares the worker summing every packet.
    p.rx_checksum_offloads =
        info.rx_offload_capa & (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM |
                                RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
    conf.rxmode.offloads = p.rx_checksum_offloads;
    uint8_t rss_key[52];
    if (queues > 1 && info.flow_type_rss_offloads != 0) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf =
            info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
        if (info.hash_key_size > 0 && info.hash_key_size <= sizeof(rss_key)) {
            for (unsigned i = 0; i < info.hash_key_size; i++)
                rss_key[i] = symmetric_rss_byte(i);
            conf.rx_adv_conf.rss_conf.rss_key = rss_key;
            conf.rx_adv_conf.rss_conf.rss_key_len = info.hash_key_size;
        }
    }
    rc = rte_eth_dev_configure(port_id, queues, queues, &conf);
    if (rc != 0) throw std::runtime_error(where + ": cannot configure: " + dpdk_error(rc));

    uint16_t nb_rx = cfg.dpdk.rx_desc, nb_tx = cfg.dpdk.tx_desc;
    rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &nb_rx, &nb_tx);
    const int socket =
        rte_eth_dev_socket_id(port_id) < 0 ? int(rte_socket_id()) : rte_eth_dev_socket_id(port_id);
    rte_mempool *rx_pool = pool_for_socket(socket);
    for (uint16_t q = 0; q < queues; q++) {
        rc = rte_eth_rx_queue_setup(port_id, q, nb_rx, socket, nullptr, rx_pool);
        if (rc != 0)
            throw std::runtime_error(where + ": rx queue " + std::to_string(q) + ": " +
                                     dpdk_error(rc));
        rc = rte_eth_tx_queue_setup(port_id, q, nb_tx, socket, nullptr);
        if (rc != 0)
            throw std::runtime_error(where + ": tx queue " + std::to_string(q) + ": " +
                                     dpdk_error(rc));
    }

    rte_ether_addr mac{};
    rte_eth_macaddr_get(port_id, &mac);
    std::memcpy(p.mac.data(), mac.addr_bytes, 6);
    if (ic.mac) {
        rte_ether_addr a;
        std::memcpy(a.addr_bytes, ic.mac->bytes.data(), 6);
        rc = rte_eth_dev_default_mac_addr_set(port_id, &a);
        // Devices that cannot change their address (net_pcap, some VFs) still get the
        // configured one: syncwall writes and checks Ethernet addresses itself, and the
        // port is made promiscuous so that frames to that address arrive.
        if (rc == -ENOTSUP)
            p.soft_mac = true;
        else if (rc != 0)
            throw std::runtime_error(where + ": cannot set MAC: " + dpdk_error(rc));
        p.mac = ic.mac->bytes;
    }

    const std::string ring_name = "syncwall_ctx" + std::to_string(ports.size());
    p.ctl_tx = rte_ring_create(ring_name.c_str(), 1024, socket, RING_F_SC_DEQ);
    if (p.ctl_tx == nullptr)
        throw std::runtime_error(where +
                                 ": cannot create control tx ring: " + dpdk_error(rte_errno));

    if (port_id >= port_index_.size()) port_index_.resize(port_id + 1, -1);
    port_index_[port_id] = int(ports.size());
    if (is_sync)
        sync_port = int(ports.size());
    else
        data_ports.push_back(uint16_t(ports.size()));
    ports.push_back(std::move(p));
}

void Dataplane::start_ports() {
    for (std::size_t i = 0; i < ports.size(); i++) {
        const Port &p = ports[i];
        const int rc = rte_eth_dev_start(p.port_id);
        if (rc != 0)
            throw std::runtime_error("interface " + p.name + ": cannot start: " + dpdk_error(rc));
        // Frames for a CARP virtual MAC are unicast to a MAC the device does not own.
        bool carries_vhid = false;
        for (const auto &v : cfg.carp.vhosts)
            carries_vhid = carries_vhid || v.interface == p.name;
        if (cfg.interfaces[i].promiscuous || p.soft_mac || carries_vhid)
            rte_eth_promiscuous_enable(p.port_id);
        // Link-local multicast (CARP adverts, pfsync, IPv6 ND) reaches the control plane.
        rte_eth_allmulticast_enable(p.port_id);
    }
}

void Dataplane::stop_ports() {
    for (const auto &p : ports)
        rte_eth_dev_stop(p.port_id);
}

Dataplane::~Dataplane() {
    if (ifreq_socket_ >= 0) ::close(ifreq_socket_);
    pflog.reset(); // the workers have stopped: write what they logged, close the file
    for (auto &p : ports) {
        rte_eth_dev_stop(p.port_id);
        rte_eth_dev_close(p.port_id);
        if (p.ctl_tx != nullptr) {
            rte_mbuf *m;
            while (rte_ring_dequeue(p.ctl_tx, reinterpret_cast<void **>(&m)) == 0)
                rte_pktmbuf_free(m);
            rte_ring_free(p.ctl_tx);
        }
    }
    std::vector<rte_ring *> rings = punt_rings;
    for (unsigned i = 0; handoff_rings_ && i < worker_count() * worker_count(); i++)
        if (handoff_rings_[i].ring != nullptr) rings.push_back(handoff_rings_[i].ring);
    for (auto *r : rings) {
        rte_mbuf *m;
        while (rte_ring_dequeue(r, reinterpret_cast<void **>(&m)) == 0)
            rte_pktmbuf_free(m);
        rte_ring_free(r);
    }
    for (rte_mempool *p : reassembly_pools_) // no ring holds their buffers any more
        rte_mempool_free(p);
    routes.reset();
    neighbours.reset();
    delete ruleset.exchange(nullptr);
    delete swap_.old; // a reload still rebinding its states when the loop stopped
    states.reset();
    rte_free(config_rcu_);
    for (const auto &[s, p] : pools_)
        rte_mempool_free(p);
}

rte_mempool *Dataplane::reassembly_pool(unsigned w) {
    // Each worker asks for its own entry only (the vector is sized up front), so workers
    // made on their own lcores at once do not race.
    rte_mempool *&p = reassembly_pools_.at(w);
    if (p == nullptr) p = Reassembly::make_pool(w, int(rte_socket_id()));
    return p;
}

CounterTotals Dataplane::totals() const {
    CounterTotals t;
    for (const auto &c : worker_counters)
        t.add(c);
    t.add(main_counters);
    return t;
}

namespace {

// The kernel interface behind a net_af_packet port ("net_af_packet0,iface=fw-lan,..."),
// or "" for other devices.
std::string af_packet_iface(const std::string &devargs) {
    if (devargs.rfind("net_af_packet", 0) != 0) return {};
    const auto at = devargs.find("iface=");
    if (at == std::string::npos) return {};
    const auto end = devargs.find(',', at);
    return devargs.substr(at + 6, end == std::string::npos ? std::string::npos : end - at - 6);
}

} // namespace

bool Dataplane::link_up(uint16_t port) {
    const Port &p = ports.at(port);
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(p.port_id, &link) == 0 && link.link_status == RTE_ETH_LINK_DOWN)
        return false;
    const std::string ifname = af_packet_iface(p.devargs);
    if (ifname.empty() || ifname.size() >= IFNAMSIZ) return true;
    if (ifreq_socket_ < 0) ifreq_socket_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (ifreq_socket_ < 0) return true; // no way to ask: DPDK's word stands
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, ifname.c_str(), ifname.size());
    if (::ioctl(ifreq_socket_, SIOCGIFFLAGS, &ifr) != 0) return false;
    return (ifr.ifr_flags & IFF_UP) != 0 && (ifr.ifr_flags & IFF_RUNNING) != 0;
}

void Dataplane::send_from_main(uint16_t port, rte_mbuf *m) {
    if (port >= ports.size() || rte_ring_enqueue(ports[port].ctl_tx, m) != 0) {
        rte_pktmbuf_free(m);
        main_counters.drop(DropReason::tx_ring_full);
    }
}

} // namespace syncwall::dp

namespace syncwall::dp {

uint32_t Dataplane::now() const {
    return uint32_t((rte_get_tsc_cycles() - tsc_start_) / tsc_hz_);
}

void Dataplane::quiescent(unsigned worker) {
    rte_rcu_qsbr_quiescent(config_rcu_, worker);
    states->quiescent(worker);
}

void Dataplane::begin_ruleset_swap(std::unique_ptr<Ruleset> next, std::vector<uint32_t> remap) {
    // One swap at a time: finish any earlier one first (the caller normally waits for it).
    while (ruleset_swap_pending() && !ruleset_swap_step(std::numeric_limits<uint32_t>::max()))
        rte_pause();
    Ruleset *old = ruleset.exchange(next.release(), std::memory_order_acq_rel);
    if (old == nullptr) return;
    swap_.old = old;
    swap_.remap = std::move(remap);
    swap_.remap.resize(old->size(), no_rule);
    for (auto &r : swap_.remap)
        if (r == config::no_match) r = no_rule;
    swap_.token = rte_rcu_qsbr_start(config_rcu_);
    swap_.grace_over = false;
    swap_.next_slot = 0;
}

bool Dataplane::ruleset_swap_step(uint32_t slot_budget) {
    if (swap_.old == nullptr) return true;
    if (!swap_.grace_over) {
        // Until every worker has passed a quiescent state, one may still classify with the
        // old ruleset and create states with its rule numbers: the walk must come after.
        if (rte_rcu_qsbr_check(config_rcu_, swap_.token, false) != 1) return false;
        swap_.grace_over = true;
    }
    // States keep their rule where the new ruleset has an identical one (as pf keeps a
    // state's rule alive); others no longer belong to a rule.
    Ruleset *now_rs = ruleset.load(std::memory_order_acquire);
    const auto &remap = swap_.remap;
    const uint32_t slots = states->slots();
    const uint32_t end =
        slots - swap_.next_slot > slot_budget ? swap_.next_slot + slot_budget : slots;
    for (uint32_t slot = swap_.next_slot; slot < end; slot++) {
        if (!states->lock(slot)) continue;
        State &st = states->state(slot);
        st.rule = st.rule < remap.size() ? remap[st.rule] : no_rule;
        if (st.rule != no_rule && st.rule < now_rs->size())
            now_rs->live_states(st.rule).fetch_add(1, std::memory_order_relaxed);
        states->unlock(slot);
    }
    swap_.next_slot = end;
    if (end < slots) return false;
    delete swap_.old;
    swap_ = RulesetSwap{};
    return true;
}

namespace {
// A rule's state count goes down by one, never below zero (a state the reload walk has
// not reached yet carries an old rule number: its release must not wrap another count).
void release_rule_state(std::atomic<uint32_t> &live) {
    uint32_t n = live.load(std::memory_order_relaxed);
    while (n != 0 && !live.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) {
    }
}
} // namespace

bool Dataplane::remove_state(uint32_t slot, unsigned writer) {
    State copy;
    const uint32_t rule = states->read(slot, copy) ? copy.rule : no_rule;
    if (!states->remove(slot, writer)) return false;
    Ruleset *rs = ruleset.load(std::memory_order_acquire);
    if (rule < rs->size()) release_rule_state(rs->live_states(rule));
    return true;
}

uint32_t Dataplane::expire_states(uint32_t budget) {
    // While a ruleset swap rebinds states, some carry the old rule numbers: per-rule
    // timeouts would be read from the wrong rule. The sweep resumes after (milliseconds).
    if (ruleset_swap_pending()) return 0;
    const uint32_t t = now();
    const uint32_t count = states->count();
    Ruleset *rs = ruleset.load(std::memory_order_acquire);
    return states->sweep(budget, main_writer(), [&](const State &st) {
        uint32_t override_s = 0;
        const auto c = std::size_t(st.timeout);
        if (st.rule < rs->size() && c < config::state_timeout_count)
            override_s = rs->rule(st.rule).timeouts[c];
        if (!state_expired(st, t, timeouts.lifetime(st.timeout, count, override_s))) return false;
        if (st.rule < rs->size()) release_rule_state(rs->live_states(st.rule));
        return true;
    });
}

} // namespace syncwall::dp
