#include "control/carp/carp.hpp"

#include "control/slowpath/replies.hpp"
#include "dataplane/mbuf_frame.hpp"

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <random>

namespace syncwall::ctl {

using dp::frame_of;

namespace {

constexpr auto link_poll_interval = std::chrono::milliseconds(100);
constexpr Ip6 all_nodes{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};

std::string tracked_reason(const std::string &ifname) {
    return "tracked interface " + ifname + " link down";
}

// "BACKUP -> MASTER: no advertisement for 3 intervals" -> "no advertisement for 3 intervals".
std::string reason_text(CarpTransitionReason r) {
    const std::string_view t = carp_transition_reason_texts[std::size_t(r)];
    const auto colon = t.find(": ");
    return std::string(colon == std::string_view::npos ? t : t.substr(colon + 2));
}

uint64_t random_cookie() {
    std::random_device rd;
    return uint64_t(rd()) << 32 | rd();
}

} // namespace

struct Carp::Vhost {
    Vhost(boost::asio::io_context &io, const config::CarpVhostConfig &c, bool preempt,
          const CarpAdvertSources &sources, uint16_t port_index)
        : cfg(c), sm(c, preempt, sources.primary(), random_cookie()), port(port_index),
          src(sources), timer(io) {}

    // Per address family (0 IPv4, 1 IPv6): adverts put on the wire, and received ones that
    // the state machine accepted.
    struct FamilyCounters {
        uint64_t sent = 0, received = 0;
    };

