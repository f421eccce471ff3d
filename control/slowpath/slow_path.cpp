#include "control/slowpath/slow_path.hpp"

#include "dataplane/arp.hpp"
#include "dataplane/forward.hpp"
#include "dataplane/mbuf_frame.hpp"

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstring>

namespace syncwall::ctl {

using dp::DropReason;
using dp::frame_of;
using dp::NeighbourKey;
using dp::PacketDesc;
using dp::PuntKind;

namespace {

constexpr auto request_interval = std::chrono::seconds(1);
constexpr unsigned max_requests = 3;
constexpr double icmp_rate_per_s = 100;

std::array<uint8_t, sizeof(NeighbourKey)> key_bytes(const NeighbourKey &k) {
    std::array<uint8_t, sizeof(NeighbourKey)> b;
    std::memcpy(b.data(), &k, sizeof k);
    return b;
}

bool parse(rte_mbuf *m, PacketDesc &d) {
    return !dp::parse_packet(frame_of(m), d).has_value();
}

// Unicast, not unspecified: a source we may send an ICMP error or a reply to.
bool is_unicast_source(const PacketDesc &d) {
    if (d.family == 4)
        return d.src[0] != 0 && d.src[0] < 224 && !(d.src[0] == 255 && d.src[3] == 255);
    if (d.family == 6) {
        static const uint8_t zero[16] = {};
        return d.src[0] != 0xff && std::memcmp(d.src.data(), zero, 16) != 0;
    }
    return false;
}

} // namespace

SlowPath::SlowPath(dp::Dataplane &dp)
    : dp_(dp), ctr_(dp.main_counters),
      // Held packets must leave the ports most of the pool: 4096 neighbours of 16 packets
      // would be eight times the default pool.
      max_held_(std::max<uint64_t>(1, dp.pool != nullptr ? dp.pool->size / 4 : 1)) {}

SlowPath::~SlowPath() {
    for (auto &[k, entry] : pending_)
        for (rte_mbuf *m : entry.second.packets)
            rte_pktmbuf_free(m);
}

void SlowPath::drop(rte_mbuf *m, DropReason r) {
    ctr_.drop(r);
    rte_pktmbuf_free(m);
}

unsigned SlowPath::drain(Clock::time_point now) {
    unsigned total = 0;
    rte_mbuf *pkts[64];
    for (rte_ring *r : dp_.punt_rings) {
        const unsigned n =
            rte_ring_sc_dequeue_burst(r, reinterpret_cast<void **>(pkts), 64, nullptr);
        for (unsigned i = 0; i < n; i++)
            handle(pkts[i], now);
        total += n;
    }
    return total;
}

void SlowPath::handle(rte_mbuf *m, Clock::time_point now) {
    const dp::PuntMeta meta = dp::punt_meta(m);
    PacketDesc d;
    if (meta.in_port >= dp_.ports.size() || !parse(m, d)) {
        drop(m, DropReason::to_us_unhandled);
        return;
    }
    switch (meta.kind) {
    case PuntKind::arp:
        handle_arp(m, d, meta.in_port, now);
        return;
    case PuntKind::local:
        handle_local(m, d, meta.in_port, now);
        return;
    case PuntKind::multicast:
        if (d.family == 6 && d.proto == dp::proto_icmpv6 &&
            (d.icmp.type == dp::nd_neighbour_solicitation ||
             d.icmp.type == dp::nd_neighbour_advertisement)) {
            handle_nd(m, d, meta.in_port, now);
            return;
        }
        if (multicast_handler_ && multicast_handler_(m, d, meta.in_port)) return;
        drop(m, DropReason::to_us_unhandled);
        return;
    case PuntKind::resolve: {
        const dp::NextHop &nh = dp_.routes->next_hop(meta.next_hop);
        NeighbourKey key;
        key.port = nh.port;
        key.family = d.family;
        key.addr = nh.has_gateway ? nh.gateway.bytes : d.dst;
        // Resolved while the packet was on the ring: deliver the held packets too.
        Mac mac;
        if (dp_.neighbours->lookup(key, mac)) {
            dp::punt_meta(m).owes_ttl_decrement = true; // forwarded
            hold(key, m, now);
            learn(key, mac, now);
        } else {
            dp::punt_meta(m).owes_ttl_decrement = true;
            hold(key, m, now);
        }
        return;
    }
    case PuntKind::ttl_exceeded:
        ctr_.drop(DropReason::ttl_exceeded);
        if (d.family == 4)
            send_icmp_error(m, d, meta.in_port, dp::icmp_time_exceeded, 0, 0, now);
        else
            send_icmp_error(m, d, meta.in_port, dp::icmp6_time_exceeded, 0, 0, now);
        return;
    case PuntKind::reply: {
        const uint8_t *ip = frame_of(m).data() + d.l3_offset;
        send_ip(m, d.family, d.family == 4 ? ip + 16 : ip + 24, now);
        return;
    }
    case PuntKind::block_return:
        block_return(m, d, meta.in_port, meta.block_policy, now);
        return;
    case PuntKind::too_big: {
        ctr_.drop(DropReason::too_big);
        const uint16_t mtu = dp_.ports[dp_.routes->next_hop(meta.next_hop).port].mtu;
        const uint8_t *ip = frame_of(m).data() + d.l3_offset;
        if (d.family == 4 && (ip[6] & 0x40) != 0)
            send_icmp_error(m, d, meta.in_port, dp::icmp_unreach, dp::icmp_code_need_frag, mtu,
                            now);
        else if (d.family == 6)
            send_icmp_error(m, d, meta.in_port, dp::icmp6_packet_too_big, 0, mtu, now);
        else
            rte_pktmbuf_free(m); // IPv4 without DF: syncwall does not fragment
        return;
    }
    }
    drop(m, DropReason::to_us_unhandled);
}

void SlowPath::handle_arp(rte_mbuf *m, const PacketDesc &d, uint16_t port, Clock::time_point now) {
    const dp::Port &p = dp_.ports[port];
    const dp::ArpInfo &a = d.arp;
    // A CARP virtual address is ours to answer for only while we are its MASTER, and then
    // with the virtual MAC (docs/carp.md 1.5); a backup stays silent.
    const VirtualOwner vip = virtual_owner(port, 4, a.tpa.data());
    const bool for_us = p.has_address(a.tpa.data(), 4) || vip.master;
    NeighbourKey key;
    key.port = port;
    key.family = 4;
    std::memcpy(key.addr.data(), a.spa.data(), 4);
    const bool zero_spa = a.spa == Ip4{0, 0, 0, 0};
    // RFC 826 merge: refresh a known sender; add it when the packet was meant for us or
    // when we are waiting for it. Never our own virtual address: that is the peer
    // master's gratuitous ARP, not a neighbour.
    if (!zero_spa && !virtual_owner(port, 4, a.spa.data()).is_virtual &&
        (for_us || dp_.neighbours->contains(key) || pending_.count(key_bytes(key))))
        learn(key, a.sha, now);
    if (a.op != dp::arp_request || !for_us) {
        rte_pktmbuf_free(m);
        return;
    }
    // Turn the request around in place.
    rte_pktmbuf_reset(m);
    uint8_t *buf = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, arp_frame_len));
    if (buf == nullptr) {
        drop(m, DropReason::to_us_unhandled);
        return;
    }
    build_arp({buf, arp_frame_len}, dp::arp_reply, a.sha, vip.master ? vip.mac : p.mac, a.tpa,
              a.sha, a.spa);
    dp_.send_from_main(port, m);
}

