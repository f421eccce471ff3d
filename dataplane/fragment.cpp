#include "dataplane/fragment.hpp"

#include "dataplane/byte_order.hpp"

#include <algorithm>
#include <cstring>

namespace syncwall::dp {

namespace {

std::optional<DropReason> ipv4_fragment_info(std::span<const uint8_t> frame, const PacketDesc &d,
                                             FragmentInfo &out) {
    const uint8_t *ip = frame.data() + d.l3_offset;
    const uint16_t fo = load_be16(ip + 6);
    out.key.family = 4;
    out.key.proto = d.proto;
    out.key.id = load_be16(ip + 4);
    out.offset = uint32_t(fo & 0x1fff) * 8;
    out.more = (fo & 0x2000) != 0;
    out.payload_at = uint16_t(d.l3_offset + d.l3_header_len);
    out.header_len = out.payload_at;
    out.len = uint16_t(d.l3_total_len - d.l3_header_len);
    return std::nullopt;
}

// The parser has walked this chain already (lengths checked); find the Fragment header that
// makes the packet a fragment (not an atomic one, RFC 6946).
std::optional<DropReason> ipv6_fragment_info(std::span<const uint8_t> frame, const PacketDesc &d,
                                             FragmentInfo &out) {
    const uint8_t *ip = frame.data() + d.l3_offset;
    const uint32_t end = d.l3_total_len;
    uint8_t nh = ip[6];
    uint32_t off = 40, nh_at = 6;
    for (int count = 0; count < ipv6_max_ext_headers; count++) {
        if (end - off < 8) return DropReason::frag_bad;
        uint32_t len;
        if (nh == ipv6_ext_fragment) {
            const uint16_t offset_m = load_be16(ip + off + 2);
            if ((offset_m & 0xfff9) != 0) {
                out.key.family = 6;
                out.key.id = load_be32(ip + off + 4);
                out.offset = offset_m & 0xfff8;
                out.more = (offset_m & 1) != 0;
                out.next_header = ip[off];
                out.next_header_at = uint16_t(d.l3_offset + nh_at);
                out.header_len = uint16_t(d.l3_offset + off);
                out.payload_at = uint16_t(out.header_len + 8);
                out.len = uint16_t(end - off - 8);
                return std::nullopt;
            }
            len = 8;
        } else if (nh == ipv6_ext_hop_by_hop || nh == ipv6_ext_routing ||
                   nh == ipv6_ext_dest_opts) {
            len = (uint32_t(ip[off + 1]) + 1) * 8;
        } else if (nh == ipv6_ext_auth) {
            len = (uint32_t(ip[off + 1]) + 2) * 4;
        } else {
            return DropReason::frag_bad;
        }
        if (len > end - off) return DropReason::frag_bad;
        nh_at = off;
        nh = ip[off];
        off += len;
    }
    return DropReason::frag_bad;
}

} // namespace

std::optional<DropReason> fragment_info(std::span<const uint8_t> frame, const PacketDesc &d,
                                        FragmentInfo &out) {
    out = FragmentInfo{};
    out.key.src = d.src;
    out.key.dst = d.dst;
    auto bad =
        d.family == 4 ? ipv4_fragment_info(frame, d, out) : ipv6_fragment_info(frame, d, out);
    if (bad) return bad;
    // pf_fillup_fragment's rules: no empty fragments, all but the last a multiple of 8
    // bytes, nothing beyond the largest datagram (here: the largest frame an mbuf holds).
    if (out.len == 0 || (out.more && (out.len & 7) != 0)) return DropReason::frag_bad;
    if (uint32_t(out.header_len) + out.offset + out.len > max_reassembled_ip_len)
        return DropReason::frag_bad;
    return std::nullopt;
}

FragmentTable::FragmentTable(uint32_t capacity, uint32_t timeout, Release release, void *ctx)
    : capacity_(std::max<uint32_t>(capacity, 1)), timeout_(timeout), release_(release), ctx_(ctx),
      dgrams_(capacity_), pieces_(capacity_) {
    for (uint32_t i = 0; i < capacity_; i++)
        pieces_[i].next = i + 1 < capacity_ ? int32_t(i + 1) : -1;
    free_piece_ = 0;
}

int32_t FragmentTable::find(const FragmentKey &key) const {
    // New datagrams take the lowest free slot, so the live ones sit at the front.
    for (uint32_t i = 0, seen = 0; i < dgrams_.size() && seen < live_; i++) {
        if (!dgrams_[i].used) continue;
        seen++;
        if (dgrams_[i].key == key) return int32_t(i);
    }
    return -1;
}

int32_t FragmentTable::create(const FragmentKey &key, uint32_t now) {
    for (uint32_t i = 0; i < dgrams_.size(); i++) {
        if (dgrams_[i].used) continue;
        dgrams_[i] = Datagram{};
        dgrams_[i].used = true;
        dgrams_[i].key = key;
        dgrams_[i].created = now;
        live_++;
        return int32_t(i);
    }
    return -1;
}

void FragmentTable::free_piece(int32_t i) {
    pieces_[i].next = free_piece_;
    free_piece_ = i;
    held_--;
}

void FragmentTable::release_all(uint32_t g, DropReason why) {
    Datagram &dg = dgrams_[g];
    for (int32_t i = dg.first_piece; i >= 0;) {
        const int32_t next = pieces_[i].next;
        void *handle = pieces_[i].p.handle;
        free_piece(i);
        release_(ctx_, handle, why);
        i = next;
    }
    dg = Datagram{};
    live_--;
}

void FragmentTable::discard(uint32_t datagram, DropReason why) {
    release_all(datagram, why);
}

void FragmentTable::finish(uint32_t g) {
    Datagram &dg = dgrams_[g];
    for (int32_t i = dg.first_piece; i >= 0;) {
        const int32_t next = pieces_[i].next;
        free_piece(i);
        i = next;
    }
    dg = Datagram{};
    live_--;
}

void FragmentTable::make_room() {
    while (held_ >= capacity_ && live_ > 0) {
        uint32_t oldest = 0;
        bool found = false;
        for (uint32_t i = 0; i < dgrams_.size(); i++)
            if (dgrams_[i].used && (!found || dgrams_[i].created < dgrams_[oldest].created)) {
                oldest = i;
                found = true;
            }
        release_all(oldest, DropReason::frag_limit);
    }
}

void FragmentTable::expire(uint32_t now) {
    if (live_ == 0) return;
    for (uint32_t i = 0; i < dgrams_.size(); i++)
        if (dgrams_[i].used && now - dgrams_[i].created >= timeout_)
            release_all(i, DropReason::frag_timeout);
}

void FragmentTable::clear(DropReason why) {
    for (uint32_t i = 0; i < dgrams_.size() && live_ > 0; i++)
        if (dgrams_[i].used) release_all(i, why);
}

bool FragmentTable::whole(const Datagram &g) const {
    if (!g.have_last || g.head == nullptr) return false;
    uint32_t expect = 0;
    for (int32_t i = g.first_piece; i >= 0; i = pieces_[i].next) {
        if (pieces_[i].p.offset != expect) return false;
        expect += pieces_[i].p.len;
    }
    return expect == g.end;
}

FragmentTable::Result FragmentTable::add(const FragmentInfo &info, const uint8_t *frame,
                                         const uint8_t *payload, void *handle, uint32_t now) {
    Result r;
    if (held_ >= capacity_) make_room(); // pf flushes its oldest fragments
    int32_t g = find(info.key);
    if (g < 0) {
        g = create(info.key, now);
        if (g < 0) { // cannot happen: a datagram holds a fragment, and one is free now
            r.outcome = Outcome::dropped;
            r.reason = DropReason::frag_limit;
            return r;
        }
    }
    Datagram &dg = dgrams_[g];
    const bool v6 = info.key.family == 6;
    // Discard the whole datagram (IPv6's answer to anything inconsistent) and the fragment.
    auto discard_all = [&](DropReason why) {
        release_all(uint32_t(g), why);
        r.outcome = Outcome::dropped;
        r.reason = why;
        return r;
    };
    auto refuse = [&](DropReason why) {
        if (dg.count == 0) { // nothing held: forget the empty datagram
            dg = Datagram{};
            live_--;
        }
        r.outcome = Outcome::dropped;
        r.reason = why;
        return r;
    };
    if (dg.count >= max_fragments_per_datagram) return discard_all(DropReason::frag_too_many);

    uint32_t off = info.offset, len = info.len;
    const uint32_t end = off + len;
    const uint8_t *data = payload;

    // What the fragments seen so far say of the datagram's end (pf_fillup_fragment).
    int32_t prev = -1, after = dg.first_piece;
    while (after >= 0 && pieces_[after].p.offset <= off) {
        prev = after;
        after = pieces_[after].next;
    }
    if (dg.count > 0) {
        uint32_t total = 0;
        for (int32_t i = dg.first_piece; i >= 0; i = pieces_[i].next)
            total = pieces_[i].p.offset + pieces_[i].p.len;
        const bool inconsistent = (end < total && !info.more) ||
                                  (dg.have_last ? end > total || (end == total && info.more)
                                                : end == total && !info.more);
        if (inconsistent)
            return v6 ? discard_all(DropReason::frag_bad) : refuse(DropReason::frag_bad);
    }
    dg.max_fragment = std::max<uint16_t>(dg.max_fragment, info.len);

    // Overlaps: IPv6 drops the datagram; IPv4 keeps the older data before the new fragment
    // and the newer data over the fragments after it.
    if (prev >= 0) {
        const FragmentPiece &p = pieces_[prev].p;
        if (p.offset + p.len > off) {
            if (v6) return discard_all(DropReason::frag_overlap);
            const uint32_t precut = p.offset + p.len - off;
            if (precut >= len) return refuse(DropReason::frag_covered);
            off += precut;
            len -= precut;
            data += precut;
        }
    }
    while (after >= 0 && off + len > pieces_[after].p.offset) {
        if (v6) return discard_all(DropReason::frag_overlap);
        FragmentPiece &a = pieces_[after].p;
        const uint32_t aftercut = off + len - a.offset;
        if (aftercut < a.len) {
            a.offset += aftercut;
            a.len = uint16_t(a.len - aftercut);
            a.data += aftercut;
            break;
        }
        // Wholly overwritten by the new fragment: let the old one go.
        const int32_t next = pieces_[after].next;
        void *old = a.handle;
        if (prev >= 0)
            pieces_[prev].next = next;
        else
            dg.first_piece = next;
        free_piece(after);
        dg.count--;
        release_(ctx_, old, DropReason::frag_covered);
        after = next;
    }

    // Keep it, between prev and after (make_room() left a free piece).
    const int32_t i = free_piece_;
    free_piece_ = pieces_[i].next;
    held_++;
    pieces_[i].p = FragmentPiece{off, uint16_t(len), data, handle};
    pieces_[i].next = after;
    if (prev >= 0)
        pieces_[prev].next = i;
    else
        dg.first_piece = i;
    dg.count++;
    if (off == 0 && info.offset == 0) {
        dg.head = frame;
        dg.header_len = info.header_len;
        dg.next_header_at = info.next_header_at;
        dg.next_header = info.next_header;
    }
    if (!info.more) {
        dg.have_last = true;
        dg.end = end;
    }
    r.datagram = uint32_t(g);
    r.outcome = whole(dg) ? Outcome::complete : Outcome::held;
    return r;
}

void FragmentTable::take(uint32_t g, Whole &out) const {
    const Datagram &dg = dgrams_[g];
    out.head = dg.head;
    out.header_len = dg.header_len;
    out.next_header_at = dg.next_header_at;
    out.next_header = dg.next_header;
    out.family = dg.key.family;
    out.id = dg.key.id;
    out.payload_len = dg.end;
    out.max_fragment = dg.max_fragment;
    out.count = 0;
    for (int32_t i = dg.first_piece; i >= 0 && out.count < out.pieces.size(); i = pieces_[i].next)
        out.pieces[out.count++] = pieces_[i].p;
}

std::size_t finish_reassembled_headers(uint8_t *frame, uint16_t l3_offset, uint8_t family,
                                       uint16_t header_len, uint16_t next_header_at,
                                       uint8_t next_header, uint32_t payload_len) {
    uint8_t *ip = frame + l3_offset;
    const uint32_t ip_header = uint32_t(header_len) - l3_offset;
    if (family == 4) {
        store_be16(ip + 2, uint16_t(ip_header + payload_len));
        store_be16(ip + 6, uint16_t(load_be16(ip + 6) & 0x4000)); // DF stays; MF, offset go
        store_be16(ip + 10, 0);
        store_be16(ip + 10, internet_checksum({ip, ip_header}));
    } else {
        frame[next_header_at] = next_header;
        store_be16(ip + 4, uint16_t(ip_header - 40 + payload_len));
    }
    return header_len + payload_len;
}

namespace {

// The options of an IPv4 header that later fragments repeat (the copy bit, RFC 791): their
// total length, written to `out` unless it is null. The parser has checked the option list.
uint32_t copied_options(const uint8_t *ip, uint32_t ip_header_len, uint8_t *out) {
    uint32_t keep = 0;
    for (uint32_t i = 20; i < ip_header_len;) {
        const uint8_t type = ip[i];
        if (type == 0) break; // end of options
        if (type == 1) {      // no-operation: not copied
            i++;
            continue;
        }
        if (i + 1 >= ip_header_len || ip[i + 1] < 2) break;
        const uint32_t len = std::min<uint32_t>(ip[i + 1], ip_header_len - i);
        if ((type & 0x80) != 0) {
            if (out != nullptr) std::memcpy(out + keep, ip + i, len);
            keep += len;
        }
        i += len;
    }
    return keep;
}

} // namespace

uint16_t ipv4_later_header_len(std::span<const uint8_t> frame, uint16_t l3_offset,
                               uint16_t ip_header_len) {
    const uint32_t keep = copied_options(frame.data() + l3_offset, ip_header_len, nullptr);
    return uint16_t(20 + (keep + 3) / 4 * 4);
}

std::size_t ipv4_write_fragment(std::span<const uint8_t> frame, uint16_t l3_offset,
                                uint16_t ip_header_len, uint32_t off, uint16_t len, bool more,
                                uint8_t *out) {
    const uint8_t *ip = frame.data() + l3_offset;
    std::memcpy(out, frame.data(), l3_offset);
    uint8_t *oip = out + l3_offset;
    uint32_t hl = ip_header_len;
    if (off == 0) {
        std::memcpy(oip, ip, ip_header_len);
    } else {
        std::memcpy(oip, ip, 20);
        hl = 20 + copied_options(ip, ip_header_len, oip + 20);
        while (hl % 4 != 0)
            oip[hl++] = 0; // end of options
    }
    oip[0] = uint8_t(0x40 | hl / 4);
    store_be16(oip + 2, uint16_t(hl + len));
    const uint16_t df = load_be16(ip + 6) & 0x4000;
    store_be16(oip + 6, uint16_t(df | (more ? 0x2000 : 0) | ((off / 8) & 0x1fff)));
    store_be16(oip + 10, 0);
    store_be16(oip + 10, internet_checksum({oip, hl}));
    std::memcpy(oip + hl, ip + ip_header_len + off, len);
    return l3_offset + hl + len;
}

std::size_t ipv6_write_fragment(std::span<const uint8_t> frame, uint16_t l3_offset,
                                uint16_t header_len, uint16_t next_header_at, uint32_t id,
                                uint32_t off, uint16_t len, bool more, uint8_t *out) {
    std::memcpy(out, frame.data(), header_len);
    const uint8_t next = frame[next_header_at];
    out[next_header_at] = ipv6_ext_fragment;
    uint8_t *fh = out + header_len;
    fh[0] = next;
    fh[1] = 0;
    store_be16(fh + 2, uint16_t((off & 0xfff8) | (more ? 1 : 0)));
    store_be32(fh + 4, id);
    std::memcpy(fh + 8, frame.data() + header_len + off, len);
    store_be16(out + l3_offset + 4, uint16_t(header_len - l3_offset - 40 + 8 + len));
    return header_len + 8 + len;
}

} // namespace syncwall::dp
