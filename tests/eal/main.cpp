// Catch2 runner for tests that need EAL (rte_fib, rte_hash, rings, mempools): EAL is
// initialised once, without hugepages or PCI, before any test runs.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <rte_eal.h>

#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

int main(int argc, char **argv) {
    const std::string prefix = "syncwall-eal-test-" + std::to_string(getpid());
    std::vector<std::string> eal{"eal_tests",   "--no-huge",    "--no-pci",
                                 "-m",          "256",          "--file-prefix",
                                 prefix,        "--lcores",     "0@(0-1),1@(0-1),2@(0-1)",
                                 "--log-level", "lib.eal:error"};
    std::vector<char *> eal_argv;
    for (auto &a : eal)
        eal_argv.push_back(a.data());
    if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) return 2;
    const int rc = Catch::Session().run(argc, argv);
    rte_eal_cleanup();
    // EAL leaves its runtime directory (config, fbarray files) behind: ours goes too.
    std::error_code ec;
    std::filesystem::remove_all("/var/run/dpdk/" + prefix, ec);
    return rc;
}
