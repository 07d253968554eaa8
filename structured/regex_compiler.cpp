#include "structured/regex_compiler.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pagoda::structured {
namespace {

constexpr uint32_t kMaxCodepoint = 0x10FFFF;
constexpr uint32_t kSurrogateFirst = 0xD800;
constexpr uint32_t kSurrogateLast = 0xDFFF;
// Deeper group nesting is refused (the parser and the emitter recurse).
constexpr int kMaxGroupDepth = 200;
// Anchors inside groups at a pattern's edge are handled by distributing the
// groups' alternatives; past this many anchored alternatives the pattern is
// refused.
constexpr size_t kMaxAnchoredAlternatives = 1024;

using Ranges = std::vector<CodepointRange>;

// Sorts `ranges` and merges overlapping or adjacent ones.
void normalize(Ranges& ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const CodepointRange& a, const CodepointRange& b) { return a.first < b.first; });
  Ranges merged;
  for (const CodepointRange& r : ranges) {
    if (!merged.empty() && r.first <= merged.back().last + 1) {
      merged.back().last = std::max(merged.back().last, r.last);
    } else {
      merged.push_back(r);
    }
  }
  ranges = std::move(merged);
}

// The code points of [0, 10FFFF] outside `ranges` (normalized).
Ranges complement(const Ranges& ranges) {
  Ranges out;
  uint32_t next = 0;
  for (const CodepointRange& r : ranges) {
    if (r.first > next) out.push_back({next, r.first - 1});
    next = r.last + 1;
  }
  if (next <= kMaxCodepoint) out.push_back({next, kMaxCodepoint});
  return out;
}

// Removes D800-DFFF (never matched) from normalized `ranges`.
void remove_surrogates(Ranges& ranges) {
  Ranges out;
  for (const CodepointRange& r : ranges) {
    if (r.last < kSurrogateFirst || r.first > kSurrogateLast) {
      out.push_back(r);
      continue;
    }
    if (r.first < kSurrogateFirst) out.push_back({r.first, kSurrogateFirst - 1});
    if (r.last > kSurrogateLast) out.push_back({kSurrogateLast + 1, r.last});
  }
  ranges = std::move(out);
}

bool ranges_contain(const Ranges& ranges, uint32_t cp) {
  for (const CodepointRange& r : ranges) {
    if (cp >= r.first && cp <= r.last) return true;
  }
  return false;
}

