// libFuzzer harness: CARP advertisement validation (the IP payload of a received advert).
// The first input byte is the TTL, the second the vhid we expect; the rest is the message.
#include "control/carp/carp_wire.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

using namespace syncwall;
using namespace syncwall::ctl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
    if (size < 2) return 0;
    // The unit tests' vector vhost (their seeds carry valid digests for it).
    static const config::IpAddress vip = *config::parse_ip_address("192.0.2.254");
    static const CarpAuth auth("syncwall-example", 1, std::span<const config::IpAddress>(&vip, 1));
    const uint8_t ttl = data[0];
    const uint8_t vhid = data[1];
    const std::span<const uint8_t> carp(data + 2, size - 2);
    CarpAdvert advert;
    (void)validate_carp(carp, ttl, vhid, auth, advert);
    CarpAdvert decoded;
    (void)decode_carp(carp, decoded);
    return 0;
}
