// pfsync v6 codec (no EAL): the writer's packets equal golden bytes written out by hand from
// docs/pfsync.md's layouts; states survive State -> wire -> State; the decoder refuses malformed
// packets in layers, counting why, and never reads outside the packet; updates that would
// move a state backwards are recognised as stale.
#include "fuzz_seeds.hpp"
#include "sync/pfsync_wire.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace syncwall;
using namespace syncwall::sync;

namespace {

using Bytes = std::vector<uint8_t>;

// --- golden-byte builders (independent of the structs under test) --------------------------

void put8(Bytes &b, uint8_t v) {
    b.push_back(v);
}
void put16(Bytes &b, uint16_t v) {
    b.push_back(uint8_t(v >> 8));
    b.push_back(uint8_t(v));
}
void put32(Bytes &b, uint32_t v) {
    put16(b, uint16_t(v >> 16));
    put16(b, uint16_t(v));
}
void put64(Bytes &b, uint64_t v) {
    put32(b, uint32_t(v >> 32));
    put32(b, uint32_t(v));
}
void zeros(Bytes &b, std::size_t n) {
    b.insert(b.end(), n, 0);
}
void put_bytes(Bytes &b, std::initializer_list<uint8_t> l) {
    b.insert(b.end(), l);
}

// pfsync_header: version 6, pad, len, 16 zero bytes.
Bytes header(uint16_t len, uint8_t version = 6) {
    Bytes b;
    put8(b, version);
    put8(b, 0);
    put16(b, len);
    zeros(b, 16);
    return b;
}
void subheader(Bytes &b, uint8_t action, uint8_t words, uint16_t count) {
    put8(b, action);
    put8(b, words);
    put16(b, count);
}
// Finish a hand-built packet: write its length into the header.
Bytes sealed(Bytes b) {
    b[2] = uint8_t(b.size() >> 8);
    b[3] = uint8_t(b.size());
    return b;
}

// --- the state used throughout ----------------------------------------------------------------

constexpr uint32_t now = 1100;
constexpr uint32_t established_lifetime = 86400;

dp::State sample_state() {
    dp::State s;
    s.key.addr[0] = {192, 0, 2, 10};
    s.key.addr[1] = {198, 51, 100, 20};
    s.key.port[0] = 40000; // 0x9c40
    s.key.port[1] = 443;   // 0x01bb
    s.key.af = 4;
    s.key.proto = dp::proto_tcp;
    s.id = 0x0102030405060708ull;
    s.creatorid = 0xdeadbeef;
    s.rule = 3;
    s.src.seqlo = 0x11111111;
    s.src.seqhi = 0x22222222;
    s.src.seqdiff = 0;
    s.src.max_win = 29200; // 0x7210
    s.src.mss = 1460;      // 0x05b4
    s.src.state = dp::tcps_established;
    s.src.wscale = 0x87;
    s.dst.seqlo = 0x33333333;
    s.dst.seqhi = 0x44444444;
    s.dst.seqdiff = 0x55555555;
    s.dst.max_win = 0xffff;
    s.dst.mss = 0;
    s.dst.state = dp::tcps_established;
    s.dst.wscale = 0x80;
    s.packets[0] = 0x0000000100000002ull;
    s.packets[1] = 3;
    s.bytes[0] = 0x0000000a0000000bull;
    s.bytes[1] = 0x1234;
    s.creation = 1000; // age 100 at `now`
    s.expire = 1090;   // idle 10 s: 86390 s remaining
    s.iface = 3;
    s.direction = dp::StateDirection::in;
    s.timeout = dp::Timeout::tcp_established;
    s.state_flags = 0x0001; // PFSTATE_ALLOWOPTS
    s.log = 1;
    s.origin = dp::state_origin::local;
    s.max_mss = 1400; // 0x0578
    return s;
}

uint32_t remaining_of(const dp::State &s) {
    return established_lifetime - (now - s.expire);
}

void peer_bytes(Bytes &b, uint32_t seqlo, uint32_t seqhi, uint32_t seqdiff, uint16_t max_win,
                uint16_t mss, uint8_t state, uint8_t wscale) {
    zeros(b, 8); // scrub
    put32(b, seqlo);
    put32(b, seqhi);
    put32(b, seqdiff);
    put16(b, max_win);
    put16(b, mss);
    put8(b, state);
    put8(b, wscale);
    zeros(b, 6);
}
void sample_src_bytes(Bytes &b) {
    peer_bytes(b, 0x11111111, 0x22222222, 0, 0x7210, 0x05b4, 4, 0x87);
}
void sample_dst_bytes(Bytes &b) {
    peer_bytes(b, 0x33333333, 0x44444444, 0x55555555, 0xffff, 0, 4, 0x80);
}

// The 264 bytes of pfsync_state for sample_state(), field by field (docs/pfsync.md 1.9).
Bytes sample_state_bytes() {
    Bytes b;
    put64(b, 0x0102030405060708ull); //   0 id
    put_bytes(b, {'a', 'l', 'l'});   //   8 ifname "all"
    zeros(b, 13);
    for (int k = 0; k < 2; k++) { //  24 key[0], 64 key[1]
        put_bytes(b, {192, 0, 2, 10});
        zeros(b, 12);
        put_bytes(b, {198, 51, 100, 20});
        zeros(b, 12);
        put_bytes(b, {0x9c, 0x40, 0x01, 0xbb}); //     ports, network order
        put16(b, 0);                            //     rdomain
        put8(b, 2);                             //     af AF_INET
        put8(b, 0);                             //     pad
    }
    sample_src_bytes(b);                          // 104 src
    sample_dst_bytes(b);                          // 136 dst
    zeros(b, 16);                                 // 168 rt_addr
    put32(b, 3);                                  // 184 rule
    put32(b, 0xffffffff);                         // 188 anchor
    put32(b, 0xffffffff);                         // 192 nat_rule
    put32(b, 100);                                // 196 creation: age
    put32(b, 86390);                              // 200 expire: remaining
    put32(b, 1);                                  // 204 packets[0] hi
    put32(b, 2);                                  //     packets[0] lo
    put32(b, 0);                                  //     packets[1] hi
    put32(b, 3);                                  //     packets[1] lo
    put32(b, 0xa);                                // 220 bytes[0] hi
    put32(b, 0xb);                                //     bytes[0] lo
    put32(b, 0);                                  //     bytes[1] hi
    put32(b, 0x1234);                             //     bytes[1] lo
    put_bytes(b, {0xde, 0xad, 0xbe, 0xef});       // 236 creatorid
    put32(b, 0xffffffff);                         // 240 rtableid[0]: -1 (PF_IN: sidx 0)
    put32(b, 0);                                  //     rtableid[1]: table 0
    put16(b, 1400);                               // 248 max_mss
    put_bytes(b, {2, 6, 1, 1, 0, 2, 0, 0, 0, 0}); // 250 af proto dir log rt timeout
                                                  //     sync_flags updates min_ttl set_tos
    put16(b, 0x0001);                             // 260 state_flags
    put_bytes(b, {0, 0});                         // 262 set_prio
    REQUIRE(b.size() == 264);
    return b;
}

Bytes written(PfsyncWriter &w, const std::vector<uint8_t> &buf) {
    const std::size_t n = w.finish();
    return Bytes(buf.begin(), buf.begin() + std::ptrdiff_t(n));
}

// --- a handler that records everything --------------------------------------------------------

struct Recorder : PfsyncHandler {
    int packets = 0, eofs = 0;
    std::vector<std::string> order;
    std::vector<PfsyncClr> clrs;
    std::vector<PfsyncInsAck> ins_acks;
    std::vector<PfsyncUpdC> upd_cs;
    std::vector<PfsyncUpdReq> upd_reqs;
    std::vector<PfsyncState> dels, inss, upds;
    std::vector<PfsyncDelC> del_cs;
    std::vector<PfsyncBus> buses;

