// JinjaTemplate::render: walks the syntax tree with scopes, macros and
// globals; the filters, tests and methods are in jinja_builtins.cpp.
#include "chat/jinja.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_builtins.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>

namespace pagoda {

namespace {

namespace jb = jinja_builtins;
using jb::Args;
using jb::Kwargs;

enum class Flow { kNormal, kBreak, kContinue };

// Bounds on the work a hostile template can make one render do.
constexpr size_t kMaxOutputBytes = kMaxJinjaTextBytes;
constexpr int64_t kMaxSteps = 10'000'000;

Status rt_error(const std::string& what) { return jb::error(what); }

JinjaValue markup(std::string s) {
  JinjaValue v(std::move(s));
  v.tag = JinjaTag::kMarkup;
  return v;
}

bool is_markup(const JinjaValue& v) { return v.is_string() && v.tag == JinjaTag::kMarkup; }

// The dotted name an expression reads ("message.tool_calls"), for messages.
std::string expr_name(const Expr& e) {
  if (e.kind == EK::kVar) return e.name;
  if (e.kind == EK::kAttr) return expr_name(*e.args[0]) + "." + e.name;
  if (e.kind == EK::kIndex) return expr_name(*e.args[0]) + "[...]";
  return "value";
}

// Counts the render and evaluation frames nested at once.
class NestGuard {
 public:
  explicit NestGuard(int* depth) : depth_(depth) { ++*depth_; }
  ~NestGuard() { --*depth_; }
  NestGuard(const NestGuard&) = delete;
  NestGuard& operator=(const NestGuard&) = delete;
  bool too_deep() const { return *depth_ > kMaxRenderDepth; }

 private:
  int* depth_;
};

class Renderer {
 public:
  ~Renderer() {
    for (const JinjaValue& ns : namespaces_) ns.dict().clear();
  }
  Renderer(const Renderer&) = delete;  // its functions hold `this`
  Renderer& operator=(const Renderer&) = delete;

  explicit Renderer(const JinjaValue& context) {
    scopes_.emplace_back();
    auto& g = scopes_.back();
    g["raise_exception"] = JinjaValue::function([](Args& a, Kwargs&) -> Result<JinjaValue> {
      return Status::invalid_argument("chat template raised an exception: " +
                                      (a.empty() ? std::string() : a[0].to_output()));
    });
    g["strftime_now"] = JinjaValue::function([](Args& a, Kwargs&) -> Result<JinjaValue> {
      const std::string fmt = !a.empty() && a[0].is_string() ? a[0].str() : "%Y-%m-%d";
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);  // transformers: datetime.now().strftime(fmt), local time
      char buf[256];
      const size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
      return JinjaValue(std::string(buf, n));
    });
    g["namespace"] = JinjaValue::function([this](Args& a, Kwargs& kw) -> Result<JinjaValue> {
      JinjaValue ns(JinjaDict{});
      ns.tag = JinjaTag::kNamespace;
      namespaces_.push_back(ns);
      if (!a.empty() && a[0].is_dict())
        for (const auto& [k, v] : a[0].dict()) ns.set(k, v);
      for (auto& [k, v] : kw) ns.set(k, v);
      return ns;
    });
    g["range"] = JinjaValue::function([](Args& a, Kwargs&) -> Result<JinjaValue> {
      int64_t start = 0, stop = 0, step = 1;
      for (const JinjaValue& x : a)
        if (!x.is_int()) return rt_error("range() needs integers");
      if (a.size() == 1) stop = a[0].integer();
      else if (a.size() >= 2) start = a[0].integer(), stop = a[1].integer();
      if (a.size() >= 3) step = a[2].integer();
      if (step == 0 || (stop - start) / step > 100000) return rt_error("bad range()");
      JinjaList l;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) l.emplace_back(i);
      return JinjaValue(l);
    });
    g["dict"] = JinjaValue::function([](Args& a, Kwargs& kw) -> Result<JinjaValue> {
      JinjaValue d(JinjaDict{});
      if (!a.empty() && a[0].is_dict())
        for (const auto& [k, v] : a[0].dict()) d.set(k, v);
      for (auto& [k, v] : kw) d.set(k, v);
      return d;
    });
    if (context.is_dict())
      for (const auto& [k, v] : context.dict()) g[k] = v;
  }