void SlowPath::handle_nd(rte_mbuf *m, const PacketDesc &d, uint16_t port, Clock::time_point now) {
    const dp::Port &p = dp_.ports[port];
    const auto icmp =
        frame_of(m).subspan(d.l4_offset, std::size_t(d.l3_offset) + d.l3_total_len - d.l4_offset);
    NdMessage nd;
    if (d.ttl != 255 || !parse_nd(icmp, nd)) { // RFC 4861: hop limit must be 255
        drop(m, DropReason::to_us_unhandled);
        return;
    }
    const VirtualOwner vip = virtual_owner(port, 6, nd.target.data());
    const bool for_us = p.has_address(nd.target.data(), 6) || vip.master;
    if (nd.has_lladdr && !(d.icmp.type == dp::nd_neighbour_advertisement && vip.is_virtual)) {
        NeighbourKey key;
        key.port = port;
        key.family = 6;
        if (d.icmp.type == dp::nd_neighbour_solicitation)
            key.addr = d.src; // NS: the option is the sender's address
        else
            key.addr = nd.target;
        static const uint8_t zero[16] = {};
        const bool resolving = pending_.count(key_bytes(key)) != 0;
        // RFC 4861 7.2.5: an NA for a neighbour we neither know nor resolve is discarded,
        // and one without the Override flag changes no known neighbour's address (it says
        // the same, or it loses to the address we have). 7.2.3: an NS for us teaches us
        // its sender, and refreshes a known one.
        const bool learn_it = d.icmp.type == dp::nd_neighbour_advertisement
                                  ? resolving || (nd.override_flag && dp_.neighbours->contains(key))
                                  : for_us || resolving || dp_.neighbours->contains(key);
        if (std::memcmp(key.addr.data(), zero, 16) != 0 && learn_it) learn(key, nd.lladdr, now);
    }
    if (d.icmp.type != dp::nd_neighbour_solicitation || !for_us || !nd.has_lladdr) {
        rte_pktmbuf_free(m);
        return;
    }
    const Ip6 dst = d.src;
    const Mac dst_mac = nd.lladdr;
    rte_pktmbuf_reset(m);
    uint8_t *buf =
        reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, ether_header_len + nd_packet_len));
    if (buf == nullptr) {
        drop(m, DropReason::to_us_unhandled);
        return;
    }
    const Mac &our_mac = vip.master ? vip.mac : p.mac;
    write_ether({buf, ether_header_len}, dst_mac, our_mac, dp::ether_type_ipv6);
    build_neighbour_advertisement({buf + ether_header_len, nd_packet_len}, nd.target, dst, our_mac,
                                  true);
    dp_.send_from_main(port, m);
}