    void on_packet(const PfsyncHeader &) override { packets++; }
    void on_clr(const PfsyncClr &r) override {
        clrs.push_back(r);
        order.push_back("clr");
    }
    void on_ins_ack(const PfsyncInsAck &r) override {
        ins_acks.push_back(r);
        order.push_back("ins_ack");
    }
    void on_upd_c(const PfsyncUpdC &r) override {
        upd_cs.push_back(r);
        order.push_back("upd_c");
    }
    void on_upd_req(const PfsyncUpdReq &r) override {
        upd_reqs.push_back(r);
        order.push_back("upd_req");
    }
    void on_del(const PfsyncState &r) override {
        dels.push_back(r);
        order.push_back("del");
    }
    void on_del_c(const PfsyncDelC &r) override {
        del_cs.push_back(r);
        order.push_back("del_c");
    }
    void on_bus(const PfsyncBus &r) override {
        buses.push_back(r);
        order.push_back("bus");
    }
    void on_ins(const PfsyncState &r) override {
        inss.push_back(r);
        order.push_back("ins");
    }
    void on_upd(const PfsyncState &r) override {
        upds.push_back(r);
        order.push_back("upd");
    }
    void on_eof() override {
        eofs++;
        order.push_back("eof");
    }
};

struct Decoded {
    PfsyncError result;
    Recorder rec;
    DecodeStats stats;
};
Decoded decode_bytes(const Bytes &b) {
    Decoded d;
    d.result = decode(std::span<const uint8_t>(b.data(), b.size()), d.rec, d.stats);
    return d;
}

// Only `e` was counted (once), nothing else.
void require_only_error(const DecodeStats &st, PfsyncError e) {
    for (std::size_t i = 0; i < pfsync_error_count; i++) {
        INFO(pfsync_error_names[i]);
        REQUIRE(st.errors[i] == (PfsyncError(i) == e ? 1u : 0u));
    }
}
void require_no_errors(const DecodeStats &st) {
    for (std::size_t i = 0; i < pfsync_error_count; i++) {
        INFO(pfsync_error_names[i]);
        REQUIRE(st.errors[i] == 0);
    }
}

void require_same_peer(const dp::TcpPeer &a, const dp::TcpPeer &b) {
    CHECK(a.seqlo == b.seqlo);
    CHECK(a.seqhi == b.seqhi);
    CHECK(a.seqdiff == b.seqdiff);
    CHECK(a.max_win == b.max_win);
    CHECK(a.mss == b.mss);
    CHECK(a.state == b.state);
    CHECK(a.wscale == b.wscale);
}

// Every field of State, compared one by one (State has padding; no memcmp).
void require_same_state(const dp::State &a, const dp::State &b) {
    CHECK(a.key == b.key);
    CHECK(a.id == b.id);
    CHECK(a.creatorid == b.creatorid);
    CHECK(a.rule == b.rule);
    require_same_peer(a.src, b.src);
    require_same_peer(a.dst, b.dst);
    CHECK(a.packets[0] == b.packets[0]);
    CHECK(a.packets[1] == b.packets[1]);
    CHECK(a.bytes[0] == b.bytes[0]);
    CHECK(a.bytes[1] == b.bytes[1]);
    CHECK(a.creation == b.creation);
    CHECK(a.expire == b.expire);
    CHECK(a.iface == b.iface);
    CHECK(a.direction == b.direction);
    CHECK(a.timeout == b.timeout);
    CHECK(a.state_flags == b.state_flags);
    CHECK(a.log == b.log);
    CHECK(a.origin == b.origin);
    CHECK(a.max_mss == b.max_mss);
}

// A valid packet with several sections: INS, UPD_C, two DEL_C, BUS end.
Bytes mixed_packet() {
    std::vector<uint8_t> buf(1480);
    PfsyncWriter w(buf, 1500);
    const dp::State s = sample_state();
    REQUIRE(w.add_state(StateAction::ins, s, now, remaining_of(s)));
    REQUIRE(w.add_upd_c(s));
    REQUIRE(w.add_del_c(7, 0xdeadbeef));
    REQUIRE(w.add_del_c(8, 0xdeadbeef));
    REQUIRE(w.add_bus(BusStatus::end, 0xdeadbeef));
    return written(w, buf);
}

} // namespace

// ===================================================================================
// Layout

TEST_CASE("wire structs have OpenBSD's sizes", "[pfsync]") {
    STATIC_REQUIRE(sizeof(PfsyncHeader) == 20);
    STATIC_REQUIRE(sizeof(PfsyncSubheader) == 4);
    STATIC_REQUIRE(sizeof(PfsyncState) == 264);
    STATIC_REQUIRE(sizeof(PfsyncStateKey) == 40);
    STATIC_REQUIRE(sizeof(PfsyncStatePeer) == 32);
    STATIC_REQUIRE(sizeof(PfsyncStateScrub) == 8);
    STATIC_REQUIRE(sizeof(PfAddr) == 16);
    STATIC_REQUIRE(sizeof(PfsyncUpdC) == 84);
    STATIC_REQUIRE(sizeof(PfsyncClr) == 20);
    STATIC_REQUIRE(sizeof(PfsyncBus) == 12);
    // The v6 table: record sizes as docs/pfsync.md 1.6 lists them.
    CHECK(openbsd_v6.actions[0].record_size == 20);
    CHECK(openbsd_v6.actions[2].record_size == 12);
    CHECK(openbsd_v6.actions[4].record_size == 84);
    CHECK(openbsd_v6.actions[5].record_size == 12);
    CHECK(openbsd_v6.actions[6].record_size == 264);
    CHECK(openbsd_v6.actions[7].record_size == 12);
    CHECK(openbsd_v6.actions[10].record_size == 12);
    CHECK(openbsd_v6.actions[13].record_size == 264);
    CHECK(openbsd_v6.actions[14].record_size == 264);
    CHECK(openbsd_v6.actions.size() == 16);
}

TEST_CASE("error names come from the one list", "[pfsync]") {
    CHECK(name_of(PfsyncError::none) == "none");
    CHECK(name_of(PfsyncError::bad_version) == "bad_version");
    CHECK(name_of(PfsyncError::bad_bus_status) == "bad_bus_status");
    CHECK(drops_packet(PfsyncError::section_truncated));
    CHECK_FALSE(drops_packet(PfsyncError::section_unknown_action));
    CHECK_FALSE(drops_packet(PfsyncError::creatorid_zero));
    for (auto t : pfsync_error_texts)
        CHECK_FALSE(t.empty());
}

// ===================================================================================
// Golden packets

TEST_CASE("an INS of one state is the documented 288 bytes", "[pfsync]") {
    Bytes want = header(0);
    subheader(want, 13, 66, 1);
    const Bytes st = sample_state_bytes();
    want.insert(want.end(), st.begin(), st.end());
    want = sealed(want);
    REQUIRE(want.size() == 288);
    CHECK(want[2] == 0x01);
    CHECK(want[3] == 0x20);

    std::vector<uint8_t> buf(1480, 0xaa);
    PfsyncWriter w(buf, 1500);
    const dp::State s = sample_state();
    REQUIRE(w.add_state(StateAction::ins, s, now, remaining_of(s)));
    CHECK(written(w, buf) == want);
    CHECK(w.records() == 1);
}

TEST_CASE("an INS with a pending deferral carries PFSTATE_ACK", "[pfsync]") {
    std::vector<uint8_t> buf(1480);
    PfsyncWriter w(buf, 1500);
    const dp::State s = sample_state();
    REQUIRE(w.add_state(StateAction::ins, s, now, remaining_of(s), true));
    const Bytes got = written(w, buf);
    // state_flags at 260 of the state, after 20 + 4 bytes of headers.
    CHECK(got[24 + 260] == 0x00);
    CHECK(got[24 + 261] == 0x11);

    const Decoded d = decode_bytes(got);
    REQUIRE(d.rec.inss.size() == 1);
    ImportedState imp;
    REQUIRE(import_state(d.rec.inss[0], imp) == PfsyncError::none);
    CHECK(imp.ack_requested);
    CHECK(imp.state.state_flags == 0x0001); // ACK cleared, as pf does on import
}

TEST_CASE("an UPD (full state) uses action 14 with the same body", "[pfsync]") {
    Bytes want = header(0);
    subheader(want, 14, 66, 1);
    const Bytes st = sample_state_bytes();
    want.insert(want.end(), st.begin(), st.end());
    want = sealed(want);

    std::vector<uint8_t> buf(1480);
    PfsyncWriter w(buf, 1500);
    const dp::State s = sample_state();
    REQUIRE(w.add_state(StateAction::upd, s, now, remaining_of(s)));
    CHECK(written(w, buf) == want);
}

TEST_CASE("an UPD_C is the documented 84-byte record", "[pfsync]") {
    Bytes want = header(0);
    subheader(want, 4, 21, 1);
    put64(want, 0x0102030405060708ull); //  0 id
    sample_src_bytes(want);             //  8 src
    sample_dst_bytes(want);             // 40 dst
    put32(want, 0xdeadbeef);            // 72 creatorid
    put32(want, 0);                     // 76 expire: sent 0
    put8(want, 2);                      // 80 timeout
    put8(want, 0);                      // 81 state_flags: sent 0
    zeros(want, 2);                     // 82 pad
    want = sealed(want);
    REQUIRE(want.size() == 20 + 4 + 84);

    std::vector<uint8_t> buf(1480);
    PfsyncWriter w(buf, 1500);
    REQUIRE(w.add_upd_c(sample_state()));
    CHECK(written(w, buf) == want);
}

TEST_CASE("a DEL_C carries id and creator id", "[pfsync]") {
    Bytes want = header(0);
    subheader(want, 7, 3, 1);
    put_bytes(want, {0, 0, 0, 0, 0, 0, 0x30, 0x39}); // id 12345
    put_bytes(want, {0x0a, 0x0b, 0x0c, 0x0d});
    want = sealed(want);
    REQUIRE(want.size() == 36);

    std::vector<uint8_t> buf(100);
    PfsyncWriter w(buf, 1500);
    REQUIRE(w.add_del_c(12345, 0x0a0b0c0d));
    CHECK(written(w, buf) == want);
}

TEST_CASE("a bulk request is an UPD_REQ with id 0 and creator id 0", "[pfsync]") {
    Bytes want = header(0);
    subheader(want, 5, 3, 1);
    zeros(want, 12);
    want = sealed(want);

    std::vector<uint8_t> buf(100);
    PfsyncWriter w(buf, 1500);
    REQUIRE(w.add_upd_req(0, 0));
    CHECK(written(w, buf) == want);
}

