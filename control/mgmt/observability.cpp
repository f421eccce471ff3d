#include "control/mgmt/observability.hpp"

#include "control/mgmt/mgmt_server.hpp"
#include "control/mgmt/prometheus.hpp"

#include <cstdio>

namespace syncwall::ctl {

Observability::Observability(boost::asio::io_context &io, const config::ControlConfig &cfg,
                             MgmtServer &mgmt)
    : mgmt_(mgmt), metrics_listen_(cfg.metrics_listen.value_or("")), timer_(io) {
    if (!metrics_listen_.empty())
        metrics_ =
            std::make_unique<MetricsServer>(io, metrics_listen_, [this] { return metrics_text(); });
}

Observability::~Observability() {
    stop();
}

void Observability::start() {
    running_ = true;
    publish();
    arm();
    if (metrics_) {
        metrics_->start();
        const auto ep = metrics_->local_endpoint();
        std::printf("syncwall: metrics on http://%s%s%s:%u/metrics\n",
                    ep.address().is_v6() ? "[" : "", ep.address().to_string().c_str(),
                    ep.address().is_v6() ? "]" : "", unsigned(ep.port()));
        std::fflush(stdout);
    }
}

void Observability::stop() {
    running_ = false;
    timer_.cancel();
    telemetry_.withdraw();
    if (metrics_) metrics_->stop();
}

Json Observability::result_of(Command cmd) {
    try {
        return mgmt_.execute(Request{cmd, {}});
    } catch (const std::exception &e) {
        return Json{{"available", false}, {"reason", e.what()}};
    }
}

std::string Observability::metrics_text() {
    return prometheus_text(result_of(Command::show_info), result_of(Command::show_carp),
                           result_of(Command::show_sync));
}

void Observability::publish() {
    telemetry_.publish(result_of(Command::show_info), result_of(Command::show_carp),
                       result_of(Command::show_sync));
}

void Observability::arm() {
    timer_.expires_after(publish_interval);
    timer_.async_wait([this](const boost::system::error_code &ec) {
        if (ec || !running_) return;
        publish();
        arm();
    });
}

} // namespace syncwall::ctl
