// The regular-expression compiler: for each pattern, texts its grammar must
// and must not match (whole-text, search and JSON-string modes), realistic
// JSON Schema patterns, and the error for each unsupported construct.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "structured/grammar.h"
#include "structured/grammar_automaton.h"
#include "structured/regex_compiler.h"

using namespace pagoda::structured;

namespace {

RegexOptions search_mode() {
  RegexOptions options;
  options.search = true;
  return options;
}

RegexOptions json_mode(bool search = false) {
  RegexOptions options;
  options.json_string = true;
  options.search = search;
  return options;
}

// Checks that `pattern` compiles and its grammar matches each of `yes` and
// none of `no`.
void check_pattern(const std::string& pattern, const std::vector<std::string>& yes, const std::vector<std::string>& no,
                   const RegexOptions& options = {}) {
  INFO("pattern: " << pattern << (options.search ? " (search)" : "") << (options.json_string ? " (json)" : ""));
  pagoda::Result<Grammar> grammar = regex_grammar(pattern, options);
  REQUIRE(grammar.status().message() == "");
  for (const std::string& text : yes) {
    INFO("must match: " << text);
    CHECK(grammar_matches(*grammar, text));
  }
  for (const std::string& text : no) {
    INFO("must not match: " << text);
    CHECK_FALSE(grammar_matches(*grammar, text));
  }
}

// The error message for `pattern` ("" when it compiles).
std::string error_of(const std::string& pattern, const RegexOptions& options = {}) {
  pagoda::Result<Grammar> grammar = regex_grammar(pattern, options);
  if (grammar) return "";
  CHECK(grammar.status().code() == pagoda::StatusCode::kInvalidArgument);
  return grammar.status().message();
}

}  // namespace

TEST_CASE("regex: literals and concatenation") {
  check_pattern("abc", {"abc"}, {"", "ab", "abcd", "xabc", "ABC"});
  check_pattern("", {""}, {"a"});
  check_pattern("héllo 😀", {"héllo 😀"}, {"hello 😀", "héllo"});
  check_pattern("a]b}c", {"a]b}c"}, {"abc"});  // lone ] and } are literals
  check_pattern("a{b", {"a{b"}, {"ab"});       // so is a { that starts no quantifier
  check_pattern("x{1,a}", {"x{1,a}"}, {"x"});
  check_pattern("x{,3}", {"x{,3}"}, {"xxx"});
}

TEST_CASE("regex: dot") {
  check_pattern("a.c",
                {"abc", "a c", "a\tc", "aéc", "a😀c",
                 "a\x01"
                 "c"},
                {"ac", "a\nc", "a\rc", "abbc"});
  check_pattern(".", {"x"}, {"\xE2\x80\xA8", "\xE2\x80\xA9", "\xC3", "\xFF", ""});  // U+2028, U+2029, bad bytes
}

TEST_CASE("regex: classes") {
  check_pattern("[abc]", {"a", "b", "c"}, {"d", "", "ab"});
  check_pattern("[a-z0-9_]+", {"abc_09", "z"}, {"", "A", "a-b"});
  check_pattern("[-a]", {"-", "a"}, {"b"});
  check_pattern("[a-]", {"-", "a"}, {"b"});
  check_pattern("[\\w-.]+", {"a-b.c", "x"}, {"a b", "@"});  // \w-. : the '-' is a literal
  check_pattern("[\\d\\s]", {"1", " ", "\t"}, {"a"});
  check_pattern("[\\]\\[\\\\\\-]", {"]", "[", "\\", "-"}, {"a"});
  check_pattern("[.*+?]", {".", "*", "+", "?"}, {"a"});
  check_pattern("[\\b]", {"\b"}, {"b"});  // backspace inside a class
  check_pattern("[α-ω]", {"α", "λ", "ω"}, {"a", "Ω"});
  check_pattern("[😀-😂]", {"😀", "😁", "😂"}, {"😃"});
  check_pattern("[\\u0041-\\u0043]", {"A", "B", "C"}, {"D"});
  check_pattern("[]", {}, {"", "a"});  // matches nothing
  check_pattern("a[]|b", {"b"}, {"a"});
  check_pattern("[^]", {"a", "\n", "😀"}, {"", "ab"});
}