    const config::CarpVhostConfig &cfg;
    CarpVhost sm;
    uint16_t port;
    CarpAdvertSources src; // the families we advertise on, and our source in each
    boost::asio::steady_timer timer;
    std::string last_reason;
    std::array<FamilyCounters, 2> by_family{};
};

Carp::Carp(boost::asio::io_context &io, dp::Dataplane &dp, SlowPath &slow)
    : io_(io), dp_(dp), slow_(slow), preempt_(dp.cfg.carp.preempt), link_(dp.ports.size(), -1),
      link_timer_(io) {
    const auto index_of = [&](const std::string &name) -> int {
        for (std::size_t i = 0; i < dp_.ports.size(); i++)
            if (dp_.ports[i].name == name) return int(i);
        return -1;
    };
    const auto watch = [&](uint16_t p) {
        if (std::find(watched_.begin(), watched_.end(), p) == watched_.end()) watched_.push_back(p);
    };
    for (const auto &vc : dp_.cfg.carp.vhosts) {
        const int p = index_of(vc.interface);
        if (p < 0 || dp_.ports[std::size_t(p)].is_sync)
            throw std::runtime_error(vc.pos.to_string() + ": carp vhid " + std::to_string(vc.vhid) +
                                     ": interface " + vc.interface +
                                     " is not a data port (the sync port carries no vhids)");
        // The families of the vhid's addresses say where it advertises; carp_advert_sources
        // says from which address (the port's, as OpenBSD's parent interface).
        const dp::Port &port = dp_.ports[std::size_t(p)];
        const auto sources = carp_advert_sources(vc.addresses, port.addresses, port.mac);
        vhosts_.push_back(std::make_unique<Vhost>(io_, vc, preempt_, sources, uint16_t(p)));
        watch(uint16_t(p));
    }
    for (const auto &name : dp_.cfg.carp.tracked) {
        const int p = index_of(name);
        if (p < 0) continue; // the loader only accepts configured interfaces
        tracked_.push_back(uint16_t(p));
        watch(uint16_t(p));
    }
    if (!configured()) return;
    slow_.set_multicast_handler([this](rte_mbuf *m, const dp::PacketDesc &d, uint16_t port) {
        return handle_multicast(m, d, port);
    });
    slow_.set_virtual_address_lookup([this](uint16_t port, uint8_t family, const uint8_t *addr) {
        return owner(port, family, addr);
    });
}

Carp::~Carp() = default;

// --- demotion -------------------------------------------------------------------------------

unsigned Carp::demotion() const {
    unsigned sum = 0;
    for (const auto &[reason, value] : reasons_)
        sum += value;
    return sum;
}

void Carp::set_reason(const std::string &reason, unsigned value) {
    auto it = std::find_if(reasons_.begin(), reasons_.end(),
                           [&](const auto &r) { return r.first == reason; });
    if (value == 0) {
        if (it == reasons_.end()) return;
        reasons_.erase(it);
    } else if (it == reasons_.end()) {
        reasons_.emplace_back(reason, value);
    } else {
        if (it->second == value) return;
        it->second = value;
    }
    std::printf("syncwall: carp demotion %u (%s: %u)\n", demotion(), reason.c_str(), value);
    std::fflush(stdout);
    demotion_changed();
}

void Carp::demotion_changed() {
    if (!started_) return; // start() applies it
    const int total = int(std::min(demotion(), 65535u));
    const auto now = Clock::now();
    for (auto &v : vhosts_)
        apply(*v, v->sm.set_demotion(total, now));
}

void Carp::set_sync_bulk_pending(bool pending) {
    set_reason(bulk_pending_reason, pending ? bulk_pending_demotion : 0);
}

void Carp::demote(unsigned n) {
    unsigned current = 0;
    for (const auto &[reason, value] : reasons_)
        if (reason == "operator") current = value;
    set_reason("operator", std::min(current + n, 1u << 16));
}

void Carp::promote() {
    set_reason("operator", 0);
}

// --- running --------------------------------------------------------------------------------

void Carp::start() {
    if (!configured() || started_) return;
    started_ = true;
    for (uint16_t p : watched_)
        link_[p] = dp_.link_up(p) ? 1 : 0;
    for (uint16_t p : tracked_)
        if (link_[p] == 0)
            reasons_.emplace_back(tracked_reason(dp_.ports[p].name), tracked_link_demotion);
    const int total = int(std::min(demotion(), 65535u));
    const auto now = Clock::now();
    for (auto &v : vhosts_) {
        apply(*v, v->sm.set_demotion(total, now));
        if (link_[v->port] == 1) apply(*v, v->sm.start(now));
    }
    arm_link_poll();
}

void Carp::stop() {
    if (!started_) return;
    started_ = false;
    link_timer_.cancel();
    const auto now = Clock::now();
    for (auto &v : vhosts_) {
        apply(*v, v->sm.stop(now));
        v->timer.cancel();
    }
}

void Carp::apply(Vhost &v, const CarpActions &a) {
    if (a.advert) send_advert(v, *a.advert);
    if (a.announce) announce(v);
    if (a.became) {
        const bool master = *a.became == CarpRole::master;
        dp_.virtual_macs[v.port].set_master(v.cfg.vhid, master);
        const auto log = v.sm.transitions();
        std::string detail = a.reason ? reason_text(*a.reason) : "";
        if (!log.empty() && log.back().by_advert) {
            const CarpTransition &t = log.back();
            char peer[128];
            std::snprintf(peer, sizeof peer, ": %s advbase %u advskew %u demote %u",
                          t.peer.to_string().c_str(), t.peer_advbase, t.peer_advskew,
                          t.peer_demote);
            detail += peer;
        }
        v.last_reason = a.reason ? reason_text(*a.reason) : "";
        std::printf("syncwall: carp vhid %u %s -> %s (%s)\n", unsigned(v.cfg.vhid),
                    std::string(name_of(log.empty() ? CarpRole::init : log.back().from)).c_str(),
                    std::string(name_of(*a.became)).c_str(), detail.c_str());
        std::fflush(stdout);
    }
    arm(v);
}

void Carp::arm(Vhost &v) {
    const auto deadline = v.sm.next_deadline();
    if (deadline == Clock::time_point::max()) {
        v.timer.cancel();
        return;
    }
    v.timer.expires_at(deadline);
    v.timer.async_wait([this, &v](const boost::system::error_code &ec) {
        if (ec) return; // cancelled or re-armed
        apply(v, v.sm.on_timer(Clock::now()));
    });
}

void Carp::send_advert(Vhost &v, const CarpAdvert &ad) {
    // One advert, one frame per family the vhid has addresses in (OpenBSD carp_send_ad:
    // the IPv4 one when sc_naddrs, the IPv6 one when sc_naddrs6), the same CARP bytes.
    const auto send = [&](std::size_t len, auto &&build) {
        rte_mbuf *m = rte_pktmbuf_alloc(dp_.pool);
        if (m == nullptr) return false;
        auto *buf = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, uint16_t(len)));
        if (buf == nullptr || build(std::span<uint8_t>(buf, len)) == 0) {
            rte_pktmbuf_free(m);
            return false;
        }
        dp_.send_from_main(v.port, m);
        return true;
    };
    if (v.src.v4 && send(carp_advert_v4_frame_len, [&](std::span<uint8_t> out) {
            return build_carp_advert_v4(out, ad, *v.src.v4, ip_id_++);
        }))
        ++v.by_family[0].sent;
    if (v.src.v6 && send(carp_advert_v6_frame_len, [&](std::span<uint8_t> out) {
            return build_carp_advert_v6(out, ad, *v.src.v6);
        }))
        ++v.by_family[1].sent;
}

