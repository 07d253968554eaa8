// Mutex and MutexLock: std::mutex and a scoped lock that clang's thread-safety
// analysis understands (common/thread_annotations.h), so members marked
// GUARDED_BY(mu_) are checked at compile time. A condition variable waits on
// MutexLock::native(); write the wait as a loop over the predicate in the
// locked scope (while (!ready) cv.wait(lock.native());) so the analysis sees
// the reads under the lock.
// Mutex is thread-safe (it is the lock); a MutexLock belongs to one thread.
#pragma once

#include <mutex>

#include "common/thread_annotations.h"

namespace pagoda {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : lock_(mu.native()) {}
  ~MutexLock() RELEASE() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  // For std::condition_variable: the wait releases and re-takes the mutex.
  std::unique_lock<std::mutex>& native() { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace pagoda