TEST_CASE("regex: negated classes and multi-byte UTF-8") {
  check_pattern("[^a]", {"é", "😀", "b", "\n", "\xE4\xB8\xAD"}, {"a", "", "\xC3", "\xFF", "\xED\xA0\x80", "\xC0\x80"});
  check_pattern("[^a-z]+", {"ABC", "日本語", "123"}, {"abc", "Abc"});
  check_pattern("[^\\d]", {"a"}, {"5"});
  check_pattern("[^\\s]", {"a"}, {" ", "\xE3\x80\x80"});  // U+3000 ideographic space
}

TEST_CASE("regex: class escapes") {
  check_pattern("\\d", {"0", "9"}, {"a", "٣"});  // ASCII digits only
  check_pattern("\\D", {"a", "٣"}, {"0"});
  check_pattern("\\w", {"a", "Z", "0", "_"}, {"-", "é"});
  check_pattern("\\W", {"-", "é"}, {"a", "_"});
  check_pattern("\\s", {" ", "\t", "\n", "\r", "\v", "\f", "\xC2\xA0", "\xEF\xBB\xBF", "\xE2\x80\x80", "\xE2\x80\xA8"},
                {"a", "\xE2\x80\x8B"});  // U+200B is not a space
  check_pattern("\\S", {"a", "\xE2\x80\x8B"}, {" ", "\xC2\xA0"});
}

TEST_CASE("regex: character escapes") {
  check_pattern("\\n\\r\\t\\f\\v\\0", {std::string("\n\r\t\f\v") + '\0'}, {"nrtfv0"});
  check_pattern("\\x41\\u0042\\u{43}\\u{1F600}", {"ABC😀"}, {"x41"});
  check_pattern("\\uD83D\\uDE00", {"😀"}, {"\xED\xA0\xBD\xED\xB8\x80"});  // a surrogate pair is one code point
  check_pattern("\\uD800", {}, {"\xED\xA0\x80", ""});                    // a lone surrogate matches nothing
  check_pattern("\\cJ\\ca", {"\n\x01"}, {"cJca"});
  check_pattern("\\/\\-\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^\\$\\\\", {"/-.*+?()[]{}|^$\\"}, {""});
  check_pattern("a\\@b", {"a@b"}, {"ab"});  // escaped punctuation stands for itself
}

TEST_CASE("regex: quantifiers") {
  check_pattern("ab*c", {"ac", "abc", "abbbc"}, {"abd", "bc"});
  check_pattern("ab+c", {"abc", "abbbc"}, {"ac"});
  check_pattern("ab?c", {"ac", "abc"}, {"abbc"});
  check_pattern("a{3}", {"aaa"}, {"aa", "aaaa"});
  check_pattern("a{2,}", {"aa", "aaaaaaa"}, {"a", ""});
  check_pattern("a{2,4}", {"aa", "aaa", "aaaa"}, {"a", "aaaaa"});
  check_pattern("a{0}b", {"b"}, {"ab"});
  check_pattern("a{0,0}", {""}, {"a"});
  check_pattern("(ab){2,3}", {"abab", "ababab"}, {"ab", "abababab", "aabb"});
  check_pattern("a*?b+?c??d{1,2}?", {"bd", "aabbcdd"}, {"abcddd"});  // lazy forms: the same language
  check_pattern("😀{2}", {"😀😀"}, {"😀", "\xF0\x9F\x98\x80\x80"});
  check_pattern("[é]{2,3}", {"éé", "ééé"}, {"é"});
}

TEST_CASE("regex: repetition of patterns that match the empty string") {
  check_pattern("(a|)*", {"", "a", "aaa"}, {"b"});
  check_pattern("(a?b?)*c", {"c", "abc", "bac", "aabbc"}, {"cc"});
  check_pattern("()*x", {"x"}, {"xx"});
  check_pattern("(a*)+", {"", "aaaa"}, {"b"});
  check_pattern("(a?){3,5}", {"", "a", "aaaaa"}, {"aaaaaa"});
  check_pattern("(a*b*){2,}", {"", "ab", "abab", "ba"}, {"c"});
  check_pattern("([]|)*", {""}, {"a"});
}