TEST_CASE("an UPD_REQ for one state", "[pfsync]") {
    Bytes want = header(0);
    subheader(want, 5, 3, 1);
    put64(want, 0x8000000000000001ull);
    put32(want, 0x01020304);
    want = sealed(want);

    std::vector<uint8_t> buf(100);
    PfsyncWriter w(buf, 1500);
    REQUIRE(w.add_upd_req(0x8000000000000001ull, 0x01020304));
    CHECK(written(w, buf) == want);
}

TEST_CASE("BUS start and end", "[pfsync]") {
    for (auto [status, byte] :
         {std::pair{BusStatus::start, uint8_t(1)}, std::pair{BusStatus::end, uint8_t(2)}}) {
        Bytes want = header(0);
        subheader(want, 10, 3, 1);
        put_bytes(want, {0xde, 0xad, 0xbe, 0xef}); // creatorid
        put32(want, 0);                            // endtime: 0, as OpenBSD sends
        put8(want, byte);                          // status
        zeros(want, 3);
        want = sealed(want);
        REQUIRE(want.size() == 36);

        std::vector<uint8_t> buf(100);
        PfsyncWriter w(buf, 1500);
        REQUIRE(w.add_bus(status, 0xdeadbeef));
        CHECK(written(w, buf) == want);
    }
}

TEST_CASE("a CLR for all interfaces, and for one", "[pfsync]") {
    Bytes want = header(0);
    subheader(want, 0, 5, 1);
    zeros(want, 16); // ifname empty
    put_bytes(want, {0xde, 0xad, 0xbe, 0xef});
    want = sealed(want);
    REQUIRE(want.size() == 44);

    std::vector<uint8_t> buf(100);
    PfsyncWriter w(buf, 1500);
    REQUIRE(w.add_clr(0xdeadbeef));
    CHECK(written(w, buf) == want);

    // A name longer than IFNAMSIZ - 1 is cut so that it stays NUL-terminated.
    w.reset();
    REQUIRE(w.add_clr(1, "averyveryverylongname"));
    const Bytes got = written(w, buf);
    CHECK(std::string(reinterpret_cast<const char *>(&got[24])) == "averyveryverylo");
    CHECK(got[24 + 15] == 0);
}

TEST_CASE("records of one action share a section; another action opens one", "[pfsync]") {
    std::vector<uint8_t> buf(1480);
    PfsyncWriter w(buf, 1500);
    REQUIRE(w.add_del_c(1, 0xa));
    REQUIRE(w.add_del_c(2, 0xa));
    REQUIRE(w.add_upd_req(3, 0xb));
    REQUIRE(w.add_del_c(4, 0xa));

    Bytes want = header(0);
    subheader(want, 7, 3, 2);
    put64(want, 1);
    put32(want, 0xa);
    put64(want, 2);
    put32(want, 0xa);
    subheader(want, 5, 3, 1);
    put64(want, 3);
    put32(want, 0xb);
    subheader(want, 7, 3, 1); // DEL_C again, but not the last section: a new one
    put64(want, 4);
    put32(want, 0xa);
    want = sealed(want);
    CHECK(written(w, buf) == want);
    CHECK(w.records() == 4);
}

TEST_CASE("an empty writer produces a bare header", "[pfsync]") {
    std::vector<uint8_t> buf(100, 0xff);
    PfsyncWriter w(buf, 1500);
    CHECK(w.empty());
    CHECK(written(w, buf) == sealed(header(0)));
}

// ===================================================================================
// MTU

TEST_CASE("the writer refuses a record that would pass the MTU and writes nothing", "[pfsync]") {
    const dp::State s = sample_state();
    // Exactly one INS: IPv4 20 + header 20 + subheader 4 + state 264.
    std::vector<uint8_t> buf(2000, 0xaa);
    PfsyncWriter w(buf, 308);
    CHECK(w.capacity() == 288);
    REQUIRE(w.add_state(StateAction::ins, s, now, 1));
    CHECK(w.size() == 288);
    const std::vector<uint8_t> before = buf;
    CHECK_FALSE(w.add_state(StateAction::ins, s, now, 1));
    CHECK_FALSE(w.add_del_c(1, 1)); // a new section needs 16 bytes, 0 left
    CHECK(buf == before);
    CHECK(w.size() == 288);
    CHECK(w.records() == 1);
    CHECK(w.finish() == 288);

    // After reset() the record goes into a new packet.
    w.reset();
    CHECK(w.add_del_c(1, 1));
}

TEST_CASE("appending to a section needs only the record's bytes", "[pfsync]") {
    // header 20 + subheader 4 + two DEL_C 24 = 48 bytes of payload.
    std::vector<uint8_t> buf(48);
    PfsyncWriter w(buf, 1500); // the buffer is the tighter limit
    CHECK(w.capacity() == 48);
    REQUIRE(w.add_del_c(1, 1));
    REQUIRE(w.add_del_c(2, 1));
    CHECK(w.size() == 48);
    CHECK_FALSE(w.add_del_c(3, 1));
    CHECK_FALSE(w.add_bus(BusStatus::end, 1));
}

TEST_CASE("a 1500-byte MTU holds five full states", "[pfsync]") {
    const dp::State s = sample_state();
    std::vector<uint8_t> buf(1480);
    PfsyncWriter w(buf, 1500);
    int n = 0;
    while (w.add_state(StateAction::upd, s, now, 1))
        n++;
    CHECK(n == 5); // 20 + 4 + 5 * 264 = 1344; a sixth would need 1608
    CHECK(w.finish() == 1344);
    CHECK(w.finish() + ipv4_header_len <= 1500);
    // What is left still takes small records in a new section.
    CHECK(w.add_bus(BusStatus::end, 1));
    CHECK(w.finish() == 1344 + 16);
}

TEST_CASE("a writer too small for the header refuses everything", "[pfsync]") {
    std::vector<uint8_t> buf(100);
    PfsyncWriter w(buf, 39); // 19 bytes of payload
    CHECK_FALSE(w.add_del_c(1, 1));
    CHECK(w.finish() == 0);
    PfsyncWriter w2(std::span<uint8_t>(buf.data(), 10), 1500);
    CHECK_FALSE(w2.add_upd_req(0, 0));
}

// ===================================================================================
// Round trips

TEST_CASE("a state survives State -> wire -> State", "[pfsync]") {
    const dp::State s = sample_state();
    std::vector<uint8_t> buf(1480);
    PfsyncWriter w(buf, 1500);
    REQUIRE(w.add_state(StateAction::ins, s, now, remaining_of(s)));
    const Decoded d = decode_bytes(written(w, buf));
    REQUIRE(d.result == PfsyncError::none);
    REQUIRE(d.rec.inss.size() == 1);
    require_no_errors(d.stats);

    ImportedState imp;
    REQUIRE(import_state(d.rec.inss[0], imp) == PfsyncError::none);
    CHECK(imp.age == 100);
    CHECK(imp.remaining == 86390);
    CHECK_FALSE(imp.ack_requested);

    SECTION("same clock: the times come back exactly") {
        const StateTimes t = imported_times(now, imp.age, imp.remaining, established_lifetime);
        imp.state.creation = t.creation;
        imp.state.expire = t.expire;
        dp::State want = s;
        want.iface = dp::floating_iface; // states float; the interface is not sent
        want.origin = dp::state_origin::peer;
        require_same_state(imp.state, want);
    }
    SECTION("another clock: age and idle time are kept") {
        const StateTimes t = imported_times(50000, imp.age, imp.remaining, established_lifetime);
        CHECK(t.creation == 50000 - 100);
        CHECK(t.expire == 50000 - 10);
    }
}

TEST_CASE("an IPv6 UDP state and an ICMP state round-trip", "[pfsync]") {
    dp::State s6 = sample_state();
    s6.key.af = 6;
    s6.key.proto = dp::proto_udp;
    s6.key.addr[0] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    s6.key.addr[1] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 2};
    s6.key.port[0] = 5353;
    s6.key.port[1] = 53;
    s6.src = {};
    s6.dst = {};
    s6.src.state = 2; // PFUDPS_MULTIPLE
    s6.dst.state = 1;
    s6.timeout = dp::Timeout::udp_multiple;
    s6.direction = dp::StateDirection::out;

    dp::State s4 = sample_state();
    s4.key.proto = dp::proto_icmp;
    s4.key.port[0] = s4.key.port[1] = 0x4242; // echo id
    s4.timeout = dp::Timeout::icmp_first;

    for (const dp::State &s : {s6, s4}) {
        PfsyncState sp;
        export_state(s, now, 30, sp);
        if (s.key.af == 6) {
            CHECK(sp.af == 24);
            CHECK(sp.key[0].af == 24);
            // PF_OUT: sidx is 1, so the stack side's table is -1.
            CHECK(sp.rtableid[0].get() == 0);
            CHECK(sp.rtableid[1].get() == 0xffffffffu);
        }
        ImportedState imp;
        REQUIRE(import_state(sp, imp) == PfsyncError::none);
        CHECK(imp.remaining == 30);
        imp.state.creation = s.creation;
        imp.state.expire = s.expire;
        dp::State want = s;
        want.iface = dp::floating_iface;
        want.origin = dp::state_origin::peer;
        require_same_state(imp.state, want);
    }
}

