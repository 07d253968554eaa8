// ConnectionRegistry: the open connections of an HttpServer, so that a drain
// can end the ones that sit idle between requests at once (a keep-alive
// client would otherwise hold the server open until its idle timeout).
//
// Owns a set of entries, one per connection. Thread-safe: add/remove/
// close_idle take a mutex; an entry's `idle` flag and stream are touched
// only on its connection's strand (close_idle posts there).
#pragma once

#include <memory>
#include <unordered_set>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "common/mutex.h"

namespace pagoda {

class ConnectionRegistry {
 public:
  struct Entry {
    boost::asio::any_io_executor strand;
    boost::beast::tcp_stream* stream = nullptr;  // valid while `open`
    bool open = true;                            // strand only
    bool idle = false;                           // waiting for the first byte of a request (strand only)
  };

  // Registers a connection; call on its strand.
  std::shared_ptr<Entry> add(boost::asio::any_io_executor strand, boost::beast::tcp_stream* stream);
  // Unregisters it (on its strand, before the stream goes away).
  void remove(const std::shared_ptr<Entry>& entry);
  // Cancels the pending read of every connection that is idle between
  // requests, which ends it; busy ones finish their request first.
  void close_idle();

 private:
  Mutex mu_;
  std::unordered_set<std::shared_ptr<Entry>> entries_ GUARDED_BY(mu_);
};

// Keeps a connection registered for the life of a scope.
class RegisteredConnection {
 public:
  RegisteredConnection(ConnectionRegistry& registry, boost::asio::any_io_executor strand,
                       boost::beast::tcp_stream* stream)
      : registry_(registry), entry_(registry.add(std::move(strand), stream)) {}
  ~RegisteredConnection() { registry_.remove(entry_); }
  RegisteredConnection(const RegisteredConnection&) = delete;
  RegisteredConnection& operator=(const RegisteredConnection&) = delete;
  void set_idle(bool idle) { entry_->idle = idle; }

 private:
  ConnectionRegistry& registry_;
  std::shared_ptr<ConnectionRegistry::Entry> entry_;
};

}  // namespace pagoda
