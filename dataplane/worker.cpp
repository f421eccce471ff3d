#include "dataplane/worker.hpp"

#include "dataplane/nat.hpp"

#include "dataplane/byte_order.hpp"
#include "dataplane/forward.hpp"
#include "dataplane/fragment.hpp"
#include "dataplane/mbuf_frame.hpp"
#include "dataplane/state_table.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include <cstring>
#include <memory>
#include <span>

namespace syncwall::dp {

namespace {

bool is_multicast(const std::array<uint8_t, 6> &mac) {
    return (mac[0] & 1) != 0;
}

} // namespace

Worker::Worker(Dataplane &dp, unsigned index)
    : dp_(dp), index_(index), ctr_(dp.worker_counters.at(index)),
      idle_(dp.cfg.lcores.idle == config::IdlePolicy::adaptive, dp.cfg.lcores.idle_max_sleep_us),
      filter_(dp, index),
      // limits.frags is shared out among the workers, as each holds its own fragments.
      reasm_(dp.reassembly_pool(index),
             std::max<uint32_t>(dp.cfg.limits.frags / std::max<uint32_t>(dp.worker_count(), 1), 1),
             dp.cfg.timeouts.frag, ctr_) {}

void Worker::run() {
    while (!dp_.stopping.load(std::memory_order_relaxed)) {
        const unsigned work = poll_once();
        dp_.quiescent(index_);
        if (const uint32_t us = idle_.after_poll(work); us != 0) {
            ctr_.sleeps.inc();
            rte_delay_us_sleep(us);
        }
    }
    flush();
    release_control_frames();
}

unsigned Worker::poll_once() {
    unsigned total = index_ == 0 ? send_control_frames() : 0;
    if (dp_.worker_count() > 1) total += receive_handed();
    rte_mbuf *pkts[max_burst];
    for (uint16_t p : dp_.data_ports) {
        const Port &port = dp_.ports[p];
        if (index_ >= port.rx_queues) continue;
        const uint16_t n = rte_eth_rx_burst(port.port_id, uint16_t(index_), pkts,
                                            std::min<uint16_t>(dp_.cfg.dpdk.burst, max_burst));
        ctr_.polls.inc();
        if (n == 0) {
            ctr_.idle_polls.inc();
            continue;
        }
        total += n;
        process_burst(p, pkts, n);
    }
    flush();
    reasm_.expire(dp_.now());
    return total;
}

unsigned Worker::send_control_frames() {
    unsigned total = 0;
    for (uint16_t p : dp_.data_ports) {
        TxBuffer &h = held_ctl_[p];
        if (h.n == 0)
            h.n = uint16_t(rte_ring_dequeue_burst(
                dp_.ports[p].ctl_tx, reinterpret_cast<void **>(h.pkts.data()), max_burst, nullptr));
        if (h.n == 0) continue;
        total += h.n;
        const uint16_t sent = send_counted(p, 0, h.pkts.data(), h.n);
        std::memmove(h.pkts.data(), h.pkts.data() + sent, (h.n - sent) * sizeof(rte_mbuf *));
        h.n = uint16_t(h.n - sent);
    }
    return total;
}

void Worker::release_control_frames() {
    send_control_frames();
    for (uint16_t p = 0; p < dp_.ports.size(); p++) {
        TxBuffer &h = held_ctl_[p];
        for (uint16_t i = 0; i < h.n; i++)
            drop(h.pkts[i], DropReason::tx_ring_full);
        h.n = 0;
    }
}

unsigned Worker::receive_handed() {
    unsigned total = 0;
    for (unsigned from = 0; from < dp_.worker_count(); from++) {
        if (from == index_) continue;
        HandoffRing &r = dp_.handoff(from, index_);
        // No more than the producer has published: their bytes are ordered before ours.
        const uint64_t ready = r.produced.load(std::memory_order_acquire) - r.consumed;
        if (ready == 0) continue;
        rte_mbuf *pkts[max_burst];
        const unsigned n =
            rte_ring_sc_dequeue_burst(r.ring, reinterpret_cast<void **>(pkts),
                                      unsigned(std::min<uint64_t>(ready, max_burst)), nullptr);
        r.consumed += n;
        total += n;
        // In runs of one ingress port and one stage; the descriptors were the sender's.
        uint16_t idx[max_burst];
        for (unsigned i = 0; i < n;) {
            const HandoffMeta meta = handoff_meta(pkts[i]);
            unsigned nip = 0, j = i;
            for (; j < n; j++) {
                const HandoffMeta &mj = handoff_meta(pkts[j]);
                if (mj.in_port != meta.in_port || mj.inbound_done != meta.inbound_done) break;
                rte_mbuf *m = pkts[j];
                if (auto bad = parse_packet(frame_of(m), desc_[j], device_ipv4_checksum(m)))
                    drop(m, *bad);
                else
                    idx[nip++] = uint16_t(j);
            }
            if (nip != 0) filter_and_forward(meta.in_port, pkts, idx, nip, meta.inbound_done);
            i = j;
        }
    }
    return total;
}

void Worker::hand_off(rte_mbuf *m, unsigned owner, uint16_t in_port, bool inbound_done) {
    handoff_meta(m) = HandoffMeta{in_port, inbound_done};
    HandoffRing &r = dp_.handoff(index_, owner);
    if (rte_ring_sp_enqueue(r.ring, m) != 0) {
        drop(m, DropReason::handoff_ring_full);
        return;
    }
    r.produced.store(r.produced.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    ctr_.handed_off.inc();
}

void Worker::drop(rte_mbuf *m, DropReason r) {
    ctr_.drop(r);
    rte_pktmbuf_free(m);
}

void Worker::punt(rte_mbuf *m, PuntKind kind, uint16_t in_port, uint32_t next_hop,
                  config::BlockPolicy policy) {
    punt_meta(m) = PuntMeta{kind, in_port, next_hop, policy, false};
    if (rte_ring_sp_enqueue(dp_.punt_rings[index_], m) != 0) {
        drop(m, DropReason::punt_ring_full);
        return;
    }
    ctr_.punted.inc();
}

uint16_t Worker::send_counted(uint16_t port, uint16_t queue, rte_mbuf **pkts, uint16_t n) {
    // Lengths are read before the hand-over: a sent mbuf belongs to the driver.
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; i++)
        bytes += pkts[i]->pkt_len;
    const uint16_t sent = rte_eth_tx_burst(dp_.ports[port].port_id, queue, pkts, n);
    for (uint16_t i = sent; i < n; i++)
        bytes -= pkts[i]->pkt_len;
    ctr_.ports[port].tx_packets.add(sent);
    ctr_.ports[port].tx_bytes.add(bytes);
    return sent;
}

void Worker::flush() {
    for (uint16_t p = 0; p < dp_.ports.size(); p++) {
        TxBuffer &b = tx_[p];
        if (b.n == 0) continue;
        const uint16_t sent = send_counted(p, uint16_t(index_), b.pkts.data(), b.n);
        for (uint16_t i = sent; i < b.n; i++)
            drop(b.pkts[i], DropReason::tx_ring_full);
        b.n = 0;
    }
}

void Worker::process_burst(uint16_t port, rte_mbuf **pkts, uint16_t n) {
    const Port &in = dp_.ports[port];
    uint16_t ip_idx[max_burst];
    unsigned nip = 0;
    uint64_t rx_bytes = 0;

    // Stage 1-2: parse once, Ethernet checks, slow-path classes. The mbufs were last written
    // by another core (a NIC's DMA, a ring's producer): start loading every header at once,
    // and each packet's first line a few packets ahead (its address is in the header).
    constexpr uint16_t ahead = 4;
    for (uint16_t i = 0; i < n; i++)
        rte_prefetch0(pkts[i]);
    for (uint16_t i = 0; i < n && i < ahead; i++)
        rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
    for (uint16_t i = 0; i < n; i++) {
        if (i + ahead < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + ahead], void *));
        rte_mbuf *m = pkts[i];
        rx_bytes += m->pkt_len;
        if (m->nb_segs != 1) {
            // Jumbo frames spread over several segments: not parsed in place.
            drop(m, DropReason::too_big);
            continue;
        }
        PacketDesc &d = desc_[i];
        const std::span<const uint8_t> frame(rte_pktmbuf_mtod(m, const uint8_t *), m->data_len);
        if (auto bad = parse_packet(frame, d, device_ipv4_checksum(m))) {
            drop(m, *bad);
            continue;
        }
        bool ours = d.dst_mac == in.mac;
        if (!ours && !is_multicast(d.dst_mac)) {
            // A CARP virtual MAC is ours only while this node is MASTER of its vhid; a
            // backup must not forward what the segment sends to the master.
            switch (dp_.virtual_macs[port].classify(d.dst_mac)) {
            case VirtualMacs::Verdict::master:
                ours = true;
                break;
            case VirtualMacs::Verdict::not_master:
                drop(m, DropReason::carp_not_master);
                continue;
            case VirtualMacs::Verdict::not_virtual:
                drop(m, DropReason::not_our_mac);
                continue;
            }
        }
        if (d.has_vlan) {
            drop(m, DropReason::vlan_unconfigured);
            continue;
        }
        if (d.l3 == L3Kind::arp) {
            punt(m, PuntKind::arp, port);
            continue;
        }
        if (!ours) { // broadcast or multicast: never routed, the control plane may want it
            punt(m, PuntKind::multicast, port);
            continue;
        }
        if (auto martian = dp_.martians.check(d)) [[unlikely]] {
            drop(m, *martian);
            continue;
        }
        if (d.is_fragment) [[unlikely]] {
            // Reassembled before the filter (pf's `set reassemble yes`); the whole datagram
            // takes the fragment's place in the burst.
            m = reasm_.add(m, d, dp_.now());
            if (m == nullptr) continue;
            pkts[i] = m;
            if (auto bad = parse_packet({rte_pktmbuf_mtod(m, const uint8_t *), m->data_len}, d)) {
                drop(m, *bad);
                continue;
            }
        }
        ip_idx[nip++] = i;
    }
    ctr_.ports[port].rx_packets.add(n);
    ctr_.ports[port].rx_bytes.add(rx_bytes);
    if (nip != 0) filter_and_forward(port, pkts, ip_idx, nip, false);
}

