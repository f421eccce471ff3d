#include "control/control_loop.hpp"
#include "control/service_notify.hpp"

#include "config/loader.hpp"
#include "config/pf_rule.hpp"
#include "dataplane/idle.hpp"
#include "dataplane/ruleset.hpp"
#include "dataplane/state_table.hpp"

#include <rte_cycles.h>

#include <rte_lcore.h>
#include <rte_ring.h>

#include <boost/asio/post.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <malloc.h>
#include <sstream>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace syncwall::ctl {

namespace {
constexpr auto tick_interval = std::chrono::milliseconds(100);
// The control plane tolerates a millisecond of latency; it never busy-polls.
constexpr uint32_t main_max_sleep_us = 1000;
} // namespace

ControlLoop::ControlLoop(dp::Dataplane &dp, std::string config_path)
    : dp_(dp), slow_(dp), carp_(io_, dp, slow_), signals_(io_, SIGINT, SIGTERM), hup_(io_, SIGHUP),
      tick_(io_), stop_timer_(io_), config_path_(std::move(config_path)), mgmt_(io_, dp, *this),
      obs_(io_, dp.cfg.control, mgmt_) {
    signals_.async_wait([this](const boost::system::error_code &ec, int sig) {
        if (ec) return;
        begin_stop(sig == SIGINT ? "SIGINT" : "SIGTERM");
    });
    wait_signals();
    arm_tick();
    mgmt_.start(); // throws, naming control.socket, if it cannot listen
    obs_.start();  // telemetry; throws, naming control.metrics_listen, if it cannot listen
}

void ControlLoop::wait_signals() {
    hup_.async_wait([this](const boost::system::error_code &ec, int) {
        if (ec) return;
        reload([path = config_path_](const std::string &err) {
            if (err.empty())
                std::printf("syncwall: reloaded %s\n", path.c_str());
            else
                std::printf("syncwall: reload failed, still running the previous rules: %s\n",
                            err.c_str());
            std::fflush(stdout);
        });
        wait_signals();
    });
}

// Built by the compile thread, handed to the main lcore through the io_context.
struct ControlLoop::Compiled {
    std::unique_ptr<config::Config> config;
    std::unique_ptr<dp::Ruleset> ruleset;
    std::vector<uint32_t> remap; // config::match_rules(running rules, new rules)
    std::string error;
};

namespace {

struct CompileJob {
    std::function<void()> run;
};

void *run_compile_job(void *arg) {
    std::unique_ptr<CompileJob> job(static_cast<CompileJob *>(arg));
    // Below the main lcore when it has to share a CPU with it (ctrl threads run on the CPUs
    // that no lcore uses, or on the main lcore's when there are none).
    (void)::setpriority(PRIO_PROCESS, pid_t(::syscall(SYS_gettid)), 10);
    job->run();
    return nullptr;
}

// Stall budget of one pass: rebinding this many state slots takes about a millisecond.
constexpr uint32_t swap_slots_per_pass = 16384;

} // namespace

ControlLoop::~ControlLoop() {
    join_compile_thread();
}

void ControlLoop::join_compile_thread() {
    if (!compile_running_) return;
    ::pthread_join(compile_thread_, nullptr);
    compile_running_ = false;
}

void ControlLoop::reload(ReloadDone done) {
    if (!reload_waiters_.empty()) {
        reload_queued_.push_back(std::move(done));
        return;
    }
    reload_waiters_.push_back(std::move(done));
    start_reload_job();
}

void ControlLoop::start_reload_job() {
    // Everything the thread reads is copied, or is the running ruleset, which only a swap
    // frees, and no swap starts before this job has reported back.
    std::vector<std::string> names;
    for (const auto &i : dp_.cfg.interfaces)
        names.push_back(i.name);
    const dp::Ruleset *running = dp_.ruleset.load(std::memory_order_acquire);
    const std::string name = "syncwall_acl" + std::to_string(++reload_jobs_);
    const int socket = int(rte_socket_id());
    const unsigned lcores = dp_.worker_count();
    auto job = std::make_unique<CompileJob>();
    const bool translations = dp_.states->translations();
    job->run = [this, path = config_path_, names = std::move(names), running, name, socket, lcores,
                translations] {
        // The previous reload's configuration and ruleset were freed on the main lcore;
        // hand their pages back to the system here, off the main lcore (a trim walks every
        // malloc arena), so RSS does not climb with reloads.
        ::malloc_trim(0);
        auto out = std::make_shared<Compiled>();
        try {
            auto next = std::make_unique<config::Config>(config::load_config(path));
            bool same = next->interfaces.size() == names.size();
            for (std::size_t i = 0; same && i < names.size(); i++)
                same = next->interfaces[i].name == names[i];
            if (!same) {
                out->error = path + ": interfaces changed: a restart is needed to apply that";
            } else {
                auto rules = config::parse_pf_rules(*next);
                out->ruleset =
                    std::make_unique<dp::Ruleset>(*next, std::move(rules), lcores, name, socket);
                if (out->ruleset->translates() && !translations)
                    throw std::runtime_error(
                        path + ": the rules translate (nat-to, rdr-to, binat-to) but the state "
                               "table was made without room for translated states: a restart "
                               "is needed to apply that");
                out->remap = config::match_rules(running->rules(), out->ruleset->rules());
                out->config = std::move(next);
            }
        } catch (const std::exception &e) {
            out->error = e.what();
            out->ruleset.reset();
        }
        boost::asio::post(io_, [this, out] { on_compiled(out); });
    };
    CompileJob *raw = job.release();
    const int rc =
        rte_ctrl_thread_create(&compile_thread_, "syncwall-reload", nullptr, run_compile_job, raw);
    if (rc != 0) {
        delete raw;
        finish_reload("cannot start the reload thread: " + std::string(std::strerror(rc)));
        return;
    }
    compile_running_ = true;
}

