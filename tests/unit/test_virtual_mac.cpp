// The per-port CARP virtual-MAC set the workers read: which frames a node forwards for a
// vhid depends on its role, and only for vhids configured on that port.
#include "dataplane/virtual_mac.hpp"

#include <catch2/catch.hpp>

using syncwall::dp::VirtualMacs;
using Verdict = VirtualMacs::Verdict;

namespace {
std::array<uint8_t, 6> vmac(uint8_t vhid) {
    return {0x00, 0x00, 0x5e, 0x00, 0x01, vhid};
}
} // namespace

TEST_CASE("a configured vhid's virtual MAC is accepted only while master", "[carp]") {
    VirtualMacs macs;
    macs.configure(1);
    macs.configure(200);
    CHECK(macs.classify(vmac(1)) == Verdict::not_master);
    macs.set_master(1, true);
    CHECK(macs.classify(vmac(1)) == Verdict::master);
    CHECK(macs.classify(vmac(200)) == Verdict::not_master); // each vhid on its own
    macs.set_master(200, true);
    macs.set_master(1, false);
    CHECK(macs.classify(vmac(1)) == Verdict::not_master);
    CHECK(macs.classify(vmac(200)) == Verdict::master);
    CHECK(macs.master(200));
    CHECK_FALSE(macs.master(1));
}

TEST_CASE("other MACs are not virtual: unconfigured vhids, vhid 0, look-alikes", "[carp]") {
    VirtualMacs macs;
    macs.configure(2);
    macs.set_master(2, true);
    CHECK(macs.classify(vmac(3)) == Verdict::not_virtual);       // another port's vhid
    CHECK(macs.classify(vmac(0)) == Verdict::not_virtual);       // there is no vhid 0
    CHECK(macs.classify({0x00, 0x00, 0x5e, 0x00, 0x00, 0x02}) == // ucarp's source MAC
          Verdict::not_virtual);
    CHECK(macs.classify({0x02, 0x00, 0x00, 0x00, 0x00, 0x02}) == Verdict::not_virtual);
    CHECK(VirtualMacs::is_carp_mac(vmac(255)));
    CHECK_FALSE(VirtualMacs::is_carp_mac({0x01, 0x00, 0x5e, 0x00, 0x01, 0x02}));
}
