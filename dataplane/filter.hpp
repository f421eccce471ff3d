// The stateful filter stage of a worker: pf's pf_test() for a batch of packets.
//
// Theory of operation: the Worker calls run() twice per forwarded packet, as pf filters
// every packet inbound on its ingress interface and, if forwarded, outbound on its egress
// interface. run() looks the batch up in the state table in bulk; a packet that matches a
// state skips the rules but must fit the state (TCP windows, pseudo-states), and an ICMP
// error passes only if the connection it quotes has a state. Packets that match no state go
// through the ruleset (one bulk rte_acl classification); a deciding `pass ... keep state`
// rule creates a state, `block` drops (or asks the main lcore for a RST or ICMP unreachable
// with `block return`), and no matching rule means pf's default: pass without state.
// A deciding rule with `log` also queues the packet for the pflog file (pflog_writer.hpp).
//
// Twins (pf's state key `reverse` link): the in pass reports, per packet, the state it
// matched or made and that state's twin hint, the slot last matched for the reversed key.
// The worker hands the hints to the out pass, which checks a hinted slot (live, same key)
// instead of looking the key up: one hash lookup per forwarded packet instead of two. The in
// pass prefetches each hinted slot as soon as it reads the hint, so that it loads while the
// rest of the pass runs and the packet is routed. The worker links the two states once both
// passes have seen them.
//
// One window check for a forwarded TCP packet: tcp_track() reads nothing but the two peers
// and the packet's TCP header, so the in pass keeps, per packet, the peers it handed to
// tcp_track() and what came back (TrackMemo, the worker's for one burst), and the out pass
// gives a twin whose peers are byte for byte the in state's before that packet the same
// result without checking again. A connection's two states see the same packets in the same
// order, so that is the rule for forwarded TCP; where they differ (a packet the in state
// passed and routing then dropped, a peer's update to one of them, a state made later), the
// twin is checked as pf checks it. Each state is still updated, counted and synced as its
// own, as pf's are. The out pass takes such packets in one step each (track_twin(): the
// twin's key known (see Filter::run), its lock, the peers compared, the outcome
// stored, the counters) and hands the rest to the general path (the hint check, the bulk
// lookup, track(), the rules), with every later packet of their connections: a
// connection's packets still meet its states in burst order. An ICMP error quotes another
// connection, whose state it reads: every packet after one takes the general path too.
// Counted per worker (LcoreCounters::twin_steps).
//
// Owners (state.hpp, State::owner): with more than one worker, a matched state that another
// worker owns is not tracked here; the verdict says `hand_off` and the worker passes the
// packet to the owner. A state nobody owns yet (a peer's) is claimed by the first worker
// that matches it. The owner check is made under the slot lock, so two claimants have one
// winner. ICMP errors read the state they quote without writing it: any worker passes them.
//
// Runs on the worker's lcore only; touches shared structures through the state table's
// per-state lock and the ruleset read under RCU.
#pragma once

#include "dataplane/dataplane.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/state.hpp"
#include "dataplane/tcp_tracker.hpp"

#include <cstdint>
#include <type_traits>

struct rte_mbuf;

namespace syncwall::dp {

struct CompiledTranslation;

struct FilterVerdict {
    // challenge_ack: dropped, and a bare ACK with `seq`/`ack` goes back to the sender.
    // hand_off: the state belongs to the worker in `block_policy` (owner()), which is to
    // filter the packet (the packet is untouched, nothing was counted).
    enum class Action : uint8_t { pass, drop, block_return, challenge_ack, hand_off };
    Action action = Action::pass;
    DropReason reason = DropReason::filter_block;
    // block_return: what the rule answers with (config::BlockPolicy); hand_off: the owning
    // worker (one byte shared, so that a verdict stays 24 bytes, written for every packet).
    uint8_t block_policy = 0;
    bool nat_error = false;    // `nat` applies to an ICMP error's quote (translate_icmp_error)
    uint32_t seq = 0, ack = 0; // challenge_ack
    uint32_t slot = no_slot;   // the state matched or made (pass only)
    uint32_t twin = no_slot;   // that state's twin hint (matched states only)
    uint32_t nat = no_slot;    // translated: rewrite the packet to state(nat).key (nat.hpp)
    static constexpr uint32_t no_slot = 0xffffffffu;

    unsigned owner() const { return block_policy; }
};
static_assert(sizeof(FilterVerdict) == 24);

// The in pass's TCP window checks of one burst, for its out pass (see the top of this file).
// Owned by the caller of both passes; `valid` starts at 0 for each burst. Entries are
// written with memcpy, which makes their objects (aggregates of trivially copyable parts),
// and read only where `valid` says they were.
struct TrackMemo {
    struct Entry {
        TcpPeer before[2]; // src and dst as tcp_track() was given them
        TcpPeer after[2];  // and left them
        TcpTrackResult result;
    };
    uint64_t valid = 0; // bit i: entry[i] holds packet i's (i as in descs[i])
    BurstArray<Entry, max_burst> entry;
    static_assert(max_burst <= 64, "one bit per packet in `valid`");
    static_assert(std::is_aggregate_v<Entry> && std::is_trivially_copyable_v<Entry>);
};

class Filter {
  public:
    Filter(Dataplane &dp, unsigned worker);