void SlowPath::handle_local(rte_mbuf *m, const PacketDesc &d, uint16_t port,
                            Clock::time_point now) {
    if (d.family == 6 && d.proto == dp::proto_icmpv6 &&
        (d.icmp.type == dp::nd_neighbour_solicitation ||
         d.icmp.type == dp::nd_neighbour_advertisement)) {
        handle_nd(m, d, port, now);
        return;
    }
    if (!is_unicast_source(d) || !echo_request_to_reply(frame_of(m), d)) {
        drop(m, DropReason::to_us_unhandled);
        return;
    }
    // Send the reply from the IP header on; drop any Ethernet padding.
    const uint32_t len = uint32_t(d.l3_offset) + d.l3_total_len;
    if (len < m->data_len) rte_pktmbuf_trim(m, uint16_t(m->data_len - len));
    const uint8_t *ip = frame_of(m).data() + d.l3_offset;
    send_ip(m, d.family, d.family == 4 ? ip + 16 : ip + 24, now);
}

bool SlowPath::source_address(uint16_t port, uint8_t family, uint8_t *out) const {
    const std::size_t len = family == 4 ? 4 : 16;
    auto from = [&](const dp::Port &p) {
        for (const auto &a : p.addresses)
            if (a.addr.family == family) {
                std::memcpy(out, a.addr.bytes.data(), len);
                return true;
            }
        return false;
    };
    if (from(dp_.ports[port])) return true;
    for (uint16_t i : dp_.data_ports)
        if (from(dp_.ports[i])) return true;
    return false;
}

bool SlowPath::icmp_rate_ok(Clock::time_point now) {
    const double dt = std::chrono::duration<double>(now - icmp_refill_).count();
    icmp_refill_ = now;
    icmp_tokens_ = std::min(icmp_rate_per_s, icmp_tokens_ + dt * icmp_rate_per_s);
    if (icmp_tokens_ < 1) return false;
    icmp_tokens_ -= 1;
    return true;
}

