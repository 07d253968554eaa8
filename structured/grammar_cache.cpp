#include "structured/grammar_cache.h"

#include "common/json_nesting.h"
#include "structured/json_schema_compiler.h"

namespace pagoda::structured {

Result<std::shared_ptr<CompiledGrammar>> GrammarCache::get(const GrammarSpec& spec, bool* hit) {
  // The key dumps the schema recursively: refuse a hostile depth first.
  if (spec.kind == GrammarSpec::Kind::kJsonSchema && json_nesting_exceeds(spec.schema, kMaxSchemaJsonDepth)) {
    return Status::invalid_argument("json_schema: the schema is nested more than " +
                                    std::to_string(kMaxSchemaJsonDepth) + " JSON levels deep");
  }
  std::string key = spec.cache_key();
  {
    MutexLock lock(mutex_);
    if (auto it = index_.find(key); it != index_.end()) {
      entries_.splice(entries_.begin(), entries_, it->second);
      if (hit != nullptr) *hit = true;
      return it->second->second;
    }
  }
  if (hit != nullptr) *hit = false;
  if (budget_) {
    MutexLock lock(mutex_);
    // Grammars no request holds (the cache's is the only reference), oldest first.
    for (auto it = entries_.end(); it != entries_.begin() && budget_->used() > budget_->limit() / 2;) {
      --it;
      if (it->second.use_count() > 1) continue;
      index_.erase(it->first);
      it = entries_.erase(it);
    }
    if (!budget_->has_room()) {
      return Status::unavailable(
          "structured output: the server's memory for grammars (config key 'structured.memory_mib', " +
          std::to_string(budget_->limit() >> 20) +
          " MiB) is in use by the grammars of running requests; try again "
          "later");
    }
  }
  Result<Grammar> grammar = compile_grammar_spec(spec);
  if (!grammar) return grammar.status();
  auto compiled = std::make_shared<CompiledGrammar>(std::move(grammar).value(), trie_, budget_);
  if (compiled->start_overflowed()) {
    return Status::invalid_argument("grammar: too ambiguous to follow (its start alone needs more than " +
                                    std::to_string(GrammarAutomaton::kMaxNewFramesPerMask) + " parser frames)");
  }
  MutexLock lock(mutex_);
  if (auto it = index_.find(key); it != index_.end()) return it->second->second;
  entries_.emplace_front(key, compiled);
  index_.emplace(std::move(key), entries_.begin());
  while (entries_.size() > capacity_) {
    index_.erase(entries_.back().first);
    entries_.pop_back();
  }
  return compiled;
}

size_t GrammarCache::size() const {
  MutexLock lock(mutex_);
  return entries_.size();
}

}  // namespace pagoda::structured
