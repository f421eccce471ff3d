#include "dataplane/table_memory.hpp"

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_malloc.h>

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace syncwall::dp {

TableMemory::TableMemory(const std::string &name, std::size_t bytes, int socket) : bytes_(bytes) {
    if (bytes >= huge_threshold && rte_eal_has_hugepages() == 0) {
        // Map one page more than needed and trim to a 2 MiB boundary: the kernel puts a
        // huge page only where the address is 2 MiB aligned.
        const std::size_t length = RTE_ALIGN_CEIL(bytes, huge_page);
        void *const m = mmap(nullptr, length + huge_page, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            const int err = errno;
            error_ = name + ": cannot map " + std::to_string(length >> 20) +
                     " MiB: " + std::strerror(err);
            return;
        }
        const auto start = reinterpret_cast<std::uintptr_t>(m);
        const std::uintptr_t aligned = RTE_ALIGN_CEIL(start, std::uintptr_t(huge_page));
        if (aligned != start) munmap(m, aligned - start);
        munmap(reinterpret_cast<void *>(aligned + length), huge_page - (aligned - start));
        data_ = reinterpret_cast<void *>(aligned);
        mapped_ = length;
        // EINVAL where the kernel has no transparent huge pages: 4 KiB pages, as on the heap.
        (void)madvise(data_, length, MADV_HUGEPAGE);
        return;
    }
    data_ = rte_zmalloc_socket(name.c_str(), bytes, RTE_CACHE_LINE_SIZE, socket);
    if (data_ == nullptr)
        error_ = name + ": no room for " + std::to_string(bytes) + " bytes in EAL's memory";
}

TableMemory::~TableMemory() {
    release();
}

TableMemory::TableMemory(TableMemory &&other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)),
      mapped_(std::exchange(other.mapped_, 0)), error_(std::move(other.error_)) {}

TableMemory &TableMemory::operator=(TableMemory &&other) noexcept {
    if (this != &other) {
        release();
        data_ = std::exchange(other.data_, nullptr);
        bytes_ = std::exchange(other.bytes_, 0);
        mapped_ = std::exchange(other.mapped_, 0);
        error_ = std::move(other.error_);
    }
    return *this;
}

std::size_t TableMemory::huge_bytes(std::span<const TableMemory *const> arrays) {
    // Only mappings of our own can be on transparent huge pages: without one, no file to read
    // (a small table, made often by the tests, costs no walk of smaps).
    if (std::none_of(arrays.begin(), arrays.end(),
                     [](const TableMemory *a) { return a != nullptr && a->mapped_ != 0; }))
        return 0;
    std::FILE *f = std::fopen("/proc/self/smaps", "r");
    if (f == nullptr) return 0;
    char *line = nullptr; // whole lines, however long a mapping's path
    std::size_t cap = 0;
    std::size_t total = 0, ours = 0; // `ours`: the current mapping's bytes in our arrays
    while (getline(&line, &cap, f) > 0) {
        unsigned long start = 0, end = 0, kb = 0;
        if (std::sscanf(line, "%lx-%lx ", &start, &end) == 2) {
            ours = 0;
            for (const TableMemory *a : arrays) {
                if (a == nullptr || a->mapped_ == 0) continue;
                const auto from = reinterpret_cast<std::uintptr_t>(a->data_);
                const std::uintptr_t lo = std::max<std::uintptr_t>(from, start),
                                     hi = std::min<std::uintptr_t>(from + a->mapped_, end);
                if (lo < hi) ours += hi - lo;
            }
            continue;
        }
        if (ours != 0 && std::sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
            total += std::min<std::size_t>(std::size_t(kb) << 10, ours);
    }
    std::free(line);
    std::fclose(f);
    return total;
}

void TableMemory::release() {
    if (data_ == nullptr) return;
    if (mapped_ != 0)
        munmap(data_, mapped_);
    else
        rte_free(data_);
    data_ = nullptr;
    mapped_ = 0;
}

} // namespace syncwall::dp