void Carp::announce(const Vhost &v) {
    const Mac vmac = carp_virtual_mac(v.cfg.vhid);
    for (const auto &a : v.cfg.addresses) {
        rte_mbuf *m = rte_pktmbuf_alloc(dp_.pool);
        if (m == nullptr) return;
        std::size_t len = 0;
        if (a.addr.is_v4()) {
            auto *buf = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, arp_frame_len));
            Ip4 vip;
            std::memcpy(vip.data(), a.addr.bytes.data(), 4);
            if (buf != nullptr) len = build_carp_garp({buf, arp_frame_len}, v.cfg.vhid, vip);
        } else {
            // Unsolicited NA with the Override flag to all nodes (RFC 4861 7.2.6).
            auto *buf = reinterpret_cast<uint8_t *>(
                rte_pktmbuf_append(m, ether_header_len + nd_packet_len));
            if (buf != nullptr) {
                write_ether({buf, ether_header_len}, ipv6_multicast_mac(all_nodes), vmac,
                            dp::ether_type_ipv6);
                len = build_neighbour_advertisement({buf + ether_header_len, nd_packet_len},
                                                    a.addr.bytes, all_nodes, vmac, false);
            }
        }
        if (len == 0) {
            rte_pktmbuf_free(m);
            continue;
        }
        dp_.send_from_main(v.port, m);
    }
}

bool Carp::handle_multicast(rte_mbuf *m, const dp::PacketDesc &d, uint16_t port) {
    // IPv4 protocol 112 or IPv6 next header 112 (after any extension headers the parser
    // walked), to 224.0.0.18 / ff02::12 or whatever multicast the segment used: the checks
    // that matter (TTL or hop limit 255, length, checksum, vhid, version, type, HMAC,
    // loop) are the vhid's, the same for both families, each rejection counted by reason.
    if ((d.family != 4 && d.family != 6) || d.proto != dp::proto_carp || d.is_fragment)
        return false;
    Vhost *match = nullptr;
    std::vector<Vhost *> on_port;
    const auto frame = frame_of(m);
    const std::size_t end = std::size_t(d.l3_offset) + d.l3_total_len;
    if (end > frame.size() || d.l4_offset > end) return false;
    const auto carp = frame.subspan(d.l4_offset, end - d.l4_offset);
    for (auto &v : vhosts_) {
        if (v->port != port) continue;
        on_port.push_back(v.get());
        if (carp.size() >= 2 && carp[1] == v->cfg.vhid) match = v.get();
    }
    if (on_port.empty()) return false; // not a port with vhids: the slow path counts it
    config::IpAddress source;
    source.family = d.family;
    std::memcpy(source.bytes.data(), d.src.data(), d.family == 4 ? 4 : 16);
    const auto now = Clock::now();
    // An advert for no vhid of this port is a rejection (wrong vhid, or whatever fails
    // first) for each vhid that saw it; one for ours is judged by that vhid alone.
    if (match == nullptr) {
        CarpAdvert ad;
        for (Vhost *v : on_port)
            (void)v->sm.validate(carp, d.ttl, ad);
    } else {
        CarpAdvert ad;
        if (!match->sm.validate(carp, d.ttl, ad)) {
            ++match->by_family[d.family == 4 ? 0 : 1].received;
            apply(*match, match->sm.on_advert(ad, source, now));
        }
    }
    rte_pktmbuf_free(m);
    return true;
}

