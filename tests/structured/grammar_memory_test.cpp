// The server-wide memory budget of compiled grammars (GrammarMemoryBudget,
// config key structured.memory_mib): charged as automata and mask caches
// grow, refunded when a grammar is destroyed; a spent budget refuses new
// grammars, lets the cache drop grammars no request holds, and stops a
// held grammar from growing while its built states keep serving.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "structured/grammar_cache.h"
#include "structured/token_trie.h"
#include "tokenizer/tokenizer.h"

using namespace pagoda;
using namespace pagoda::structured;

namespace {

std::shared_ptr<const TokenTrie> smollm2_trie() {
  static const std::shared_ptr<const TokenTrie> trie = [] {
    auto tok = load_tokenizer("../shared/tokenizers/SmolLM2-135M-Instruct");
    REQUIRE(tok.is_ok());
    return TokenTrie::build(**tok);
  }();
  return trie;
}

GrammarSpec regex(const std::string& pattern) {
  GrammarSpec spec;
  spec.kind = GrammarSpec::Kind::kRegex;
  spec.text = pattern;
  return spec;
}

// Follows the first allowed non-EOS token `steps` times, filling each mask.
Status walk(GrammarMatcher& matcher, int steps, const TokenTrie& trie) {
  TokenMask mask;
  for (int step = 0; step < steps; ++step) {
    if (Status st = matcher.fill_mask(mask); !st) return st;
    int32_t pick = -1;
    for (int32_t id = 0; id < trie.vocab_size() && pick < 0; ++id) {
      if (mask_allows(mask, id) && !trie.is_eos(id)) pick = id;
    }
    if (pick < 0) break;
    REQUIRE(matcher.accept(pick));
  }
  return Status::ok();
}

}  // namespace

TEST_CASE("grammar memory is charged as a grammar grows and refunded when it goes") {
  auto budget = std::make_shared<GrammarMemoryBudget>(size_t{1} << 30);
  GrammarCache cache(smollm2_trie(), 8, budget);
  auto compiled = cache.get(regex("[a-z]{0,40}-[0-9]{3}"));
  REQUIRE(compiled.is_ok());
  const size_t at_start = budget->used();
  CHECK(at_start > 0);
  CHECK(at_start == (*compiled)->memory_bytes());
  GrammarMatcher matcher(*compiled);
  REQUIRE(walk(matcher, 12, *smollm2_trie()).is_ok());
  CHECK(budget->used() > at_start);  // new states and cached masks
  CHECK(budget->used() == (*compiled)->memory_bytes());
  // A second grammar adds its own share.
  auto other = cache.get(regex("(yes|no)"));
  REQUIRE(other.is_ok());
  CHECK(budget->used() == (*compiled)->memory_bytes() + (*other)->memory_bytes());
}

TEST_CASE("a spent grammar budget refuses new grammars and drops idle ones first") {
  auto budget = std::make_shared<GrammarMemoryBudget>(1);  // spent by any grammar
  {
    GrammarCache cache(smollm2_trie(), 8, budget);
    std::shared_ptr<CompiledGrammar> held;
    {
      auto got = cache.get(regex("[a-z]+"));
      REQUIRE(got.is_ok());
      held = *got;
    }
    CHECK(!budget->has_room());
    // A request holds it: nothing to drop, so a new grammar is refused (503 in the server).
    auto refused = cache.get(regex("[0-9]+"));
    REQUIRE(!refused.is_ok());
    CHECK(refused.status().code() == StatusCode::kUnavailable);
    CHECK(refused.status().message().find("structured.memory_mib") != std::string::npos);
    // The cached grammar is still served.
    bool hit = false;
    CHECK(cache.get(regex("[a-z]+"), &hit).is_ok());
    CHECK(hit);
    // Once no request holds it, a new grammar makes the cache drop it.
    held.reset();
    auto fresh = cache.get(regex("[0-9]+"));
    REQUIRE(fresh.is_ok());
    CHECK(cache.size() == 1);
    CHECK(budget->used() == (*fresh)->memory_bytes());
  }
  CHECK(budget->used() == 0);  // the cache and every grammar gone: all refunded
}

