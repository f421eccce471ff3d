// libFuzzer harness: the pfsync v6 decoder and the pure part of the sync receive path
// (every INS/UPD record that passes check_state() is imported as the sync role does).
#include "sync/pfsync_wire.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

using namespace syncwall;
using namespace syncwall::sync;

namespace {

class Importer final : public PfsyncHandler {
  public:
    void on_ins(const PfsyncState &sp) override { import(sp); }
    void on_upd(const PfsyncState &sp) override { import(sp); }
    void on_del(const PfsyncState &sp) override { (void)check_state(sp); }
    void on_upd_c(const PfsyncUpdC &u) override {
        if (check_upd_c(u) == PfsyncError::none) {
            (void)peer_from_wire(u.src);
            (void)peer_from_wire(u.dst);
        }
    }

  private:
    static void import(const PfsyncState &sp) {
        ImportedState st;
        if (import_state(sp, st) == PfsyncError::none) {
            // What we imported (both keys of a translated state) must export back to a
            // record that passes the same checks.
            PfsyncState again{};
            export_state(st.state, 1000, 60, again, st.translated ? &st.other : nullptr);
            if (check_state(again) != PfsyncError::none) __builtin_trap();
        }
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
    Importer handler;
    DecodeStats stats;
    (void)decode(std::span<const uint8_t>(data, size), handler, stats);
    return 0;
}