// Inline into filter_and_forward(), their one caller: every forwarded packet takes both.
inline int Worker::route_one(rte_mbuf *m, const PacketDesc &d, uint16_t in_port,
                             RouteTable::NextHopId id, bool reassembled) {
    const NextHop &nh = dp_.routes->next_hop(id);
    switch (nh.kind) {
    case NextHop::Kind::none:
        drop(m, DropReason::no_route);
        return -1;
    case NextHop::Kind::local:
        punt(m, PuntKind::local, in_port);
        return -1;
    case NextHop::Kind::forward:
        break;
    }
    if (d.ttl <= 1) {
        punt(m, PuntKind::ttl_exceeded, in_port, uint32_t(id));
        return -1;
    }
    if (d.l3_total_len > dp_.ports[nh.port].mtu || reassembled) [[unlikely]] {
        if (egress_fragment_size(m, d, dp_.ports[nh.port].mtu) < 0) {
            punt(m, PuntKind::too_big, in_port, uint32_t(id));
            return -1;
        }
    }
    return nh.port;
}

inline void Worker::forward(rte_mbuf *m, const PacketDesc &d, uint16_t in_port,
                            RouteTable::NextHopId id, uint16_t egress, const Mac *mac,
                            bool reassembled) {
    if (reassembled) [[unlikely]] {
        forward_reassembled(m, d, in_port, id, mac);
        return;
    }
    if (mac == nullptr) {
        punt(m, PuntKind::resolve, in_port, uint32_t(id));
        return;
    }
    uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
    ether_rewrite(frame, *mac, dp_.ports[egress].mac);
    if (d.family == 4)
        ipv4_decrement_ttl(frame + d.l3_offset);
    else
        ipv6_decrement_hop_limit(frame + d.l3_offset);
    // Trim Ethernet padding so the egress frame is the datagram alone.
    const uint32_t wire_len = uint32_t(d.l3_offset) + d.l3_total_len;
    if (wire_len < m->data_len) rte_pktmbuf_trim(m, uint16_t(m->data_len - wire_len));
    ctr_.forwarded.inc();
    transmit(egress, m);
}