void SlowPath::send_icmp_error(rte_mbuf *m, const PacketDesc &d, uint16_t port, uint8_t type,
                               uint8_t code, uint32_t extra, Clock::time_point now) {
    // Never an error about an error, a non-first fragment or a non-unicast sender.
    const bool about_error =
        d.icmp.is_error && (d.proto == dp::proto_icmp || d.proto == dp::proto_icmpv6);
    uint8_t src[16] = {};
    if (about_error || (d.is_fragment && !d.is_first_fragment) || !is_unicast_source(d) ||
        !source_address(port, d.family, src) || !icmp_rate_ok(now)) {
        rte_pktmbuf_free(m);
        return;
    }
    rte_mbuf *e = rte_pktmbuf_alloc(dp_.pool);
    if (e == nullptr) {
        rte_pktmbuf_free(m);
        return;
    }
    uint8_t *buf =
        reinterpret_cast<uint8_t *>(rte_pktmbuf_append(e, ether_header_len + dp::ipv6_min_mtu));
    const auto offending = frame_of(m).subspan(d.l3_offset, d.l3_total_len);
    std::size_t len = 0;
    if (buf != nullptr && d.family == 4) {
        Ip4 s, t;
        std::memcpy(s.data(), src, 4);
        std::memcpy(t.data(), d.src.data(), 4);
        len = build_icmp4_error({buf + ether_header_len, dp::ipv6_min_mtu}, type, code, extra, s, t,
                                offending, ip_id_++);
        write_ether({buf, ether_header_len}, Mac{}, Mac{}, dp::ether_type_ipv4);
    } else if (buf != nullptr) {
        Ip6 s, t;
        std::memcpy(s.data(), src, 16);
        t = d.src;
        len = build_icmp6_error({buf + ether_header_len, dp::ipv6_min_mtu}, type, code, extra, s, t,
                                offending);
        write_ether({buf, ether_header_len}, Mac{}, Mac{}, dp::ether_type_ipv6);
    }
    const std::array<uint8_t, 16> dst = d.src;
    rte_pktmbuf_free(m);
    if (len == 0) {
        rte_pktmbuf_free(e);
        return;
    }
    rte_pktmbuf_trim(e, uint16_t(dp::ipv6_min_mtu - len));
    send_ip(e, d.family, dst.data(), now);
}

void SlowPath::block_return(rte_mbuf *m, const PacketDesc &d, uint16_t port,
                            config::BlockPolicy policy, Clock::time_point now) {
    const bool rst = d.proto == dp::proto_tcp && policy != config::BlockPolicy::return_icmp;
    if (!rst) {
        if (policy == config::BlockPolicy::return_rst) {
            rte_pktmbuf_free(m);
            return;
        }
        // pf answers with "port unreachable" (ICMPv6: destination unreachable, code 4).
        if (d.family == 4)
            send_icmp_error(m, d, port, dp::icmp_unreach, dp::icmp_code_port_unreach, 0, now);
        else
            send_icmp_error(m, d, port, dp::icmp6_unreach, dp::icmp6_code_port_unreach, 0, now);
        return;
    }
    rte_mbuf *r = is_unicast_source(d) && icmp_rate_ok(now) ? rte_pktmbuf_alloc(dp_.pool) : nullptr;
    auto *buf =
        r != nullptr
            ? reinterpret_cast<uint8_t *>(rte_pktmbuf_append(r, ether_header_len + max_rst_len))
            : nullptr;
    const std::size_t len =
        buf != nullptr ? build_tcp_rst({buf + ether_header_len, max_rst_len}, d) : 0;
    const std::array<uint8_t, 16> dst = d.src;
    rte_pktmbuf_free(m);
    if (len == 0) {
        if (r != nullptr) rte_pktmbuf_free(r);
        return;
    }
    write_ether({buf, ether_header_len}, Mac{}, Mac{},
                d.family == 4 ? dp::ether_type_ipv4 : dp::ether_type_ipv6);
    rte_pktmbuf_trim(r, uint16_t(max_rst_len - len));
    send_ip(r, d.family, dst.data(), now);
}

void SlowPath::send_ip(rte_mbuf *m, uint8_t family, const uint8_t *dst, Clock::time_point now) {
    config::IpAddress a;
    a.family = family;
    std::memcpy(a.bytes.data(), dst, family == 4 ? 4 : 16);
    const dp::NextHop &nh = dp_.routes->next_hop(dp_.routes->lookup(a));
    if (nh.kind != dp::NextHop::Kind::forward) {
        drop(m, DropReason::no_route);
        return;
    }
    NeighbourKey key;
    key.port = nh.port;
    key.family = family;
    key.addr = nh.has_gateway ? nh.gateway.bytes : a.bytes;
    Mac mac;
    if (dp_.neighbours->lookup(key, mac)) {
        finish_and_send(m, nh.port, mac);
        return;
    }
    dp::punt_meta(m).owes_ttl_decrement = false; // built here
    hold(key, m, now);
}

