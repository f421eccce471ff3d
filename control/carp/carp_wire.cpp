#include "control/carp/carp_wire.hpp"

#include "dataplane/byte_order.hpp"
#include "dataplane/packet.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace syncwall::ctl {

namespace {

bool is_v6_link_local(const std::array<uint8_t, 16> &a) {
    // IN6_IS_SCOPE_EMBED: link-local unicast, and interface/link-local multicast (which a
    // vhid never carries, but the rule is OpenBSD's).
    return (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||
           (a[0] == 0xff && ((a[1] & 0x0f) == 0x01 || (a[1] & 0x0f) == 0x02));
}

std::array<uint8_t, carp_digest_len> hmac_sha1(const std::array<uint8_t, carp_key_len> &key,
                                               const std::vector<uint8_t> &prefix,
                                               uint64_t counter) {
    std::vector<uint8_t> message(prefix);
    const auto c = carp_counter_bytes(counter);
    message.insert(message.end(), c.begin(), c.end());
    std::array<uint8_t, carp_digest_len> md{};
    unsigned int len = 0;
    // The whole 20-byte key: HMAC pads the key with zeros to the block anyway, so this is
    // HMAC with key = passphrase, as OpenBSD computes it with its ipad/opad by hand.
    if (!HMAC(EVP_sha1(), key.data(), int(key.size()), message.data(), message.size(), md.data(),
              &len) ||
        len != md.size())
        throw std::runtime_error("CARP: HMAC-SHA1 failed in libcrypto");
    return md;
}

} // namespace

std::array<uint8_t, 8> carp_counter_bytes(uint64_t counter) {
    std::array<uint8_t, 8> b{};
    dp::store_be64(b.data(), counter);
    return b;
}

uint16_t carp_checksum(std::span<const uint8_t, carp_header_len> header) {
    return dp::internet_checksum(header);
}

std::size_t encode_carp(std::span<uint8_t> out, const CarpAdvert &advert) {
    if (out.size() < carp_header_len) return 0;
    CarpHeader h{};
    h.version_type = uint8_t(advert.version << 4 | (advert.type & 0x0f));
    h.vhid = advert.vhid;
    h.advskew = advert.advskew;
    h.authlen = advert.authlen;
    h.demote = advert.demote;
    h.advbase = advert.advbase;
    h.checksum = {0, 0};
    h.counter = carp_counter_bytes(advert.counter);
    h.digest = advert.digest;
    std::memcpy(out.data(), &h, sizeof h);
    const uint16_t sum = carp_checksum(out.first<carp_header_len>());
    dp::store_be16(out.data() + offsetof(CarpHeader, checksum), sum);
    return carp_header_len;
}

bool decode_carp(std::span<const uint8_t> in, CarpAdvert &out) {
    if (in.size() < carp_header_len) return false;
    CarpHeader h;
    std::memcpy(&h, in.data(), sizeof h);
    out.version = uint8_t(h.version_type >> 4);
    out.type = uint8_t(h.version_type & 0x0f);
    out.vhid = h.vhid;
    out.advskew = h.advskew;
    out.authlen = h.authlen;
    out.demote = h.demote;
    out.advbase = h.advbase;
    out.checksum = dp::load_be16(h.checksum.data());
    out.counter = dp::load_be64(h.counter.data());
    out.digest = h.digest;
    return true;
}

CarpAuth::CarpAuth(std::string_view passphrase, uint8_t vhid,
                   std::span<const config::IpAddress> addresses,
                   std::optional<Mac> changed_lladdr) {
    // ifconfig's strlcpy(carpr_key, pass, CARP_KEY_LEN): up to the first NUL, at most 19
    // bytes, the rest of the 20 zero.
    const std::string_view pass = passphrase.substr(0, passphrase.find('\0'));
    std::copy_n(pass.begin(), std::min(pass.size(), carp_key_len - 1), key_.begin());

    std::vector<uint32_t> v4;
    std::vector<std::array<uint8_t, 16>> v6;
    for (const auto &a : addresses) {
        if (a.is_v4()) {
            v4.push_back(a.v4_host_order());
        } else if (a.is_v6()) {
            auto b = a.bytes;
            if (is_v6_link_local(b)) b[2] = b[3] = 0; // the kernel's embedded scope, zeroed
            v6.push_back(b);
        }
    }
    // OpenBSD walks the list "from smallest to largest" with strict comparisons that start
    // above 0.0.0.0 / :: and stay below 255.255.255.255 / ff..ff: each address once, and
    // those two extremes never. Sorting and deduplicating gives the same sequence.
    std::sort(v4.begin(), v4.end());
    v4.erase(std::unique(v4.begin(), v4.end()), v4.end());
    std::erase_if(v4, [](uint32_t a) { return a == 0 || a == 0xffffffffu; });
    std::sort(v6.begin(), v6.end());
    v6.erase(std::unique(v6.begin(), v6.end()), v6.end());
    std::erase_if(v6, [](const std::array<uint8_t, 16> &a) {
        return std::all_of(a.begin(), a.end(), [](uint8_t b) { return b == 0; }) ||
               std::all_of(a.begin(), a.end(), [](uint8_t b) { return b == 0xff; });
    });

    for (bool with_ll : {false, true}) {
        auto &p = with_ll ? prefix_all_ : prefix_nov6ll_;
        p.push_back(carp_version); // a byte of its own, not the packed 0x21
        p.push_back(carp_type_advertisement);
        if (changed_lladdr) p.insert(p.end(), changed_lladdr->begin(), changed_lladdr->end());
        p.push_back(vhid);
        for (uint32_t a : v4)
            for (int shift = 24; shift >= 0; shift -= 8)
                p.push_back(uint8_t(a >> shift));
        for (const auto &a : v6)
            if (with_ll || !is_v6_link_local(a)) p.insert(p.end(), a.begin(), a.end());
    }
}

std::array<uint8_t, carp_digest_len> CarpAuth::digest(uint64_t counter) const {
    return hmac_sha1(key_, prefix_nov6ll_, counter);
}

bool CarpAuth::verify(uint64_t counter, std::span<const uint8_t, carp_digest_len> digest) const {
    const auto mine = hmac_sha1(key_, prefix_nov6ll_, counter);
    if (CRYPTO_memcmp(mine.data(), digest.data(), carp_digest_len) == 0) return true;
    if (prefix_all_ == prefix_nov6ll_) return false;
    const auto with_ll = hmac_sha1(key_, prefix_all_, counter);
    return CRYPTO_memcmp(with_ll.data(), digest.data(), carp_digest_len) == 0;
}

std::optional<CarpDrop> validate_carp(std::span<const uint8_t> carp, uint8_t ttl,
                                      uint8_t expected_vhid, const CarpAuth &auth,
                                      CarpAdvert &out) {
    if (ttl != carp_ttl) return CarpDrop::bad_ttl;
    if (carp.size() < carp_header_len) return CarpDrop::bad_length;
    if (carp_checksum(carp.first<carp_header_len>()) != 0) return CarpDrop::bad_checksum;
    decode_carp(carp, out);
    if (out.vhid != expected_vhid) return CarpDrop::wrong_vhid;
    if (out.version != carp_version) return CarpDrop::bad_version;
    if (out.type != carp_type_advertisement) return CarpDrop::unknown_type;
    if (!auth.verify(out.counter, out.digest)) return CarpDrop::bad_digest;
    return std::nullopt;
}

std::size_t build_carp_advert_v4(std::span<uint8_t> out, const CarpAdvert &advert, const Ip4 &src,
                                 uint16_t ip_id, const Ip4 &dst, const Mac &eth_dst) {
    if (out.size() < carp_advert_v4_frame_len) return 0;
    write_ether(out, eth_dst, carp_virtual_mac(advert.vhid), dp::ether_type_ipv4);
    dp::write_ipv4_header(
        out.data() + ether_header_len, uint16_t(dp::ipv4_header_len + carp_header_len),
        dp::proto_carp, src.data(), dst.data(),
        {.id = ip_id, .ttl = carp_ttl, .tos = carp_ipv4_tos, .dont_fragment = true});
    encode_carp(out.subspan(ether_header_len + dp::ipv4_header_len), advert);
    return carp_advert_v4_frame_len;
}

std::size_t build_carp_advert_v6(std::span<uint8_t> out, const CarpAdvert &advert, const Ip6 &src) {
    if (out.size() < carp_advert_v6_frame_len) return 0;
    write_ether(out, carp_group_mac_v6, carp_virtual_mac(advert.vhid), dp::ether_type_ipv6);
    // Traffic class 0 and flow label 0, as OpenBSD sends them.
    dp::write_ipv6_header(out.data() + ether_header_len, uint16_t(carp_header_len), dp::proto_carp,
                          carp_ttl, src.data(), carp_group_v6.data());
    encode_carp(out.subspan(ether_header_len + dp::ipv6_header_len), advert);
    return carp_advert_v6_frame_len;
}

Ip6 ipv6_link_local_of(const Mac &mac) {
    return Ip6{0xfe,   0x80,   0,    0,    0,      0,      0,     0, uint8_t(mac[0] ^ 0x02),
               mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]};
}

