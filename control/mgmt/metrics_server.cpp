#include "control/mgmt/metrics_server.hpp"

#include "control/mgmt/accept_loop.hpp"
#include "control/mgmt/prometheus.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <stdexcept>

namespace syncwall::ctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Tcp = asio::ip::tcp;

namespace {

// "127.0.0.1:9101" or "[::1]:9101" (the loader has checked the shape already).
Tcp::endpoint parse_listen(const std::string &text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("no :PORT");
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    const unsigned long port = std::stoul(text.substr(colon + 1));
    if (port > 65535) throw std::invalid_argument("port out of range");
    return Tcp::endpoint(asio::ip::make_address(host), uint16_t(port));
}

bool is_parse_error(const boost::system::error_code &ec) {
    return ec.category() == http::make_error_code(http::error::bad_target).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message;
}

} // namespace

// --- one client ------------------------------------------------------------------------------

class MetricsServer::Session : public std::enable_shared_from_this<Session> {
  public:
    Session(MetricsServer &server, Tcp::socket socket)
        : server_(server), stream_(std::move(socket)), buffer_(max_header_bytes) {}

    void start() { read(); }

    void close() {
        boost::system::error_code ignored;
        stream_.socket().shutdown(Tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

    // When the current read or write began: the oldest makes room for a new client.
    std::chrono::steady_clock::time_point since() const { return since_; }

  private:
    void read() {
        parser_.emplace();
        parser_->header_limit(uint32_t(max_header_bytes));
        since_ = std::chrono::steady_clock::now();
        stream_.expires_after(server_.limits_.header_timeout);
        // The header only: a request body is refused unread (below), so no body or chunk
        // parser ever runs on what a client sends.
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = shared_from_this()](const boost::system::error_code &ec,
                                                            std::size_t) { self->on_read(ec); });
    }

    void on_read(const boost::system::error_code &ec) {
        if (ec) {
            // Garbage gets a 400 and a close; a client that left or idled gets the close only.
            if (is_parse_error(ec))
                respond(http::status::bad_request, "bad request: " + ec.message() + "\n", false,
                        false);
            else
                close();
            return;
        }
        server_.requests_++;
        if (!parser_->is_done()) { // a Content-Length above 0, or a chunked body
            respond(http::status::bad_request, "bad request: " + std::string(body_refused) + "\n",
                    false, false);
            return;
        }
        const auto &req = parser_->get();
        const bool keep_alive = req.keep_alive();
        const bool head = req.method() == http::verb::head;
        if (req.method() != http::verb::get && !head) {
            respond(http::status::method_not_allowed, "only GET and HEAD\n", keep_alive, false);
            return;
        }
        const std::string_view target(req.target().data(), req.target().size());
        const std::string_view path = target.substr(0, target.find('?'));
        if (path != "/metrics") {
            respond(http::status::not_found, "not found: the metrics are at /metrics\n", keep_alive,
                    head);
            return;
        }
        std::string body;
        try {
            body = server_.render_();
        } catch (const std::exception &e) {
            respond(http::status::internal_server_error, std::string(e.what()) + "\n", false, head);
            return;
        }
        respond(http::status::ok, std::move(body), keep_alive, head,
                std::string(prometheus_content_type));
    }

    void respond(http::status status, std::string body, bool keep_alive, bool head,
                 std::string content_type = "text/plain; charset=utf-8") {
        response_ = {};
        response_.version(11);
        response_.result(status);
        response_.set(http::field::server, "syncwall");
        response_.set(http::field::content_type, content_type);
        if (status == http::status::method_not_allowed)
            response_.set(http::field::allow, "GET, HEAD");
        const std::size_t length = body.size();
        if (!head) response_.body() = std::move(body);
        response_.keep_alive(keep_alive);
        response_.content_length(length);
        since_ = std::chrono::steady_clock::now();
        stream_.expires_after(server_.limits_.write_timeout);
        http::async_write(stream_, response_,
                          [self = shared_from_this(),
                           keep_alive](const boost::system::error_code &ec, std::size_t) {
                              if (ec || !keep_alive)
                                  self->close();
                              else
                                  self->read();
                          });
    }

    MetricsServer &server_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::empty_body>> parser_;
    http::response<http::string_body> response_;
    std::chrono::steady_clock::time_point since_{};
};

// --- listening -------------------------------------------------------------------------------

MetricsServer::MetricsServer(asio::io_context &io, std::string listen, Render render, Limits limits)
    : io_(io), listen_(std::move(listen)), render_(std::move(render)), limits_(limits),
      acceptor_(io), retry_(io) {}

MetricsServer::~MetricsServer() {
    stop();
}

void MetricsServer::start() {
    const std::string what = "control.metrics_listen " + listen_ + ": ";
    Tcp::endpoint endpoint;
    try {
        endpoint = parse_listen(listen_);
    } catch (const std::exception &) {
        throw std::runtime_error(what + "not an ADDRESS:PORT");
    }
    try {
        acceptor_.open(endpoint.protocol());
        acceptor_.set_option(Tcp::acceptor::reuse_address(true));
        acceptor_.bind(endpoint);
        acceptor_.listen(int(limits_.max_connections));
    } catch (const boost::system::system_error &e) {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        throw std::runtime_error(what + "cannot listen: " + e.code().message());
    }
    listening_ = true;
    accept();
}

void MetricsServer::accept() {
    accept_connections(acceptor_, retry_, listening_, [this](Tcp::socket socket) {
        std::erase_if(sessions_, [](const auto &s) { return s.expired(); });
        // Every slot taken: the session busy longest with one read or write makes room.
        if (!sessions_.empty() && sessions_.size() >= limits_.max_connections) {
            const auto oldest = std::min_element(
                sessions_.begin(), sessions_.end(),
                [](const auto &a, const auto &b) { return a.lock()->since() < b.lock()->since(); });
            if (auto victim = oldest->lock()) victim->close();
            sessions_.erase(oldest);
            evicted_++;
        }
        auto session = std::make_shared<Session>(*this, std::move(socket));
        sessions_.push_back(session);
        session->start();
    });
}

void MetricsServer::stop() {
    listening_ = false;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    for (auto &weak : sessions_)
        if (auto s = weak.lock()) s->close();
    sessions_.clear();
}

std::size_t MetricsServer::connections() {
    std::erase_if(sessions_, [](const auto &s) { return s.expired(); });
    return sessions_.size();
}

Tcp::endpoint MetricsServer::local_endpoint() const {
    boost::system::error_code ec;
    return acceptor_.local_endpoint(ec);
}

} // namespace syncwall::ctl
