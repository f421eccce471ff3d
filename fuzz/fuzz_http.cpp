// libFuzzer harness: HTTP request parsing as the metrics listener does it: Boost.Beast's
// request parser for the header only (http::async_read_header's loop, with MetricsServer's
// header limit), fed in input-chosen chunks, requests read one after another on the same
// connection (keep-alive); a request with a body is refused unread, as the listener does.
// Then the listener's method and target checks. The socket handling itself needs a live
// io_context and stays with the listener tests.
#include "control/mgmt/metrics_server.hpp"

#include <boost/beast/http.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace http = boost::beast::http;
using syncwall::ctl::MetricsServer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t chunk = std::size_t(data[0] % 31) + 1;
    std::string_view rest(reinterpret_cast<const char *>(data + 1), size - 1);
    for (int requests = 0; requests < 8 && !rest.empty(); ++requests) {
        http::request_parser<http::empty_body> parser;
        parser.header_limit(uint32_t(MetricsServer::max_header_bytes));
        boost::beast::error_code ec;
        // Like a stream read: the parser is offered every byte not yet consumed, and one
        // more chunk arrives whenever it needs more.
        std::size_t used = 0;
        std::size_t avail = std::min(chunk, rest.size());
        while (!parser.is_header_done()) {
            const std::size_t took =
                parser.put(boost::asio::buffer(rest.data() + used, avail - used), ec);
            used += took;
            if (ec == http::error::need_more || (!ec && took == 0)) {
                ec = {};
                if (avail == rest.size()) return 0; // a partial header: the listener waits
                avail = std::min(avail + chunk, rest.size());
                continue;
            }
            if (ec) return 0; // the listener answers 400 and closes
        }
        if (!parser.is_done()) return 0; // a body follows: refused unread, closed
        const auto &req = parser.get();
        const bool head = req.method() == http::verb::head;
        if (req.method() == http::verb::get || head) {
            const std::string_view target(req.target().data(), req.target().size());
            (void)target.substr(0, target.find('?'));
        }
        if (!req.keep_alive()) return 0;
        rest.remove_prefix(used);
    }
    return 0;
}
