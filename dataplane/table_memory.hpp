// Memory for the state table's large arrays (its slots, its two indexes, the translated
// states' links).
//
// Where EAL runs on hugepages (an appliance with hugetlbfs pages reserved), its heap is on
// them already: an array comes from the heap, on the table's NUMA socket. Where it does not
// (`--no-huge`: a VM, the lab, the shipped example configurations), the heap is a memfd of
// 4 KiB pages, and a table of millions of states spread over them costs a page walk on most
// of a packet's accesses. An array of `huge_threshold` bytes or more is then mapped on its
// own, anonymous, on a 2 MiB boundary and in whole 2 MiB pages, and advised MADV_HUGEPAGE:
// the kernel backs it with transparent huge pages where
// /sys/kernel/mm/transparent_hugepage/enabled says `always` or `madvise`, and with 4 KiB
// pages, as before, where it says `never`. Smaller arrays stay on the heap: their page walks
// hit the caches, and a 2 MiB page for each would waste more than they hold.
//
// The array comes zeroed (a fresh mapping, or rte_zmalloc); the table constructs every
// element.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace syncwall::dp {

class TableMemory {
  public:
    static constexpr std::size_t huge_page = std::size_t(2) << 20;
    static constexpr std::size_t huge_threshold = std::size_t(4) << 20;

    TableMemory() = default;
    // `bytes` for an array named `name` (the heap's name for it), or nullptr from data()
    // when there is no memory for it (error() then says why).
    TableMemory(const std::string &name, std::size_t bytes, int socket);
    ~TableMemory();
    TableMemory(TableMemory &&other) noexcept;
    TableMemory &operator=(TableMemory &&other) noexcept;
    TableMemory(const TableMemory &) = delete;
    TableMemory &operator=(const TableMemory &) = delete;

    void *data() const { return data_; }
    // The bytes it takes: the whole 2 MiB pages of a mapping, else what was asked for.
    std::size_t footprint() const { return mapped_ != 0 ? mapped_ : bytes_; }
    // Whether it is a mapping of its own, advised to be on 2 MiB pages.
    bool own_mapping() const { return mapped_ != 0; }
    const std::string &error() const { return error_; }

    // Bytes of these arrays' own mappings that the kernel backs with 2 MiB pages now
    // (AnonHugePages in /proc/self/smaps; the kernel may merge neighbouring mappings into
    // one, whose count is then clipped to the part that is ours). 0 where unknown.
    static std::size_t huge_bytes(std::span<const TableMemory *const> arrays);

  private:
    void release();

    void *data_ = nullptr;
    std::size_t bytes_ = 0;
    std::size_t mapped_ = 0; // the mapping's length; 0 when on EAL's heap
    std::string error_;
};

} // namespace syncwall::dp
