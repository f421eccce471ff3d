#include "sync/sync_engine.hpp"

#include "dataplane/arp.hpp"
#include "dataplane/byte_order.hpp"
#include "dataplane/frame_writer.hpp"
#include "dataplane/idle.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/state_table.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace syncwall::sync {

namespace {

constexpr std::array<uint8_t, 6> pfsync_group_mac{0x01, 0x00, 0x5e, 0x00, 0x00, 0xf0};
constexpr std::array<uint8_t, 6> broadcast_mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr uint16_t rx_burst = 32;
constexpr uint64_t arp_retry_ms = 1000;
constexpr uint8_t iptos_lowdelay = 0x10; // what OpenBSD's pfsync sets

std::string read_key(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("sync.auth.key_file " + path + ": cannot be read");
    std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r'))
        key.pop_back();
    if (key.size() < 16)
        throw std::runtime_error("sync.auth.key_file " + path +
                                 ": the key must be at least 16 bytes");
    return key;
}

} // namespace

SyncEngine::SyncEngine(dp::Dataplane &dp)
    : dp_(dp), port_(dp.ports.at(dp.sync_port < 0 ? dp.ports.size() : std::size_t(dp.sync_port))) {
    const config::SyncConfig &sc = dp.cfg.sync;
    bool have_addr = false;
    for (const auto &a : port_.addresses)
        if (a.addr.family == 4) {
            std::memcpy(our_addr_.data(), a.addr.bytes.data(), 4);
            have_addr = true;
            break;
        }
    if (!have_addr)
        throw std::runtime_error("sync interface " + port_.name +
                                 " needs an IPv4 address (pfsync is sent from it)");
    if (sc.peer) {
        if (sc.peer->family != 4)
            throw std::runtime_error("sync.peer must be an IPv4 address (pfsync runs over IPv4)");
        std::memcpy(dst_addr_.data(), sc.peer->bytes.data(), 4);
        unicast_ = true;
    } else {
        const uint32_t g = pfsync_group;
        dst_addr_ = {uint8_t(g >> 24), uint8_t(g >> 16), uint8_t(g >> 8), uint8_t(g)};
        dst_mac_ = pfsync_group_mac;
        peer_mac_known_.store(true);
    }
    tsc_hz_ = rte_get_tsc_hz();

    SyncCoreConfig cc;
    cc.name = "syncwall_sync";
    cc.creatorid = dp.cfg.node.hostid;
    cc.producers = dp.main_writer() + 1;
    cc.sync_writer = dp.sync_writer();
    // A frame must fit one mbuf's data room with its Ethernet header.
    const std::size_t room = RTE_MBUF_DEFAULT_DATAROOM - RTE_ETHER_HDR_LEN;
    cc.mtu = std::min<std::size_t>(port_.mtu, room);
    cc.maxupd = sc.maxupd;
    cc.interval_ms = sc.interval_ms;
    cc.bulk_timeout_ms = sc.bulk_timeout_ms;
    cc.bulk_max_requests = sc.bulk_max_requests;
    cc.ring_size = sc.ring_size;
    if (!sc.auth.key_file.empty()) cc.auth_key = read_key(sc.auth.key_file);
    cc.socket_id = int(rte_socket_id());
    core_ = std::make_unique<SyncCore>(
        cc, *dp.states, dp.timeouts,
        [this](std::span<const uint8_t> payload) { return transmit(payload); },
        [this](uint32_t slot) { return dp_.remove_state(slot, dp_.sync_writer()); });
    dp.states->set_sink(core_.get());
}

SyncEngine::~SyncEngine() {
    dp_.states->set_sink(nullptr);
}

uint64_t SyncEngine::now_ms() const {
    return rte_get_tsc_cycles() * 1000 / tsc_hz_;
}

std::string SyncEngine::interface() const {
    return port_.name;
}

std::string SyncEngine::destination() const {
    return std::to_string(dst_addr_[0]) + "." + std::to_string(dst_addr_[1]) + "." +
           std::to_string(dst_addr_[2]) + "." + std::to_string(dst_addr_[3]);
}

void SyncEngine::start() {
    core_->start_bulk_request(now_ms());
    started_.store(true);
}

bool SyncEngine::send_frame(const std::array<uint8_t, 6> &dst, uint16_t ether_type,
                            std::span<const uint8_t> l3) {
    rte_mbuf *m = rte_pktmbuf_alloc(dp_.pool);
    if (m == nullptr) return false;
    const std::size_t len = RTE_ETHER_HDR_LEN + l3.size();
    auto *p = reinterpret_cast<uint8_t *>(
        rte_pktmbuf_append(m, uint16_t(std::max<std::size_t>(len, 60))));
    if (p == nullptr) {
        rte_pktmbuf_free(m);
        return false;
    }
    std::memset(p, 0, std::max<std::size_t>(len, 60));
    dp::write_ether({p, dp::ether_header_len}, dst, port_.mac, ether_type);
    std::memcpy(p + RTE_ETHER_HDR_LEN, l3.data(), l3.size());
    if (rte_eth_tx_burst(port_.port_id, 0, &m, 1) != 1) {
        rte_pktmbuf_free(m);
        return false;
    }
    return true;
}