TEST_CASE("regex: groups and alternation") {
  check_pattern("a|b|cd", {"a", "b", "cd"}, {"c", "ab", ""});
  check_pattern("(a|b)c", {"ac", "bc"}, {"c", "abc"});
  check_pattern("x(?:ab|cd)+y", {"xaby", "xabcdaby"}, {"xy", "xacy"});
  check_pattern("(?<year>\\d{4})-(?<month>\\d{2})", {"2024-05"}, {"2024-5"});
  check_pattern("((a|b)(c|(d|e)f))+", {"ac", "bdf", "acbef"}, {"ad", "a"});
  check_pattern("a||b", {"a", "b", ""}, {"ab"});
  check_pattern("(|x)y", {"y", "xy"}, {"x"});
}

TEST_CASE("regex: anchors in whole-text mode") {
  check_pattern("^abc$", {"abc"}, {"xabc", "abcx"});
  check_pattern("^$", {""}, {"a"});
  check_pattern("^a|b$", {"a", "b"}, {"ab"});
  check_pattern("(^a|b)c", {"ac", "bc"}, {"c"});
  check_pattern("^(a|b)$", {"a", "b"}, {"ab"});
}

TEST_CASE("regex: search mode") {
  check_pattern("abc", {"abc", "xxabcyy", "abcabc", "x\nabc\n"}, {"ab", "axbc", ""}, search_mode());
  check_pattern("^abc", {"abc", "abcyy"}, {"xabc", "\nabc"}, search_mode());
  check_pattern("abc$", {"abc", "xxabc"}, {"abcx", "abc\n"}, search_mode());
  check_pattern("^abc$", {"abc"}, {"xabc", "abcx"}, search_mode());
  check_pattern("^$", {""}, {"a"}, search_mode());
  check_pattern("", {"", "anything", "😀"}, {"\xFF"}, search_mode());
  check_pattern("^a|b$", {"a", "ax", "b", "xb"}, {"xa", "bx", "x"}, search_mode());
  check_pattern("(^a|b)c", {"ac", "acx", "xbcx", "bc"}, {"xac", "c"}, search_mode());
  check_pattern("^(a|b$)", {"a", "axx", "b"}, {"bx", "xb"}, search_mode());
  check_pattern("^\\d+", {"12", "12abc"}, {"abc12", ""}, search_mode());
  check_pattern("[^a]", {"é", "aé", "xa"}, {"aaa", ""}, search_mode());
}

TEST_CASE("regex: JSON string mode") {
  // The grammar matches the JSON text of the string's content.
  check_pattern("^a\"b$", {"a\\\"b"}, {"a\"b"}, json_mode());
  check_pattern("\\n", {"\\n"}, {"\n", "n"}, json_mode());
  check_pattern("a\\\\b", {"a\\\\b"}, {"a\\b"}, json_mode());
  check_pattern("a/b", {"a/b", "a\\/b"}, {"a\\b"}, json_mode());
  check_pattern("[\\x00-\\x1f]", {"\\u0000", "\\u001f", "\\u001F", "\\u000B", "\\n", "\\t", "\\b", "\\f", "\\r"},
                {std::string(1, '\0'), "\x1f", "\\u000a", "\\u0020", "\\u0008"}, json_mode());
  check_pattern(".", {"a", "é", "\\\"", "\\\\", "\\/", "\\t", "\\u0001"}, {"\\n", "\\r", "\"", "\\", "\t"},
                json_mode());
  check_pattern("[^\"]+", {"abc", "a\\\\b", "\\n"}, {"a\\\"b", "a\"b"}, json_mode());
  check_pattern("\\d+", {"123"}, {"12a"}, json_mode());
  check_pattern("x", {"x", "ax\\\"", "\\\"x\\n"}, {"a\"x", "y"}, json_mode(/*search=*/true));
  check_pattern("^\\s*$", {"", " \\t\\n"}, {" \t"}, json_mode());
}

