#include "structured/json_schema_strings.h"

#include <map>
#include <memory>
#include <utility>

#include "structured/grammar_automaton.h"
#include "structured/regex_compiler.h"

namespace pagoda::structured {
namespace {

struct Matcher {
  Grammar grammar;
  std::unique_ptr<GrammarAutomaton> automaton;
};

// A product state: each matcher's state, then the code points so far.
using ProductState = std::vector<int32_t>;

bool is_continuation(int byte) { return byte >= 0x80 && byte <= 0xBF; }

// The canonical JSON escape of an ASCII byte that needs one, or "".
std::string escape_of(int byte) {
  switch (byte) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\b':
      return "\\b";
    case '\f':
      return "\\f";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      break;
  }
  if (byte < 0x20) {
    static const char* kHex = "0123456789abcdef";
    return std::string("\\u00") + kHex[byte >> 4] + kHex[byte & 15];
  }
  return "";
}

}  // namespace

Result<Element> string_intersection(Grammar& grammar, const std::vector<StringPattern>& patterns, uint32_t min_length,
                                    uint32_t max_length) {
  std::vector<std::unique_ptr<Matcher>> matchers;
  std::vector<StringPattern> all = patterns;
  if (all.empty()) all.push_back({"", true});  // any string
  for (const StringPattern& pattern : all) {
    Result<Grammar> compiled = regex_grammar(pattern.pattern, RegexOptions{.search = pattern.search});
    if (!compiled.is_ok()) return compiled.status();
    auto matcher = std::make_unique<Matcher>();
    matcher->grammar = std::move(compiled).value();
    matcher->automaton = std::make_unique<GrammarAutomaton>(matcher->grammar);
    matchers.push_back(std::move(matcher));
  }
  const size_t n = matchers.size();
  // Counts past min_length are all alike when there is no maximum.
  auto clamp = [&](uint32_t count) { return max_length == kUnbounded ? std::min(count, min_length) : count; };

  std::map<ProductState, uint32_t> rule_of;
  std::vector<ProductState> pending;
  auto rule_for = [&](const ProductState& state) -> Result<uint32_t> {
    auto it = rule_of.find(state);
    if (it != rule_of.end()) return it->second;
    if (rule_of.size() >= kMaxStringProductStates) {
      return Status::invalid_argument("the string constraints need more than 50000 automaton states");
    }
    const uint32_t rule = grammar.add_rule("string-product");
    rule_of.emplace(state, rule);
    pending.push_back(state);
    return rule;
  };
  ProductState initial(n + 1);
  for (size_t i = 0; i < n; ++i) initial[i] = matchers[i]->automaton->initial();
  initial[n] = 0;
  Result<uint32_t> root = rule_for(initial);
  if (!root.is_ok()) return root.status();

  while (!pending.empty()) {
    const ProductState state = pending.back();
    pending.pop_back();
    const uint32_t rule = rule_of.at(state);
    const auto count = static_cast<uint32_t>(state[n]);
    bool accepting = count >= min_length;
    for (size_t i = 0; i < n && accepting; ++i) accepting = matchers[i]->automaton->accepting(state[i]);
    if (accepting) grammar.add_alternative(rule, {});
    std::map<ProductState, ByteSet> targets;
    for (int byte = 0; byte < 256; ++byte) {
      ProductState next(n + 1);
      bool alive = true;
      for (size_t i = 0; i < n && alive; ++i) {
        next[i] = matchers[i]->automaton->next(state[i], static_cast<uint8_t>(byte));
        alive = next[i] != GrammarAutomaton::kDead;
      }
      if (!alive) continue;
      uint32_t next_count = count;
      if (!is_continuation(byte)) {
        if (max_length != kUnbounded && count >= max_length) continue;
        next_count = clamp(count + 1);
      }
      next[n] = static_cast<int32_t>(next_count);
      std::string escape = escape_of(byte);
      Result<uint32_t> target = rule_for(next);
      if (!target.is_ok()) return target.status();
      if (!escape.empty()) {
        Sequence sequence = grammar.literal(escape);
        sequence.push_back(Grammar::ref(*target));
        grammar.add_alternative(rule, std::move(sequence));
      } else {
        targets[next].add(static_cast<uint8_t>(byte));
      }
    }
    for (auto& [next, bytes] : targets)
      grammar.add_alternative(rule, {grammar.bytes(bytes), Grammar::ref(rule_of.at(next))});
  }
  for (const auto& matcher : matchers) {
    if (matcher->automaton->overflowed()) {
      return Status::invalid_argument("the string constraints' automaton grew too large");
    }
  }
  return Grammar::ref(*root);
}

}  // namespace pagoda::structured