TEST_CASE("import zeroes what an IPv4 address leaves over", "[pfsync]") {
    PfsyncState sp;
    export_state(sample_state(), now, 1, sp);
    for (auto &k : sp.key)
        k.addr[0].addr[9] = 0x77; // garbage past the IPv4 address in both keys
    ImportedState imp;
    REQUIRE(import_state(sp, imp) == PfsyncError::none);
    CHECK(imp.state.key.addr[0] == std::array<uint8_t, 16>{192, 0, 2, 10});
}

TEST_CASE("import accepts key af 0 as the state's af", "[pfsync]") {
    PfsyncState sp;
    export_state(sample_state(), now, 1, sp);
    sp.key[0].af = 0;
    sp.key[1].af = 0;
    ImportedState imp;
    CHECK(import_state(sp, imp) == PfsyncError::none);
    CHECK(imp.state.key.af == 4);
}

// ===================================================================================
// Translated (NAT) states: two keys

namespace {

// One pfsync_state_key, field by field (docs/pfsync.md 1.9): 0 addr[0], 16 addr[1] (IPv4 in
// the first 4 bytes, the rest zero), 32 port[0], 34 port[1] (network order), 36 rdomain 0,
// 38 af, 39 pad.
Bytes key_bytes(std::initializer_list<uint8_t> addr0, uint16_t port0,
                std::initializer_list<uint8_t> addr1, uint16_t port1, uint8_t af) {
    Bytes b;
    put_bytes(b, addr0);
    zeros(b, 16 - addr0.size());
    put_bytes(b, addr1);
    zeros(b, 16 - addr1.size());
    put16(b, port0);
    put16(b, port1);
    put16(b, 0); // rdomain
    put8(b, af);
    put8(b, 0); // pad
    REQUIRE(b.size() == 40);
    return b;
}

// The 264 bytes of a two-key pfsync_state: sample_state()'s identity, counters, age, rule,
// log and flags, with the given keys (24: key[0] = wire, 64: key[1] = stack), peers (64
// bytes), af, proto, direction, timeout and remaining lifetime.
Bytes two_key_state_bytes(const Bytes &wire, const Bytes &stack, const Bytes &peers, uint8_t af,
                          uint8_t proto, uint8_t direction, uint8_t timeout, uint32_t remaining) {
    Bytes b;
    put64(b, 0x0102030405060708ull); //   0 id
    put_bytes(b, {'a', 'l', 'l'});   //   8 ifname "all"
    zeros(b, 13);
    REQUIRE(b.size() == 24);
    b.insert(b.end(), wire.begin(), wire.end()); //  24 key[0]: PF_SK_WIRE
    REQUIRE(b.size() == 64);
    b.insert(b.end(), stack.begin(), stack.end()); //  64 key[1]: PF_SK_STACK
    REQUIRE(b.size() == 104);
    b.insert(b.end(), peers.begin(), peers.end()); // 104 src, 136 dst
    REQUIRE(b.size() == 168);
    zeros(b, 16);                              // 168 rt_addr
    put32(b, 3);                               // 184 rule
    put32(b, 0xffffffff);                      // 188 anchor
    put32(b, 0xffffffff);                      // 192 nat_rule
    put32(b, 100);                             // 196 creation: age
    put32(b, remaining);                       // 200 expire: remaining
    put32(b, 1);                               // 204 packets[0] hi
    put32(b, 2);                               //     packets[0] lo
    put32(b, 0);                               //     packets[1] hi
    put32(b, 3);                               //     packets[1] lo
    put32(b, 0xa);                             // 220 bytes[0] hi
    put32(b, 0xb);                             //     bytes[0] lo
    put32(b, 0);                               //     bytes[1] hi
    put32(b, 0x1234);                          //     bytes[1] lo
    put_bytes(b, {0xde, 0xad, 0xbe, 0xef});    // 236 creatorid
    put32(b, direction == 1 ? 0xffffffff : 0); // 240 rtableid[0]: -1 for PF_IN (sidx 0)
    put32(b, direction == 1 ? 0 : 0xffffffff); //     rtableid[1]: -1 for PF_OUT (sidx 1)
    put16(b, 1400);                            // 248 max_mss
    put_bytes(b, {af, proto, direction, 1, 0, timeout, 0, 0, 0,
                  0});    // 250 af proto dir log
                          //     rt timeout sync_flags updates min_ttl set_tos
    put16(b, 0x0001);     // 260 state_flags
    put_bytes(b, {0, 0}); // 262 set_prio
    REQUIRE(b.size() == 264);
    return b;
}

Bytes sample_peer_bytes() {
    Bytes b;
    sample_src_bytes(b);
    sample_dst_bytes(b);
    return b;
}
// src pseudo-state 2 (MULTIPLE), dst 1 (SINGLE), everything else zero.
Bytes pseudo_peer_bytes() {
    Bytes b;
    peer_bytes(b, 0, 0, 0, 0, 0, 2, 0);
    peer_bytes(b, 0, 0, 0, 0, 0, 1, 0);
    return b;
}
void pseudo_peers(dp::State &s) {
    s.src = {};
    s.dst = {};
    s.src.state = 2;
    s.dst.state = 1;
}

dp::StateKey make_key(std::array<uint8_t, 16> a0, uint16_t p0, std::array<uint8_t, 16> a1,
                      uint16_t p1, uint8_t af, uint8_t proto) {
    dp::StateKey k;
    k.addr[0] = a0;
    k.addr[1] = a1;
    k.port[0] = p0;
    k.port[1] = p1;
    k.af = af;
    k.proto = proto;
    return k;
}

struct NatCase {
    std::string name;
    dp::State state;    // as the table holds it: key = the first packet's, untranslated
    dp::StateKey other; // the key after translation
    uint32_t remaining;
    Bytes golden; // the 264-byte record
};

// pf's key convention in both keys: an outbound state's addr[0] is the destination, an
// inbound one's addr[0] the source; NAT rewrites the source of an outbound packet
// (addr[1]), rdr-to the destination of an inbound one (addr[1]).
std::vector<NatCase> nat_cases() {
    std::vector<NatCase> v;
    {
        // nat-to, out: 192.0.2.10:40000 -> 203.0.113.80:443 leaves as 198.51.100.1:61234.
        NatCase c;
        c.name = "IPv4 TCP nat-to";
        c.state = sample_state();
        c.state.direction = dp::StateDirection::out;
        c.state.key = make_key({203, 0, 113, 80}, 443, {192, 0, 2, 10}, 40000, 4, dp::proto_tcp);
        c.other = make_key({203, 0, 113, 80}, 443, {198, 51, 100, 1}, 61234, 4, dp::proto_tcp);
        c.remaining = remaining_of(c.state);
        c.golden = two_key_state_bytes(
            key_bytes({203, 0, 113, 80}, 443, {198, 51, 100, 1}, 61234, 2), // wire: translated
            key_bytes({203, 0, 113, 80}, 443, {192, 0, 2, 10}, 40000, 2),   // stack: original
            sample_peer_bytes(), 2, 6, 2, 2, 86390);
        v.push_back(c);
    }
    {
        // rdr-to, in: 198.51.100.7:50000 -> 203.0.113.80:80 is redirected to 10.0.0.5:8080.
        NatCase c;
        c.name = "IPv4 TCP rdr-to";
        c.state = sample_state();
        c.state.direction = dp::StateDirection::in;
        c.state.key = make_key({198, 51, 100, 7}, 50000, {203, 0, 113, 80}, 80, 4, dp::proto_tcp);
        c.other = make_key({198, 51, 100, 7}, 50000, {10, 0, 0, 5}, 8080, 4, dp::proto_tcp);
        c.remaining = remaining_of(c.state);
        c.golden = two_key_state_bytes(
            key_bytes({198, 51, 100, 7}, 50000, {203, 0, 113, 80}, 80, 2), // wire: original
            key_bytes({198, 51, 100, 7}, 50000, {10, 0, 0, 5}, 8080, 2),   // stack: translated
            sample_peer_bytes(), 2, 6, 1, 2, 86390);
        v.push_back(c);
    }
    {
        // NAT66 nat-to, out: [fd00::10]:5353 -> [2001:db8:53::1]:53 leaves as
        // [2001:db8:ffff::1]:62000.
        const std::array<uint8_t, 16> dns = {0x20, 0x01, 0x0d, 0xb8, 0, 0x53, 0, 0,
                                             0,    0,    0,    0,    0, 0,    0, 1};
        const std::array<uint8_t, 16> inside = {0xfd, 0, 0, 0, 0, 0, 0, 0,
                                                0,    0, 0, 0, 0, 0, 0, 0x10};
        const std::array<uint8_t, 16> outside = {0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0,
                                                 0,    0,    0,    0,    0,    0,    0, 1};
        NatCase c;
        c.name = "IPv6 UDP nat-to";
        c.state = sample_state();
        c.state.direction = dp::StateDirection::out;
        c.state.timeout = dp::Timeout::udp_multiple;
        pseudo_peers(c.state);
        c.state.key = make_key(dns, 53, inside, 5353, 6, dp::proto_udp);
        c.other = make_key(dns, 53, outside, 62000, 6, dp::proto_udp);
        c.remaining = 55;
        c.golden = two_key_state_bytes(
            key_bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0x53, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 53,
                      {0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 62000,
                      24),
            key_bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0x53, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 53,
                      {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}, 5353, 24),
            pseudo_peer_bytes(), 24, 17, 2, 8, 55);
        v.push_back(c);
    }
    {
        // ICMP echo nat-to, out: 192.0.2.10 id 0x4242 -> 203.0.113.80 leaves as
        // 198.51.100.1 id 50000 (0xc350); both ports of a key are the echo id.
        NatCase c;
        c.name = "IPv4 ICMP echo nat-to";
        c.state = sample_state();
        c.state.direction = dp::StateDirection::out;
        c.state.timeout = dp::Timeout::icmp_first;
        pseudo_peers(c.state);
        c.state.key =
            make_key({203, 0, 113, 80}, 0x4242, {192, 0, 2, 10}, 0x4242, 4, dp::proto_icmp);
        c.other = make_key({203, 0, 113, 80}, 0xc350, {198, 51, 100, 1}, 0xc350, 4, dp::proto_icmp);
        c.remaining = 20;
        c.golden =
            two_key_state_bytes(key_bytes({203, 0, 113, 80}, 0xc350, {198, 51, 100, 1}, 0xc350, 2),
                                key_bytes({203, 0, 113, 80}, 0x4242, {192, 0, 2, 10}, 0x4242, 2),
                                pseudo_peer_bytes(), 2, 1, 2, 9, 20);
        v.push_back(c);
    }
    return v;
}

