// JSON Schema number ranges as grammar rules: the JSON number texts whose
// value lies between two decimal bounds (minimum / maximum /
// exclusiveMinimum / exclusiveMaximum), exactly, digit by digit, for
// integers and for decimals, and the non-negative integers divisible by k
// (multipleOf).
//
// Owns nothing: the functions add rules to the caller's Grammar. Stateless;
// calls on different grammars may run concurrently.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "structured/grammar.h"

namespace pagoda::structured {

// An exact decimal value: integer digits without leading zeros ("0" for
// zero), fraction digits without trailing zeros, zero never negative.
struct Decimal {
  bool negative = false;
  std::string integer = "0";
  std::string fraction;

  bool is_integer() const { return fraction.empty(); }
  bool is_zero() const { return integer == "0" && fraction.empty(); }
  std::string to_string() const;
};

// Parses a JSON number text (sign, fraction and exponent as JSON allows);
// nullopt when `text` is not one or its exponent is beyond +-10000.
std::optional<Decimal> parse_decimal(std::string_view text);
// <0, 0, >0 as a is below, equal to, above b.
int compare_decimals(const Decimal& a, const Decimal& b);

struct NumberBound {
  Decimal value;
  bool exclusive = false;
};

struct NumberRangeOptions {
  bool integer = false;  // integer texts only: -?(0|[1-9][0-9]*)
  // With `integer`: also accept an all-zero fraction ("3.0", "3.00"), as
  // JSON Schema counts 3.0 as an integer.
  bool integer_zero_fraction = false;
};

// An element matching the JSON number texts x with lower <= x <= upper
// (< / > when exclusive), or nullopt when no number qualifies. Without
// bounds: every JSON number (every integer). With a bound: texts without an
// exponent and without "-0" (a subset of the numbers in range: "1e2" and
// "-0.0" are refused although their values qualify).
std::optional<Element> number_range(Grammar& grammar, const std::optional<NumberBound>& lower,
                                    const std::optional<NumberBound>& upper, const NumberRangeOptions& options);

// An element matching the integer texts -?(0|[1-9][0-9]*) whose value is a
// multiple of `divisor` (1 <= divisor <= 10000), via a remainder automaton.
Element integer_multiple_of(Grammar& grammar, uint32_t divisor);

}  // namespace pagoda::structured
