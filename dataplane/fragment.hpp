// IP fragment reassembly and refragmentation, the pure part (pf's pf_norm.c).
//
// Theory of operation: a worker hands every IPv4 or IPv6 fragment it receives to its own
// Reassembly (reassembly.hpp), which keeps the fragment's mbuf and tells a FragmentTable
// (here) where the fragment's payload lies. The table groups fragments by datagram
// (family, addresses, protocol for IPv4, identification), applies pf's rules and, once a
// datagram is whole, lists its pieces in order so that the glue can copy them behind the
// first fragment's headers. The datagram is then filtered once, like any packet.
//
// pf's rules, followed here:
//   * a fragment is refused (counted, frag_bad) when it is empty, when it has "more
//     fragments" set and a length that is not a multiple of 8, when it ends beyond
//     65535 bytes, or when it contradicts the datagram's end (a second, different last
//     fragment; data beyond the last fragment). IPv4 drops that fragment; IPv6 drops the
//     whole datagram;
//   * overlaps: IPv4 keeps the older data at the new fragment's head (the new one is cut
//     where the fragment before it ends; wholly covered, it is dropped: frag_covered) and
//     the new data over the heads of the fragments after it (pf's precut and aftercut);
//     IPv6 drops the whole datagram (RFC 5722: frag_overlap);
//   * at most `max_fragments_per_datagram` fragments a datagram (pf's
//     PF_FRAG_ENTRY_LIMIT); one more discards the datagram (frag_too_many);
//   * a datagram not whole `timeout` seconds after its first fragment is discarded
//     (timeouts.frag, frag_timeout); when `capacity` fragments are held (limits.frags), the
//     oldest datagram makes room (frag_limit), as pf flushes its oldest.
// IPv6 remembers its largest fragment, so that the datagram leaves in fragments no larger
// (pf_refragment6).
//
// DPDK's rte_ip_frag is not used: Debian's build caps a datagram at 8 fragments, it
// discards overlapping IPv4 datagrams instead of trimming them, and it hands back chained
// mbufs the filter would have to copy anyway.
//
// No DPDK, no allocation after construction, no exceptions; time is passed in.
#pragma once

#include "dataplane/drop_reason.hpp"
#include "dataplane/packet.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace syncwall::dp {

inline constexpr unsigned max_fragments_per_datagram = 64; // pf's PF_FRAG_ENTRY_LIMIT
inline constexpr uint32_t max_reassembled_ip_len = 65535;

// What identifies one datagram's fragments (RFC 791 / RFC 8200).
struct FragmentKey {
    std::array<uint8_t, 16> src{}, dst{};
    uint32_t id = 0;
    uint8_t family = 0;
    uint8_t proto = 0; // IPv4 only; 0 for IPv6
    bool operator==(const FragmentKey &) const = default;
};

// One fragment as the frame shows it, found by fragment_info().
struct FragmentInfo {
    FragmentKey key;
    uint32_t offset = 0;     // of this fragment's payload in the datagram's, bytes
    uint16_t len = 0;        // payload bytes
    bool more = false;       // MF / M
    uint16_t payload_at = 0; // from frame start to the payload
    // From frame start to where the fragmentable part begins once reassembled: the end of
    // the IPv4 header, or of the IPv6 header and the extension headers before the
    // Fragment header (which reassembly removes).
    uint16_t header_len = 0;
    uint16_t next_header_at = 0; // IPv6: frame offset of the byte that names the Fragment header
    uint8_t next_header = 0;     // IPv6: the Fragment header's next header
};

// Read the fragment fields of a frame parse_packet() accepted with d.is_fragment set.
// Returns frag_bad when the fragment breaks pf's length rules (see above).
std::optional<DropReason> fragment_info(std::span<const uint8_t> frame, const PacketDesc &d,
                                        FragmentInfo &out);

// The datagram a complete set of fragments makes: its headers come from the fragment at
// offset 0 (bytes [0, header_len) of `head`), its payload from `pieces` in offset order.
struct FragmentPiece {
    uint32_t offset = 0;
    uint16_t len = 0;
    const uint8_t *data = nullptr; // the payload bytes of [offset, offset + len)
    void *handle = nullptr;        // the caller's, e.g. the fragment's mbuf
};

class FragmentTable {
  public:
    // What add() did with a fragment.
    enum class Outcome : uint8_t {
        held,     // kept; the datagram is not whole yet
        complete, // kept, and the datagram is whole: call take()
        dropped,  // refused: the caller frees it, counted with `reason`
    };
    struct Result {
        Outcome outcome = Outcome::held;
        DropReason reason = DropReason::frag_bad;
        uint32_t datagram = 0; // for take() when complete
    };
    // Called for each fragment the table lets go of without reassembling it.
    using Release = void (*)(void *ctx, void *handle, DropReason why);

