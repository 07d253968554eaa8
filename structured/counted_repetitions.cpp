#include "structured/counted_repetitions.h"

namespace pagoda::structured {

namespace {

constexpr uint32_t kNone = UINT32_MAX;

// Whether `rule` may match the empty string. Past a depth limit the answer
// is true, the one that loses only an optimization. (In a validated grammar
// the search cannot meet a rule it is inside: that would be left recursion.)
bool may_be_empty(const Grammar& grammar, uint32_t rule, std::vector<uint8_t>& memo, int depth) {
  constexpr uint8_t kUnknown = 0, kNo = 1, kYes = 2;
  constexpr int kMaxDepth = 256;
  if (memo[rule] != kUnknown) return memo[rule] == kYes;
  if (depth > kMaxDepth) return true;
  bool empty = false;
  for (const Sequence& seq : grammar.rules()[rule].alternatives) {
    bool all_empty = true;
    for (const Element& e : seq) {
      if (e.kind == Element::Kind::kBytes || !may_be_empty(grammar, e.index, memo, depth + 1)) {
        all_empty = false;
        break;
      }
    }
    if (all_empty) {
      empty = true;
      break;
    }
  }
  memo[rule] = empty ? kYes : kNo;
  return empty;
}

}  // namespace

CountedRepetitions::CountedRepetitions(const Grammar& grammar) {
  const std::vector<Rule>& rules = grammar.rules();
  count_.assign(rules.size(), 0);
  shorter_.assign(rules.size(), kNone);
  // The shape: two alternatives, one empty (which one: `empty_at`), the
  // other [u] or [u, T'] with T' another rule.
  std::vector<uint8_t> empty_at(rules.size(), 0);  // 0: not the shape; 1 or 2: alternative 0 or 1 is empty
  auto unit = [&](uint32_t r) { return rules[r].alternatives[empty_at[r] == 1 ? 1 : 0][0]; };
  for (uint32_t r = 0; r < rules.size(); ++r) {
    const std::vector<Sequence>& alts = rules[r].alternatives;
    if (alts.size() != 2 || alts[0].empty() == alts[1].empty()) continue;
    const Sequence& body = alts[0].empty() ? alts[1] : alts[0];
    if (body.size() == 2) {
      if (body[1].kind != Element::Kind::kRule || body[1].index == r) continue;
      shorter_[r] = body[1].index;
    } else if (body.size() != 1) {
      continue;
    }
    empty_at[r] = alts[0].empty() ? 1 : 2;
  }
  // Counts, each chain followed down once from its first rule met.
  constexpr uint8_t kUnvisited = 0, kOnPath = 1, kDone = 2;
  std::vector<uint8_t> visit(rules.size(), kUnvisited);
  std::vector<uint8_t> empty_memo;
  std::vector<uint32_t> path;
  for (uint32_t first = 0; first < rules.size(); ++first) {
    if (empty_at[first] == 0 || visit[first] != kUnvisited) continue;
    path.clear();
    for (uint32_t at = first; empty_at[at] != 0 && visit[at] == kUnvisited; at = shorter_[at]) {
      visit[at] = kOnPath;
      path.push_back(at);
      if (shorter_[at] == kNone) break;
    }
    for (size_t i = path.size(); i-- > 0;) {
      const uint32_t r = path[i];
      const uint32_t next = shorter_[r];
      uint32_t count = 0;
      if (next == kNone) {
        const Element u = unit(r);
        if (u.kind == Element::Kind::kBytes) {
          count = 1;
        } else {
          if (empty_memo.empty()) empty_memo.assign(rules.size(), 0);
          count = may_be_empty(grammar, u.index, empty_memo, 0) ? 0 : 1;
        }
      } else if (visit[next] == kDone && count_[next] > 0 && empty_at[next] == empty_at[r] && unit(next) == unit(r)) {
        count = count_[next] + 1;
      }
      count_[r] = count;
      visit[r] = kDone;
      any_ = any_ || count > 0;
    }
  }
  if (!any_) {
    count_ = std::vector<uint32_t>();
    shorter_ = std::vector<uint32_t>();
  }
}

uint32_t CountedRepetitions::shorter_rule(uint32_t rule, uint32_t horizon) {
  if (!any_ || count_[rule] <= horizon) return rule;
  if (horizon != horizon_ || clamped_.empty()) {
    horizon_ = horizon;
    clamped_.assign(count_.size(), kNone);
  }
  if (clamped_[rule] != kNone) return clamped_[rule];
  // Down the chain to the rule of count `horizon`, then every rule passed
  // on the way is remembered to map to it.
  uint32_t at = rule;
  while (count_[at] > horizon && clamped_[at] == kNone) at = shorter_[at];
  const uint32_t target = count_[at] > horizon ? clamped_[at] : at;
  for (uint32_t r = rule; r != at; r = shorter_[r]) clamped_[r] = target;
  return target;
}

size_t CountedRepetitions::memory_bytes() const {
  return (count_.capacity() + shorter_.capacity() + clamped_.capacity()) * sizeof(uint32_t);
}

}  // namespace pagoda::structured
