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

// Walks `steps` random allowed tokens from the start; at every state checks
// the mask against the reference, token by token.
void check_masks(std::shared_ptr<CompiledGrammar> compiled, const Tokenizer& tokenizer, uint32_t seed, int steps) {
  const Grammar& grammar = compiled->grammar();
  GrammarAutomaton reference(grammar);
  std::mt19937 rng(seed);
  GrammarMatcher matcher(compiled);
  std::string prefix;
  TokenMask mask;
  const TokenTrie& trie = compiled->trie();
  for (int step = 0; step < steps; ++step) {
    REQUIRE(matcher.fill_mask(mask).is_ok());
    const GrammarAutomaton::StateId here = reference.advance(reference.initial(), prefix);
    REQUIRE(here != GrammarAutomaton::kDead);
    std::vector<int32_t> allowed;
    for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
      const std::string_view bytes = trie.token_bytes(id);
      bool expected = false;
      if (trie.is_eos(id)) {
        expected = reference.accepting(here);
      } else if (!bytes.empty()) {
        expected = reference.advance(here, bytes) != GrammarAutomaton::kDead;
      }
      if (mask_allows(mask, id) != expected) {
        FAIL_CHECK("step " << step << " prefix '" << prefix << "' token " << id << " '" << std::string(bytes)
                           << "' mask " << mask_allows(mask, id) << " reference " << expected);
        return;
      }
      if (expected && !trie.is_eos(id)) allowed.push_back(id);
    }
    if (allowed.empty()) break;
    // Prefer short tokens now and then, so walks also stop inside characters.
    const int32_t pick = allowed[rng() % allowed.size()];
    REQUIRE(matcher.accept(pick));
    prefix += trie.token_bytes(pick);
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