TEST_CASE("regex: realistic JSON Schema patterns") {
  check_pattern("^\\d{4}-\\d{2}-\\d{2}$", {"2024-01-31"}, {"2024-1-31", "20240131", "2024-01-31x", "abcd-ef-gh"});
  check_pattern("^[A-Z]{2,3}$", {"US", "USA"}, {"U", "USAA", "us"});
  check_pattern("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", {"a.b@example.com", "ü@bücher.de"},
                {"a@b", "a b@c.d", "a@@b.c", "@b.c"});
  check_pattern("^[\\w-\\.]+@([\\w-]+\\.)+[\\w-]{2,4}$", {"john.doe@mail.example.org"}, {"john@doe", "a@b.c"});
  const std::string semver =
      "^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)"
      "(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\\.(?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
      "(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$";
  check_pattern(semver, {"1.0.0", "10.20.30", "1.0.0-alpha.1", "1.0.0-rc.1+build.5", "0.0.4"},
                {"1.0", "01.0.0", "1.0.0-", "1.0.0+", "v1.0.0"});
  check_pattern("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                {"123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000"},
                {"123e4567-e89b-12d3-a456-42661417400", "123e4567e89b12d3a456426614174000"});
  check_pattern("^\\+?[1-9]\\d{1,14}$", {"+14155552671", "4155552671"}, {"+0123", "+1", "+1415555267123456"});
  check_pattern("^\\(?\\d{3}\\)?[-. ]?\\d{3}[-. ]?\\d{4}$", {"(415) 555-2671", "415.555.2671", "4155552671"},
                {"415-555-267", "(415 555 26711"});
  check_pattern("^(\\([0-9]{3}\\))?[0-9]{3}-[0-9]{4}$", {"(888)555-1212", "555-1212"}, {"(888)555-1212x"});
  check_pattern("^https?://[^\\s/$.?#].[^\\s]*$", {"https://example.com/a?b=c", "http://x.y"},
                {"ftp://x", "http:// x"});
  // The same date pattern as a JSON Schema string: search mode, JSON text.
  check_pattern("^\\d{4}-\\d{2}-\\d{2}$", {"2024-01-31"}, {"x2024-01-31"}, json_mode(/*search=*/true));
  check_pattern("[a-z]+", {"ABCdEF", "\\\"x\\\""}, {"ABC", "\\\"X\\\""}, json_mode(/*search=*/true));
}

