// Regular-expression compiler: turns an ECMAScript pattern (the dialect of
// JSON Schema's "pattern", with unicode semantics) into Grammar rules.
//
// Supported: literals (UTF-8; one code point is one character), `.`,
// classes `[...]` / `[^...]` with ranges and escapes, \d \D \w \W \s \S,
// character escapes (\n \r \t \f \v \0 \xHH \uHHHH, surrogate pairs
// \uD83D\uDE00, \u{H...}, \cX, escaped syntax characters), groups ( ),
// (?: ), (?<name> ), alternation, greedy and lazy quantifiers (* + ? {n}
// {n,} {n,m}), and anchors ^ / $ where they stand at the start / end of a
// top-level alternative (also through groups at the pattern's edge).
// Refused with an InvalidArgument naming the construct and its byte offset:
// lookaround, backreferences, \b \B, \p{...}, inline flags, anchors
// elsewhere.
//
// Owns nothing: compile_regex() adds rules to the caller's Grammar. Holds no
// state between calls; calls on different grammars may run concurrently.
#pragma once

#include <string_view>

#include "common/status.h"
#include "structured/grammar.h"

namespace pagoda::structured {

struct RegexOptions {
  // Unanchored search, as JSON Schema's "pattern" means: the pattern may match
  // anywhere in the string unless anchored; where a top-level alternative is
  // not anchored by ^ (resp. $), any code points may come before (resp.
  // after) it.
  bool search = false;
  // Emit every matched character as the content of a JSON string literal
  // (without the quotes): a code point >= 0x20 other than '"' and '\\' is its
  // raw UTF-8 ('/' may also be written \/); '"' is \" ; '\\' is \\ ; a
  // control character is its short escape (\b \f \n \r \t) when it has one,
  // otherwise \u00XX (hex digits in either case). So a JSON Schema string
  // with "pattern" becomes the grammar of its JSON text.
  bool json_string = false;
};

// Adds rules for `pattern` to `grammar` and returns an element that matches
// exactly the strings of the pattern (the whole text, unless options.search).
// Errors are InvalidArgument naming the construct and its byte offset
// ("regex: lookahead (?= at offset 4 is not supported").
Result<Element> compile_regex(Grammar& grammar, std::string_view pattern, const RegexOptions& options = {});

// A whole grammar for `pattern`: its root rule is the pattern; validated.
Result<Grammar> regex_grammar(std::string_view pattern, const RegexOptions& options = {});

}  // namespace pagoda::structured
