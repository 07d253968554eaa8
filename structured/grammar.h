// Grammar: the form every structured-output source compiles to (JSON Schema,
// regular expressions, choice lists, GBNF): rules over UTF-8 bytes.
//
// A rule is a list of alternatives, an alternative a sequence of elements, an
// element either one byte out of a ByteSet or a reference to a rule. Code
// point classes, repetition and options become rules the builder adds
// (codepoints(), star(), repeat(), ...). Repetition is right-recursive
// (S ::= body S | empty) so a matcher's stack does not grow with the count.
//
// Owns its rules and byte sets. Not thread-safe while being built; once
// built it is immutable and may be read from any thread.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace pagoda::structured {

// A set of byte values (256 bits).
class ByteSet {
 public:
  void add(uint8_t b) { words_[b >> 6] |= uint64_t{1} << (b & 63); }
  void add_range(uint8_t first, uint8_t last);
  bool contains(uint8_t b) const { return (words_[b >> 6] >> (b & 63)) & 1; }
  bool empty() const { return (words_[0] | words_[1] | words_[2] | words_[3]) == 0; }
  int count() const;
  void add_all(const ByteSet& other);
  void intersect(const ByteSet& other) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] &= other.words_[i];
  }
  void subtract(const ByteSet& other) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] &= ~other.words_[i];
  }
  static ByteSet all() {
    ByteSet set;
    set.words_.fill(~uint64_t{0});
    return set;
  }
  bool is_disjoint_from(const ByteSet& other) const {
    return ((words_[0] & other.words_[0]) | (words_[1] & other.words_[1]) | (words_[2] & other.words_[2]) |
            (words_[3] & other.words_[3])) == 0;
  }
  bool is_subset_of(const ByteSet& other) const {
    return ((words_[0] & ~other.words_[0]) | (words_[1] & ~other.words_[1]) | (words_[2] & ~other.words_[2]) |
            (words_[3] & ~other.words_[3])) == 0;
  }
  // The largest byte of a non-empty set.
  uint8_t max() const {
    for (size_t i = words_.size(); i-- > 0;) {
      if (words_[i] != 0) return static_cast<uint8_t>(i * 64 + 63 - static_cast<size_t>(std::countl_zero(words_[i])));
    }
    return 0;
  }
  // Whether `f(byte)` holds for every byte of the set, asked in ascending
  // order and stopping at the first false.
  template <typename F>
  bool all_of(F f) const {
    for (size_t i = 0; i < words_.size(); ++i) {
      for (uint64_t w = words_[i]; w != 0; w &= w - 1) {
        if (!f(static_cast<uint8_t>(i * 64 + static_cast<size_t>(std::countr_zero(w))))) return false;
      }
    }
    return true;
  }
  bool operator==(const ByteSet&) const = default;
  auto operator<=>(const ByteSet&) const = default;

 private:
  std::array<uint64_t, 4> words_{};
};

struct Element {
  enum class Kind : uint8_t { kBytes, kRule };
  Kind kind = Kind::kBytes;
  uint32_t index = 0;  // into Grammar::byte_sets() (kBytes) or Grammar::rules() (kRule)
  bool operator==(const Element&) const = default;
  auto operator<=>(const Element&) const = default;
};

using Sequence = std::vector<Element>;

struct Rule {
  std::string name;                    // for messages and to_string(); need not be unique
  std::vector<Sequence> alternatives;  // none: the rule matches nothing
};

// An inclusive range of Unicode code points.
struct CodepointRange {
  uint32_t first = 0;
  uint32_t last = 0;
};

inline constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();

class Grammar {
 public:
  // Size limits: a grammar beyond them fails validate() (a schema that asks
  // for {"maxLength": 1000000} is refused, not expanded without end).
  static constexpr size_t kMaxElements = 2'000'000;
  static constexpr size_t kMaxRules = 500'000;

  // A new rule with no alternatives yet; add them with add_alternative().
  uint32_t add_rule(std::string name);
  uint32_t add_rule(std::string name, std::vector<Sequence> alternatives);
  void add_alternative(uint32_t rule, Sequence sequence);

  // One byte out of `set` (byte sets are interned: equal sets share an index).
  Element bytes(const ByteSet& set);
  Element byte(uint8_t b);
  Element byte_range(uint8_t first, uint8_t last);
  static Element ref(uint32_t rule) { return {Element::Kind::kRule, rule}; }

  // The bytes of `text`, one element each.
  Sequence literal(std::string_view text);
  // A rule matching exactly `text`, as an element.
  Element literal_element(std::string_view text);

  // One code point out of `ranges` (or, when `negated`, any Unicode scalar
  // value outside them), written as UTF-8. Surrogates (D800-DFFF) and values
  // above 10FFFF are never matched. Interned by content.
  Element codepoints(std::span<const CodepointRange> ranges, bool negated);
  Element any_codepoint();

  // A rule with the given alternatives, as an element.
  Element choice(std::vector<Sequence> alternatives, std::string name = "choice");
  Element star(Sequence body);      // zero or more
  Element plus(Sequence body);      // one or more
  Element optional(Sequence body);  // zero or one
  // `body` from `min` to `max` times (max = kUnbounded: no limit). Bounded
  // tails nest (body (body (...)?)?)?, so the size grows linearly with max.
  Sequence repeat(const Sequence& body, uint32_t min, uint32_t max);

  void set_root(uint32_t rule) { root_ = rule; }
  uint32_t root() const { return root_; }
  const std::vector<Rule>& rules() const { return rules_; }
  const std::vector<ByteSet>& byte_sets() const { return byte_sets_; }
  size_t element_count() const { return element_count_; }

  // Whether the finished grammar can run: a root, references in range, size
  // within the limits, and no left recursion (a rule that can reach itself
  // before consuming a byte). Errors name the rule.
  Status validate() const;
  // The rules of one left-recursive cycle (each may start with the next,
  // the last with the first), or empty when there is none. Expects element
  // indices in range (validate() checks them first).
  std::vector<uint32_t> left_recursive_cycle() const;

  // GBNF-like text of every rule, for tests and debugging.
  std::string to_string() const;

 private:
  std::vector<Rule> rules_;
  std::vector<ByteSet> byte_sets_;
  std::map<ByteSet, uint32_t> byte_set_index_;
  std::map<std::vector<uint32_t>, uint32_t> codepoint_rules_;  // ranges + negation -> rule
  uint32_t root_ = std::numeric_limits<uint32_t>::max();
  size_t element_count_ = 0;
  bool too_large_ = false;  // a repeat() stopped at the size limit
};

// Appends code point `cp` (at most 10FFFF) to `out` as UTF-8.
void append_utf8(std::string& out, uint32_t cp);

// Appends to `out` the UTF-8 byte sequences (each a list of byte ranges) that
// together match exactly the code points of [first, last] (no surrogates).
struct Utf8Range {
  std::vector<std::pair<uint8_t, uint8_t>> bytes;  // inclusive range per byte position
};
void utf8_sequences(uint32_t first, uint32_t last, std::vector<Utf8Range>& out);

}  // namespace pagoda::structured
