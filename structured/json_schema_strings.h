// String constraints that one regular expression cannot carry alone: several
// patterns (pattern + format, allOf of patterns) and minLength / maxLength
// together with a pattern. Each pattern becomes a byte automaton
// (compile_regex + GrammarAutomaton, explored eagerly); their product with a
// code-point counter is written out as grammar rules, exactly, with the
// matched characters escaped as JSON string content (canonically: raw UTF-8,
// short escapes, \u00xx for other control characters).
//
// Owns nothing: adds rules to the caller's Grammar. Stateless; calls on
// different grammars may run concurrently.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "structured/grammar.h"

namespace pagoda::structured {

struct StringPattern {
  std::string pattern;  // ECMAScript, as compile_regex takes it
  bool search = true;   // JSON Schema "pattern" semantics (unanchored)
};

// Product states beyond this make the intersection an error.
inline constexpr size_t kMaxStringProductStates = 50'000;

// An element matching the JSON string content (without quotes) of the
// strings that match every pattern and have min_length..max_length code
// points (max_length kUnbounded: no limit). Errors name the pattern.
Result<Element> string_intersection(Grammar& grammar, const std::vector<StringPattern>& patterns, uint32_t min_length,
                                    uint32_t max_length);

}  // namespace pagoda::structured
