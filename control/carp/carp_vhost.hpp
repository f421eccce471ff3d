// One CARP virtual host (vhid): the INIT -> BACKUP -> MASTER state machine, its timers,
// demotion and authentication (docs/carp.md 1.4, 1.6, 1.7 and "syncwall's choices").
//
// Theory of operation: the control loop on the main lcore owns one CarpVhost per
// configured vhid. It reads no clock and does no I/O: every call takes the current time,
// and returns CarpActions saying what the caller must do now: transmit the advertisement
// it carries (on every address family the vhid has addresses of, built with
// build_carp_advert_v4/_v6), announce the virtual addresses (gratuitous ARP from the
// virtual MAC for each IPv4 one, unsolicited NA with the Override flag for each IPv6
// one), and start or stop acting as master (answering ARP/ND for the virtual addresses
// and forwarding). After every call the caller re-arms one timer for next_deadline() and
// calls on_timer() when it fires. A received advertisement goes through validate() and,
// when accepted, on_advert().
//
// Timing is OpenBSD's, with the interval syncwall advertises: interval = advbase +
// advskew'/256 s, where advskew' is the configured skew plus the node's demotion, clamped
// to 240 (carp_demoted_skew). A master advertises every interval; a backup declares the
// master down after 3 intervals of silence (carp_master_down_ticks). advbase 0 is allowed,
// as in OpenBSD: the interval is then advskew'/256 s, and 1/256 s when advskew' is 0
// too (a master down after 3/256 s: only for links and hosts that never pause).
//
// Elections follow OpenBSD's rules, comparing the sender's (demote, interval) with ours:
// * MASTER hearing an advertisement steps down when the sender is less demoted, or equally
//   demoted and faster, or equally demoted, equally fast and wins the tie-break.
// * BACKUP hearing an advertisement takes over at once when (1) preempt is on and the
//   sender is equally or more demoted and slower (or equal and loses the tie-break),
//   (2) the sender is more demoted (preempt or not), (3) the sender's interval exceeds
//   3 × our advbase (OpenBSD's "will time out" rule), or the advertisement is a bow-out
//   (advbase = advskew = 255). Otherwise it restarts its master-down timer.
//
// syncwall's choices, where OpenBSD has none or we differ on purpose:
// * Tie-break: when demote and interval are equal, the node whose advertisement source
//   address is numerically lower (big-endian bytes, same family) wins. OpenBSD lets both
//   step down and leaves it to timer jitter; ucarp compares raw s_addr (host order).
//   An advertisement from another family than our own source, or with no own source
//   configured, loses no tie for us: a master keeps its role, a backup does not preempt.
// * A bow-out makes a backup take over whatever its advbase (OpenBSD: only while
//   3 × advbase < 255.996 s, i.e. advbase <= 85), and never makes a master step down
//   (OpenBSD would if the leaving node were less demoted, leaving no master for
//   3 intervals).
// * The master-down timer uses the skew we advertise (demotion included): a demoted
//   backup waits longer before taking over.
// * Replay/loop handling is OpenBSD's current one: a random 64-bit cookie, drawn by the
//   caller and sent unchanged as the counter of every advertisement; an advertisement
//   carrying our own cookie is our own, looped back, and is dropped. There is no
//   freshness check (no implementation has one; docs/carp.md 1.4).
// * Demotion is an input (the node's total: tracked links down, pending pfsync bulk
//   update, operator). It is sent in the demote byte (capped at 255) and added to the
//   advertised advskew (clamped to 240). A master whose demotion changes advertises at
//   once, so that peers react without waiting for the next interval.
// * Becoming master announces the addresses at once and again with the second
//   advertisement after that (OpenBSD's sc_delayed_arp = 2, "for some L3 switches").
#pragma once

#include "config/config.hpp"
#include "control/carp/carp_wire.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace syncwall::ctl {

enum class CarpRole : uint8_t { init, backup, master };
constexpr std::string_view name_of(CarpRole r) {
    return r == CarpRole::master ? "MASTER" : r == CarpRole::backup ? "BACKUP" : "INIT";
}

// Why a vhost changed role. One enum, one name table, a counter per reason.
#define SYNCWALL_CARP_TRANSITIONS(X)                                                               \
    X(started, "INIT -> BACKUP: started")                                                          \
    X(master_down, "BACKUP -> MASTER: no advertisement for 3 intervals")                           \
    X(preempt, "BACKUP -> MASTER: preempting a slower master")                                     \
    X(tie_break_won, "BACKUP -> MASTER: preempting an equal master with a higher address")         \
    X(peer_demoted, "BACKUP -> MASTER: the master is more demoted")                                \
    X(peer_too_slow, "BACKUP -> MASTER: the master advertises slower than 3 x advbase")            \
    X(peer_bowed_out, "BACKUP -> MASTER: the master bowed out")                                    \
    X(peer_faster, "MASTER -> BACKUP: an equally demoted master advertises faster")                \
    X(peer_less_demoted, "MASTER -> BACKUP: a less demoted master")                                \
    X(tie_break_lost, "MASTER -> BACKUP: an equal master with a lower address")                    \
    X(stopped, "-> INIT: stopped (a master bows out)")                                             \
    X(link_down, "-> INIT: parent link down, silently")

SYNCWALL_REASON_LIST(CarpTransitionReason, SYNCWALL_CARP_TRANSITIONS, carp_transition_reason_count,
                     carp_transition_reason_names, carp_transition_reason_texts)

