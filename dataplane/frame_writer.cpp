#include "dataplane/frame_writer.hpp"

#include "dataplane/byte_order.hpp"
#include "dataplane/packet.hpp"

#include <cstring>

namespace syncwall::dp {

void write_ether(std::span<uint8_t> out, const Mac &dst, const Mac &src, uint16_t type) {
    std::memcpy(out.data(), dst.data(), 6);
    std::memcpy(out.data() + 6, src.data(), 6);
    store_be16(out.data() + 12, type);
}

std::size_t write_ipv4_header(uint8_t *ip, uint16_t total_len, uint8_t proto, const uint8_t *src,
                              const uint8_t *dst, const Ipv4Fields &fields) {
    ip[0] = 0x45; // version 4, 5 words
    ip[1] = fields.tos;
    store_be16(ip + 2, total_len);
    store_be16(ip + 4, fields.id);
    store_be16(ip + 6, fields.dont_fragment ? 0x4000 : 0);
    ip[8] = fields.ttl;
    ip[9] = proto;
    std::memcpy(ip + 12, src, 4);
    std::memcpy(ip + 16, dst, 4);
    set_ipv4_checksum(ip);
    return ipv4_header_len;
}

void set_ipv4_checksum(uint8_t *ip) {
    const std::size_t ihl = std::size_t(ip[0] & 0x0f) * 4;
    store_be16(ip + 10, 0);
    store_be16(ip + 10, internet_checksum({ip, ihl}));
}

std::size_t write_ipv6_header(uint8_t *ip, uint16_t payload_len, uint8_t next, uint8_t hop_limit,
                              const uint8_t *src, const uint8_t *dst) {
    store_be32(ip, 0x60000000u);
    store_be16(ip + 4, payload_len);
    ip[6] = next;
    ip[7] = hop_limit;
    std::memcpy(ip + 8, src, 16);
    std::memcpy(ip + 24, dst, 16);
    return ipv6_header_len;
}

} // namespace syncwall::dp
