// libFuzzer harness: the management protocol as the daemon reads it (the line framer cut
// at input-chosen chunk boundaries, then each request line parsed and answered) and as
// syncwallctl reads the daemon's reply line.
#include "control/mgmt/mgmt_protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

using namespace syncwall::ctl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
    if (size < 1) return 0;
    // A small line limit so that the too-long path is reached too.
    LineFramer framer(std::size_t(data[0]) * 4 + 1);
    const std::string_view text(reinterpret_cast<const char *>(data + 1), size - 1);
    const std::size_t chunk = std::size_t(data[0] % 13) + 1;
    auto drain = [&] {
        while (auto item = framer.next()) {
            if (item->kind == LineFramer::Kind::too_long) {
                (void)too_long_error();
                continue;
            }
            const ParsedRequest parsed = parse_request(item->text);
            if (!parsed.request && parsed.error.empty())
                __builtin_trap(); // a refused request always says why
            (void)error_reply(parsed.error);
        }
    };
    for (std::size_t at = 0; at < text.size(); at += chunk) {
        framer.feed(text.substr(at, chunk));
        drain();
    }
    framer.finish();
    drain();
    // The whole input as one line, without the framer's limit, both ways.
    (void)parse_request(text);
    (void)exit_for(parse_reply(text));
    return 0;
}
