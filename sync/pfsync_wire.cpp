// pfsync v6 codec: conversions, checks, writer, decoder. Layouts and rules: pfsync_wire.hpp.
#include "sync/pfsync_wire.hpp"

#include "dataplane/packet.hpp"

#include <algorithm>
#include <cstring>

namespace syncwall::sync {

namespace {

constexpr uint8_t wire_af(uint8_t af) {
    return af == 4 ? wire_af_inet : af == 6 ? wire_af_inet6 : 0;
}
constexpr uint8_t host_af(uint8_t wire) {
    return wire == wire_af_inet ? 4 : wire == wire_af_inet6 ? 6 : 0;
}
constexpr bool valid_wire_af(uint8_t af) {
    return af == wire_af_inet || af == wire_af_inet6;
}

void counter_to_wire(uint64_t v, Be32 (&w)[2]) {
    w[0].set(uint32_t(v >> 32));
    w[1].set(uint32_t(v));
}
uint64_t counter_from_wire(const Be32 (&w)[2]) {
    return uint64_t(w[0].get()) << 32 | w[1].get();
}

// Bytes of a pf_addr that carry the address (pf's PF_AEQ compares only these).
constexpr std::size_t addr_bytes(uint8_t wire_af) {
    return wire_af == wire_af_inet ? 4 : 16;
}

PfsyncError check_timeout(uint8_t timeout) {
    if (timeout >= pftm_max) return PfsyncError::bad_timeout;
    if (timeout >= uint8_t(dp::Timeout::count_)) return PfsyncError::unsupported_timeout;
    return PfsyncError::none;
}

PfsyncError check_peers(const PfsyncStatePeer &src, const PfsyncStatePeer &dst) {
    if (src.state > pf_tcps_proxy_dst || dst.state > pf_tcps_proxy_dst)
        return PfsyncError::bad_peer_state;
    return PfsyncError::none;
}

void key_to_wire(const dp::StateKey &k, PfsyncStateKey &w) {
    std::memset(&w, 0, sizeof w); // rdomain 0
    for (int i = 0; i < 2; i++) {
        std::memcpy(w.addr[i].addr, k.addr[i].data(), sizeof w.addr[i].addr);
        w.port[i].set(k.port[i]);
    }
    w.af = wire_af(k.af);
}

// A key of a record that passed check_state (so its af is the state's, `af`, 2 or 24).
dp::StateKey key_from_wire(const PfsyncStateKey &w, uint8_t af, uint8_t proto) {
    dp::StateKey k;
    const std::size_t n = addr_bytes(af);
    for (int i = 0; i < 2; i++) {
        // IPv4: only the first 4 bytes are the address; the key is hashed bytewise, so the
        // rest must be zero whatever the sender left there.
        std::memcpy(k.addr[i].data(), w.addr[i].addr, n);
        k.port[i] = w.port[i].get();
    }
    k.af = host_af(af);
    k.proto = proto;
    return k;
}

template <class Record> Record load(const uint8_t *p) {
    static_assert(std::is_trivially_copyable_v<Record>);
    Record r;
    std::memcpy(&r, p, sizeof r);
    return r;
}

} // namespace

// --- peers --------------------------------------------------------------------------------

dp::TcpPeer peer_from_wire(const PfsyncStatePeer &w) {
    dp::TcpPeer p;
    p.seqlo = w.seqlo.get();
    p.seqhi = w.seqhi.get();
    p.seqdiff = w.seqdiff.get();
    p.max_win = w.max_win.get();
    p.mss = w.mss.get();
    p.state = w.state;
    p.wscale = w.wscale;
    return p;
}

void peer_to_wire(const dp::TcpPeer &p, PfsyncStatePeer &w) {
    std::memset(&w, 0, sizeof w); // scrub: syncwall does not normalise
    w.seqlo.set(p.seqlo);
    w.seqhi.set(p.seqhi);
    w.seqdiff.set(p.seqdiff);
    w.max_win.set(p.max_win);
    w.mss.set(p.mss);
    w.state = p.state;
    w.wscale = p.wscale;
}

// --- State <-> pfsync_state ----------------------------------------------------------------

void export_state(const dp::State &s, uint32_t now, uint32_t remaining, PfsyncState &out,
                  const dp::StateKey *other) {
    std::memset(&out, 0, sizeof out);
    out.id.set(s.id);
    static_assert(sizeof(ifname_floating) <= sizeof(out.ifname));
    std::memcpy(out.ifname, ifname_floating, sizeof(ifname_floating));

    // pf_state_key_setup: State::key is the key before translation, the stack key of an
    // outbound state and the wire key of an inbound one. Untranslated: one key, twice.
    const bool out_dir = s.direction == dp::StateDirection::out;
    const dp::StateKey &wire = other != nullptr && out_dir ? *other : s.key;
    const dp::StateKey &stack = other != nullptr && !out_dir ? *other : s.key;
    key_to_wire(wire, out.key[0]);  // PF_SK_WIRE
    key_to_wire(stack, out.key[1]); // PF_SK_STACK

    peer_to_wire(s.src, out.src);
    peer_to_wire(s.dst, out.dst);
    out.rule.set(s.rule);
    out.anchor.set(no_rule_wire);
    out.nat_rule.set(no_rule_wire);
    out.creation.set(now - s.creation); // age; the table clock is modular like pf's u32
    out.expire.set(remaining);
    for (int i = 0; i < 2; i++) {
        counter_to_wire(s.packets[i], out.packets[i]);
        counter_to_wire(s.bytes[i], out.bytes[i]);
    }
    out.creatorid.set(s.creatorid);
    // pf_create_state: the direction the state was created in routes in the rule's table
    // (0 here), return traffic is "routed normally" (-1). sidx is 0 for PF_IN.
    const int sidx = s.direction == dp::StateDirection::in ? 0 : 1;
    out.rtableid[sidx].set(0xffffffffu);
    out.rtableid[1 - sidx].set(0);
    out.max_mss.set(s.max_mss);
    out.af = out.key[0].af; // pf_state_export: the wire key's
    out.proto = s.key.proto;
    out.direction = uint8_t(s.direction);
    out.log = s.log;
    out.timeout = uint8_t(s.timeout);
    out.state_flags.set(s.state_flags);
}

PfsyncError check_state(const PfsyncState &sp) {
    if (sp.creatorid.get() == 0) return PfsyncError::creatorid_zero;
    if (const PfsyncError e = check_timeout(sp.timeout); e != PfsyncError::none) return e;
    if (const PfsyncError e = check_peers(sp.src, sp.dst); e != PfsyncError::none) return e;
    if (sp.direction != pf_in && sp.direction != pf_out) return PfsyncError::bad_direction;
    if (!valid_wire_af(sp.af)) return PfsyncError::bad_af;

    // A key's af 0 means "the state's af" (pf_state_import).
    const uint8_t af0 = sp.key[0].af ? sp.key[0].af : sp.af;
    const uint8_t af1 = sp.key[1].af ? sp.key[1].af : sp.af;
    if (!valid_wire_af(af0) || !valid_wire_af(af1) || af0 != sp.af) return PfsyncError::bad_key_af;

    // Keys that differ are a translated (NAT) state and are accepted, unless they are of
    // different families: af-to, which syncwall cannot translate.
    if (af1 != af0) return PfsyncError::keys_differ;
    if (sp.key[0].rdomain.get() != 0 || sp.key[1].rdomain.get() != 0)
        return PfsyncError::nonzero_rdomain;

    if ((sp.proto == dp::proto_icmp && sp.af != wire_af_inet) ||
        (sp.proto == dp::proto_icmpv6 && sp.af != wire_af_inet6))
        return PfsyncError::proto_af_mismatch;
    return PfsyncError::none;
}

PfsyncError import_state(const PfsyncState &sp, ImportedState &out) {
    if (const PfsyncError e = check_state(sp); e != PfsyncError::none) return e;

    out = ImportedState{};
    dp::State &s = out.state;
    // Both keys are of sp.af (check_state). Compared after conversion, so that bytes past
    // an IPv4 address or a key af of 0 do not make equal keys differ.
    const dp::StateKey wire = key_from_wire(sp.key[0], sp.af, sp.proto);
    const dp::StateKey stack = key_from_wire(sp.key[1], sp.af, sp.proto);
    out.translated = !(wire == stack);
    // pf_state_key_setup: the key before translation is the stack key of an outbound state
    // and the wire key of an inbound one.
    const bool out_dir = sp.direction == pf_out;
    s.key = out_dir ? stack : wire;
    out.other = out_dir ? wire : stack;

    s.id = sp.id.get();
    s.creatorid = sp.creatorid.get();
    s.rule = sp.rule.get();
    s.src = peer_from_wire(sp.src);
    s.dst = peer_from_wire(sp.dst);
    for (int i = 0; i < 2; i++) {
        s.packets[i] = counter_from_wire(sp.packets[i]);
        s.bytes[i] = counter_from_wire(sp.bytes[i]);
    }
    s.iface = dp::floating_iface;
    s.direction = dp::StateDirection(sp.direction);
    s.timeout = dp::Timeout(sp.timeout);
    const uint16_t flags = sp.state_flags.get();
    out.ack_requested = (flags & pfstate_ack) != 0;
    s.state_flags = uint16_t(flags & ~pfstate_ack);
    s.log = sp.log;
    s.origin = dp::state_origin::peer;
    s.max_mss = sp.max_mss.get();

    out.age = sp.creation.get();
    out.remaining = sp.expire.get();
    return PfsyncError::none;
}

StateTimes imported_times(uint32_t now, uint32_t age, uint32_t remaining, uint32_t class_timeout) {
    StateTimes t{now - age, now};
    if (remaining != 0 && remaining <= class_timeout) t.expire = now - (class_timeout - remaining);
    return t;
}

// --- merging updates ----------------------------------------------------------------------

Staleness stale_update(uint8_t proto, const dp::TcpPeer &our_src, const dp::TcpPeer &our_dst,
                       const dp::TcpPeer &msg_src, const dp::TcpPeer &msg_dst) {
    Staleness st;
    if (proto == dp::proto_tcp) {
        // The state never goes backwards, except that src may leave the synproxy states;
        // nor does the sequence window slide backwards.
        st.src = (our_src.state > msg_src.state &&
                  (our_src.state < pf_tcps_proxy_src || msg_src.state >= pf_tcps_proxy_src)) ||
                 (our_src.state == msg_src.state && dp::seq_gt(our_src.seqlo, msg_src.seqlo));
        st.dst = our_dst.state > msg_dst.state ||
                 (our_dst.state == msg_dst.state && dp::seq_gt(our_dst.seqlo, msg_dst.seqlo));
    } else {
        st.src = our_src.state > msg_src.state;
        st.dst = our_dst.state > msg_dst.state;
    }
    return st;
}

PfsyncError check_upd_c(const PfsyncUpdC &u) {
    if (const PfsyncError e = check_timeout(u.timeout); e != PfsyncError::none) return e;
    return check_peers(u.src, u.dst);
}

// --- writer -------------------------------------------------------------------------------

PfsyncWriter::PfsyncWriter(std::span<uint8_t> payload, std::size_t mtu) : buf_(payload) {
    cap_ = mtu > ipv4_header_len ? mtu - ipv4_header_len : 0;
    cap_ = std::min({cap_, payload.size(), std::size_t(0xffff)}); // header len is 16 bits
    reset();
}

void PfsyncWriter::reset() {
    len_ = 0;
    records_ = 0;
    last_subheader_ = 0;
    if (cap_ < sizeof(PfsyncHeader)) return; // unusable: every add fails
    PfsyncHeader h;
    std::memset(&h, 0, sizeof h); // pfcksum: zero, as OpenBSD sends it
    h.version = pfsync_version;
    std::memcpy(buf_.data(), &h, sizeof h);
    len_ = sizeof h;
}

uint8_t *PfsyncWriter::reserve(Action a, std::size_t record_size) {
    if (len_ < sizeof(PfsyncHeader)) return nullptr;
    uint8_t *const base = buf_.data();
    PfsyncSubheader sub{};
    bool append = false;
    if (last_subheader_ != 0) {
        std::memcpy(&sub, base + last_subheader_, sizeof sub);
        append = sub.action == uint8_t(a) && sub.count.get() < 0xffff;
    }
    const std::size_t need = record_size + (append ? 0 : sizeof(PfsyncSubheader));
    if (need > cap_ - len_) return nullptr;
    if (!append) {
        sub.action = uint8_t(a);
        sub.len = uint8_t(record_size / 4);
        sub.count.set(0);
        last_subheader_ = len_;
        len_ += sizeof sub;
    }
    sub.count.set(uint16_t(sub.count.get() + 1));
    std::memcpy(base + last_subheader_, &sub, sizeof sub);
    uint8_t *const p = base + len_;
    len_ += record_size;
    records_++;
    return p;
}

bool PfsyncWriter::add_state(StateAction a, const PfsyncState &sp) {
    uint8_t *p = reserve(Action(a), sizeof sp);
    if (p == nullptr) return false;
    std::memcpy(p, &sp, sizeof sp);
    return true;
}

bool PfsyncWriter::add_state(StateAction a, const dp::State &s, uint32_t now, uint32_t remaining,
                             bool ack_requested, const dp::StateKey *other) {
    PfsyncState sp;
    export_state(s, now, remaining, sp, other);
    if (ack_requested) sp.state_flags.set(uint16_t(sp.state_flags.get() | pfstate_ack));
    return add_state(a, sp);
}

bool PfsyncWriter::add_upd_c(const dp::State &s) {
    uint8_t *p = reserve(Action::upd_c, sizeof(PfsyncUpdC));
    if (p == nullptr) return false;
    PfsyncUpdC u;
    std::memset(&u, 0, sizeof u); // expire and state_flags: sent 0, as pf does
    u.id.set(s.id);
    peer_to_wire(s.src, u.src);
    peer_to_wire(s.dst, u.dst);
    u.creatorid.set(s.creatorid);
    u.timeout = uint8_t(s.timeout);
    std::memcpy(p, &u, sizeof u);
    return true;
}

namespace {
template <class Record> bool put_id_record(uint8_t *p, uint64_t id, uint32_t creatorid) {
    if (p == nullptr) return false;
    Record r;
    r.id.set(id);
    r.creatorid.set(creatorid);
    std::memcpy(p, &r, sizeof r);
    return true;
}
} // namespace

bool PfsyncWriter::add_ins_ack(uint64_t id, uint32_t creatorid) {
    return put_id_record<PfsyncInsAck>(reserve(Action::ins_ack, sizeof(PfsyncInsAck)), id,
                                       creatorid);
}
bool PfsyncWriter::add_upd_req(uint64_t id, uint32_t creatorid) {
    return put_id_record<PfsyncUpdReq>(reserve(Action::upd_req, sizeof(PfsyncUpdReq)), id,
                                       creatorid);
}
bool PfsyncWriter::add_del_c(uint64_t id, uint32_t creatorid) {
    return put_id_record<PfsyncDelC>(reserve(Action::del_c, sizeof(PfsyncDelC)), id, creatorid);
}

bool PfsyncWriter::add_bus(BusStatus status, uint32_t creatorid, uint32_t endtime) {
    uint8_t *p = reserve(Action::bus, sizeof(PfsyncBus));
    if (p == nullptr) return false;
    PfsyncBus b;
    std::memset(&b, 0, sizeof b);
    b.creatorid.set(creatorid);
    b.endtime.set(endtime);
    b.status = uint8_t(status);
    std::memcpy(p, &b, sizeof b);
    return true;
}

bool PfsyncWriter::add_clr(uint32_t creatorid, std::string_view ifname) {
    uint8_t *p = reserve(Action::clr, sizeof(PfsyncClr));
    if (p == nullptr) return false;
    PfsyncClr c;
    std::memset(&c, 0, sizeof c);
    // NUL-terminated, at most IFNAMSIZ - 1 characters.
    if (!ifname.empty())
        std::memcpy(c.ifname, ifname.data(), std::min(ifname.size(), sizeof c.ifname - 1));
    c.creatorid.set(creatorid);
    std::memcpy(p, &c, sizeof c);
    return true;
}

std::size_t PfsyncWriter::finish() {
    if (len_ >= sizeof(PfsyncHeader)) {
        Be16 len;
        len.set(uint16_t(len_));
        std::memcpy(buf_.data() + offsetof(PfsyncHeader, len), &len, sizeof len);
    }
    return len_;
}

// --- decoder ------------------------------------------------------------------------------

void DecodeStats::add(const DecodeStats &o) {
    packets += o.packets;
    records += o.records;
    for (std::size_t i = 0; i < errors.size(); i++)
        errors[i] += o.errors[i];
}

namespace {

// One section as its subheader describes it; `records` points at the first record.
struct Section {
    uint8_t action;
    std::size_t mlen; // one record, bytes (the subheader's len << 2)
    std::size_t count;
    const uint8_t *records;
    const ActionSpec *spec; // nullptr: unknown action
    bool usable() const { return spec != nullptr && mlen >= spec->record_size; }
};

Section read_section(const uint8_t *p, const Dialect &d) {
    const PfsyncSubheader sub = load<PfsyncSubheader>(p);
    Section s{sub.action, std::size_t(sub.len) << 2, sub.count.get(), p + sizeof sub, nullptr};
    if (sub.action < d.actions.size()) s.spec = &d.actions[sub.action];
    return s;
}

// Hand the records of a usable section to the handler, checking each.
void deliver(const Section &s, PfsyncHandler &h, DecodeStats &stats) {
    auto bad = [&](PfsyncError e) {
        if (e == PfsyncError::none) return false;
        stats[e]++;
        return true;
    };
    const RecordKind kind = s.spec->kind;
    if (kind == RecordKind::skip) {
        stats[PfsyncError::section_unhandled]++;
        return;
    }
    if (kind == RecordKind::eof) {
        h.on_eof();
        return;
    }
    for (std::size_t i = 0; i < s.count; i++) {
        const uint8_t *r = s.records + i * s.mlen; // stride mlen: senders may append fields
        switch (kind) {
        case RecordKind::clr:
            h.on_clr(load<PfsyncClr>(r));
            break;
        case RecordKind::ins_ack:
            h.on_ins_ack(load<PfsyncInsAck>(r));
            break;
        case RecordKind::upd_c: {
            const auto u = load<PfsyncUpdC>(r);
            if (bad(check_upd_c(u))) continue;
            h.on_upd_c(u);
            break;
        }
        case RecordKind::upd_req:
            h.on_upd_req(load<PfsyncUpdReq>(r));
            break;
        case RecordKind::del:
            h.on_del(load<PfsyncState>(r));
            break;
        case RecordKind::del_c:
            h.on_del_c(load<PfsyncDelC>(r));
            break;
        case RecordKind::bus: {
            const auto b = load<PfsyncBus>(r);
            if (b.status != uint8_t(BusStatus::start) && b.status != uint8_t(BusStatus::end)) {
                stats[PfsyncError::bad_bus_status]++;
                continue;
            }
            h.on_bus(b);
            break;
        }
        case RecordKind::ins:
        case RecordKind::upd: {
            const auto sp = load<PfsyncState>(r);
            if (bad(check_state(sp))) continue;
            if (kind == RecordKind::ins)
                h.on_ins(sp);
            else
                h.on_upd(sp);
            break;
        }
        case RecordKind::skip:
        case RecordKind::eof:
            break; // handled above
        }
        stats.records++;
    }
}

} // namespace

PfsyncError decode(std::span<const uint8_t> payload, PfsyncHandler &handler, DecodeStats &stats,
                   const Dialect &dialect) {
    auto fail = [&](PfsyncError e) {
        stats[e]++;
        return e;
    };

    // Layer 1: the header.
    if (payload.size() < sizeof(PfsyncHeader)) return fail(PfsyncError::short_packet);
    const PfsyncHeader hdr = load<PfsyncHeader>(payload.data());
    if (hdr.version != dialect.version) return fail(PfsyncError::bad_version);
    const std::size_t len = hdr.len.get();
    if (len > payload.size()) return fail(PfsyncError::len_beyond_packet);
    if (len < sizeof(PfsyncHeader)) return fail(PfsyncError::len_below_header);
    const uint8_t *const body = payload.data() + sizeof(PfsyncHeader); // cut to len
    const std::size_t body_len = len - sizeof(PfsyncHeader);

    // Layer 2: walk the sections without delivering anything.
    std::size_t off = 0;
    while (body_len - off >= sizeof(PfsyncSubheader)) {
        const Section s = read_section(body + off, dialect);
        // pf: a section it cannot interpret is skipped by its length, which must then be
        // given; a known action with a zero count or length is merely empty.
        if (!s.usable() && (s.count == 0 || s.mlen == 0)) return fail(PfsyncError::bad_action);
        off += sizeof(PfsyncSubheader);
        if (s.mlen * s.count > body_len - off) // at most 1020 * 65535: no overflow
            return fail(PfsyncError::section_truncated);
        off += s.mlen * s.count;
    }

    // Layer 3: deliver, record by record.
    stats.packets++;
    handler.on_packet(hdr);
    off = 0;
    while (body_len - off >= sizeof(PfsyncSubheader)) {
        const Section s = read_section(body + off, dialect);
        if (s.spec == nullptr)
            stats[PfsyncError::section_unknown_action]++;
        else if (!s.usable())
            stats[PfsyncError::section_short_records]++;
        else
            deliver(s, handler, stats);
        off += sizeof(PfsyncSubheader) + s.mlen * s.count;
    }
    if (off != body_len) stats[PfsyncError::trailing_bytes]++;
    return PfsyncError::none;
}

} // namespace syncwall::sync
