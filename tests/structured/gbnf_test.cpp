// Tests of parse_gbnf: each GBNF feature, the error messages, and llama.cpp's example grammars
// (read from ../shared/structured/gbnf/, beside the repository) on texts they must accept and reject.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "structured/gbnf_parser.h"
#include "structured/grammar_automaton.h"

using pagoda::StatusCode;
using pagoda::structured::Grammar;
using pagoda::structured::grammar_matches;
using pagoda::structured::parse_gbnf;

namespace {

Grammar parse_ok(const std::string& text, std::string_view root = "root") {
  auto grammar = parse_gbnf(text, root);
  INFO(text);
  INFO(grammar.status().to_string());
  REQUIRE(grammar.is_ok());
  return std::move(grammar).value();
}

// The error message of a grammar that must fail to parse.
std::string parse_error(const std::string& text) {
  auto grammar = parse_gbnf(text);
  INFO(text);
  REQUIRE_FALSE(grammar.is_ok());
  CHECK(grammar.status().code() == StatusCode::kInvalidArgument);
  return grammar.status().message();
}

void check_accepts(const Grammar& grammar, const std::vector<std::string>& texts) {
  for (const std::string& text : texts) {
    INFO("must accept: " << text);
    CHECK(grammar_matches(grammar, text));
  }
}

void check_rejects(const Grammar& grammar, const std::vector<std::string>& texts) {
  for (const std::string& text : texts) {
    INFO("must reject: " << text);
    CHECK_FALSE(grammar_matches(grammar, text));
  }
}

std::string read_example(const std::string& name) {
  const std::string path = "../shared/structured/gbnf/" + name;
  std::ifstream in(path, std::ios::binary);
  INFO("reading " << path << " (the tests run from the repository root)");
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Grammar example(const std::string& name) { return parse_ok(read_example(name)); }

}  // namespace

// ---------------------------------------------------------------- syntax

TEST_CASE("gbnf: literals, sequences and alternatives") {
  const Grammar g = parse_ok(R"(root ::= "ab" "c" | "d" | "")");
  check_accepts(g, {"abc", "d", ""});
  check_rejects(g, {"ab", "abcd", "c", "dd"});
}

TEST_CASE("gbnf: escapes in literals") {
  const Grammar g = parse_ok(R"(root ::= "\n\r\t\\\"\[\]\x41\u00e9\U0001F600")");
  check_accepts(g, {"\n\r\t\\\"[]A\xC3\xA9\xF0\x9F\x98\x80"});
  check_rejects(g, {"\n\r\t\\\"[]A\xC3\xA9", "\\n\\r"});
  // A \xHH escape is a code point, written as UTF-8 (like llama.cpp), not a raw byte.
  const Grammar latin = parse_ok(R"(root ::= "caf\xe9")");
  check_accepts(latin, {"caf\xC3\xA9"});
  check_rejects(latin, {"caf\xE9"});
  // Raw UTF-8 in a literal.
  check_accepts(parse_ok("root ::= \"\xE6\x97\xA5\xE6\x9C\xAC\""), {"\xE6\x97\xA5\xE6\x9C\xAC"});
}

TEST_CASE("gbnf: character classes, ranges and escapes in them") {
  const Grammar g = parse_ok(R"(root ::= [a-cx\x41-\x43\]\\-]+)");
  check_accepts(g, {"abc", "x", "ABC", "]", "\\", "-", "aB]\\x"});
  check_rejects(g, {"", "d", "D", "[", "a b"});
  // '-' first or last is itself.
  const Grammar dash = parse_ok(R"(root ::= [-+] [+-])");
  check_accepts(dash, {"-+", "+-", "--"});
  check_rejects(dash, {",+", "+,"});
  // '[' and '^' inside a class (not first) are themselves.
  check_accepts(parse_ok(R"(root ::= [a[^]+)"), {"a[^", "^^"});
}

TEST_CASE("gbnf: UTF-8 and negated classes match code points") {
  const Grammar not_lower = parse_ok("root ::= [^a-z]");
  check_accepts(not_lower, {"\xC3\xA9", "Z", "\xE6\x97\xA5", "\xF0\x9F\x98\x80", "\n"});
  check_rejects(not_lower, {"a", "z", "", "\xC3\xA9\xC3\xA9", "\xC3", "\xFF"});

  const Grammar greek = parse_ok("root ::= [\xCE\xB1-\xCF\x89]");  // [α-ω]
  check_accepts(greek, {"\xCE\xB2", "\xCF\x89"});
  check_rejects(greek, {"b", "\xCE\x91"});  // Α (capital alpha)

  // Surrogates are never matched, even when a range spans them.
  const Grammar around = parse_ok(R"(root ::= [\uD7FF-\uE000])");
  check_accepts(around, {"\xED\x9F\xBF", "\xEE\x80\x80"});
  check_rejects(around, {"\xED\xA0\x80", "\xED\xBF\xBF"});

  // [^] is any code point; [] none.
  check_accepts(parse_ok("root ::= [^]"), {"x", "\xE2\x82\xAC"});
  check_rejects(parse_ok("root ::= \"a\" | []"), {"", "b"});
}

TEST_CASE("gbnf: '.' is any one code point") {
  const Grammar g = parse_ok(R"(root ::= "a" . "b")");
  check_accepts(g, {"axb",
                    "a\xE6\x97\xA5"
                    "b",
                    "a\xF0\x9F\x98\x80"
                    "b",
                    "a\nb"});
  check_rejects(g, {"ab", "axxb",
                    "a\xFF"
                    "b",
                    "a\xE6\x97"
                    "b"});
}

TEST_CASE("gbnf: groups and the quantifiers * + ?") {
  const Grammar g = parse_ok(R"(root ::= ("ab" | "c")* "d"+ ("e" "f")?)");
  check_accepts(g, {"d", "abcabd", "cddd", "dd", "abdef", "cdef"});
  check_rejects(g, {"", "ab", "de", "abcd e", "dfe", "aabd"});
  // A quantifier after a literal repeats the whole literal.
  const Grammar lit = parse_ok(R"(root ::= "ab"*)");
  check_accepts(lit, {"", "ab", "abab"});
  check_rejects(lit, {"a", "abb", "aba"});
  // Empty groups and repetitions of nothing are nothing.
  check_accepts(parse_ok(R"(root ::= () ""* "x" ()+)"), {"x"});
  // Quantifiers may follow a rule reference or a class without a space, and stack.
  const Grammar stacked = parse_ok("root ::= digit+\"!\"?\ndigit ::= [0-9]");
  check_accepts(stacked, {"1", "123!"});
  check_rejects(stacked, {"!", "1!!"});
}

TEST_CASE("gbnf: repetition counts") {
  const Grammar exactly = parse_ok(R"(root ::= "x"{3})");
  check_accepts(exactly, {"xxx"});
  check_rejects(exactly, {"xx", "xxxx", ""});

  const Grammar at_least = parse_ok(R"(root ::= "ab"{2,})");
  check_accepts(at_least, {"abab", "ababab", "abababababab"});
  check_rejects(at_least, {"ab", "", "ababa"});

  const Grammar between = parse_ok(R"(root ::= [0-9]{2,4})");
  check_accepts(between, {"12", "123", "1234"});
  check_rejects(between, {"1", "12345", ""});

  const Grammar at_most = parse_ok(R"(root ::= "a"{,2} "b")");
  check_accepts(at_most, {"b", "ab", "aab"});
  check_rejects(at_most, {"aaab"});

  const Grammar spaced = parse_ok(R"(root ::= ("x" | "y"){ 1 , 2 } "z"{0})");
  check_accepts(spaced, {"x", "xy", "yy"});
  check_rejects(spaced, {"", "xyx", "xz"});
}

TEST_CASE("gbnf: comments, line breaks and rule layout") {
  const std::string text =
      "# a leading comment\n"
      "\n"
      "root ::= first |   # a comment after '|'\n"
      "    second-2\n"
      "first ::= (\n"
      "    \"x\"   # inside a group, a line break is a space\n"
      "    \"y\"\n"
      "  )\n"
      "second-2 ::=\n"
      "  \"z\"\n"
      "ws ::= | \" \"  # an empty first alternative\n"
      "unused ::= ws\n";
  const Grammar g = parse_ok(text);
  check_accepts(g, {"xy", "z"});
  check_rejects(g, {"x", "xyz", "", " z"});

  // Windows line endings.
  const Grammar crlf = parse_ok("root ::= a |\r\n  b\r\na ::= \"a\"\r\nb ::= \"b\"\r\n");
  check_accepts(crlf, {"a", "b"});

  // A rule without a trailing newline at the end of the input.
  check_accepts(parse_ok("root ::= \"end\""), {"end"});
  // A name directly followed by '(' (c.gbnf writes `factor(("*" | "/") factor)*`).
  check_accepts(parse_ok("root ::= x(\"+\" x)*\nx ::= [0-9]"), {"1+2+3"});
}

TEST_CASE("gbnf: references, recursion and the root rule") {
  const Grammar g = parse_ok(
      "root ::= list\n"
      "list ::= \"[\" (item (\",\" item)*)? \"]\"\n"
      "item ::= [0-9]+ | list\n");
  check_accepts(g, {"[]", "[1]", "[1,[2,[]],34]"});
  check_rejects(g, {"[", "[1,]", "[[1]", "1"});

  // Another root by name.
  const std::string two = "root ::= \"a\"\nother ::= \"b\"";
  check_accepts(parse_ok(two, "other"), {"b"});
  check_rejects(parse_ok(two, "other"), {"a"});
}

// ---------------------------------------------------------------- errors

TEST_CASE("gbnf: errors name the line and column") {
  CHECK(parse_error("root ::= item\nitem ::= \"a\" value\n") == "gbnf: line 2, column 14: undefined rule 'value'");
  // Columns count code points, not bytes.
  CHECK_THAT(parse_error("root ::= \"\xE6\x97\xA5\xE6\x9C\xAC\" foo"),
             Catch::Contains("line 1, column 15: undefined rule 'foo'"));

  CHECK_THAT(parse_error("root ::= \"abc"), Catch::Contains("line 1, column 10: unterminated string literal"));
  CHECK_THAT(parse_error("root ::= x\nx ::= \"a\\\""), Catch::Contains("line 2, column 7: unterminated string"));
  CHECK_THAT(parse_error("root ::= \"a\"\nb ::= [a-z\n"),
             Catch::Contains("line 2, column 7: unterminated character class"));
  CHECK_THAT(parse_error("root ::= [^"), Catch::Contains("line 1, column 10: unterminated character class"));

  CHECK_THAT(parse_error("root \"a\""), Catch::Contains("line 1, column 6: expected '::='"));
  CHECK_THAT(parse_error("root ::= \"a\"\nnext = \"b\""), Catch::Contains("line 2, column 6: expected '::='"));

  CHECK_THAT(parse_error("root ::= a\na ::= a \"x\"\n"),
             Catch::Contains("line 2, column 1: rule 'a' is left-recursive"));
  CHECK_THAT(parse_error("root ::= b \"x\"\nb ::= c | \"y\"\nc ::= \"\" root"),
             Catch::Contains("left-recursive") && Catch::Contains("line 1, column 1"));
  // A repetition of something that can match nothing reaches itself before a byte, too.
  CHECK_THAT(parse_error(R"(root ::= ("x"?)*)"), Catch::Contains("line 1, column 16: left recursion"));

  CHECK(parse_error("") == "gbnf: line 1, column 1: empty grammar: no rules (a grammar needs at least `root ::= ...`)");
  CHECK_THAT(parse_error("  # only a comment\n\n"), Catch::Contains("line 3, column 1: empty grammar"));

  CHECK_THAT(parse_error("a ::= \"x\""), Catch::Contains("no rule named 'root'"));
}

TEST_CASE("gbnf: more syntax errors") {
  CHECK_THAT(parse_error("root ::= \"a\"\nroot ::= \"b\""),
             Catch::Contains("line 2, column 1: rule 'root' defined twice (first at line 1, column 1)"));
  CHECK_THAT(parse_error("root ::= \"a\"\n  | \"b\""), Catch::Contains("line 2, column 3: a line starts with '|'"));
  CHECK_THAT(parse_error(R"(root ::= "\q")"), Catch::Contains("line 1, column 11: unknown escape '\\q'"));
  CHECK_THAT(parse_error(R"(root ::= "\x4")"), Catch::Contains("line 1, column 11: expected 2 hex digits"));
  CHECK_THAT(parse_error(R"(root ::= [\u12])"), Catch::Contains("expected 4 hex digits"));
  CHECK_THAT(parse_error("root ::= (\"a\" \"b\"\n"), Catch::Contains("line 1, column 10: '(' is never closed"));
  CHECK_THAT(parse_error("root ::= (\"a\"\nb ::= \"c\")"), Catch::Contains("line 2, column 3: unexpected '::='"));
  CHECK_THAT(parse_error("root ::= \"a\")"), Catch::Contains("line 1, column 13: unexpected ')'"));
  CHECK_THAT(parse_error("root ::= \"a\" b ::= \"c\""), Catch::Contains("line 1, column 16: unexpected '::='"));
  CHECK_THAT(parse_error("root ::= \"a\" @"), Catch::Contains("line 1, column 14: unexpected '@'"));
  CHECK_THAT(parse_error("root ::= [z-a]"), Catch::Contains("line 1, column 11: range z-a"));
  CHECK_THAT(parse_error("root ::= *\"a\""), Catch::Contains("line 1, column 10: '*' has nothing before it"));
  CHECK_THAT(parse_error("root ::= \"a\"{5,2}"), Catch::Contains("maximum is below the minimum"));
  CHECK_THAT(parse_error("root ::= \"a\"{}"), Catch::Contains("expected a count"));
  CHECK_THAT(parse_error("root ::= \"a\"{2"), Catch::Contains("expected a count, ',' or '}'"));
  CHECK_THAT(parse_error("root ::= \"a\"{99999999999}"),
             Catch::Contains("line 1, column 13: repetition count too large"));
  CHECK_THAT(parse_error("root ::= \"a\"{1500000} \"b\"{1500000}"),
             Catch::Contains("line 1, column 26: grammar too large"));
  CHECK_THAT(parse_error(R"(root ::= "\uD800")"), Catch::Contains("U+D800 is not a Unicode scalar value"));
  CHECK_THAT(parse_error("root ::= \"\xFF\""), Catch::Contains("invalid UTF-8"));
  CHECK_THAT(parse_error("root_1 ::= \"a\""), Catch::Contains("line 1, column 5: expected '::='"));
  // Deep nesting is refused, not a stack overflow.
  CHECK_THAT(parse_error("root ::= " + std::string(10000, '(') + "\"a\"" + std::string(10000, ')')),
             Catch::Contains("nested too deeply"));
}

// ---------------------------------------------------------------- llama.cpp's example grammars

TEST_CASE("gbnf examples: json.gbnf") {
  const Grammar g = example("json.gbnf");
  check_accepts(g, {
                       "{}",
                       R"({"a": 1})",
                       R"({"name": "pagoda", "tags": ["a", "b"], "n": -12.5e3, "ok": true, "none": null, )"
                       R"("nested": {"x": [1, 2, {"y": "\u00e9\n\"q\""}], "empty": []}})",
                       "{\n  \"a\": 1,\n  \"b\": [\n    true,\n    false\n  ]\n}",
                       "{\"k\": \"\xE6\x97\xA5\xE6\x9C\xAC \xC3\xA9\"} ",
                   });
  check_rejects(g, {
                       "",
                       R"({"a": 1,})",
                       R"({'a': 1})",
                       R"([1, 2])",  // the root is an object
                       R"({"a": 01})",
                       R"({"a": "x)",
                       R"({"a":  1})",  // ws is at most one space
                       "{\"a\": \"\x01\"}",
                       R"({"a": tru})",
                       R"({"a": "\x"})",
                   });
}