void Worker::filter_and_forward(uint16_t port, rte_mbuf **pkts, const uint16_t *ip_idx,
                                unsigned nip, bool inbound_done) {
    // Stage 3: the filter, inbound on the ingress port.
    const uint32_t now = dp_.now();
    BurstArray<FilterVerdict, max_burst> verdict; // made by Filter::run
    TrackMemo memo;                               // the in pass's TCP checks, for the out pass
    if (!inbound_done) {
        uint16_t ip_port[max_burst];
        for (unsigned k = 0; k < nip; k++)
            ip_port[k] = port;
        filter_.run(StateDirection::in, pkts, desc_.data(), ip_idx, ip_port, nip, verdict.data(),
                    now, nullptr, nullptr, &memo);
    }
    uint32_t v4_addr[max_burst];
    uint8_t v6_addr[max_burst][16];
    uint16_t v4_idx[max_burst], v6_idx[max_burst];
    uint32_t in_slot[max_burst], twin[max_burst];
    unsigned n4 = 0, n6 = 0;
    for (unsigned k = 0; k < nip; k++) {
        const uint16_t i = ip_idx[k];
        if (inbound_done) [[unlikely]] {
            in_slot[i] = twin[i] = FilterVerdict::no_slot;
        } else {
            in_slot[i] = verdict[k].slot;
            twin[i] = verdict[k].twin;
            if (!apply(verdict[k], pkts[i], desc_[i], port, false)) continue;
            // A translated state: routed by the addresses it leaves with (rdr-to, nat
            // replies).
            if (verdict[k].nat != FilterVerdict::no_slot) [[unlikely]]
                translate(verdict[k], pkts[i], desc_[i], StateDirection::in);
        }
        const PacketDesc &d = desc_[i];
        if (d.family == 4) {
            v4_addr[n4] = load_be32(d.dst.data());
            v4_idx[n4++] = i;
        } else {
            std::memcpy(v6_addr[n6], d.dst.data(), 16);
            v6_idx[n6++] = i;
        }
    }

    // Stage 4: routes in bulk.
    RouteTable::NextHopId nh4[max_burst], nh6[max_burst], nh_of[max_burst];
    if (n4 != 0) dp_.routes->lookup4(v4_addr, nh4, n4);
    if (n6 != 0) dp_.routes->lookup6(v6_addr, nh6, n6);
    uint16_t out_idx[max_burst], out_port[max_burst];
    uint32_t hints[max_burst]; // the in state's twin, which may be the out state
    unsigned nout = 0;
    static_assert(max_burst <= 64, "one bit per packet in reassembled");
    uint64_t reassembled = 0; // bit i: pkts[i] is a reassembled datagram
    auto route = [&](uint16_t i, RouteTable::NextHopId id) {
        const bool whole = Reassembly::is_reassembled(pkts[i]); // asked once, kept for forward()
        reassembled |= uint64_t(whole) << i;
        if (const int egress = route_one(pkts[i], desc_[i], port, id, whole); egress >= 0) {
            out_idx[nout] = i;
            out_port[nout] = uint16_t(egress);
            hints[nout] = twin[i];
            nh_of[nout++] = id;
        }
    };
    for (unsigned k = 0; k < n4; k++)
        route(v4_idx[k], nh4[k]);
    for (unsigned k = 0; k < n6; k++)
        route(v6_idx[k], nh6[k]);
    if (nout == 0) return;

    // Stage 5: the filter, outbound on the egress port; then neighbours in bulk, rewrite, tx.
    filter_.run(StateDirection::out, pkts, desc_.data(), out_idx, out_port, nout, verdict.data(),
                now, hints, in_slot, &memo); // a new out state lies near the in state
    link_twins(out_idx, verdict.data(), in_slot, hints, nout);
    // Neighbour keys, each looked up once a burst: a packet routed via the same gateway as
    // the one before it (most of a burst, behind a default route) shares its key.
    BurstArray<NeighbourKey, max_burst> nkeys;
    const NeighbourKey *nkey_ptrs[max_burst];
    uint16_t fwd_idx[max_burst], fwd_port[max_burst];
    uint8_t key_of[max_burst]; // forwarded packet -> its key in nkeys
    RouteTable::NextHopId fwd_nh[max_burst];
    unsigned nfwd = 0, nkey = 0;
    bool via_gateway = false; // the last key made is a gateway's, for next hop last_gateway
    RouteTable::NextHopId last_gateway{};
    for (unsigned k = 0; k < nout; k++) {
        const uint16_t i = out_idx[k];
        if (!apply(verdict[k], pkts[i], desc_[i], port, true)) continue;
        if (verdict[k].nat != FilterVerdict::no_slot) [[unlikely]]
            translate(verdict[k], pkts[i], desc_[i], StateDirection::out);
        const NextHop &nh = dp_.routes->next_hop(nh_of[k]);
        if (!(nh.has_gateway && via_gateway && nh_of[k] == last_gateway)) {
            NeighbourKey &key = *std::construct_at(&nkeys[nkey]);
            key.port = nh.port;
            key.family = desc_[i].family;
            key.addr = nh.has_gateway ? nh.gateway.bytes : desc_[i].dst;
            nkey_ptrs[nkey++] = &key;
            via_gateway = nh.has_gateway;
            last_gateway = nh_of[k];
        }
        key_of[nfwd] = uint8_t(nkey - 1);
        fwd_idx[nfwd] = i;
        fwd_port[nfwd] = out_port[k];
        fwd_nh[nfwd++] = nh_of[k];
    }
    if (nfwd == 0) return;
    // One bit per key in the neighbour lookup's hit mask: at most max_burst (<= 64) keys.
    Mac macs[max_burst];
    const uint64_t resolved = dp_.neighbours->lookup_bulk(nkey_ptrs, macs, nkey);
    for (unsigned j = 0; j < nfwd; j++) {
        const uint16_t i = fwd_idx[j];
        const unsigned u = key_of[j];
        forward(pkts[i], desc_[i], port, fwd_nh[j], fwd_port[j],
                (resolved >> u & 1) != 0 ? &macs[u] : nullptr, (reassembled >> i & 1) != 0);
    }
}

