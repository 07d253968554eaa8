// ClientLimiter: counts open connections per client IP address and refuses
// one beyond server.max_connections_per_client, so one client cannot take
// every connection slot. HttpServer acquires a slot when it accepts a
// connection and releases it when the connection ends.
//
// Owns a map address -> open connections (entries are erased at zero, so it
// holds only addresses with open connections). Thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "common/mutex.h"

namespace pagoda {

class ClientLimiter {
 public:
  explicit ClientLimiter(int64_t max_per_client) : max_(max_per_client) {}

  // Takes a slot for `address`; false (and nothing taken) when it has max.
  bool try_acquire(const std::string& address);
  // Gives back a slot taken by try_acquire.
  void release(const std::string& address);
  // Open connections of `address`.
  int64_t count(const std::string& address) const;

 private:
  const int64_t max_;
  mutable Mutex mu_;
  std::unordered_map<std::string, int64_t> open_ GUARDED_BY(mu_);
};

}  // namespace pagoda
