// The management socket's transport: a Unix stream socket that answers request lines with
// reply lines. MgmtServer (mgmt_server.hpp) supplies the answers; this owns the socket file,
// the connections and their bounds.
//
// Theory of operation: start() makes the parent directory if missing, removes a socket file
// left by a dead process (one that a live process answers on is an error), and binds with
// the process umask set so that the file is created with `mode`: nothing changes the mode
// by path afterwards, so a link planted at the path is never followed. Connections are
// served with asynchronous accept, read and write on the caller's io_context (the main
// lcore): no threads, no locks. Per connection one request line is held (at most
// max_request_bytes, see LineFramer) and its reply written before the next is read.
//
// Bounds, so that no client can hold the operator out:
// * a connection that completes no request for idle_timeout (one that sends nothing, or
//   trickles a line, or does not read its reply) is told so and closed;
// * at most max_connections are open, and one slot is always kept for a new client: when a
//   client arrives while every slot is taken, the connection that has waited longest for a
//   request is closed to make room (told why), and the new one is served.
// stop() closes everything and removes the socket file if it is still ours.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace syncwall::ctl {

struct LineServerLimits {
    std::size_t max_connections = 64;
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
};

class LineServer {
  public:
    using Limits = LineServerLimits;
    // One request line -> one reply line (no newline). An exception it throws becomes an
    // error reply; it never reaches the io_context.
    using Handler = std::function<std::string(std::string_view line)>;
    // The same, answered through `reply` on the io_context's thread, at once or later (a
    // reload answers once its rules are in force); the connection reads no further request
    // until then. A reply for a connection closed meanwhile is dropped.
    using Reply = std::function<void(std::string reply)>;
    using AsyncHandler = std::function<void(std::string_view line, Reply reply)>;

    // `name` opens every error message ("control.socket").
    LineServer(boost::asio::io_context &io, std::string name, std::string path, unsigned mode,
               Handler handler, Limits limits);
    LineServer(boost::asio::io_context &io, std::string name, std::string path, unsigned mode,
               AsyncHandler handler, Limits limits);
    ~LineServer();
    LineServer(const LineServer &) = delete;
    LineServer &operator=(const LineServer &) = delete;

    // Listen. Throws std::runtime_error naming the path and why.
    void start();
    // Close the listener and every connection, remove the socket file. Idempotent.
    void stop();

    const std::string &path() const { return path_; }
    const Limits &limits() const { return limits_; }
    // Connections open now; how many were closed for idling, or to make room for another.
    std::size_t connections();
    uint64_t idle_closed() const { return idle_closed_; }
    uint64_t evicted() const { return evicted_; }

  private:
    class Connection;

    void accept();
    void answer(std::string_view line, Reply reply);

    boost::asio::io_context &io_;
    std::string name_;
    std::string path_;
    unsigned mode_;
    AsyncHandler handler_;
    Limits limits_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
    boost::asio::steady_timer retry_;
    std::vector<std::weak_ptr<Connection>> connections_;
    dev_t socket_dev_ = 0; // the file we bound, so that stop() removes ours only
    ino_t socket_ino_ = 0;
    bool listening_ = false;
    uint64_t idle_closed_ = 0;
    uint64_t evicted_ = 0;
};

} // namespace syncwall::ctl
