#include "structured/json_schema_numbers.h"

#include <utility>
#include <vector>

namespace pagoda::structured {
namespace {

// A language of texts as a sequence, or nullopt for the empty language.
using Lang = std::optional<Sequence>;

std::string strip_leading_zeros(std::string digits) {
  size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return "0";
  return digits.substr(first);
}

// Digit-string arithmetic on non-negative integers without leading zeros.
std::string increment(std::string digits) {
  for (size_t i = digits.size(); i-- > 0;) {
    if (digits[i] != '9') {
      ++digits[i];
      return digits;
    }
    digits[i] = '0';
  }
  return "1" + digits;
}

std::string decrement(std::string digits) {  // digits > 0
  for (size_t i = digits.size(); i-- > 0;) {
    if (digits[i] != '0') {
      --digits[i];
      break;
    }
    digits[i] = '9';
  }
  return strip_leading_zeros(std::move(digits));
}

int compare_unsigned(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
}

// Signed +-1 on an integer Decimal.
Decimal plus_one(Decimal d) {
  if (!d.negative) {
    d.integer = increment(d.integer);
  } else {
    d.integer = decrement(d.integer);
    if (d.integer == "0") d.negative = false;
  }
  return d;
}

Decimal minus_one(Decimal d) {
  if (d.negative || d.is_zero()) {
    d.integer = d.is_zero() ? "1" : increment(d.integer);
    d.negative = true;
  } else {
    d.integer = decrement(d.integer);
  }
  return d;
}

Decimal floor_of(const Decimal& d) {
  if (d.is_integer()) return d;
  Decimal r{d.negative, d.integer, ""};
  return d.negative ? minus_one(r) : r;
}

Decimal ceil_of(const Decimal& d) {
  if (d.is_integer()) return d;
  Decimal r{d.negative, d.integer, ""};
  if (r.is_zero()) r.negative = false;
  return d.negative ? r : plus_one(r);
}

class RangeBuilder {
 public:
  RangeBuilder(Grammar& grammar, const NumberRangeOptions& options) : g_(grammar), options_(options) {}

  Lang alt(std::vector<Lang> options) {
    std::vector<Sequence> sequences;
    for (Lang& option : options) {
      if (option) sequences.push_back(std::move(*option));
    }
    if (sequences.empty()) return std::nullopt;
    if (sequences.size() == 1) return std::move(sequences[0]);
    return Sequence{g_.choice(std::move(sequences), "number-range")};
  }

  static Lang cat(Lang a, const Lang& b) {
    if (!a || !b) return std::nullopt;
    a->insert(a->end(), b->begin(), b->end());
    return a;
  }

  Sequence lit(std::string_view text) { return g_.literal(text); }
  Element digit() { return g_.byte_range('0', '9'); }
  Sequence digits(size_t n) { return Sequence(n, digit()); }
  Sequence range(char first, char last) { return {g_.byte_range(uint8_t(first), uint8_t(last))}; }
  Sequence any_digits() { return {g_.star({digit()})}; }

  // Fixed-length digit strings >= s / <= s / within [lo, hi] (same length).
  Lang ge_fixed(std::string_view s) {
    if (s.empty()) return Sequence{};
    if (s.find_first_not_of('0') == std::string_view::npos) return digits(s.size());
    std::vector<Lang> options{cat(lit(s.substr(0, 1)), ge_fixed(s.substr(1)))};
    if (s[0] < '9') options.push_back(cat(range(char(s[0] + 1), '9'), digits(s.size() - 1)));
    return alt(std::move(options));
  }
  Lang le_fixed(std::string_view s) {
    if (s.empty()) return Sequence{};
    if (s.find_first_not_of('9') == std::string_view::npos) return digits(s.size());
    std::vector<Lang> options{cat(lit(s.substr(0, 1)), le_fixed(s.substr(1)))};
    if (s[0] > '0') options.push_back(cat(range('0', char(s[0] - 1)), digits(s.size() - 1)));
    return alt(std::move(options));
  }
  Lang fixed_range(std::string_view lo, std::string_view hi) {
    size_t i = 0;
    while (i < lo.size() && lo[i] == hi[i]) ++i;
    if (i == lo.size()) return lit(lo);
    const size_t rest = lo.size() - i - 1;
    std::vector<Lang> options{cat(lit(lo.substr(i, 1)), ge_fixed(lo.substr(i + 1))),
                              cat(lit(hi.substr(i, 1)), le_fixed(hi.substr(i + 1)))};
    if (lo[i] + 1 <= hi[i] - 1) options.push_back(cat(range(char(lo[i] + 1), char(hi[i] - 1)), digits(rest)));
    return cat(lit(lo.substr(0, i)), alt(std::move(options)));
  }