void SlowPath::finish_and_send(rte_mbuf *m, uint16_t port, const Mac &dst) {
    uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
    dp::ether_rewrite(frame, dst, dp_.ports[port].mac);
    dp_.send_from_main(port, m);
}

void SlowPath::hold(const NeighbourKey &key, rte_mbuf *m, Clock::time_point now) {
    if (held_ >= max_held_) {
        drop(m, DropReason::neighbour_hold_full);
        return;
    }
    auto it = pending_.find(key_bytes(key));
    if (it == pending_.end()) {
        if (pending_.size() >= dp_.cfg.limits.neighbours) {
            drop(m, DropReason::neighbour_queue_full);
            return;
        }
        it = pending_.emplace(key_bytes(key), std::make_pair(key, Pending{})).first;
    }
    Pending &p = it->second.second;
    if (p.packets.size() >= dp_.cfg.limits.pending_per_neighbour) {
        drop(m, DropReason::neighbour_queue_full);
        return;
    }
    p.packets.push_back(m);
    held_++;
    if (p.requests == 0) {
        p.requests = 1;
        p.last_request = now;
        request(key);
    }
}

void SlowPath::request(const NeighbourKey &key) {
    const dp::Port &p = dp_.ports[key.port];
    rte_mbuf *m = rte_pktmbuf_alloc(dp_.pool);
    if (m == nullptr) return;
    if (key.family == 4) {
        Ip4 spa{}, tpa{};
        std::memcpy(tpa.data(), key.addr.data(), 4);
        if (!source_address(key.port, 4, spa.data())) {
            rte_pktmbuf_free(m);
            return;
        }
        auto *buf = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, arp_frame_len));
        build_arp({buf, arp_frame_len}, dp::arp_request, broadcast_mac, p.mac, spa, Mac{}, tpa);
    } else {
        Ip6 src{}, target = key.addr;
        if (!source_address(key.port, 6, src.data())) {
            rte_pktmbuf_free(m);
            return;
        }
        auto *buf =
            reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, ether_header_len + nd_packet_len));
        write_ether({buf, ether_header_len}, ipv6_multicast_mac(solicited_node(target)), p.mac,
                    dp::ether_type_ipv6);
        build_neighbour_solicitation({buf + ether_header_len, nd_packet_len}, src, target, p.mac);
    }
    dp_.send_from_main(key.port, m);
}

void SlowPath::learn(const NeighbourKey &key, const Mac &mac, Clock::time_point) {
    // Queue the held packets before the workers can see the neighbour, so that they leave
    // ahead of the packets that follow them.
    auto it = pending_.find(key_bytes(key));
    if (it == pending_.end()) {
        if (!dp_.neighbours->update(key, mac)) ctr_.drop(DropReason::neighbour_queue_full);
        return;
    }
    for (rte_mbuf *m : it->second.second.packets) {
        if (dp::punt_meta(m).owes_ttl_decrement) {
            PacketDesc d;
            if (!parse(m, d)) {
                drop(m, DropReason::to_us_unhandled);
                continue;
            }
            uint8_t *ip = rte_pktmbuf_mtod(m, uint8_t *) + d.l3_offset;
            if (d.family == 4)
                dp::ipv4_decrement_ttl(ip);
            else
                dp::ipv6_decrement_hop_limit(ip);
            ctr_.forwarded.inc();
        }
        finish_and_send(m, key.port, mac);
    }
    held_ -= it->second.second.packets.size();
    pending_.erase(it);
    if (!dp_.neighbours->update(key, mac)) ctr_.drop(DropReason::neighbour_queue_full);
}

void SlowPath::tick(Clock::time_point now) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        Pending &p = it->second.second;
        if (now - p.last_request < request_interval) {
            ++it;
            continue;
        }
        if (p.requests >= max_requests) {
            for (rte_mbuf *m : p.packets)
                drop(m, DropReason::neighbour_unresolved);
            held_ -= p.packets.size();
            it = pending_.erase(it);
            continue;
        }
        p.requests++;
        p.last_request = now;
        request(it->second.first);
        ++it;
    }
}

} // namespace syncwall::ctl
