// DeltaChannel: carries a request's deltas from the engine thread to the
// connection coroutine that serves it.
//
// The engine calls the RequestSink side (DeltaSink::on_delta) from its own
// thread; that only posts to the connection's strand, where the delta is
// queued and the waiting coroutine woken (a steady_timer used as an event).
// It also watches the socket while the request runs: if the client closes
// the connection, the request is cancelled (its KV pages are freed at the
// engine's next step).
// Everything but on_delta runs on the connection's strand.
#pragma once

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
  explicit DeltaChannel(Executor ex) : ex_(ex), timer_(ex) {}

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

  // Starts watching `socket` for the client closing; cancels `request` then.
  void watch_disconnect(boost::asio::ip::tcp::socket& socket, std::shared_ptr<Request> request);
  // Stops watching (before the socket is read again or destroyed).
  void stop_watching(boost::asio::ip::tcp::socket& socket);
  bool client_gone() const { return client_gone_; }

 private:
  friend class DeltaSink;
  void push(RequestDelta d) {
    queue_.push_back(std::move(d));
    timer_.cancel();
  }

  Executor ex_;
  boost::asio::steady_timer timer_;
  std::deque<RequestDelta> queue_;
  bool watching_ = false;
  bool client_gone_ = false;
};

}  // namespace pagoda