TEST_CASE("gbnf examples: json_arr.gbnf") {
  const Grammar g = example("json_arr.gbnf");
  check_accepts(g, {
                       "[\n]",
                       "[\n1,\n2]",
                       "[\n{\"a\": [1, 2.5, \"x\"]},\n \"s\",\nnull]",
                   });
  check_rejects(g, {
                       "[1, 2]",       // must open with "[\n"
                       "[\n1,\n2]\n",  // nothing after the closing bracket
                       "[\n1,2]",
                       "{\"a\": 1}",
                   });
}

TEST_CASE("gbnf examples: arithmetic.gbnf") {
  const Grammar g = example("arithmetic.gbnf");
  check_accepts(g, {
                       "1+2=3\n",
                       "(x1 +2) *y_2 = 10\nfoo/4=bar\n",
                       "((a))=b\n",
                       "a = ( b -c )\n",
                   });
  check_rejects(g, {
                       "1+2=3",  // each equation ends with a newline
                       "1 + = 3\n",
                       "X=1\n",
                       "=3\n",
                       "1+2\n",
                       "(1+2=3\n",
                   });
}

TEST_CASE("gbnf examples: c.gbnf") {
  const Grammar g = example("c.gbnf");
  check_accepts(g, {
                       "",
                       "int main(){return 0;}",
                       "int add(int a){int b = a*2+1;return b;}float f(){}",
                       "int main(){int i = 0;while(i<10){i = i+1;}for(i = 0; i<3; i = i+1){foo (i, 2);}"
                       "if(i==3){return i;}else{return -i;}// done\n/* multi * line */return f(1);}",
                   });
  check_rejects(g, {
                       "int main() {return 0;}",
                       "int main(){return 0}",
                       "main(){}",
                       "int main(){x = 1;",
                       "int main(){/* open comment}",
                       "double f(){}",
                   });
}

