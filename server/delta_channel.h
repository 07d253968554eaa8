// DeltaChannel: carries a request's deltas from the engine thread to the
// connection coroutine that serves it, and watches that connection for the
// client going away.
//
// The engine calls the RequestSink side (DeltaSink::on_delta) from its own
// thread; that only posts to the connection's strand, where the delta is
// queued and the waiting coroutine woken (a steady_timer used as an event).
// While the request runs, the socket is watched: when the client closes or
// resets the connection, whatever it sent before (a pipelined request, one
// stray byte), the request is cancelled (its KV pages are freed at the
// engine's next step). A socket with unread bytes stays readable, so then
// the watch polls for the peer's FIN (POLLRDHUP) every kPollInterval.
// Everything but on_delta runs on the connection's strand.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include "scheduler/request.h"

namespace pagoda {

class DeltaChannel : public std::enable_shared_from_this<DeltaChannel> {
 public:
  using Executor = boost::asio::any_io_executor;
  static constexpr std::chrono::milliseconds kPollInterval{10};

  explicit DeltaChannel(Executor ex) : ex_(ex), timer_(ex), poll_timer_(ex) {}

  // The RequestSink to hand to the engine; holds only a weak reference.
  std::shared_ptr<RequestSink> make_sink();

  // Waits until at least one delta is queued or the client went away.
  boost::asio::awaitable<void> wait();
  bool empty() const { return queue_.empty(); }
  RequestDelta pop() {
    RequestDelta d = std::move(queue_.front());
    queue_.pop_front();
    return d;
  }

  // Starts watching `socket` for the client leaving; cancels `request` then.
  // The socket must outlive the watch: end it with stop_watching (or let a
  // DisconnectWatch do it).
  void watch_disconnect(boost::asio::ip::tcp::socket& socket, std::shared_ptr<Request> request);
  // Stops watching (before the socket is read again or destroyed).
  void stop_watching();
  bool client_gone() const { return client_gone_; }

 private:
  friend class DeltaSink;
  void push(RequestDelta d) {
    queue_.push_back(std::move(d));
    timer_.cancel();
  }
  void wait_readable();
  void check_peer();

  Executor ex_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer poll_timer_;
  std::deque<RequestDelta> queue_;
  boost::asio::ip::tcp::socket* socket_ = nullptr;  // while watching_
  std::shared_ptr<Request> request_;
  bool watching_ = false;
  bool client_gone_ = false;
};

// Watches a connection for the life of the scope that serves its request.
// Leaving the scope also cancels the request: however the serving ends (an
// exception, a failed write), nothing keeps generating for nobody. (Cancelling
// a finished request does nothing.)
class DisconnectWatch {
 public:
  DisconnectWatch(DeltaChannel& channel, boost::asio::ip::tcp::socket& socket, std::shared_ptr<Request> request)
      : channel_(channel), request_(request) {
    channel_.watch_disconnect(socket, std::move(request));
  }
  ~DisconnectWatch() {
    channel_.stop_watching();
    request_->cancel();
  }
  DisconnectWatch(const DisconnectWatch&) = delete;
  DisconnectWatch& operator=(const DisconnectWatch&) = delete;

 private:
  DeltaChannel& channel_;
  std::shared_ptr<Request> request_;
};

}  // namespace pagoda
