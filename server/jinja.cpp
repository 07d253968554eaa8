#include "server/jinja.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <map>

namespace pagoda {

// ---- syntax tree ---------------------------------------------------------------

namespace {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class EK { kLit, kVar, kAttr, kIndex, kSlice, kCall, kFilter, kTest, kNeg, kNot, kBin, kAnd, kOr, kCond, kList, kDict };

struct Expr {
  EK kind;
  std::string name;  // var/attr/filter/test name, binary operator
  JinjaValue lit;
  std::vector<ExprPtr> args;  // operands / positional arguments (the object first)
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;  // kTest
};

}  // namespace

enum class NK { kText, kOut, kIf, kFor, kSet, kBreak, kContinue, kBody };

struct JinjaTemplate::Node {
  NK kind;
  std::string text;                 // kText
  ExprPtr expr;                     // kOut, kSet value, kFor iterable
  std::vector<std::string> vars;    // kFor loop vars; kSet: {name} or {name, attr}
  ExprPtr cond;                     // kFor inline filter
  std::vector<std::pair<ExprPtr, std::unique_ptr<Node>>> branches;  // kIf
  std::unique_ptr<Node> else_body;  // kIf, kFor
  std::unique_ptr<Node> body;       // kFor
  std::vector<std::unique_ptr<Node>> children;  // kBody
};

using Node = JinjaTemplate::Node;
using NodePtr = std::unique_ptr<Node>;

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
  bool strip_next = false;      // previous tag ended with '-'
  bool trim_newline = false;    // previous tag was a block/comment tag (trim_blocks)
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
      if (j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]))) {
        ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
        Tok t{Tok::kFloat, s.substr(i, j - i)};
        t.f = std::stod(t.s);
        out.push_back(t);
      } else {
        Tok t{Tok::kInt, s.substr(i, j - i)};
        t.i = std::stoll(t.s);
        out.push_back(t);
      }
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
          case 'n': v.push_back('\n'); break;
          case 't': v.push_back('\t'); break;
          case 'r': v.push_back('\r'); break;
          case '\\': v.push_back('\\'); break;
          case '\'': v.push_back('\''); break;
          case '"': v.push_back('"'); break;
          case '\n': break;
          default: v.push_back('\\'); v.push_back(e);
        }
      }
      if (j >= s.size()) return syntax("unterminated string", pos);
      out.push_back({Tok::kStr, v});
      i = j + 1;
    } else {
      static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",", ":", ".",
                                  "|",  "~",  "+",  "-",  "*",  "/",  "%", "<", ">", "="};
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
  bool at_end() const { return t_[k_].kind == Tok::kEnd; }
  bool is_name(const char* n) const { return t_[k_].kind == Tok::kName && t_[k_].s == n; }
  bool is_op(const char* o) const { return t_[k_].kind == Tok::kOp && t_[k_].s == o; }
  const Tok& peek() const { return t_[k_]; }
  void skip() { if (!at_end()) ++k_; }
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
  static ExprPtr make(EK k, std::string name = {}) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->name = std::move(name);
    return e;
  }

