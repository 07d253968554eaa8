// Token masks against a brute-force reference: on random reachable states of
// several grammars, the mask CompiledGrammar computes (trie walk, subtree
// skipping by loops and by chains of counted states, memoized byte classes,
// mask cache, local views shared by the places of one rule) must equal,
// token by token,
// what an independent automaton says about each token's bytes from the same
// prefix. Real vocabularies: SmolLM2 (byte-level BPE, 49k) and TinyLlama
// (SentencePiece with byte fallback, 32k), so partial UTF-8 tokens occur.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "structured/compiled_grammar.h"
#include "structured/gbnf_parser.h"
#include "structured/json_schema_compiler.h"
#include "structured/regex_compiler.h"
#include "structured/token_trie.h"

using namespace pagoda;
using namespace pagoda::structured;

namespace {

const char* kTokenizers[] = {"../shared/tokenizers/SmolLM2-135M-Instruct",
                             "../shared/tokenizers/TinyLlama-1.1B-Chat-v1.0"};

std::unique_ptr<Tokenizer> load(const char* path) {
  auto tok = load_tokenizer(path);
  REQUIRE(tok.is_ok());
  return std::move(tok).value();
}

// Checks `mask`, made at the state after `prefix`, against `reference`
// token by token; appends the allowed text tokens to `allowed`. False (a
// failure recorded) at the first difference.
bool mask_matches_reference(GrammarAutomaton& reference, const TokenTrie& trie, int32_t vocab_size,
                            const std::string& prefix, const TokenMask& mask, std::vector<int32_t>& allowed) {
  const GrammarAutomaton::StateId here = reference.advance(reference.initial(), prefix);
  REQUIRE(here != GrammarAutomaton::kDead);
  for (int32_t id = 0; id < vocab_size; ++id) {
    const std::string_view bytes = trie.token_bytes(id);
    bool expected = false;
    if (trie.is_eos(id)) {
      expected = reference.accepting(here);
    } else if (!bytes.empty()) {
      expected = reference.advance(here, bytes) != GrammarAutomaton::kDead;
    }
    if (mask_allows(mask, id) != expected) {
      FAIL_CHECK("prefix '" << prefix << "' token " << id << " '" << std::string(bytes) << "' mask "
                            << mask_allows(mask, id) << " reference " << expected);
      return false;
    }
    if (expected && !trie.is_eos(id)) allowed.push_back(id);
  }
  return true;
}

// Walks `steps` random allowed tokens from the start; at every state checks
// the mask against the reference, token by token.
void check_masks(std::shared_ptr<CompiledGrammar> compiled, const Tokenizer& tokenizer, uint32_t seed, int steps) {
  GrammarAutomaton reference(compiled->grammar());
  std::mt19937 rng(seed);
  GrammarMatcher matcher(compiled);
  std::string prefix;
  TokenMask mask;
  const TokenTrie& trie = compiled->trie();
  for (int step = 0; step < steps; ++step) {
    REQUIRE(matcher.fill_mask(mask).is_ok());
    std::vector<int32_t> allowed;
    if (!mask_matches_reference(reference, trie, tokenizer.vocab_size(), prefix, mask, allowed)) return;
    if (allowed.empty()) break;
    const int32_t pick = allowed[rng() % allowed.size()];
    REQUIRE(matcher.accept(pick));
    prefix += trie.token_bytes(pick);
  }
}

// Writes `text` token by token as a model would (encode_continuation),
// checking the mask at every state against the reference.
void check_text_masks(std::shared_ptr<CompiledGrammar> compiled, const Tokenizer& tokenizer, const std::string& text) {
  GrammarAutomaton reference(compiled->grammar());
  GrammarMatcher matcher(compiled);
  std::string prefix;
  TokenMask mask;
  const TokenTrie& trie = compiled->trie();
  for (int32_t id : encode_continuation(tokenizer, text)) {
    REQUIRE(matcher.fill_mask(mask).is_ok());
    std::vector<int32_t> allowed;
    if (!mask_matches_reference(reference, trie, tokenizer.vocab_size(), prefix, mask, allowed)) return;
    REQUIRE(matcher.accept(id));
    prefix += trie.token_bytes(id);
  }
}

std::shared_ptr<CompiledGrammar> compile(Result<Grammar> grammar, const std::shared_ptr<const TokenTrie>& trie) {
  REQUIRE(grammar.is_ok());
  return std::make_shared<CompiledGrammar>(std::move(grammar).value(), trie);
}

}  // namespace

