// The accept loop the control plane's listeners share (the management socket, /metrics).
//
// accept_connections() hands every accepted socket to `on_socket` and accepts again, for as
// long as `listening` stays true. An accept error (out of file descriptors, say) is retried
// after 100 ms on `retry` rather than spun on; a cancelled accept (the listener closed) ends
// the loop. Everything runs on the acceptor's io_context (the main lcore): no locks.
#pragma once

#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <utility>

namespace syncwall::ctl {

template <typename Acceptor, typename OnSocket>
void accept_connections(Acceptor &acceptor, boost::asio::steady_timer &retry, const bool &listening,
                        OnSocket on_socket) {
    using Socket = typename Acceptor::protocol_type::socket;
    acceptor.async_accept([&acceptor, &retry, &listening,
                           on_socket](const boost::system::error_code &ec, Socket socket) mutable {
        if (!listening || ec == boost::asio::error::operation_aborted) return;
        if (ec) {
            retry.expires_after(std::chrono::milliseconds(100));
            retry.async_wait(
                [&acceptor, &retry, &listening, on_socket](const boost::system::error_code &e) {
                    if (!e && listening) accept_connections(acceptor, retry, listening, on_socket);
                });
            return;
        }
        on_socket(std::move(socket));
        accept_connections(acceptor, retry, listening, std::move(on_socket));
    });
}

} // namespace syncwall::ctl