config::IpAddress CarpAdvertSources::primary() const {
    config::IpAddress a;
    if (v4) {
        a.family = 4;
        std::copy(v4->begin(), v4->end(), a.bytes.begin());
    } else if (v6) {
        a.family = 6;
        a.bytes = *v6;
    }
    return a;
}

CarpAdvertSources carp_advert_sources(std::span<const config::IpPrefix> vhid_addresses,
                                      std::span<const config::IpPrefix> port_addresses,
                                      const Mac &port_mac) {
    const auto first = [](std::span<const config::IpPrefix> list, auto &&pred) {
        const auto it = std::find_if(list.begin(), list.end(),
                                     [&](const config::IpPrefix &p) { return pred(p.addr); });
        return it == list.end() ? nullptr : &it->addr;
    };
    const auto v4 = [](const config::IpAddress &a) { return a.is_v4(); };
    const auto v6 = [](const config::IpAddress &a) { return a.is_v6(); };
    const auto v6_link_local = [](const config::IpAddress &a) {
        return a.is_v6() && a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80;
    };
    CarpAdvertSources s;
    if (const auto *vip = first(vhid_addresses, v4)) {
        const auto *a = first(port_addresses, v4);
        if (a == nullptr) a = vip;
        s.v4.emplace();
        std::copy_n(a->bytes.begin(), 4, s.v4->begin());
    }
    if (first(vhid_addresses, v6) != nullptr) {
        const auto *ll = first(port_addresses, v6_link_local);
        s.v6 = ll ? ll->bytes : ipv6_link_local_of(port_mac);
    }
    return s;
}

std::size_t build_carp_garp(std::span<uint8_t> out, uint8_t vhid, const Ip4 &vip) {
    return build_arp(out, dp::arp_request, broadcast_mac, carp_virtual_mac(vhid), vip, Mac{}, vip);
}

} // namespace syncwall::ctl
