// The Prometheus endpoint: a small HTTP/1.1 server (Boost.Beast) for GET /metrics.
//
// Theory of operation: observability.hpp starts one when control.metrics_listen is set. It
// accepts and serves on the ControlLoop's io_context, so it has no threads of its own and
// `render` (which runs the management commands) is called on the main lcore. It answers
// GET or HEAD /metrics (a query string is ignored) with `render()` as
// text/plain; version=0.0.4, other paths with 404 and other methods with 405; a request
// Beast cannot parse, one with more than max_header_bytes of header, or one with a body (a
// Content-Length above 0 or chunked: the header is read, the body never is) gets 400 and the
// connection is closed. Keep-alive is honoured.
//
// Bounds, so that no client can hold the main lcore, its memory or the scrapers out:
// * a request header must arrive within header_timeout of the server
//   starting to read it, also on a kept-alive connection: one that trickles its header, or
//   idles between requests, is closed;
// * a response must be taken within write_timeout;
// * at most max_connections are open, and one slot is always kept for a new client: when a
//   client arrives while every slot is taken, the connection whose current read or write
//   began longest ago is closed to make room, and the new one is served.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace syncwall::ctl {

struct MetricsLimits {
    std::size_t max_connections = 64;
    std::chrono::milliseconds header_timeout = std::chrono::seconds(10);
    std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
};

class MetricsServer {
  public:
    static constexpr std::size_t max_header_bytes = 8 * 1024;
    // Why a request with a body gets 400 (the reply's text after "bad request: ").
    static constexpr std::string_view body_refused = "the metrics page takes no request body";

    using Limits = MetricsLimits;

    using Render = std::function<std::string()>;

    // `listen` is "ADDRESS:PORT" or "[IPV6]:PORT", as control.metrics_listen holds it.
    MetricsServer(boost::asio::io_context &io, std::string listen, Render render,
                  Limits limits = {});
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
    // Connections open now; those closed to make room for a new client.
    std::size_t connections();
    uint64_t evicted() const { return evicted_; }

  private:
    class Session;

    void accept();

    boost::asio::io_context &io_;
    std::string listen_;
    Render render_;
    Limits limits_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer retry_;
    std::vector<std::weak_ptr<Session>> sessions_;
    bool listening_ = false;
    uint64_t requests_ = 0;
    uint64_t evicted_ = 0;
};

} // namespace syncwall::ctl
