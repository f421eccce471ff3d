#include "control/mgmt/line_server.hpp"

#include "control/mgmt/accept_loop.hpp"
#include "control/mgmt/mgmt_protocol.hpp"

#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace syncwall::ctl {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;
using Clock = std::chrono::steady_clock;

namespace {

std::string seconds_text(std::chrono::milliseconds d) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", double(d.count()) / 1000.0);
    return text;
}

} // namespace

// --- one client ------------------------------------------------------------------------------

class LineServer::Connection : public std::enable_shared_from_this<Connection> {
  public:
    Connection(LineServer &server, Local::socket socket)
        : server_(server), socket_(std::move(socket)), timer_(socket_.get_executor()) {}

    void start() {
        progress();
        read();
    }

    // Say why we hang up, if the socket takes it now (no reply of ours is half written and
    // its buffer has room): the note never waits for a client that does not read.
    void close_with(const std::string &why) {
        if (closed_) return;
        if (!writing_) {
            boost::system::error_code ec;
            socket_.non_blocking(true, ec);
            const std::string line = error_reply(why) + "\n";
            if (!ec) socket_.write_some(asio::buffer(line), ec);
        }
        close();
    }

    void close() {
        closed_ = true;
        boost::system::error_code ignored;
        timer_.cancel();
        socket_.close(ignored);
    }

    bool closed() const { return closed_; }
    Clock::time_point last_progress() const { return last_progress_; }

  private:
    // A request answered (or the connection made): the idle clock starts again.
    void progress() {
        last_progress_ = Clock::now();
        timer_.expires_at(last_progress_ + server_.limits_.idle_timeout);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code &ec) {
            if (ec || self->closed_) return; // cancelled: progress was made, or closed
            self->server_.idle_closed_++;
            self->close_with("closed: no request for " +
                             seconds_text(self->server_.limits_.idle_timeout) + " s");
        });
    }

    void read() {
        socket_.async_read_some(
            asio::buffer(chunk_),
            [self = shared_from_this()](const boost::system::error_code &ec, std::size_t n) {
                if (self->closed_) return;
                if (ec == asio::error::eof) {
                    self->framer_.finish(); // a last request without its newline is still answered
                    self->eof_ = true;
                } else if (ec) {
                    self->close();
                    return;
                }
                self->framer_.feed(std::string_view(self->chunk_.data(), n));
                self->process();
            });
    }

    // Answer the next buffered request, or read more. The framer holds at most one line
    // (max_request_bytes) plus one chunk, and a reply is written before the next is made.
    void process() {
        auto item = framer_.next();
        if (!item) {
            if (eof_)
                close();
            else
                read();
            return;
        }
        if (item->kind == LineFramer::Kind::too_long) {
            reply(error_reply(too_long_error()));
            return;
        }
        writing_ = true; // a reply is owed: the idle note must not cut into it
        server_.answer(item->text,
                       [self = shared_from_this()](std::string r) { self->reply(std::move(r)); });
    }

    void reply(std::string text) {
        if (closed_) return; // hung up (or the server stopped) while the answer was made
        out_ = std::move(text);
        out_ += '\n';
        writing_ = true;
        asio::async_write(
            socket_, asio::buffer(out_),
            [self = shared_from_this()](const boost::system::error_code &ec, std::size_t) {
                self->writing_ = false;
                if (ec || self->closed_) {
                    self->close();
                    return;
                }
                self->progress();
                self->process();
            });
    }

    LineServer &server_;
    Local::socket socket_;
    asio::steady_timer timer_;
    std::array<char, 4096> chunk_{};
    LineFramer framer_;
    std::string out_;
    Clock::time_point last_progress_{};
    bool eof_ = false;
    bool writing_ = false;
    bool closed_ = false;
};

// --- listening -------------------------------------------------------------------------------

LineServer::LineServer(asio::io_context &io, std::string name, std::string path, unsigned mode,
                       AsyncHandler handler, Limits limits)
    : io_(io), name_(std::move(name)), path_(std::move(path)), mode_(mode),
      handler_(std::move(handler)), limits_(limits), acceptor_(io), retry_(io) {}

LineServer::LineServer(asio::io_context &io, std::string name, std::string path, unsigned mode,
                       Handler handler, Limits limits)
    : LineServer(io, std::move(name), std::move(path), mode,
                 AsyncHandler([handler = std::move(handler)](std::string_view line, Reply reply) {
                     reply(handler(line));
                 }),
                 limits) {}

LineServer::~LineServer() {
    stop();
}