void Worker::link_twins(const uint16_t *out_idx, const FilterVerdict *out_verdict,
                        const uint32_t *in_slot, const uint32_t *hints, unsigned nout) {
    StateTable &st = *dp_.states;
    for (unsigned k = 0; k < nout; k++) {
        const uint32_t a = in_slot[out_idx[k]], b = out_verdict[k].slot;
        if (a == FilterVerdict::no_slot || b == FilterVerdict::no_slot) continue;
        // Once per connection and direction in practice: after that both already point right.
        // The links as this burst's passes read them: a link that another packet of the burst
        // set meanwhile is set again, to the same slot.
        if (hints[k] != b) st.set_twin(a, b);
        if (out_verdict[k].twin != a) st.set_twin(b, a);
    }
}

void Worker::translate(const FilterVerdict &v, rte_mbuf *m, PacketDesc &d, StateDirection dir) {
    uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
    const StateKey &to = dp_.states->state(v.nat).key; // a live state's keys never change
    if (v.nat_error)
        translate_icmp_error(frame, m->data_len, d, to, dir);
    else
        translate_packet(frame, m->data_len, d, to, dir);
}

void Worker::act_on(const FilterVerdict &v, rte_mbuf *m, const PacketDesc &d, uint16_t in_port,
                    bool inbound_done) {
    switch (v.action) {
    case FilterVerdict::Action::pass: // apply()'s
        return;
    case FilterVerdict::Action::hand_off:
        hand_off(m, v.owner(), in_port, inbound_done);
        return;
    case FilterVerdict::Action::drop:
        rte_pktmbuf_free(m); // counted by the filter
        return;
    case FilterVerdict::Action::block_return:
        punt(m, PuntKind::block_return, in_port, 0, config::BlockPolicy(v.block_policy));
        return;
    case FilterVerdict::Action::challenge_ack: {
        const std::size_t len =
            tcp_rewrite_as_ack({rte_pktmbuf_mtod(m, uint8_t *), m->data_len}, d, v.seq, v.ack);
        if (len == 0) {
            rte_pktmbuf_free(m);
            return;
        }
        rte_pktmbuf_trim(m, uint16_t(m->data_len - len));
        punt(m, PuntKind::reply, in_port);
        return;
    }
    }
}

