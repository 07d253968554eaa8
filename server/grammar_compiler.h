// GrammarCompiler: compiles structured-output grammars (GrammarCache::get)
// on a thread of its own, so that a huge schema (an enum of a few hundred
// thousand strings compiles in about a second) never holds an I/O thread:
// the other connections on it keep being read and written while it
// compiles. Compilations queue behind each other on that one thread; a
// repeated spec is a cache lookup there.
//
// Owns the thread. get() may be awaited from any I/O coroutine and resumes
// it on its own executor; thread-safe. stop() waits for what is queued:
// call it after the I/O threads ended and before their io_context is
// destroyed (a finished compile posts its result back there).
#pragma once

#include <memory>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "common/status.h"
#include "structured/grammar_cache.h"

namespace pagoda {

class GrammarCompiler {
 public:
  explicit GrammarCompiler(structured::GrammarCache* cache);
  ~GrammarCompiler();
  GrammarCompiler(const GrammarCompiler&) = delete;
  GrammarCompiler& operator=(const GrammarCompiler&) = delete;

  // The cache's answer for `spec` (compiled, or an error), computed on the
  // compiler's thread. `spec` must outlive the wait.
  boost::asio::awaitable<Result<std::shared_ptr<structured::CompiledGrammar>>> get(const structured::GrammarSpec& spec);

  // Waits for the queued compilations; later get()s must not be made.
  void stop();

 private:
  structured::GrammarCache* cache_;
  boost::asio::thread_pool thread_{1};
};

}  // namespace pagoda