Bytes record_bytes(const PfsyncState &sp) {
    const auto *p = reinterpret_cast<const uint8_t *>(&sp);
    return Bytes(p, p + sizeof sp);
}
PfsyncState record_of(const Bytes &b) {
    REQUIRE(b.size() == sizeof(PfsyncState));
    PfsyncState sp;
    std::memcpy(&sp, b.data(), sizeof sp);
    return sp;
}

} // namespace

TEST_CASE("NAT states export to OpenBSD's two-key records", "[pfsync][nat]") {
    for (const NatCase &c : nat_cases()) {
        INFO(c.name);
        PfsyncState sp;
        export_state(c.state, now, c.remaining, sp, &c.other);
        CHECK(record_bytes(sp) == c.golden);

        // The writer passes the other key through (and PFSTATE_ACK on top).
        Bytes want = header(0);
        subheader(want, 13, 66, 1);
        want.insert(want.end(), c.golden.begin(), c.golden.end());
        want[24 + 261] |= 0x10;
        want = sealed(want);
        std::vector<uint8_t> buf(1480);
        PfsyncWriter w(buf, 1500);
        REQUIRE(w.add_state(StateAction::ins, c.state, now, c.remaining, true, &c.other));
        CHECK(written(w, buf) == want);
    }
}

TEST_CASE("two-key records import as the state's key and the other key", "[pfsync][nat]") {
    for (const NatCase &c : nat_cases()) {
        INFO(c.name);
        // The golden record passes decode's checks and reaches the handler.
        Bytes p = header(0);
        subheader(p, 13, 66, 1);
        p.insert(p.end(), c.golden.begin(), c.golden.end());
        const Decoded d = decode_bytes(sealed(p));
        REQUIRE(d.result == PfsyncError::none);
        require_no_errors(d.stats);
        REQUIRE(d.rec.inss.size() == 1);

        ImportedState imp;
        REQUIRE(import_state(d.rec.inss[0], imp) == PfsyncError::none);
        CHECK(imp.translated);
        CHECK(imp.state.direction == c.state.direction);
        CHECK(imp.state.key == c.state.key);
        CHECK(imp.other == c.other);
        CHECK(imp.age == 100);
        CHECK(imp.remaining == c.remaining);

        imp.state.creation = c.state.creation;
        imp.state.expire = c.state.expire;
        dp::State want = c.state;
        want.iface = dp::floating_iface;
        want.origin = dp::state_origin::peer;
        require_same_state(imp.state, want);
    }
}

TEST_CASE("a two-key record survives wire -> State -> wire byte for byte", "[pfsync][nat]") {
    for (const NatCase &c : nat_cases()) {
        INFO(c.name);
        ImportedState imp;
        REQUIRE(import_state(record_of(c.golden), imp) == PfsyncError::none);
        REQUIRE(imp.translated);
        // What a receiver's table holds: its own clock, times from the record.
        const uint32_t clock = 777777;
        const StateTimes t = imported_times(clock, imp.age, imp.remaining, 86400);
        imp.state.creation = t.creation;
        imp.state.expire = t.expire;
        PfsyncState again;
        export_state(imp.state, clock, imp.remaining, again, &imp.other);
        CHECK(record_bytes(again) == c.golden);
    }
}

TEST_CASE("a translated state exported without its other key sends one key", "[pfsync][nat]") {
    const NatCase c = nat_cases()[0];
    PfsyncState sp;
    export_state(c.state, now, c.remaining, sp); // as callers that know no NAT do
    const Bytes got = record_bytes(sp);
    CHECK(Bytes(got.begin() + 24, got.begin() + 64) == Bytes(got.begin() + 64, got.begin() + 104));
    CHECK(Bytes(got.begin() + 64, got.begin() + 104) ==
          key_bytes({203, 0, 113, 80}, 443, {192, 0, 2, 10}, 40000, 2));
    ImportedState imp;
    REQUIRE(import_state(sp, imp) == PfsyncError::none);
    CHECK_FALSE(imp.translated);
    CHECK(imp.state.key == c.state.key);
}

TEST_CASE("a record with equal keys imports untranslated", "[pfsync][nat]") {
    using Mutation = void (*)(PfsyncState &);
    const Mutation mutations[] = {
        [](PfsyncState &) {}, // as sent
        [](PfsyncState &sp) { // bytes past an IPv4 address differ: not part of the key
            sp.key[1].addr[0].addr[9] = 0x77;
            sp.key[0].addr[1].addr[15] = 0x01;
        },
        [](PfsyncState &sp) { sp.key[1].af = 0; }, // af 0: the state's
    };
    for (const auto dir : {dp::StateDirection::in, dp::StateDirection::out}) {
        for (std::size_t m = 0; m < std::size(mutations); m++) {
            INFO("direction " << int(dir) << ", mutation " << m);
            dp::State s = sample_state();
            s.direction = dir;
            PfsyncState sp;
            export_state(s, now, 1, sp);
            mutations[m](sp);
            ImportedState imp;
            REQUIRE(import_state(sp, imp) == PfsyncError::none);
            CHECK_FALSE(imp.translated);
            CHECK(imp.state.key == s.key);
            CHECK(imp.other == s.key);
        }
    }
    // The golden single-key record, too.
    ImportedState imp;
    REQUIRE(import_state(record_of(sample_state_bytes()), imp) == PfsyncError::none);
    CHECK_FALSE(imp.translated);
    CHECK(imp.other == imp.state.key);
    CHECK(imp.state.key == sample_state().key);
}

TEST_CASE("check_state accepts differing keys of one family, refuses af-to", "[pfsync][nat]") {
    PfsyncState base;
    export_state(sample_state(), now, 1, base);
    REQUIRE(check_state(base) == PfsyncError::none);

    auto with = [&](auto mutate) {
        PfsyncState sp = base;
        mutate(sp);
        return sp;
    };
    // NAT: a port, an address, or a stack key whose af is 0 (= the state's).
    for (const PfsyncState &sp :
         {with([](PfsyncState &s) { s.key[1].port[0].set(1234); }),
          with([](PfsyncState &s) { s.key[1].addr[1].addr[3] = 99; }), with([](PfsyncState &s) {
              s.key[0].addr[1].addr[3] = 21;
              s.key[1].af = 0;
          })}) {
        CHECK(check_state(sp) == PfsyncError::none);
        ImportedState imp;
        CHECK(import_state(sp, imp) == PfsyncError::none);
        CHECK(imp.translated);
    }
    // af-to: the stack key of another family, whichever the state's is.
    CHECK(check_state(with([](PfsyncState &s) { s.key[1].af = 24; })) == PfsyncError::keys_differ);
    CHECK(check_state(with([](PfsyncState &s) {
              s.af = 24;
              s.key[0].af = 24;
              s.key[1].af = 2;
          })) == PfsyncError::keys_differ);
    CHECK(check_state(with([](PfsyncState &s) {
              s.af = 24;
              s.key[0].af = 0;
              s.key[1].af = 2;
          })) == PfsyncError::keys_differ);
    CHECK(pfsync_error_texts[std::size_t(PfsyncError::keys_differ)] ==
          "wire and stack keys of different address families (af-to)");
    // Each key's rdomain must be 0, also when they differ.
    CHECK(check_state(with([](PfsyncState &s) { s.key[1].rdomain.set(2); })) ==
          PfsyncError::nonzero_rdomain);
    CHECK(check_state(with([](PfsyncState &s) { s.key[0].rdomain.set(2); })) ==
          PfsyncError::nonzero_rdomain);
}

