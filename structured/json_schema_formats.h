// JSON Schema `format` values as regular expressions: for each format a
// validator asserts (date-time, date, time, uuid, email, ipv4, ipv6,
// hostname, uri, uri-reference, iri, iri-reference, json-pointer, regex), an
// ECMAScript pattern (for compile_regex, whole-string match) whose strings
// all pass that format's check; usually a strict subset of what the RFC
// allows (no IP literals in URIs, ASCII digits, no leap seconds, ...).
//
// Owns nothing; the table is constant. Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace pagoda::structured {

struct FormatPattern {
  enum class Kind {
    kIgnored,      // not a format validators assert: an annotation, no constraint
    kPattern,      // `pattern` below (whole-string match)
    kUnsupported,  // asserted by validators, but no exact pattern here
  };
  Kind kind = Kind::kIgnored;
  std::string pattern;
  // The number of code points of every matching string when they all have
  // the same length (date: 10, uuid: 36), else 0.
  uint32_t fixed_length = 0;
};

FormatPattern format_pattern(std::string_view format);

}  // namespace pagoda::structured
