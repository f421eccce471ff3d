// A burst's next hops (suite "eal"): a worker looks each neighbour key up once a burst and
// packets routed via the gateway of the packet before them share its key; a burst that
// mixes gateways, connected hosts and an unresolved neighbour still gives every packet its
// own next hop's MAC. A worker polled by the test on two net_ring ports.
#include "bench/ring_ports.hpp"
#include "bench/traffic.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/worker.hpp"
#include "tests/eal/worker_fixture.hpp"

#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <catch2/catch.hpp>

#include <array>
#include <vector>

using namespace syncwall;

namespace {

using Mac = std::array<uint8_t, 6>;

config::Config make_config() {
    config::Config c = test::polled_worker_config();
    bench::add_interfaces_and_routes(c, "nblan", "nbwan", "<eal test>");
    // A second gateway on wan, beside 192.0.2.2 (198.19.0.0/16).
    config::RouteConfig r;
    r.to = *config::parse_ip_prefix("198.51.100.0/24", true);
    r.via = config::parse_ip_address("192.0.2.3");
    r.iface = "wan";
    c.routes.push_back(r);
    c.rules = {{"pass all", {"<eal test>", 3, 1}}};
    return c;
}

void add_neighbour(dp::Dataplane &dp, const char *addr, const Mac &mac) {
    dp::NeighbourKey k;
    k.port = 1; // wan
    k.family = 4;
    k.addr = config::parse_ip_address(addr)->bytes;
    REQUIRE(dp.neighbours->update(k, mac));
}

} // namespace

TEST_CASE("a burst mixing gateways, connected hosts and an unresolved neighbour gives each "
          "packet its own next hop's MAC",
          "[eal][neighbours]") {
    const bench::RingPort lan = bench::make_ring_port("nblan", 1, 64, 64),
                          wan = bench::make_ring_port("nbwan", 1, 64, 64);
    const config::Config cfg = make_config();
    dp::Dataplane dp(cfg);
    const Mac gw_a{0x02, 0, 0, 0, 0, 0xa}, gw_b{0x02, 0, 0, 0, 0, 0xb},
        host_c{0x02, 0, 0, 0, 0, 0xc}, peer{0x02, 0x7e, 0, 0, 0, 2};
    add_neighbour(dp, "192.0.2.2", gw_a);
    add_neighbour(dp, "192.0.2.3", gw_b);
    add_neighbour(dp, "192.0.2.50", host_c);
    dp.start_ports();
    dp::Worker w(dp, 0);

    // Destinations in burst order, each with the MAC its frame must leave with (none: the
    // neighbour is unknown and the packet goes to the main lcore to resolve it).
    struct Want {
        std::array<uint8_t, 4> dst;
        const Mac *mac;
    };
    const std::vector<Want> burst = {
        {{198, 19, 0, 1}, &gw_a},   {{198, 19, 0, 2}, &gw_a},   {{198, 51, 100, 7}, &gw_b},
        {{198, 19, 0, 3}, &gw_a},   {{192, 0, 2, 50}, &host_c}, {{192, 0, 2, 51}, nullptr},
        {{192, 0, 2, 50}, &host_c}, {{198, 51, 100, 8}, &gw_b}, {{198, 51, 100, 9}, &gw_b},
        {{192, 0, 2, 51}, nullptr}, {{198, 19, 0, 4}, &gw_a},
    };
    const bench::FrameWriter writer{64, true};
    for (uint32_t i = 0; i < burst.size(); i++) {
        bench::FlowTuple t = bench::flow_tuple(i, true);
        t.server = burst[i].dst;
        rte_mbuf *m =
            test::traffic_frame(dp.pool, writer, t, i, bench::Segment::udp, dp.ports[0].mac, peer);
        REQUIRE(rte_ring_enqueue(lan.rx[0], m) == 0);
    }
    w.poll_once(); // one burst: every frame was on the ring before the poll

    void *out[64];
    const unsigned n = rte_ring_dequeue_burst(wan.tx[0], out, 64, nullptr);
    std::vector<const Want *> sent;
    for (const Want &want : burst)
        if (want.mac != nullptr) sent.push_back(&want);
    REQUIRE(n == sent.size());
    for (unsigned k = 0; k < n; k++) {
        auto *m = static_cast<rte_mbuf *>(out[k]);
        const auto *f = rte_pktmbuf_mtod(m, const uint8_t *);
        INFO("frame " << k);
        CHECK(std::equal(f, f + 6, sent[k]->mac->begin()));        // to the next hop
        CHECK(std::equal(f + 6, f + 12, dp.ports[1].mac.begin())); // from wan's MAC
        CHECK(std::equal(f + 30, f + 34, sent[k]->dst.begin()));   // the packet it was
        rte_pktmbuf_free(m);
    }
    const dp::CounterTotals tot = dp.totals();
    CHECK(tot.forwarded == sent.size());
    CHECK(tot.punted == 2); // the two packets to 192.0.2.51, to be resolved
    // What the main lcore would take: free it.
    rte_mbuf *m;
    while (rte_ring_dequeue(dp.punt_rings[0], reinterpret_cast<void **>(&m)) == 0)
        rte_pktmbuf_free(m);
    dp.stop_ports();
}
