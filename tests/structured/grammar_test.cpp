// The grammar form and its matcher: UTF-8 code point classes against a plain
// encoder, the repetition builders, left-recursion refusal, and the lazily
// determinized automaton against expected languages (ambiguous and nullable
// rules, deep right recursion in constant stack).
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "structured/grammar.h"
#include "structured/grammar_automaton.h"

using namespace pagoda::structured;

namespace {

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// A grammar whose root is `body` once.
Grammar single(Grammar g, Sequence body) {
  g.set_root(g.add_rule("root", {std::move(body)}));
  REQUIRE(g.validate().is_ok());
  return g;
}

}  // namespace

TEST_CASE("utf8_sequences cover exactly the code points of a range") {
  std::mt19937 rng(5);
  const std::vector<std::pair<uint32_t, uint32_t>> ranges = {{0, 0x10FFFF},   {0x41, 0x5A},       {0x7F, 0x80},
                                                             {0x7FF, 0x800},  {0xD000, 0xE000},   {0xFFFF, 0x10000},
                                                             {0x123, 0x4567}, {0x10000, 0x10FFFF}};
  for (auto [first, last] : ranges) {
    std::vector<Utf8Range> seqs;
    utf8_sequences(first, last, seqs);
    auto matches = [&](const std::string& s) {
      for (const Utf8Range& r : seqs) {
        if (r.bytes.size() != s.size()) continue;
        bool all = true;
        for (size_t i = 0; i < s.size(); ++i) {
          const auto b = static_cast<uint8_t>(s[i]);
          all = all && b >= r.bytes[i].first && b <= r.bytes[i].second;
        }
        if (all) return true;
      }
      return false;
    };
    std::vector<uint32_t> probes = {first, last,   first + 1, last - 1, 0x7F,   0x80,    0x7FF,
                                    0x800, 0xFFFF, 0x10000,   0xD7FF,   0xE000, 0x10FFFF};
    for (int i = 0; i < 2000; ++i) probes.push_back(rng() % 0x110000);
    for (uint32_t cp : probes) {
      if (cp > 0x10FFFF) continue;
      const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
      INFO("range " << first << "-" << last << " code point " << cp);
      CHECK(matches(utf8(cp)) == (!surrogate && cp >= first && cp <= last));
    }
  }
}

TEST_CASE("codepoints matches one code point of a class, as UTF-8 only") {
  Grammar g;
  const CodepointRange az{'a', 'z'};
  const Element not_az = g.codepoints(std::span(&az, 1), true);
  const Grammar grammar = single(std::move(g), {not_az});
  CHECK(grammar_matches(grammar, "A"));
  CHECK(grammar_matches(grammar, "\xC3\xA9"));          // é
  CHECK(grammar_matches(grammar, "\xF0\x9F\x98\x80"));  // 😀
  CHECK_FALSE(grammar_matches(grammar, "a"));
  CHECK_FALSE(grammar_matches(grammar, "AB"));
  CHECK_FALSE(grammar_matches(grammar, "\xC3"));          // truncated
  CHECK_FALSE(grammar_matches(grammar, "\xED\xA0\x80"));  // a surrogate
  CHECK_FALSE(grammar_matches(grammar, "\xC0\x80"));      // overlong
  CHECK_FALSE(grammar_matches(grammar, "\xFF"));
  CHECK_FALSE(grammar_matches(grammar, ""));
}

