// The control plane's listeners on real sockets, with their limits shortened: the management
// socket's idle timeout, the slot kept for a new client, handlers that throw, the socket's
// mode; /metrics' header deadline and its slot kept for a new scraper. The server runs on an
// io_context of its own thread; the tests are its blocking clients.
#include "control/mgmt/line_server.hpp"
#include "control/mgmt/metrics_server.hpp"
#include "control/mgmt/mgmt_protocol.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <future>
#include <netinet/in.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

using namespace syncwall;
using namespace syncwall::ctl;
using namespace std::chrono_literals;

// chmod(2) as the tests see it: when `plant` names a path, a link to `victim` is put in its
// place first, as someone with write access to the directory would between bind() and a
// chmod by path. A server that sets its socket's mode without following links never calls
// it; one that does changes the victim's mode.
namespace {
std::string plant_at, plant_victim;
}
extern "C" int chmod(const char *path, mode_t mode) {
    if (!plant_at.empty() && plant_at == path) {
        ::unlink(path);
        if (::symlink(plant_victim.c_str(), path) != 0) return -1;
    }
    return ::fchmodat(AT_FDCWD, path, mode, 0);
}

namespace {

// A temporary directory, removed with everything in it.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        char tmpl[] = "/tmp/syncwall-listeners-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

// An io_context run by its own thread while the test lives.
struct IoThread {
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{
        io.get_executor()};
    std::thread thread;

    void run() {
        thread = std::thread([this] { io.run(); });
    }
    // Run f on the io thread and wait for its result.
    template <typename F> auto on_io(F f) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto result = task.get_future();
        boost::asio::post(io, [&task] { task(); });
        return result.get();
    }
    ~IoThread() {
        guard.reset();
        io.stop();
        if (thread.joinable()) thread.join();
    }
};

// A blocking client socket whose reads give up after `timeout`.
struct Client {
    int fd = -1;
    std::string buffered;

    explicit Client(int domain) {
        fd = ::socket(domain, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        set_timeout(3s);
    }
    ~Client() {
        if (fd >= 0) ::close(fd);
    }
    void set_timeout(std::chrono::milliseconds t) {
        timeval tv{time_t(t.count() / 1000), suseconds_t(t.count() % 1000 * 1000)};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    bool connect_unix(const std::string &path) {
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
        return ::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0;
    }
    bool connect_tcp(uint16_t port) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return ::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0;
    }
    void send(const std::string &bytes) {
        REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size()));
    }
    // One line without its newline; "<eof>" when the server hung up, "<timeout>" when
    // nothing came in time.
    std::string line() {
        for (;;) {
            if (const auto nl = buffered.find('\n'); nl != std::string::npos) {
                std::string out = buffered.substr(0, nl);
                buffered.erase(0, nl + 1);
                return out;
            }
            char chunk[4096];
            const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
            if (n == 0 || (n < 0 && errno == ECONNRESET)) return "<eof>";
            if (n < 0) return "<timeout>";
            buffered.append(chunk, std::size_t(n));
        }
    }
    // Everything until the server hangs up, or "<timeout>".
    std::string rest() {
        std::string out = buffered;
        for (;;) {
            char chunk[4096];
            const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
            if (n == 0 || (n < 0 && errno == ECONNRESET)) return out;
            if (n < 0) return "<timeout>";
            out.append(chunk, std::size_t(n));
        }
    }
};

// The management socket's transport with the daemon's request parsing and an answer of its
// own instead of the commands (which need the dataplane).
struct MgmtFixture {
    TempDir dir;
    std::string path = (dir.path / "ctl.sock").string();
    IoThread io;
    LineServer server;

    explicit MgmtFixture(LineServer::Limits limits, unsigned mode = 0600)
        : server(io.io, "control.socket", path, mode, answer, limits) {}

    static std::string answer(std::string_view line) {
        ParsedRequest p = parse_request(line);
        if (!p.request) return error_reply(p.error);
        if (p.request->cmd == Command::reload) throw std::out_of_range("thrown by a command");
        return ok_reply(Json{{"cmd", std::string(command_name(p.request->cmd))}});
    }

    void start() {
        server.start();
        io.run();
    }
    // The server is the io thread's: it is stopped there, never beside a running handler.
    ~MgmtFixture() {
        if (io.thread.joinable())
            io.on_io([this] {
                server.stop();
                return 0;
            });
    }
};

const std::string show_info = R"({"v":1,"cmd":"show info"})"
                              "\n";
const std::string info_reply = R"({"v":1,"ok":true,"result":{"cmd":"show info"}})";

} // namespace

