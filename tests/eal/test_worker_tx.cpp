// A worker on two net_ring ports (suite "eal"): the main lcore's control frames (CARP
// adverts, ARP and ND answers) reach the port's queue ahead of forwarded traffic, and a
// full queue makes them wait for the next poll instead of dropping them.
#include "bench/ring_ports.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/worker.hpp"
#include "tests/eal/worker_fixture.hpp"

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

using namespace syncwall;

namespace {

constexpr unsigned tx_ring_size = 8; // an rte_ring of 8 holds 7

config::Config make_config() {
    config::Config c = test::polled_worker_config();
    auto prefix = [](const char *s) { return *config::parse_ip_prefix(s, true); };
    config::InterfaceConfig lan, wan;
    lan.name = "lan";
    lan.devargs = "net_ring_wtlan";
    lan.addresses = {prefix("192.0.2.1/24")};
    lan.pos = {"<eal test>", 1, 1};
    wan.name = "wan";
    wan.devargs = "net_ring_wtwan";
    wan.addresses = {prefix("198.51.100.1/24")};
    wan.pos = {"<eal test>", 2, 1};
    c.interfaces = {lan, wan};
    return c;
}

// A frame the main lcore would send; its first byte tells the frames apart.
rte_mbuf *control_frame(dp::Dataplane &dp, uint8_t tag) {
    rte_mbuf *m = rte_pktmbuf_alloc(dp.pool);
    REQUIRE(m != nullptr);
    auto *p = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, 60));
    REQUIRE(p != nullptr);
    std::fill(p, p + 60, 0);
    p[0] = tag;
    return m;
}

} // namespace

TEST_CASE("control frames wait for a full transmit queue instead of being dropped") {
    const bench::RingPort lan = bench::make_ring_port("wtlan", 1, 64, tx_ring_size),
                          wan = bench::make_ring_port("wtwan", 1, 64, tx_ring_size);
    const config::Config cfg = make_config();
    dp::Dataplane dp(cfg);
    dp.start_ports();
    dp::Worker w(dp, 0);

    // The lan queue is full: forwarded traffic (seven frames) no one has taken yet.
    std::vector<rte_mbuf *> filler;
    while (rte_ring_free_count(lan.tx[0]) > 0) {
        filler.push_back(control_frame(dp, 0xff));
        REQUIRE(rte_ring_enqueue(lan.tx[0], filler.back()) == 0);
    }
    for (uint8_t tag = 1; tag <= 3; tag++)
        dp.send_from_main(0, control_frame(dp, tag));

    // Polls while the queue stays full: the three frames are held, none dropped.
    for (int i = 0; i < 5; i++)
        w.poll_once();
    const auto held = dp.totals();
    CHECK(held.drops[std::size_t(dp::DropReason::tx_ring_full)] == 0);
    CHECK(held.ports[0].tx_packets == 0);
    CHECK(rte_ring_count(dp.ports[0].ctl_tx) == 0); // taken off the control ring, held

    // The port takes its queue's frames; the next poll sends the three, in order.
    void *out[tx_ring_size];
    const unsigned n = rte_ring_dequeue_burst(lan.tx[0], out, tx_ring_size, nullptr);
    REQUIRE(n == filler.size());
    for (unsigned i = 0; i < n; i++)
        rte_pktmbuf_free(static_cast<rte_mbuf *>(out[i]));
    w.poll_once();
    const unsigned sent = rte_ring_dequeue_burst(lan.tx[0], out, tx_ring_size, nullptr);
    REQUIRE(sent == 3);
    for (unsigned i = 0; i < sent; i++) {
        auto *m = static_cast<rte_mbuf *>(out[i]);
        CHECK(*rte_pktmbuf_mtod(m, uint8_t *) == i + 1);
        rte_pktmbuf_free(m);
    }
    const auto after = dp.totals();
    CHECK(after.drops[std::size_t(dp::DropReason::tx_ring_full)] == 0);
    CHECK(after.ports[0].tx_packets == 3);
    CHECK(rte_ring_count(wan.tx[0]) == 0);

    dp.stop_ports();
}
