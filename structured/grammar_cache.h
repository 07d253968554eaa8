// GrammarCache: compiled grammars by (spec, tokenizer), least recently used
// out first (and, under memory pressure, idle ones early), so a schema sent
// with every request compiles once and its automaton and token masks stay
// warm. Owns its entries (shared with the requests using them) and shares
// the GrammarMemoryBudget they charge. Thread-safe (one mutex; compiling
// happens outside it, so two threads may compile the same spec at once and
// the first to finish is kept).
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "structured/compiled_grammar.h"
#include "structured/grammar_memory_budget.h"
#include "structured/grammar_spec.h"
#include "structured/token_trie.h"

namespace pagoda::structured {

class GrammarCache {
 public:
  // `budget` (optional: null = unbounded) bounds the memory of every
  // grammar compiled here, cached or held by a request.
  GrammarCache(std::shared_ptr<const TokenTrie> trie, size_t capacity,
               std::shared_ptr<GrammarMemoryBudget> budget = nullptr)
      : trie_(std::move(trie)), capacity_(capacity), budget_(std::move(budget)) {}

  // The compiled grammar of `spec`; `hit` (optional) tells whether it was
  // cached. First, while the budget is more than half spent, drops the
  // least recently used grammars that no request holds (on hits too, so
  // traffic reusing one schema frees what idle ones hold). When a new
  // grammar is needed and the budget is still spent: an unavailable error
  // instead of compiling it (a spec that does not compile is still
  // invalid_argument).
  Result<std::shared_ptr<CompiledGrammar>> get(const GrammarSpec& spec, bool* hit = nullptr);
  // The cached grammar of `spec` without compiling: null on a miss (or for
  // a spec too deep to key, which get() refuses). Like get(), marks it
  // recently used and drops idle grammars while the budget is over half
  // spent. Cheap: for the I/O thread, which leaves misses to a compiler.
  std::shared_ptr<CompiledGrammar> find(const GrammarSpec& spec);
  size_t size() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<CompiledGrammar>>;
  // find() by key; what it drops is destroyed after the lock is released.
  std::shared_ptr<CompiledGrammar> lookup(const std::string& key) EXCLUDES(mutex_);
  // Moves idle grammars, oldest first, into `dropped` while the budget is
  // more than half spent (counting what they will refund).
  void drop_idle(std::vector<std::shared_ptr<CompiledGrammar>>& dropped) REQUIRES(mutex_);
  const std::shared_ptr<const TokenTrie> trie_;
  const size_t capacity_;
  const std::shared_ptr<GrammarMemoryBudget> budget_;
  mutable Mutex mutex_;
  std::list<Entry> entries_ GUARDED_BY(mutex_);  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_ GUARDED_BY(mutex_);
};

}  // namespace pagoda::structured