TEST_CASE("no line on the management socket ends the server", "[listeners][mgmt]") {
    MgmtFixture f({});
    f.start();
    Client c(AF_UNIX);
    REQUIRE(c.connect_unix(f.path));
    c.send("1e999\n");
    CHECK(c.line() == R"({"v":1,"ok":false,"error":"invalid JSON: number overflow at byte 5"})");
    c.send(R"({"v":1,"cmd":"show states","args":)" + std::string(60000, '[') + "\n");
    CHECK(c.line() == error_reply("request nested deeper than " +
                                  std::to_string(max_request_depth) + " levels"));
    c.send(R"({"v":1,"cmd":"reload"})"
           "\n"); // the handler throws
    CHECK(c.line() == R"({"v":1,"ok":false,"error":"thrown by a command"})");
    c.send(show_info);
    CHECK(c.line() == info_reply);
}

TEST_CASE("an idle management connection is told and closed after the idle timeout",
          "[listeners][mgmt]") {
    MgmtFixture f({.max_connections = 64, .idle_timeout = 300ms});
    f.start();
    Client quiet(AF_UNIX), trickling(AF_UNIX), busy(AF_UNIX);
    REQUIRE(quiet.connect_unix(f.path));
    REQUIRE(trickling.connect_unix(f.path));
    REQUIRE(busy.connect_unix(f.path));
    const auto start = std::chrono::steady_clock::now();
    // One byte of a request every 100 ms never completes a request.
    for (int i = 0; i < 6; i++) {
        ::send(trickling.fd, "{", 1, MSG_NOSIGNAL); // fails once the server has hung up
        busy.send(show_info); // each answered request starts the idle clock again
        CHECK(busy.line() == info_reply);
        std::this_thread::sleep_for(100ms);
    }
    CHECK(quiet.line() == R"({"v":1,"ok":false,"error":"closed: no request for 0.3 s"})");
    CHECK(quiet.line() == "<eof>");
    CHECK(trickling.rest() == R"({"v":1,"ok":false,"error":"closed: no request for 0.3 s"})"
                              "\n");
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    busy.send(show_info);
    CHECK(busy.line() == info_reply);
    CHECK(f.io.on_io([&] { return f.server.idle_closed(); }) == 2);
    CHECK(f.io.on_io([&] { return f.server.connections(); }) == 1);
}

TEST_CASE("a new management client is served while every slot is held", "[listeners][mgmt]") {
    MgmtFixture f({.max_connections = 4, .idle_timeout = 60s});
    f.start();
    std::vector<std::unique_ptr<Client>> held;
    for (int i = 0; i < 4; i++) {
        held.push_back(std::make_unique<Client>(AF_UNIX));
        REQUIRE(held.back()->connect_unix(f.path));
        held.back()->send(show_info); // accepted, answered, then idle
        REQUIRE(held.back()->line() == info_reply);
    }
    std::vector<std::unique_ptr<Client>> fresh; // kept open: every slot stays taken
    for (int round = 0; round < 3; round++) {
        fresh.push_back(std::make_unique<Client>(AF_UNIX));
        REQUIRE(fresh.back()->connect_unix(f.path));
        fresh.back()->send(show_info);
        CHECK(fresh.back()->line() == info_reply);
        // The connection idle longest made room, and was told why.
        Client &oldest = *held[std::size_t(round)];
        CHECK(
            oldest.line() ==
            error_reply("closed to make room for a new client (4 management connections at most)"));
        CHECK(oldest.line() == "<eof>");
    }
    // The newest of those held is still served.
    held[3]->send(show_info);
    CHECK(held[3]->line() == info_reply);
    CHECK(f.io.on_io([&] { return f.server.evicted(); }) == 3);
    CHECK(f.io.on_io([&] { return f.server.connections(); }) == 4);
}

