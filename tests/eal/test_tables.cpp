// Route and neighbour tables on EAL memory (suite "eal": no hugepages, no PCI).
#include "config/config.hpp"
#include "dataplane/neighbours.hpp"
#include "dataplane/routes.hpp"

#include <catch2/catch.hpp>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <atomic>
#include <stdexcept>

using namespace syncwall;
using config::parse_ip_address;
using config::parse_ip_prefix;

namespace {

config::IpAddress ip(const char *s) {
    return *parse_ip_address(s);
}
config::IpPrefix pfx(const char *s) {
    return *parse_ip_prefix(s);
}

std::vector<dp::RoutedInterface> two_interfaces() {
    return {{"lan", 0, {pfx("192.0.2.1/24"), pfx("2001:db8:1::1/64")}},
            {"wan", 1, {pfx("198.51.100.1/24"), pfx("2001:db8:2::1/64")}}};
}

config::RouteConfig route(const char *to, const char *via) {
    config::RouteConfig r;
    r.to = pfx(to);
    r.via = ip(via);
    return r;
}

int fib_names = 0;
std::string fib_name() {
    return "test_fib" + std::to_string(fib_names++);
}

} // namespace

TEST_CASE("connected networks, our addresses and static routes resolve as expected",
          "[eal][routes]") {
    dp::RouteTable rt(fib_name(), two_interfaces(),
                      {route("0.0.0.0/0", "198.51.100.254"), route("203.0.113.0/25", "192.0.2.20"),
                       route("::/0", "2001:db8:2::fe")},
                      0);
    using K = dp::NextHop::Kind;
    const auto &own = rt.next_hop(rt.lookup(ip("192.0.2.1")));
    CHECK(own.kind == K::local);
    CHECK(own.port == 0);
    const auto &conn = rt.next_hop(rt.lookup(ip("192.0.2.77")));
    CHECK(conn.kind == K::forward);
    CHECK(conn.port == 0);
    CHECK_FALSE(conn.has_gateway);
    const auto &specific = rt.next_hop(rt.lookup(ip("203.0.113.9")));
    CHECK(specific.port == 0);
    CHECK(specific.gateway == ip("192.0.2.20"));
    const auto &dflt = rt.next_hop(rt.lookup(ip("203.0.113.200")));
    CHECK(dflt.port == 1);
    CHECK(dflt.gateway == ip("198.51.100.254"));
    const auto &v6 = rt.next_hop(rt.lookup(ip("2001:db8:99::1")));
    CHECK(v6.port == 1);
    CHECK(v6.gateway == ip("2001:db8:2::fe"));
    CHECK(rt.next_hop(rt.lookup(ip("2001:db8:2::1"))).kind == K::local);
    CHECK(rt.next_hop(rt.lookup(ip("2001:db8:1::55"))).port == 0);
}

TEST_CASE("without a default route an outside address has no route", "[eal][routes]") {
    dp::RouteTable rt(fib_name(), two_interfaces(), {}, 0);
    CHECK(rt.lookup(ip("203.0.113.1")) == dp::RouteTable::no_route);
    CHECK(rt.lookup(ip("2001:db8:3::1")) == dp::RouteTable::no_route);
    CHECK(rt.next_hop(dp::RouteTable::no_route).kind == dp::NextHop::Kind::none);
}

TEST_CASE("bulk IPv4 lookup agrees with single lookups", "[eal][routes]") {
    dp::RouteTable rt(fib_name(), two_interfaces(), {route("0.0.0.0/0", "198.51.100.254")}, 0);
    const uint32_t ips[4] = {0xC0000201, 0xC000024D, 0xC6336401, 0x08080808};
    dp::RouteTable::NextHopId nh[4];
    rt.lookup4(ips, nh, 4);
    CHECK(nh[0] == rt.lookup(ip("192.0.2.1")));
    CHECK(nh[1] == rt.lookup(ip("192.0.2.77")));
    CHECK(nh[2] == rt.lookup(ip("198.51.100.1")));
    CHECK(nh[3] == rt.lookup(ip("8.8.8.8")));
}