TEST_CASE("gbnf examples: chess.gbnf") {
  const Grammar g = example("chess.gbnf");
  check_accepts(g, {
                       "1. e4 e5\n2. Nf3 Nc6\n3. Bb5 a6\n",
                       "1. d4 d5\n2. c4 dxc4\n3. O-O-O Qxd8+\n10. e8=Q# Kxe8\n",
                       "1. Nbd2 R1a3\n2. O-O exd6\n",
                   });
  check_rejects(g, {
                       "1. e4 e5\n",  // at least two numbered lines
                       "1. e9 e5\n2. d4 d5\n",
                       "2. e4 e5\n3. d4 d5\n",
                       "1. e4 e5\n0. d4 d5\n",
                       "1. e4 e5\n2. d4 d5",
                       "1. e4  e5\n2. d4 d5\n",
                   });
}

TEST_CASE("gbnf examples: english.gbnf") {
  const Grammar g = example("english.gbnf");
  check_accepts(g, {
                       "Hello, world! (It's 42%.)",
                       "a [b] \\ c",
                       "x-y_z{1}|~\n\"quoted\"\tand@more",
                   });
  check_rejects(g, {
                       "",
                       "two  spaces",
                       "caf\xC3\xA9",
                       " leading",
                       "trailing ",
                   });
}

