#include "dataplane/filter.hpp"

#include "dataplane/crc32c.hpp"
#include "dataplane/mbuf_frame.hpp"
#include "dataplane/pflog_writer.hpp"
#include "dataplane/ruleset.hpp"
#include "dataplane/state_logic.hpp"
#include "dataplane/state_table.hpp"

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_random.h>

#include <cstring>
#include <memory>
#include <type_traits>

namespace syncwall::dp {

namespace {

uint8_t iface_dir(uint16_t port, StateDirection dir) {
    return uint8_t(port << 1 | (dir == StateDirection::out ? 1 : 0));
}

// The ACL's ports: TCP/UDP ports, or ICMP type and code (so icmp-type matches there).
void acl_ports(const PacketDesc &d, uint16_t &sport, uint16_t &dport) {
    if (d.has_l4 && (d.proto == proto_icmp || d.proto == proto_icmpv6)) {
        sport = d.icmp.type;
        dport = d.icmp.code;
    } else if (d.has_l4) {
        sport = d.sport;
        dport = d.dport;
    } else {
        sport = dport = 0;
    }
}

// The transport checksum, before the packet may create or change a state: the port's
// verdict where the PMD gives one, our own sum otherwise (l4_checksum_ok()).
bool l4_checksum_good(const rte_mbuf *m, const PacketDesc &d) {
    switch (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) {
    case RTE_MBUF_F_RX_L4_CKSUM_GOOD:
    case RTE_MBUF_F_RX_L4_CKSUM_NONE: // the data was verified, the field may be stale
        return true;
    case RTE_MBUF_F_RX_L4_CKSUM_BAD:
        return false;
    default:
        break;
    }
    if (m->nb_segs == 1) [[likely]]
        return l4_checksum_ok(frame_of(m), d);
    // A chained datagram (reassembled from fragments): sum the segments.
    const L4ChecksumSpan c = l4_checksum_span(frame_of(m), m->pkt_len, d);
    if (!c.check) return true;
    const uint8_t *l4 = rte_pktmbuf_mtod_offset(m, const uint8_t *, d.l4_offset);
    if (d.proto == proto_udp && l4[6] == 0 && l4[7] == 0) return false; // IPv6 (see packet.cpp)
    uint16_t raw = 0;
    if (rte_raw_cksum_mbuf(m, d.l4_offset, c.length, &raw) != 0) return false;
    uint32_t sum = uint32_t(rte_be_to_cpu_16(raw));
    if (c.pseudo_header) sum += pseudo_header_sum(d, c.length);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return sum == 0xffff;
}

bool is_icmp_error(const PacketDesc &d) {
    return d.has_l4 && d.icmp.is_error && (d.proto == proto_icmp || d.proto == proto_icmpv6);
}

// The bits in which peer `a` differs from peer `b`, folded: 0 when they are byte for byte
// equal. Three word loads each (a peer is 20 bytes without padding) and no branch, where
// memcmp() compares and branches per piece.
inline uint64_t peer_difference(const TcpPeer &a, const TcpPeer &b) {
    static_assert(sizeof(TcpPeer) == 20 && std::has_unique_object_representations_v<TcpPeer>);
    uint64_t a0, a1, b0, b1;
    uint32_t a2, b2;
    std::memcpy(&a0, &a, 8);
    std::memcpy(&b0, &b, 8);
    std::memcpy(&a1, reinterpret_cast<const char *>(&a) + 8, 8);
    std::memcpy(&b1, reinterpret_cast<const char *>(&b) + 8, 8);
    std::memcpy(&a2, reinterpret_cast<const char *>(&a) + 16, 4);
    std::memcpy(&b2, reinterpret_cast<const char *>(&b) + 16, 4);
    return (a0 ^ b0) | (a1 ^ b1) | (a2 ^ b2);
}

} // namespace

Filter::Filter(Dataplane &dp, unsigned worker)
    : dp_(dp), worker_(worker), owners_(dp.worker_count() > 1), ctr_(dp.worker_counters.at(worker)),
      // pf seeds its state ids with the boot time in the high 32 bits, so that a restarted
      // node never reuses an id its peers still hold; the low bits are this worker's.
      next_id_((dp.start_time << 32) + worker) {}

// Inline into run(), its one caller: every forwarded established TCP packet takes it.
inline bool Filter::track_twin(uint32_t slot, const PacketDesc &d, uint32_t now,
                               const TrackMemo &memo, unsigned at, uint32_t in_slot,
                               FilterVerdict &v) {
    if ((memo.valid >> at & 1) == 0) return false;
    const TrackMemo::Entry &e = memo.entry[at];
    if (e.result.verdict != TcpVerdict::pass) return false; // a SYN that reused the ports
    StateTable &st = *dp_.states;
    detail::Slot *const sl = st.lock_slot(slot);
    if (sl == nullptr) return false; // a hint only: gone, or no slot at all
    // Live while locked, so its key is the one it was made with.
    State &s = sl->state;
    const bool forward = from_state_src(s, StateDirection::out);
    TcpPeer &src = forward ? s.src : s.dst;
    TcpPeer &dst = forward ? s.dst : s.src;
    if (!(in_slot != StateTable::no_slot ? sl->twin_link() == in_slot
                                         : key_is(s.key, d, StateDirection::out)) ||
        sl->translated() || (owners_ && s.owner != worker_) ||
        (peer_difference(e.before[0], src) | peer_difference(e.before[1], dst)) != 0) [[unlikely]] {
        StateTable::unlock(*sl);
        return false;
    }
    src = e.after[0];
    dst = e.after[1];
    if (e.result.refresh_expire) {
        s.expire = now;
        s.timeout = e.result.timeout;
    }
    const int i = forward ? 0 : 1;
    s.packets[i]++;
    s.bytes[i] += d.frame_len;
    std::construct_at(&v); // the caller's BurstArray
    v.slot = slot;
    v.twin = sl->twin_link();
    if (e.result.changed_for_peer) st.notify_update(slot, worker_);
    StateTable::unlock(*sl);
    return true;
}

void Filter::run(StateDirection dir, rte_mbuf *const *pkts, const PacketDesc *descs,
                 const uint16_t *idx, const uint16_t *ports, unsigned n, FilterVerdict *out,
                 uint32_t now, const uint32_t *hints, const uint32_t *near, TrackMemo *memo) {
    if (dir != StateDirection::out || hints == nullptr || memo == nullptr || memo->valid == 0) {
        run_general(dir, pkts, descs, idx, ports, n, out, now, hints, near, memo);
        return;
    }
    // The out pass: each packet that qualifies in one step, the others on the general path
    // after. A packet goes there too when one before it did whose hint falls on the same bit
    // of `held`: a connection's packets have one hint, so they meet their out state in burst
    // order. Where translations are on, a packet's out key need not be its hint's (its in
    // pass may have rewritten it), and an ICMP error reads the state of the connection it
    // quotes: there the first packet that does not qualify takes all after it along.
    const bool any_key = dp_.states->translations();
    // Where a packet's out key is its in key with the sides swapped (no translations), a
    // twin that links back to the packet's in state holds that key: Worker::link_twins links
    // two slots only for the states one packet found (or made) by its in and out keys, and a
    // slot's link starts out empty in each life of the slot. So when the in state (found by
    // its key in this burst) and the hinted twin name each other, they were linked in their
    // present lives, and the twin's key is the packet's out key: the state the out pass's
    // lookup would find, known without comparing its 40 bytes. (Had either slot been reused
    // since the link, the new life's link would start empty and be set only for its own
    // partner: one of the two would not name the other.) With translations, the key is
    // compared: the in pass may have rewritten the packet.
    uint64_t held = 0; // bit (hint mod 64): a twin the general path may track
    uint16_t rest_idx[max_filter_batch], rest_ports[max_filter_batch];
    uint32_t rest_hints[max_filter_batch];
    uint8_t rest_at[max_filter_batch];
    unsigned nr = 0;
    for (unsigned k = 0; k < n; k++) {
        const uint64_t bit = uint64_t(1) << (hints[k] & 63);
        if ((held & bit) == 0 &&
            track_twin(hints[k], descs[idx[k]], now, *memo, idx[k],
                       any_key || near == nullptr ? StateTable::no_slot : near[idx[k]], out[k]))
            continue;
        held |= any_key || is_icmp_error(descs[idx[k]]) ? ~uint64_t(0) : bit;
        rest_idx[nr] = idx[k];
        rest_ports[nr] = ports[k];
        rest_hints[nr] = hints[k];
        rest_at[nr++] = uint8_t(k);
    }
    ctr_.twin_steps.add(n - nr);
    if (nr == 0) return;
    if (nr == n) {
        run_general(dir, pkts, descs, idx, ports, n, out, now, hints, near, memo);
        return;
    }
    BurstArray<FilterVerdict, max_filter_batch> rest; // made by run_general
    run_general(dir, pkts, descs, rest_idx, rest_ports, nr, rest.data(), now, rest_hints, near,
                memo);
    for (unsigned j = 0; j < nr; j++)
        std::construct_at(&out[rest_at[j]], rest[j]);
}

void Filter::run_general(StateDirection dir, rte_mbuf *const *pkts, const PacketDesc *descs,
                         const uint16_t *idx, const uint16_t *ports, unsigned n, FilterVerdict *out,
                         uint32_t now, const uint32_t *hints, const uint32_t *near,
                         TrackMemo *memo) {
    StateTable &st = *dp_.states;
    BurstArray<StateKey, max_filter_batch> keys;
    const StateKey *key_ptrs[max_filter_batch];
    uint32_t found[max_filter_batch], slot_of[max_filter_batch];
    // The key hashes of the packets looked up (bit k of `hashed`), for the inserts of those
    // that make a state: hashed once.
    uint64_t hashes[max_filter_batch], hash_of[max_filter_batch], hashed = 0;
    static_assert(max_filter_batch <= 64, "one bit per packet in `hashed`");
    unsigned lookup[max_filter_batch], misses[max_filter_batch];
    unsigned nl = 0, nm = 0;
    constexpr uint32_t icmp_error_done = StateTable::no_slot - 1; // or dropped before lookup

    for (unsigned k = 0; k < n; k++) {
        const PacketDesc &d = descs[idx[k]];
        std::construct_at(&out[k]); // the caller's BurstArray
        // Inbound is where a packet first meets the filter; the outbound pass sees the same
        // bytes. The end host would discard a bad checksum, so it must not touch a state.
        if (dir == StateDirection::in && !l4_checksum_good(pkts[idx[k]], d)) [[unlikely]] {
            out[k] = {FilterVerdict::Action::drop, DropReason::proto_cksum};
            ctr_.drop(DropReason::proto_cksum);
            slot_of[k] = icmp_error_done;
            continue;
        }
        if (is_icmp_error(d)) {
            out[k] = icmp_error(frame_of(pkts[idx[k]]), d, dir);
            slot_of[k] = icmp_error_done;
            continue;
        }
        std::construct_at(&keys[nl], state_key(d, dir));
        // A twin that is live with this key is what the lookup would find.
        if (hints != nullptr && st.twin_matches(hints[k], keys[nl])) {
            slot_of[k] = hints[k];
            st.prefetch_other(hints[k]); // its word is loaded: a test of a bit
            continue;
        }
        slot_of[k] = StateTable::no_slot;
        key_ptrs[nl] = &keys[nl];
        lookup[nl++] = k;
    }
    if (nl != 0) st.lookup_bulk(key_ptrs, found, nl, hashes);
    for (unsigned j = 0; j < nl; j++) {
        slot_of[lookup[j]] = found[j];
        hash_of[lookup[j]] = hashes[j];
        hashed |= uint64_t(1) << lookup[j];
    }
    // In burst order, so that a connection's packets meet its state in the order they came.
    for (unsigned k = 0; k < n; k++) {
        const uint32_t slot = slot_of[k];
        if (slot == icmp_error_done) continue;
        if (slot != StateTable::no_slot &&
            !track(slot, dir, descs[idx[k]], descs[idx[k]].frame_len, now, out[k], memo, idx[k])) {
            // A forwarded packet's out pass will most likely lock the twin: start loading
            // it now, the rest of this pass and routing ahead of its use.
            if (dir == StateDirection::in) st.prefetch(out[k].twin);
            continue;
        }
        misses[nm++] = k;
    }
    if (nm != 0) rules(dir, pkts, descs, idx, ports, misses, nm, out, now, hash_of, hashed, near);
}

// Inlined into run_general(), its one caller: every packet that matches a state in the in
// pass, and every one the out pass's one step does not take, comes here. As a call it cost
// ~30 instructions a packet in argument passing and saved registers.
[[gnu::always_inline]] inline bool Filter::track(uint32_t slot, StateDirection dir,
                                                 const PacketDesc &d, uint32_t len, uint32_t now,
                                                 FilterVerdict &v, TrackMemo *memo, unsigned at) {
    StateTable &st = *dp_.states;
    bool by_other_key = false;
    detail::Slot *sl = st.lock_slot(slot);
    if (sl == nullptr) [[unlikely]] {
        // A translated state's second key, or deleted since the lookup (then evaluate the
        // packet as if there were no state).
        const uint32_t of = st.state_of_alias(slot);
        if (of == StateTable::no_slot || (sl = st.lock_slot(of)) == nullptr) return true;
        slot = of;
        by_other_key = true;
    }
    State &s = sl->state;
    uint32_t nat = StateTable::no_slot;
    if (sl->translated()) [[unlikely]] {
        // Packets in the state's own direction find it by its first key, the others by the
        // second (pf: inbound by the wire key, outbound by the stack key); each leaves with
        // the other key's addresses.
        if (by_other_key == (s.direction == dir)) {
            StateTable::unlock(*sl);
            return true;
        }
        nat = by_other_key ? slot : st.alias_of(slot);
        st.prefetch_key(nat); // for the rewrite, after the rest of the batch is tracked
    }
    if (owners_ && s.owner != worker_) [[unlikely]] {
        if (s.owner >= dp_.worker_count()) { // no_owner
            s.owner = uint8_t(worker_);      // a peer's state: claimed, under the lock
        } else {
            v.action = FilterVerdict::Action::hand_off;
            v.block_policy = s.owner; // owner()
            StateTable::unlock(*sl);
            return false;
        }
    }
    const bool forward = from_state_src(s, dir);
    TcpPeer &src = forward ? s.src : s.dst;
    TcpPeer &dst = forward ? s.dst : s.src;
    bool changed = false;
    bool pass = true;
    // The in pass's check, kept for the out pass when the state is unlocked: tcp_track()'s
    // stores are narrow, and a wide load of them at once would wait for them to retire.
    TrackMemo::Entry *record = nullptr;
    TcpTrackResult r;
    auto keep_check = [&] {
        if (record == nullptr) return;
        std::memcpy(&record->after[0], &src, sizeof src);
        std::memcpy(&record->after[1], &dst, sizeof dst);
        std::memcpy(&record->result, &r, sizeof r);
        memo->valid |= uint64_t(1) << at;
    };
    if (d.proto == proto_tcp && d.has_l4) {
        TrackMemo::Entry *e = memo != nullptr ? &memo->entry[at] : nullptr;
        if (e != nullptr && dir == StateDirection::out && (memo->valid >> at & 1) != 0 &&
            std::memcmp(&e->before[0], &src, sizeof src) == 0 &&
            std::memcmp(&e->before[1], &dst, sizeof dst) == 0) {
            // The twin's peers are what the in state's were: the same check, the same answer.
            src = e->after[0];
            dst = e->after[1];
            r = e->result;
        } else {
            if (e != nullptr && dir == StateDirection::in) {
                std::memcpy(&e->before[0], &src, sizeof src);
                std::memcpy(&e->before[1], &dst, sizeof dst);
                record = e;
            }
            tcp_track(src, dst, d, r);
        }
        changed = r.changed_for_peer;
        if (r.verdict == TcpVerdict::reuse) {
            // A new connection on the ports of a closed one: forget the old state and
            // evaluate the SYN as the first packet of a new connection (pf does the same).
            keep_check();
            StateTable::unlock(*sl);
            st.remove(slot, worker_);
            return true;
        }
        if (r.verdict == TcpVerdict::drop_syn_challenge_ack ||
            r.verdict == TcpVerdict::drop_rst_not_exact) {
            // pf answers a SYN on an established connection (and we, per RFC 5961, a RST
            // that is in the window but not exact) with an ACK carrying the right numbers.
            const TcpChallengeAck ca = tcp_challenge_ack(src, dst);
            v.action = FilterVerdict::Action::challenge_ack;
            v.reason = tcp_drop_reason(r.verdict);
            v.seq = ca.seq;
            v.ack = ca.ack;
            pass = false;
        } else if (tcp_verdict_drops(r.verdict)) {
            v.action = FilterVerdict::Action::drop;
            v.reason = tcp_drop_reason(r.verdict);
            pass = false;
        } else if (r.refresh_expire) {
            s.expire = now;
            s.timeout = r.timeout;
        }
    } else {
        s.timeout = pseudo_state_update(src, dst, d.proto, &changed);
        s.expire = now;
    }
    if (pass) {
        const int i = forward ? 0 : 1;
        s.packets[i]++;
        s.bytes[i] += len;
        v.slot = slot;
        v.twin = sl->twin_link();
        v.nat = nat;
    }
    if (changed) st.notify_update(slot, worker_);
    keep_check();
    StateTable::unlock(*sl);
    if (!pass) ctr_.drop(v.reason);
    return false;
}

FilterVerdict Filter::icmp_error(std::span<const uint8_t> frame, const PacketDesc &d,
                                 StateDirection dir) {
    const FilterVerdict no_state{FilterVerdict::Action::drop, DropReason::filter_icmp_no_state};
    const auto q = quoted_connection(frame, d, dir);
    if (!q) {
        ctr_.drop(no_state.reason);
        return no_state;
    }
    StateTable &st = *dp_.states;
    const uint32_t slot = st.lookup(q->key); // either key of a translated state
    State s;
    uint32_t generation = 0;
    if (slot == StateTable::no_slot || !st.read(slot, s, &generation)) {
        ctr_.drop(no_state.reason);
        return no_state;
    }
    if (!q->to_quoted_source) {
        // Matches a state but goes to another host than the one the quoted packet came from.
        const FilterVerdict wrong{FilterVerdict::Action::drop,
                                  DropReason::filter_icmp_wrong_destination};
        ctr_.drop(wrong.reason);
        return wrong;
    }
    bool fits = true;
    if (q->is_tcp) {
        const bool forward = from_state_src(s, q->dir);
        fits = quoted_tcp_seq_fits(forward ? s.src : s.dst, forward ? s.dst : s.src, q->tcp_seq);
    }
    if (!fits) {
        ctr_.drop(no_state.reason);
        return no_state;
    }
    FilterVerdict pass;
    if (st.translated(slot)) [[unlikely]] {
        // The quote is rewritten to the key it did not match: the other key if it matched
        // the state's own, the state's own if it matched the other.
        pass.nat = q->key == s.key ? st.alias_of(slot) : slot;
        pass.nat_error = true;
        // A slot reused since the copy: no translation rather than a wrong one.
        if (pass.nat == StateTable::no_slot || st.generation(slot) != generation) {
            ctr_.drop(no_state.reason);
            return no_state;
        }
    }
    return pass;
}

void Filter::rules(StateDirection dir, rte_mbuf *const *pkts, const PacketDesc *descs,
                   const uint16_t *idx, const uint16_t *ports, const unsigned *which, unsigned n,
                   FilterVerdict *out, uint32_t now, const uint64_t *hash_of, uint64_t hashed,
                   const uint32_t *near) {
    Ruleset *rs = dp_.ruleset.load(std::memory_order_acquire);
    // Most packets that reach the rules make a state, with the ids next in line: start
    // loading their id index buckets now, so that the inserts find them in cache.
    for (unsigned j = 0; j < n; j++)
        dp_.states->prefetch_id(dp_.cfg.node.hostid, next_id_ + uint64_t(j) * dp_.worker_count());
    FilterKey4 k4[max_filter_batch];
    FilterKey6 k6[max_filter_batch];
    const FilterKey4 *p4[max_filter_batch];
    const FilterKey6 *p6[max_filter_batch];
    unsigned w4[max_filter_batch], w6[max_filter_batch];
    uint32_t r4[max_filter_batch], r6[max_filter_batch];
    unsigned n4 = 0, n6 = 0;
    for (unsigned j = 0; j < n; j++) {
        const unsigned k = which[j];
        const PacketDesc &d = descs[idx[k]];
        uint16_t sport, dport;
        acl_ports(d, sport, dport);
        const uint8_t flags = d.has_l4 && d.proto == proto_tcp ? d.tcp.flags : 0;
        if (d.family == 4) {
            FilterKey4 &f = k4[n4];
            f = FilterKey4{d.proto, iface_dir(ports[k], dir), flags, 0, 0, 0, sport, dport};
            std::memcpy(&f.src, d.src.data(), 4);
            std::memcpy(&f.dst, d.dst.data(), 4);
            p4[n4] = &f;
            w4[n4++] = k;
        } else {
            FilterKey6 &f = k6[n6];
            f = FilterKey6{};
            f.proto = d.proto;
            f.iface_dir = iface_dir(ports[k], dir);
            f.tcp_flags = flags;
            std::memcpy(f.src, d.src.data(), 16);
            std::memcpy(f.dst, d.dst.data(), 16);
            f.sport = sport;
            f.dport = dport;
            p6[n6] = &f;
            w6[n6++] = k;
        }
    }
    if (n4 != 0) rs->classify4(p4, r4, n4);
    if (n6 != 0) rs->classify6(p6, r6, n6);
    // The last matching `match` rule that translates, in a context of its own.
    uint32_t m4[max_filter_batch], m6[max_filter_batch];
    const bool matches = rs->has_match_rules();
    if (matches && n4 != 0) rs->classify_match4(p4, m4, n4);
    if (matches && n6 != 0) rs->classify_match6(p6, m6, n6);

    auto decide = [&](unsigned k, uint32_t number, uint32_t match) {
        const PacketDesc &d = descs[idx[k]];
        const uint64_t *hash = (hashed >> k & 1) != 0 ? &hash_of[k] : nullptr;
        const uint32_t near_slot = near != nullptr ? near[idx[k]] : StateTable::no_slot;
        // The translation: the deciding rule's own, else the last matching match rule's
        // (ignored when a quick rule decided before it: pf stops there).
        uint16_t tr = CompiledRule::no_translation;
        const CompiledRule *decider = number == Ruleset::default_rule ? nullptr : &rs->rule(number);
        if (decider != nullptr) tr = dir == StateDirection::out ? decider->nat : decider->rdr;
        if (tr == CompiledRule::no_translation && match != Ruleset::default_rule &&
            !(decider != nullptr && decider->quick && match > number)) {
            const CompiledRule &m = rs->rule(match);
            tr = dir == StateDirection::out ? m.nat : m.rdr;
        }
        if (decider == nullptr) {
            // pf's default rule: pass without state, unless a match rule translates (a
            // translation lives in a state).
            if (tr != CompiledRule::no_translation)
                create_state(nullptr, tr, dir, ports[k], d, d.frame_len, now, out[k], hash,
                             near_slot);
            return;
        }
        const CompiledRule &rule = *decider;
        const uint32_t len = d.frame_len; // the mbuf's pkt_len: workers take one segment only
        RuleCounters &rc = rs->counters(worker_, number);
        rc.matches.inc();
        // pf logs the packet its rule decided, before any state is made: for `pass log` that
        // is the state-creating packet only, as the rest match the state.
        if (rule.log) [[unlikely]]
            log_packet(rule, dir, ports[k], pkts[idx[k]], d);
        if (rule.action == config::Action::block) {
            const bool ret = rule.block_policy != config::BlockPolicy::drop;
            out[k] = {ret ? FilterVerdict::Action::block_return : FilterVerdict::Action::drop,
                      DropReason::filter_block, uint8_t(rule.block_policy)};
            ctr_.drop(DropReason::filter_block);
            return;
        }
        rc.packets.inc();
        rc.bytes.add(len);
        if (rule.keep_state || tr != CompiledRule::no_translation) {
            if (create_state(&rule, tr, dir, ports[k], d, len, now, out[k], hash, near_slot))
                rc.states_created.inc();
        }
    };
    for (unsigned j = 0; j < n4; j++)
        decide(w4[j], r4[j], matches ? m4[j] : Ruleset::default_rule);
    for (unsigned j = 0; j < n6; j++)
        decide(w6[j], r6[j], matches ? m6[j] : Ruleset::default_rule);
}

void Filter::log_packet(const CompiledRule &rule, StateDirection dir, uint16_t port,
                        const rte_mbuf *m, const PacketDesc &d) {
    PflogWriter *w = dp_.pflog.get();
    if (w == nullptr) return; // no control.pflog: like pf without a pflog interface
    const PflogAction action =
        rule.action == config::Action::block ? PflogAction::drop : PflogAction::pass;
    const PflogDir pdir = dir == StateDirection::out ? PflogDir::out : PflogDir::in;
    const PflogMeta meta{rule.number, action, PflogReason::match, pdir, dp_.ports[port].name};
    if (!w->log(meta, d, frame_of(m))) ctr_.pflog_dropped.inc();
}

StateKey Filter::translated_key(const CompiledTranslation &t, const StateKey &key,
                                const PacketDesc &d, StateDirection dir) {
    uint64_t n = 0;
    switch (t.method) {
    case config::PoolMethod::none:
        break;
    case config::PoolMethod::round_robin:
        n = round_robin_++;
        break;
    case config::PoolMethod::random:
        n = rte_rand();
        break;
    case config::PoolMethod::source_hash:
        n = crc32c<16>(d.src.data(), 0x5f3759df);
        break;
    }
    StateKey k = key;
    // nat-to rewrites the packet's source, rdr-to its destination: in the key's convention
    // (addr[0] is the source inbound, the destination outbound) side 0 or 1 of the key.
    const bool source = t.kind == CompiledTranslation::Kind::nat;
    const int side = (dir == StateDirection::in) == source ? 0 : 1;
    k.addr[side] = t.address(t.size == 0 ? 0 : n % t.size);
    if (t.kind == CompiledTranslation::Kind::rdr && t.port_lo != 0 &&
        (key.proto == proto_tcp || key.proto == proto_udp))
        k.port[side] = t.port_lo;
    return k;
}

bool Filter::create_state(const CompiledRule *rule, uint16_t translation, StateDirection dir,
                          uint16_t port, const PacketDesc &d, uint32_t len, uint32_t now,
                          FilterVerdict &v, const uint64_t *hash, uint32_t near) {
    auto refuse = [&](DropReason why) {
        v.action = FilterVerdict::Action::drop;
        v.reason = why;
        ctr_.drop(why);
        return false;
    };
    Ruleset *rs = dp_.ruleset.load(std::memory_order_relaxed);
    std::atomic<uint32_t> *live = rule != nullptr ? &rs->live_states(rule->number) : nullptr;
    if (rule != nullptr && rule->max_states != 0 &&
        live->load(std::memory_order_relaxed) >= rule->max_states)
        return refuse(DropReason::filter_state_limit);
    State s;
    s.key = state_key(d, dir);
    s.owner = uint8_t(worker_);
    s.creatorid = dp_.cfg.node.hostid;
    s.rule = rule != nullptr ? rule->number : no_rule;
    s.creation = s.expire = now;
    s.iface = port;
    s.direction = dir;
    s.log = rule != nullptr && rule->log ? 1 : 0;
    state_init_peers(s, d);
    s.packets[0] = 1;
    s.bytes[0] = len;
    StateTable &st = *dp_.states;
    uint32_t slot;
    StateTable::InsertResult r = StateTable::InsertResult::exists;
    if (translation == CompiledRule::no_translation) [[likely]] {
        r = st.insert_new(s, worker_, &slot, next_id_, dp_.worker_count(), nullptr, nullptr, hash,
                          near);
    } else {
        const CompiledTranslation &t = rs->translation(translation);
        if (t.family != d.family) return refuse(DropReason::nat_family);
        if (!st.translations()) return refuse(DropReason::nat_no_room);
        StateKey other = translated_key(t, s.key, d, dir);
        // nat-to picks a source port (an ICMP echo id) from the pool's range that no state
        // holds with this key: from a random place in this worker's share of the range
        // (port = lo + worker + k * workers), so that workers never race for one.
        // (ICMP errors never reach the rules: icmp_error() takes them.)
        const bool ports = d.has_l4 && (d.proto == proto_tcp || d.proto == proto_udp ||
                                        d.proto == proto_icmp || d.proto == proto_icmpv6);
        const int side = dir == StateDirection::in ? 0 : 1; // the source's side (nat is out)
        const bool choose = t.kind == CompiledTranslation::Kind::nat && ports && !t.static_port;
        const unsigned workers = dp_.worker_count();
        const uint32_t range = choose ? uint32_t(t.port_hi) - t.port_lo + 1 : 1;
        const uint32_t share =
            choose ? (range > worker_ ? (range - worker_ - 1) / workers + 1 : 0) : 1;
        if (share == 0) return refuse(DropReason::nat_exhausted);
        constexpr uint32_t max_tries = 256;
        const uint32_t start = choose ? uint32_t(rte_rand() % share) : 0;
        const uint32_t tries = share < max_tries ? share : max_tries;
        bool inserted = false;
        for (uint32_t j = 0; j < tries && !inserted; j++) {
            if (choose) {
                const uint16_t p = uint16_t(t.port_lo + worker_ + ((start + j) % share) * workers);
                other.port[side] = p;
                if (d.proto == proto_icmp || d.proto == proto_icmpv6) other.port[1 - side] = p;
                if (st.lookup(other) != StateTable::no_slot) continue; // in use
            }
            bool taken = false;
            r = st.insert_new(s, worker_, &slot, next_id_, dp_.worker_count(), &other, &taken, hash,
                              near);
            if (r == StateTable::InsertResult::exists && taken) continue;
            inserted = true;
        }
        if (!inserted) return refuse(DropReason::nat_exhausted);
    }
    switch (r) {
    case StateTable::InsertResult::ok:
        v.slot = slot;
        if (translation != CompiledRule::no_translation) v.nat = st.alias_of(slot);
        if (live != nullptr) live->fetch_add(1, std::memory_order_relaxed);
        return true;
    case StateTable::InsertResult::full:
        return refuse(DropReason::filter_state_limit);
    case StateTable::InsertResult::exists:
        break;
    }
    // Another lcore made this state (or a peer's copy arrived) between our lookup and
    // insert: the packet is dropped and its sender retransmits into the state.
    return refuse(DropReason::filter_state_collision);
}

} // namespace syncwall::dp
