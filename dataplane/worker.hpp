// The worker loop: rx burst -> parse -> (filter) -> route -> neighbour -> tx burst.
//
// Theory of operation: one Worker per worker lcore, launched by app/main with
// rte_eal_remote_launch. It polls rx queue `index` of every data port, and transmits on
// tx queue `index` of every data port. It never blocks, allocates or takes a lock: packets
// it cannot finish (ARP, traffic for us, unresolved next hops, ICMP errors to generate)
// go to the main lcore on its single-producer punt ring. Worker 0 also drains the ports'
// control tx rings (frames the main lcore built) into its tx queue.
//
// Stages a burst goes through, in order:
//   1. parse every frame once (packet.hpp); malformed frames are counted drops;
//   2. Ethernet checks, ARP and link-local multicast to the punt ring; fragments to the
//      worker's reassembly (reassembly.hpp), a whole datagram going on in their place;
//   3. the stateful filter, inbound on the ingress port (filter.hpp);
//   4. bulk FIB lookups; local destinations to the punt ring; TTL and MTU checks;
//   5. the filter again, outbound on the egress port; neighbour, rewrite, tx buffer (a
//      reassembled datagram leaves refragmented where it must).
//
// Owners (docs/ownership.md): with several workers, a packet whose state another worker
// owns (a flow whose directions arrive on different queues, a NAT reply, a peer's state
// claimed elsewhere) is handed to that worker, untouched, on the ring from this worker to
// it (Dataplane::handoff), at stage 3 or, when only its outbound state is the other's, at
// stage 5. Each poll starts with the packets handed to this worker: parsed again and
// filtered from the stage they were handed at, as if received here.
#pragma once

#include "dataplane/dataplane.hpp"
#include "dataplane/filter.hpp"
#include "dataplane/idle.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/reassembly.hpp"

#include <array>
#include <cstdint>

struct rte_mbuf;

namespace syncwall::dp {

class Worker {
  public:
    Worker(Dataplane &dp, unsigned index);
    Worker(const Worker &) = delete;
    Worker &operator=(const Worker &) = delete;

    // Poll until dp.stopping is set. Runs on the worker's lcore.
    void run();
    // One pass over every queue this worker owns; returns packets received. For tests and
    // for run().
    unsigned poll_once();
    // Process a burst received on `port` (our port index). Takes ownership of the mbufs.
    void process_burst(uint16_t port, rte_mbuf **pkts, uint16_t n);
    // Transmit everything buffered.
    void flush();

  private:
    struct TxBuffer {
        uint16_t n = 0;
        std::array<rte_mbuf *, 2 * max_burst> pkts{};
    };

    // Stages 3-5 for pkts[idx[0..n)], parsed into desc_, received on `port`; stage 3 is
    // skipped for packets handed over after their inbound pass (`inbound_done`).
    void filter_and_forward(uint16_t port, rte_mbuf **pkts, const uint16_t *idx, unsigned n,
                            bool inbound_done);
    // Pass `m` to worker `owner`, which owns its state; counted (handed_off, or the drop).
    void hand_off(rte_mbuf *m, unsigned owner, uint16_t in_port, bool inbound_done);
    // Take what the other workers handed to this one (at most a burst from each); returns
    // how many packets.
    unsigned receive_handed();
    void drop(rte_mbuf *m, DropReason r);
    void punt(rte_mbuf *m, PuntKind kind, uint16_t in_port, uint32_t next_hop = 0,
              config::BlockPolicy policy = config::BlockPolicy::drop);
    // Queue `m` for `port`'s tx burst at the end of the poll (every forwarded packet).
    void transmit(uint16_t port, rte_mbuf *m) {
        TxBuffer &b = tx_[port];
        if (b.n == b.pkts.size()) flush();
        b.pkts[b.n++] = m;
    }
    // Hand pkts[0..n) to queue `queue` of `port` and count what it took (packets, bytes);
    // returns how many it took, the rest stay the caller's.
    uint16_t send_counted(uint16_t port, uint16_t queue, rte_mbuf **pkts, uint16_t n);
    // Point the states each forwarded packet matched in and out at each other (twins).
    // hints[k]: what the in state's link read in the in pass (the out pass's hint); the out
    // state's is in its verdict (FilterVerdict::twin), so that neither is loaded again.
    void link_twins(const uint16_t *out_idx, const FilterVerdict *out_verdict,
                    const uint32_t *in_slot, const uint32_t *hints, unsigned nout);
    // Rewrite a packet whose verdict names a translated state (v.nat): nat.hpp.
    void translate(const FilterVerdict &v, rte_mbuf *m, PacketDesc &d, StateDirection dir);
    // Apply a filter verdict: true if the packet goes on; otherwise it is consumed.
    // `inbound_done`: the verdict is the outbound pass's (for a hand-off). A pass, nearly
    // every packet's, costs a compare here; the rest is act_on()'s.
    bool apply(const FilterVerdict &v, rte_mbuf *m, const PacketDesc &d, uint16_t in_port,
               bool inbound_done) {
        if (v.action == FilterVerdict::Action::pass) [[likely]]
            return true;
        act_on(v, m, d, in_port, inbound_done);
        return false;
    }
    // A verdict other than pass: hand the packet off, drop it, or punt what answers it.
    void act_on(const FilterVerdict &v, rte_mbuf *m, const PacketDesc &d, uint16_t in_port,
                bool inbound_done);
    // Route decision for a packet that passed inbound: the egress port if it is to be
    // forwarded; otherwise -1, and the packet is consumed (punted or dropped). (An int, not an
    // optional: GCC builds a returned optional<uint16_t> on the stack from two narrow stores
    // and reloads it whole, which stalls store forwarding on every packet.)
    // `reassembled`: Reassembly::is_reassembled(m), asked once by the caller for both.
    int route_one(rte_mbuf *m, const PacketDesc &d, uint16_t in_port, RouteTable::NextHopId id,
                  bool reassembled);
    // Rewrite for the next hop's `mac` and transmit on `egress` (route_one()'s port), or punt
    // for resolution when the neighbour is unknown (mac == nullptr).
    void forward(rte_mbuf *m, const PacketDesc &d, uint16_t in_port, RouteTable::NextHopId nh,
                 uint16_t egress, const Mac *mac, bool reassembled);
    // Split a reassembled datagram for the egress MTU and send (or punt) each fragment.
    void forward_reassembled(rte_mbuf *m, const PacketDesc &d, uint16_t in_port,
                             RouteTable::NextHopId nh, const Mac *mac);
    // How a datagram leaves through a port of `mtu`: 0 whole, N in fragments of N payload
    // bytes, -1 not at all (too big: DF, or IPv6 fragments above the MTU).
    int egress_fragment_size(const rte_mbuf *m, const PacketDesc &d, uint16_t mtu) const;
    // Worker 0: the main lcore's frames (CARP adverts, ARP/ND, ICMP errors) go to each data
    // port's queue ahead of this poll's forwarded packets; what a full queue refuses waits
    // here for the next poll instead of being dropped (held_ctl_), and the port's control
    // ring is read again once they are out.
    unsigned send_control_frames();
    // At exit: one last try for the held control frames, then free what is left.
    void release_control_frames();

    Dataplane &dp_;
    unsigned index_;
    LcoreCounters &ctr_;
    IdleBackoff idle_;
    Filter filter_;
    Reassembly reasm_;
    std::array<TxBuffer, max_ports> tx_{};
    std::array<TxBuffer, max_ports> held_ctl_{};
    std::array<PacketDesc, max_burst> desc_{};
};

} // namespace syncwall::dp
