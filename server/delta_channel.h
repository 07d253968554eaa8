// DeltaChannel: carries the deltas of a response's requests (one per choice:
// n > 1 has several) from the engine thread to the connection coroutine that
// serves them, and watches that connection for the client going away.
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
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include "scheduler/request.h"

namespace pagoda {

class DeltaChannel : public std::enable_shared_from_this<DeltaChannel> {
 public:
  using Executor = boost::asio::any_io_executor;
  static constexpr std::chrono::milliseconds kPollInterval{10};

  explicit DeltaChannel(Executor ex) : ex_(ex), timer_(ex), poll_timer_(ex) {}

  // The RequestSink to hand to the engine for choice `choice`; holds only a
  // weak reference.
  std::shared_ptr<RequestSink> make_sink(int choice = 0);

  // Waits until at least one delta is queued or the client went away.
  boost::asio::awaitable<void> wait();
  bool empty() const { return queue_.empty(); }
  // The oldest delta, and in `*choice` (optional) the choice it belongs to.
  RequestDelta pop(int* choice = nullptr) {
    if (choice) *choice = queue_.front().first;
    RequestDelta d = std::move(queue_.front().second);
    queue_.pop_front();
    return d;
  }

  // Starts watching `socket` for the client leaving; cancels `requests` then.
  // The socket must outlive the watch: end it with stop_watching (or let a
  // DisconnectWatch do it).
  void watch_disconnect(boost::asio::ip::tcp::socket& socket, std::vector<std::shared_ptr<Request>> requests);
  // Stops watching (before the socket is read again or destroyed).
  void stop_watching();
  bool client_gone() const { return client_gone_; }

 private:
  friend class DeltaSink;
  void push(int choice, RequestDelta d) {
    queue_.emplace_back(choice, std::move(d));
    timer_.cancel();
  }
  void wait_readable();
  void check_peer();

  Executor ex_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer poll_timer_;
  std::deque<std::pair<int, RequestDelta>> queue_;  // (choice, delta)
  boost::asio::ip::tcp::socket* socket_ = nullptr;  // while watching_
  std::vector<std::shared_ptr<Request>> requests_;
  bool watching_ = false;
  bool client_gone_ = false;
};

// Watches a connection for the life of the scope that serves its requests.
// Leaving the scope also cancels them: however the serving ends (an
// exception, a failed write), nothing keeps generating for nobody. (Cancelling
// a finished request does nothing.)
class DisconnectWatch {
 public:
  DisconnectWatch(DeltaChannel& channel, boost::asio::ip::tcp::socket& socket,
                  std::vector<std::shared_ptr<Request>> requests)
      : channel_(channel), requests_(requests) {
    channel_.watch_disconnect(socket, std::move(requests));
  }
  ~DisconnectWatch() {
    channel_.stop_watching();
    for (const auto& request : requests_) request->cancel();
  }
  DisconnectWatch(const DisconnectWatch&) = delete;
  DisconnectWatch& operator=(const DisconnectWatch&) = delete;

 private:
  DeltaChannel& channel_;
  std::vector<std::shared_ptr<Request>> requests_;
};

}  // namespace pagoda
