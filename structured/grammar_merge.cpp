#include "structured/grammar_merge.h"

#include <unordered_map>

namespace pagoda::structured {

namespace {

constexpr uint32_t kNone = UINT32_MAX;

struct KeyHash {
  size_t operator()(const std::vector<uint32_t>& key) const {
    size_t h = key.size();
    for (uint32_t x : key) h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h;
  }
};

}  // namespace

Grammar merge_equal_rules(const Grammar& grammar) {
  const std::vector<Rule>& rules = grammar.rules();
  // canonical[r]: the first rule found equal to r (r itself when none).
  std::vector<uint32_t> canonical(rules.size(), kNone);
  std::vector<uint8_t> on_path(rules.size(), 0);
  std::unordered_map<std::vector<uint32_t>, uint32_t, KeyHash> by_content;
  // A rule's content: per alternative its length, then per element its
  // kind and index (a reference as its canonical rule once known; one to
  // the rule itself as "self", so two copies of a repetition are equal).
  enum : uint32_t { kByteSet, kReference, kSelf };
  std::vector<uint32_t> key;
  auto finish = [&](uint32_t r) {
    key.clear();
    for (const Sequence& seq : rules[r].alternatives) {
      key.push_back(static_cast<uint32_t>(seq.size()));
      for (const Element& e : seq) {
        if (e.kind == Element::Kind::kBytes) {
          key.insert(key.end(), {kByteSet, e.index});
        } else if (e.index == r) {
          key.insert(key.end(), {kSelf, 0});
        } else {
          key.insert(key.end(), {kReference, canonical[e.index] != kNone ? canonical[e.index] : e.index});
        }
      }
    }
    canonical[r] = by_content.try_emplace(key, r).first->second;
  };
  // Depth-first from the root, each rule finished after its callees.
  struct Visit {
    uint32_t rule;
    uint32_t alternative = 0;
    uint32_t position = 0;
  };
  std::vector<Visit> path{{grammar.root()}};
  on_path[grammar.root()] = 1;
  while (!path.empty()) {
    Visit& v = path.back();
    const std::vector<Sequence>& alts = rules[v.rule].alternatives;
    if (v.alternative == alts.size()) {
      on_path[v.rule] = 0;
      finish(v.rule);
      path.pop_back();
      continue;
    }
    if (v.position == alts[v.alternative].size()) {
      ++v.alternative;
      v.position = 0;
      continue;
    }
    const Element e = alts[v.alternative][v.position++];
    if (e.kind == Element::Kind::kRule && canonical[e.index] == kNone && !on_path[e.index]) {
      on_path[e.index] = 1;
      path.push_back({e.index});
    }
  }
  // The canonical rules reachable from the root, numbered in the order met.
  Grammar merged;
  std::vector<uint32_t> new_id(rules.size(), kNone);
  std::vector<Element> new_set(grammar.byte_sets().size(), Element{Element::Kind::kBytes, kNone});
  auto set = [&](uint32_t index) {
    if (new_set[index].index == kNone) new_set[index] = merged.bytes(grammar.byte_sets()[index]);
    return new_set[index];
  };
  std::vector<uint32_t> order;
  auto number = [&](uint32_t r) {
    const uint32_t c = canonical[r];
    if (new_id[c] == kNone) {
      new_id[c] = merged.add_rule(rules[c].name);
      order.push_back(c);
    }
    return new_id[c];
  };
  merged.set_root(number(grammar.root()));
  for (size_t i = 0; i < order.size(); ++i) {
    const uint32_t c = order[i];
    for (const Sequence& seq : rules[c].alternatives) {
      Sequence out;
      out.reserve(seq.size());
      for (const Element& e : seq) {
        out.push_back(e.kind == Element::Kind::kRule ? Grammar::ref(number(e.index)) : set(e.index));
      }
      merged.add_alternative(new_id[c], std::move(out));
    }
  }
  return merged;
}

}  // namespace pagoda::structured