void ControlLoop::on_compiled(std::shared_ptr<Compiled> result) {
    join_compile_thread();           // it posted this as its last act
    if (dp_.stopping.load()) return; // too late: the workers are gone
    if (!result->error.empty()) {
        finish_reload(result->error);
        return;
    }
    // Publish now; the grace period and the rebinding of the states follow in slices.
    dp_.begin_ruleset_swap(std::move(result->ruleset), std::move(result->remap));
    retiring_config_ = std::move(config_);
    swapping_in_config_ = std::move(result->config);
    swapping_ = true;
}

bool ControlLoop::reload_step() {
    if (!swapping_) return false;
    if (!dp_.ruleset_swap_step(swap_slots_per_pass)) return true;
    // The old ruleset is freed: nothing refers to its Config any more.
    swapping_ = false;
    retiring_config_.reset();
    config_ = std::move(swapping_in_config_);
    reloads_++;
    finish_reload({});
    return true;
}

void ControlLoop::finish_reload(const std::string &error) {
    auto waiters = std::move(reload_waiters_);
    reload_waiters_.clear();
    for (auto &done : waiters)
        if (done) done(error);
    if (!reload_queued_.empty() && reload_waiters_.empty()) {
        reload_waiters_ = std::move(reload_queued_);
        reload_queued_.clear();
        start_reload_job();
    }
}

void ControlLoop::arm_tick() {
    tick_.expires_after(tick_interval);
    tick_.async_wait([this](const boost::system::error_code &ec) {
        if (ec) return;
        watchdog_tick(); // systemd's WatchdogSec: a hung main lcore stops these pings
        slow_.tick(SlowPath::Clock::now());
        // Sweep expired states incrementally: the whole table once per `interval`.
        const uint64_t ticks = uint64_t(dp_.cfg.timeouts.interval) * 1000 / tick_interval.count();
        dp_.expire_states(uint32_t(dp_.states->slots() / (ticks == 0 ? 1 : ticks) + 1));
        // A node still waiting for its bulk update stays demoted (it would be master with
        // an empty state table otherwise).
        if (sync_ != nullptr) carp_.set_sync_bulk_pending(sync_->bulk_pending());
        arm_tick();
    });
}

void ControlLoop::request_stop() {
    begin_stop("request");
}

void ControlLoop::begin_stop(const char *reason) {
    if (!stop_reason_.empty()) return; // already stopping
    stop_reason_ = reason;
    carp_.stop();
    // Worker 0 drains the control tx rings into its queue and flushes before it looks at
    // `stopping` again, so an empty ring means the bow-outs are on their way.
    stop_when_sent(std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
}

void ControlLoop::stop_when_sent(std::chrono::steady_clock::time_point deadline) {
    bool queued = false;
    for (const auto &p : dp_.ports)
        if (p.ctl_tx != nullptr && rte_ring_count(p.ctl_tx) != 0) queued = true;
    if (!queued || std::chrono::steady_clock::now() >= deadline) {
        dp_.stopping.store(true);
        return;
    }
    stop_timer_.expires_after(std::chrono::milliseconds(1));
    stop_timer_.async_wait([this, deadline](const boost::system::error_code &ec) {
        if (ec) {
            dp_.stopping.store(true);
            return;
        }
        stop_when_sent(deadline);
    });
}

void ControlLoop::run() {
    dp::IdleBackoff idle(true, main_max_sleep_us, 64);
    if (sync_ != nullptr) carp_.set_sync_bulk_pending(sync_->bulk_pending());
    carp_.start(); // the ports are up now
    while (!dp_.stopping.load()) {
        const auto pass_start = std::chrono::steady_clock::now();
        // Received frames first, timers after: after a long pass (a bulk apply, a starved
        // vCPU) the adverts that arrived meanwhile re-arm a backup's master-down timer
        // before that timer's handler runs, so a late loop is never a master's silence.
        unsigned work = slow_.drain(SlowPath::Clock::now());
        work += unsigned(io_.poll());
        if (sync_ != nullptr && dp_.cfg.lcores.sync == dp_.cfg.lcores.main)
            work += sync_->poll_once();
        if (reload_step()) work++;
        stalls_.record(std::chrono::steady_clock::now() - pass_start);
        if (const uint32_t us = idle.after_poll(work); us != 0) rte_delay_us_sleep(us);
    }
    if (sync_ != nullptr && dp_.cfg.lcores.sync == dp_.cfg.lcores.main) sync_->finish();
    signals_.cancel();
    hup_.cancel();
    tick_.cancel();
    stop_timer_.cancel();
    // A compile under way is waited for and dropped; a swap under way is left to the
    // Dataplane, which frees both rulesets (the stopped workers report no grace period).
    join_compile_thread();
    carp_.stop(); // stopped another way than begin_stop(): no bow-out can leave any more
    obs_.stop();
    mgmt_.stop();
    io_.poll();
}

} // namespace syncwall::ctl