TEST_CASE("imported times follow pf's back-dating, without a future last activity", "[pfsync]") {
    // remaining 0: pf gives a full lifetime (last activity = now).
    CHECK(imported_times(1000, 10, 0, 60).expire == 1000);
    // remaining 45 of 60: idle 15 s.
    CHECK(imported_times(1000, 10, 45, 60).expire == 985);
    CHECK(imported_times(1000, 10, 45, 60).creation == 990);
    // The sender's timeout was longer than ours: never in the future.
    CHECK(imported_times(1000, 10, 500, 60).expire == 1000);
    // The table clock is modular: a state older than our clock keeps its age.
    const StateTimes t = imported_times(5, 100, 0, 60);
    CHECK(uint32_t(5 - t.creation) == 100);
}

TEST_CASE("UPD_C carries the peers and timeout of a state", "[pfsync]") {
    const dp::State s = sample_state();
    std::vector<uint8_t> buf(200);
    PfsyncWriter w(buf, 1500);
    REQUIRE(w.add_upd_c(s));
    const Decoded d = decode_bytes(written(w, buf));
    REQUIRE(d.rec.upd_cs.size() == 1);
    const PfsyncUpdC &u = d.rec.upd_cs[0];
    CHECK(u.id.get() == s.id);
    CHECK(u.creatorid.get() == s.creatorid);
    CHECK(u.timeout == uint8_t(dp::Timeout::tcp_established));
    require_same_peer(peer_from_wire(u.src), s.src);
    require_same_peer(peer_from_wire(u.dst), s.dst);
}

// ===================================================================================
// Decoding: structure

TEST_CASE("a valid mixed packet delivers every record in order", "[pfsync]") {
    const Decoded d = decode_bytes(mixed_packet());
    REQUIRE(d.result == PfsyncError::none);
    require_no_errors(d.stats);
    CHECK(d.rec.packets == 1);
    CHECK(d.stats.packets == 1);
    CHECK(d.stats.records == 5);
    CHECK(d.rec.order == std::vector<std::string>{"ins", "upd_c", "del_c", "del_c", "bus"});
    CHECK(d.rec.del_cs[1].id.get() == 8);
    CHECK(d.rec.buses[0].status == 2);
}

TEST_CASE("a packet cut at any length is refused whole", "[pfsync]") {
    const Bytes full = mixed_packet();
    for (std::size_t n = 0; n < full.size(); n++) {
        INFO("length " << n);
        const Bytes cut(full.begin(), full.begin() + std::ptrdiff_t(n)); // exact size for ASan
        const Decoded d = decode_bytes(cut);
        const PfsyncError want =
            n < 20 ? PfsyncError::short_packet : PfsyncError::len_beyond_packet;
        CHECK(d.result == want);
        require_only_error(d.stats, want);
        CHECK(d.rec.order.empty());
        CHECK(d.rec.packets == 0);
    }
}

TEST_CASE("a packet whose len is cut at any length never reads past it", "[pfsync]") {
    // The header's len agrees with the cut: sections end early or are truncated.
    const Bytes full = mixed_packet();
    for (std::size_t n = 20; n <= full.size(); n++) {
        INFO("length " << n);
        Bytes cut(full.begin(), full.begin() + std::ptrdiff_t(n));
        cut[2] = uint8_t(n >> 8);
        cut[3] = uint8_t(n);
        const Decoded d = decode_bytes(cut);
        if (d.result == PfsyncError::none) {
            // Only at section boundaries (or with < 4 trailing bytes) is it acceptable.
            CHECK(d.rec.packets == 1);
        } else {
            CHECK(d.result == PfsyncError::section_truncated);
            CHECK(d.rec.order.empty());
        }
    }
    // Cut right after the INS section: only the INS arrives.
    const std::size_t after_ins = 20 + 4 + 264;
    Bytes cut(full.begin(), full.begin() + after_ins);
    cut[2] = uint8_t(after_ins >> 8);
    cut[3] = uint8_t(after_ins);
    const Decoded d = decode_bytes(cut);
    CHECK(d.result == PfsyncError::none);
    CHECK(d.rec.order == std::vector<std::string>{"ins"});
    // Two bytes more: not enough for a subheader, ignored and counted.
    Bytes cut2(full.begin(), full.begin() + after_ins + 2);
    cut2[2] = uint8_t((after_ins + 2) >> 8);
    cut2[3] = uint8_t(after_ins + 2);
    const Decoded d2 = decode_bytes(cut2);
    CHECK(d2.result == PfsyncError::none);
    require_only_error(d2.stats, PfsyncError::trailing_bytes);
}

TEST_CASE("header len beyond the packet drops it; bytes beyond len are cut", "[pfsync]") {
    Bytes p = mixed_packet();
    const std::size_t len = p.size();

    Bytes over = p;
    over[2] = uint8_t((len + 1) >> 8);
    over[3] = uint8_t(len + 1);
    Decoded d = decode_bytes(over);
    CHECK(d.result == PfsyncError::len_beyond_packet);
    CHECK(d.rec.order.empty());

    Bytes under = p;
    under[2] = 0;
    under[3] = 19;
    d = decode_bytes(under);
    CHECK(d.result == PfsyncError::len_below_header);
    require_only_error(d.stats, PfsyncError::len_below_header);

    // Ethernet padding after the packet: ignored, as pf trims to len.
    Bytes padded = p;
    padded.insert(padded.end(), {0, 0, 0, 0, 0xde, 0xad});
    d = decode_bytes(padded);
    CHECK(d.result == PfsyncError::none);
    require_no_errors(d.stats);
    CHECK(d.stats.records == 5);

    // A header alone is a valid, empty packet.
    d = decode_bytes(sealed(header(0)));
    CHECK(d.result == PfsyncError::none);
    CHECK(d.rec.packets == 1);
    CHECK(d.rec.order.empty());
}

TEST_CASE("a version other than 6 is dropped", "[pfsync]") {
    for (uint8_t v : {0, 1, 4, 5, 7, 255}) {
        Bytes p = mixed_packet();
        p[0] = v;
        const Decoded d = decode_bytes(p);
        CHECK(d.result == PfsyncError::bad_version);
        require_only_error(d.stats, PfsyncError::bad_version);
        CHECK(d.rec.order.empty());
    }
}

TEST_CASE("a count larger than the bytes present drops the packet, earlier sections too",
          "[pfsync]") {
    Bytes p = header(0);
    subheader(p, 7, 3, 1); // a good DEL_C section
    put64(p, 1);
    put32(p, 1);
    subheader(p, 7, 3, 2); // says two records, has one
    put64(p, 2);
    put32(p, 1);
    const Decoded d = decode_bytes(sealed(p));
    CHECK(d.result == PfsyncError::section_truncated);
    require_only_error(d.stats, PfsyncError::section_truncated);
    CHECK(d.rec.order.empty());
    CHECK(d.rec.packets == 0);
}

TEST_CASE("the subheader len is one record's size in 32-bit words", "[pfsync]") {
    // len 3 words x count 2 = 24 bytes, not 3 * 4 bytes for the whole section.
    Bytes p = header(0);
    subheader(p, 7, 3, 2);
    put64(p, 1);
    put32(p, 9);
    put64(p, 2);
    put32(p, 9);
    const Decoded d = decode_bytes(sealed(p));
    CHECK(d.result == PfsyncError::none);
    REQUIRE(d.rec.del_cs.size() == 2);
    CHECK(d.rec.del_cs[1].id.get() == 2);
}

TEST_CASE("longer records (a newer sender's) are read with its stride", "[pfsync]") {
    Bytes p = header(0);
    subheader(p, 7, 4, 2); // DEL_C of 16 bytes: 4 extra bytes each
    put64(p, 1);
    put32(p, 0xa);
    put32(p, 0xffffffff);
    put64(p, 2);
    put32(p, 0xb);
    put32(p, 0xffffffff);
    const Decoded d = decode_bytes(sealed(p));
    CHECK(d.result == PfsyncError::none);
    require_no_errors(d.stats);
    REQUIRE(d.rec.del_cs.size() == 2);
    CHECK(d.rec.del_cs[0].creatorid.get() == 0xa);
    CHECK(d.rec.del_cs[1].id.get() == 2);
    CHECK(d.rec.del_cs[1].creatorid.get() == 0xb);
}

TEST_CASE("an unknown action is skipped by its length", "[pfsync]") {
    Bytes p = header(0);
    subheader(p, 200, 2, 3); // 3 records of 8 bytes
    zeros(p, 24);
    subheader(p, 7, 3, 1);
    put64(p, 5);
    put32(p, 6);
    const Decoded d = decode_bytes(sealed(p));
    CHECK(d.result == PfsyncError::none);
    require_only_error(d.stats, PfsyncError::section_unknown_action);
    REQUIRE(d.rec.order == std::vector<std::string>{"del_c"});
    CHECK(d.rec.del_cs[0].id.get() == 5);
}