// What the caller must do after a call, in this order: send `advert`, then announce,
// then apply the role change.
struct CarpActions {
    // Transmit this advertisement now (fields final: skew, demote, counter, digest).
    std::optional<CarpAdvert> advert;
    // Send gratuitous ARP for every IPv4 and unsolicited NA for every IPv6 virtual address.
    bool announce = false;
    // The role changed to this, for this reason: MASTER answers ARP/ND for the virtual
    // addresses and forwards; BACKUP and INIT do neither.
    std::optional<CarpRole> became;
    std::optional<CarpTransitionReason> reason;

    bool empty() const { return !advert && !announce && !became; }
};

// One entry of the transition log.
struct CarpTransition {
    std::chrono::steady_clock::time_point at;
    CarpRole from = CarpRole::init;
    CarpRole to = CarpRole::init;
    CarpTransitionReason reason = CarpTransitionReason::started;
    // The advertisement that caused it, when one did.
    bool by_advert = false;
    config::IpAddress peer;
    uint8_t peer_advbase = 0, peer_advskew = 0, peer_demote = 0;
    // What we advertised at that moment.
    uint8_t own_advskew = 0, own_demote = 0;
};

struct CarpVhostCounters {
    std::array<uint64_t, carp_transition_reason_count> transitions{};
    std::array<uint64_t, carp_drop_count> drops{}; // counted by validate() and on_advert()
    uint64_t adverts_sent = 0;                     // advertisements asked for (bow-outs too)
    uint64_t adverts_accepted = 0;                 // reached the state machine
};

class CarpVhost {
  public:
    using Role = CarpRole;
    using Actions = CarpActions;
    using Clock = std::chrono::steady_clock;
    using Ticks = std::chrono::duration<int64_t, std::ratio<1, 256>>; // 1/256 s

    static constexpr std::size_t log_capacity = 32;

    // `own_source`: the address our advertisements leave from (the parent interface's, of
    // the family the vhid advertises on; IPv4 when it has both), for the tie-break.
    // `replay_cookie`: a random 64-bit value drawn once by the caller (RAND_bytes,
    // std::random_device), sent as the counter of every advertisement.
    CarpVhost(const config::CarpVhostConfig &config, bool preempt,
              const config::IpAddress &own_source, uint64_t replay_cookie);

    // INIT -> BACKUP; the master-down timer starts. Nothing when not in INIT.
    Actions start(Clock::time_point now);
    // Call when now >= next_deadline(): a backup takes over; a master advertises.
    Actions on_timer(Clock::time_point now);
    // Checks a received CARP message (IP payload and TTL/hop limit) for this vhid,
    // including the loop check, counting each drop. nullopt: pass `out` to on_advert().
    std::optional<CarpDrop> validate(std::span<const uint8_t> carp, uint8_t ttl, CarpAdvert &out);
    // An advertisement that passed validate(), from `source` (its IP source address).
    Actions on_advert(const CarpAdvert &advert, const config::IpAddress &source,
                      Clock::time_point now);
    // The node's total demotion (0 = healthy). A master advertises the change at once.
    Actions set_demotion(int demotion, Clock::time_point now);
    // Graceful stop: a master sends the bow-out advertisement; any role goes to INIT.
    Actions stop(Clock::time_point now);
    // Parent link down: to INIT without a word (nothing could be sent). start() again
    // when the link is back.
    Actions link_down(Clock::time_point now);

    Role role() const { return role_; }
    // When on_timer() must next run; time_point::max() in INIT.
    Clock::time_point next_deadline() const { return deadline_; }

    uint8_t vhid() const { return vhid_; }
    bool preempt() const { return preempt_; }
    unsigned demotion() const { return demotion_; }
    // What our advertisements carry now.
    uint8_t advertised_advskew() const { return carp_demoted_skew(advskew_, demotion_); }
    uint8_t advertised_demote() const { return carp_demote_byte(demotion_); }
    // advbase + advertised advskew / 256 (1/256 s when that is 0).
    Ticks advert_interval() const;
    Ticks master_down_interval() const {
        return Ticks(carp_master_down_ticks(advbase_, advertised_advskew()));
    }

    const CarpAuth &auth() const { return auth_; }
    const CarpVhostCounters &counters() const { return counters_; }
    // Oldest first, at most log_capacity entries.
    std::vector<CarpTransition> transitions() const;

  private:
    Actions advertise(Clock::time_point now, Actions actions);
    Actions become(Role to, CarpTransitionReason why, Clock::time_point now,
                   const CarpAdvert *advert, const config::IpAddress *peer);
    Actions take_over(CarpTransitionReason why, Clock::time_point now, const CarpAdvert *advert,
                      const config::IpAddress *peer);
    // <0: the peer wins the tie, >0: we win, 0: no verdict (other family, same address).
    int tie_break(const config::IpAddress &peer) const;

    uint8_t vhid_;
    uint8_t advbase_;
    uint8_t advskew_;
    bool preempt_;
    config::IpAddress own_source_;
    uint64_t cookie_;
    CarpAuth auth_;

    Role role_ = Role::init;
    unsigned demotion_ = 0;
    Clock::time_point deadline_ = Clock::time_point::max();
    int delayed_announce_ = -1; // adverts until the second announcement; -1: none pending

    CarpVhostCounters counters_;
    std::array<CarpTransition, log_capacity> log_{};
    std::size_t log_next_ = 0;
    std::size_t log_size_ = 0;
};

} // namespace syncwall::ctl