TEST_CASE("gbnf examples: japanese.gbnf") {
  const Grammar g = example("japanese.gbnf");
  check_accepts(g, {
                       // こんにちは、世界。
                       "\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF\xE3\x80\x81"
                       "\xE4\xB8\x96\xE7\x95\x8C\xE3\x80\x82",
                       // カタカナ 日本語
                       "\xE3\x82\xAB\xE3\x82\xBF\xE3\x82\xAB\xE3\x83\x8A \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
                   });
  check_rejects(g, {
                       "hello",
                       "\xE6\x97\xA5\xE6\x9C\xAC ",  // 日本 + trailing space
                       "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"
                       "abc",  // 日本語abc
                       "",
                   });
}

TEST_CASE("gbnf examples: list.gbnf") {
  const Grammar g = example("list.gbnf");
  check_accepts(g, {
                       "- one\n",
                       "- one\n- two items\n",
                       "- caf\xC3\xA9 \xE2\x98\x95\n",
                   });
  check_rejects(g, {
                       "",
                       "- one",
                       "-one\n",
                       "- \n",
                       "- a\xE2\x80\xA8"
                       "b\n",  // U+2028 line separator
                       "- a\xC2\x85"
                       "b\n",  // U+0085 next line
                       "- a\rb\n",
                   });
}

