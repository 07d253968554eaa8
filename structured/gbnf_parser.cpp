#include "structured/gbnf_parser.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pagoda::structured {

namespace {

constexpr size_t kNone = static_cast<size_t>(-1);
// Groups within groups beyond this are refused (the parser recurses per group).
constexpr int kMaxGroupDepth = 256;
// A repetition count past this is refused at once (Grammar::repeat grows with the count).
constexpr uint64_t kMaxRepeatCount = Grammar::kMaxElements;

bool is_name_char(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool is_digit(int c) { return c >= '0' && c <= '9'; }

int hex_value(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes one UTF-8 code point of `text` at `pos` (strictly: no overlong forms, surrogates or
// values past 10FFFF). Returns its length in bytes, 0 when the bytes there are not UTF-8.
size_t decode_utf8(std::string_view text, size_t pos, uint32_t& cp) {
  const auto lead = static_cast<uint8_t>(text[pos]);
  if (lead < 0x80) {
    cp = lead;
    return 1;
  }
  size_t length = 0;
  uint32_t min = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, cp = lead & 0x1F, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, cp = lead & 0x0F, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (pos + length > text.size()) return 0;
  for (size_t i = 1; i < length; ++i) {
    const auto b = static_cast<uint8_t>(text[pos + i]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return length;
}

class GbnfParser {
 public:
  explicit GbnfParser(std::string_view text) : text_(text) {}

  Result<Grammar> parse(std::string_view root_rule) {
    skip_space(true);
    if (at_end()) return error_at(pos_, "empty grammar: no rules (a grammar needs at least `root ::= ...`)");
    while (!at_end()) PAGODA_RETURN_IF_ERROR(parse_rule());

    // The first reference to a rule that is never defined.
    const NamedRule* undefined = nullptr;
    const std::string* undefined_name = nullptr;
    for (const auto& [name, entry] : names_) {
      if (entry.defined_at != kNone) continue;
      if (undefined == nullptr || entry.first_use < undefined->first_use) {
        undefined = &entry;
        undefined_name = &name;
      }
    }
    if (undefined != nullptr) return error_at(undefined->first_use, "undefined rule '" + *undefined_name + "'");

    auto root = names_.find(root_rule);
    if (root == names_.end()) {
      return Status::invalid_argument("gbnf: no rule named '" + std::string(root_rule) +
                                      "' (the grammar starts at that rule; define `" + std::string(root_rule) +
                                      " ::= ...`)");
    }
    grammar_.set_root(root->second.id);
    if (Status status = grammar_.validate(); !status.is_ok()) return locate(status);
    return std::move(grammar_);
  }

 private:
  struct NamedRule {
    uint32_t id = 0;
    size_t defined_at = kNone;  // offset of the name in its definition
    size_t first_use = kNone;   // offset of the first reference
  };

  bool at_end() const { return pos_ >= text_.size(); }
  // The byte `ahead` bytes on, or -1 past the end.
  int peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? static_cast<uint8_t>(text_[pos_ + ahead]) : -1;
  }

  // "line L, column C" of a byte offset (columns count code points, from 1).
  std::pair<size_t, size_t> line_column(size_t offset) const {
    offset = std::min(offset, text_.size());
    size_t line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < offset; ++i) {
      if (text_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    size_t column = 1;
    for (size_t i = line_start; i < offset; ++i) {
      if ((static_cast<uint8_t>(text_[i]) & 0xC0) != 0x80) ++column;
    }
    return {line, column};
  }

  std::string where(size_t offset) const {
    const auto [line, column] = line_column(offset);
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
  }

  Status error_at(size_t offset, const std::string& what) const {
    return Status::invalid_argument("gbnf: " + where(offset) + ": " + what);
  }

  // The character at `offset`, quoted, for messages.
  std::string describe(size_t offset) const {
    if (offset >= text_.size()) return "the end of the input";
    const auto c = static_cast<uint8_t>(text_[offset]);
    if (c == '\n' || c == '\r') return "a line break";
    if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
    uint32_t cp = 0;
    if (c >= 0x80) {
      if (size_t length = decode_utf8(text_, offset, cp); length > 0) {
        return "'" + std::string(text_.substr(offset, length)) + "'";
      }
    }
    char buf[16];
    std::snprintf(buf, sizeof buf, "byte 0x%02X", c);
    return buf;
  }

  bool at_rule_operator() const { return text_.substr(pos_, 3) == "::="; }

  // Skips spaces, tabs and comments, and line breaks when `newline_ok`.
  void skip_space(bool newline_ok) {
    while (!at_end()) {
      const int c = peek();
      if (c == ' ' || c == '\t' || (newline_ok && (c == '\r' || c == '\n'))) {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && peek() != '\r' && peek() != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  std::string_view parse_name() {
    const size_t start = pos_;
    while (is_name_char(peek())) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  NamedRule& named_rule(std::string_view name) {
    auto it = names_.find(name);
    if (it == names_.end()) {
      const uint32_t id = grammar_.add_rule(std::string(name));
      it = names_.emplace(std::string(name), NamedRule{id, kNone, kNone}).first;
      note_origin(pos_);
    }
    return it->second;
  }

  // Records `offset` as the source of every rule the builders added since the last call.
  void note_origin(size_t offset) { rule_origin_.resize(grammar_.rules().size(), offset); }

  // name ::= alternatives (newline | end)
  Status parse_rule() {
    const size_t start = pos_;
    if (peek() == '|') {
      return error_at(pos_,
                      "a line starts with '|': a rule ends at the end of its line unless inside ( ); put the '|' at "
                      "the end of the previous line or wrap the alternatives in parentheses");
    }
    if (!is_name_char(peek())) return error_at(pos_, "expected a rule name, found " + describe(pos_));
    const std::string name(parse_name());
    skip_space(false);
    if (!at_rule_operator()) {
      return error_at(pos_, "expected '::=' after the rule name '" + name + "', found " + describe(pos_));
    }
    pos_ += 3;
    skip_space(true);

    NamedRule& rule = named_rule(name);
    if (rule.defined_at != kNone) {
      return error_at(start, "rule '" + name + "' defined twice (first at " + where(rule.defined_at) + ")");
    }
    rule.defined_at = start;
    current_rule_ = name;

    std::vector<Sequence> alternatives;
    PAGODA_RETURN_IF_ERROR(parse_alternatives(false, 0, alternatives));
    for (Sequence& sequence : alternatives) grammar_.add_alternative(rule.id, std::move(sequence));

    if (peek() == '\r') {
      ++pos_;
      if (peek() == '\n') ++pos_;
    } else if (peek() == '\n') {
      ++pos_;
    } else if (!at_end()) {
      if (peek() == ')') return error_at(pos_, "unexpected ')' (no '(' to close)");
      if (at_rule_operator()) {
        return error_at(pos_, "unexpected '::=': each rule starts on a new line");
      }
      return error_at(pos_, "unexpected " + describe(pos_) +
                                " (expected a string, a character class, a rule name, '(', '.', a repetition, "
                                "'|' or the end of the line)");
    }
    skip_space(true);
    return Status::ok();
  }

  // sequence ('|' sequence)*; `nested`: inside a group, where line breaks are spaces.
  Status parse_alternatives(bool nested, int depth, std::vector<Sequence>& out) {
    out.emplace_back();
    PAGODA_RETURN_IF_ERROR(parse_sequence(nested, depth, out.back()));
    while (peek() == '|') {
      ++pos_;
      skip_space(true);
      out.emplace_back();
      PAGODA_RETURN_IF_ERROR(parse_sequence(nested, depth, out.back()));
    }
    return Status::ok();
  }

  Status parse_sequence(bool nested, int depth, Sequence& out) {
    size_t item_start = kNone;  // where the last item (what a repetition applies to) begins in `out`
    while (!at_end()) {
      const int c = peek();
      const size_t here = pos_;
      if (c == '"') {
        item_start = out.size();
        PAGODA_RETURN_IF_ERROR(parse_literal(out));
      } else if (c == '[') {
        item_start = out.size();
        PAGODA_RETURN_IF_ERROR(parse_class(out));
      } else if (c == '.') {
        ++pos_;
        item_start = out.size();
        out.push_back(grammar_.any_codepoint());
        note_origin(here);
      } else if (is_name_char(c)) {
        const std::string_view name = parse_name();
        NamedRule& rule = named_rule(name);
        if (rule.first_use == kNone) rule.first_use = here;
        item_start = out.size();
        out.push_back(Grammar::ref(rule.id));
      } else if (c == '(') {
        if (depth >= kMaxGroupDepth) {
          return error_at(here, "groups nested too deeply (more than " + std::to_string(kMaxGroupDepth) + ")");
        }
        ++pos_;
        skip_space(true);
        std::vector<Sequence> alternatives;
        PAGODA_RETURN_IF_ERROR(parse_alternatives(true, depth + 1, alternatives));
        if (at_end()) return error_at(here, "'(' is never closed (missing ')')");
        if (peek() != ')') {
          if (at_rule_operator()) {
            return error_at(pos_, "unexpected '::=' inside the group opened at " + where(here) + " (missing ')'?)");
          }
          return error_at(pos_, "unexpected " + describe(pos_) + " inside the group opened at " + where(here) +
                                    " (expected an element, '|' or ')')");
        }
        ++pos_;
        item_start = out.size();
        if (alternatives.size() == 1) {
          out.insert(out.end(), alternatives[0].begin(), alternatives[0].end());
        } else {
          out.push_back(grammar_.choice(std::move(alternatives), current_rule_));
          note_origin(here);
        }
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (item_start == kNone) {
          return error_at(here, std::string("'") + static_cast<char>(c) + "' has nothing before it to repeat");
        }
        PAGODA_RETURN_IF_ERROR(parse_repetition(nested, item_start, out));
      } else {
        break;
      }
      skip_space(nested);
    }
    return Status::ok();
  }

  // A count in a {m,n} repetition; saturates far above any accepted count.
  uint64_t parse_count() {
    uint64_t value = 0;
    while (is_digit(peek())) {
      value = std::min<uint64_t>(value * 10 + static_cast<uint64_t>(peek() - '0'), uint64_t{1} << 40);
      ++pos_;
    }
    return value;
  }

  // * + ? {m} {m,} {m,n} {,n} applied to out[item_start...].
  Status parse_repetition(bool nested, size_t item_start, Sequence& out) {
    const size_t here = pos_;
    const int c = peek();
    ++pos_;
    uint64_t min = 0;
    uint64_t max = kUnbounded;
    if (c == '+') {
      min = 1;
    } else if (c == '?') {
      max = 1;
    } else if (c == '{') {
      skip_space(nested);
      const bool has_min = is_digit(peek());
      if (has_min) {
        min = parse_count();
        skip_space(nested);
      }
      if (peek() == '}') {
        if (!has_min) return error_at(pos_, "expected a count in '{...}'");
        max = min;
      } else if (peek() == ',') {
        ++pos_;
        skip_space(nested);
        if (is_digit(peek())) {
          max = parse_count();
          skip_space(nested);
        }
        if (peek() != '}') return error_at(pos_, "expected '}' to end the repetition, found " + describe(pos_));
      } else {
        return error_at(pos_, "expected a count, ',' or '}' in the repetition, found " + describe(pos_));
      }
      ++pos_;  // '}'
      if (min > kMaxRepeatCount || (max != kUnbounded && max > kMaxRepeatCount)) {
        return error_at(here, "repetition count too large (at most " + std::to_string(kMaxRepeatCount) + ")");
      }
      if (max < min) {
        return error_at(here, "repetition {" + std::to_string(min) + "," + std::to_string(max) +
                                  "}: the maximum is below the minimum");
      }
    }

    Sequence body(out.begin() + static_cast<std::ptrdiff_t>(item_start), out.end());
    out.resize(item_start);
    if (body.empty()) return Status::ok();  // any number of nothing is nothing
    if (c == '*') {
      out.push_back(grammar_.star(std::move(body)));
    } else if (c == '+') {
      out.push_back(grammar_.plus(std::move(body)));
    } else if (c == '?') {
      out.push_back(grammar_.optional(std::move(body)));
    } else {
      Sequence repeated = grammar_.repeat(body, static_cast<uint32_t>(min), static_cast<uint32_t>(max));
      repeated_elements_ += repeated.size();
      if (repeated_elements_ > Grammar::kMaxElements || grammar_.element_count() > Grammar::kMaxElements ||
          grammar_.rules().size() > Grammar::kMaxRules) {
        return error_at(here, "grammar too large at this repetition (over " + std::to_string(Grammar::kMaxElements) +
                                  " elements or " + std::to_string(Grammar::kMaxRules) + " rules)");
      }
      out.insert(out.end(), repeated.begin(), repeated.end());
    }
    note_origin(here);
    return Status::ok();
  }

  // One character of a literal or class at pos_ (an escape or a UTF-8 code point) into `cp`.
  // `open` and `construct` name the literal or class, for an input that ends inside it.
  Status parse_char(size_t open, const char* construct, uint32_t& cp) {
    const size_t here = pos_;
    if (peek() != '\\') {
      const size_t length = decode_utf8(text_, pos_, cp);
      if (length == 0) return error_at(here, "invalid UTF-8 (" + describe(here) + ")");
      pos_ += length;
      return Status::ok();
    }
    if (pos_ + 1 >= text_.size()) return error_at(open, std::string("unterminated ") + construct);
    const int kind = peek(1);
    int digits = 0;
    switch (kind) {
      case 'x':
        digits = 2;
        break;
      case 'u':
        digits = 4;
        break;
      case 'U':
        digits = 8;
        break;
      case 'n':
        cp = '\n';
        break;
      case 'r':
        cp = '\r';
        break;
      case 't':
        cp = '\t';
        break;
      case '\\':
      case '"':
      case '[':
      case ']':
        cp = static_cast<uint32_t>(kind);
        break;
      default: {
        uint32_t ignored = 0;
        const size_t length = std::max<size_t>(1, decode_utf8(text_, pos_ + 1, ignored));
        return error_at(here, "unknown escape '\\" + std::string(text_.substr(pos_ + 1, length)) +
                                  "' (known: \\n \\r \\t \\\\ \\\" \\[ \\] \\xHH \\uHHHH \\UHHHHHHHH)");
      }
    }
    pos_ += 2;
    if (digits == 0) return Status::ok();
    uint64_t value = 0;
    for (int i = 0; i < digits; ++i) {
      const int h = hex_value(peek());
      if (h < 0) {
        return error_at(here,
                        "expected " + std::to_string(digits) + " hex digits after '\\" + static_cast<char>(kind) + "'");
      }
      value = value * 16 + static_cast<uint64_t>(h);
      ++pos_;
    }
    cp = static_cast<uint32_t>(value);
    return Status::ok();
  }

  // "..." : its code points, as UTF-8 bytes.
  Status parse_literal(Sequence& out) {
    const size_t open = pos_;
    ++pos_;
    std::string bytes;
    while (true) {
      if (at_end()) return error_at(open, "unterminated string literal (no closing '\"')");
      if (peek() == '"') {
        ++pos_;
        break;
      }
      const size_t here = pos_;
      uint32_t cp = 0;
      PAGODA_RETURN_IF_ERROR(parse_char(open, "string literal (no closing '\"')", cp));
      if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "U+%X", cp);
        return error_at(here, std::string(buf) + " is not a Unicode scalar value (surrogate or past U+10FFFF)");
      }
      append_utf8(bytes, cp);
    }
    Sequence sequence = grammar_.literal(bytes);
    out.insert(out.end(), sequence.begin(), sequence.end());
    return Status::ok();
  }

  // [...] or [^...]: one code point in (or out of) the listed characters and ranges.
  Status parse_class(Sequence& out) {
    const size_t open = pos_;
    ++pos_;
    bool negated = false;
    if (peek() == '^') {
      negated = true;
      ++pos_;
    }
    std::vector<CodepointRange> ranges;
    const char* const unterminated = "character class (no closing ']')";
    while (true) {
      if (at_end()) return error_at(open, std::string("unterminated ") + unterminated);
      if (peek() == ']') {
        ++pos_;
        break;
      }
      const size_t item = pos_;
      uint32_t first = 0;
      PAGODA_RETURN_IF_ERROR(parse_char(open, unterminated, first));
      uint32_t last = first;
      if (peek() == '-' && peek(1) != ']' && peek(1) != -1) {
        ++pos_;
        PAGODA_RETURN_IF_ERROR(parse_char(open, unterminated, last));
        if (last < first) {
          return error_at(item, "range " + std::string(text_.substr(item, pos_ - item)) +
                                    " in a character class ends before it starts");
        }
      }
      ranges.push_back({first, last});
    }
    out.push_back(grammar_.codepoints(ranges, negated));
    note_origin(open);
    return Status::ok();
  }

  // Places a failed validate() at its source: for left recursion, the first named rule on a
  // cycle of "may start with" references (or the repetition that made an unnamed one).
  Status locate(const Status& status) const {
    if (status.message().find("left-recursive") == std::string::npos) return unplaced(status);
    const std::vector<uint32_t> cycle = grammar_.left_recursive_cycle();
    if (cycle.empty()) return unplaced(status);
    std::unordered_map<uint32_t, const std::string*> user_names;
    for (const auto& [name, entry] : names_) user_names.emplace(entry.id, &name);
    for (uint32_t rule : cycle) {
      if (auto it = user_names.find(rule); it != user_names.end()) {
        return error_at(
            names_.find(*it->second)->second.defined_at,
            "rule '" + *it->second + "' is left-recursive (it can reach itself before matching a character)");
      }
    }
    const uint32_t target = cycle.front();
    const size_t origin = target < rule_origin_.size() ? rule_origin_[target] : kNone;
    if (origin != kNone) {
      return error_at(origin,
                      "left recursion: this repeats something that can match the empty string, so it can "
                      "reach itself before matching a character");
    }
    return unplaced(status);
  }

  // A Grammar error without a place in the text ("gbnf: ..." instead of "grammar: ...").
  static Status unplaced(const Status& status) {
    std::string message = status.message();
    if (message.rfind("grammar: ", 0) == 0) message.erase(0, 9);
    return Status::invalid_argument("gbnf: " + message);
  }

  std::string_view text_;
  size_t pos_ = 0;
  Grammar grammar_;
  std::map<std::string, NamedRule, std::less<>> names_;
  std::vector<size_t> rule_origin_;  // per rule: offset of the text that made it
  std::string current_rule_;
  size_t repeated_elements_ = 0;
};

}  // namespace

Result<Grammar> parse_gbnf(std::string_view text, std::string_view root_rule) {
  GbnfParser parser(text);
  return parser.parse(root_rule);
}

}  // namespace pagoda::structured