TEST_CASE("the management socket is made with its mode and a link at its path is not followed",
          "[listeners][mgmt]") {
    const mode_t old_umask = ::umask(022);
    SECTION("mode 0660 under umask 022") {
        MgmtFixture f({}, 0660);
        f.start();
        struct stat st {};
        REQUIRE(::lstat(f.path.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 07777) == 0660);
        Client c(AF_UNIX);
        REQUIRE(c.connect_unix(f.path));
        c.send(show_info);
        CHECK(c.line() == info_reply);
        // The process umask is the one it had.
        const mode_t now = ::umask(022);
        CHECK(now == 022);
    }
    SECTION("a link planted at the path after bind") {
        TempDir other;
        const std::string victim = (other.path / "victim").string();
        {
            std::FILE *file = std::fopen(victim.c_str(), "w");
            REQUIRE(file);
            std::fclose(file);
        }
        REQUIRE(::chmod(victim.c_str(), 0644) == 0);
        MgmtFixture f({}, 0666);
        plant_at = f.path;
        plant_victim = victim;
        try {
            f.start();
        } catch (const std::exception &) {
            // Refusing to start is fine; changing the victim is not.
        }
        plant_at.clear();
        struct stat st {};
        REQUIRE(::stat(victim.c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == 0644);
        REQUIRE(::lstat(f.path.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 07777) == 0666);
    }
    ::umask(old_umask);
}

TEST_CASE("a second server on a live socket is refused; a stale file is replaced",
          "[listeners][mgmt]") {
    MgmtFixture f({});
    f.start();
    IoThread io2;
    LineServer second(io2.io, "control.socket", f.path, 0600, MgmtFixture::answer, {});
    CHECK_THROWS_WITH(second.start(), Catch::Contains("another process answers on it"));
    f.io.on_io([&] {
        f.server.stop();
        return 0;
    });
    CHECK_FALSE(std::filesystem::exists(f.path));
}

namespace {

struct MetricsFixture {
    IoThread io;
    MetricsServer server;
    uint16_t port = 0;

    explicit MetricsFixture(MetricsServer::Limits limits)
        : server(
              io.io, "127.0.0.1:0", [] { return std::string("syncwall_up 1\n"); }, limits) {
        server.start();
        port = server.local_endpoint().port();
        io.run();
    }
    ~MetricsFixture() {
        io.on_io([this] {
            server.stop();
            return 0;
        });
    }
};

const std::string scrape = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

} // namespace

TEST_CASE("a client trickling its request header to /metrics is cut off at the deadline",
          "[listeners][metrics]") {
    MetricsFixture f({.max_connections = 64, .header_timeout = 300ms, .write_timeout = 30s});
    Client slow(AF_INET), idle(AF_INET);
    REQUIRE(slow.connect_tcp(f.port));
    REQUIRE(idle.connect_tcp(f.port));
    const auto start = std::chrono::steady_clock::now();
    bool cut_off = false;
    for (int i = 0; i < 30 && !cut_off; i++) { // a header byte every 50 ms, for up to 1.5 s
        cut_off = ::send(slow.fd, "X", 1, MSG_NOSIGNAL) != 1;
        std::this_thread::sleep_for(50ms);
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(cut_off);
    CHECK(elapsed < 1400ms);
    CHECK(idle.rest().empty()); // closed, nothing said
    // A well-behaved scrape is served.
    Client ok(AF_INET);
    REQUIRE(ok.connect_tcp(f.port));
    ok.send(scrape);
    const std::string response = ok.rest();
    CHECK(response.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(response.ends_with("syncwall_up 1\n"));
}

TEST_CASE("a scrape is served while every /metrics slot is held by slow clients",
          "[listeners][metrics]") {
    MetricsFixture f({.max_connections = 4, .header_timeout = 60s, .write_timeout = 30s});
    std::vector<std::unique_ptr<Client>> slow;
    for (int i = 0; i < 4; i++) {
        slow.push_back(std::make_unique<Client>(AF_INET));
        REQUIRE(slow.back()->connect_tcp(f.port));
        slow.back()->send("GET /metr");
    }
    // Let the server accept them all before the scraper comes.
    for (int i = 0; i < 200 && f.io.on_io([&] { return f.server.connections(); }) < 4; i++)
        std::this_thread::sleep_for(10ms);
    REQUIRE(f.io.on_io([&] { return f.server.connections(); }) == 4);
    for (int round = 0; round < 3; round++) {
        Client scraper(AF_INET);
        REQUIRE(scraper.connect_tcp(f.port));
        scraper.send(scrape);
        const std::string response = scraper.rest();
        CHECK(response.starts_with("HTTP/1.1 200 OK\r\n"));
    }
    CHECK(f.io.on_io([&] { return f.server.evicted(); }) >= 1);
    CHECK(slow[0]->rest().empty()); // the oldest made room
    CHECK(f.io.on_io([&] { return f.server.connections(); }) <= 4);
}

TEST_CASE("a request with a body gets 400 unread and the listener goes on serving",
          "[listeners][metrics]") {
    MetricsFixture f({});
    const std::string refused = "bad request: " + std::string(MetricsServer::body_refused);
    for (const std::string &request : {
             std::string("POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "3\r\nabc\r\n0\r\n\r\n"),
             // A chunk size line the chunk parser would have to read: never read.
             std::string("GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "ffffffffffffffffff;" +
                         std::string(100, 'x') + "\r\n"),
             std::string("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
         }) {
        Client c(AF_INET);
        REQUIRE(c.connect_tcp(f.port));
        c.send(request);
        const std::string response = c.rest();
        CHECK(response.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        CHECK(response.ends_with(refused + "\n"));
    }
    Client ok(AF_INET);
    REQUIRE(ok.connect_tcp(f.port));
    ok.send(scrape);
    CHECK(ok.rest().ends_with("syncwall_up 1\n"));
}