TEST_CASE("gbnf examples: every example grammar parses") {
  for (const char* name : {"json.gbnf", "json_arr.gbnf", "arithmetic.gbnf", "c.gbnf", "chess.gbnf", "english.gbnf",
                           "japanese.gbnf", "list.gbnf"}) {
    INFO(name);
    auto grammar = parse_gbnf(read_example(name));
    INFO(grammar.status().to_string());
    CHECK(grammar.is_ok());
  }
}

TEST_CASE("gbnf: damaged grammars fail cleanly with a position") {
  // Prefixes of the examples, and bytes replaced in turn by characters of the syntax:
  // each either parses or fails with a message (and, under the sanitizers, no memory error).
  const char replacements[] = {'"', ']', '(', '|', '\\', '\n', '{', '\xC3'};
  for (const char* name :
       {"json.gbnf", "arithmetic.gbnf", "c.gbnf", "chess.gbnf", "english.gbnf", "japanese.gbnf", "list.gbnf"}) {
    const std::string text = read_example(name);
    size_t failures = 0;
    for (size_t cut = 0; cut < text.size(); cut += 2) {
      auto grammar = parse_gbnf(text.substr(0, cut));
      if (!grammar.is_ok()) {
        ++failures;
        CHECK_THAT(grammar.status().message(), Catch::StartsWith("gbnf: "));
      }
    }
    for (size_t at = 0; at < text.size(); at += 7) {
      for (char c : replacements) {
        std::string damaged = text;
        damaged[at] = c;
        auto grammar = parse_gbnf(damaged);
        if (!grammar.is_ok()) CHECK_THAT(grammar.status().message(), Catch::StartsWith("gbnf: "));
      }
    }
    INFO(name);
    CHECK(failures > 0);
  }
}
