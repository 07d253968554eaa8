// JinjaTemplate::parse: template text -> chunks -> tokens -> syntax tree.
#include "chat/jinja.h"
#include "chat/jinja_ast.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <map>

namespace pagoda {

namespace {

Status syntax(const std::string& what, size_t pos) {
  return Status::invalid_argument("chat template: " + what + " (at byte " + std::to_string(pos) + ")");
}

// ---- template chunks (text / {{ }} / {% %}) with whitespace control -------------

struct Chunk {
  enum Kind { kText, kExpr, kStmt } kind;
  std::string body;
  size_t pos;
};

Result<std::vector<Chunk>> chunk(std::string_view src) {
  std::vector<Chunk> out;
  size_t i = 0;
  bool strip_next = false;    // previous tag ended with '-'
  bool trim_newline = false;  // previous tag was a block/comment tag (trim_blocks)
  while (i <= src.size()) {
    size_t open = src.find('{', i);
    while (open != std::string_view::npos && open + 1 < src.size() && src[open + 1] != '{' && src[open + 1] != '%' &&
           src[open + 1] != '#')
      open = src.find('{', open + 1);
    if (open != std::string_view::npos && open + 1 >= src.size()) open = std::string_view::npos;
    std::string text(src.substr(i, (open == std::string_view::npos ? src.size() : open) - i));
    if (strip_next) {
      size_t k = 0;
      while (k < text.size() && std::isspace(static_cast<unsigned char>(text[k]))) ++k;
      text.erase(0, k);
    } else if (trim_newline && !text.empty() && text[0] == '\n') {
      text.erase(0, 1);
    }
    if (open == std::string_view::npos) {
      if (!text.empty()) out.push_back({Chunk::kText, text, i});
      break;
    }
    const char type = src[open + 1];
    const bool minus_left = open + 2 < src.size() && src[open + 2] == '-';
    const bool plus_left = open + 2 < src.size() && src[open + 2] == '+';
    if (minus_left) {
      while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    } else if (type != '{' && !plus_left) {  // lstrip_blocks: spaces/tabs from a line start to the tag
      size_t p = open;
      while (p > i && (src[p - 1] == ' ' || src[p - 1] == '\t')) --p;
      if (p == 0 || src[p - 1] == '\n') text.erase(text.size() - std::min(text.size(), open - p));
    }
    if (!text.empty()) out.push_back({Chunk::kText, text, i});
    const std::string_view close = type == '{' ? "}}" : type == '%' ? "%}" : "#}";
    const size_t body_start = open + 2 + (minus_left || plus_left ? 1 : 0);
    size_t end = std::string_view::npos;  // the first close outside string literals
    char quote = 0;
    for (size_t k = body_start; k + 1 < src.size(); ++k) {
      const char ch = src[k];
      if (quote != 0) {
        if (ch == '\\') ++k;
        else if (ch == quote) quote = 0;
      } else if (type != '#' && (ch == '\'' || ch == '"')) {
        quote = ch;
      } else if (src.compare(k, 2, close) == 0) {
        end = k;
        break;
      }
    }
    if (end == std::string_view::npos) return syntax("unclosed tag", open);
    size_t body_end = end;
    strip_next = false;
    if (body_end > body_start && src[body_end - 1] == '-') {
      --body_end;
      strip_next = true;
    }
    if (type == '{') out.push_back({Chunk::kExpr, std::string(src.substr(body_start, body_end - body_start)), open});
    if (type == '%') out.push_back({Chunk::kStmt, std::string(src.substr(body_start, body_end - body_start)), open});
    trim_newline = type != '{';
    i = end + 2;
  }
  return out;
}

// ---- expression tokens -----------------------------------------------------------

struct Tok {
  enum Kind { kName, kStr, kInt, kFloat, kOp, kEnd } kind;
  std::string s;
  int64_t i = 0;
  double f = 0;
};

Result<std::vector<Tok>> lex(const std::string& s, size_t pos) {
  std::vector<Tok> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({Tok::kName, s.substr(i, j - i)});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      bool is_float = false;
      if (j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]))) {
        is_float = true;
        ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {  // an exponent: 1e16, 1.5e-7
        size_t k = j + 1;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        if (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) {
          while (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) ++k;
          j = k;
          is_float = true;
        }
      }
      Tok t{Tok::kInt, s.substr(i, j - i)};
      // No exceptions: an integer beyond int64 becomes a float, 1e999 infinity.
      if (is_float || std::from_chars(t.s.data(), t.s.data() + t.s.size(), t.i).ec != std::errc()) {
        t.kind = Tok::kFloat;
        t.f = std::strtod(t.s.c_str(), nullptr);
      }
      out.push_back(t);
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string v;
      size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] != '\\' || j + 1 >= s.size()) {
          v.push_back(s[j]);
          continue;
        }
        const char e = s[++j];
        switch (e) {
          case 'n':
            v.push_back('\n');
            break;
          case 't':
            v.push_back('\t');
            break;
          case 'r':
            v.push_back('\r');
            break;
          case '\\':
            v.push_back('\\');
            break;
          case '\'':
            v.push_back('\'');
            break;
          case '"':
            v.push_back('"');
            break;
          case '\n':
            break;
          default:
            v.push_back('\\');
            v.push_back(e);
        }
      }
      if (j >= s.size()) return syntax("unterminated string", pos);
      out.push_back({Tok::kStr, v});
      i = j + 1;
    } else {
      static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",",
                                  ":",  ".",  "|",  "~",  "+",  "-",  "*", "/", "%", "<", ">", "="};
      bool found = false;
      for (const char* op : ops) {
        const size_t n = std::char_traits<char>::length(op);
        if (s.compare(i, n, op) == 0) {
          out.push_back({Tok::kOp, op});
          i += n;
          found = true;
          break;
        }
      }
      if (!found) return syntax(std::string("unexpected character '") + c + "'", pos);
    }
  }
  out.push_back({Tok::kEnd, ""});
  return out;
}