#define PAGODA_TRY(var, expr)     \
  auto var##_r = (expr);          \
  if (!var##_r) return var##_r.status(); \
  ExprPtr var = std::move(var##_r).value()

  Result<ExprPtr> ternary() {
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
    return e;
  }
  Result<ExprPtr> or_expr() {
    PAGODA_TRY(a, and_expr());
    while (is_name("or")) {
      skip();
      PAGODA_TRY(b, and_expr());
      auto e = make(EK::kOr);
      e->args.push_back(std::move(a));
      e->args.push_back(std::move(b));
      a = std::move(e);
    }
    return a;
  }
  Result<ExprPtr> and_expr() {
    PAGODA_TRY(a, not_expr());
    while (is_name("and")) {
      skip();
      PAGODA_TRY(b, not_expr());
      auto e = make(EK::kAnd);
      e->args.push_back(std::move(a));
      e->args.push_back(std::move(b));
      a = std::move(e);
    }
    return a;
  }
  Result<ExprPtr> not_expr() {
    if (is_name("not")) {
      skip();
      PAGODA_TRY(a, not_expr());
      auto e = make(EK::kNot);
      e->args.push_back(std::move(a));
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
      auto e = make(EK::kBin, op);
      e->args.push_back(std::move(a));
      e->args.push_back(std::move(b));
      a = std::move(e);
    }
  }
  Result<ExprPtr> concat() {
    PAGODA_TRY(a, additive());
    while (is_op("~")) {
      skip();
      PAGODA_TRY(b, additive());
      auto e = make(EK::kBin, "~");
      e->args.push_back(std::move(a));
      e->args.push_back(std::move(b));
      a = std::move(e);
    }
    return a;
  }
  Result<ExprPtr> additive() {
    PAGODA_TRY(a, multiplicative());
    while (is_op("+") || is_op("-")) {
      const std::string op = peek().s;
      skip();
      PAGODA_TRY(b, multiplicative());
      auto e = make(EK::kBin, op);
      e->args.push_back(std::move(a));
      e->args.push_back(std::move(b));
      a = std::move(e);
    }
    return a;
  }
  Result<ExprPtr> multiplicative() {
    PAGODA_TRY(a, unary());
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = peek().s;
      skip();
      PAGODA_TRY(b, unary());
      auto e = make(EK::kBin, op);
      e->args.push_back(std::move(a));
      e->args.push_back(std::move(b));
      a = std::move(e);
    }
    return a;
  }
  Result<ExprPtr> unary() {
    if (is_op("-")) {
      skip();
      PAGODA_TRY(a, unary());
      auto e = make(EK::kNeg);
      e->args.push_back(std::move(a));
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
      } else if (is_op("(")) {
        skip();
        auto e = make(EK::kCall);
        e->args.push_back(std::move(a));
        Status s = call_args(e.get());
        if (!s.is_ok()) return s;
        a = std::move(e);
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
      if (is_op(",")) {  // tuple: a list
        auto l = make(EK::kList);
        l->args.push_back(std::move(a));
        while (is_op(",")) {
          skip();
          if (is_op(")")) break;
          PAGODA_TRY(b, parse_expr());
          l->args.push_back(std::move(b));
        }
        a = std::move(l);
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
      return d;
    }
    return err("expected a value");
  }
#undef PAGODA_TRY

  std::vector<Tok> t_;
  size_t k_ = 0;
  size_t pos_;
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

 private:
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
};

// ---- evaluation --------------------------------------------------------------------

enum class Flow { kNormal, kBreak, kContinue };

Status rt_error(const std::string& what) { return Status::invalid_argument("chat template: " + what); }

std::string type_name(const JinjaValue& v) {
  if (v.is_undefined()) return "undefined";
  if (v.is_none()) return "none";
  if (v.is_bool()) return "bool";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_list()) return "list";
  if (v.is_dict()) return "dict";
  return "function";
}

