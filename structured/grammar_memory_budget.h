// GrammarMemoryBudget: the bytes that the automata and mask caches of every
// compiled grammar may hold together (config key structured.memory_mib), so
// clients sending many distinct, hostile schemas cannot exhaust the
// server's memory. Each CompiledGrammar charges what its tables grew by
// after each mask or advance and returns it all when destroyed; a grammar
// may not grow while the budget is spent: a mask that needs a transition
// not yet taken is an error, while states whose masks are cached keep
// serving. Growth is checked before a mask or a compile and charged after
// it, so the sum may pass the limit by what the masks and start states
// being computed at that moment build (each bounded by GrammarAutomaton's
// per-mask limits) and by advances past a mask. Owns only the counter;
// thread-safe (atomic).
#pragma once

#include <atomic>
#include <cstddef>
#include <string>

#include "common/status.h"

namespace pagoda::structured {

class GrammarMemoryBudget {
 public:
  explicit GrammarMemoryBudget(size_t limit_bytes) : limit_(limit_bytes) {}
  GrammarMemoryBudget(const GrammarMemoryBudget&) = delete;
  GrammarMemoryBudget& operator=(const GrammarMemoryBudget&) = delete;

  size_t limit() const { return limit_; }
  size_t used() const { return used_.load(std::memory_order_relaxed); }
  bool has_room() const { return used() < limit_; }
  void charge(size_t bytes) { used_.fetch_add(bytes, std::memory_order_relaxed); }
  void release(size_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }
  // The unavailable error (503 in the server) for what could not be done
  // because the budget is spent.
  Status spent(const std::string& what) const {
    return Status::unavailable(
        "structured output: the server's memory for grammars (config key "
        "'structured.memory_mib', " +
        std::to_string(limit_ >> 20) + " MiB) is spent: " + what + "; try again later");
  }

 private:
  const size_t limit_;
  std::atomic<size_t> used_{0};
};

}  // namespace pagoda::structured