SlowPath::VirtualOwner Carp::owner(uint16_t port, uint8_t family, const uint8_t *addr) const {
    const std::size_t len = family == 4 ? 4 : 16;
    for (const auto &v : vhosts_) {
        if (v->port != port) continue;
        for (const auto &a : v->cfg.addresses) {
            if (a.addr.family != family || std::memcmp(a.addr.bytes.data(), addr, len) != 0)
                continue;
            SlowPath::VirtualOwner o;
            o.is_virtual = true;
            o.master = v->sm.role() == CarpRole::master;
            o.mac = carp_virtual_mac(v->cfg.vhid);
            return o;
        }
    }
    return {};
}

// --- links ----------------------------------------------------------------------------------

void Carp::arm_link_poll() {
    link_timer_.expires_after(link_poll_interval);
    link_timer_.async_wait([this](const boost::system::error_code &ec) {
        if (ec || !started_) return;
        poll_links();
        arm_link_poll();
    });
}

void Carp::poll_links() {
    const auto now = Clock::now();
    for (uint16_t p : watched_) {
        const int8_t up = dp_.link_up(p) ? 1 : 0;
        if (up == link_[p]) continue;
        link_[p] = up;
        std::printf("syncwall: carp: interface %s link %s\n", dp_.ports[p].name.c_str(),
                    up ? "up" : "down");
        std::fflush(stdout);
        // The vhids on this link first: one that cannot send goes quiet (INIT) before the
        // node's demotion changes; one that is back starts as BACKUP, already demoted right.
        for (auto &v : vhosts_) {
            if (v->port != p) continue;
            apply(*v, up ? v->sm.start(now) : v->sm.link_down(now));
        }
        if (std::find(tracked_.begin(), tracked_.end(), p) != tracked_.end())
            set_reason(tracked_reason(dp_.ports[p].name), up ? 0 : tracked_link_demotion);
    }
}

// --- management -----------------------------------------------------------------------------

CarpStatus Carp::status() const {
    CarpStatus st;
    st.configured = configured();
    st.preempt = preempt_;
    st.demotion = demotion();
    st.demotion_reasons = reasons_;
    for (const auto &v : vhosts_) {
        const CarpVhostCounters &c = v->sm.counters();
        CarpVhidStatus s;
        s.vhid = v->cfg.vhid;
        s.interface = v->cfg.interface;
        s.role = v->sm.role();
        s.advbase = v->cfg.advbase;
        s.advskew = v->cfg.advskew;
        s.effective_advskew = v->sm.advertised_advskew();
        // What the advertised skew (demotion included) makes of the timers, in ms.
        s.advert_interval_ms = carp_ticks_ms(uint32_t(v->sm.advert_interval().count()));
        s.master_down_ms = carp_ticks_ms(uint32_t(v->sm.master_down_interval().count()));
        s.demote = v->sm.advertised_demote();
        for (const auto &a : v->cfg.addresses)
            s.addresses.push_back(a.to_string());
        for (uint64_t n : c.transitions)
            s.transitions += n;
        s.last_reason = v->last_reason;
        s.adverts_sent = c.adverts_sent;
        s.adverts_received = c.adverts_accepted;
        s.adverts_rejected = c.drops;
        if (v->src.v4) {
            config::IpAddress a;
            a.family = 4;
            std::copy(v->src.v4->begin(), v->src.v4->end(), a.bytes.begin());
            s.source[0] = a.to_string();
        }
        if (v->src.v6) {
            config::IpAddress a;
            a.family = 6;
            a.bytes = *v->src.v6;
            s.source[1] = a.to_string();
        }
        for (std::size_t f = 0; f < 2; f++) {
            s.sent_by_family[f] = v->by_family[f].sent;
            s.received_by_family[f] = v->by_family[f].received;
        }
        st.vhids.push_back(std::move(s));
    }
    return st;
}

} // namespace syncwall::ctl