// ---- expression parser -----------------------------------------------------------

class ExprParser {
 public:
  ExprParser(std::vector<Tok> toks, size_t pos) : t_(std::move(toks)), pos_(pos) {}

  Result<ExprPtr> parse_expr() { return ternary(); }
  // After '{% filter': NAME or NAME(args), as a filter node whose input
  // (args[0]) is a placeholder.
  Result<ExprPtr> filter_spec() {
    auto n = name();
    if (!n) return n.status();
    auto e = make(EK::kFilter, *n);
    e->args.push_back(make(EK::kLit));
    if (is_op("(")) {
      skip();
      Status s = call_args(e.get());
      if (!s.is_ok()) return s;
    }
    return e;
  }
  bool at_end() const { return t_[k_].kind == Tok::kEnd; }
  bool is_name(const char* n) const { return t_[k_].kind == Tok::kName && t_[k_].s == n; }
  bool is_op(const char* o) const { return t_[k_].kind == Tok::kOp && t_[k_].s == o; }
  const Tok& peek() const { return t_[k_]; }
  void skip() {
    if (!at_end()) ++k_;
  }
  Status expect_op(const char* o) {
    if (!is_op(o)) return err(std::string("expected '") + o + "'");
    ++k_;
    return Status::ok();
  }
  Result<std::string> name() {
    if (t_[k_].kind != Tok::kName) return err("expected a name");
    return t_[k_++].s;
  }
  Status err(const std::string& what) const {
    return syntax(what + (at_end() ? " at the end of the tag" : " near '" + t_[k_].s + "'"), pos_);
  }

 private:
  // Sets e's depth from its operands; an error beyond kMaxExprTreeDepth.
  Status seal(Expr* e) const {
    int d = 0;
    for (const auto& x : e->args)
      if (x) d = std::max(d, x->depth);
    for (const auto& kv : e->kwargs)
      if (kv.second) d = std::max(d, kv.second->depth);
    e->depth = d + 1;
    return e->depth > kMaxExprTreeDepth ? err("expression nested too deeply") : Status::ok();
  }