// ECMAScript's class escapes.
Ranges digit_ranges() { return {{'0', '9'}}; }
Ranges word_ranges() { return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}; }
// WhiteSpace and LineTerminator of ECMA-262: TAB VT FF SP NBSP ZWNBSP, the
// Zs category, LF CR LS PS.
Ranges space_ranges() {
  return {{0x09, 0x0D},     {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
          {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
}
// `.`: every code point but the line terminators.
Ranges dot_ranges() {
  Ranges terminators = {{0x0A, 0x0A}, {0x0D, 0x0D}, {0x2028, 0x2029}};
  return complement(terminators);
}

// The parsed pattern: nodes in a vector, children before parents.
struct Node {
  enum class Kind : uint8_t { kEmpty, kClass, kConcat, kAlternation, kRepeat, kStartAnchor, kEndAnchor };
  Kind kind = Kind::kEmpty;
  size_t offset = 0;          // byte offset in the pattern, for messages
  Ranges ranges;              // kClass: normalized, without surrogates
  std::vector<int> children;  // kConcat, kAlternation; kRepeat: its one body
  uint32_t min = 0;           // kRepeat
  uint32_t max = 0;           // kRepeat; kUnbounded for no limit
  bool nullable = false;      // matches the empty string
  bool has_anchor = false;    // contains ^ or $
};

bool is_syntax_char(uint32_t c) {
  switch (c) {
    case '^':
    case '$':
    case '\\':
    case '.':
    case '*':
    case '+':
    case '?':
    case '(':
    case ')':
    case '[':
    case ']':
    case '{':
    case '}':
    case '|':
    case '/':
    case '-':
      return true;
    default:
      return false;
  }
}

bool is_ascii_letter(uint32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool is_ascii_alnum(uint32_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

int hex_value(uint32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
  return -1;
}

std::string quoted_char(uint32_t c) {
  std::string out;
  append_utf8(out, c);
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view pattern) : pattern_(pattern) {}

  // The root node, or an error naming the construct and its offset.
  Result<int> parse() {
    PAGODA_RETURN_IF_ERROR(decode());
    const int root = parse_disjunction(0);
    if (root < 0) return error_;
    if (pos_ < chars_.size()) {
      // parse_disjunction stops only at the end or at a ')' it did not open.
      return Status::invalid_argument("regex: unmatched ) at offset " + std::to_string(offset(pos_)));
    }
    return root;
  }

  std::vector<Node>& nodes() { return nodes_; }

 private:
  // One parsed class item: a single code point, or a class escape's set.
  struct ClassAtom {
    bool is_set = false;
    uint32_t codepoint = 0;
    Ranges set;
  };

  Status decode() {
    size_t i = 0;
    while (i < pattern_.size()) {
      const auto lead = static_cast<uint8_t>(pattern_[i]);
      uint32_t cp = 0;
      size_t length = 0;
      uint32_t min_value = 0;
      if (lead < 0x80) {
        cp = lead;
        length = 1;
      } else if (lead >= 0xC2 && lead <= 0xDF) {
        cp = lead & 0x1F;
        length = 2;
        min_value = 0x80;
      } else if (lead >= 0xE0 && lead <= 0xEF) {
        cp = lead & 0x0F;
        length = 3;
        min_value = 0x800;
      } else if (lead >= 0xF0 && lead <= 0xF4) {
        cp = lead & 0x07;
        length = 4;
        min_value = 0x10000;
      } else {
        return invalid_utf8(i);
      }
      if (i + length > pattern_.size()) return invalid_utf8(i);
      for (size_t k = 1; k < length; ++k) {
        const auto b = static_cast<uint8_t>(pattern_[i + k]);
        if ((b & 0xC0) != 0x80) return invalid_utf8(i);
        cp = (cp << 6) | (b & 0x3F);
      }
      if (cp < min_value || cp > kMaxCodepoint || (cp >= kSurrogateFirst && cp <= kSurrogateLast)) {
        return invalid_utf8(i);
      }
      chars_.push_back(cp);
      offsets_.push_back(i);
      i += length;
    }
    offsets_.push_back(pattern_.size());
    return Status::ok();
  }

  static Status invalid_utf8(size_t at) {
    return Status::invalid_argument("regex: invalid UTF-8 at offset " + std::to_string(at));
  }

  size_t offset(size_t index) const { return offsets_[std::min(index, chars_.size())]; }
  bool at_end() const { return pos_ >= chars_.size(); }
  bool at_end(size_t index) const { return index >= chars_.size(); }
  uint32_t peek(size_t ahead = 0) const { return pos_ + ahead < chars_.size() ? chars_[pos_ + ahead] : 0; }
  bool next_is(uint32_t c, size_t ahead = 0) const { return pos_ + ahead < chars_.size() && chars_[pos_ + ahead] == c; }

  // Records the first error; returns -1 for the parse functions to pass on.
  int fail(std::string message) {
    if (error_.is_ok()) error_ = Status::invalid_argument("regex: " + std::move(message));
    return -1;
  }
  int unsupported(const std::string& what, size_t index) {
    return fail(what + " at offset " + std::to_string(offset(index)) + " is not supported");
  }

  int add_node(Node node) {
    switch (node.kind) {
      case Node::Kind::kEmpty:
        node.nullable = true;
        break;
      case Node::Kind::kClass:
        node.nullable = false;
        break;
      case Node::Kind::kStartAnchor:
      case Node::Kind::kEndAnchor:
        node.nullable = true;
        node.has_anchor = true;
        break;
      case Node::Kind::kConcat:
        node.nullable = true;
        for (int child : node.children) {
          node.nullable = node.nullable && nodes_[child].nullable;
          node.has_anchor = node.has_anchor || nodes_[child].has_anchor;
        }
        break;
      case Node::Kind::kAlternation:
        node.nullable = false;
        for (int child : node.children) {
          node.nullable = node.nullable || nodes_[child].nullable;
          node.has_anchor = node.has_anchor || nodes_[child].has_anchor;
        }
        break;
      case Node::Kind::kRepeat:
        node.nullable = node.min == 0 || nodes_[node.children[0]].nullable;
        node.has_anchor = nodes_[node.children[0]].has_anchor;
        break;
    }
    nodes_.push_back(std::move(node));
    return static_cast<int>(nodes_.size() - 1);
  }

  int add_class(Ranges ranges, size_t index) {
    normalize(ranges);
    remove_surrogates(ranges);
    Node node;
    node.kind = Node::Kind::kClass;
    node.offset = offset(index);
    node.ranges = std::move(ranges);
    return add_node(std::move(node));
  }

  int parse_disjunction(int depth) {
    const size_t start = pos_;
    std::vector<int> alternatives;
    while (true) {
      const int alternative = parse_alternative(depth);
      if (alternative < 0) return -1;
      alternatives.push_back(alternative);
      if (!next_is('|')) break;
      ++pos_;
    }
    if (alternatives.size() == 1) return alternatives[0];
    Node node;
    node.kind = Node::Kind::kAlternation;
    node.offset = offset(start);
    node.children = std::move(alternatives);
    return add_node(std::move(node));
  }

  int parse_alternative(int depth) {
    const size_t start = pos_;
    std::vector<int> terms;
    while (!at_end() && peek() != '|' && peek() != ')') {
      const int term = parse_term(depth);
      if (term < 0) return -1;
      terms.push_back(term);
    }
    if (terms.size() == 1) return terms[0];
    Node node;
    node.offset = offset(start);
    if (!terms.empty()) {
      node.kind = Node::Kind::kConcat;
      node.children = std::move(terms);
    }
    return add_node(std::move(node));
  }

  int parse_term(int depth) {
    const size_t start = pos_;
    const uint32_t c = peek();
    int atom = -1;
    switch (c) {
      case '^':
      case '$': {
        ++pos_;
        Node node;
        node.kind = c == '^' ? Node::Kind::kStartAnchor : Node::Kind::kEndAnchor;
        node.offset = offset(start);
        if (at_quantifier(pos_)) {
          return fail(std::string("quantifier after the anchor ") + static_cast<char>(c) + " at offset " +
                      std::to_string(offset(start)));
        }
        return add_node(std::move(node));
      }
      case '(':
        atom = parse_group(depth);
        break;
      case '[':
        atom = parse_class();
        break;
      case '.':
        ++pos_;
        atom = add_class(dot_ranges(), start);
        break;
      case '*':
      case '+':
      case '?':
        return fail(std::string("nothing to repeat: quantifier ") + static_cast<char>(c) + " at offset " +
                    std::to_string(offset(start)));
      case '{':
        if (at_quantifier(pos_)) {
          return fail("nothing to repeat: quantifier { at offset " + std::to_string(offset(start)));
        }
        ++pos_;  // not a quantifier: a literal '{' (as ECMAScript's Annex B reads it)
        atom = add_class({{c, c}}, start);
        break;
      case '\\':
        atom = parse_atom_escape();
        break;
      default:
        ++pos_;  // a literal, including a lone ']' or '}'
        atom = add_class({{c, c}}, start);
        break;
    }
    if (atom < 0) return -1;
    return parse_quantifier(atom);
  }

  // Reads {n}, {n,} or {n,m} at `index`; false when the text there is not one.
  bool read_braces(size_t index, uint64_t& min, uint64_t& max, size_t& end) const {
    if (at_end(index) || chars_[index] != '{') return false;
    size_t i = index + 1;
    auto read_number = [&](uint64_t& value) {
      const size_t first = i;
      value = 0;
      while (!at_end(i) && chars_[i] >= '0' && chars_[i] <= '9') {
        value = std::min<uint64_t>(value * 10 + (chars_[i] - '0'), uint64_t{1} << 40);
        ++i;
      }
      return i > first;
    };
    if (!read_number(min)) return false;
    if (at_end(i)) return false;
    if (chars_[i] == '}') {
      max = min;
    } else if (chars_[i] == ',') {
      ++i;
      if (!at_end(i) && chars_[i] == '}') {
        max = kUnbounded;
      } else if (!read_number(max) || at_end(i) || chars_[i] != '}') {
        return false;
      }
    } else {
      return false;
    }
    end = i + 1;
    return true;
  }

  bool at_quantifier(size_t index) const {
    if (at_end(index)) return false;
    const uint32_t c = chars_[index];
    if (c == '*' || c == '+' || c == '?') return true;
    uint64_t min = 0, max = 0;
    size_t end = 0;
    return read_braces(index, min, max, end);
  }

  int parse_quantifier(int atom) {
    if (at_end()) return atom;
    const size_t start = pos_;
    uint64_t min = 0;
    uint64_t max = 0;
    switch (peek()) {
      case '*':
        min = 0;
        max = kUnbounded;
        ++pos_;
        break;
      case '+':
        min = 1;
        max = kUnbounded;
        ++pos_;
        break;
      case '?':
        min = 0;
        max = 1;
        ++pos_;
        break;
      case '{': {
        size_t end = 0;
        if (!read_braces(pos_, min, max, end)) return atom;  // a literal '{' follows
        pos_ = end;
        const std::string text(pattern_.substr(offset(start), offset(end) - offset(start)));
        if (max != kUnbounded && min > max) {
          return fail("numbers out of order in quantifier " + text + " at offset " + std::to_string(offset(start)));
        }
        const uint64_t limit = Grammar::kMaxElements;
        if (min > limit || (max != kUnbounded && max > limit)) {
          return fail("quantifier " + text + " at offset " + std::to_string(offset(start)) +
                      " is too large (counts up to " + std::to_string(limit) + ")");
        }
        break;
      }
      default:
        return atom;
    }
    if (next_is('?')) ++pos_;  // lazy: the same language for a whole match
    if (at_quantifier(pos_)) {
      return fail("nothing to repeat: quantifier " + quoted_char(peek()) + " at offset " +
                  std::to_string(offset(pos_)));
    }
    Node node;
    node.kind = Node::Kind::kRepeat;
    node.offset = offset(start);
    node.children = {atom};
    node.min = static_cast<uint32_t>(min);
    node.max = static_cast<uint32_t>(max);
    return add_node(std::move(node));
  }

  int parse_group(int depth) {
    const size_t start = pos_;  // at '('
    ++pos_;
    if (next_is('?')) {
      if (next_is(':', 1)) {
        pos_ += 2;
      } else if (next_is('=', 1)) {
        return unsupported("lookahead (?=", start);
      } else if (next_is('!', 1)) {
        return unsupported("negative lookahead (?!", start);
      } else if (next_is('<', 1) && next_is('=', 2)) {
        return unsupported("lookbehind (?<=", start);
      } else if (next_is('<', 1) && next_is('!', 2)) {
        return unsupported("negative lookbehind (?<!", start);
      } else if (next_is('<', 1)) {
        pos_ += 2;
        const size_t name_start = pos_;
        while (!at_end() && peek() != '>' && peek() != ')') ++pos_;
        if (!next_is('>') || pos_ == name_start) {
          return fail("invalid group name in (?< at offset " + std::to_string(offset(start)));
        }
        ++pos_;  // a named group is a plain group here
      } else if (peek(1) == '-' || is_ascii_letter(peek(1))) {
        return unsupported("inline flags (?" + quoted_char(peek(1)), start);
      } else {
        return fail("invalid group (? at offset " + std::to_string(offset(start)));
      }
    }
    if (depth + 1 > kMaxGroupDepth) {
      return fail("groups nested deeper than " + std::to_string(kMaxGroupDepth) + " at offset " +
                  std::to_string(offset(start)));
    }
    const int inner = parse_disjunction(depth + 1);
    if (inner < 0) return -1;
    if (!next_is(')')) return fail("unclosed group ( at offset " + std::to_string(offset(start)));
    ++pos_;
    return inner;
  }

  int parse_class() {
    const size_t start = pos_;  // at '['
    ++pos_;
    bool negated = false;
    if (next_is('^')) {
      negated = true;
      ++pos_;
    }
    Ranges ranges;
    while (true) {
      if (at_end()) return fail("unclosed class [ at offset " + std::to_string(offset(start)));
      if (peek() == ']') {
        ++pos_;
        break;
      }
      const size_t atom_start = pos_;
      ClassAtom first;
      if (!parse_class_atom(first)) return -1;
      // A range needs a '-' that is neither the class's last character nor followed by ']'.
      if (next_is('-') && !at_end(pos_ + 1) && !next_is(']', 1)) {
        ++pos_;
        ClassAtom last;
        if (!parse_class_atom(last)) return -1;
        if (first.is_set || last.is_set) {
          // [\w-.]: as Annex B reads it, the '-' is then a literal.
          add_class_atom(first, ranges);
          ranges.push_back({'-', '-'});
          add_class_atom(last, ranges);
          continue;
        }
        if (first.codepoint > last.codepoint) {
          return fail("range out of order in class: " +
                      std::string(pattern_.substr(offset(atom_start), offset(pos_) - offset(atom_start))) +
                      " at offset " + std::to_string(offset(atom_start)));
        }
        ranges.push_back({first.codepoint, last.codepoint});
        continue;
      }
      add_class_atom(first, ranges);
    }
    normalize(ranges);
    if (negated) ranges = complement(ranges);
    return add_class(std::move(ranges), start);
  }

  static void add_class_atom(const ClassAtom& atom, Ranges& ranges) {
    if (atom.is_set) {
      ranges.insert(ranges.end(), atom.set.begin(), atom.set.end());
    } else {
      ranges.push_back({atom.codepoint, atom.codepoint});
    }
  }

  // The set of \d \D \w \W \s \S, or nullopt for another letter.
  static std::optional<Ranges> class_escape(uint32_t letter) {
    Ranges set;
    switch (letter) {
      case 'd':
      case 'D':
        set = digit_ranges();
        break;
      case 'w':
      case 'W':
        set = word_ranges();
        break;
      case 's':
      case 'S':
        set = space_ranges();
        break;
      default:
        return std::nullopt;
    }
    normalize(set);
    if (letter == 'D' || letter == 'W' || letter == 'S') set = complement(set);
    return set;
  }

  bool parse_class_atom(ClassAtom& atom) {
    if (peek() != '\\') {
      atom.codepoint = peek();
      ++pos_;
      return true;
    }
    const size_t start = pos_;
    if (at_end(pos_ + 1)) {
      fail("\\ at the end of the pattern");
      return false;
    }
    const uint32_t letter = peek(1);
    if (auto set = class_escape(letter)) {
      pos_ += 2;
      atom.is_set = true;
      atom.set = std::move(*set);
      return true;
    }
    switch (letter) {
      case 'b':  // backspace inside a class
        pos_ += 2;
        atom.codepoint = 0x08;
        return true;
      case 'B':
        unsupported("\\B inside a class", start);
        return false;
      case 'p':
      case 'P':
        unsupported(std::string("unicode property escape \\") + static_cast<char>(letter), start);
        return false;
      default:
        break;
    }
    if (letter >= '1' && letter <= '9') {
      unsupported("backreference or octal escape \\" + quoted_char(letter) + " inside a class", start);
      return false;
    }
    return parse_character_escape(atom.codepoint);
  }

  int parse_atom_escape() {
    const size_t start = pos_;  // at '\'
    if (at_end(pos_ + 1)) return fail("\\ at the end of the pattern");
    const uint32_t letter = peek(1);
    if (auto set = class_escape(letter)) {
      pos_ += 2;
      return add_class(std::move(*set), start);
    }
    switch (letter) {
      case 'b':
        return unsupported("word boundary \\b", start);
      case 'B':
        return unsupported("non-word boundary \\B", start);
      case 'k':
        return unsupported("named backreference \\k", start);
      case 'p':
      case 'P':
        return unsupported(std::string("unicode property escape \\") + static_cast<char>(letter), start);
      default:
        break;
    }
    if (letter >= '1' && letter <= '9') return unsupported("backreference \\" + quoted_char(letter), start);
    uint32_t cp = 0;
    if (!parse_character_escape(cp)) return -1;
    return add_class({{cp, cp}}, start);
  }

  // Reads exactly `count` hex digits at pos_ into `value`.
  bool read_hex(size_t count, uint32_t& value) {
    value = 0;
    for (size_t k = 0; k < count; ++k) {
      const int digit = at_end(pos_ + k) ? -1 : hex_value(chars_[pos_ + k]);
      if (digit < 0) return false;
      value = value * 16 + static_cast<uint32_t>(digit);
    }
    pos_ += count;
    return true;
  }

  // A CharacterEscape at pos_ (the backslash), shared by atoms and classes.
  bool parse_character_escape(uint32_t& cp) {
    const size_t start = pos_;
    const uint32_t letter = peek(1);
    const std::string at = " at offset " + std::to_string(offset(start));
    pos_ += 2;
    switch (letter) {
      case 't':
        cp = 0x09;
        return true;
      case 'n':
        cp = 0x0A;
        return true;
      case 'v':
        cp = 0x0B;
        return true;
      case 'f':
        cp = 0x0C;
        return true;
      case 'r':
        cp = 0x0D;
        return true;
      case '0':
        if (!at_end() && peek() >= '0' && peek() <= '9') {
          pos_ = start;
          unsupported("octal escape \\0" + quoted_char(peek(2)), start);
          return false;
        }
        cp = 0;
        return true;
      case 'c':
        if (!at_end() && is_ascii_letter(peek())) {
          cp = peek() % 32;
          ++pos_;
          return true;
        }
        fail("\\c not followed by a letter" + at);
        return false;
      case 'x':
        if (!read_hex(2, cp)) {
          fail("\\x not followed by two hex digits" + at);
          return false;
        }
        return true;
      case 'u':
        return parse_unicode_escape(cp, start);
      default:
        break;
    }
    if (is_syntax_char(letter) || (letter < 0x80 && !is_ascii_alnum(letter) && letter != '_') || letter >= 0x80) {
      // Escaped syntax characters; other punctuation and non-ASCII characters
      // stand for themselves too (as most JSON Schema validators read them).
      cp = letter;
      return true;
    }
    pos_ = start;
    fail("unknown escape \\" + quoted_char(letter) + at);
    return false;
  }

  // \uHHHH (a surrogate pair \uHHHH\uHHHH is one code point) or \u{H...};
  // pos_ is after "\u".
  bool parse_unicode_escape(uint32_t& cp, size_t start) {
    const std::string at = " at offset " + std::to_string(offset(start));
    if (next_is('{')) {
      ++pos_;
      uint64_t value = 0;
      size_t digits = 0;
      while (!at_end() && hex_value(peek()) >= 0) {
        value = std::min<uint64_t>(value * 16 + static_cast<uint64_t>(hex_value(peek())), uint64_t{1} << 32);
        ++digits;
        ++pos_;
      }
      if (digits == 0 || !next_is('}')) {
        fail("\\u{ not followed by hex digits and }" + at);
        return false;
      }
      ++pos_;
      if (value > kMaxCodepoint) {
        fail("\\u{...} beyond 10FFFF" + at);
        return false;
      }
      cp = static_cast<uint32_t>(value);
      return true;
    }
    if (!read_hex(4, cp)) {
      fail("\\u not followed by four hex digits" + at);
      return false;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF && next_is('\\') && next_is('u', 1)) {
      const size_t saved = pos_;
      pos_ += 2;
      uint32_t trail = 0;
      if (read_hex(4, trail) && trail >= 0xDC00 && trail <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (trail - 0xDC00);
        return true;
      }
      pos_ = saved;  // a lone lead surrogate: matches nothing
    }
    return true;
  }

  std::string_view pattern_;
  std::vector<uint32_t> chars_;  // the pattern's code points
  std::vector<size_t> offsets_;  // byte offset of each, and the pattern's size last
  size_t pos_ = 0;               // index into chars_
  std::vector<Node> nodes_;
  Status error_;
};

// A top-level alternative once anchors at its edges are taken off: its
// items (in sequence) and whether it was anchored at the start / end.
struct AnchoredAlternative {
  bool start_anchored = false;
  bool end_anchored = false;
  std::vector<int> items;
};

// Splits the pattern into top-level alternatives with their edge anchors
// removed, distributing groups at the edges that contain anchors
// ("(^a|b)c" is "^ac" and "bc"). Anchors left anywhere else are an error.
class AnchorSplitter {
 public:
  explicit AnchorSplitter(const std::vector<Node>& nodes) : nodes_(nodes) {}

  Result<std::vector<AnchoredAlternative>> split(int root) {
    std::vector<AnchoredAlternative> start_split;
    if (!take_start_anchors({root}, false, start_split)) return too_many();
    std::vector<AnchoredAlternative> result;
    for (AnchoredAlternative& alternative : start_split) {
      std::vector<AnchoredAlternative> end_split;
      if (!take_end_anchors(alternative.items, false, end_split)) return too_many();
      for (AnchoredAlternative& done : end_split) {
        done.start_anchored = alternative.start_anchored;
        for (int item : done.items) PAGODA_RETURN_IF_ERROR(check_no_anchor(item));
        result.push_back(std::move(done));
        if (result.size() > kMaxAnchoredAlternatives) return too_many();
      }
    }
    return result;
  }

 private:
  static Status too_many() {
    return Status::invalid_argument("regex: more than " + std::to_string(kMaxAnchoredAlternatives) +
                                    " alternatives with anchors in groups");
  }

  bool take_start_anchors(std::vector<int> items, bool anchored, std::vector<AnchoredAlternative>& out) {
    size_t first = 0;
    while (first < items.size()) {
      const Node& node = nodes_[items[first]];
      if (node.kind == Node::Kind::kStartAnchor) {
        anchored = true;
        ++first;
      } else if (node.kind == Node::Kind::kEmpty) {
        ++first;
      } else if (node.kind == Node::Kind::kConcat && node.has_anchor) {
        std::vector<int> spliced(node.children);
        spliced.insert(spliced.end(), items.begin() + static_cast<ptrdiff_t>(first) + 1, items.end());
        items = std::move(spliced);
        first = 0;
      } else if (node.kind == Node::Kind::kAlternation && node.has_anchor) {
        for (int child : node.children) {
          std::vector<int> branch{child};
          branch.insert(branch.end(), items.begin() + static_cast<ptrdiff_t>(first) + 1, items.end());
          if (!take_start_anchors(std::move(branch), anchored, out)) return false;
        }
        return true;
      } else {
        break;
      }
    }
    items.erase(items.begin(), items.begin() + static_cast<ptrdiff_t>(first));
    out.push_back({anchored, false, std::move(items)});
    return out.size() <= kMaxAnchoredAlternatives;
  }

  bool take_end_anchors(std::vector<int> items, bool anchored, std::vector<AnchoredAlternative>& out) {
    while (!items.empty()) {
      const Node& node = nodes_[items.back()];
      if (node.kind == Node::Kind::kEndAnchor) {
        anchored = true;
        items.pop_back();
      } else if (node.kind == Node::Kind::kEmpty) {
        items.pop_back();
      } else if (node.kind == Node::Kind::kConcat && node.has_anchor) {
        items.pop_back();
        items.insert(items.end(), node.children.begin(), node.children.end());
      } else if (node.kind == Node::Kind::kAlternation && node.has_anchor) {
        items.pop_back();
        for (int child : node.children) {
          std::vector<int> branch(items);
          branch.push_back(child);
          if (!take_end_anchors(std::move(branch), anchored, out)) return false;
        }
        return true;
      } else {
        break;
      }
    }
    out.push_back({false, anchored, std::move(items)});
    return out.size() <= kMaxAnchoredAlternatives;
  }

  Status check_no_anchor(int index) const {
    const Node& node = nodes_[index];
    if (!node.has_anchor) return Status::ok();
    if (node.kind == Node::Kind::kStartAnchor) {
      return Status::invalid_argument("regex: anchor ^ at offset " + std::to_string(node.offset) +
                                      " is only supported at the start of the pattern or of a top-level alternative");
    }
    if (node.kind == Node::Kind::kEndAnchor) {
      return Status::invalid_argument("regex: anchor $ at offset " + std::to_string(node.offset) +
                                      " is only supported at the end of the pattern or of a top-level alternative");
    }
    for (int child : node.children) PAGODA_RETURN_IF_ERROR(check_no_anchor(child));
    return Status::ok();
  }

  const std::vector<Node>& nodes_;
};

// Turns nodes into grammar sequences. A language is std::optional<Sequence>:
// nullopt is the empty language (a class with no code point, "[]").
using Language = std::optional<Sequence>;

class Emitter {
 public:
  Emitter(Grammar& grammar, const std::vector<Node>& nodes, const RegexOptions& options)
      : grammar_(grammar), nodes_(nodes), options_(options), whole_(nodes.size()), non_empty_(nodes.size()) {}

  const Status& status() const { return error_; }

  // The language of `index`.
  Language emit(int index) {
    Memo& memo = whole_[static_cast<size_t>(index)];
    if (!memo.done) {
      memo.value = emit_uncached(index);
      memo.done = true;
    }
    return memo.value;
  }

  // The language of `items` in sequence.
  Language emit_items(const std::vector<int>& items) {
    Sequence out;
    for (int item : items) {
      Language part = emit(item);
      if (!part) return std::nullopt;
      out.insert(out.end(), part->begin(), part->end());
    }
    return out;
  }

  // The language of `ranges` (normalized, no surrogates), one code point.
  Language emit_class(const Ranges& ranges) {
    if (ranges.empty()) return std::nullopt;
    if (ranges.size() == 1 && ranges[0].first == ranges[0].last) {
      const uint32_t cp = ranges[0].first;
      if (!options_.json_string || (cp >= 0x20 && cp != '"' && cp != '\\' && cp != '/')) {
        std::string text;
        append_utf8(text, cp);
        return grammar_.literal(text);
      }
    }
    if (!options_.json_string) return Sequence{grammar_.codepoints(ranges, false)};
    std::vector<uint32_t> key;
    for (const CodepointRange& r : ranges) {
      key.push_back(r.first);
      key.push_back(r.last);
    }
    auto found = json_classes_.find(key);
    if (found != json_classes_.end()) return found->second;
    Sequence emitted = emit_json_class(ranges);
    json_classes_.emplace(std::move(key), emitted);
    return emitted;
  }

  // Zero or more of any code point (as JSON string content in json mode).
  Sequence any_text() {
    if (!any_text_) {
      Language any = options_.json_string ? emit_class({{0, kMaxCodepoint}}) : Sequence{grammar_.any_codepoint()};
      any_text_ = Sequence{grammar_.star(*any)};
    }
    return *any_text_;
  }

  // An element for a language (a rule with no alternatives for the empty one).
  Element to_element(const Language& language, const char* name) {
    if (!language) return Grammar::ref(grammar_.add_rule(std::string(name) + "_nothing"));
    if (language->size() == 1) return (*language)[0];
    return grammar_.choice({*language}, name);
  }

  Language choice(std::vector<Language> alternatives, const char* name) {
    std::vector<Sequence> live;
    for (Language& alternative : alternatives) {
      if (alternative) live.push_back(std::move(*alternative));
    }
    if (live.empty()) return std::nullopt;
    if (live.size() == 1) return std::move(live[0]);
    return Sequence{grammar_.choice(std::move(live), name)};
  }

 private:
  struct Memo {
    bool done = false;
    Language value;
  };

  Language emit_uncached(int index) {
    if (!error_.is_ok()) return std::nullopt;
    const Node& node = nodes_[static_cast<size_t>(index)];
    switch (node.kind) {
      case Node::Kind::kEmpty:
      case Node::Kind::kStartAnchor:  // only reached when the anchor is satisfied (split off before)
      case Node::Kind::kEndAnchor:
        return Sequence{};
      case Node::Kind::kClass:
        return emit_class(node.ranges);
      case Node::Kind::kConcat:
        return emit_items(node.children);
      case Node::Kind::kAlternation: {
        std::vector<Language> alternatives;
        for (int child : node.children) alternatives.push_back(emit(child));
        return choice(std::move(alternatives), "regex_group");
      }
      case Node::Kind::kRepeat: {
        const int body = node.children[0];
        if (nodes_[body].nullable) {
          // body{m,M} with an empty-matching body is (body minus "")
          // {0,M}: the repetition rules then never recurse without a byte.
          Language non_empty = emit_non_empty(body);
          if (!non_empty) return Sequence{};
          return repeat(*non_empty, 0, node.max, node);
        }
        Language body_language = emit(body);
        if (!body_language) return node.min == 0 ? Language(Sequence{}) : std::nullopt;
        return repeat(*body_language, node.min, node.max, node);
      }
    }
    return std::nullopt;
  }

  // The language of `index` without the empty string.
  Language emit_non_empty(int index) {
    Memo& memo = non_empty_[static_cast<size_t>(index)];
    if (!memo.done) {
      memo.value = emit_non_empty_uncached(index);
      memo.done = true;
    }
    return memo.value;
  }

  Language emit_non_empty_uncached(int index) {
    if (!error_.is_ok()) return std::nullopt;
    const Node& node = nodes_[static_cast<size_t>(index)];
    if (!node.nullable) return emit(index);
    switch (node.kind) {
      case Node::Kind::kEmpty:
      case Node::Kind::kStartAnchor:
      case Node::Kind::kEndAnchor:
      case Node::Kind::kClass:
        return std::nullopt;
      case Node::Kind::kConcat: {
        // A non-empty string has a first item that matches non-empty text;
        // the items before it match "".
        std::vector<Language> alternatives;
        const std::vector<int>& items = node.children;
        for (size_t first = 0; first < items.size(); ++first) {
          Language head = emit_non_empty(items[first]);
          if (head) {
            std::vector<int> rest(items.begin() + static_cast<ptrdiff_t>(first) + 1, items.end());
            Language tail = emit_items(rest);
            if (tail) {
              head->insert(head->end(), tail->begin(), tail->end());
              alternatives.push_back(std::move(head));
            }
          }
          if (!nodes_[items[first]].nullable) break;
        }
        return choice(std::move(alternatives), "regex_group");
      }
      case Node::Kind::kAlternation: {
        std::vector<Language> alternatives;
        for (int child : node.children) alternatives.push_back(emit_non_empty(child));
        return choice(std::move(alternatives), "regex_group");
      }
      case Node::Kind::kRepeat: {
        if (node.max == 0) return std::nullopt;
        const int body = node.children[0];
        Language non_empty_body = emit_non_empty(body);
        if (!non_empty_body) return std::nullopt;
        return repeat(*non_empty_body, 1, node.max, node);
      }
    }
    return std::nullopt;
  }

  // `body` (non-nullable) from min to max times.
  Language repeat(Sequence body, uint32_t min, uint32_t max, const Node& node) {
    if (max == 0) return Sequence{};
    if (body.size() > 1) body = Sequence{grammar_.choice({std::move(body)}, "regex_repeated")};
    if (min == 0 && max == kUnbounded) return Sequence{grammar_.star(std::move(body))};
    if (min == 1 && max == kUnbounded) return Sequence{grammar_.plus(std::move(body))};
    if (min == 0 && max == 1) return Sequence{grammar_.optional(std::move(body))};
    if (min == 1 && max == 1) return body;
    // Grammar::repeat's size: one unit per required copy, then a star (two
    // elements) or a chain of optional tails (two elements each).
    const uint64_t cost = uint64_t{min} + (max == kUnbounded ? 2 : 2 * (uint64_t{max} - min));
    if (grammar_.element_count() + cost > Grammar::kMaxElements) {
      error_ = Status::invalid_argument("regex: the repetition at offset " + std::to_string(node.offset) +
                                        " makes the grammar too large (over " + std::to_string(Grammar::kMaxElements) +
                                        " elements)");
      return std::nullopt;
    }
    return grammar_.repeat(body, min, max);
  }

  // A code point class as JSON string content.
  Sequence emit_json_class(const Ranges& ranges) {
    std::vector<Sequence> alternatives;
    Ranges raw;
    for (const CodepointRange& r : ranges) {
      if (r.last < 0x20) continue;
      raw.push_back({std::max<uint32_t>(r.first, 0x20), r.last});
    }
    // Take '"' and '\\' out of the raw part.
    for (uint32_t special : {uint32_t{'"'}, uint32_t{'\\'}}) {
      Ranges without;
      for (const CodepointRange& r : raw) {
        if (special < r.first || special > r.last) {
          without.push_back(r);
          continue;
        }
        if (r.first < special) without.push_back({r.first, special - 1});
        if (r.last > special) without.push_back({special + 1, r.last});
      }
      raw = std::move(without);
    }
    if (!raw.empty()) alternatives.push_back(Sequence{grammar_.codepoints(raw, false)});
    if (ranges_contain(ranges, '"')) alternatives.push_back(grammar_.literal("\\\""));
    if (ranges_contain(ranges, '\\')) alternatives.push_back(grammar_.literal("\\\\"));
    if (ranges_contain(ranges, '/')) alternatives.push_back(grammar_.literal("\\/"));
    // Control characters: a short escape, else \u00XX; the \u00XX forms are
    // grouped by their high hex digit, the low one a byte set (either case).
    ByteSet low_digits[2];
    for (uint32_t c = 0; c < 0x20; ++c) {
      if (!ranges_contain(ranges, c)) continue;
      switch (c) {
        case 0x08:
          alternatives.push_back(grammar_.literal("\\b"));
          continue;
        case 0x09:
          alternatives.push_back(grammar_.literal("\\t"));
          continue;
        case 0x0A:
          alternatives.push_back(grammar_.literal("\\n"));
          continue;
        case 0x0C:
          alternatives.push_back(grammar_.literal("\\f"));
          continue;
        case 0x0D:
          alternatives.push_back(grammar_.literal("\\r"));
          continue;
        default:
          break;
      }
      const uint32_t low = c & 0xF;
      ByteSet& digits = low_digits[c >> 4];
      if (low < 10) {
        digits.add(static_cast<uint8_t>('0' + low));
      } else {
        digits.add(static_cast<uint8_t>('a' + low - 10));
        digits.add(static_cast<uint8_t>('A' + low - 10));
      }
    }
    for (int high = 0; high < 2; ++high) {
      if (low_digits[high].empty()) continue;
      Sequence escape = grammar_.literal(high == 0 ? "\\u000" : "\\u001");
      escape.push_back(grammar_.bytes(low_digits[high]));
      alternatives.push_back(std::move(escape));
    }
    if (alternatives.size() == 1) return std::move(alternatives[0]);
    return Sequence{grammar_.choice(std::move(alternatives), "regex_json_char")};
  }

  Grammar& grammar_;
  const std::vector<Node>& nodes_;
  const RegexOptions& options_;
  std::vector<Memo> whole_;
  std::vector<Memo> non_empty_;
  std::map<std::vector<uint32_t>, Sequence> json_classes_;
  std::optional<Sequence> any_text_;
  Status error_;
};

}  // namespace

Result<Element> compile_regex(Grammar& grammar, std::string_view pattern, const RegexOptions& options) {
  Parser parser(pattern);
  Result<int> root = parser.parse();
  if (!root) return root.status();
  const std::vector<Node>& nodes = parser.nodes();

  std::vector<AnchoredAlternative> alternatives;
  if (nodes[static_cast<size_t>(*root)].has_anchor) {
    Result<std::vector<AnchoredAlternative>> split = AnchorSplitter(nodes).split(*root);
    if (!split) return split.status();
    alternatives = std::move(*split);
  } else {
    alternatives.push_back({false, false, {*root}});
  }

  Emitter emitter(grammar, nodes, options);
  Language result;
  if (!options.search) {
    std::vector<Language> bodies;
    for (const AnchoredAlternative& alternative : alternatives) bodies.push_back(emitter.emit_items(alternative.items));
    result = emitter.choice(std::move(bodies), "regex_alternatives");
  } else {
    // Alternatives grouped by their anchoring; unanchored edges take any text.
    std::vector<Language> groups;
    for (int anchoring = 0; anchoring < 4; ++anchoring) {
      const bool start_anchored = (anchoring & 1) != 0;
      const bool end_anchored = (anchoring & 2) != 0;
      std::vector<Language> bodies;
      bool any_in_group = false;
      for (const AnchoredAlternative& alternative : alternatives) {
        if (alternative.start_anchored != start_anchored || alternative.end_anchored != end_anchored) continue;
        any_in_group = true;
        bodies.push_back(emitter.emit_items(alternative.items));
      }
      if (!any_in_group) continue;
      Language body = emitter.choice(std::move(bodies), "regex_alternatives");
      if (!body) continue;
      Sequence searched;
      if (!start_anchored) searched = emitter.any_text();
      searched.insert(searched.end(), body->begin(), body->end());
      if (!end_anchored) {
        const Sequence any = emitter.any_text();
        searched.insert(searched.end(), any.begin(), any.end());
      }
      groups.push_back(std::move(searched));
    }
    result = emitter.choice(std::move(groups), "regex_search");
  }
  if (!emitter.status().is_ok()) return emitter.status();
  if (grammar.element_count() > Grammar::kMaxElements) {
    return Status::invalid_argument("regex: the pattern makes the grammar too large (over " +
                                    std::to_string(Grammar::kMaxElements) + " elements)");
  }
  return emitter.to_element(result, "regex");
}

Result<Grammar> regex_grammar(std::string_view pattern, const RegexOptions& options) {
  Grammar grammar;
  Result<Element> element = compile_regex(grammar, pattern, options);
  if (!element) return element.status();
  grammar.set_root(grammar.add_rule("root", {Sequence{*element}}));
  PAGODA_RETURN_IF_ERROR(grammar.validate());
  return grammar;
}

}  // namespace pagoda::structured
