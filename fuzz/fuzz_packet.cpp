// libFuzzer harness: the Ethernet frame parser and the ICMP-quoted packet parser.
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
    }
    dp::PacketDesc quoted;
    (void)dp::parse_quoted_packet(bytes, quoted);
    (void)dp::internet_checksum(bytes);
    return 0;
}