bool SyncEngine::transmit(std::span<const uint8_t> payload) {
    if (!peer_mac_known_.load(std::memory_order_relaxed)) return false;
    uint8_t buf[RTE_MBUF_DEFAULT_DATAROOM];
    const std::size_t total = ipv4_header_len + payload.size();
    if (total + RTE_ETHER_HDR_LEN > sizeof(buf)) return false;
    dp::write_ipv4_header(
        buf, uint16_t(total), dp::proto_pfsync, our_addr_.data(), dst_addr_.data(),
        {.id = ip_id_++, .ttl = pfsync_ttl, .tos = iptos_lowdelay, .dont_fragment = true});
    std::memcpy(buf + ipv4_header_len, payload.data(), payload.size());
    return send_frame(dst_mac_, dp::ether_type_ipv4, {buf, total});
}

bool SyncEngine::send_arp(uint16_t op, const std::array<uint8_t, 6> &tha,
                          const std::array<uint8_t, 4> &tpa) {
    uint8_t a[dp::arp_len];
    dp::write_arp(a, op, port_.mac, our_addr_, tha, tpa);
    return send_frame(op == dp::arp_request ? broadcast_mac : tha, dp::ether_type_arp,
                      {a, sizeof(a)});
}

void SyncEngine::arp_for_peer(uint64_t now) {
    if (!unicast_ || now < next_arp_ms_) return;
    // Resolve until known, then refresh now and then so that a replaced peer is found.
    next_arp_ms_ = now + (peer_mac_known_.load() ? 30 * arp_retry_ms : arp_retry_ms);
    send_arp(dp::arp_request, {}, dst_addr_);
}

void SyncEngine::handle_frame(std::span<const uint8_t> frame, uint64_t now) {
    SyncCore &st = *core_;
    dp::PacketDesc d;
    if (dp::parse_packet(frame, d)) {
        st.count_error(SyncError::bad_ip);
        return;
    }
    if (d.src_mac == port_.mac) {
        st.count_error(SyncError::own_packet);
        return;
    }
    if (d.l3 == dp::L3Kind::arp) {
        const auto &arp = d.arp;
        if (unicast_ && std::equal(arp.spa.begin(), arp.spa.end(), dst_addr_.begin())) {
            dst_mac_ = arp.sha;
            peer_mac_known_.store(true, std::memory_order_relaxed);
        }
        if (arp.op == dp::arp_request && arp.tpa == our_addr_)
            send_arp(dp::arp_reply, arp.sha, arp.spa);
        return;
    }
    if (d.family != 4 || d.is_fragment) {
        st.count_error(SyncError::bad_ip);
        return;
    }
    if (d.proto != dp::proto_pfsync) {
        st.count_error(SyncError::not_pfsync);
        return;
    }
    if (std::equal(our_addr_.begin(), our_addr_.end(), d.src.begin())) {
        st.count_error(SyncError::own_packet);
        return;
    }
    const uint32_t dst = dp::load_be32(d.dst.data());
    if (dst != pfsync_group && !std::equal(our_addr_.begin(), our_addr_.end(), d.dst.begin())) {
        st.count_error(SyncError::wrong_destination);
        return;
    }
    if (d.ttl != pfsync_ttl) {
        st.count_error(SyncError::bad_ttl);
        return;
    }
    const uint32_t src = dp::load_be32(d.src.data());
    const std::size_t len = d.l3_total_len - d.l3_header_len;
    core_->receive(frame.subspan(d.l4_offset, len), src, now, dp_.now());
}

unsigned SyncEngine::poll_once() {
    const uint64_t now = now_ms();
    if (resync_.exchange(false, std::memory_order_relaxed)) core_->start_bulk_request(now);
    arp_for_peer(now);
    rte_mbuf *pkts[rx_burst];
    const uint16_t n = rte_eth_rx_burst(port_.port_id, 0, pkts, rx_burst);
    for (uint16_t i = 0; i < n; i++) {
        rte_mbuf *m = pkts[i];
        if (m->nb_segs == 1)
            handle_frame({rte_pktmbuf_mtod(m, const uint8_t *), m->data_len}, now);
        else
            core_->count_error(SyncError::bad_ip);
        rte_pktmbuf_free(m);
    }
    const unsigned work = n + core_->poll(now, dp_.now());
    dp_.states->quiescent(dp_.sync_writer());
    dp_.states->reclaim();
    return work;
}

void SyncEngine::run() {
    dp::IdleBackoff idle(dp_.cfg.lcores.idle == config::IdlePolicy::adaptive,
                         dp_.cfg.lcores.idle_max_sleep_us);
    while (!dp_.stopping.load(std::memory_order_relaxed)) {
        if (const uint32_t us = idle.after_poll(poll_once()); us != 0) rte_delay_us_sleep(us);
    }
    finish();
}

void SyncEngine::finish() {
    core_->flush(now_ms(), dp_.now());
}

} // namespace syncwall::sync