TEST_CASE("star, plus, optional and repeat give the counts asked") {
  for (auto [min, max] : std::vector<std::pair<uint32_t, uint32_t>>{
           {0, 0}, {0, 1}, {2, 2}, {1, 4}, {3, kUnbounded}, {0, kUnbounded}, {0, 7}}) {
    Grammar g;
    Sequence body = g.literal("ab");
    Sequence seq = g.repeat(body, min, max);
    seq.insert(seq.begin(), g.byte('<'));
    seq.push_back(g.byte('>'));
    const Grammar grammar = single(std::move(g), seq);
    for (uint32_t n = 0; n < 12; ++n) {
      std::string text = "<";
      for (uint32_t i = 0; i < n; ++i) text += "ab";
      INFO("min " << min << " max " << max << " n " << n);
      CHECK(grammar_matches(grammar, text + ">") == (n >= min && n <= max));
      CHECK_FALSE(grammar_matches(grammar, text + "a>"));
    }
  }
  Grammar g;
  Sequence seq = {g.star(g.literal("x")), g.plus(g.literal("y")), g.optional(g.literal("z"))};
  const Grammar grammar = single(std::move(g), seq);
  CHECK(grammar_matches(grammar, "y"));
  CHECK(grammar_matches(grammar, "xxxyyz"));
  CHECK_FALSE(grammar_matches(grammar, "xxz"));
  CHECK_FALSE(grammar_matches(grammar, "yzz"));
}

TEST_CASE("validate refuses left recursion, dangling roots and huge repetitions") {
  {
    Grammar g;
    const uint32_t a = g.add_rule("expr");
    g.add_alternative(a, {Grammar::ref(a), g.byte('+')});
    g.add_alternative(a, {g.byte('1')});
    g.set_root(a);
    const pagoda::Status status = g.validate();
    CHECK_FALSE(status.is_ok());
    CHECK_THAT(status.message(), Catch::Contains("expr") && Catch::Contains("left-recursive"));
  }
  {
    // Through a nullable prefix.
    Grammar g;
    const uint32_t a = g.add_rule("a");
    const Element maybe = g.optional(g.literal("x"));
    g.add_alternative(a, {maybe, Grammar::ref(a)});
    g.add_alternative(a, {g.byte('1')});
    g.set_root(a);
    CHECK_FALSE(g.validate().is_ok());
  }
  {
    // Right recursion is fine.
    Grammar g;
    const uint32_t a = g.add_rule("list");
    g.add_alternative(a, {g.byte('x'), Grammar::ref(a)});
    g.add_alternative(a, {});
    g.set_root(a);
    CHECK(g.validate().is_ok());
  }
  {
    Grammar g;
    CHECK_FALSE(g.validate().is_ok());  // no root
  }
  {
    Grammar g;
    Sequence seq = g.repeat(g.literal("ab"), 0, 50'000'000);
    g.set_root(g.add_rule("root", {seq}));
    const pagoda::Status status = g.validate();
    CHECK_FALSE(status.is_ok());
    CHECK_THAT(status.message(), Catch::Contains("too large"));
  }
}

TEST_CASE("the automaton handles ambiguity, nullable rules and the empty language") {
  Grammar g;
  // (a|ab)* b?  -- ambiguous parses of "ab"
  const Element a_or_ab = g.choice({g.literal("a"), g.literal("ab")});
  const Grammar grammar = single(std::move(g), {g.star({a_or_ab}), g.optional(g.literal("b"))});
  for (const char* yes : {"", "a", "ab", "abab", "aab", "aabb", "b", "abb"}) {
    INFO(yes);
    CHECK(grammar_matches(grammar, yes));
  }
  for (const char* no : {"bb", "abbb", "ba", "c"}) {
    INFO(no);
    CHECK_FALSE(grammar_matches(grammar, no));
  }
  Grammar empty;
  const uint32_t nothing = empty.add_rule("nothing");
  empty.set_root(empty.add_rule("root", {{Grammar::ref(nothing)}}));
  REQUIRE(empty.validate().is_ok());
  CHECK_FALSE(grammar_matches(empty, ""));
  CHECK_FALSE(grammar_matches(empty, "a"));
}

TEST_CASE("the automaton keeps states finite under right recursion and memoizes transitions") {
  Grammar g;
  const Element body = g.star({g.byte_range('a', 'z')});
  const Grammar grammar = single(std::move(g), {g.byte('"'), body, g.byte('"')});
  GrammarAutomaton automaton(grammar);
  GrammarAutomaton::StateId s = automaton.advance(automaton.initial(), "\"");
  const GrammarAutomaton::StateId inside = s;
  for (int i = 0; i < 10000; ++i) s = automaton.next(s, static_cast<uint8_t>('a' + i % 26));
  CHECK(s == inside);  // the same configuration after every letter
  CHECK(automaton.state_count() < 10);
  CHECK(automaton.frame_count() < 10);
  const GrammarAutomaton::StateId end = automaton.next(s, '"');
  CHECK(automaton.accepting(end));
  CHECK(automaton.next(end, '"') == GrammarAutomaton::kDead);
}

