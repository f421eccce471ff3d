#include "dataplane/pflog.hpp"

#include <algorithm>
#include <cstring>

namespace syncwall::dp {

void pflog_fill_header(PflogHeader &h, const PflogMeta &meta, const PacketDesc &d) {
    std::memset(&h, 0, sizeof(h));
    h.length = pflog_hdrlen;
    h.af = h.naf = d.family == 6 ? pflog_af_inet6 : pflog_af_inet;
    h.action = uint8_t(meta.action);
    h.reason = uint8_t(meta.reason);
    const std::size_t name_len = std::min(meta.ifname.size(), sizeof(h.ifname) - 1);
    if (name_len != 0) std::memcpy(h.ifname, meta.ifname.data(), name_len);
    h.rulenr.set(meta.rule);
    h.subrulenr.set(pflog_no_subrule);
    h.uid = pflog_no_uid;
    h.pid = pflog_no_pid;
    h.dir = uint8_t(meta.dir);
    const std::size_t alen = d.family == 6 ? 16 : 4;
    std::memcpy(h.saddr, d.src.data(), alen);
    std::memcpy(h.daddr, d.dst.data(), alen);
    // pf logs the ports of its state key: TCP/UDP ports, the ICMP echo id; else nothing.
    if (d.has_l4) {
        h.sport.set(d.sport);
        h.dport.set(d.dport);
    }
}

void pflog_fill_record(PflogRecord &r, const PflogMeta &meta, const PacketDesc &d,
                       std::span<const uint8_t> frame, uint64_t tsc) {
    pflog_fill_header(r.hdr, meta, d);
    r.tsc = tsc;
    r.reserved = 0;
    // The parser vouches that l3_offset + l3_total_len fits the frame; clamp all the same.
    const std::size_t start = std::min<std::size_t>(d.l3_offset, frame.size());
    const std::size_t ip_len = std::min<std::size_t>(d.l3_total_len, frame.size() - start);
    r.wire_len = uint32_t(ip_len);
    r.caplen = uint16_t(std::min(ip_len, pflog_snaplen));
    if (r.caplen != 0) std::memcpy(r.data, frame.data() + start, r.caplen);
}

} // namespace syncwall::dp
