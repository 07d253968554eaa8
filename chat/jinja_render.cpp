// JinjaTemplate::render: walks the syntax tree with scopes, filters, tests
// and globals.
#include "chat/jinja.h"
#include "chat/jinja_ast.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <map>

namespace pagoda {

namespace {

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
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

std::string title_case(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c))
                                  : std::tolower(static_cast<unsigned char>(c)));
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
    if (name == "upper")
      return JinjaValue::function([s](Args&, Kwargs&) -> Result<JinjaValue> { return JinjaValue(upper(s)); });
    if (name == "lower")
      return JinjaValue::function([s](Args&, Kwargs&) -> Result<JinjaValue> { return JinjaValue(lower(s)); });
    if (name == "title")
      return JinjaValue::function([s](Args&, Kwargs&) -> Result<JinjaValue> { return JinjaValue(title_case(s)); });
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
        const bool r =
            x.size() <= s.size() &&
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
        for (size_t hit; (hit = s.find(sep, pos)) != std::string::npos; pos = hit + sep.size())
          out.emplace_back(s.substr(pos, hit - pos));
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
      return Status::invalid_argument("chat template raised an exception: " +
                                      (a.empty() ? std::string() : a[0].to_output()));
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
      JinjaDict loop{{"index", JinjaValue(idx + 1)},
                     {"index0", JinjaValue(idx)},
                     {"first", JinjaValue(i == 0)},
                     {"last", JinjaValue(idx == len - 1)},
                     {"length", JinjaValue(len)},
                     {"revindex", JinjaValue(len - idx)},
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
          const int64_t n =
              o->is_list() ? static_cast<int64_t>(o->list().size()) : static_cast<int64_t>(o->str().size());
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
        auto f = eval_applied(e);
        if (!f) return f.status();
        if (!f->subject.is_function()) return rt_error("calling something that is not a function");
        return f->subject.fn()(f->args, f->kwargs);
      }
      case EK::kFilter: {
        auto in = eval_applied(e);
        if (!in) return in.status();
        return filter(e.name, in->subject, in->args, in->kwargs);
      }
      case EK::kTest: {
        auto in = eval_applied(e);
        if (!in) return in.status();
        auto r = test(e.name, in->subject, in->args);
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
      bool r = false;
      if (b.is_string() && a.is_string()) r = b.str().find(a.str()) != std::string::npos;
      else if (b.is_list())
        r = std::any_of(b.list().begin(), b.list().end(), [&](const JinjaValue& x) { return x.equals(a); });
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
    if (f == "abs" && in.is_number())
      return in.is_int() ? JinjaValue(static_cast<int64_t>(std::llabs(in.integer())))
                         : JinjaValue(std::fabs(in.number()));
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
      if (a[0].is_list())
        return std::any_of(a[0].list().begin(), a[0].list().end(), [&](const JinjaValue& x) { return x.equals(v); });
      if (a[0].is_string() && v.is_string()) return a[0].str().find(v.str()) != std::string::npos;
      if (a[0].is_dict() && v.is_string()) return !a[0].get(v.str()).is_undefined();
      return false;
    }
    if (t == "divisibleby")
      return !a.empty() && v.is_int() && a[0].is_int() && a[0].integer() != 0 && v.integer() % a[0].integer() == 0;
    return rt_error("unsupported test '" + t + "'");
  }

  std::vector<std::map<std::string, JinjaValue>> scopes_;
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
