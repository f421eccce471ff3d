// libFuzzer harness: the Ethernet frame parser and the ICMP-quoted packet parser; the
// transport checksum check against the generic sum; and a device's checksum verdict.
#include "dataplane/packet.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

using namespace syncwall;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
    const std::span<const uint8_t> bytes(data, size);
    dp::PacketDesc desc;
    if (!dp::parse_packet(bytes, desc)) {
        // Every offset the parser hands out must lie inside the frame.
        if (desc.l3_offset > size || desc.l4_offset > size || desc.frame_len > size)
            __builtin_trap();
        // l4_checksum_ok() (one native sum over segment and pseudo-header) agrees with
        // internet_checksum() over the segment seeded with pseudo_header_sum().
        const dp::L4ChecksumSpan c = dp::l4_checksum_span(bytes, uint32_t(size), desc);
        const bool udp_zero = desc.proto == dp::proto_udp && c.check &&
                              data[desc.l4_offset + 6] == 0 && data[desc.l4_offset + 7] == 0;
        if (c.check && !udp_zero) {
            const uint32_t initial = c.pseudo_header ? dp::pseudo_header_sum(desc, c.length) : 0;
            const bool generic =
                dp::internet_checksum(bytes.subspan(desc.l4_offset, c.length), initial) == 0;
            if (generic != dp::l4_checksum_ok(bytes, desc)) __builtin_trap();
        }
        // A device that vouches for the IPv4 header never makes the parser refuse a frame
        // it took on its own sum; one that condemns it does, and only an IPv4 frame.
        dp::PacketDesc vouched;
        if (dp::parse_packet(bytes, vouched, dp::DeviceChecksum::good)) __builtin_trap();
        const auto condemned = dp::parse_packet(bytes, vouched, dp::DeviceChecksum::bad);
        if (condemned.has_value() != (desc.l3 == dp::L3Kind::ipv4)) __builtin_trap();
    }
    dp::PacketDesc quoted;
    (void)dp::parse_quoted_packet(bytes, quoted);
    (void)dp::internet_checksum(bytes);
    return 0;
}
