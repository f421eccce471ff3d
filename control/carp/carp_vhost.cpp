#include "control/carp/carp_vhost.hpp"

#include <algorithm>
#include <cstring>

namespace syncwall::ctl {

namespace {

std::vector<config::IpAddress> addresses_of(const config::CarpVhostConfig &config) {
    std::vector<config::IpAddress> out;
    for (const auto &p : config.addresses)
        out.push_back(p.addr);
    return out;
}

CarpVhost::Clock::duration to_clock(CarpVhost::Ticks t) {
    return std::chrono::duration_cast<CarpVhost::Clock::duration>(t);
}

} // namespace

CarpVhost::CarpVhost(const config::CarpVhostConfig &config, bool preempt,
                     const config::IpAddress &own_source, uint64_t replay_cookie)
    : vhid_(config.vhid), advbase_(config.advbase), advskew_(config.advskew), preempt_(preempt),
      own_source_(own_source), cookie_(replay_cookie),
      auth_(config.pass, config.vhid, addresses_of(config)) {}

CarpVhost::Ticks CarpVhost::advert_interval() const {
    return Ticks(carp_timer_ticks(advbase_, advertised_advskew()));
}

std::vector<CarpTransition> CarpVhost::transitions() const {
    std::vector<CarpTransition> out;
    out.reserve(log_size_);
    const std::size_t first = (log_next_ + log_capacity - log_size_) % log_capacity;
    for (std::size_t i = 0; i < log_size_; ++i)
        out.push_back(log_[(first + i) % log_capacity]);
    return out;
}

int CarpVhost::tie_break(const config::IpAddress &peer) const {
    if (own_source_.family == 0 || peer.family != own_source_.family) return 0;
    const int c =
        std::memcmp(peer.bytes.data(), own_source_.bytes.data(), own_source_.is_v4() ? 4 : 16);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
}

CarpActions CarpVhost::become(Role to, CarpTransitionReason why, Clock::time_point now,
                              const CarpAdvert *advert, const config::IpAddress *peer) {
    CarpTransition t;
    t.at = now;
    t.from = role_;
    t.to = to;
    t.reason = why;
    if (advert && peer) {
        t.by_advert = true;
        t.peer = *peer;
        t.peer_advbase = advert->advbase;
        t.peer_advskew = advert->advskew;
        t.peer_demote = advert->demote;
    }
    t.own_advskew = advertised_advskew();
    t.own_demote = advertised_demote();
    log_[log_next_] = t;
    log_next_ = (log_next_ + 1) % log_capacity;
    log_size_ = std::min(log_size_ + 1, log_capacity);
    ++counters_.transitions[std::size_t(why)];

    role_ = to;
    switch (to) {
    case Role::init:
        deadline_ = Clock::time_point::max();
        break;
    case Role::backup:
        deadline_ = now + to_clock(master_down_interval());
        break;
    case Role::master:
        deadline_ = now + to_clock(advert_interval());
        break;
    }
    delayed_announce_ = -1;

    CarpActions a;
    a.became = to;
    a.reason = why;
    return a;
}

CarpActions CarpVhost::advertise(Clock::time_point now, CarpActions actions) {
    CarpAdvert ad;
    ad.vhid = vhid_;
    ad.advbase = advbase_;
    ad.advskew = advertised_advskew();
    ad.demote = advertised_demote();
    ad.counter = cookie_;
    ad.digest = auth_.digest(cookie_);
    actions.advert = ad;
    ++counters_.adverts_sent;
    deadline_ = now + to_clock(advert_interval());
    // OpenBSD's sc_delayed_arp: counted down by the adverts after the takeover one.
    if (delayed_announce_ > 0) --delayed_announce_;
    if (delayed_announce_ == 0) {
        actions.announce = true;
        delayed_announce_ = -1;
    }
    return actions;
}

CarpActions CarpVhost::take_over(CarpTransitionReason why, Clock::time_point now,
                                 const CarpAdvert *advert, const config::IpAddress *peer) {
    // OpenBSD carp_master_down: MASTER, advertise, announce, then the delayed announce.
    auto actions = advertise(now, become(Role::master, why, now, advert, peer));
    actions.announce = true;
    delayed_announce_ = 2;
    return actions;
}

CarpActions CarpVhost::start(Clock::time_point now) {
    if (role_ != Role::init) return {};
    return become(Role::backup, CarpTransitionReason::started, now, nullptr, nullptr);
}

CarpActions CarpVhost::on_timer(Clock::time_point now) {
    if (now < deadline_) return {};
    switch (role_) {
    case Role::init:
        return {};
    case Role::backup:
        return take_over(CarpTransitionReason::master_down, now, nullptr, nullptr);
    case Role::master:
        return advertise(now, {});
    }
    return {};
}

std::optional<CarpDrop> CarpVhost::validate(std::span<const uint8_t> carp, uint8_t ttl,
                                            CarpAdvert &out) {
    auto drop = validate_carp(carp, ttl, vhid_, auth_, out);
    // OpenBSD: "replay or network loop detected" when the counter is our own cookie.
    if (!drop && out.counter == cookie_) drop = CarpDrop::looped;
    if (drop) ++counters_.drops[std::size_t(*drop)];
    return drop;
}

CarpActions CarpVhost::on_advert(const CarpAdvert &advert, const config::IpAddress &source,
                                 Clock::time_point now) {
    // Cheap re-checks for callers that skipped validate().
    if (advert.vhid != vhid_) {
        ++counters_.drops[std::size_t(CarpDrop::wrong_vhid)];
        return {};
    }
    if (advert.counter == cookie_) {
        ++counters_.drops[std::size_t(CarpDrop::looped)];
        return {};
    }
    ++counters_.adverts_accepted;

    const unsigned own_demote = advertised_demote();
    const unsigned peer_demote = advert.demote;
    const uint32_t own_ticks = carp_interval_ticks(advbase_, advertised_advskew());
    const uint32_t peer_ticks = carp_interval_ticks(advert.advbase, advert.advskew);
    using R = CarpTransitionReason;

    switch (role_) {
    case Role::init:
        return {};
    case Role::master:
        if (advert.is_bow_out()) return {}; // the leaving node is no better master
        if (peer_demote < own_demote)
            return become(Role::backup, R::peer_less_demoted, now, &advert, &source);
        if (peer_demote == own_demote) {
            if (peer_ticks < own_ticks)
                return become(Role::backup, R::peer_faster, now, &advert, &source);
            if (peer_ticks == own_ticks && tie_break(source) < 0)
                return become(Role::backup, R::tie_break_lost, now, &advert, &source);
        }
        return {};
    case Role::backup:
        if (advert.is_bow_out()) return take_over(R::peer_bowed_out, now, &advert, &source);
        if (preempt_ && peer_demote >= own_demote) {
            if (own_ticks < peer_ticks) return take_over(R::preempt, now, &advert, &source);
            if (own_ticks == peer_ticks && peer_demote == own_demote && tie_break(source) > 0)
                return take_over(R::tie_break_won, now, &advert, &source);
        }
        if (peer_demote > own_demote) return take_over(R::peer_demoted, now, &advert, &source);
        if (advbase_ != 0 && uint32_t(3) * advbase_ * 256 < peer_ticks)
            return take_over(R::peer_too_slow, now, &advert, &source);
        deadline_ = now + to_clock(master_down_interval());
        return {};
    }
    return {};
}

CarpActions CarpVhost::set_demotion(int demotion, Clock::time_point now) {
    const unsigned d = demotion < 0 ? 0u : unsigned(demotion);
    if (d == demotion_) return {};
    demotion_ = d;
    // OpenBSD carp_ifgattr_ioctl: every master advertises the new demote count at once.
    if (role_ == Role::master) return advertise(now, {});
    return {};
}

CarpActions CarpVhost::stop(Clock::time_point now) {
    if (role_ == Role::init) return {};
    std::optional<CarpAdvert> bow_out;
    if (role_ == Role::master) {
        // OpenBSD sends the bow-out only for vhids that are MASTER (carp_vhe_send_ad_all).
        CarpAdvert ad;
        ad.vhid = vhid_;
        ad.advbase = carp_bow_out_value;
        ad.advskew = carp_bow_out_value;
        ad.demote = advertised_demote();
        ad.counter = cookie_;
        ad.digest = auth_.digest(cookie_);
        bow_out = ad;
        ++counters_.adverts_sent;
    }
    auto actions = become(Role::init, CarpTransitionReason::stopped, now, nullptr, nullptr);
    actions.advert = bow_out;
    return actions;
}

CarpActions CarpVhost::link_down(Clock::time_point now) {
    if (role_ == Role::init) return {};
    return become(Role::init, CarpTransitionReason::link_down, now, nullptr, nullptr);
}

} // namespace syncwall::ctl
