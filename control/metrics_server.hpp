// The Prometheus endpoint: a small HTTP/1.1 server (Boost.Beast) for GET /metrics.
//
// Theory of operation: observability.hpp starts one when control.metrics_listen is set. It
// accepts and serves on the ControlLoop's io_context, so it has no threads of its own and
// `render` (which runs the management commands) is called on the main lcore. It answers
// GET or HEAD /metrics (a query string is ignored) with `render()` as
// text/plain; version=0.0.4, other paths with 404 and other methods with 405; a request
// Beast cannot parse, or one with more than max_header_bytes of header or max_body_bytes of
// body, gets 400 and the connection is closed. Keep-alive is honoured. A connection idle for
// idle_timeout is closed, and at most max_connections are served at once (the next one is
// closed on accept), so no client can hold the main lcore or its memory.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace syncwall::ctl {

class MetricsServer {
  public:
    static constexpr std::size_t max_connections = 64;
    static constexpr std::size_t max_header_bytes = 8 * 1024;
    static constexpr std::size_t max_body_bytes = 4 * 1024;
    static constexpr std::chrono::seconds idle_timeout{30};

    using Render = std::function<std::string()>;

    // `listen` is "ADDRESS:PORT" or "[IPV6]:PORT", as control.metrics_listen holds it.
    MetricsServer(boost::asio::io_context &io, std::string listen, Render render);
    ~MetricsServer();
    MetricsServer(const MetricsServer &) = delete;
    MetricsServer &operator=(const MetricsServer &) = delete;

    // Listen. Throws std::runtime_error naming control.metrics_listen and why.
    void start();
    // Close the listener and every connection. Idempotent.
    void stop();

    // The address actually bound (the port is known even when 0 was asked for).
    boost::asio::ip::tcp::endpoint local_endpoint() const;
    uint64_t requests() const { return requests_; }

  private:
    class Session;

    void accept();

    boost::asio::io_context &io_;
    std::string listen_;
    Render render_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer retry_;
    std::vector<std::weak_ptr<Session>> sessions_;
    bool listening_ = false;
    uint64_t requests_ = 0;
};

} // namespace syncwall::ctl