int Worker::egress_fragment_size(const rte_mbuf *m, const PacketDesc &d, uint16_t mtu) const {
    if (!reasm_.is_reassembled(m)) return d.l3_total_len > mtu ? -1 : 0;
    const ReassembledInfo &ri = Reassembly::info(m);
    // Fragments are built in ordinary mbufs: never more payload than one of those holds.
    const uint32_t room = rte_pktmbuf_data_room_size(dp_.pool) - RTE_PKTMBUF_HEADROOM;
    const uint32_t ip_header = uint32_t(ri.header_len) - d.l3_offset;
    if (d.family == 4) {
        if (d.l3_total_len <= mtu) return 0;
        const uint8_t *ip = rte_pktmbuf_mtod(m, const uint8_t *) + d.l3_offset;
        if ((ip[6] & 0x40) != 0) return -1; // DF: fragmentation needed
        const uint32_t limit = std::min<uint32_t>(mtu, room - d.l3_offset);
        const uint32_t size = limit > ip_header ? (limit - ip_header) & ~7u : 0;
        return size == 0 ? -1 : int(size);
    }
    // IPv6: in fragments no larger than the largest received (pf_refragment6).
    uint32_t size = ri.max_fragment & ~7u;
    if (size == 0) size = 8;
    if (ip_header + 8 + size > mtu) return -1; // packet too big
    if (ri.header_len + 8 + size > room) size = (room - ri.header_len - 8) & ~7u;
    return int(size);
}

