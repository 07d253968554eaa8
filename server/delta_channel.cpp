#include "server/delta_channel.h"

#include <poll.h>

namespace pagoda {

namespace asio = boost::asio;

// Posts each delta to the channel's strand. Thread-safe.
class DeltaSink final : public RequestSink {
 public:
  DeltaSink(DeltaChannel::Executor ex, std::weak_ptr<DeltaChannel> channel, int choice)
      : ex_(ex), channel_(std::move(channel)), choice_(choice) {}
  void on_delta(RequestDelta delta) override {
    asio::post(ex_, [weak = channel_, choice = choice_, d = std::move(delta)]() mutable {
      if (auto ch = weak.lock()) ch->push(choice, std::move(d));
    });
  }

 private:
  DeltaChannel::Executor ex_;
  std::weak_ptr<DeltaChannel> channel_;
  int choice_;
};

std::shared_ptr<RequestSink> DeltaChannel::make_sink(int choice) {
  return std::make_shared<DeltaSink>(ex_, weak_from_this(), choice);
}

asio::awaitable<void> DeltaChannel::wait() {
  while (queue_.empty() && !client_gone_) {
    timer_.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void DeltaChannel::watch_disconnect(asio::ip::tcp::socket& socket, std::vector<std::shared_ptr<Request>> requests) {
  socket_ = &socket;
  requests_ = std::move(requests);
  watching_ = true;
  wait_readable();
}

void DeltaChannel::wait_readable() {
  socket_->async_wait(asio::ip::tcp::socket::wait_read,
                      [self = shared_from_this()](const boost::system::error_code& ec) {
                        if (ec || !self->watching_) return;  // cancelled, or the request is over
                        self->check_peer();
                      });
}

void DeltaChannel::check_peer() {
  // Readable means the peer closed or reset, or it sent bytes (a pipelined
  // request, or a stray byte before it leaves). POLLRDHUP tells a FIN apart
  // even behind unread bytes.
  pollfd p{socket_->native_handle(), POLLIN | POLLRDHUP, 0};
  const int n = ::poll(&p, 1, 0);
  if (n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
    for (const auto& request : requests_) request->cancel();
    client_gone_ = true;
    timer_.cancel();
    return;
  }
  if (n > 0 && (p.revents & POLLIN)) {
    // Bytes wait unread (they belong to the next request), so the socket
    // stays readable: look again after a pause instead of spinning.
    poll_timer_.expires_after(kPollInterval);
    poll_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || !self->watching_) return;
      self->check_peer();
    });
    return;
  }
  wait_readable();
}

void DeltaChannel::stop_watching() {
  if (!watching_) return;
  watching_ = false;
  boost::system::error_code ec;
  socket_->cancel(ec);
  poll_timer_.cancel();
  socket_ = nullptr;
}

}  // namespace pagoda
