// Seeds for the fuzzers in fuzz/: the hidden "[fuzz-seeds]" tests write the unit tests'
// vectors under $SYNCWALL_FUZZ_SEEDS/CORPUS/ (scripts/fuzz.sh runs them).
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>

namespace syncwall::test {

inline void write_fuzz_seed(const std::string &corpus, const std::string &name,
                            std::span<const uint8_t> bytes) {
    const char *root = std::getenv("SYNCWALL_FUZZ_SEEDS");
    INFO("SYNCWALL_FUZZ_SEEDS names the directory the seeds go to");
    REQUIRE(root != nullptr);
    const std::filesystem::path dir = std::filesystem::path(root) / corpus;
    std::filesystem::create_directories(dir);
    std::ofstream out(dir / name, std::ios::binary);
    out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
    REQUIRE(out.good());
}

} // namespace syncwall::test
