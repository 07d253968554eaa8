// GrammarSpec: what a request asks its output to follow (a JSON Schema, any
// JSON object, a regular expression, a list of choices or a GBNF grammar),
// and compile_grammar_spec(), which turns it into a Grammar through the
// matching compiler. Value type; the function is pure (thread-safe).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "structured/grammar.h"

namespace pagoda::structured {

struct GrammarSpec {
  enum class Kind { kJsonSchema, kJsonObject, kRegex, kChoice, kGbnf };
  Kind kind = Kind::kJsonObject;
  nlohmann::ordered_json schema;     // kJsonSchema (key order kept: it is the property order)
  bool strict = false;               // kJsonSchema: OpenAI's strict mode
  bool flexible_whitespace = false;  // JSON kinds: whitespace allowed between tokens
  std::string text;                  // kRegex: the pattern; kGbnf: the grammar
  std::vector<std::string> choices;  // kChoice

  // A key that is equal exactly when two specs compile to the same grammar.
  std::string cache_key() const;
  // "json_schema", "json_object", "regex", "choice", "grammar".
  const char* kind_name() const;
};

// The grammar of `spec` (validated). Errors are InvalidArgument and name
// what is not supported.
Result<Grammar> compile_grammar_spec(const GrammarSpec& spec);

}  // namespace pagoda::structured