  // Integer texts (0|[1-9][0-9]*) with a <= value <= b (b: nullopt = no limit).
  Lang uint_range(std::string a, const std::optional<std::string>& b) {
    if (b && compare_unsigned(a, *b) > 0) return std::nullopt;
    std::vector<Lang> options;
    if (a == "0") {
      options.push_back(lit("0"));
      if (b && *b == "0") return alt(std::move(options));
      a = "1";
    }
    const size_t last_length = b ? b->size() : a.size();
    for (size_t length = a.size(); length <= last_length; ++length) {
      std::string lo(length, '0');  // 10^(length-1), or a
      lo[0] = '1';
      if (length == a.size()) lo = a;
      std::string hi = b && length == b->size() ? *b : std::string(length, '9');
      options.push_back(fixed_range(lo, hi));
    }
    if (!b) {  // longer than a: any such number
      Sequence longer = range('1', '9');
      Sequence tail = digits(a.size());
      longer.insert(longer.end(), tail.begin(), tail.end());
      longer.push_back(g_.star({digit()}));
      options.push_back(std::move(longer));
    }
    return alt(std::move(options));
  }

  // Non-empty-or-empty digit strings f (a fraction 0.f) compared with 0.F.
  Lang digits_ge(std::string_view f, bool strict, bool nonempty) {
    if (f.empty()) {
      if (strict) return Sequence{g_.star({digit()}), g_.byte_range('1', '9'), g_.star({digit()})};
      return Sequence{nonempty ? g_.plus({digit()}) : g_.star({digit()})};
    }
    std::vector<Lang> options{cat(lit(f.substr(0, 1)), digits_ge(f.substr(1), strict, false))};
    if (f[0] < '9') options.push_back(cat(range(char(f[0] + 1), '9'), any_digits()));
    return alt(std::move(options));
  }
  Lang digits_le(std::string_view f, bool strict, bool nonempty) {
    if (f.empty()) {
      if (strict) return std::nullopt;
      return Sequence{nonempty ? g_.plus({g_.byte('0')}) : g_.star({g_.byte('0')})};
    }
    std::vector<Lang> options{cat(lit(f.substr(0, 1)), digits_le(f.substr(1), strict, false))};
    if (f[0] > '0') options.push_back(cat(range('0', char(f[0] - 1)), any_digits()));
    if (!nonempty) options.push_back(Sequence{});
    return alt(std::move(options));
  }
  Lang digits_between(std::string_view lo, bool lo_strict, std::string_view hi, bool hi_strict, bool nonempty) {
    if (lo.empty() && !lo_strict) return digits_le(hi, hi_strict, nonempty);
    if (hi.empty()) return std::nullopt;  // value <= 0 yet > 0 or >= 0.lo > 0
    const char l0 = lo.empty() ? '0' : lo[0];
    const std::string_view lo_rest = lo.empty() ? lo : lo.substr(1);
    const char h0 = hi[0];
    if (l0 > h0) return std::nullopt;
    if (l0 == h0) return cat(lit(hi.substr(0, 1)), digits_between(lo_rest, lo_strict, hi.substr(1), hi_strict, false));
    std::vector<Lang> options{cat(Sequence{g_.byte(uint8_t(l0))}, digits_ge(lo_rest, lo_strict, false)),
                              cat(lit(hi.substr(0, 1)), digits_le(hi.substr(1), hi_strict, false))};
    if (l0 + 1 <= h0 - 1) options.push_back(cat(range(char(l0 + 1), char(h0 - 1)), any_digits()));
    return alt(std::move(options));
  }