TEST_CASE("an unknown action without length or count drops the packet", "[pfsync]") {
    for (auto [words, count] : {std::pair{0, 1}, std::pair{3, 0}}) {
        Bytes p = header(0);
        subheader(p, 16, uint8_t(words), uint16_t(count));
        zeros(p, 12);
        const Decoded d = decode_bytes(sealed(p));
        CHECK(d.result == PfsyncError::bad_action);
        require_only_error(d.stats, PfsyncError::bad_action);
    }
}

TEST_CASE("a known action with records too small is skipped, or dropped when empty", "[pfsync]") {
    Bytes p = header(0);
    subheader(p, 4, 20, 1); // UPD_C needs 21 words
    zeros(p, 80);
    subheader(p, 5, 3, 1);
    zeros(p, 12);
    Decoded d = decode_bytes(sealed(p));
    CHECK(d.result == PfsyncError::none);
    require_only_error(d.stats, PfsyncError::section_short_records);
    CHECK(d.rec.order == std::vector<std::string>{"upd_req"});

    Bytes q = header(0);
    subheader(q, 13, 2, 0);
    d = decode_bytes(sealed(q));
    CHECK(d.result == PfsyncError::bad_action);
}

TEST_CASE("a known action with count 0 is an empty section", "[pfsync]") {
    Bytes p = header(0);
    subheader(p, 7, 3, 0);
    subheader(p, 7, 3, 1);
    put64(p, 1);
    put32(p, 1);
    const Decoded d = decode_bytes(sealed(p));
    CHECK(d.result == PfsyncError::none);
    require_no_errors(d.stats);
    CHECK(d.rec.del_cs.size() == 1);
}

TEST_CASE("deprecated actions and TDB are skipped; EOF does not end a v6 packet", "[pfsync]") {
    Bytes p = header(0);
    subheader(p, 1, 0, 0);   // OINS, nothing
    subheader(p, 15, 13, 1); // TDB, 52 bytes
    zeros(p, 52);
    subheader(p, 12, 0, 1); // EOF as FreeBSD writes it
    subheader(p, 2, 3, 1);  // INS_ACK after it
    put64(p, 42);
    put32(p, 43);
    const Decoded d = decode_bytes(sealed(p));
    CHECK(d.result == PfsyncError::none);
    CHECK(d.stats[PfsyncError::section_unhandled] == 2);
    CHECK(d.rec.order == std::vector<std::string>{"eof", "ins_ack"});
    CHECK(d.rec.ins_acks[0].id.get() == 42);
    CHECK(d.rec.ins_acks[0].creatorid.get() == 43);
}

TEST_CASE("CLR, DEL and UPD reach their handlers", "[pfsync]") {
    Bytes p = header(0);
    subheader(p, 0, 5, 1);
    put_bytes(p, {'e', 'm', '0'});
    zeros(p, 13);
    put32(p, 77);
    const Bytes st = sample_state_bytes();
    subheader(p, 6, 66, 1);
    p.insert(p.end(), st.begin(), st.end());
    subheader(p, 14, 66, 1);
    p.insert(p.end(), st.begin(), st.end());
    const Decoded d = decode_bytes(sealed(p));
    CHECK(d.result == PfsyncError::none);
    require_no_errors(d.stats);
    CHECK(d.rec.order == std::vector<std::string>{"clr", "del", "upd"});
    CHECK(std::string(d.rec.clrs[0].ifname) == "em0");
    CHECK(d.rec.clrs[0].creatorid.get() == 77);
    CHECK(d.rec.upds[0].id.get() == 0x0102030405060708ull);
}

// ===================================================================================
// Decoding: values

namespace {
// An INS packet of the sample state after `mutate` changed its wire form.
template <class F> Bytes ins_with(F mutate) {
    PfsyncState sp;
    export_state(sample_state(), now, 1, sp);
    mutate(sp);
    std::vector<uint8_t> buf(1480);
    PfsyncWriter w(buf, 1500);
    REQUIRE(w.add_state(StateAction::ins, sp));
    REQUIRE(w.add_del_c(1, 1)); // a good record after the bad one still arrives
    return written(w, buf);
}
template <class F> void require_state_refused(F mutate, PfsyncError why) {
    const Decoded d = decode_bytes(ins_with(mutate));
    CHECK(d.result == PfsyncError::none);
    require_only_error(d.stats, why);
    CHECK(d.rec.order == std::vector<std::string>{"del_c"});

    PfsyncState sp;
    export_state(sample_state(), now, 1, sp);
    mutate(sp);
    ImportedState imp;
    CHECK(import_state(sp, imp) == why);
}
} // namespace

TEST_CASE("full states with invalid values are refused with a reason", "[pfsync]") {
    SECTION("creator id 0") {
        require_state_refused([](PfsyncState &s) { s.creatorid.set(0); },
                              PfsyncError::creatorid_zero);
    }
    SECTION("direction") {
        require_state_refused([](PfsyncState &s) { s.direction = 3; }, PfsyncError::bad_direction);
        require_state_refused([](PfsyncState &s) { s.direction = 0; }, PfsyncError::bad_direction);
    }
    SECTION("timeout") {
        require_state_refused([](PfsyncState &s) { s.timeout = 20; }, PfsyncError::bad_timeout);
        require_state_refused([](PfsyncState &s) { s.timeout = 255; }, PfsyncError::bad_timeout);
        require_state_refused([](PfsyncState &s) { s.timeout = 16; },
                              PfsyncError::unsupported_timeout);
        require_state_refused([](PfsyncState &s) { s.timeout = 19; },
                              PfsyncError::unsupported_timeout);
    }
    SECTION("peer state") {
        require_state_refused([](PfsyncState &s) { s.src.state = 13; },
                              PfsyncError::bad_peer_state);
        require_state_refused([](PfsyncState &s) { s.dst.state = 200; },
                              PfsyncError::bad_peer_state);
    }
    SECTION("address family") {
        require_state_refused([](PfsyncState &s) { s.af = 0; }, PfsyncError::bad_af);
        require_state_refused([](PfsyncState &s) { s.af = 10; }, PfsyncError::bad_af); // Linux
        require_state_refused([](PfsyncState &s) { s.af = 28; }, PfsyncError::bad_af); // FreeBSD
        require_state_refused([](PfsyncState &s) { s.key[0].af = 24; }, PfsyncError::bad_key_af);
        require_state_refused([](PfsyncState &s) { s.key[1].af = 7; }, PfsyncError::bad_key_af);
    }
    SECTION("af-to: the two keys are of different families") {
        // (Keys that differ within one family are NAT, and accepted: see [nat].)
        require_state_refused(
            [](PfsyncState &s) {
                s.key[1].af = 24; // af-to
            },
            PfsyncError::keys_differ);
        require_state_refused(
            [](PfsyncState &s) {
                s.key[1].af = 24;
                s.key[1].port[0].set(1234);
            },
            PfsyncError::keys_differ);
    }
    SECTION("routing domain") {
        require_state_refused(
            [](PfsyncState &s) {
                s.key[0].rdomain.set(3);
                s.key[1].rdomain.set(3);
            },
            PfsyncError::nonzero_rdomain);
        require_state_refused([](PfsyncState &s) { s.key[1].rdomain.set(3); },
                              PfsyncError::nonzero_rdomain);
    }
    SECTION("protocol and family disagree") {
        require_state_refused([](PfsyncState &s) { s.proto = dp::proto_icmpv6; },
                              PfsyncError::proto_af_mismatch);
    }
}

TEST_CASE("UPD refused like INS; UPD_C and BUS checked", "[pfsync]") {
    PfsyncState sp;
    export_state(sample_state(), now, 1, sp);
    sp.timeout = 25; // a FreeBSD SCTP class
    std::vector<uint8_t> buf(1480);
    PfsyncWriter w(buf, 1500);
    REQUIRE(w.add_state(StateAction::upd, sp));
    dp::State s = sample_state();
    s.timeout = dp::Timeout(21);
    REQUIRE(w.add_upd_c(s));
    s.timeout = dp::Timeout::tcp_closing;
    s.dst.state = 13;
    REQUIRE(w.add_upd_c(s));
    s.dst.state = dp::tcps_time_wait;
    REQUIRE(w.add_upd_c(s)); // good
    const Decoded d = decode_bytes(written(w, buf));
    CHECK(d.result == PfsyncError::none);
    CHECK(d.stats[PfsyncError::bad_timeout] == 2);
    CHECK(d.stats[PfsyncError::bad_peer_state] == 1);
    CHECK(d.rec.order == std::vector<std::string>{"upd_c"});
    CHECK(d.stats.records == 1);

    Bytes p = header(0);
    subheader(p, 10, 3, 2);
    put32(p, 1);
    put32(p, 0);
    put_bytes(p, {3, 0, 0, 0}); // status 3: unknown
    put32(p, 1);
    put32(p, 0);
    put_bytes(p, {1, 0, 0, 0});
    const Decoded b = decode_bytes(sealed(p));
    require_only_error(b.stats, PfsyncError::bad_bus_status);
    REQUIRE(b.rec.buses.size() == 1);
    CHECK(b.rec.buses[0].status == 1);
}

