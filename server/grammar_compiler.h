// GrammarCompiler: compiles structured-output grammars (GrammarCache) on a
// thread of its own, so that a huge schema (an object of 6,000 optional
// properties compiles in about a second) never holds an I/O thread: the
// other connections on it keep being read and written while it compiles. A
// cached grammar is looked up on the caller's thread and never waits for
// the compiler; misses queue behind each other on its thread, at most
// kMaxQueued at a time (beyond: an unavailable error, a 503 with
// Retry-After).
//
// Owns the thread. get() may be awaited from any I/O coroutine and resumes
// it on its own executor; thread-safe. stop() makes queued compilations
// end at once (unavailable) and waits for the one under way: call it after
// the I/O threads ended and before their io_context is destroyed (a
// finished compilation posts its result back there).
#pragma once

#include <atomic>
#include <memory>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "common/status.h"
#include "structured/grammar_cache.h"

namespace pagoda {

class GrammarCompiler {
 public:
  // Compilations waiting or under way, at most.
  static constexpr int kMaxQueued = 8;

  explicit GrammarCompiler(structured::GrammarCache* cache);
  ~GrammarCompiler();
  GrammarCompiler(const GrammarCompiler&) = delete;
  GrammarCompiler& operator=(const GrammarCompiler&) = delete;

  // The cache's answer for `spec` (compiled, or an error): a lookup here,
  // a compilation on the compiler's thread. `spec` must outlive the wait.
  boost::asio::awaitable<Result<std::shared_ptr<structured::CompiledGrammar>>> get(const structured::GrammarSpec& spec);

  // Ends the compiler: queued compilations answer unavailable, the one
  // under way finishes; waits for them. Later get()s must not be made.
  void stop();

 private:
  structured::GrammarCache* cache_;
  std::atomic<int> queued_{0};
  std::atomic<bool> stopping_{false};
  boost::asio::thread_pool thread_{1};
};

}  // namespace pagoda