  Status render(const Node& n, std::string* out, Flow* flow) {
    if (++steps_ > kMaxSteps) return rt_error("the template runs too long");
    const NestGuard nest(&depth_);
    if (nest.too_deep()) return rt_error("blocks and macro calls nested too deeply");
    switch (n.kind) {
      case NK::kText:
        *out += n.text;
        return check_size(*out);
      case NK::kOut: {
        auto v = eval(*n.expr);
        if (!v) return v.status();
        *out += v->to_output();
        return check_size(*out);
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
        return assign(n.vars, std::move(v).value());
      }
      case NK::kSetBlock: {
        auto text = capture(*n.body);
        if (!text) return text.status();
        return assign(n.vars, JinjaValue(std::move(text).value()));
      }
      case NK::kFilterBlock: {
        auto text = capture(*n.body);
        if (!text) return text.status();
        Args args;
        for (size_t i = 1; i < n.expr->args.size(); ++i) {
          auto v = eval(*n.expr->args[i]);
          if (!v) return v.status();
          args.push_back(std::move(v).value());
        }
        Kwargs kwargs;
        for (const auto& [k, x] : n.expr->kwargs) {
          auto v = eval(*x);
          if (!v) return v.status();
          kwargs.emplace_back(k, std::move(v).value());
        }
        auto r = jb::filter(n.expr->name, JinjaValue(std::move(text).value()), args, kwargs);
        if (!r) return r.status();
        *out += r->to_output();
        return check_size(*out);
      }
      case NK::kMacro:
        scopes_.back()[n.text] = JinjaValue::function(
            [this, node = &n](Args& a, Kwargs& kw) -> Result<JinjaValue> { return call_macro(*node, a, kw); });
        return Status::ok();
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
  Status check_size(const std::string& out) const {
    return out.size() > kMaxOutputBytes ? rt_error("the rendered text is too long") : Status::ok();
  }

  // {% set name = v %} or {% set ns.attr = v %}.
  Status assign(const std::vector<std::string>& vars, JinjaValue v) {
    if (vars.size() == 1) {
      scopes_.back()[vars[0]] = std::move(v);
      return Status::ok();
    }
    JinjaValue ns = lookup(vars[0]);
    if (!ns.is_dict() || ns.tag != JinjaTag::kNamespace)
      return rt_error("cannot assign attribute on non-namespace object '" + vars[0] + "'");
    ns.set(vars[1], std::move(v));
    return Status::ok();
  }

  // A block's output as a string (set blocks, filter blocks, macro bodies).
  Result<std::string> capture(const Node& body) {
    std::string text;
    Flow flow = Flow::kNormal;
    Status s = render(body, &text, &flow);
    if (!s.is_ok()) return s;
    return text;
  }

  // A macro call: a scope of its own above the globals (top-level names are
  // visible, the caller's locals are not), parameters bound by position,
  // then by name, then to their defaults (undefined without one).
  Result<JinjaValue> call_macro(const Node& m, Args& a, Kwargs& kw) {
    if (static_cast<int>(frames_.size()) >= kMaxCallDepth) return rt_error("macro calls nested too deeply");
    if (a.size() > m.vars.size())
      return rt_error("macro '" + m.text + "' takes not more than " + std::to_string(m.vars.size()) + " argument(s)");
    for (const auto& [k, v] : kw)
      if (std::find(m.vars.begin(), m.vars.end(), k) == m.vars.end())
        return rt_error("macro '" + m.text + "' takes no keyword argument '" + k + "'");
    scopes_.emplace_back();
    frames_.push_back(scopes_.size() - 1);
    Status st = Status::ok();
    for (size_t i = 0; i < m.vars.size() && st.is_ok(); ++i) {
      JinjaValue v;
      bool given = false;
      if (i < a.size()) {
        v = a[i];
        given = true;
      }
      for (const auto& [k, x] : kw)
        if (k == m.vars[i]) {
          v = x;
          given = true;
        }
      if (!given && m.defaults[i]) {
        auto d = eval(*m.defaults[i]);
        if (!d) st = d.status();
        else v = std::move(d).value();
      }
      scopes_.back()[m.vars[i]] = std::move(v);
    }
    Result<std::string> text = st.is_ok() ? capture(*m.body) : Result<std::string>(st);
    frames_.pop_back();
    scopes_.pop_back();
    if (!text) return text.status();
    return JinjaValue(std::move(text).value());
  }

  Status render_for(const Node& n, std::string* out) {
    auto it = eval(*n.expr);
    if (!it) return it.status();
    JinjaList items;
    if (it->is_dict() && it->tag != JinjaTag::kNamespace && n.vars.size() == 2) {
      for (const auto& [k, v] : it->dict()) items.emplace_back(JinjaList{JinjaValue(k), v});
    } else {
      auto l = jb::iterate(*it);
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
    Status st = Status::ok();
    if (n.cond) {  // "for x in xs if cond": filter first, so loop.* counts the kept items
      JinjaList kept;
      for (const JinjaValue& item : items) {
        st = bind(item);
        if (!st.is_ok()) break;
        auto c = eval(*n.cond);
        if (!c) {
          st = c.status();
          break;
        }
        if (c->truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    for (size_t i = 0; i < items.size() && st.is_ok(); ++i) {
      st = bind(items[i]);
      if (!st.is_ok()) break;
      const int64_t len = static_cast<int64_t>(items.size()), idx = static_cast<int64_t>(i);
      JinjaDict loop{{"index", JinjaValue(idx + 1)},
                     {"index0", JinjaValue(idx)},
                     {"first", JinjaValue(i == 0)},
                     {"last", JinjaValue(idx == len - 1)},
                     {"length", JinjaValue(len)},
                     {"revindex", JinjaValue(len - idx)},
                     {"revindex0", JinjaValue(len - idx - 1)},
                     {"depth", JinjaValue(1)},
                     {"depth0", JinjaValue(0)},
                     {"previtem", i > 0 ? items[i - 1] : JinjaValue()},
                     {"nextitem", idx + 1 < len ? items[i + 1] : JinjaValue()},
                     {"cycle", JinjaValue::function([idx](Args& a, Kwargs&) -> Result<JinjaValue> {
                        if (a.empty()) return rt_error("loop.cycle() needs at least one value");
                        return a[static_cast<size_t>(idx) % a.size()];
                      })}};
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

  // Innermost scope first, down to the current macro's own scope, then the
  // globals.
  JinjaValue lookup(const std::string& name) const {
    const size_t base = frames_.empty() ? 0 : frames_.back();
    for (size_t s = scopes_.size(); s-- > base;) {
      auto f = scopes_[s].find(name);
      if (f != scopes_[s].end()) return f->second;
    }
    if (base > 0) {
      auto f = scopes_[0].find(name);
      if (f != scopes_[0].end()) return f->second;
    }
    return {};
  }

  Result<JinjaValue> eval(const Expr& e) {
    const NestGuard nest(&depth_);
    if (nest.too_deep()) return rt_error("expressions and macro calls nested too deeply");
    switch (e.kind) {
      case EK::kLit:
        return e.lit;
      case EK::kVar:
        return lookup(e.name);
      case EK::kAttr: {
        auto o = eval(*e.args[0]);
        if (!o) return o;
        if (o->is_undefined()) return rt_error("'" + expr_name(*e.args[0]) + "' is undefined");
        if (o->is_dict() && !jb::has_method(*o, e.name)) return o->get(e.name);
        return jb::method(*o, e.name);
      }
      case EK::kIndex: {
        auto o = eval(*e.args[0]);
        if (!o) return o;
        auto k = eval(*e.args[1]);
        if (!k) return k;
        if (o->is_undefined()) return rt_error("'" + expr_name(*e.args[0]) + "' is undefined");
        if (o->is_dict() && k->is_string()) {
          JinjaValue v = o->get(k->str());
          return v.is_undefined() ? jb::method(*o, k->str()) : v;
        }
        if (o->is_list() && o->tag != JinjaTag::kGenerator && k->is_int()) {
          const int64_t n = static_cast<int64_t>(o->list().size());
          int64_t i = k->integer();
          if (i < 0) i += n;
          if (i < 0 || i >= n) return JinjaValue();
          return o->list()[static_cast<size_t>(i)];
        }
        if (o->is_string() && k->is_int()) {
          const std::vector<std::string> chars = jb::utf8_chars(o->str());
          const int64_t n = static_cast<int64_t>(chars.size());
          int64_t i = k->integer();
          if (i < 0) i += n;
          if (i < 0 || i >= n) return JinjaValue();
          return JinjaValue(chars[static_cast<size_t>(i)]);
        }
        if (k->is_string()) return jb::method(*o, k->str());
        return JinjaValue();
      }
      case EK::kSlice:
        return slice(e);
      case EK::kCall: {
        auto f = eval_applied(e);
        if (!f) return f.status();
        if (!f->subject.is_function())
          return rt_error("'" + expr_name(*e.args[0]) + "' is not callable (" + jb::type_name(f->subject) + ")");
        return f->subject.fn()(f->args, f->kwargs);
      }
      case EK::kFilter: {
        auto in = eval_applied(e);
        if (!in) return in.status();
        return jb::filter(e.name, in->subject, in->args, in->kwargs);
      }
      case EK::kTest: {
        auto in = eval_applied(e);
        if (!in) return in.status();
        auto r = jb::test(e.name, in->subject, in->args);
        if (!r) return r.status();
        return JinjaValue(*r != e.negated);
      }
      case EK::kNeg: {
        auto v = eval(*e.args[0]);
        if (!v) return v;
        if (v->is_int()) return JinjaValue(-v->integer());
        if (v->is_number()) return JinjaValue(-v->number());
        return rt_error("bad operand type for unary -: '" + jb::type_name(*v) + "'");
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
        JinjaValue r(std::move(l));
        if (e.name == "tuple") r.tag = JinjaTag::kTuple;
        return r;
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

  Result<JinjaValue> slice(const Expr& e) {
    auto o = eval(*e.args[0]);
    if (!o) return o;
    if (o->is_undefined()) return rt_error("'" + expr_name(*e.args[0]) + "' is undefined");
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
    if (!is_str && (!o->is_list() || o->tag == JinjaTag::kGenerator)) return JinjaValue();
    const std::vector<std::string> chars = is_str ? jb::utf8_chars(o->str()) : std::vector<std::string>{};
    const int64_t n = is_str ? static_cast<int64_t>(chars.size()) : static_cast<int64_t>(o->list().size());
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
      if (is_str) s += chars[static_cast<size_t>(i)];
      else l.push_back(o->list()[static_cast<size_t>(i)]);
    }
    return is_str ? JinjaValue(s) : JinjaValue(l);
  }

  // A call, filter or test node evaluated: args[0] (the function, or the
  // value filtered or tested) and the remaining positional and keyword args.
  struct Applied {
    JinjaValue subject;
    Args args;
    Kwargs kwargs;
  };
  Result<Applied> eval_applied(const Expr& e) {
    auto subject = eval(*e.args[0]);
    if (!subject) return subject.status();
    Applied out{std::move(*subject), {}, {}};
    for (size_t i = 1; i < e.args.size(); ++i) {
      auto v = eval(*e.args[i]);
      if (!v) return v.status();
      out.args.push_back(*v);
    }
    for (const auto& [k, x] : e.kwargs) {
      auto v = eval(*x);
      if (!v) return v.status();
      out.kwargs.emplace_back(k, *v);
    }
    return out;
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
      auto r = jb::test("in", a, {b});
      if (!r) return r.status();
      return JinjaValue(op == "in" ? *r : !*r);
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      auto r = jb::test(op, a, {b});
      if (!r) return r.status();
      return JinjaValue(*r);
    }
    auto as_num = [](const JinjaValue& v) {  // Python: bool is an int
      return v.is_bool() ? JinjaValue(static_cast<int64_t>(std::get<bool>(v.v))) : v;
    };
    const JinjaValue x = as_num(a), y = as_num(b);
    if (op == "+") {
      if (a.is_string() && b.is_string()) {
        // markupsafe: Markup + str escapes the str, and so does str + Markup.
        if (is_markup(a) || is_markup(b))
          return markup((is_markup(a) ? a.str() : jb::escape_html(a.str())) +
                        (is_markup(b) ? b.str() : jb::escape_html(b.str())));
        return JinjaValue(a.str() + b.str());
      }
      if (a.is_list() && b.is_list() && a.tag != JinjaTag::kGenerator && a.tag == b.tag) {  // list+list, tuple+tuple
        JinjaList l = a.list();
        l.insert(l.end(), b.list().begin(), b.list().end());
        JinjaValue r(std::move(l));
        r.tag = a.tag;
        return r;
      }
    }
    if (x.is_number() && y.is_number()) {
      const bool ints = x.is_int() && y.is_int();
      if (op == "+") return ints ? JinjaValue(x.integer() + y.integer()) : JinjaValue(x.number() + y.number());
      if (op == "-") return ints ? JinjaValue(x.integer() - y.integer()) : JinjaValue(x.number() - y.number());
      if (op == "*") return ints ? JinjaValue(x.integer() * y.integer()) : JinjaValue(x.number() * y.number());
      if (y.number() == 0) return rt_error("division by zero");
      if (op == "/") return JinjaValue(x.number() / y.number());
      if (op == "//") {
        if (ints) {
          int64_t q = x.integer() / y.integer();
          if ((x.integer() % y.integer() != 0) && ((x.integer() < 0) != (y.integer() < 0))) --q;
          return JinjaValue(q);
        }
        return JinjaValue(std::floor(x.number() / y.number()));
      }
      if (op == "%") {
        if (ints) {
          int64_t m = x.integer() % y.integer();
          if (m != 0 && ((m < 0) != (y.integer() < 0))) m += y.integer();
          return JinjaValue(m);
        }
        return JinjaValue(x.number() - y.number() * std::floor(x.number() / y.number()));
      }
    }
    if (op == "*" && (a.is_string() || (a.is_list() && a.tag != JinjaTag::kGenerator)) && y.is_int()) {
      const int64_t times = std::min<int64_t>(y.integer(), 100000);
      if (a.is_string()) {
        std::string s;
        for (int64_t i = 0; i < times && s.size() <= kMaxOutputBytes; ++i) s += a.str();
        return JinjaValue(s);
      }
      JinjaList l;
      for (int64_t i = 0; i < times && l.size() <= 1000000; ++i) l.insert(l.end(), a.list().begin(), a.list().end());
      return JinjaValue(l);
    }
    if (a.is_undefined() || b.is_undefined())
      return rt_error("'" + expr_name(*e.args[a.is_undefined() ? 0 : 1]) + "' is undefined");
    return rt_error("unsupported operand types for " + op + ": '" + jb::type_name(a) + "' and '" + jb::type_name(b) +
                    "'");
  }

  std::vector<std::map<std::string, JinjaValue>> scopes_;
  // Every namespace this render made, emptied when it ends: namespaces are
  // the only mutable values, and one may hold itself (ns.me = ns), a cycle
  // of shared pointers that would otherwise never be freed.
  std::vector<JinjaValue> namespaces_;
  std::vector<size_t> frames_;  // the first scope of each macro call in progress
  int64_t steps_ = 0;
  int depth_ = 0;  // render() and eval() frames in progress
};

}  // namespace

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
