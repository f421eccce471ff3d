// Where a worker puts a forwarded connection's two states (suite "eal"): the out pass asks
// the state table for a slot near the in state, so the twins of every connection a burst
// makes lie in partner slots (2k and 2k + 1), and the next packets link them. A worker
// polled by the test on two net_ring ports.
#include "bench/ring_ports.hpp"
#include "bench/traffic.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/state_table.hpp"
#include "dataplane/worker.hpp"
#include "tests/eal/worker_fixture.hpp"

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <catch2/catch.hpp>

using namespace syncwall;

namespace {

// lan and wan on net_ring ports, a gateway on wan, pf's `pass` (which keeps state).
config::Config make_config() {
    config::Config c = test::polled_worker_config();
    bench::add_interfaces_and_routes(c, "tplan", "tpwan", "<eal test>");
    c.rules = {{"pass all", {"<eal test>", 3, 1}}};
    return c;
}

// Sends flows [first, first + n) one UDP datagram each from lan in one burst; returns how
// many left on wan.
unsigned send_burst(dp::Dataplane &dp, dp::Worker &w, const bench::RingPort &lan,
                    const bench::RingPort &wan, uint32_t first, uint32_t n) {
    const bench::FrameWriter writer{64, true};
    const bench::Mac peer{0x02, 0x7e, 0, 0, 0, 2};
    for (uint32_t i = first; i < first + n; i++) {
        rte_mbuf *m = test::traffic_frame(dp.pool, writer, bench::flow_tuple(i, true), i,
                                          bench::Segment::udp, dp.ports[0].mac, peer);
        REQUIRE(rte_ring_enqueue(lan.rx[0], m) == 0);
    }
    w.poll_once();
    void *out[64];
    const unsigned sent = rte_ring_dequeue_burst(wan.tx[0], out, 64, nullptr);
    for (unsigned k = 0; k < sent; k++)
        rte_pktmbuf_free(static_cast<rte_mbuf *>(out[k]));
    return sent;
}

} // namespace

TEST_CASE("a worker puts each forwarded connection's two states in partner slots and links "
          "them",
          "[eal][state]") {
    const bench::RingPort lan = bench::make_ring_port("tplan", 1, 64, 64),
                          wan = bench::make_ring_port("tpwan", 1, 64, 64);
    const config::Config cfg = make_config();
    dp::Dataplane dp(cfg);
    bench::add_gateway_neighbours(dp, {0x02, 0x7e, 0, 0, 0, 1});
    dp.start_ports();
    dp::Worker w(dp, 0);
    dp::StateTable &st = *dp.states;

    // Three bursts of 32 new connections: each burst's in pass makes 32 states before its out
    // pass makes theirs.
    constexpr uint32_t bursts = 3, per_burst = 32;
    for (uint32_t b = 0; b < bursts; b++)
        REQUIRE(send_burst(dp, w, lan, wan, b * per_burst, per_burst) == per_burst);
    REQUIRE(st.count() == 2 * bursts * per_burst);
    for (uint32_t i = 0; i < bursts * per_burst; i++) {
        INFO("flow " << i);
        const uint32_t in = st.lookup(bench::flow_key(i, true, dp::StateDirection::in)),
                       out = st.lookup(bench::flow_key(i, true, dp::StateDirection::out));
        REQUIRE(in != dp::StateTable::no_slot);
        REQUIRE(out != dp::StateTable::no_slot);
        CHECK(out == (in ^ 1));
        CHECK(st.twin(in) == out); // linked by the packet that made them
        CHECK(st.twin(out) == in);
    }
    // The next datagrams find both states (no new ones) and leave.
    REQUIRE(send_burst(dp, w, lan, wan, 0, per_burst) == per_burst);
    CHECK(st.count() == 2 * bursts * per_burst);
    dp.stop_ports();
}