void Worker::forward_reassembled(rte_mbuf *m, const PacketDesc &d, uint16_t in_port,
                                 RouteTable::NextHopId id, const Mac *mac) {
    const NextHop &nh = dp_.routes->next_hop(id);
    const int size = egress_fragment_size(m, d, dp_.ports[nh.port].mtu);
    const ReassembledInfo &ri = Reassembly::info(m);
    uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
    if (mac != nullptr) { // else the main lcore rewrites each fragment once resolved
        ether_rewrite(frame, *mac, dp_.ports[nh.port].mac);
        if (d.family == 4)
            ipv4_decrement_ttl(frame + d.l3_offset);
        else
            ipv6_decrement_hop_limit(frame + d.l3_offset);
    }
    const uint32_t wire_len = uint32_t(d.l3_offset) + d.l3_total_len;
    const std::span<const uint8_t> whole(frame, wire_len);
    const uint32_t payload = wire_len - ri.header_len;
    auto send = [&](rte_mbuf *f) {
        if (mac == nullptr) {
            punt(f, PuntKind::resolve, in_port, uint32_t(id));
            return;
        }
        ctr_.forwarded.inc();
        transmit(nh.port, f);
    };
    if (size == 0 &&
        wire_len > uint32_t(rte_pktmbuf_data_room_size(dp_.pool) - RTE_PKTMBUF_HEADROOM)) {
        // Whole, and larger than an ordinary mbuf (a jumbo MTU): the reassembly buffer goes.
        if (wire_len < m->data_len) rte_pktmbuf_trim(m, uint16_t(m->data_len - wire_len));
        send(m);
        return;
    }
    const uint32_t step = size > 0 ? uint32_t(size) : payload;
    unsigned sent = 0;
    for (uint32_t off = 0; off < payload; off += step) {
        const uint16_t len = uint16_t(std::min(step, payload - off));
        const bool more = off + len < payload;
        rte_mbuf *f = rte_pktmbuf_alloc(dp_.pool);
        if (f == nullptr) {
            ctr_.drop(DropReason::frag_no_buffer);
            break;
        }
        uint8_t *out = rte_pktmbuf_mtod(f, uint8_t *);
        std::size_t n;
        if (size == 0) { // IPv4 that fits: one ordinary mbuf, so the big buffer is free again
            std::memcpy(out, frame, wire_len);
            n = wire_len;
        } else if (d.family == 4) {
            n = ipv4_write_fragment(whole, d.l3_offset, uint16_t(ri.header_len - d.l3_offset), off,
                                    len, more, out);
        } else {
            n = ipv6_write_fragment(whole, d.l3_offset, ri.header_len, ri.next_header_at, ri.id,
                                    off, len, more, out);
        }
        f->data_len = uint16_t(n);
        f->pkt_len = uint32_t(n);
        f->port = m->port;
        send(f);
        sent++;
    }
    if (size > 0 && sent != 0) ctr_.frag_refragmented.inc();
    rte_pktmbuf_free(m);
}

} // namespace syncwall::dp