  // The fraction texts ("" or "." digits) whose value 0.f satisfies the
  // comparison; `zero_ok`: whether 0 does (the text "").
  Lang fraction(Lang nonempty_digits, bool zero_ok) {
    if (options_.integer) {
      std::vector<Lang> options;
      if (zero_ok) {
        options.push_back(Sequence{});
        if (options_.integer_zero_fraction) options.push_back(Sequence{g_.byte('.'), g_.plus({g_.byte('0')})});
      }
      return alt(std::move(options));
    }
    return alt({zero_ok ? Lang(Sequence{}) : std::nullopt, cat(lit("."), nonempty_digits)});
  }
  Lang fraction_any() { return fraction(Sequence{g_.plus({digit()})}, true); }
  Lang fraction_ge(const std::string& f, bool strict) {
    return fraction(digits_ge(f, strict, true), f.empty() && !strict);
  }
  Lang fraction_le(const std::string& f, bool strict) {
    return fraction(digits_le(f, strict, true), !f.empty() || !strict);
  }
  Lang fraction_between(const std::string& lo, bool lo_strict, const std::string& hi, bool hi_strict) {
    const bool zero_ok = lo.empty() && !lo_strict && (!hi.empty() || !hi_strict);
    return fraction(digits_between(lo, lo_strict, hi, hi_strict, true), zero_ok);
  }

  // Magnitudes (texts without sign) m with lower <= m <= upper (lower >= 0).
  Lang magnitude(const NumberBound& lower, const std::optional<NumberBound>& upper) {
    const Decimal& a = lower.value;
    if (!upper) {
      return alt({cat(lit(a.integer), fraction_ge(a.fraction, lower.exclusive)),
                  cat(uint_range(increment(a.integer), std::nullopt), fraction_any())});
    }
    const Decimal& b = upper->value;
    const int order = compare_unsigned(a.integer, b.integer);
    if (order > 0) return std::nullopt;
    if (order == 0) {
      return cat(lit(a.integer), fraction_between(a.fraction, lower.exclusive, b.fraction, upper->exclusive));
    }
    std::vector<Lang> options{cat(lit(a.integer), fraction_ge(a.fraction, lower.exclusive)),
                              cat(lit(b.integer), fraction_le(b.fraction, upper->exclusive))};
    const std::string next = increment(a.integer);
    if (compare_unsigned(next, b.integer) < 0) {
      options.push_back(cat(uint_range(next, decrement(b.integer)), fraction_any()));
    }
    return alt(std::move(options));
  }

  Grammar& g_;
  NumberRangeOptions options_;
};

Element any_number(Grammar& g, const NumberRangeOptions& options) {
  Element digit = g.byte_range('0', '9');
  Sequence integer_part{g.choice({g.literal("0"), {g.byte_range('1', '9'), g.star({digit})}}, "uint")};
  Sequence sequence{g.optional({g.byte('-')})};
  sequence.insert(sequence.end(), integer_part.begin(), integer_part.end());
  if (options.integer) {
    if (options.integer_zero_fraction) sequence.push_back(g.optional({g.byte('.'), g.plus({g.byte('0')})}));
    return g.choice({std::move(sequence)}, options.integer ? "integer" : "number");
  }
  sequence.push_back(g.optional({g.byte('.'), g.plus({digit})}));
  ByteSet e;
  e.add('e');
  e.add('E');
  ByteSet sign;
  sign.add('+');
  sign.add('-');
  sequence.push_back(g.optional({g.bytes(e), g.optional({g.bytes(sign)}), g.plus({digit})}));
  return g.choice({std::move(sequence)}, "number");
}

}  // namespace

std::string Decimal::to_string() const {
  std::string text = negative ? "-" + integer : integer;
  if (!fraction.empty()) text += "." + fraction;
  return text;
}

std::optional<Decimal> parse_decimal(std::string_view text) {
  size_t i = 0;
  Decimal d;
  if (i < text.size() && text[i] == '-') {
    d.negative = true;
    ++i;
  }
  std::string digits;
  long point = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') digits += text[i++];
  if (digits.empty()) return std::nullopt;
  point = static_cast<long>(digits.size());
  if (i < text.size() && text[i] == '.') {
    ++i;
    const size_t before = digits.size();
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') digits += text[i++];
    if (digits.size() == before) return std::nullopt;
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool negative_exponent = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative_exponent = text[i++] == '-';
    long exponent = 0;
    const size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      exponent = exponent * 10 + (text[i++] - '0');
      if (exponent > 10000) return std::nullopt;
    }
    if (i == start) return std::nullopt;
    point += negative_exponent ? -exponent : exponent;
  }
  if (i != text.size()) return std::nullopt;
  if (point < 0) {
    digits.insert(0, static_cast<size_t>(-point), '0');
    point = 0;
  }
  if (static_cast<size_t>(point) > digits.size()) digits.append(static_cast<size_t>(point) - digits.size(), '0');
  d.integer = strip_leading_zeros(digits.substr(0, static_cast<size_t>(point)));
  d.fraction = digits.substr(static_cast<size_t>(point));
  while (!d.fraction.empty() && d.fraction.back() == '0') d.fraction.pop_back();
  if (d.is_zero()) d.negative = false;
  return d;
}

