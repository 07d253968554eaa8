// CountedRepetitions: the counted repetitions of a Grammar and how far each
// rule of them may count.
//
// Grammar::repeat() writes "u at most k times" as nested tails:
//   T_1 ::= u | empty,  T_k ::= u T_(k-1) | empty.
// A rule of that shape whose unit u never matches the empty string is found
// here with its count k. A position inside T_k with k above a horizon H
// accepts the same strings of fewer than H bytes as the same position inside
// T_H (each count takes a byte at least), so a token mask need not tell them
// apart: a string of at most 5000 characters has one mask until its last few
// (GrammarAutomaton::clamp_counts).
//
// Built once from a validated grammar and read-only afterwards, except for
// the memo of shorter_rule(): not thread-safe (GrammarAutomaton owns it,
// behind CompiledGrammar's mutex).
#pragma once

#include <cstdint>
#include <vector>

#include "structured/grammar.h"

namespace pagoda::structured {

class CountedRepetitions {
 public:
  explicit CountedRepetitions(const Grammar& grammar);

  bool empty() const { return !any_; }
  // How many more units rule `rule` may match (0: not a counted tail).
  uint32_t count(uint32_t rule) const { return count_[rule]; }
  // The rule of the same repetition with count `horizon` (>= 2) when
  // `rule`'s count is above it; otherwise `rule`. Same alternatives, same
  // positions: a frame keeps its alternative and position.
  uint32_t shorter_rule(uint32_t rule, uint32_t horizon);
  size_t memory_bytes() const;

 private:
  // Per rule: whether it can match the empty string.
  static std::vector<uint8_t> find_nullable(const Grammar& grammar);

  std::vector<uint32_t> count_;    // per rule; 0: not a counted tail
  std::vector<uint32_t> shorter_;  // per counted rule of count >= 2: the rule of count - 1
  std::vector<uint32_t> clamped_;  // memo of shorter_rule() for horizon_ (UINT32_MAX: not yet)
  uint32_t horizon_ = 0;
  bool any_ = false;
};

}  // namespace pagoda::structured
