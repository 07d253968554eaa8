#include "structured/grammar.h"

#include <algorithm>
#include <bit>
#include <cstdio>

namespace pagoda::structured {

namespace {

constexpr uint32_t kMaxCodepoint = 0x10FFFF;
constexpr uint32_t kSurrogateFirst = 0xD800;
constexpr uint32_t kSurrogateLast = 0xDFFF;

int utf8_length(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

// Splits [first, last] (same UTF-8 length, no surrogates) until each piece
// is a product of per-byte ranges.
void split_same_length(uint32_t first, uint32_t last, std::vector<Utf8Range>& out) {
  const int n = utf8_length(first);
  for (int i = 1; i < n; ++i) {
    const uint32_t mask = (uint32_t{1} << (6 * i)) - 1;
    if ((first & ~mask) != (last & ~mask)) {
      if ((first & mask) != 0) {
        split_same_length(first, first | mask, out);
        split_same_length((first | mask) + 1, last, out);
        return;
      }
      if ((last & mask) != mask) {
        split_same_length(first, (last & ~mask) - 1, out);
        split_same_length(last & ~mask, last, out);
        return;
      }
    }
  }
  std::string a;
  std::string b;
  append_utf8(a, first);
  append_utf8(b, last);
  Utf8Range range;
  for (int i = 0; i < n; ++i) range.bytes.emplace_back(static_cast<uint8_t>(a[i]), static_cast<uint8_t>(b[i]));
  out.push_back(std::move(range));
}

// Sorted, merged ranges within [0, 10FFFF]; complemented when `negated`.
std::vector<CodepointRange> normalize(std::span<const CodepointRange> ranges, bool negated) {
  std::vector<CodepointRange> sorted;
  for (const CodepointRange& r : ranges) {
    if (r.first > r.last || r.first > kMaxCodepoint) continue;
    sorted.push_back({r.first, std::min(r.last, kMaxCodepoint)});
  }
  std::sort(sorted.begin(), sorted.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<CodepointRange> merged;
  for (const CodepointRange& r : sorted) {
    if (!merged.empty() && r.first <= merged.back().last + 1) {
      merged.back().last = std::max(merged.back().last, r.last);
    } else {
      merged.push_back(r);
    }
  }
  if (!negated) return merged;
  std::vector<CodepointRange> complement;
  uint32_t next = 0;
  for (const CodepointRange& r : merged) {
    if (r.first > next) complement.push_back({next, r.first - 1});
    next = r.last + 1;
  }
  if (next <= kMaxCodepoint) complement.push_back({next, kMaxCodepoint});
  return complement;
}

std::string byte_set_text(const ByteSet& set) {
  std::string text = "[";
  for (int b = 0; b < 256; ++b) {
    if (!set.contains(static_cast<uint8_t>(b))) continue;
    int last = b;
    while (last + 1 < 256 && set.contains(static_cast<uint8_t>(last + 1))) ++last;
    char buf[24];
    if (last == b) {
      std::snprintf(buf, sizeof buf, "\\x%02X", b);
    } else {
      std::snprintf(buf, sizeof buf, "\\x%02X-\\x%02X", b, last);
    }
    text += buf;
    b = last;
  }
  return text + "]";
}

}  // namespace

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

void ByteSet::add_range(uint8_t first, uint8_t last) {
  for (int b = first; b <= last; ++b) add(static_cast<uint8_t>(b));
}

int ByteSet::count() const {
  int n = 0;
  for (uint64_t w : words_) n += std::popcount(w);
  return n;
}

void ByteSet::add_all(const ByteSet& other) {
  for (size_t i = 0; i < words_.size(); ++i) words_[i] |= other.words_[i];
}

void utf8_sequences(uint32_t first, uint32_t last, std::vector<Utf8Range>& out) {
  last = std::min(last, kMaxCodepoint);
  if (first > last) return;
  // Leave out the surrogates, then split at the UTF-8 length boundaries.
  if (first <= kSurrogateLast && last >= kSurrogateFirst) {
    if (first < kSurrogateFirst) utf8_sequences(first, kSurrogateFirst - 1, out);
    if (last > kSurrogateLast) utf8_sequences(kSurrogateLast + 1, last, out);
    return;
  }
  for (uint32_t boundary : {0x7Fu, 0x7FFu, 0xFFFFu}) {
    if (first <= boundary && last > boundary) {
      utf8_sequences(first, boundary, out);
      utf8_sequences(boundary + 1, last, out);
      return;
    }
  }
  split_same_length(first, last, out);
}

uint32_t Grammar::add_rule(std::string name) {
  rules_.push_back(Rule{std::move(name), {}});
  return static_cast<uint32_t>(rules_.size() - 1);
}

uint32_t Grammar::add_rule(std::string name, std::vector<Sequence> alternatives) {
  const uint32_t rule = add_rule(std::move(name));
  for (Sequence& s : alternatives) add_alternative(rule, std::move(s));
  return rule;
}

void Grammar::add_alternative(uint32_t rule, Sequence sequence) {
  element_count_ += sequence.size();
  rules_[rule].alternatives.push_back(std::move(sequence));
}

Element Grammar::bytes(const ByteSet& set) {
  auto [it, inserted] = byte_set_index_.try_emplace(set, static_cast<uint32_t>(byte_sets_.size()));
  if (inserted) byte_sets_.push_back(set);
  return {Element::Kind::kBytes, it->second};
}

Element Grammar::byte(uint8_t b) {
  ByteSet set;
  set.add(b);
  return bytes(set);
}

Element Grammar::byte_range(uint8_t first, uint8_t last) {
  ByteSet set;
  set.add_range(first, last);
  return bytes(set);
}

Sequence Grammar::literal(std::string_view text) {
  Sequence seq;
  seq.reserve(text.size());
  for (char c : text) seq.push_back(byte(static_cast<uint8_t>(c)));
  return seq;
}

Element Grammar::literal_element(std::string_view text) { return ref(add_rule("literal", {literal(text)})); }

Element Grammar::codepoints(std::span<const CodepointRange> ranges, bool negated) {
  const std::vector<CodepointRange> set = normalize(ranges, negated);
  std::vector<uint32_t> key;
  for (const CodepointRange& r : set) {
    key.push_back(r.first);
    key.push_back(r.last);
  }
  if (auto it = codepoint_rules_.find(key); it != codepoint_rules_.end()) return ref(it->second);

  std::vector<Utf8Range> sequences;
  for (const CodepointRange& r : set) utf8_sequences(r.first, r.last, sequences);
  ByteSet single_bytes;
  std::vector<Sequence> alternatives;
  for (const Utf8Range& seq : sequences) {
    if (seq.bytes.size() == 1) {
      single_bytes.add_range(seq.bytes[0].first, seq.bytes[0].second);
      continue;
    }
    Sequence alt;
    for (const auto& [lo, hi] : seq.bytes) alt.push_back(byte_range(lo, hi));
    alternatives.push_back(std::move(alt));
  }
  if (!single_bytes.empty()) alternatives.insert(alternatives.begin(), Sequence{bytes(single_bytes)});
  const uint32_t rule = add_rule("char", std::move(alternatives));
  codepoint_rules_.emplace(std::move(key), rule);
  return ref(rule);
}

Element Grammar::any_codepoint() {
  const CodepointRange all{0, kMaxCodepoint};
  return codepoints(std::span(&all, 1), false);
}

Element Grammar::choice(std::vector<Sequence> alternatives, std::string name) {
  return ref(add_rule(std::move(name), std::move(alternatives)));
}

Element Grammar::star(Sequence body) {
  const uint32_t rule = add_rule("star");
  body.push_back(ref(rule));
  add_alternative(rule, std::move(body));
  add_alternative(rule, {});
  return ref(rule);
}

Element Grammar::plus(Sequence body) {
  Sequence seq = body;
  seq.push_back(star(std::move(body)));
  return choice({std::move(seq)}, "plus");
}

Element Grammar::optional(Sequence body) { return choice({std::move(body), {}}, "optional"); }

Sequence Grammar::repeat(const Sequence& body, uint32_t min, uint32_t max) {
  Sequence unit = body;
  if (body.size() > 1) unit = {choice({body}, "repeated")};
  Sequence out;
  // Stop early past the size limit; validate() then refuses the grammar.
  for (uint32_t i = 0; i < min; ++i) {
    if (element_count_ + out.size() > kMaxElements) {
      too_large_ = true;
      return out;
    }
    out.insert(out.end(), unit.begin(), unit.end());
  }
  if (max == kUnbounded) {
    out.push_back(star(unit));
  } else if (max > min) {
    // tail_k matches 0..k units: tail_1 ::= unit | empty, tail_k ::= unit tail_(k-1) | empty.
    Element tail = optional(unit);
    for (uint32_t k = 2; k <= max - min; ++k) {
      if (element_count_ > kMaxElements || rules_.size() > kMaxRules) {
        too_large_ = true;
        return out;
      }
      Sequence seq = unit;
      seq.push_back(tail);
      tail = optional(std::move(seq));
    }
    out.push_back(tail);
  }
  return out;
}

Status Grammar::validate() const {
  if (root_ >= rules_.size()) return Status::invalid_argument("grammar: no root rule");
  if (too_large_ || element_count_ > kMaxElements || rules_.size() > kMaxRules) {
    return Status::invalid_argument("grammar: too large (over " + std::to_string(kMaxElements) + " elements or " +
                                    std::to_string(kMaxRules) +
                                    " rules; a repetition count or length bound is too high)");
  }
  for (const Rule& rule : rules_) {
    for (const Sequence& seq : rule.alternatives) {
      for (const Element& e : seq) {
        const size_t limit = e.kind == Element::Kind::kBytes ? byte_sets_.size() : rules_.size();
        if (e.index >= limit) return Status::invalid_argument("grammar: rule '" + rule.name + "' refers to nothing");
      }
    }
  }
  if (const std::vector<uint32_t> cycle = left_recursive_cycle(); !cycle.empty()) {
    return Status::invalid_argument("grammar: rule '" + rules_[cycle.front()].name +
                                    "' is left-recursive (it can reach itself before matching a byte)");
  }
  return Status::ok();
}

std::vector<uint32_t> Grammar::left_recursive_cycle() const {
  // Nullable rules, by fixpoint.
  std::vector<uint8_t> nullable(rules_.size(), 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rules_.size(); ++r) {
      if (nullable[r]) continue;
      for (const Sequence& seq : rules_[r].alternatives) {
        const bool all_nullable = std::all_of(seq.begin(), seq.end(), [&](const Element& e) {
          return e.kind == Element::Kind::kRule && nullable[e.index];
        });
        if (all_nullable) {
          nullable[r] = 1;
          changed = true;
          break;
        }
      }
    }
  }
  // Left recursion: a cycle among "rule A may start with rule B" edges
  // (iterative depth-first search; 0 new, 1 on the path, 2 done).
  std::vector<uint8_t> color(rules_.size(), 0);
  std::vector<std::vector<uint32_t>> starts(rules_.size());
  for (size_t r = 0; r < rules_.size(); ++r) {
    for (const Sequence& seq : rules_[r].alternatives) {
      for (const Element& e : seq) {
        if (e.kind != Element::Kind::kRule) break;
        starts[r].push_back(e.index);
        if (!nullable[e.index]) break;
      }
    }
  }
  std::vector<std::pair<uint32_t, size_t>> path;
  for (size_t r0 = 0; r0 < rules_.size(); ++r0) {
    if (color[r0] != 0) continue;
    path.emplace_back(static_cast<uint32_t>(r0), 0);
    color[r0] = 1;
    while (!path.empty()) {
      auto& [rule, next_edge] = path.back();
      if (next_edge == starts[rule].size()) {
        color[rule] = 2;
        path.pop_back();
        continue;
      }
      const uint32_t target = starts[rule][next_edge++];
      if (color[target] == 1) {
        size_t first = path.size() - 1;
        while (path[first].first != target) --first;
        std::vector<uint32_t> cycle;
        for (size_t k = first; k < path.size(); ++k) cycle.push_back(path[k].first);
        return cycle;
      }
      if (color[target] == 0) {
        color[target] = 1;
        path.emplace_back(target, 0);
      }
    }
  }
  return {};
}

std::string Grammar::to_string() const {
  std::string text;
  for (size_t r = 0; r < rules_.size(); ++r) {
    text += rules_[r].name + "_" + std::to_string(r) + (r == root_ ? " (root)" : "") + " ::=";
    for (size_t a = 0; a < rules_[r].alternatives.size(); ++a) {
      if (a > 0) text += " |";
      if (rules_[r].alternatives[a].empty()) text += " \"\"";
      for (const Element& e : rules_[r].alternatives[a]) {
        text += ' ';
        if (e.kind == Element::Kind::kRule) {
          text += rules_[e.index].name + "_" + std::to_string(e.index);
        } else {
          text += byte_set_text(byte_sets_[e.index]);
        }
      }
    }
    text += '\n';
  }
  return text;
}

}  // namespace pagoda::structured