void LineServer::start() {
    const std::string what = name_ + " " + path_ + ": ";
    if (path_.size() >= sizeof(sockaddr_un::sun_path))
        throw std::runtime_error(what + "longer than " +
                                 std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                 " bytes, the limit of a Unix socket path");
    const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        if (ec)
            throw std::runtime_error(what + "cannot create " + parent.string() + ": " +
                                     ec.message());
    }
    const Local::endpoint endpoint(path_);
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            throw std::runtime_error(what + "exists and is not a socket; not removing it");
        // A socket nobody answers on was left by a process that died: remove it. One that
        // answers belongs to a live process (another syncwall?): leave it alone.
        Local::socket probe(io_);
        boost::system::error_code ec;
        probe.connect(endpoint, ec);
        if (!ec)
            throw std::runtime_error(what + "another process answers on it (is another "
                                            "syncwall running with this control.socket?)");
        if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
            throw std::runtime_error(what +
                                     "cannot remove the stale socket: " + std::strerror(errno));
    }
    // bind() creates the file with 0777 & ~umask: with the umask set to the complement of
    // the mode, it is born with its mode, and no chmod by path (which would follow a link
    // put in its place) is needed. The umask is the process's: it is changed for the bind()
    // call alone, once, at start, before syncwall launches its workers.
    boost::system::error_code bind_error;
    acceptor_.open(endpoint.protocol(), bind_error);
    if (!bind_error) {
        const mode_t old_umask = ::umask(mode_t(~mode_ & 0777));
        acceptor_.bind(endpoint, bind_error);
        ::umask(old_umask);
    }
    if (bind_error) {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        throw std::runtime_error(what + "cannot bind: " + bind_error.message());
    }
    // The file we made, so that stop() removes ours only. Its mode is checked, never set.
    if (::lstat(path_.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) ||
        (st.st_mode & 0777) != (mode_ & 0777)) {
        char want[8];
        std::snprintf(want, sizeof(want), "%04o", mode_ & 0777);
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        throw std::runtime_error(what + "is not the socket of mode " + want +
                                 " just bound (replaced meanwhile?)");
    }
    socket_dev_ = st.st_dev;
    socket_ino_ = st.st_ino;
    try {
        acceptor_.listen(int(limits_.max_connections));
    } catch (const boost::system::system_error &e) {
        stop();
        throw std::runtime_error(what + "cannot listen: " + e.code().message());
    }
    listening_ = true;
    accept();
}

void LineServer::accept() {
    accept_connections(acceptor_, retry_, listening_, [this](Local::socket socket) {
        connections();
        // Every slot taken: the one waiting longest for a request makes room.
        if (!connections_.empty() && connections_.size() >= limits_.max_connections) {
            const auto oldest = std::min_element(
                connections_.begin(), connections_.end(), [](const auto &a, const auto &b) {
                    return a.lock()->last_progress() < b.lock()->last_progress();
                });
            evicted_++;
            oldest->lock()->close_with("closed to make room for a new client (" +
                                       std::to_string(limits_.max_connections) +
                                       " management connections at most)");
            connections_.erase(oldest);
        }
        auto conn = std::make_shared<Connection>(*this, std::move(socket));
        connections_.push_back(conn);
        conn->start();
    });
}

// The handler answers once: a second reply, or an exception after the reply, is dropped.
void LineServer::answer(std::string_view line, Reply reply) {
    auto replied = std::make_shared<bool>(false);
    Reply once = [replied, reply = std::move(reply)](std::string text) {
        if (*replied) return;
        *replied = true;
        reply(std::move(text));
    };
    try {
        handler_(line, once);
    } catch (const std::exception &e) {
        once(error_reply(e.what()));
    } catch (...) {
        once(error_reply("internal error"));
    }
}

// A connection lives as long as its pending handlers: one closed goes once they have run.
std::size_t LineServer::connections() {
    std::erase_if(connections_, [](const auto &weak) {
        const auto c = weak.lock();
        return !c || c->closed();
    });
    return connections_.size();
}

void LineServer::stop() {
    if (!listening_ && !acceptor_.is_open()) return;
    listening_ = false;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    for (auto &weak : connections_)
        if (auto c = weak.lock()) c->close();
    connections_.clear();
    // Remove the socket file only if it is still the one we made (a later instance may have
    // replaced it after deciding ours was stale).
    struct stat st {};
    if (socket_ino_ != 0 && ::lstat(path_.c_str(), &st) == 0 && st.st_dev == socket_dev_ &&
        st.st_ino == socket_ino_)
        ::unlink(path_.c_str());
    socket_ino_ = 0;
}

} // namespace syncwall::ctl
