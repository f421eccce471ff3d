// A worker's fragment reassembly: the EAL glue around FragmentTable (fragment.hpp).
//
// Theory of operation: each Worker owns one Reassembly, used from its lcore only. The
// worker hands it every IPv4/IPv6 fragment addressed to our MAC, before the filter. The
// fragment's mbuf is held (its payload stays where the NIC put it) until its datagram is
// whole, refused or timed out. A whole datagram is copied into one mbuf of this worker's
// reassembly pool (65535-byte buffers, so a datagram is one segment and every later stage
// reads it as it reads any frame); the fragments are freed. Its mbuf's private area says
// how it was fragmented, for refragmentation on egress (IPv4 to the egress MTU unless DF,
// IPv6 to the largest fragment received, as pf does).
//
// Fragments meet on one worker because the ports hash fragments by addresses alone: the RSS
// types include the FRAG_* ones, which NICs hash over the IP addresses only.
#pragma once

#include "dataplane/counters.hpp"
#include "dataplane/fragment.hpp"
#include "dataplane/packet.hpp"

#include <rte_mbuf.h>

#include <cstdint>

namespace syncwall::dp {

// In the private area of a reassembled datagram's mbuf.
struct ReassembledInfo {
    uint16_t header_len = 0;     // frame bytes before the fragmentable part
    uint16_t next_header_at = 0; // IPv6: the byte that names the fragmentable part's header
    uint16_t max_fragment = 0;   // largest fragment payload received
    uint8_t family = 0;
    uint8_t pad = 0;
    uint32_t id = 0; // the fragments' identification
};
static_assert(sizeof(ReassembledInfo) == 12);

class Reassembly {
  public:
    // The pool of worker `worker`'s reassembled datagrams (made once, by the Dataplane,
    // which frees it after every worker and every ring that may hold its buffers).
    static rte_mempool *make_pool(unsigned worker, int socket);
    // `pool`: make_pool()'s, not owned; `capacity`: fragments held at most; `timeout`:
    // seconds (timeouts.frag).
    Reassembly(rte_mempool *pool, uint32_t capacity, uint32_t timeout, LcoreCounters &ctr);
    ~Reassembly();
    Reassembly(const Reassembly &) = delete;
    Reassembly &operator=(const Reassembly &) = delete;

    // Take the fragment `m` (parsed into `d`, d.is_fragment). Returns the reassembled
    // datagram when `m` completed one, else nullptr (held, or dropped and counted).
    rte_mbuf *add(rte_mbuf *m, const PacketDesc &d, uint32_t now);
    // Discard datagrams past the timeout; cheap when nothing is held.
    void expire(uint32_t now) {
        if (table_.held() != 0) {
            table_.expire(now);
            ctr_.frags_held.set(table_.held());
        }
    }

    // Whether `m` is a reassembled datagram (made by any worker's Reassembly). Any worker's:
    // a datagram may be handed to the worker that owns its state. Only the reassembly pools
    // give their mbufs a private area. Asked of the pool (the mbuf's first line, then the
    // pool's own header, in cache for every packet of the pool), not of the mbuf's
    // priv_size, which lies on its second line: a cache miss per packet. Inline: the worker
    // asks it of every forwarded packet, twice.
    static bool is_reassembled(const rte_mbuf *m) {
        return rte_pktmbuf_priv_size(m->pool) == info_size;
    }
    static const ReassembledInfo &info(const rte_mbuf *m);

    // The private area of a reassembled datagram's mbuf (ReassembledInfo, aligned).
    static constexpr uint16_t info_size = (sizeof(ReassembledInfo) + 7) & ~7u;

  private:
    static void release(void *ctx, void *handle, DropReason why);

    LcoreCounters &ctr_;
    rte_mempool *pool_ = nullptr;
    FragmentTable table_;
    FragmentTable::Whole whole_;
};

} // namespace syncwall::dp
