#include "dataplane/reassembly.hpp"

#include <rte_errno.h>
#include <rte_mbuf.h>

#include <cstring>
#include <stdexcept>
#include <string>

namespace syncwall::dp {

namespace {

// Datagrams being built or forwarded at once per worker: about a burst (4 MiB).
// They are copied out (or refragmented into ordinary mbufs) as they leave.
constexpr unsigned reassembly_buffers = 63;

} // namespace

rte_mempool *Reassembly::make_pool(unsigned worker, int socket) {
    const std::string name = "syncwall_reasm" + std::to_string(worker);
    rte_mempool *pool = rte_pktmbuf_pool_create(name.c_str(), reassembly_buffers, 0, info_size,
                                                uint16_t(max_reassembled_ip_len), socket);
    if (pool == nullptr)
        throw std::runtime_error("cannot create the reassembly pool of worker " +
                                 std::to_string(worker) + ": " + rte_strerror(rte_errno) +
                                 " (raise -m in dpdk.eal_args)");
    return pool;
}

Reassembly::Reassembly(rte_mempool *pool, uint32_t capacity, uint32_t timeout, LcoreCounters &ctr)
    : ctr_(ctr), pool_(pool), table_(capacity, timeout, &Reassembly::release, this) {}

Reassembly::~Reassembly() {
    table_.clear(DropReason::frag_timeout); // the worker has stopped: let every fragment go
}

void Reassembly::release(void *ctx, void *handle, DropReason why) {
    auto *self = static_cast<Reassembly *>(ctx);
    self->ctr_.drop(why);
    rte_pktmbuf_free(static_cast<rte_mbuf *>(handle));
}

static_assert(Reassembly::info_size == RTE_ALIGN(sizeof(ReassembledInfo), RTE_MBUF_PRIV_ALIGN));

const ReassembledInfo &Reassembly::info(const rte_mbuf *m) {
    return *static_cast<const ReassembledInfo *>(rte_mbuf_to_priv(const_cast<rte_mbuf *>(m)));
}

rte_mbuf *Reassembly::add(rte_mbuf *m, const PacketDesc &d, uint32_t now) {
    const std::span<const uint8_t> frame(rte_pktmbuf_mtod(m, const uint8_t *), m->data_len);
    FragmentInfo fi;
    if (auto bad = fragment_info(frame, d, fi)) {
        ctr_.drop(*bad);
        rte_pktmbuf_free(m);
        return nullptr;
    }
    const FragmentTable::Result r =
        table_.add(fi, frame.data(), frame.data() + fi.payload_at, m, now);
    rte_mbuf *out = nullptr;
    switch (r.outcome) {
    case FragmentTable::Outcome::held:
        break;
    case FragmentTable::Outcome::dropped:
        ctr_.drop(r.reason);
        rte_pktmbuf_free(m);
        break;
    case FragmentTable::Outcome::complete: {
        table_.take(r.datagram, whole_);
        out = rte_pktmbuf_alloc(pool_);
        if (out == nullptr) {
            table_.discard(r.datagram, DropReason::frag_no_buffer);
            break;
        }
        out->data_off = 0; // the whole 65535-byte buffer
        uint8_t *buf = rte_pktmbuf_mtod(out, uint8_t *);
        std::memcpy(buf, whole_.head, whole_.header_len);
        for (unsigned i = 0; i < whole_.count; i++) {
            const FragmentPiece &p = whole_.pieces[i];
            std::memcpy(buf + whole_.header_len + p.offset, p.data, p.len);
        }
        const std::size_t len = finish_reassembled_headers(buf, d.l3_offset, whole_.family,
                                                           whole_.header_len, whole_.next_header_at,
                                                           whole_.next_header, whole_.payload_len);
        out->data_len = uint16_t(len);
        out->pkt_len = uint32_t(len);
        out->port = m->port;
        auto *ri = static_cast<ReassembledInfo *>(rte_mbuf_to_priv(out));
        *ri = ReassembledInfo{
            whole_.header_len, whole_.next_header_at, whole_.max_fragment, whole_.family, 0,
            whole_.id};
        for (unsigned i = 0; i < whole_.count; i++)
            rte_pktmbuf_free(static_cast<rte_mbuf *>(whole_.pieces[i].handle));
        table_.finish(r.datagram);
        ctr_.frag_reassembled.inc();
        break;
    }
    }
    ctr_.frags_held.set(table_.held());
    return out;
}

} // namespace syncwall::dp
