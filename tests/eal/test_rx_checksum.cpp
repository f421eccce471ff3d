// Receive checksum offload (suite "eal"): a port asks its device to verify the IPv4, TCP and
// UDP checksums it can, and a worker takes the device's per-packet verdict (the mbuf's
// RX_IP_CKSUM / RX_L4_CKSUM flags) instead of summing the packet itself; without a verdict
// it sums as before. Frames go through a worker polled by the test on two net_ring ports,
// with the flags a NIC would set; a net_tap port shows which offloads are switched on.
// rte_eth_dev_conf_get, to read back what the device was configured with.
#define ALLOW_EXPERIMENTAL_API

#include "bench/ring_ports.hpp"
#include "bench/traffic.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/state_table.hpp"
#include "dataplane/worker.hpp"
#include "tests/eal/worker_fixture.hpp"

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace syncwall;

namespace {

config::Config make_config(const std::string &lan, const std::string &wan) {
    config::Config c = test::polled_worker_config();
    bench::add_interfaces_and_routes(c, lan, wan, "<eal test>");
    c.rules = {
        {"block all", {"<eal test>", 3, 1}},
        {"pass out all", {"<eal test>", 4, 1}},
        {"pass in on lan proto { tcp udp } from 198.18.0.0/16 to any", {"<eal test>", 5, 1}}};
    return c;
}

// Byte offsets in traffic.hpp's frames: Ethernet, a 20-byte IPv4 header, then TCP or UDP.
constexpr unsigned ip_checksum_at = 14 + 10, tcp_checksum_at = 34 + 16, udp_checksum_at = 34 + 6;

} // namespace

TEST_CASE("a device's checksum verdicts stand for the worker's own sums; without one it sums",
          "[eal][checksum]") {
    const bench::RingPort lan = bench::make_ring_port("cklan", 1, 64, 64),
                          wan = bench::make_ring_port("ckwan", 1, 64, 64);
    const config::Config cfg = make_config("cklan", "ckwan");
    dp::Dataplane dp(cfg);
    const bench::Mac peer{0x02, 0x7e, 0, 0, 0, 2};
    bench::add_gateway_neighbours(dp, peer);
    dp.start_ports();
    dp::Worker w(dp, 0);

    // Flow `flow`'s first segment onto lan, with `corrupt` bytes flipped and `flags` set
    // as a device would; returns how many frames left on wan.
    auto send = [&](uint32_t flow, bool udp, std::vector<unsigned> corrupt, uint64_t flags) {
        const bench::FrameWriter writer{64, udp};
        rte_mbuf *m = test::traffic_frame(dp.pool, writer, bench::flow_tuple(flow, udp), flow,
                                          udp ? bench::Segment::udp : bench::Segment::syn,
                                          dp.ports[0].mac, peer);
        uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
        for (unsigned at : corrupt)
            p[at] ^= 0x5a;
        m->ol_flags |= flags;
        REQUIRE(rte_ring_enqueue(lan.rx[0], m) == 0);
        w.poll_once();
        void *out[8];
        const unsigned n = rte_ring_dequeue_burst(wan.tx[0], out, 8, nullptr);
        for (unsigned i = 0; i < n; i++)
            rte_pktmbuf_free(static_cast<rte_mbuf *>(out[i]));
        return n;
    };
    auto drops = [&](dp::DropReason r) { return dp.totals().drops[std::size_t(r)]; };
    const auto cksum = dp::DropReason::proto_cksum, bad_ip = dp::DropReason::ipv4_bad_checksum;

    // No verdict (ol_flags 0, as net_ring gives): the worker sums the headers itself.
    CHECK(send(1, false, {}, 0) == 1);
    CHECK(send(2, false, {tcp_checksum_at}, 0) == 0);
    CHECK(drops(cksum) == 1);
    CHECK(send(3, true, {udp_checksum_at}, 0) == 0);
    CHECK(drops(cksum) == 2);
    CHECK(send(4, false, {ip_checksum_at}, 0) == 0);
    CHECK(drops(bad_ip) == 1);
    CHECK(dp.states->count() == 2); // flow 1, in on lan and out on wan

    // The device says bad: dropped though the sums are right, and no state made.
    CHECK(send(5, false, {}, RTE_MBUF_F_RX_L4_CKSUM_BAD) == 0);
    CHECK(drops(cksum) == 3);
    CHECK(send(6, true, {}, RTE_MBUF_F_RX_L4_CKSUM_BAD) == 0);
    CHECK(drops(cksum) == 4);
    CHECK(send(7, false, {}, RTE_MBUF_F_RX_IP_CKSUM_BAD) == 0);
    CHECK(drops(bad_ip) == 2);
    CHECK(dp.states->count() == 2);

    // The device says good: wrong sums the worker would have caught pass on its word.
    CHECK(send(8, false, {tcp_checksum_at}, RTE_MBUF_F_RX_L4_CKSUM_GOOD) == 1);
    CHECK(send(9, true, {udp_checksum_at}, RTE_MBUF_F_RX_L4_CKSUM_GOOD) == 1);
    // Only the IPv4 header's verdict: the TCP checksum is summed, and is right.
    CHECK(send(10, false, {ip_checksum_at}, RTE_MBUF_F_RX_IP_CKSUM_GOOD) == 1);
    CHECK(drops(cksum) == 4);
    CHECK(drops(bad_ip) == 2);
    CHECK(dp.states->count() == 8);
    // The IPv4 verdict alone does not vouch for TCP: a wrong TCP sum is still caught.
    CHECK(send(11, false, {tcp_checksum_at}, RTE_MBUF_F_RX_IP_CKSUM_GOOD) == 0);
    CHECK(drops(cksum) == 5);

    // RX_IP_CKSUM_NONE (verified, but the field is stale) is summed again: the header
    // would leave with the field it came with.
    CHECK(send(12, false, {ip_checksum_at}, RTE_MBUF_F_RX_IP_CKSUM_NONE) == 0);
    CHECK(drops(bad_ip) == 3);
    dp.stop_ports();
}

TEST_CASE("a port switches on the receive checksum offloads its device offers", "[eal][checksum]") {
    // net_tap verifies IPv4, TCP and UDP checksums when asked; net_ring verifies none.
    const bench::RingPort wan = bench::make_ring_port("cktapwan", 1, 64, 64);
    config::Config cfg = make_config("unused", "cktapwan");
    cfg.interfaces[0].devargs = "net_tap_ck0,iface=swck0";
    dp::Dataplane dp(cfg);
    const uint64_t all =
        RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
    rte_eth_dev_info info{};
    REQUIRE(rte_eth_dev_info_get(dp.ports[0].port_id, &info) == 0);
    REQUIRE((info.rx_offload_capa & all) == all);
    CHECK(dp.ports[0].rx_checksum_offloads == all);
    CHECK(dp.ports[0].device_checksums() == std::vector<std::string>{"ipv4", "tcp", "udp"});
    rte_eth_conf conf{};
    REQUIRE(rte_eth_dev_conf_get(dp.ports[0].port_id, &conf) == 0);
    CHECK((conf.rxmode.offloads & all) == all);

    CHECK(dp.ports[1].rx_checksum_offloads == 0);
    CHECK(dp.ports[1].device_checksums().empty());
}