    // Filter n packets in direction `dir`. For packet k: pkts[idx[k]] / descs[idx[k]], on
    // port ports[k] (our index), verdict into out[k]. n <= 64. `now` is the table clock.
    // hints[k] (optional): a slot that may hold packet k's state (an in-pass twin).
    // near[idx[k]] (optional): the slot packet k's new state should lie near (the in-pass
    // state of a forwarded packet, its twin-to-be), or StateTable::no_slot.
    // memo (optional): the in pass records its TCP window checks there, the out pass of the
    // same burst takes a twin's from there when the twin's peers allow (TrackMemo).
    void run(StateDirection dir, rte_mbuf *const *pkts, const PacketDesc *descs,
             const uint16_t *idx, const uint16_t *ports, unsigned n, FilterVerdict *out,
             uint32_t now, const uint32_t *hints = nullptr, const uint32_t *near = nullptr,
             TrackMemo *memo = nullptr);

  private:
    // Match a packet against the state in `slot` (a state's slot or the alias slot of a
    // translated state's second key); the verdict goes into `v`, written field by field (a
    // returned 12-byte verdict is built on the stack byte-wise and reloaded as words: a
    // store-forwarding stall per packet). Returns true when the packet is to be evaluated as
    // the first of a new connection instead: the state is gone, was reused (and is removed
    // here), or is a translated state found by the key of the other direction (pf's rule:
    // inbound packets find wire keys, outbound ones stack keys). `memo`, `at`: run()'s memo
    // and the packet's index in descs.
    bool track(uint32_t slot, StateDirection dir, const PacketDesc &d, uint32_t len, uint32_t now,
               FilterVerdict &v, TrackMemo *memo, unsigned at);
    // run() for the packets the one step does not take, and for the in pass: the hint
    // checks and bulk lookup, track() in burst order, the rules for the rest.
    void run_general(StateDirection dir, rte_mbuf *const *pkts, const PacketDesc *descs,
                     const uint16_t *idx, const uint16_t *ports, unsigned n, FilterVerdict *out,
                     uint32_t now, const uint32_t *hints, const uint32_t *near, TrackMemo *memo);
    // The out pass's one step for a forwarded TCP packet (see the top of this file): the
    // twin hinted in `slot` holds the packet's outbound key, is ours and untranslated, and its
    // peers are what the in state's were before the in pass's check, which passed the packet
    // (memo's entry `at`). Then the twin takes that check's outcome, its counters and expiry,
    // into `v` (constructed here), exactly as track() would, and the answer is true. False,
    // with nothing changed and `v` untouched, when any of that does not hold.
    // `in_slot`: the packet's in state, which the twin must link back to (why that says its
    // key: run()), or no_slot to compare the twin's key with the packet's fields instead.
    bool track_twin(uint32_t slot, const PacketDesc &d, uint32_t now, const TrackMemo &memo,
                    unsigned at, uint32_t in_slot, FilterVerdict &v);
    FilterVerdict icmp_error(std::span<const uint8_t> frame, const PacketDesc &d,
                             StateDirection dir);
    // Returns true when the state was made; otherwise the drop goes into `v` (as track()).
    // `rule`: the deciding rule, or nullptr for pf's default rule (a state made only because a
    // match rule translates). `translation`: the index of the translation to apply, or
    // CompiledRule::no_translation. `hash`: the state key's hash from run()'s lookup, or
    // nullptr. `near`: run()'s near[idx[k]].
    bool create_state(const CompiledRule *rule, uint16_t translation, StateDirection dir,
                      uint16_t port, const PacketDesc &d, uint32_t len, uint32_t now,
                      FilterVerdict &v, const uint64_t *hash, uint32_t near);
    // The translated key of a new state whose untranslated key is `key`, with the address
    // picked from the pool; the port is the caller's to choose (see create_state).
    StateKey translated_key(const CompiledTranslation &t, const StateKey &key, const PacketDesc &d,
                            StateDirection dir);
    void rules(StateDirection dir, rte_mbuf *const *pkts, const PacketDesc *descs,
               const uint16_t *idx, const uint16_t *ports, const unsigned *which, unsigned n,
               FilterVerdict *out, uint32_t now, const uint64_t *hash_of, uint64_t hashed,
               const uint32_t *near);
    // The deciding rule has `log`: queue the packet for the pflog file, if there is one.
    [[gnu::cold]] void log_packet(const CompiledRule &rule, StateDirection dir, uint16_t port,
                                  const rte_mbuf *m, const PacketDesc &d);

    Dataplane &dp_;
    unsigned worker_;
    bool owners_; // more than one worker: states are tracked by their owner only
    LcoreCounters &ctr_;
    uint64_t next_id_;
    uint64_t round_robin_ = 0; // translation pools' round-robin position (this worker's)
};

} // namespace syncwall::dp