TEST_CASE("decode statistics add up", "[pfsync]") {
    DecodeStats total;
    for (int i = 0; i < 3; i++) {
        const Decoded d = decode_bytes(mixed_packet());
        total.add(d.stats);
    }
    Bytes bad = mixed_packet();
    bad[0] = 5;
    total.add(decode_bytes(bad).stats);
    CHECK(total.packets == 3);
    CHECK(total.records == 15);
    CHECK(total[PfsyncError::bad_version] == 1);
}

// ===================================================================================
// Stale updates

namespace {
dp::TcpPeer peer(uint8_t state, uint32_t seqlo) {
    dp::TcpPeer p;
    p.state = state;
    p.seqlo = seqlo;
    return p;
}
} // namespace

TEST_CASE("an update with the same peers is not stale", "[pfsync]") {
    const auto a = peer(dp::tcps_established, 1000), b = peer(dp::tcps_established, 5000);
    const Staleness s = stale_update(dp::proto_tcp, a, b, a, b);
    CHECK_FALSE(s.any());
    CHECK(s.refresh_expire());
    CHECK_FALSE(s.send_ours_back());
}

TEST_CASE("a TCP update whose seqlo went backwards is stale on that side", "[pfsync]") {
    const auto ours_src = peer(dp::tcps_established, 1000);
    const auto ours_dst = peer(dp::tcps_established, 5000);
    const Staleness s =
        stale_update(dp::proto_tcp, ours_src, ours_dst, peer(dp::tcps_established, 900),
                     peer(dp::tcps_established, 5100));
    CHECK(s.src);
    CHECK_FALSE(s.dst);
    CHECK(s.refresh_expire()); // one side only
    CHECK(s.send_ours_back());

    const Staleness t =
        stale_update(dp::proto_tcp, ours_src, ours_dst, peer(dp::tcps_established, 1000),
                     peer(dp::tcps_established, 4999));
    CHECK_FALSE(t.src);
    CHECK(t.dst);
}

TEST_CASE("a TCP update whose state went backwards is stale even with a newer seqlo", "[pfsync]") {
    const Staleness s =
        stale_update(dp::proto_tcp, peer(dp::tcps_fin_wait_2, 1000), peer(dp::tcps_closing, 1),
                     peer(dp::tcps_established, 2000), peer(dp::tcps_established, 2));
    CHECK(s.src);
    CHECK(s.dst);
    CHECK(s.count() == 2);
    CHECK_FALSE(s.refresh_expire()); // both stale: pf keeps our expiry and timeout
}

TEST_CASE("a TCP update whose state moved forward is taken whatever its seqlo", "[pfsync]") {
    const Staleness s =
        stale_update(dp::proto_tcp, peer(dp::tcps_syn_sent, 1000), peer(dp::tcps_closed, 0),
                     peer(dp::tcps_established, 10), peer(dp::tcps_syn_sent, 0));
    CHECK_FALSE(s.any());
}

TEST_CASE("stale checks compare sequence numbers across the wrap", "[pfsync]") {
    // Ours is just past the wrap, the message's just before it: ours is newer.
    const Staleness s = stale_update(
        dp::proto_tcp, peer(dp::tcps_established, 0x00000010), peer(dp::tcps_established, 0),
        peer(dp::tcps_established, 0xfffffff0), peer(dp::tcps_established, 0));
    CHECK(s.src);
    CHECK_FALSE(s.dst);
    // The other way round, the message is newer.
    const Staleness t = stale_update(
        dp::proto_tcp, peer(dp::tcps_established, 0xfffffff0), peer(dp::tcps_established, 0),
        peer(dp::tcps_established, 0x00000010), peer(dp::tcps_established, 0));
    CHECK_FALSE(t.any());
}

TEST_CASE("src may leave the synproxy states; dst may not go back", "[pfsync]") {
    const auto est = peer(dp::tcps_established, 1);
    CHECK_FALSE(stale_update(dp::proto_tcp, peer(pf_tcps_proxy_dst, 1), est, est, est).src);
    CHECK(stale_update(dp::proto_tcp, peer(pf_tcps_proxy_dst, 1), est, peer(pf_tcps_proxy_src, 1),
                       est)
              .src);
    CHECK(stale_update(dp::proto_tcp, est, peer(pf_tcps_proxy_dst, 1), est, est).dst);
}

TEST_CASE("non-TCP updates are stale only when a pseudo-state goes back", "[pfsync]") {
    const Staleness s =
        stale_update(dp::proto_udp, peer(2, 1000), peer(1, 0), peer(1, 5000), peer(2, 0));
    CHECK(s.src);
    CHECK_FALSE(s.dst);
    // seqlo means nothing outside TCP.
    CHECK_FALSE(
        stale_update(dp::proto_udp, peer(2, 1000), peer(2, 1000), peer(2, 1), peer(2, 1)).any());
}

// ===================================================================================
// Fuzz

namespace {
struct Counting : PfsyncHandler {
    std::size_t n = 0;
    void on_packet(const PfsyncHeader &) override { n++; }
    void on_clr(const PfsyncClr &) override { n++; }
    void on_ins_ack(const PfsyncInsAck &) override { n++; }
    void on_upd_c(const PfsyncUpdC &) override { n++; }
    void on_upd_req(const PfsyncUpdReq &) override { n++; }
    void on_del(const PfsyncState &) override { n++; }
    void on_del_c(const PfsyncDelC &) override { n++; }
    void on_bus(const PfsyncBus &) override { n++; }
    void on_ins(const PfsyncState &sp) override {
        ImportedState imp;
        REQUIRE(import_state(sp, imp) == PfsyncError::none); // what decode passed imports
        n++;
    }
    void on_upd(const PfsyncState &) override { n++; }
    void on_eof() override { n++; }
};
} // namespace

TEST_CASE("decoding random and mutated bytes never fails unsafely", "[pfsync]") {
    std::mt19937 rng(20240601);
    const Bytes seed = mixed_packet();
    DecodeStats stats;
    Counting h;
    for (int i = 0; i < 20000; i++) {
        Bytes p;
        if (i % 2 == 0) {
            // Random bytes with a plausible header so that the section walk is reached.
            p.resize(rng() % 600);
            for (auto &b : p)
                b = uint8_t(rng());
            if (p.size() >= 4 && i % 4 == 0) {
                p[0] = 6;
                p[2] = uint8_t(p.size() >> 8);
                p[3] = uint8_t(p.size());
            }
        } else {
            // A valid packet with a few bytes changed and its end cut off at random.
            p = seed;
            for (int k = int(rng() % 6); k >= 0; k--)
                p[rng() % p.size()] = uint8_t(rng());
            p.resize(p.size() - rng() % 40);
        }
        p.shrink_to_fit(); // exact-size allocation: ASan sees any overread
        const Bytes copy = p;
        const PfsyncError e = decode(std::span<const uint8_t>(p.data(), p.size()), h, stats);
        CHECK((e == PfsyncError::none || drops_packet(e)));
        REQUIRE(p == copy); // input untouched
    }
    uint64_t counted = stats.packets;
    for (std::size_t i = 0; i < pfsync_error_count; i++)
        counted += drops_packet(PfsyncError(i)) ? stats.errors[i] : 0;
    CHECK(counted == 20000); // every packet was accepted or dropped for one reason
    CHECK(stats.packets > 0);
    CHECK(stats.records > 0);
}

TEST_CASE("fuzz seeds: packets of every action", "[.][fuzz-seeds]") {
    std::vector<uint8_t> buf(1500);
    const dp::State s = sample_state();
    auto seed = [&](const std::string &name, auto &&add) {
        PfsyncWriter w(buf, 1500);
        add(w);
        syncwall::test::write_fuzz_seed("pfsync", name, written(w, buf));
    };
    seed("ins", [&](PfsyncWriter &w) {
        REQUIRE(w.add_state(StateAction::ins, s, now, remaining_of(s), true));
    });
    seed("upd",
         [&](PfsyncWriter &w) { REQUIRE(w.add_state(StateAction::upd, s, now, remaining_of(s))); });
    seed("mixed", [&](PfsyncWriter &w) {
        REQUIRE(w.add_state(StateAction::ins, s, now, remaining_of(s)));
        REQUIRE(w.add_upd_c(s));
        REQUIRE(w.add_del_c(7, 0xdeadbeef));
        REQUIRE(w.add_ins_ack(7, 0xdeadbeef));
        REQUIRE(w.add_upd_req(0, 0));
        REQUIRE(w.add_upd_req(7, 0xdeadbeef));
        REQUIRE(w.add_bus(BusStatus::start, 0xdeadbeef));
        REQUIRE(w.add_bus(BusStatus::end, 0xdeadbeef, 5));
        REQUIRE(w.add_clr(0xdeadbeef, "lan"));
        REQUIRE(w.add_clr(0xdeadbeef));
    });
    Bytes hand = header(0);
    subheader(hand, 13, 264 / 4, 1); // a hand-built INS section
    const Bytes st = sample_state_bytes();
    hand.insert(hand.end(), st.begin(), st.end());
    syncwall::test::write_fuzz_seed("pfsync", "hand_ins", sealed(hand));
}