int compare_decimals(const Decimal& a, const Decimal& b) {
  if (a.negative != b.negative) return a.negative ? -1 : 1;
  int magnitude = compare_unsigned(a.integer, b.integer);
  if (magnitude == 0) {
    const size_t n = std::max(a.fraction.size(), b.fraction.size());
    std::string fa = a.fraction + std::string(n - a.fraction.size(), '0');
    std::string fb = b.fraction + std::string(n - b.fraction.size(), '0');
    magnitude = fa < fb ? -1 : (fa == fb ? 0 : 1);
  }
  return a.negative ? -magnitude : magnitude;
}

std::optional<Element> number_range(Grammar& grammar, const std::optional<NumberBound>& lower_in,
                                    const std::optional<NumberBound>& upper_in, const NumberRangeOptions& options) {
  if (!lower_in && !upper_in) return any_number(grammar, options);
  std::optional<NumberBound> lower = lower_in;
  std::optional<NumberBound> upper = upper_in;
  if (options.integer) {  // integer bounds, inclusive
    if (lower) lower = NumberBound{lower->exclusive ? plus_one(floor_of(lower->value)) : ceil_of(lower->value), false};
    if (upper) upper = NumberBound{upper->exclusive ? minus_one(ceil_of(upper->value)) : floor_of(upper->value), false};
  }
  RangeBuilder builder(grammar, options);
  std::vector<Lang> parts;
  // Non-negative values.
  if (!upper || !upper->value.negative) {
    const NumberBound from = lower && !lower->value.negative ? *lower : NumberBound{Decimal{}, false};
    parts.push_back(builder.magnitude(from, upper));
  }
  // Negative values: "-" then a magnitude > 0 ("-0" is not produced).
  if (!lower || lower->value.negative) {
    NumberBound from{Decimal{}, true};
    if (upper && upper->value.negative)
      from = NumberBound{Decimal{false, upper->value.integer, upper->value.fraction}, upper->exclusive};
    std::optional<NumberBound> to;
    if (lower) to = NumberBound{Decimal{false, lower->value.integer, lower->value.fraction}, lower->exclusive};
    parts.push_back(RangeBuilder::cat(builder.lit("-"), builder.magnitude(from, to)));
  }
  Lang all = builder.alt(std::move(parts));
  if (!all) return std::nullopt;
  return grammar.choice({std::move(*all)}, options.integer ? "integer-range" : "number-range");
}

Element integer_multiple_of(Grammar& grammar, uint32_t divisor) {
  // remainder[r]: the rest of the digits after a prefix with value = r mod divisor.
  std::vector<uint32_t> remainder(divisor);
  for (uint32_t r = 0; r < divisor; ++r) remainder[r] = grammar.add_rule("multiple-of-" + std::to_string(divisor));
  for (uint32_t r = 0; r < divisor; ++r) {
    if (r == 0) grammar.add_alternative(remainder[r], {});
    for (uint32_t d = 0; d <= 9; ++d) {
      grammar.add_alternative(remainder[r],
                              {grammar.byte(uint8_t('0' + d)), Grammar::ref(remainder[(r * 10 + d) % divisor])});
    }
  }
  std::vector<Sequence> starts{grammar.literal("0")};
  for (uint32_t d = 1; d <= 9; ++d) {
    starts.push_back(
        {grammar.optional({grammar.byte('-')}), grammar.byte(uint8_t('0' + d)), Grammar::ref(remainder[d % divisor])});
  }
  return grammar.choice(std::move(starts), "multiple-of");
}

}  // namespace pagoda::structured