std::string strip_chars(const std::string& s, const std::string& chars, bool left, bool right) {
  auto is_strip = [&](char c) {
    return chars.empty() ? std::isspace(static_cast<unsigned char>(c)) != 0 : chars.find(c) != std::string::npos;
  };
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && is_strip(s[b])) ++b;
  if (right)
    while (e > b && is_strip(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

std::string title_case(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
      start = false;
    } else {
      start = true;
    }
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

using Args = std::vector<JinjaValue>;
using Kwargs = std::vector<std::pair<std::string, JinjaValue>>;

JinjaValue arg(const Args& a, const Kwargs& kw, size_t i, const char* name, JinjaValue dflt = {}) {
  for (const auto& [k, v] : kw)
    if (k == name) return v;
  return i < a.size() ? a[i] : dflt;
}

Result<JinjaList> as_list(const JinjaValue& v) {
  if (v.is_list()) return v.list();
  if (v.is_dict()) {
    JinjaList l;
    for (const auto& kv : v.dict()) l.emplace_back(kv.first);
    return l;
  }
  if (v.is_string()) {
    JinjaList l;
    for (char c : v.str()) l.emplace_back(std::string(1, c));
    return l;
  }
  if (v.is_undefined() || v.is_none()) return JinjaList{};
  return rt_error("cannot iterate over a " + type_name(v));
}

// A string's or dict's method, bound to `self`; undefined if none.
JinjaValue method(const JinjaValue& self, const std::string& name) {
  if (self.is_string()) {
    const std::string s = self.str();
    if (name == "strip" || name == "lstrip" || name == "rstrip")
      return JinjaValue::function([s, name](Args& a, Kwargs&) -> Result<JinjaValue> {
        const std::string chars = !a.empty() && a[0].is_string() ? a[0].str() : "";
        return JinjaValue(strip_chars(s, chars, name != "rstrip", name != "lstrip"));
      });
    if (name == "upper") return JinjaValue::function([s](Args&, Kwargs&) -> Result<JinjaValue> { return JinjaValue(upper(s)); });
    if (name == "lower") return JinjaValue::function([s](Args&, Kwargs&) -> Result<JinjaValue> { return JinjaValue(lower(s)); });
    if (name == "title") return JinjaValue::function([s](Args&, Kwargs&) -> Result<JinjaValue> { return JinjaValue(title_case(s)); });
    if (name == "capitalize")
      return JinjaValue::function([s](Args&, Kwargs&) -> Result<JinjaValue> {
        std::string r = lower(s);
        if (!r.empty()) r[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(r[0])));
        return JinjaValue(r);
      });
    if (name == "startswith" || name == "endswith")
      return JinjaValue::function([s, name](Args& a, Kwargs&) -> Result<JinjaValue> {
        if (a.empty() || !a[0].is_string()) return rt_error(name + "() needs a string");
        const std::string& x = a[0].str();
        const bool r = x.size() <= s.size() &&
                       (name == "startswith" ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0);
        return JinjaValue(r);
      });
    if (name == "replace")
      return JinjaValue::function([s](Args& a, Kwargs&) -> Result<JinjaValue> {
        if (a.size() < 2 || !a[0].is_string() || !a[1].is_string()) return rt_error("replace() needs two strings");
        return JinjaValue(replace_all(s, a[0].str(), a[1].str()));
      });
    if (name == "split")
      return JinjaValue::function([s](Args& a, Kwargs&) -> Result<JinjaValue> {
        JinjaList out;
        if (a.empty() || a[0].is_none()) {
          size_t i = 0;
          while (i < s.size()) {
            while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
            size_t j = i;
            while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
            if (j > i) out.emplace_back(s.substr(i, j - i));
            i = j;
          }
          return JinjaValue(out);
        }
        if (!a[0].is_string() || a[0].str().empty()) return rt_error("split() needs a non-empty separator");
        const std::string& sep = a[0].str();
        size_t pos = 0;
        for (size_t hit; (hit = s.find(sep, pos)) != std::string::npos; pos = hit + sep.size()) out.emplace_back(s.substr(pos, hit - pos));
        out.emplace_back(s.substr(pos));
        return JinjaValue(out);
      });
  }
  if (self.is_dict()) {
    if (name == "items" || name == "keys" || name == "values")
      return JinjaValue::function([self, name](Args&, Kwargs&) -> Result<JinjaValue> {
        JinjaList out;
        for (const auto& [k, v] : self.dict()) {
          if (name == "items") out.emplace_back(JinjaList{JinjaValue(k), v});
          else if (name == "keys") out.emplace_back(k);
          else out.push_back(v);
        }
        return JinjaValue(out);
      });
    if (name == "get")
      return JinjaValue::function([self](Args& a, Kwargs&) -> Result<JinjaValue> {
        if (a.empty() || !a[0].is_string()) return rt_error("get() needs a key");
        JinjaValue v = self.get(a[0].str());
        if (v.is_undefined()) return a.size() > 1 ? a[1] : JinjaValue(nullptr);
        return v;
      });
  }
  return {};
}

class Renderer {
 public:
  explicit Renderer(const JinjaValue& context) {
    scopes_.emplace_back();
    auto& g = scopes_.back();
    g["raise_exception"] = JinjaValue::function([](Args& a, Kwargs&) -> Result<JinjaValue> {
      return Status::invalid_argument("chat template raised an exception: " + (a.empty() ? std::string() : a[0].to_output()));
    });
    g["strftime_now"] = JinjaValue::function([](Args& a, Kwargs&) -> Result<JinjaValue> {
      const std::string fmt = !a.empty() && a[0].is_string() ? a[0].str() : "%Y-%m-%d";
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      gmtime_r(&now, &tm);
      char buf[128];
      const size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
      return JinjaValue(std::string(buf, n));
    });
    g["namespace"] = JinjaValue::function([](Args&, Kwargs& kw) -> Result<JinjaValue> {
      JinjaDict d;
      for (auto& [k, v] : kw) d.emplace_back(k, v);
      return JinjaValue(d);
    });
    g["range"] = JinjaValue::function([](Args& a, Kwargs&) -> Result<JinjaValue> {
      int64_t start = 0, stop = 0, step = 1;
      if (a.size() == 1) stop = a[0].integer();
      else if (a.size() >= 2) start = a[0].integer(), stop = a[1].integer();
      if (a.size() >= 3) step = a[2].integer();
      if (step == 0 || (stop - start) / step > 100000) return rt_error("bad range()");
      JinjaList l;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) l.emplace_back(i);
      return JinjaValue(l);
    });
    if (context.is_dict())
      for (const auto& [k, v] : context.dict()) g[k] = v;
  }

  Status render(const Node& n, std::string* out, Flow* flow) {
    switch (n.kind) {
      case NK::kText:
        *out += n.text;
        return Status::ok();
      case NK::kOut: {
        auto v = eval(*n.expr);
        if (!v) return v.status();
        *out += v->to_output();
        return Status::ok();
      }
      case NK::kBody:
        for (const auto& c : n.children) {
          Status s = render(*c, out, flow);
          if (!s.is_ok() || *flow != Flow::kNormal) return s;
        }
        return Status::ok();
      case NK::kIf:
        for (const auto& [cond, body] : n.branches) {
          auto c = eval(*cond);
          if (!c) return c.status();
          if (c->truthy()) return render(*body, out, flow);
        }
        return n.else_body ? render(*n.else_body, out, flow) : Status::ok();
      case NK::kSet: {
        auto v = eval(*n.expr);
        if (!v) return v.status();
        if (n.vars.size() == 1) {
          scopes_.back()[n.vars[0]] = *v;
          return Status::ok();
        }
        JinjaValue ns = lookup(n.vars[0]);
        if (!ns.is_dict()) return rt_error("cannot set an attribute of '" + n.vars[0] + "' (not a namespace)");
        ns.set(n.vars[1], *v);
        return Status::ok();
      }
      case NK::kBreak:
        *flow = Flow::kBreak;
        return Status::ok();
      case NK::kContinue:
        *flow = Flow::kContinue;
        return Status::ok();
      case NK::kFor:
        return render_for(n, out);
    }
    return Status::ok();
  }

 private:
  Status render_for(const Node& n, std::string* out) {
    auto it = eval(*n.expr);
    if (!it) return it.status();
    JinjaList items;
    if (it->is_dict() && n.vars.size() == 2) {
      for (const auto& [k, v] : it->dict()) items.emplace_back(JinjaList{JinjaValue(k), v});
    } else {
      auto l = as_list(*it);
      if (!l) return l.status();
      items = std::move(l).value();
    }
    scopes_.emplace_back();
    auto bind = [&](const JinjaValue& item) -> Status {
      if (n.vars.size() == 1) {
        scopes_.back()[n.vars[0]] = item;
        return Status::ok();
      }
      if (!item.is_list() || item.list().size() != n.vars.size()) return rt_error("cannot unpack a loop item");
      for (size_t k = 0; k < n.vars.size(); ++k) scopes_.back()[n.vars[k]] = item.list()[k];
      return Status::ok();
    };
    if (n.cond) {  // "for x in xs if cond": filter first, so loop.* counts the kept items
      JinjaList kept;
      for (const JinjaValue& item : items) {
        Status s = bind(item);
        if (!s.is_ok()) return s;
        auto c = eval(*n.cond);
        if (!c) return c.status();
        if (c->truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    Status st = Status::ok();
    for (size_t i = 0; i < items.size() && st.is_ok(); ++i) {
      st = bind(items[i]);
      if (!st.is_ok()) break;
      const int64_t len = static_cast<int64_t>(items.size()), idx = static_cast<int64_t>(i);
      JinjaDict loop{{"index", JinjaValue(idx + 1)},      {"index0", JinjaValue(idx)},
                     {"first", JinjaValue(i == 0)},       {"last", JinjaValue(idx == len - 1)},
                     {"length", JinjaValue(len)},         {"revindex", JinjaValue(len - idx)},
                     {"revindex0", JinjaValue(len - idx - 1)},
                     {"previtem", i > 0 ? items[i - 1] : JinjaValue()},
                     {"nextitem", idx + 1 < len ? items[i + 1] : JinjaValue()}};
      scopes_.back()["loop"] = JinjaValue(loop);
      Flow flow = Flow::kNormal;
      st = render(*n.body, out, &flow);
      if (flow == Flow::kBreak) break;
    }
    scopes_.pop_back();
    if (!st.is_ok()) return st;
    if (items.empty() && n.else_body) {
      Flow flow = Flow::kNormal;
      return render(*n.else_body, out, &flow);
    }
    return Status::ok();
  }

  JinjaValue lookup(const std::string& name) const {
    for (auto s = scopes_.rbegin(); s != scopes_.rend(); ++s) {
      auto f = s->find(name);
      if (f != s->end()) return f->second;
    }
    return {};
  }

  Result<JinjaValue> eval(const Expr& e) {
    switch (e.kind) {
      case EK::kLit:
        return e.lit;
      case EK::kVar:
        return lookup(e.name);
      case EK::kAttr: {
        auto o = eval(*e.args[0]);
        if (!o) return o;
        if (o->is_dict()) {
          JinjaValue v = o->get(e.name);
          if (!v.is_undefined()) return v;
        }
        return method(*o, e.name);
      }
      case EK::kIndex: {
        auto o = eval(*e.args[0]);
        if (!o) return o;
        auto k = eval(*e.args[1]);
        if (!k) return k;
        if (o->is_dict() && k->is_string()) {
          JinjaValue v = o->get(k->str());
          return v.is_undefined() ? method(*o, k->str()) : v;
        }
        if ((o->is_list() || o->is_string()) && k->is_int()) {
          const int64_t n = o->is_list() ? static_cast<int64_t>(o->list().size()) : static_cast<int64_t>(o->str().size());
          int64_t i = k->integer();
          if (i < 0) i += n;
          if (i < 0 || i >= n) return JinjaValue();
          if (o->is_list()) return o->list()[i];
          return JinjaValue(std::string(1, o->str()[i]));
        }
        return JinjaValue();
      }
      case EK::kSlice: {
        auto o = eval(*e.args[0]);
        if (!o) return o;
        int64_t parts[3] = {0, 0, 1};
        bool given[3] = {false, false, false};
        for (int p = 0; p < 3; ++p) {
          if (!e.args[1 + p]) continue;
          auto v = eval(*e.args[1 + p]);
          if (!v) return v;
          if (v->is_none()) continue;
          if (!v->is_int()) return rt_error("slice bounds must be integers");
          parts[p] = v->integer();
          given[p] = true;
        }
        const int64_t step = parts[2];
        if (step == 0) return rt_error("slice step cannot be zero");
        const bool is_str = o->is_string();
        if (!is_str && !o->is_list()) return JinjaValue();
        const int64_t n = is_str ? static_cast<int64_t>(o->str().size()) : static_cast<int64_t>(o->list().size());
        auto norm = [&](int64_t v, bool g, int64_t dflt) {
          if (!g) return dflt;
          if (v < 0) v += n;
          return step > 0 ? std::clamp<int64_t>(v, 0, n) : std::clamp<int64_t>(v, -1, n - 1);
        };
        const int64_t b = norm(parts[0], given[0], step > 0 ? 0 : n - 1);
        const int64_t en = norm(parts[1], given[1], step > 0 ? n : -1);
        JinjaList l;
        std::string s;
        for (int64_t i = b; step > 0 ? i < en : i > en; i += step) {
          if (is_str) s.push_back(o->str()[i]);
          else l.push_back(o->list()[i]);
        }
        return is_str ? JinjaValue(s) : JinjaValue(l);
      }
      case EK::kCall: {
        auto f = eval(*e.args[0]);
        if (!f) return f;
        if (!f->is_function()) return rt_error("calling something that is not a function");
        Args a;
        Kwargs kw;
        Status s = eval_args(e, 1, &a, &kw);
        if (!s.is_ok()) return s;
        return f->fn()(a, kw);
      }
      case EK::kFilter: {
        auto in = eval(*e.args[0]);
        if (!in) return in;
        Args a;
        Kwargs kw;
        Status s = eval_args(e, 1, &a, &kw);
        if (!s.is_ok()) return s;
        return filter(e.name, *in, a, kw);
      }
      case EK::kTest: {
        auto in = eval(*e.args[0]);
        if (!in) return in;
        Args a;
        Kwargs kw;
        Status s = eval_args(e, 1, &a, &kw);
        if (!s.is_ok()) return s;
        auto r = test(e.name, *in, a);
        if (!r) return r.status();
        return JinjaValue(*r != e.negated);
      }
      case EK::kNeg: {
        auto v = eval(*e.args[0]);
        if (!v) return v;
        if (v->is_int()) return JinjaValue(-v->integer());
        if (v->is_number()) return JinjaValue(-v->number());
        return rt_error("cannot negate a " + type_name(*v));
      }
      case EK::kNot: {
        auto v = eval(*e.args[0]);
        if (!v) return v;
        return JinjaValue(!v->truthy());
      }
      case EK::kAnd:
      case EK::kOr: {
        auto a = eval(*e.args[0]);
        if (!a) return a;
        if (a->truthy() == (e.kind == EK::kOr)) return a;
        return eval(*e.args[1]);
      }
      case EK::kCond: {
        auto c = eval(*e.args[0]);
        if (!c) return c;
        return eval(*e.args[c->truthy() ? 1 : 2]);
      }
      case EK::kList: {
        JinjaList l;
        for (const auto& x : e.args) {
          auto v = eval(*x);
          if (!v) return v;
          l.push_back(*v);
        }
        return JinjaValue(l);
      }
      case EK::kDict: {
        JinjaValue d{JinjaDict{}};
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          auto k = eval(*e.args[i]);
          if (!k) return k;
          auto v = eval(*e.args[i + 1]);
          if (!v) return v;
          if (!k->is_string()) return rt_error("dict keys must be strings");
          d.set(k->str(), *v);
        }
        return d;
      }
      case EK::kBin:
        return binary(e);
    }
    return JinjaValue();
  }

  Status eval_args(const Expr& e, size_t from, Args* a, Kwargs* kw) {
    for (size_t i = from; i < e.args.size(); ++i) {
      auto v = eval(*e.args[i]);
      if (!v) return v.status();
      a->push_back(*v);
    }
    for (const auto& [k, x] : e.kwargs) {
      auto v = eval(*x);
      if (!v) return v.status();
      kw->emplace_back(k, *v);
    }
    return Status::ok();
  }

  Result<JinjaValue> binary(const Expr& e) {
    auto ra = eval(*e.args[0]);
    if (!ra) return ra;
    auto rb = eval(*e.args[1]);
    if (!rb) return rb;
    const JinjaValue &a = *ra, &b = *rb;
    const std::string& op = e.name;
    if (op == "==") return JinjaValue(a.equals(b));
    if (op == "!=") return JinjaValue(!a.equals(b));
    if (op == "~") return JinjaValue(a.to_output() + b.to_output());
    if (op == "in" || op == "not in") {
      bool r = false;
      if (b.is_string() && a.is_string()) r = b.str().find(a.str()) != std::string::npos;
      else if (b.is_list()) r = std::any_of(b.list().begin(), b.list().end(), [&](const JinjaValue& x) { return x.equals(a); });
      else if (b.is_dict() && a.is_string()) r = !b.get(a.str()).is_undefined();
      else if (!b.is_undefined() && !b.is_none()) return rt_error("'in' needs a string, list or dict on the right");
      return JinjaValue(op == "in" ? r : !r);
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int c;
      if (a.is_number() && b.is_number()) c = a.number() < b.number() ? -1 : a.number() > b.number() ? 1 : 0;
      else if (a.is_string() && b.is_string()) c = a.str().compare(b.str());
      else return rt_error("cannot compare a " + type_name(a) + " with a " + type_name(b));
      return JinjaValue(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
    }
    if (op == "+") {
      if (a.is_string() && b.is_string()) return JinjaValue(a.str() + b.str());
      if (a.is_list() && b.is_list()) {
        JinjaList l = a.list();
        l.insert(l.end(), b.list().begin(), b.list().end());
        return JinjaValue(l);
      }
    }
    if (a.is_number() && b.is_number()) {
      const bool ints = a.is_int() && b.is_int();
      if (op == "+") return ints ? JinjaValue(a.integer() + b.integer()) : JinjaValue(a.number() + b.number());
      if (op == "-") return ints ? JinjaValue(a.integer() - b.integer()) : JinjaValue(a.number() - b.number());
      if (op == "*") return ints ? JinjaValue(a.integer() * b.integer()) : JinjaValue(a.number() * b.number());
      if (b.number() == 0) return rt_error("division by zero");
      if (op == "/") return JinjaValue(a.number() / b.number());
      if (op == "//") {
        if (ints) {
          int64_t q = a.integer() / b.integer();
          if ((a.integer() % b.integer() != 0) && ((a.integer() < 0) != (b.integer() < 0))) --q;
          return JinjaValue(q);
        }
        return JinjaValue(std::floor(a.number() / b.number()));
      }
      if (op == "%") {
        if (ints) {
          int64_t m = a.integer() % b.integer();
          if (m != 0 && ((m < 0) != (b.integer() < 0))) m += b.integer();
          return JinjaValue(m);
        }
        return JinjaValue(a.number() - b.number() * std::floor(a.number() / b.number()));
      }
    }
    if (op == "*" && a.is_string() && b.is_int()) {
      std::string s;
      for (int64_t i = 0; i < b.integer() && i < 100000; ++i) s += a.str();
      return JinjaValue(s);
    }
    return rt_error("unsupported operands for '" + op + "': " + type_name(a) + " and " + type_name(b));
  }

  Result<JinjaValue> filter(const std::string& f, const JinjaValue& in, const Args& a, const Kwargs& kw) {
    if (f == "trim") return JinjaValue(strip_chars(in.to_output(), "", true, true));
    if (f == "length" || f == "count") {
      if (in.is_string()) return JinjaValue(static_cast<int64_t>(in.str().size()));
      if (in.is_list()) return JinjaValue(static_cast<int64_t>(in.list().size()));
      if (in.is_dict()) return JinjaValue(static_cast<int64_t>(in.dict().size()));
      return JinjaValue(0);
    }
    if (f == "tojson") {
      const JinjaValue ind = arg(a, kw, 0, "indent");
      return JinjaValue(in.to_json(ind.is_int() ? static_cast<int>(ind.integer()) : -1));
    }
    if (f == "upper") return JinjaValue(upper(in.to_output()));
    if (f == "lower") return JinjaValue(lower(in.to_output()));
    if (f == "title") return JinjaValue(title_case(in.to_output()));
    if (f == "capitalize") {
      std::string r = lower(in.to_output());
      if (!r.empty()) r[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(r[0])));
      return JinjaValue(r);
    }
    if (f == "default" || f == "d") {
      const bool boolean = arg(a, kw, 1, "boolean", JinjaValue(false)).truthy();
      if (in.is_undefined() || (boolean && !in.truthy())) return arg(a, kw, 0, "default_value", JinjaValue(""));
      return in;
    }
    if (f == "first" || f == "last") {
      auto l = as_list(in);
      if (!l) return l.status();
      if (l->empty()) return JinjaValue();
      return f == "first" ? l->front() : l->back();
    }
    if (f == "join") {
      auto l = as_list(in);
      if (!l) return l.status();
      const std::string sep = arg(a, kw, 0, "d", JinjaValue("")).to_output();
      std::string out;
      for (size_t i = 0; i < l->size(); ++i) {
        if (i) out += sep;
        out += (*l)[i].to_output();
      }
      return JinjaValue(out);
    }
    if (f == "string" || f == "safe" || f == "e" || f == "escape") return JinjaValue(in.to_output());
    if (f == "int") {
      if (in.is_number()) return JinjaValue(in.integer());
      if (in.is_string()) {
        try {
          return JinjaValue(static_cast<int64_t>(std::stoll(in.str())));
        } catch (...) {
          return JinjaValue(0);
        }
      }
      return JinjaValue(0);
    }
    if (f == "float") {
      if (in.is_number()) return JinjaValue(in.number());
      try {
        return JinjaValue(std::stod(in.to_output()));
      } catch (...) {
        return JinjaValue(0.0);
      }
    }
    if (f == "abs" && in.is_number()) return in.is_int() ? JinjaValue(static_cast<int64_t>(std::llabs(in.integer()))) : JinjaValue(std::fabs(in.number()));
    if (f == "round" && in.is_number()) return JinjaValue(std::round(in.number()));
    if (f == "list") {
      auto l = as_list(in);
      if (!l) return l.status();
      return JinjaValue(*l);
    }
    if (f == "reverse") {
      if (in.is_string()) return JinjaValue(std::string(in.str().rbegin(), in.str().rend()));
      auto l = as_list(in);
      if (!l) return l.status();
      std::reverse(l->begin(), l->end());
      return JinjaValue(*l);
    }
    if (f == "unique") {
      auto l = as_list(in);
      if (!l) return l.status();
      JinjaList out;
      for (const auto& x : *l)
        if (std::none_of(out.begin(), out.end(), [&](const JinjaValue& y) { return y.equals(x); })) out.push_back(x);
      return JinjaValue(out);
    }
    if (f == "items") {
      if (!in.is_dict()) return rt_error("items needs a dict");
      Args none;
      Kwargs nokw;
      return method(in, "items").fn()(none, nokw);
    }
    if (f == "replace") {
      if (a.size() < 2) return rt_error("replace needs two arguments");
      return JinjaValue(replace_all(in.to_output(), a[0].to_output(), a[1].to_output()));
    }
    if (f == "selectattr" || f == "rejectattr") {
      auto l = as_list(in);
      if (!l) return l.status();
      if (a.empty() || !a[0].is_string()) return rt_error(f + " needs an attribute name");
      JinjaList out;
      for (const auto& x : *l) {
        const JinjaValue v = x.get(a[0].str());
        bool keep;
        if (a.size() < 2) {
          keep = v.truthy();
        } else {
          Args rest(a.begin() + 2, a.end());
          auto r = test(a[1].to_output(), v, rest);
          if (!r) return r.status();
          keep = *r;
        }
        if (keep == (f == "selectattr")) out.push_back(x);
      }
      return JinjaValue(out);
    }
    if (f == "map") {
      auto l = as_list(in);
      if (!l) return l.status();
      const JinjaValue attr = arg(a, kw, 99, "attribute");
      JinjaList out;
      for (const auto& x : *l) {
        if (attr.is_string()) out.push_back(x.get(attr.str()));
        else if (!a.empty() && a[0].is_string()) {
          auto r = filter(a[0].str(), x, Args(a.begin() + 1, a.end()), {});
          if (!r) return r;
          out.push_back(*r);
        } else return rt_error("map needs attribute= or a filter name");
      }
      return JinjaValue(out);
    }
    return rt_error("unsupported filter '" + f + "'");
  }

  Result<bool> test(const std::string& t, const JinjaValue& v, const Args& a) {
    if (t == "defined") return !v.is_undefined();
    if (t == "undefined") return v.is_undefined();
    if (t == "none") return v.is_none();
    if (t == "string") return v.is_string();
    if (t == "number") return v.is_number();
    if (t == "integer") return v.is_int();
    if (t == "float") return v.is_number() && !v.is_int();
    if (t == "boolean") return v.is_bool();
    if (t == "true") return v.is_bool() && std::get<bool>(v.v);
    if (t == "false") return v.is_bool() && !std::get<bool>(v.v);
    if (t == "mapping") return v.is_dict();
    if (t == "iterable") return v.is_list() || v.is_dict() || v.is_string();
    if (t == "sequence") return v.is_list() || v.is_string();
    if (t == "callable") return v.is_function();
    if (t == "odd" || t == "even") return v.is_int() && (v.integer() % 2 != 0) == (t == "odd");
    if (t == "eq" || t == "equalto" || t == "==") return !a.empty() && v.equals(a[0]);
    if (t == "ne" || t == "!=") return a.empty() || !v.equals(a[0]);
    if (t == "in") {
      if (a.empty()) return false;
      if (a[0].is_list()) return std::any_of(a[0].list().begin(), a[0].list().end(), [&](const JinjaValue& x) { return x.equals(v); });
      if (a[0].is_string() && v.is_string()) return a[0].str().find(v.str()) != std::string::npos;
      if (a[0].is_dict() && v.is_string()) return !a[0].get(v.str()).is_undefined();
      return false;
    }
    if (t == "divisibleby") return !a.empty() && v.is_int() && a[0].is_int() && a[0].integer() != 0 && v.integer() % a[0].integer() == 0;
    return rt_error("unsupported test '" + t + "'");
  }

  std::vector<std::map<std::string, JinjaValue>> scopes_;
};

}  // namespace

Result<JinjaTemplate> JinjaTemplate::parse(std::string_view source) {
  auto chunks = chunk(source);
  if (!chunks) return chunks.status();
  StmtParser p(std::move(chunks).value());
  std::string end;
  auto body = p.body({}, &end);
  if (!body) return body.status();
  JinjaTemplate t;
  t.root_ = std::shared_ptr<const Node>(std::move(body).value());
  return t;
}

Result<std::string> JinjaTemplate::render(const JinjaValue& context) const {
  if (!root_) return Status::invalid_argument("chat template: empty template");
  Renderer r(context);
  std::string out;
  Flow flow = Flow::kNormal;
  Status s = r.render(*root_, &out, &flow);
  if (!s.is_ok()) return s;
  return out;
}

}  // namespace pagoda
