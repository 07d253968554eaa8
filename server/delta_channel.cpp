#include "server/delta_channel.h"

#include <sys/socket.h>

#include <cerrno>

namespace pagoda {

namespace asio = boost::asio;

// Posts each delta to the channel's strand. Thread-safe.
class DeltaSink final : public RequestSink {
 public:
  DeltaSink(DeltaChannel::Executor ex, std::weak_ptr<DeltaChannel> channel) : ex_(ex), channel_(std::move(channel)) {}
  void on_delta(RequestDelta delta) override {
    asio::post(ex_, [weak = channel_, d = std::move(delta)]() mutable {
      if (auto ch = weak.lock()) ch->push(std::move(d));
    });
  }

 private:
  DeltaChannel::Executor ex_;
  std::weak_ptr<DeltaChannel> channel_;
};

std::shared_ptr<RequestSink> DeltaChannel::make_sink() {
  return std::make_shared<DeltaSink>(ex_, weak_from_this());
}

asio::awaitable<void> DeltaChannel::wait() {
  while (queue_.empty() && !client_gone_) {
    timer_.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void DeltaChannel::watch_disconnect(asio::ip::tcp::socket& socket, std::shared_ptr<Request> request) {
  watching_ = true;
  socket.async_wait(asio::ip::tcp::socket::wait_read,
                    [self = shared_from_this(), &socket, request](const boost::system::error_code& ec) {
                      if (ec || !self->watching_) return;  // cancelled, or the request is over
                      // Readable: either the peer closed (peek sees 0 bytes) or it
                      // sent more data (a pipelined request: leave it for later).
                      char byte;
                      const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
                      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                        request->cancel();
                        self->client_gone_ = true;
                        self->timer_.cancel();
                      }
                    });
}

void DeltaChannel::stop_watching(asio::ip::tcp::socket& socket) {
  if (!watching_) return;
  watching_ = false;
  boost::system::error_code ec;
  socket.cancel(ec);
}

}  // namespace pagoda