TEST_CASE("token masks equal the brute-force reference on random states") {
  const auto schema = nlohmann::ordered_json::parse(R"({
    "type": "object",
    "properties": {
      "name": {"type": "string", "maxLength": 12},
      "age": {"type": "integer", "minimum": 0, "maximum": 150},
      "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-zé😀]{1,5}$"}, "maxItems": 3},
      "ratio": {"type": "number"},
      "kind": {"enum": ["alpha", "beta", null, 3]}
    },
    "required": ["name"]
  })");
  for (const char* path : kTokenizers) {
    auto tokenizer = load(path);
    auto trie = TokenTrie::build(*tokenizer);
    SECTION(std::string("json schema, ") + path) {
      for (uint32_t seed = 1; seed <= 6; ++seed)
        check_masks(compile(compile_json_schema(schema), trie), *tokenizer, seed, 40);
    }
    SECTION(std::string("long counted strings, ") + path) {
      // Deep enough for whole vocabulary subtrees to be proven by a chain of
      // counted states (GrammarAutomaton::accepts_all_strings), and short
      // enough for walks to reach the bounds.
      const auto counted = nlohmann::ordered_json::parse(R"({
        "type": "object",
        "properties": {"title": {"type": "string", "minLength": 3, "maxLength": 40},
                       "code": {"type": "string", "pattern": "^[a-z ]{0,60}$"}},
        "required": ["title", "code"]
      })");
      for (uint32_t seed = 1; seed <= 4; ++seed)
        check_masks(compile(compile_json_schema(counted), trie), *tokenizer, seed, 40);
    }
    SECTION(std::string("counted repetitions longer than any token, ") + path) {
      // Positions further from the bound than the longest token share one
      // mask (GrammarAutomaton::clamp_counts); the walks here cross from
      // those positions into the last counts, where the masks differ.
      const auto long_counts = nlohmann::ordered_json::parse(R"({
        "type": "object",
        "properties": {"text": {"type": "string", "maxLength": 160},
                       "codes": {"type": "array", "items": {"type": "string", "maxLength": 90}, "maxItems": 100},
                       "word": {"type": "string", "pattern": "^[a-z ]{0,120}$"}},
        "required": ["text", "codes", "word"]
      })");
      for (uint32_t seed = 1; seed <= 4; ++seed)
        check_masks(compile(compile_json_schema(long_counts), trie), *tokenizer, seed, 80);
    }
    SECTION(std::string("keys of an object with many optional properties, ") + path) {
      // Each key prefix is a state of its own, and a byte or two later most
      // tokens reach one state (the rest of an other key): the subtree walks
      // from there are recorded and reused (CompiledGrammar's subtree memo).
      const auto keys = nlohmann::ordered_json::parse(R"({
        "type": "object",
        "properties": {"number_of_items": {"type": "integer"}, "number_of_users": {"type": "integer"},
                       "name": {"type": "string"}, "names_seen": {"type": "integer"},
                       "total": {"type": "integer"}, "total_count": {"type": "integer"},
                       "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}},
        "additionalProperties": {"type": "integer"}
      })");
      // One compiled grammar for all the walks, as requests share it.
      auto compiled = compile(compile_json_schema(keys), trie);
      for (uint32_t seed = 1; seed <= 6; ++seed) check_masks(compiled, *tokenizer, seed, 60);
      for (const char* text : {R"({"number_of_items":1,"number_of_users":2,"name":"a","names_seen":3,"total":4})",
                               R"({"number_of_users":2,"names_seen":3,"total_count":5,"tags":["x"],"numbers":6})",
                               R"({"name":"b","total":1,"total_count":2,"number":3,"names":4,"totals":5})",
                               R"({"numb":1,"number_of":2,"number_of_item":3,"nam":4,"tot":5,"tags_":6})"}) {
        check_text_masks(compiled, *tokenizer, text);
      }
    }
    SECTION(std::string("one definition in many places, ") + path) {
      // The states inside each use of "point" (and of the strings and the
      // any-value) take the tokens that stay inside it from one local view
      // (GrammarAutomaton::local_view) and walk, per place, the tokens that
      // leave it: a closing quote or brace followed by what that place
      // expects next.
      const auto shared = nlohmann::ordered_json::parse(R"({
        "$defs": {"point": {"type": "object",
                            "properties": {"x": {"type": "integer"}, "label": {"type": "string", "maxLength": 6}},
                            "required": ["x"]}},
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/point"}, "b": {"$ref": "#/$defs/point"},
                       "c": {"type": "array", "items": {"$ref": "#/$defs/point"}, "maxItems": 2},
                       "d": {}, "e": {"type": "string"}},
        "required": ["a", "b", "c", "d", "e"]
      })");
      for (uint32_t seed = 1; seed <= 6; ++seed)
        check_masks(compile(compile_json_schema(shared), trie), *tokenizer, seed, 60);
    }
    SECTION(std::string("any json object, ") + path) {
      for (uint32_t seed = 1; seed <= 4; ++seed)
        check_masks(compile(json_object_grammar(), trie), *tokenizer, seed, 40);
    }
    SECTION(std::string("regex with multi-byte characters, ") + path) {
      for (uint32_t seed = 1; seed <= 4; ++seed) {
        check_masks(compile(regex_grammar("(é|😀|[a-c]){2,8} ?[0-9]+(\\.[0-9]+)?"), trie), *tokenizer, seed, 20);
      }
    }
    SECTION(std::string("gbnf arithmetic, ") + path) {
      check_masks(compile(parse_gbnf(R"gbnf(root ::= expr
expr ::= term (("+" | "-") term)*
term ::= factor (("*" | "/") factor)*
factor ::= [0-9]+ | "(" expr ")")gbnf"),
                          trie),
                  *tokenizer, 7, 40);
    }
  }
}

