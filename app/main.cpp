// syncwall: the firewall process. Loads the config, initialises EAL, builds the Dataplane,
// launches a Worker on each worker lcore and runs the ControlLoop on the main lcore.
#include "config/loader.hpp"
#include "config/pf_rule.hpp"
#include "control/control_loop.hpp"
#include "control/mgmt/views.hpp"
#include "control/service_notify.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/routes.hpp"
#include "dataplane/ruleset.hpp"
#include "dataplane/worker.hpp"
#include "sync/sync_engine.hpp"

#include <CLI/CLI.hpp>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_memory.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <unistd.h>
#include <vector>

using namespace syncwall;

namespace {

int worker_main(void *arg) {
    static_cast<dp::Worker *>(arg)->run();
    return 0;
}

int sync_main(void *arg) {
    static_cast<sync::SyncEngine *>(arg)->run();
    return 0;
}

int run(const config::Config &cfg, const std::vector<std::string> &extra_eal) {
    std::vector<std::string> args{"syncwall"};
    args.insert(args.end(), cfg.dpdk.eal_args.begin(), cfg.dpdk.eal_args.end());
    args.insert(args.end(), extra_eal.begin(), extra_eal.end());
    std::vector<char *> argv;
    for (auto &a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    if (rte_eal_init(int(args.size()), argv.data()) < 0) {
        std::cerr << ctl::log_prefix(3) << "syncwall: EAL initialisation failed (dpdk.eal_args in "
                  << cfg.source_file << ")\n";
        return 1;
    }
    int rc = 0;
    try {
        dp::Dataplane dp(cfg);
        std::vector<std::unique_ptr<dp::Worker>> workers;
        for (unsigned w = 0; w < dp.worker_count(); w++)
            workers.push_back(std::make_unique<dp::Worker>(dp, w));
        std::unique_ptr<sync::SyncEngine> sync_engine;
        if (cfg.sync.enabled) sync_engine = std::make_unique<sync::SyncEngine>(dp);
        ctl::ControlLoop control(dp, cfg.source_file);
        control.set_sync(sync_engine.get());
        dp.start_ports();
        for (unsigned w = 0; w < workers.size(); w++)
            rte_eal_remote_launch(worker_main, workers[w].get(), cfg.lcores.workers[w]);
        if (sync_engine) {
            sync_engine->start(); // ask the peers for their states before CARP starts
            if (cfg.lcores.sync != cfg.lcores.main)
                rte_eal_remote_launch(sync_main, sync_engine.get(), cfg.lcores.sync);
        }
        for (const auto &p : dp.ports) {
            std::printf("syncwall: interface %s port %u mac %s%s\n", p.name.c_str(), p.port_id,
                        config::MacAddress{p.mac}.to_string().c_str(), p.is_sync ? " (sync)" : "");
        }
        std::printf("%ssyncwall: ready (%s, %u worker%s)\n",
                    std::string(ctl::log_prefix(6)).c_str(), cfg.node.name.c_str(),
                    dp.worker_count(), dp.worker_count() == 1 ? "" : "s");
        std::fflush(stdout);
        ctl::notify_ready(); // systemd Type=notify: the ports are up
        control.run();
        rte_eal_mp_wait_lcore();
        dp.stop_ports();
        // The counters of show info and show sync, one "name value" per line.
        std::printf("syncwall: stopping (%s)\n%s", control.stop_reason().c_str(),
                    ctl::format_exit_counters(control.result_of(ctl::Command::show_info),
                                              control.result_of(ctl::Command::show_sync))
                        .c_str());
        std::fflush(stdout);
    } catch (const std::exception &e) {
        std::cerr << ctl::log_prefix(3) << "syncwall: " << e.what() << "\n";
        rc = 1;
    }
    rte_eal_cleanup();
    return rc;
}

// `--check-config`: everything the daemon would refuse at start but its ports. The file is
// loaded, its rules and tables parsed, then compiled (rte_acl) and its routes installed in
// an EAL of our own: no hugepages, no PCI, no shared config, no telemetry socket, so that it runs
// beside a live daemon. Errors name file:line:column as the daemon's do.
int check_config(const std::string &file) {
    config::Config cfg;
    std::vector<config::PfRule> rules;
    try {
        cfg = config::load_config(file);
        rules = config::parse_pf_rules(cfg);
    } catch (const config::ConfigError &e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    // As much memory as the daemon is given (-m), for a large ruleset's tables.
    std::string memory = "512";
    const auto &ea = cfg.dpdk.eal_args;
    for (std::size_t i = 0; i + 1 < ea.size(); i++)
        if (ea[i] == "-m") memory = ea[i + 1];
    std::vector<std::string> args{"syncwall-check",
                                  "--no-huge",
                                  "--no-pci",
                                  "--no-shconf",
                                  "--no-telemetry",
                                  "-l",
                                  "0",
                                  "-m",
                                  memory,
                                  "--log-level",
                                  "lib.eal:error",
                                  "--file-prefix",
                                  "syncwall-check-" + std::to_string(getpid())};
    std::vector<char *> argv;
    for (auto &a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    if (rte_eal_init(int(args.size()), argv.data()) < 0) {
        std::cerr << "syncwall: " << file << ": cannot start EAL to compile the rules\n";
        return 1;
    }
    int rc = 0;
    try {
        const std::size_t n = rules.size();
        dp::Ruleset ruleset(cfg, std::move(rules), 1, "syncwall_check_acl", SOCKET_ID_ANY);
        std::vector<dp::RoutedInterface> routed;
        uint16_t port = 0;
        for (const auto &ic : cfg.interfaces) {
            if (cfg.sync.enabled && ic.name == cfg.sync.interface) continue;
            dp::RoutedInterface ri{ic.name, port++, ic.addresses, {}};
            for (const auto &v : cfg.carp.vhosts)
                if (v.interface == ic.name)
                    for (const auto &a : v.addresses)
                        ri.virtual_addresses.push_back(a.addr);
            routed.push_back(std::move(ri));
        }
        dp::RouteTable routes("syncwall_check_fib", routed, cfg.routes, SOCKET_ID_ANY);
        std::cout << file << ": ok (" << n << " rule" << (n == 1 ? "" : "s") << ", "
                  << ruleset.acl_rules() << " ACL entries, " << routes.size() << " next hops)\n";
    } catch (const config::ConfigError &e) {
        std::cerr << e.what() << "\n";
        rc = 1;
    } catch (const std::exception &e) { // route errors name file:line:col themselves
        std::cerr << "syncwall: " << e.what() << "\n";
        rc = 1;
    }
    // EAL leaves its (empty) runtime directory behind; this prefix is never used again.
    const std::string runtime_dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    std::error_code ignored;
    std::filesystem::remove_all(runtime_dir, ignored);
    return rc;
}

} // namespace

int main(int argc, char **argv) {
    CLI::App app{"syncwall: a stateful DPDK firewall with pfsync and CARP"};
    std::string config_file;
    std::string check_file;
    std::vector<std::string> extra_eal;
    app.add_option("-c,--config", config_file, "configuration file (YAML)");
    app.add_option("--check-config", check_file,
                   "validate a configuration file (rules compiled, no ports) and exit 0 or 1");
    app.add_option("--eal", extra_eal, "extra EAL arguments, appended to dpdk.eal_args")
        ->allow_extra_args();
    CLI11_PARSE(app, argc, argv);

    if (!check_file.empty()) return check_config(check_file);
    if (config_file.empty()) {
        std::cerr << "syncwall: a configuration file is needed (-c FILE)\n" << app.help();
        return 2;
    }
    try {
        return run(config::load_config(config_file), extra_eal);
    } catch (const config::ConfigError &e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
}