TEST_CASE("a held grammar may not grow while the budget is spent, but its built states keep serving") {
  // Limit: what the first grammar holds after its start, plus a little.
  auto probe_budget = std::make_shared<GrammarMemoryBudget>(size_t{1} << 30);
  GrammarCache probe(smollm2_trie(), 8, probe_budget);
  const GrammarSpec first = regex("[a-z]{0,200}");  // no terminator: the walk below goes 30 letters deep
  size_t start_bytes = 0;
  {
    auto g = probe.get(first);
    REQUIRE(g.is_ok());
    start_bytes = (*g)->memory_bytes();
  }
  auto budget = std::make_shared<GrammarMemoryBudget>(start_bytes + 1);
  GrammarCache cache(smollm2_trie(), 8, budget);
  auto compiled = cache.get(first);
  REQUIRE(compiled.is_ok());
  REQUIRE(budget->has_room());
  GrammarMatcher a(*compiled);
  TokenMask first_mask;
  REQUIRE(a.fill_mask(first_mask).is_ok());  // room at its start: builds and caches
  REQUIRE(!budget->has_room());
  // The start state's mask is cached: another request gets it unchanged.
  GrammarMatcher b(*compiled);
  TokenMask again;
  REQUIRE(b.fill_mask(again).is_ok());
  CHECK(again == first_mask);
  // A state not built yet needs new states: an error naming the key, not a wrong mask.
  const Status grown = walk(b, 30, *smollm2_trie());
  REQUIRE(!grown.is_ok());
  CHECK(grown.code() == StatusCode::kUnavailable);  // 503 with Retry-After in the server
  CHECK(grown.message().find("structured.memory_mib") != std::string::npos);
}

TEST_CASE("cache hits also drop idle grammars while the budget is over half spent") {
  // The limit: exactly what the two grammars hold after compiling.
  size_t both = 0;
  {
    auto probe_budget = std::make_shared<GrammarMemoryBudget>(size_t{1} << 30);
    GrammarCache probe(smollm2_trie(), 8, probe_budget);
    REQUIRE(probe.get(regex("[a-z]+")).is_ok());
    REQUIRE(probe.get(regex("[0-9]+")).is_ok());
    both = probe_budget->used();
  }
  auto budget = std::make_shared<GrammarMemoryBudget>(both);
  GrammarCache cache(smollm2_trie(), 8, budget);
  REQUIRE(cache.get(regex("[a-z]+")).is_ok());  // idle once this returns
  std::shared_ptr<CompiledGrammar> held;
  {
    auto got = cache.get(regex("[0-9]+"));
    REQUIRE(got.is_ok());
    held = *got;
  }
  REQUIRE(cache.size() == 2);
  REQUIRE(!budget->has_room());
  // Traffic reusing the held grammar only: its hits drop the idle one.
  bool hit = false;
  REQUIRE(cache.get(regex("[0-9]+"), &hit).is_ok());
  CHECK(hit);
  CHECK(cache.size() == 1);
  CHECK(budget->used() == held->memory_bytes());
  CHECK(budget->has_room());
}

TEST_CASE("GrammarCache::find looks up without compiling") {
  GrammarCache cache(smollm2_trie(), 8, nullptr);
  const GrammarSpec spec = regex("[a-z]{2,5}");
  CHECK(cache.find(spec) == nullptr);  // a miss compiles nothing
  CHECK(cache.size() == 0);
  auto compiled = cache.get(spec);
  REQUIRE(compiled.is_ok());
  CHECK(cache.find(spec) == compiled.value());
  CHECK(cache.find(regex("[a-z]{2,6}")) == nullptr);
  // A schema too deep to key is a miss here (get() refuses it).
  GrammarSpec deep;
  deep.kind = GrammarSpec::Kind::kJsonSchema;
  deep.schema = nlohmann::ordered_json::parse(std::string(5000, '[') + std::string(5000, ']'));
  CHECK(cache.find(deep) == nullptr);
  CHECK_FALSE(cache.get(deep).is_ok());
}