TEST_CASE("accepts_all_strings follows loops and counted repetitions") {
  // "<" then 2 to 6 letters a-c then ">".
  Grammar g;
  Sequence seq = g.repeat({g.byte_range('a', 'c')}, 2, 6);
  seq.insert(seq.begin(), g.byte('<'));
  seq.push_back(g.byte('>'));
  const Grammar grammar = single(std::move(g), seq);
  GrammarAutomaton automaton(grammar);
  const GrammarAutomaton::StateId open = automaton.next(automaton.initial(), '<');
  ByteSet letters;
  letters.add_range('a', 'c');
  CHECK(automaton.accepts_all_strings(open, letters, 6));  // each letter moves one count along
  CHECK_FALSE(automaton.accepts_all_strings(open, letters, 7));
  CHECK(automaton.accepts_all_strings(automaton.advance(open, "ab"), letters, 4));
  CHECK_FALSE(automaton.accepts_all_strings(automaton.advance(open, "ab"), letters, 5));
  ByteSet with_close = letters;
  with_close.add('>');
  // ">" leads elsewhere than the letters: no chain, though "a>" is accepted.
  CHECK_FALSE(automaton.accepts_all_strings(automaton.advance(open, "ab"), with_close, 1));
  CHECK_FALSE(automaton.accepts_all_strings(automaton.initial(), letters, 1));

  Grammar loop;
  const Sequence quoted = {loop.byte('"'), loop.star({loop.byte_range('a', 'z')}), loop.byte('"')};
  const Grammar star = single(std::move(loop), quoted);
  GrammarAutomaton looping(star);
  ByteSet az;
  az.add_range('a', 'z');
  CHECK(looping.accepts_all_strings(looping.next(looping.initial(), '"'), az, 200));  // a loop: any length
}

TEST_CASE("nested recursion: balanced brackets") {
  Grammar g;
  const uint32_t value = g.add_rule("value");
  g.add_alternative(value, {g.byte('['), g.star({Grammar::ref(value)}), g.byte(']')});
  g.add_alternative(value, {g.byte('x')});
  g.set_root(value);
  REQUIRE(g.validate().is_ok());
  CHECK(grammar_matches(g, "[[x][]x]"));
  CHECK(grammar_matches(g, std::string(300, '[') + std::string(300, ']')));
  CHECK_FALSE(grammar_matches(g, "[[x]"));
  CHECK_FALSE(grammar_matches(g, "[x]]"));
  CHECK(g.to_string().find("value") != std::string::npos);
}

TEST_CASE("a grammar whose closures grow exponentially overflows instead of exhausting memory") {
  // a_i ::= a_(i+1) "x" | a_(i+1) "y": 2^40 start stacks if nothing stopped it.
  Grammar g;
  const int n = 40;
  std::vector<uint32_t> rules;
  for (int i = 0; i <= n; ++i) rules.push_back(g.add_rule("a" + std::to_string(i)));
  for (int i = 0; i < n; ++i) {
    g.add_alternative(rules[static_cast<size_t>(i)], {Grammar::ref(rules[static_cast<size_t>(i) + 1]), g.byte('x')});
    g.add_alternative(rules[static_cast<size_t>(i)], {Grammar::ref(rules[static_cast<size_t>(i) + 1]), g.byte('y')});
  }
  g.add_alternative(rules[static_cast<size_t>(n)], {g.byte('z')});
  g.set_root(rules[0]);
  REQUIRE(g.validate().is_ok());
  GrammarAutomaton automaton(g);
  CHECK(automaton.overflowed());
  CHECK(automaton.frame_count() <= GrammarAutomaton::kMaxNewFramesPerMask + 64);
}
