// parse_gbnf: reads a grammar in llama.cpp's GBNF format (its grammars/README.md) into a Grammar.
//
// Owns nothing past a call: each call builds and returns its own Grammar. Stateless and
// thread-safe (calls may run on any threads at once).
//
// What is read, as llama.cpp's own parser reads it:
//   - rules `name ::= alternatives`, names of [a-zA-Z0-9-]; alternatives separated by `|`;
//   - elements: "literals", [classes] and [^negated classes] with ranges, `.` (any code point),
//     rule references, ( groups ), each optionally followed by * + ? {m} {m,} {m,n} (and, beyond
//     llama.cpp, {,n});
//   - escapes in literals and classes: \n \r \t \\ \" \[ \] \xHH \uHHHH \UHHHHHHHH (code points,
//     written as UTF-8; a class never matches a surrogate);
//   - `#` comments to the end of the line;
//   - a rule ends at the first newline that is neither inside a group nor right after `::=` or
//     `|`, so `a ::= "x" |` + newline + `"y"` is one rule and a line starting with `|` is an error.
// Stricter than llama.cpp: a rule defined twice is an error (llama.cpp silently keeps the last
// definition), as are a reversed range ([z-a]) and a literal naming a surrogate or a value past
// 10FFFF. Not read: llama.cpp's token references (<[id]>, <think>).
#pragma once

#include <string_view>

#include "common/status.h"
#include "structured/grammar.h"

namespace pagoda::structured {

// Parses GBNF `text` into a validated Grammar whose root is the rule named `root_rule`.
// Errors are InvalidArgument and name the line and column (1-based; columns count code points)
// and what is wrong, e.g. "gbnf: line 3, column 7: undefined rule 'value'"; left recursion and
// size limits come from Grammar::validate(), placed at the rule or repetition they concern.
Result<Grammar> parse_gbnf(std::string_view text, std::string_view root_rule = "root");

}  // namespace pagoda::structured