    // `capacity`: fragments held at most (limits.frags, per worker); `timeout`: seconds.
    FragmentTable(uint32_t capacity, uint32_t timeout, Release release, void *ctx);

    // Offer the fragment `info` whose payload bytes are `payload` (info.len of them) and
    // whose frame is `frame` (for the headers, when it is the first). `handle` goes back
    // through Release or take().
    Result add(const FragmentInfo &info, const uint8_t *frame, const uint8_t *payload, void *handle,
               uint32_t now);

    // A complete datagram: its pieces in order, to be copied; after copying, call finish().
    struct Whole {
        const uint8_t *head = nullptr; // the first fragment's frame
        uint16_t header_len = 0;
        uint16_t next_header_at = 0;
        uint8_t next_header = 0;
        uint8_t family = 0;
        uint32_t id = 0;
        uint32_t payload_len = 0;  // of the reassembled datagram
        uint16_t max_fragment = 0; // largest fragment payload received
        unsigned count = 0;
        std::array<FragmentPiece, max_fragments_per_datagram> pieces;
    };
    void take(uint32_t datagram, Whole &out) const;
    // Forget a datagram take() listed; the caller owns (frees) its pieces' handles now.
    void finish(uint32_t datagram);
    // Discard a datagram, releasing its fragments with `why` (no buffer for it, ...).
    void discard(uint32_t datagram, DropReason why);

    // Discard datagrams older than the timeout. Cheap when nothing is held.
    void expire(uint32_t now);
    // Discard every datagram (shutdown).
    void clear(DropReason why);

    uint32_t held() const { return held_; }      // fragments held
    uint32_t datagrams() const { return live_; } // datagrams in progress

  private:
    struct Datagram {
        FragmentKey key;
        bool used = false;
        bool have_last = false;
        bool have_first = false;
        uint32_t created = 0;
        uint32_t end = 0; // payload length, once the last fragment is seen
        uint16_t max_fragment = 0;
        uint16_t count = 0;
        int32_t first_piece = -1; // list in offset order
        const uint8_t *head = nullptr;
        uint16_t header_len = 0, next_header_at = 0;
        uint8_t next_header = 0;
    };
    struct Piece {
        FragmentPiece p;
        int32_t next = -1;
    };

    int32_t find(const FragmentKey &key) const;
    int32_t create(const FragmentKey &key, uint32_t now);
    void release_all(uint32_t datagram, DropReason why);
    void make_room();
    bool whole(const Datagram &g) const;
    void free_piece(int32_t i);

    uint32_t capacity_, timeout_;
    Release release_;
    void *ctx_;
    std::vector<Datagram> dgrams_;
    std::vector<Piece> pieces_;
    int32_t free_piece_ = -1;
    uint32_t held_ = 0, live_ = 0;
};

// Refragmentation on egress. The frame holds a whole IPv4 datagram at `l3_offset` with an
// IPv4 header of `ip_header_len` bytes; write the frame of the fragment carrying payload
// bytes [off, off + len) into `out` (room for l3_offset + ip_header_len + len bytes):
// Ethernet header copied, options without the copy bit left out of later fragments
// (RFC 791), length, MF/offset (DF kept) and checksum set. Returns the bytes written.
std::size_t ipv4_write_fragment(std::span<const uint8_t> frame, uint16_t l3_offset,
                                uint16_t ip_header_len, uint32_t off, uint16_t len, bool more,
                                uint8_t *out);
// The IPv4 header length of fragments after the first (only the options marked copied).
uint16_t ipv4_later_header_len(std::span<const uint8_t> frame, uint16_t l3_offset,
                               uint16_t ip_header_len);

// The frame holds a whole IPv6 datagram whose unfragmentable part (with the Ethernet
// header) is its first `header_len` bytes, and whose byte `next_header_at` names what
// follows it. Write the fragment carrying payload bytes [off, off + len) of the rest, with
// a Fragment header (identification `id`) after the unfragmentable part. `out` needs
// header_len + 8 + len bytes. Returns the bytes written.
std::size_t ipv6_write_fragment(std::span<const uint8_t> frame, uint16_t l3_offset,
                                uint16_t header_len, uint16_t next_header_at, uint32_t id,
                                uint32_t off, uint16_t len, bool more, uint8_t *out);
// Write the reassembled datagram's headers: given the first fragment's headers copied to
// `frame` ([0, header_len)) and `payload_len` payload bytes after them, make them describe
// one whole datagram (IPv4: length, no MF/offset, checksum; IPv6: payload length and the
// next header that the Fragment header named). Returns the frame length.
std::size_t finish_reassembled_headers(uint8_t *frame, uint16_t l3_offset, uint8_t family,
                                       uint16_t header_len, uint16_t next_header_at,
                                       uint8_t next_header, uint32_t payload_len);

} // namespace syncwall::dp