TEST_CASE("regex: large counted repetitions compile and validate") {
  check_pattern("^[a-z]{1,1000}$", {"a", std::string(1000, 'z')}, {"", std::string(1001, 'a')});
  check_pattern("^(ab|c){500}$", {std::string(1000, 'c').substr(0, 500)}, {std::string(499, 'c')});
  check_pattern("^.{0,2000}$", {std::string(2000, '.')}, {std::string(2001, '.')}, json_mode());
  check_pattern("(x{10}){10}", {std::string(100, 'x')}, {std::string(99, 'x'), std::string(101, 'x')});
  // Nested counts share their rules: a million-long language in a small grammar.
  pagoda::Result<Grammar> nested = regex_grammar("((a{1000}){1000}){1000}");
  REQUIRE(nested);
  CHECK(nested->element_count() < 20'000);
  // Past the grammar's size limit: an error, not a huge allocation.
  CHECK(error_of("a{4000000000}").find("too large") != std::string::npos);
  CHECK(error_of("a{1,3000000}").find("too large") != std::string::npos);
  CHECK(error_of("a{1000000}") == "");  // within the limit
  CHECK(error_of("a{2,1}").find("out of order") != std::string::npos);
}

TEST_CASE("regex: unsupported constructs are errors that name them") {
  CHECK(error_of("abc(?=d)") == "regex: lookahead (?= at offset 3 is not supported");
  CHECK(error_of("a(?!b)").find("negative lookahead (?! at offset 1") != std::string::npos);
  CHECK(error_of("(?<=a)b").find("lookbehind (?<= at offset 0") != std::string::npos);
  CHECK(error_of("(?<!a)b").find("negative lookbehind (?<! at offset 0") != std::string::npos);
  CHECK(error_of("(a)\\1").find("backreference \\1 at offset 3") != std::string::npos);
  CHECK(error_of("(?<x>a)\\k<x>").find("named backreference \\k") != std::string::npos);
  CHECK(error_of("a\\bc").find("word boundary \\b at offset 1") != std::string::npos);
  CHECK(error_of("a\\Bc").find("\\B at offset 1") != std::string::npos);
  CHECK(error_of("(?i)abc").find("inline flags (?i at offset 0") != std::string::npos);
  CHECK(error_of("(?i:abc)").find("inline flags") != std::string::npos);
  CHECK(error_of("\\p{L}").find("unicode property escape \\p") != std::string::npos);
  CHECK(error_of("[\\P{L}]").find("unicode property escape \\P") != std::string::npos);
  CHECK(error_of("a^b").find("anchor ^ at offset 1") != std::string::npos);
  CHECK(error_of("a$b").find("anchor $ at offset 1") != std::string::npos);
  CHECK(error_of("(^a)*").find("anchor ^") != std::string::npos);
  CHECK(error_of("(a$|b)c", search_mode()).find("anchor $ at offset 2") != std::string::npos);
  CHECK(error_of("\\07").find("octal escape") != std::string::npos);
}

TEST_CASE("regex: syntax errors") {
  CHECK(error_of("(ab").find("unclosed group ( at offset 0") != std::string::npos);
  CHECK(error_of("ab)").find("unmatched ) at offset 2") != std::string::npos);
  CHECK(error_of("[ab").find("unclosed class [ at offset 0") != std::string::npos);
  CHECK(error_of("*a").find("nothing to repeat") != std::string::npos);
  CHECK(error_of("a**").find("nothing to repeat") != std::string::npos);
  CHECK(error_of("a|+").find("nothing to repeat") != std::string::npos);
  CHECK(error_of("{2}").find("nothing to repeat") != std::string::npos);
  CHECK(error_of("^*").find("quantifier after the anchor ^") != std::string::npos);
  CHECK(error_of("[z-a]").find("range out of order") != std::string::npos);
  CHECK(error_of("abc\\").find("\\ at the end") != std::string::npos);
  CHECK(error_of("\\q").find("unknown escape \\q") != std::string::npos);
  CHECK(error_of("\\x4").find("\\x not followed by two hex digits") != std::string::npos);
  CHECK(error_of("\\u12").find("\\u not followed by four hex digits") != std::string::npos);
  CHECK(error_of("\\u{110000}").find("beyond 10FFFF") != std::string::npos);
  CHECK(error_of("\\c1").find("\\c not followed by a letter") != std::string::npos);
  CHECK(error_of("(?<>a)").find("group name") != std::string::npos);
  CHECK(error_of("(?#comment)").find("invalid group") != std::string::npos);
  CHECK(error_of("ab\xC3").find("invalid UTF-8 at offset 2") != std::string::npos);
  CHECK(error_of("\xED\xA0\x80").find("invalid UTF-8 at offset 0") != std::string::npos);
  CHECK(error_of(std::string(300, '(') + std::string(300, ')')).find("nested deeper") != std::string::npos);
}

TEST_CASE("regex: compile_regex adds to a caller's grammar") {
  Grammar grammar;
  pagoda::Result<Element> first = compile_regex(grammar, "[0-9]+");
  pagoda::Result<Element> second = compile_regex(grammar, "[a-z]+");
  REQUIRE(first);
  REQUIRE(second);
  grammar.set_root(grammar.add_rule("root", {Sequence{*first, grammar.byte(':'), *second}}));
  REQUIRE(grammar.validate().is_ok());
  CHECK(grammar_matches(grammar, "42:abc"));
  CHECK_FALSE(grammar_matches(grammar, "42abc"));
  CHECK_FALSE(grammar_matches(grammar, ":abc"));

  Grammar empty_language;
  pagoda::Result<Element> nothing = compile_regex(empty_language, "[]");
  REQUIRE(nothing);
  empty_language.set_root(empty_language.add_rule("root", {Sequence{*nothing}}));
  REQUIRE(empty_language.validate().is_ok());
  CHECK_FALSE(grammar_matches(empty_language, ""));
}
