// Which CARP virtual MACs (00:00:5e:00:01:<vhid>) a port accepts frames for.
//
// Theory of operation: the Dataplane holds one VirtualMacs per port. Before the workers
// start, the main lcore marks every vhid configured on the port (configure()); from then
// on only the main lcore's CARP code writes, setting a vhid's bit when the node becomes
// MASTER of it and clearing it when it stops being master (set_master()). Workers read
// with classify() for every frame whose destination is not the port's own MAC: a relaxed
// load of one 64-bit word, no lock. A frame that races a role change is accepted or dropped
// by the role of a moment ago, which is what a NIC filter reprogrammed by the kernel does
// too.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace syncwall::dp {

class VirtualMacs {
  public:
    enum class Verdict : uint8_t {
        not_virtual, // not a virtual MAC of a vhid configured on this port
        master,      // ours: this node is MASTER of the vhid
        not_master,  // a configured vhid that this node is not MASTER of: drop
    };

    // 00:00:5e:00:01:<vhid>, vhid 1..255 (the IPv4 VRRP MAC of VRID = vhid).
    static bool is_carp_mac(const std::array<uint8_t, 6> &mac) {
        return mac[0] == 0x00 && mac[1] == 0x00 && mac[2] == 0x5e && mac[3] == 0x00 &&
               mac[4] == 0x01 && mac[5] != 0;
    }

    void configure(uint8_t vhid) { set(configured_, vhid, true); }
    void set_master(uint8_t vhid, bool master) { set(master_, vhid, master); }
    bool configured(uint8_t vhid) const { return test(configured_, vhid); }
    bool master(uint8_t vhid) const { return test(master_, vhid); }

    Verdict classify(const std::array<uint8_t, 6> &dst) const {
        if (!is_carp_mac(dst) || !test(configured_, dst[5])) return Verdict::not_virtual;
        return test(master_, dst[5]) ? Verdict::master : Verdict::not_master;
    }

  private:
    using Bits = std::array<std::atomic<uint64_t>, 4>;

    static bool test(const Bits &b, uint8_t vhid) {
        return (b[vhid >> 6].load(std::memory_order_relaxed) >> (vhid & 63) & 1) != 0;
    }
    // One writer (the main lcore): load and store, no read-modify-write needed.
    static void set(Bits &b, uint8_t vhid, bool on) {
        auto &word = b[vhid >> 6];
        const uint64_t bit = uint64_t(1) << (vhid & 63);
        const uint64_t v = word.load(std::memory_order_relaxed);
        word.store(on ? v | bit : v & ~bit, std::memory_order_relaxed);
    }

    Bits configured_{};
    Bits master_{};
};

} // namespace syncwall::dp