  static ExprPtr make(EK k, std::string name = {}) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->name = std::move(name);
    return e;
  }
  // A node of kind k (operator `op` for kBin) over the operands a and b.
  static ExprPtr binary(EK k, ExprPtr a, ExprPtr b, std::string op = {}) {
    auto e = make(k, std::move(op));
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

#define PAGODA_TRY(var, expr)            \
  auto var##_r = (expr);                 \
  if (!var##_r) return var##_r.status(); \
  ExprPtr var = std::move(var##_r).value()

  // Counts the nesting of the recursive rules below (parentheses, lists,
  // call arguments, unary chains) against kMaxExprDepth.
  struct DepthGuard {
    explicit DepthGuard(int* d) : d_(d) { ++*d_; }
    ~DepthGuard() { --*d_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;
    int* d_;
  };

  Result<ExprPtr> ternary() {
    DepthGuard guard(&depth_);
    if (depth_ > kMaxExprDepth) return err("expression nested too deeply");
    PAGODA_TRY(a, or_expr());
    if (!is_name("if")) return a;
    skip();
    PAGODA_TRY(c, or_expr());
    ExprPtr b = make(EK::kLit);  // undefined when no else
    if (is_name("else")) {
      skip();
      auto br = ternary();
      if (!br) return br.status();
      b = std::move(br).value();
    }
    auto e = make(EK::kCond);
    e->args.push_back(std::move(c));
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    if (Status sealed = seal(e.get()); !sealed.is_ok()) return sealed;
    return e;
  }
  Result<ExprPtr> or_expr() {
    PAGODA_TRY(a, and_expr());
    while (is_name("or")) {
      skip();
      PAGODA_TRY(b, and_expr());
      a = binary(EK::kOr, std::move(a), std::move(b));
      if (Status sealed = seal(a.get()); !sealed.is_ok()) return sealed;
    }
    return a;
  }
  Result<ExprPtr> and_expr() {
    PAGODA_TRY(a, not_expr());
    while (is_name("and")) {
      skip();
      PAGODA_TRY(b, not_expr());
      a = binary(EK::kAnd, std::move(a), std::move(b));
      if (Status sealed = seal(a.get()); !sealed.is_ok()) return sealed;
    }
    return a;
  }
  Result<ExprPtr> not_expr() {
    DepthGuard guard(&depth_);
    if (depth_ > kMaxExprDepth) return err("expression nested too deeply");
    if (is_name("not")) {
      skip();
      PAGODA_TRY(a, not_expr());
      auto e = make(EK::kNot);
      e->args.push_back(std::move(a));
      if (Status sealed = seal(e.get()); !sealed.is_ok()) return sealed;
      return e;
    }
    return compare();
  }
  Result<ExprPtr> compare() {
    PAGODA_TRY(a, concat());
    for (;;) {
      std::string op;
      if (is_op("==") || is_op("!=") || is_op("<") || is_op(">") || is_op("<=") || is_op(">=")) {
        op = peek().s;
        skip();
      } else if (is_name("in")) {
        op = "in";
        skip();
      } else if (is_name("not") && k_ + 1 < t_.size() && t_[k_ + 1].kind == Tok::kName && t_[k_ + 1].s == "in") {
        op = "not in";
        k_ += 2;
      } else {
        return a;
      }
      PAGODA_TRY(b, concat());
      a = binary(EK::kBin, std::move(a), std::move(b), op);
      if (Status sealed = seal(a.get()); !sealed.is_ok()) return sealed;
    }
  }
  Result<ExprPtr> concat() {
    PAGODA_TRY(a, additive());
    while (is_op("~")) {
      skip();
      PAGODA_TRY(b, additive());
      a = binary(EK::kBin, std::move(a), std::move(b), "~");
      if (Status sealed = seal(a.get()); !sealed.is_ok()) return sealed;
    }
    return a;
  }
  Result<ExprPtr> additive() {
    PAGODA_TRY(a, multiplicative());
    while (is_op("+") || is_op("-")) {
      const std::string op = peek().s;
      skip();
      PAGODA_TRY(b, multiplicative());
      a = binary(EK::kBin, std::move(a), std::move(b), op);
      if (Status sealed = seal(a.get()); !sealed.is_ok()) return sealed;
    }
    return a;
  }
  Result<ExprPtr> multiplicative() {
    PAGODA_TRY(a, unary());
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = peek().s;
      skip();
      PAGODA_TRY(b, unary());
      a = binary(EK::kBin, std::move(a), std::move(b), op);
      if (Status sealed = seal(a.get()); !sealed.is_ok()) return sealed;
    }
    return a;
  }
  Result<ExprPtr> unary() {
    DepthGuard guard(&depth_);
    if (depth_ > kMaxExprDepth) return err("expression nested too deeply");
    if (is_op("-")) {
      skip();
      PAGODA_TRY(a, unary());
      auto e = make(EK::kNeg);
      e->args.push_back(std::move(a));
      if (Status sealed = seal(e.get()); !sealed.is_ok()) return sealed;
      return e;
    }
    if (is_op("+")) skip();
    return postfix();
  }
  Status call_args(Expr* e) {
    // after '('
    while (!is_op(")")) {
      if (peek().kind == Tok::kName && k_ + 1 < t_.size() && t_[k_ + 1].kind == Tok::kOp && t_[k_ + 1].s == "=") {
        std::string key = peek().s;
        k_ += 2;
        auto v = parse_expr();
        if (!v) return v.status();
        e->kwargs.emplace_back(std::move(key), std::move(v).value());
      } else {
        auto v = parse_expr();
        if (!v) return v.status();
        e->args.push_back(std::move(v).value());
      }
      if (!is_op(",")) break;
      skip();
    }
    return expect_op(")");
  }
  Result<ExprPtr> postfix() {
    PAGODA_TRY(a, primary());
    for (;;) {
      if (is_op(".")) {
        skip();
        auto n = name();
        if (!n) return n.status();
        auto e = make(EK::kAttr, *n);
        e->args.push_back(std::move(a));
        a = std::move(e);
        if (Status sealed = seal(a.get()); !sealed.is_ok()) return sealed;
      } else if (is_op("[")) {
        skip();
        ExprPtr parts[3];
        bool slice = false;
        for (int p = 0; p < 3; ++p) {
          if (!is_op(":") && !is_op("]")) {
            auto v = parse_expr();
            if (!v) return v.status();
            parts[p] = std::move(v).value();
          }
          if (is_op(":")) {
            slice = true;
            skip();
          } else {
            break;
          }
        }
        Status s = expect_op("]");
        if (!s.is_ok()) return s;
        auto e = make(slice ? EK::kSlice : EK::kIndex);
        e->args.push_back(std::move(a));
        if (!slice && !parts[0]) return err("empty subscript");
        for (int p = 0; p < (slice ? 3 : 1); ++p) e->args.push_back(std::move(parts[p]));
        a = std::move(e);
        if (Status sealed = seal(a.get()); !sealed.is_ok()) return sealed;
      } else if (is_op("(")) {
        skip();
        auto e = make(EK::kCall);
        e->args.push_back(std::move(a));
        Status s = call_args(e.get());
        if (!s.is_ok()) return s;
        a = std::move(e);
        if (Status sealed = seal(a.get()); !sealed.is_ok()) return sealed;
      } else if (is_op("|")) {
        skip();
        auto n = name();
        if (!n) return n.status();
        auto e = make(EK::kFilter, *n);
        e->args.push_back(std::move(a));
        if (is_op("(")) {
          skip();
          Status s = call_args(e.get());
          if (!s.is_ok()) return s;
        }
        a = std::move(e);
        if (Status sealed = seal(a.get()); !sealed.is_ok()) return sealed;
      } else if (is_name("is")) {
        skip();
        auto e = make(EK::kTest);
        if (is_name("not")) {
          skip();
          e->negated = true;
        }
        if (is_op("==")) {
          skip();
          e->name = "eq";
        } else {
          auto n = name();
          if (!n) return n.status();
          e->name = *n;
        }
        e->args.push_back(std::move(a));
        if (is_op("(")) {
          skip();
          Status s = call_args(e.get());
          if (!s.is_ok()) return s;
        } else if (!at_end() && (peek().kind == Tok::kStr || peek().kind == Tok::kInt || peek().kind == Tok::kFloat ||
                                 (peek().kind == Tok::kName && peek().s != "and" && peek().s != "or" &&
                                  peek().s != "else" && peek().s != "if"))) {
          PAGODA_TRY(arg, primary());  // "is divisibleby 3", "is equalto 'x'"
          e->args.push_back(std::move(arg));
        }
        a = std::move(e);
        if (Status sealed = seal(a.get()); !sealed.is_ok()) return sealed;
      } else {
        return a;
      }
    }
  }
  Result<ExprPtr> primary() {
    const Tok t = peek();
    if (t.kind == Tok::kStr) {
      skip();
      std::string s = t.s;
      while (peek().kind == Tok::kStr) {  // adjacent literals concatenate
        s += peek().s;
        skip();
      }
      auto e = make(EK::kLit);
      e->lit = JinjaValue(s);
      return e;
    }
    if (t.kind == Tok::kInt || t.kind == Tok::kFloat) {
      skip();
      auto e = make(EK::kLit);
      e->lit = t.kind == Tok::kInt ? JinjaValue(t.i) : JinjaValue(t.f);
      return e;
    }
    if (t.kind == Tok::kName) {
      skip();
      auto e = make(EK::kLit);
      if (t.s == "true" || t.s == "True") e->lit = JinjaValue(true);
      else if (t.s == "false" || t.s == "False") e->lit = JinjaValue(false);
      else if (t.s == "none" || t.s == "None") e->lit = JinjaValue(nullptr);
      else e = make(EK::kVar, t.s);
      return e;
    }
    if (t.kind == Tok::kOp && t.s == "(") {
      skip();
      PAGODA_TRY(a, parse_expr());
      if (is_op(",")) {  // a tuple: a list tagged as one
        auto l = make(EK::kList, "tuple");
        l->args.push_back(std::move(a));
        while (is_op(",")) {
          skip();
          if (is_op(")")) break;
          PAGODA_TRY(b, parse_expr());
          l->args.push_back(std::move(b));
        }
        a = std::move(l);
        if (Status sealed = seal(a.get()); !sealed.is_ok()) return sealed;
      }
      Status s = expect_op(")");
      if (!s.is_ok()) return s;
      return a;
    }
    if (t.kind == Tok::kOp && t.s == "[") {
      skip();
      auto l = make(EK::kList);
      while (!is_op("]")) {
        PAGODA_TRY(v, parse_expr());
        l->args.push_back(std::move(v));
        if (!is_op(",")) break;
        skip();
      }
      Status s = expect_op("]");
      if (!s.is_ok()) return s;
      if (Status sealed = seal(l.get()); !sealed.is_ok()) return sealed;
      return l;
    }
    if (t.kind == Tok::kOp && t.s == "{") {
      skip();
      auto d = make(EK::kDict);
      while (!is_op("}")) {
        PAGODA_TRY(k, parse_expr());
        Status s = expect_op(":");
        if (!s.is_ok()) return s;
        PAGODA_TRY(v, parse_expr());
        d->args.push_back(std::move(k));
        d->args.push_back(std::move(v));
        if (!is_op(",")) break;
        skip();
      }
      Status s = expect_op("}");
      if (!s.is_ok()) return s;
      if (Status sealed = seal(d.get()); !sealed.is_ok()) return sealed;
      return d;
    }
    return err("expected a value");
  }
#undef PAGODA_TRY

  std::vector<Tok> t_;
  size_t k_ = 0;
  size_t pos_;
  int depth_ = 0;
};

Result<ExprPtr> parse_full_expr(const std::string& s, size_t pos) {
  auto toks = lex(s, pos);
  if (!toks) return toks.status();
  ExprParser p(std::move(toks).value(), pos);
  auto e = p.parse_expr();
  if (!e) return e;
  if (!p.at_end()) return p.err("unexpected text after the expression");
  return e;
}

// ---- statement parser -------------------------------------------------------------

class StmtParser {
 public:
  explicit StmtParser(std::vector<Chunk> chunks) : c_(std::move(chunks)) {}

  // Parses until a statement whose keyword is in `ends` (left unconsumed,
  // returned in *end_kw) or the end of input (only when ends is empty).
  Result<NodePtr> body(const std::vector<std::string>& ends, std::string* end_kw) {
    if (depth_ >= kMaxBlockDepth) return syntax("blocks nested too deeply", i_ < c_.size() ? c_[i_].pos : 0);
    ++depth_;
    auto r = body_inner(ends, end_kw);
    --depth_;
    return r;
  }

 private:
  Result<NodePtr> body_inner(const std::vector<std::string>& ends, std::string* end_kw) {
    auto node = std::make_unique<Node>();
    node->kind = NK::kBody;
    while (i_ < c_.size()) {
      const Chunk& ch = c_[i_];
      if (ch.kind == Chunk::kText) {
        auto n = std::make_unique<Node>();
        n->kind = NK::kText;
        n->text = ch.body;
        node->children.push_back(std::move(n));
        ++i_;
        continue;
      }
      if (ch.kind == Chunk::kExpr) {
        auto e = parse_full_expr(ch.body, ch.pos);
        if (!e) return e.status();
        auto n = std::make_unique<Node>();
        n->kind = NK::kOut;
        n->expr = std::move(e).value();
        node->children.push_back(std::move(n));
        ++i_;
        continue;
      }
      auto toks = lex(ch.body, ch.pos);
      if (!toks) return toks.status();
      ExprParser p(std::move(toks).value(), ch.pos);
      auto kw = p.name();
      if (!kw) return kw.status();
      if (std::find(ends.begin(), ends.end(), *kw) != ends.end()) {
        *end_kw = *kw;
        return node;
      }
      ++i_;
      auto st = statement(*kw, p, ch.pos);
      if (!st) return st.status();
      if (*st) node->children.push_back(std::move(st).value());
    }
    if (!ends.empty()) return syntax("missing {% " + ends.back() + " %}", c_.empty() ? 0 : c_.back().pos);
    return node;
  }

  // The statement chunk currently at i_ (an end keyword): its parser.
  Result<ExprParser> current() {
    const Chunk& ch = c_[i_++];
    auto toks = lex(ch.body, ch.pos);
    if (!toks) return toks.status();
    ExprParser p(std::move(toks).value(), ch.pos);
    p.skip();  // the keyword
    return p;
  }

  Result<NodePtr> statement(const std::string& kw, ExprParser& p, size_t pos) {
    auto n = std::make_unique<Node>();
    if (kw == "if") {
      n->kind = NK::kIf;
      auto c = p.parse_expr();
      if (!c) return c.status();
      if (!p.at_end()) return p.err("unexpected text in {% if %}");
      ExprPtr cond = std::move(c).value();
      for (;;) {
        std::string end;
        auto b = body({"elif", "else", "endif"}, &end);
        if (!b) return b.status();
        n->branches.emplace_back(std::move(cond), std::move(b).value());
        auto q = current();
        if (!q) return q.status();
        if (end == "endif") break;
        if (end == "else") {
          auto eb = body({"endif"}, &end);
          if (!eb) return eb.status();
          n->else_body = std::move(eb).value();
          ++i_;
          break;
        }
        auto c2 = q->parse_expr();
        if (!c2) return c2.status();
        cond = std::move(c2).value();
      }
      return n;
    }
    if (kw == "for") {
      n->kind = NK::kFor;
      for (;;) {
        auto v = p.name();
        if (!v) return v.status();
        n->vars.push_back(*v);
        if (!p.is_op(",")) break;
        p.skip();
      }
      if (!p.is_name("in")) return p.err("expected 'in'");
      p.skip();
      // The iterable stops before an inline "if" (parse below ternary).
      auto it = p.parse_expr();
      if (!it) return it.status();
      n->expr = std::move(it).value();
      if (n->expr->kind == EK::kCond && n->expr->args[2]->kind == EK::kLit && n->expr->args[2]->lit.is_undefined()) {
        n->cond = std::move(n->expr->args[0]);  // "for x in xs if cond"
        n->expr = std::move(n->expr->args[1]);
      }
      if (p.is_name("recursive")) return p.err("recursive loops are not supported");
      if (!p.at_end()) return p.err("unexpected text in {% for %}");
      std::string end;
      auto b = body({"else", "endfor"}, &end);
      if (!b) return b.status();
      n->body = std::move(b).value();
      ++i_;
      if (end == "else") {
        auto eb = body({"endfor"}, &end);
        if (!eb) return eb.status();
        n->else_body = std::move(eb).value();
        ++i_;
      }
      return n;
    }
    if (kw == "set") {
      n->kind = NK::kSet;
      auto v = p.name();
      if (!v) return v.status();
      n->vars.push_back(*v);
      if (p.is_op(".")) {
        p.skip();
        auto a = p.name();
        if (!a) return a.status();
        n->vars.push_back(*a);
      }
      if (p.at_end()) {  // {% set name %}...{% endset %}: the body's text
        n->kind = NK::kSetBlock;
        std::string end;
        auto b = body({"endset"}, &end);
        if (!b) return b.status();
        ++i_;
        n->body = std::move(b).value();
        return n;
      }
      if (!p.is_op("=")) return p.err("only '{% set name = value %}' is supported");
      p.skip();
      auto e = p.parse_expr();
      if (!e) return e.status();
      if (!p.at_end()) return p.err("unexpected text in {% set %}");
      n->expr = std::move(e).value();
      return n;
    }
    if (kw == "break" || kw == "continue") {
      n->kind = kw == "break" ? NK::kBreak : NK::kContinue;
      return n;
    }
    if (kw == "macro") {
      n->kind = NK::kMacro;
      auto name = p.name();
      if (!name) return name.status();
      n->text = *name;
      Status s = p.expect_op("(");
      if (!s.is_ok()) return s;
      while (!p.is_op(")")) {
        auto param = p.name();
        if (!param) return param.status();
        n->vars.push_back(*param);
        ExprPtr dflt;
        if (p.is_op("=")) {
          p.skip();
          auto d = p.parse_expr();
          if (!d) return d.status();
          dflt = std::move(d).value();
        }
        n->defaults.push_back(std::move(dflt));
        if (!p.is_op(",")) break;
        p.skip();
      }
      s = p.expect_op(")");
      if (!s.is_ok()) return s;
      if (!p.at_end()) return p.err("unexpected text in {% macro %}");
      std::string end;
      auto b = body({"endmacro"}, &end);
      if (!b) return b.status();
      ++i_;
      n->body = std::move(b).value();
      return n;
    }
    if (kw == "filter") {  // {% filter name(args) %}...{% endfilter %}
      n->kind = NK::kFilterBlock;
      auto f = p.filter_spec();
      if (!f) return f.status();
      if (!p.at_end()) return p.err("unexpected text in {% filter %}");
      n->expr = std::move(f).value();
      std::string end;
      auto b = body({"endfilter"}, &end);
      if (!b) return b.status();
      ++i_;
      n->body = std::move(b).value();
      return n;
    }
    if (kw == "generation") {  // transformers' marker for assistant tokens: render the body
      std::string end;
      auto b = body({"endgeneration"}, &end);
      if (!b) return b.status();
      ++i_;
      return std::move(b).value();
    }
    return syntax("unsupported statement '{% " + kw + " %}'", pos);
  }

  std::vector<Chunk> c_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

Result<JinjaTemplate> JinjaTemplate::parse(std::string_view source) {
  // As Jinja2's lexer: newlines become "\n" and one final newline is dropped
  // (keep_trailing_newline=False).
  std::string src;
  src.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] != '\r') {
      src.push_back(source[i]);
      continue;
    }
    src.push_back('\n');
    if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
  }
  if (!src.empty() && src.back() == '\n') src.pop_back();
  auto chunks = chunk(src);
  if (!chunks) return chunks.status();
  StmtParser p(std::move(chunks).value());
  std::string end;
  auto body = p.body({}, &end);
  if (!body) return body.status();
  JinjaTemplate t;
  t.root_ = std::shared_ptr<const Node>(std::move(body).value());
  return t;
}

}  // namespace pagoda