TEST_CASE("a long counted string walks the vocabulary once until near its bound") {
  const auto schema = nlohmann::ordered_json::parse(R"({"type": "string", "maxLength": 5000})");
  for (const char* path : kTokenizers) {
    auto tokenizer = load(path);
    auto trie = TokenTrie::build(*tokenizer);
    auto compiled = compile(compile_json_schema(schema), trie);
    GrammarMatcher matcher(compiled);
    int32_t quote = -1, letter = -1;
    for (int32_t id = 0; id < tokenizer->vocab_size(); ++id) {
      if (trie->token_bytes(id) == "\"") quote = id;
      if (trie->token_bytes(id) == "a") letter = id;
    }
    REQUIRE(quote >= 0);
    REQUIRE(letter >= 0);
    TokenMask mask;
    REQUIRE(matcher.fill_mask(mask).is_ok());
    REQUIRE(matcher.accept(quote));
    for (int i = 0; i < 1000; ++i) {
      REQUIRE(matcher.fill_mask(mask).is_ok());
      REQUIRE(mask_allows(mask, letter));
      REQUIRE(mask_allows(mask, quote));
      REQUIRE(matcher.accept(letter));
    }
    // The start, then one mask for the 1000 positions inside the string.
    CHECK(compiled->masks_walked() == 2);
  }
}

TEST_CASE("byte tokens of a partial UTF-8 character are allowed where the character may start") {
  auto tokenizer = load("../shared/tokenizers/TinyLlama-1.1B-Chat-v1.0");
  auto trie = TokenTrie::build(*tokenizer);
  auto compiled = compile(regex_grammar("[é]+"), trie);  // é = C3 A9
  GrammarMatcher matcher(compiled);
  TokenMask mask;
  REQUIRE(matcher.fill_mask(mask).is_ok());
  auto byte_token = [&](const char* piece) {
    for (int32_t id = 0; id < tokenizer->vocab_size(); ++id) {
      if (tokenizer->token_text(id) == piece) return id;
    }
    FAIL("no token " << piece);
    return -1;
  };
  const int32_t c3 = byte_token("<0xC3>");
  const int32_t a9 = byte_token("<0xA9>");
  CHECK(mask_allows(mask, c3));
  CHECK_FALSE(mask_allows(mask, a9));
  CHECK_FALSE(mask_allows(mask, tokenizer->eos_ids()[0]));  // one é at least
  REQUIRE(matcher.accept(c3));
  REQUIRE(matcher.fill_mask(mask).is_ok());
  CHECK(mask_allows(mask, a9));
  CHECK_FALSE(mask_allows(mask, c3));
  REQUIRE(matcher.accept(a9));
  REQUIRE(matcher.fill_mask(mask).is_ok());
  CHECK(mask_allows(mask, tokenizer->eos_ids()[0]));
}

TEST_CASE("the trie holds every text token once and no special token") {
  for (const char* path : kTokenizers) {
    auto tokenizer = load(path);
    auto trie = TokenTrie::build(*tokenizer);
    std::vector<int> seen(static_cast<size_t>(tokenizer->vocab_size()), 0);
    for (const auto& node : trie->nodes()) {
      for (uint32_t t = node.tokens_begin; t < node.tokens_end; ++t) ++seen[static_cast<size_t>(trie->token_ids()[t])];
    }
    for (int32_t id = 0; id < tokenizer->vocab_size(); ++id) {
      INFO(path << " token " << id);
      CHECK(seen[static_cast<size_t>(id)] == (trie->token_bytes(id).empty() ? 0 : 1));
    }
    CHECK(trie->token_bytes(tokenizer->eos_ids()[0]).empty());
  }
  auto smol = load(kTokenizers[0]);
  auto trie = TokenTrie::build(*smol);
  const std::vector<int32_t> im_start = smol->encode_with("<|im_start|>", {.add_bos = false, .parse_special = true});
  REQUIRE(im_start.size() == 1);
  CHECK(trie->token_bytes(im_start[0]).empty());
}

TEST_CASE("encode_continuation drops SentencePiece's dummy space") {
  auto tokenizer = load(kTokenizers[1]);
  const std::vector<int32_t> ids = encode_continuation(*tokenizer, "{\"a\":1}");
  std::string text;
  for (int32_t id : ids) text += tokenizer->decode_piece(id);
  CHECK(text == "{\"a\":1}");
}
