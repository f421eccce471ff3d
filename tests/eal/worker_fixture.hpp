// What the EAL tests that run a dataplane::Worker share: a one-worker Config for a test that
// polls the worker from its own lcore, and a frame of bench/traffic.hpp's templates in an
// mbuf of the dataplane's pool.
#pragma once

#include "bench/traffic.hpp"
#include "config/config.hpp"

#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>

namespace syncwall::test {

// One worker lcore, never launched (the test calls poll_once()), busy idle, 1023 mbufs,
// room for 1024 states and 64 neighbours, no control socket. Interfaces, routes and rules
// are the caller's.
inline config::Config polled_worker_config() {
    config::Config c;
    c.source_file = "<eal test>";
    c.node.hostid = 0x7e57;
    c.dpdk.mbufs = 1023;
    c.lcores.main = rte_get_main_lcore();
    c.lcores.sync = c.lcores.main;
    c.lcores.workers = {rte_get_next_lcore(-1, 1, 0)};
    c.lcores.idle = config::IdlePolicy::busy;
    c.limits.states = 1024;
    c.limits.neighbours = 64;
    c.control.socket = "";
    return c;
}

// Flow `i`'s segment `seg` with tuple `t`, from `src` to `dst`, in a fresh mbuf of `pool`
// (payload bytes zero but for a tag the writer may put there).
inline rte_mbuf *traffic_frame(rte_mempool *pool, const bench::FrameWriter &writer,
                               const bench::FlowTuple &t, uint32_t i, bench::Segment seg,
                               const bench::Mac &dst, const bench::Mac &src) {
    rte_mbuf *m = rte_pktmbuf_alloc(pool);
    REQUIRE(m != nullptr);
    auto *p = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, writer.frame_len()));
    REQUIRE(p != nullptr);
    std::fill(p, p + writer.frame_len(), 0);
    writer.write(p, t, i, seg, dst, src);
    return m;
}

} // namespace syncwall::test
