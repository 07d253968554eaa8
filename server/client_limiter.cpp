#include "server/client_limiter.h"

namespace pagoda {

bool ClientLimiter::try_acquire(const std::string& address) {
  MutexLock lock(mu_);
  int64_t& n = open_[address];
  if (n >= max_) {
    if (n == 0) open_.erase(address);
    return false;
  }
  ++n;
  return true;
}

void ClientLimiter::release(const std::string& address) {
  MutexLock lock(mu_);
  auto it = open_.find(address);
  if (it == open_.end()) return;
  if (--it->second <= 0) open_.erase(it);
}

int64_t ClientLimiter::count(const std::string& address) const {
  MutexLock lock(mu_);
  auto it = open_.find(address);
  return it == open_.end() ? 0 : it->second;
}

}  // namespace pagoda
