// The pflog writer: logged packets from the workers to a pcap file (DLT_PFLOG).
//
// Theory of operation: the Dataplane builds one when `control.pflog` names a file. Workers
// call log() from their lcores when the deciding rule has `log`: it takes a PflogRecord from
// a dedicated mempool (never the mbuf pool), fills it (pflog.hpp) and enqueues it on a
// multi-producer/single-consumer rte_ring. When the pool is empty it returns false and the
// worker counts `pflog_dropped`: logging never waits and never allocates.
//
// A plain std::thread (not an EAL lcore; it inherits the CPU set of the main lcore that
// starts it) dequeues records in bursts, appends them to the file with libpcap, puts them back
// into the pool, flushes the file at least every 100 ms while records arrive, and sleeps a
// millisecond when the ring is empty. stop() (and the destructor) lets it drain the ring,
// close the file and exit: call it after the workers have stopped, or their last records
// may miss the file.
//
// The ring holds as many records as the pool, so an enqueue cannot fail and workers never
// put records back. The writer puts them back as an unregistered non-EAL thread, which the
// mempool serves without a per-lcore cache, straight into its multi-producer ring.
#pragma once

#include "dataplane/pflog.hpp"

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <thread>

struct rte_mempool;
struct rte_ring;
struct pcap;
struct pcap_dumper;

namespace syncwall::dp {

class PflogWriter {
  public:
    static constexpr unsigned default_records = 4095; // 2^n - 1: the mempool's best size

    // Opens (truncates) `path` and starts the writer thread. Throws std::runtime_error
    // naming the file or the DPDK object that could not be made. EAL must be initialised.
    PflogWriter(const std::string &path, unsigned records, int socket);
    ~PflogWriter();
    PflogWriter(const PflogWriter &) = delete;
    PflogWriter &operator=(const PflogWriter &) = delete;

    // Worker lcores: queue packet `d` of `frame` for the file. False: no free record, the
    // entry is dropped (the caller counts it).
    bool log(const PflogMeta &meta, const PacketDesc &d, std::span<const uint8_t> frame);

    // Drain what is queued, close the file, join the thread. Idempotent.
    void stop();

    const std::string &path() const { return path_; }
    uint64_t written() const { return written_.load(std::memory_order_relaxed); }
    uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

  private:
    void run();
    void write(const PflogRecord &r);

    std::string path_;
    rte_mempool *pool_ = nullptr;
    rte_ring *ring_ = nullptr;
    pcap *pcap_ = nullptr;
    pcap_dumper *dumper_ = nullptr;
    uint64_t tsc_hz_ = 1, tsc_base_ = 0;
    int64_t ns_base_ = 0; // wall clock (ns since the epoch) at tsc_base_
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> written_{0}, write_errors_{0};
    std::thread thread_;
};

} // namespace syncwall::dp
