#include "dataplane/pflog_writer.hpp"

#include <pcap/pcap.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <pthread.h>

#include <chrono>
#include <stdexcept>

namespace syncwall::dp {

namespace {

constexpr unsigned writer_burst = 32;
constexpr auto flush_interval = std::chrono::milliseconds(100);
constexpr auto idle_sleep = std::chrono::milliseconds(1);

unsigned ring_size_for(unsigned records) {
    unsigned n = 2;
    while (n - 1 < records)
        n <<= 1; // usable capacity of a ring of n is n - 1
    return n;
}

} // namespace

PflogWriter::PflogWriter(const std::string &path, unsigned records, int socket) : path_(path) {
    const std::string where = "control.pflog " + path + ": ";
    // Workers take records with their per-lcore cache; the writer, a non-EAL thread, puts
    // them back without one.
    const unsigned cache = records >= 1024 ? 32 : 0;
    pool_ = rte_mempool_create("syncwall_pflog", records, sizeof(PflogRecord), cache, 0, nullptr,
                               nullptr, nullptr, nullptr, socket, 0);
    if (pool_ == nullptr)
        throw std::runtime_error(where + "cannot create the pool of " + std::to_string(records) +
                                 " log records: " + rte_strerror(rte_errno));
    ring_ = rte_ring_create("syncwall_pflogq", ring_size_for(records), socket, RING_F_SC_DEQ);
    if (ring_ == nullptr) {
        rte_mempool_free(pool_);
        throw std::runtime_error(where + "cannot create the log ring: " + rte_strerror(rte_errno));
    }
    pcap_ = pcap_open_dead(dlt_pflog, 65535);
    dumper_ = pcap_ != nullptr ? pcap_dump_open(pcap_, path.c_str()) : nullptr;
    if (dumper_ == nullptr) {
        const std::string err = pcap_ != nullptr ? pcap_geterr(pcap_) : "pcap_open_dead failed";
        if (pcap_ != nullptr) pcap_close(pcap_);
        rte_ring_free(ring_);
        rte_mempool_free(pool_);
        throw std::runtime_error(where + "cannot open for writing: " + err);
    }
    pcap_dump_flush(dumper_); // the file header, so that the file is readable at once

    tsc_hz_ = rte_get_tsc_hz();
    tsc_base_ = rte_get_tsc_cycles();
    ns_base_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    thread_ = std::thread([this] { run(); });
    pthread_setname_np(thread_.native_handle(), "syncwall-pflog");
}

PflogWriter::~PflogWriter() {
    stop();
    rte_ring_free(ring_);
    rte_mempool_free(pool_);
}

bool PflogWriter::log(const PflogMeta &meta, const PacketDesc &d, std::span<const uint8_t> frame) {
    void *obj;
    if (rte_mempool_get(pool_, &obj) != 0) return false;
    auto *r = static_cast<PflogRecord *>(obj);
    pflog_fill_record(*r, meta, d, frame, rte_get_tsc_cycles());
    if (rte_ring_mp_enqueue(ring_, r) != 0) { // cannot happen: the ring holds the whole pool
        rte_mempool_put(pool_, r);
        return false;
    }
    return true;
}

void PflogWriter::stop() {
    if (!thread_.joinable()) return;
    stop_.store(true, std::memory_order_release);
    thread_.join();
    pcap_dump_close(dumper_);
    pcap_close(pcap_);
    dumper_ = nullptr;
    pcap_ = nullptr;
}

void PflogWriter::write(const PflogRecord &r) {
    // TSC ticks since the base, in whole seconds and the rest, so nothing overflows.
    const uint64_t ticks = r.tsc - tsc_base_;
    const int64_t ns = ns_base_ + int64_t(ticks / tsc_hz_) * 1'000'000'000 +
                       int64_t((ticks % tsc_hz_) * 1'000'000'000 / tsc_hz_);
    pcap_pkthdr ph{};
    ph.ts.tv_sec = time_t(ns / 1'000'000'000);
    ph.ts.tv_usec = suseconds_t(ns % 1'000'000'000 / 1000);
    ph.caplen = r.pcap_caplen();
    ph.len = r.pcap_len();
    pcap_dump(reinterpret_cast<u_char *>(dumper_), &ph, r.pcap_bytes());
    written_.fetch_add(1, std::memory_order_relaxed);
}

void PflogWriter::run() {
    void *objs[writer_burst];
    auto last_flush = std::chrono::steady_clock::now();
    bool unflushed = false;
    for (;;) {
        // Read the flag before the ring: once it is set, an empty ring means all is written.
        const bool stopping = stop_.load(std::memory_order_acquire);
        const unsigned n = rte_ring_sc_dequeue_burst(ring_, objs, writer_burst, nullptr);
        for (unsigned i = 0; i < n; i++)
            write(*static_cast<const PflogRecord *>(objs[i]));
        if (n != 0) {
            rte_mempool_put_bulk(pool_, objs, n);
            unflushed = true;
        }
        const auto now = std::chrono::steady_clock::now();
        if (unflushed && (n == 0 || now - last_flush >= flush_interval)) {
            if (pcap_dump_flush(dumper_) != 0)
                write_errors_.fetch_add(1, std::memory_order_relaxed);
            last_flush = now;
            unflushed = false;
        }
        if (n == 0) {
            if (stopping) break;
            std::this_thread::sleep_for(idle_sleep);
        }
    }
}

} // namespace syncwall::dp
