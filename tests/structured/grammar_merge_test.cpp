// merge_equal_rules: duplicate rules are made one (copies of an inline
// schema, copies of a repetition with their self-references), and the merged
// grammar accepts exactly what the original accepts: every prefix of random
// walks through the original automaton, mutated now and then, is alive in
// both or dead in both, and complete in both or in neither.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "structured/gbnf_parser.h"
#include "structured/grammar_automaton.h"
#include "structured/grammar_merge.h"
#include "structured/json_schema_compiler.h"
#include "structured/regex_compiler.h"

using namespace pagoda::structured;

namespace {

size_t rules_named(const Grammar& grammar, const std::string& name) {
  size_t n = 0;
  for (const Rule& rule : grammar.rules()) n += rule.name == name;
  return n;
}

// Random strings the original grammar accepts a prefix of, byte by byte,
// with a random byte put in now and then; each prefix compared.
void check_same_language(const Grammar& original, uint32_t seed) {
  const Grammar merged = merge_equal_rules(original);
  REQUIRE(merged.validate().is_ok());
  GrammarAutomaton a(original);
  GrammarAutomaton b(merged);
  std::mt19937 rng(seed);
  for (int walk = 0; walk < 200; ++walk) {
    GrammarAutomaton::StateId sa = a.initial();
    GrammarAutomaton::StateId sb = b.initial();
    std::string text;
    for (int step = 0; step < 80; ++step) {
      uint8_t byte = static_cast<uint8_t>(rng());
      if (rng() % 8 != 0) {
        // Mostly a byte the original takes, when one is found quickly.
        for (int tries = 0; tries < 64 && a.next(sa, byte) == GrammarAutomaton::kDead; ++tries) {
          byte = static_cast<uint8_t>(rng() % 128);
        }
      }
      sa = a.next(sa, byte);
      sb = b.next(sb, byte);
      text += static_cast<char>(byte);
      const bool alive = sa != GrammarAutomaton::kDead;
      if (alive != (sb != GrammarAutomaton::kDead)) FAIL("prefix '" << text << "' alive in one grammar only");
      if (!alive) break;
      if (a.accepting(sa) != b.accepting(sb)) FAIL("'" << text << "' complete in one grammar only");
    }
  }
}

}  // namespace

TEST_CASE("copies of an inline schema and of a repetition become one rule") {
  // Three equal objects, each with keys beyond its properties (a
  // repetition of key characters that refers to itself).
  const auto schema = nlohmann::ordered_json::parse(R"({
    "type": "object",
    "properties": {
      "a": {"type": "object", "properties": {"id": {"type": "integer"}, "label": {"type": "string"}}},
      "b": {"type": "object", "properties": {"id": {"type": "integer"}, "label": {"type": "string"}}},
      "c": {"type": "object", "properties": {"id": {"type": "integer"}, "label": {"type": "string"}}}
    },
    "additionalProperties": false
  })");
  auto original = compile_json_schema(schema);
  REQUIRE(original.is_ok());
  // The root's, a's, b's, c's and the any-value's (the other keys' values).
  CHECK(rules_named(*original, "object") == 5);
  const Grammar merged = merge_equal_rules(*original);
  CHECK(rules_named(merged, "object") == 3);  // a, b and c share one
  // One copy's key trie or less (equal trie nodes within it merge too).
  CHECK(rules_named(merged, "key-except") > 0);
  CHECK(rules_named(merged, "key-except") * 3 <= rules_named(*original, "key-except"));
  CHECK(merged.rules().size() * 3 < original->rules().size() * 2);
  check_same_language(*original, 1);
}

TEST_CASE("a merged grammar accepts exactly what the original accepts") {
  SECTION("json schema with shared definitions, counted strings and any-values") {
    const auto schema = nlohmann::ordered_json::parse(R"({
      "$defs": {"p": {"type": "object", "properties": {"x": {"type": "integer"}, "t": {"type": "string", "maxLength": 9}},
                      "required": ["x"]}},
      "type": "object",
      "properties": {"a": {"$ref": "#/$defs/p"}, "b": {"type": "array", "items": {"$ref": "#/$defs/p"}, "maxItems": 3},
                     "c": {"type": "string", "maxLength": 9}, "d": {}, "e": {"type": "array", "items": {}}},
      "required": ["a", "c"]
    })");
    auto grammar = compile_json_schema(schema);
    REQUIRE(grammar.is_ok());
    for (uint32_t seed = 1; seed <= 3; ++seed) check_same_language(*grammar, seed);
  }
  SECTION("any json value (mutual recursion)") {
    const Grammar grammar = json_object_grammar();
    for (uint32_t seed = 1; seed <= 3; ++seed) check_same_language(grammar, seed);
  }
  SECTION("gbnf with equal rules under different names") {
    auto grammar = parse_gbnf(R"gbnf(root ::= a " " b " " c
a ::= [0-9]+ ("." [0-9]+)?
b ::= [0-9]+ ("." [0-9]+)?
c ::= "(" root ")" | a)gbnf");
    REQUIRE(grammar.is_ok());
    for (uint32_t seed = 1; seed <= 3; ++seed) check_same_language(*grammar, seed);
  }
  SECTION("regex with counted repetitions") {
    auto grammar = regex_grammar("([a-c]{2,6}-){1,4}[a-c]{2,6}");
    REQUIRE(grammar.is_ok());
    for (uint32_t seed = 1; seed <= 3; ++seed) check_same_language(*grammar, seed);
  }
}