TEST_CASE("a next hop on no connected network is an error naming the route", "[eal][routes]") {
    auto r = route("203.0.113.0/24", "203.0.113.1");
    r.pos = {"fw.yaml", 12, 5};
    try {
        dp::RouteTable rt(fib_name(), two_interfaces(), {r}, 0);
        FAIL("no error");
    } catch (const std::runtime_error &e) {
        CHECK(
            std::string(e.what()) ==
            "fw.yaml:12:5: route 203.0.113.0/24: next hop 203.0.113.1 is on no connected network");
    }
}

TEST_CASE("neighbour table learns, updates and refuses when full", "[eal][neighbours]") {
    dp::NeighbourTable nt("test_nbr_a", 2, 0);
    dp::NeighbourKey k1, k2, k3;
    k1.family = k2.family = k3.family = 4;
    k1.addr[3] = 1;
    k2.addr[3] = 2;
    k3.addr[3] = 3;
    k2.port = 1;
    dp::Mac mac;
    CHECK_FALSE(nt.lookup(k1, mac));
    REQUIRE(nt.update(k1, {1, 2, 3, 4, 5, 6}));
    REQUIRE(nt.lookup(k1, mac));
    CHECK(mac == dp::Mac{1, 2, 3, 4, 5, 6});
    REQUIRE(nt.update(k1, {6, 5, 4, 3, 2, 1}));
    REQUIRE(nt.lookup(k1, mac));
    CHECK(mac == dp::Mac{6, 5, 4, 3, 2, 1});
    REQUIRE(nt.update(k2, {9, 9, 9, 9, 9, 9}));
    CHECK_FALSE(nt.update(k3, {7, 7, 7, 7, 7, 7}));
    CHECK(nt.size() == 2);
    const dp::NeighbourKey *keys[3] = {&k1, &k3, &k2};
    dp::Mac macs[3];
    CHECK(nt.lookup_bulk(keys, macs, 3) == 0b101);
    CHECK(macs[2] == dp::Mac{9, 9, 9, 9, 9, 9});
    CHECK(nt.dump().size() == 2);
}

namespace {
struct ReaderArgs {
    dp::NeighbourTable *table;
    dp::NeighbourKey key;
    std::atomic<bool> *stop;
    std::atomic<uint64_t> torn{0}, reads{0};
};
int reader(void *arg) {
    auto *a = static_cast<ReaderArgs *>(arg);
    dp::Mac mac;
    while (!a->stop->load()) {
        if (a->table->lookup(a->key, mac)) {
            a->reads++;
            // Every written address has six equal bytes; a mix of two is a torn read.
            for (int i = 1; i < 6; i++)
                if (mac[i] != mac[0]) a->torn++;
        }
    }
    return 0;
}
} // namespace

TEST_CASE("a worker reading a neighbour while the main lcore rewrites it never sees a torn address",
          "[eal][neighbours]") {
    const unsigned worker = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
    REQUIRE(worker < RTE_MAX_LCORE);
    dp::NeighbourTable nt("test_nbr_b", 16, 0);
    dp::NeighbourKey k;
    k.family = 6;
    k.addr[15] = 7;
    REQUIRE(nt.update(k, {1, 1, 1, 1, 1, 1}));
    std::atomic<bool> stop{false};
    ReaderArgs args{&nt, k, &stop};
    REQUIRE(rte_eal_remote_launch(reader, &args, worker) == 0);
    for (unsigned i = 0; i < 200000; i++) {
        const uint8_t b = uint8_t(i % 250 + 1);
        nt.update(k, {b, b, b, b, b, b});
    }
    stop = true;
    rte_eal_wait_lcore(worker);
    CHECK(args.reads.load() > 0);
    CHECK(args.torn.load() == 0);
}
