// libFuzzer harness: the YAML configuration loader. Whatever the text, it returns a Config
// or throws ConfigError (with the operator-facing message); nothing else may escape.
#include "config/loader.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

using namespace syncwall::config;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
    const std::string text(reinterpret_cast<const char *>(data), size);
    try {
        (void)load_config_text(text, "fuzz.yaml");
    } catch (const ConfigError &e) {
        if (std::string(e.what()).empty()) __builtin_trap();
    }
    return 0;
}
