#include "structured/grammar_cache.h"

#include <algorithm>
#include <vector>

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
  if (std::shared_ptr<CompiledGrammar> found = lookup(key)) {
    if (hit != nullptr) *hit = true;
    return found;
  }
  if (hit != nullptr) *hit = false;
  // Grammars leaving the cache, destroyed after the lock is released (one
  // may hold hundreds of MB): declared before the lock below.
  std::vector<std::shared_ptr<CompiledGrammar>> dropped;
  Result<Grammar> grammar = compile_grammar_spec(spec);
  if (!grammar) return grammar.status();
  if (budget_ && !budget_->has_room()) {
    return budget_->spent("a new grammar cannot be compiled while running requests' grammars hold it");
  }
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
    dropped.push_back(std::move(entries_.back().second));
    entries_.pop_back();
  }
  return compiled;
}

std::shared_ptr<CompiledGrammar> GrammarCache::find(const GrammarSpec& spec) {
  if (spec.kind == GrammarSpec::Kind::kJsonSchema && json_nesting_exceeds(spec.schema, kMaxSchemaJsonDepth)) {
    return nullptr;
  }
  return lookup(spec.cache_key());
}

std::shared_ptr<CompiledGrammar> GrammarCache::lookup(const std::string& key) {
  // Declared before the lock: the dropped grammars are destroyed after it
  // is released, and their refunds count in a caller's room check.
  std::vector<std::shared_ptr<CompiledGrammar>> dropped;
  MutexLock lock(mutex_);
  std::shared_ptr<CompiledGrammar> found;
  if (auto it = index_.find(key); it != index_.end()) {
    entries_.splice(entries_.begin(), entries_, it->second);
    found = it->second->second;  // held: never dropped below
  }
  drop_idle(dropped);
  return found;
}

void GrammarCache::drop_idle(std::vector<std::shared_ptr<CompiledGrammar>>& dropped) {
  if (!budget_) return;
  // What the grammars dropped so far will refund once destroyed.
  size_t freed = 0;
  auto over_half = [&] { return budget_->used() - std::min(freed, budget_->used()) > budget_->limit() / 2; };
  for (auto it = entries_.end(); it != entries_.begin() && over_half();) {
    --it;
    // Idle: the cache's is the only reference. (References are handed out
    // under this lock, so a count read as 1 cannot grow meanwhile.)
    if (it->second.use_count() > 1) continue;
    freed += it->second->memory_bytes();
    index_.erase(it->first);
    dropped.push_back(std::move(it->second));
    it = entries_.erase(it);
  }
}

size_t GrammarCache::size() const {
  MutexLock lock(mutex_);
  return entries_.size();
}

}  // namespace pagoda::structured
