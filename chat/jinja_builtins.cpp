#include "chat/jinja_builtins.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace pagoda::jinja_builtins {

namespace {

bool is_py_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f'); }

std::string strip_chars(const std::string& s, const JinjaValue& chars, bool left, bool right) {
  const bool ws = !chars.is_string();
  auto is_strip = [&](char c) { return ws ? is_py_space(c) : chars.str().find(c) != std::string::npos; };
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && is_strip(s[b])) ++b;
  if (right)
    while (e > b && is_strip(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// Python's str.replace; an error when the result would pass the text limit.
Result<std::string> replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  const Status too_long = Status::invalid_argument("chat template: replace: the text would be too long");
  std::string out;
  if (from.empty()) {  // Python inserts `to` around every character
    int64_t n = 0;
    for (const std::string& ch : utf8_chars(s)) {
      if (count < 0 || n++ < count) out += to;
      out += ch;
      if (out.size() > kMaxJinjaTextBytes) return too_long;
    }
    if (count < 0 || n < count) out += to;
    return out;
  }
  // Built anew (in-place replacement is quadratic on long texts).
  size_t done = 0;
  int64_t n = 0;
  for (size_t pos; (count < 0 || n < count) && (pos = s.find(from, done)) != std::string::npos; ++n) {
    out.append(s, done, pos - done);
    out += to;
    done = pos + from.size();
    if (out.size() > kMaxJinjaTextBytes) return too_long;
  }
  out.append(s, done, std::string::npos);
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

// str.title(): a letter after a non-letter starts a word.
std::string title_case(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c))
                                  : std::tolower(static_cast<unsigned char>(c)));
      start = false;
    } else {
      start = (static_cast<unsigned char>(c) & 0x80) == 0;  // inside a UTF-8 letter: still a word
    }
  }
  return out;
}

std::string capitalize(const std::string& s) {
  std::string r = lower(s);
  if (!r.empty()) r[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(r[0])));
  return r;
}

// Python's str.splitlines() (without the line ends).
std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t end_len = 0;
    if (c == '\r') end_len = i + 1 < s.size() && s[i + 1] == '\n' ? 2 : 1;
    else if (c == '\n' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e)) end_len = 1;
    else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x85) end_len = 2;
    else if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
             (static_cast<unsigned char>(s[i + 2]) == 0xa8 || static_cast<unsigned char>(s[i + 2]) == 0xa9))
      end_len = 3;
    if (end_len == 0) {
      cur.push_back(s[i]);
      continue;
    }
    out.push_back(std::move(cur));
    cur.clear();
    i += end_len - 1;
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

JinjaValue arg(const Args& a, const Kwargs& kw, size_t i, const char* name, JinjaValue dflt = {}) {
  for (const auto& [k, v] : kw)
    if (k == name) return v;
  return i < a.size() ? a[i] : dflt;
}

JinjaValue tuple(JinjaList items) {
  JinjaValue v(std::move(items));
  v.tag = JinjaTag::kTuple;
  return v;
}

JinjaValue generator(JinjaList items) {
  JinjaValue v(std::move(items));
  v.tag = JinjaTag::kGenerator;
  return v;
}

JinjaValue markup(std::string s) {
  JinjaValue v(std::move(s));
  v.tag = JinjaTag::kMarkup;
  return v;
}

// str(value) as Jinja2's soft_str: Markup stays Markup.
JinjaValue soft_str(const JinjaValue& v, std::string text) {
  return v.is_string() && v.tag == JinjaTag::kMarkup ? markup(std::move(text)) : JinjaValue(std::move(text));
}

Result<int64_t> length(const JinjaValue& v) {
  if (v.is_undefined()) return 0;
  if (v.is_string()) return static_cast<int64_t>(utf8_chars(v.str()).size());
  if (v.is_list() && v.tag != JinjaTag::kGenerator) return static_cast<int64_t>(v.list().size());
  if (v.is_dict() && v.tag != JinjaTag::kNamespace) return static_cast<int64_t>(v.dict().size());
  return error("object of type '" + type_name(v) + "' has no len()");
}

// Python's <, for sort/min/max/dictsort (numbers with numbers, strings with strings).
Result<bool> less(const JinjaValue& a, const JinjaValue& b) {
  if (a.is_number() && b.is_number()) return a.number() < b.number();
  if (a.is_bool() || b.is_bool()) {
    const double x = a.is_bool() ? std::get<bool>(a.v) : a.is_number() ? a.number() : NAN;
    const double y = b.is_bool() ? std::get<bool>(b.v) : b.is_number() ? b.number() : NAN;
    if (!std::isnan(x) && !std::isnan(y)) return x < y;
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  return error("'<' not supported between a " + type_name(a) + " and a " + type_name(b));
}

// The attribute `path` ("a.b" or "0") of x, as Jinja2's make_attrgetter.
JinjaValue attribute_of(const JinjaValue& x, const JinjaValue& path) {
  if (path.is_int()) {
    if (!x.is_list()) return {};
    const int64_t i = path.integer();
    return i >= 0 && i < static_cast<int64_t>(x.list().size()) ? x.list()[static_cast<size_t>(i)] : JinjaValue();
  }
  JinjaValue cur = x;
  const std::string p = path.to_output();
  size_t start = 0;
  for (;;) {
    const size_t dot = p.find('.', start);
    const std::string part = p.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    size_t i = 0;
    if (digits && cur.is_list() && std::from_chars(part.data(), part.data() + part.size(), i).ec == std::errc()) {
      cur = i < cur.list().size() ? cur.list()[i] : JinjaValue();
    } else {
      cur = cur.get(part);
    }
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

Result<JinjaValue> sorted(const JinjaValue& in, const Args& a, const Kwargs& kw) {
  auto l = iterate(in);
  if (!l) return l.status();
  const bool reverse = arg(a, kw, 0, "reverse", JinjaValue(false)).truthy();
  const bool case_sensitive = arg(a, kw, 1, "case_sensitive", JinjaValue(false)).truthy();
  const JinjaValue attr = arg(a, kw, 2, "attribute");
  auto key = [&](const JinjaValue& x) {
    JinjaValue k = attr.is_undefined() || attr.is_none() ? x : attribute_of(x, attr);
    if (!case_sensitive && k.is_string()) k = JinjaValue(lower(k.str()));
    return k;
  };
  Status st = Status::ok();
  JinjaList out = *l;
  std::stable_sort(out.begin(), out.end(), [&](const JinjaValue& x, const JinjaValue& y) {
    auto r = reverse ? less(key(y), key(x)) : less(key(x), key(y));
    if (!r) {
      if (st.is_ok()) st = r.status();
      return false;
    }
    return *r;
  });
  if (!st.is_ok()) return st;
  return JinjaValue(std::move(out));
}

Result<JinjaValue> indent(const JinjaValue& in, const Args& a, const Kwargs& kw) {
  const JinjaValue width = arg(a, kw, 0, "width", JinjaValue(4));
  const bool first = arg(a, kw, 1, "first", JinjaValue(false)).truthy();
  const bool blank = arg(a, kw, 2, "blank", JinjaValue(false)).truthy();
  std::string ind;
  if (width.is_string()) ind = width.str();
  else if (width.is_int() && width.integer() > 0 && width.integer() < 100000)
    ind.assign(static_cast<size_t>(width.integer()), ' ');
  else if (!width.is_int()) return error("indent: width must be a number or a string");
  const std::vector<std::string> lines = split_lines(in.to_output() + "\n");
  if (lines.size() * ind.size() > kMaxJinjaTextBytes) return error("indent: the text would be too long");
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + ind : "") + lines[i];
  } else if (!lines.empty()) {
    rv = lines[0];
    if (lines.size() > 1) {
      rv += "\n";
      for (size_t i = 1; i < lines.size(); ++i) rv += (i > 1 ? "\n" : "") + (lines[i].empty() ? "" : ind) + lines[i];
    }
  }
  if (first) rv = ind + rv;
  return soft_str(in, rv);
}

Result<JinjaValue> tojson(const JinjaValue& in, const Args& a, const Kwargs& kw) {
  // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
  JinjaJsonStyle st;
  st.ensure_ascii = arg(a, kw, 0, "ensure_ascii", JinjaValue(false)).truthy();
  const JinjaValue ind = arg(a, kw, 1, "indent", JinjaValue(nullptr));
  const JinjaValue sep = arg(a, kw, 2, "separators", JinjaValue(nullptr));
  st.sort_keys = arg(a, kw, 3, "sort_keys", JinjaValue(false)).truthy();
  if (ind.is_int()) {
    st.pretty = true;
    if (ind.integer() > 0) st.indent.assign(static_cast<size_t>(std::min<int64_t>(ind.integer(), 1000)), ' ');
  } else if (ind.is_string()) {
    st.pretty = true;
    st.indent = ind.str();
  } else if (!ind.is_none()) {
    return error("tojson: indent must be an integer or a string");
  }
  if (st.pretty) st.item_sep = ",";
  if (sep.is_list() && sep.list().size() == 2 && sep.list()[0].is_string() && sep.list()[1].is_string()) {
    st.item_sep = sep.list()[0].str();
    st.key_sep = sep.list()[1].str();
  } else if (!sep.is_none()) {
    return error("tojson: separators must be a pair of strings");
  }
  auto text = in.to_json(st);
  if (!text) return text.status();
  return JinjaValue(std::move(text).value());
}

// select/reject/selectattr/rejectattr.
Result<JinjaValue> select(const std::string& f, const JinjaValue& in, const Args& a, const Kwargs& kw) {
  if (!in.truthy()) return generator({});
  auto l = iterate(in);
  if (!l) return l.status();
  const bool by_attr = f == "selectattr" || f == "rejectattr";
  const bool keep_if = f == "select" || f == "selectattr";
  size_t k = 0;
  JinjaValue attr;
  if (by_attr) {
    if (a.empty()) return error(f + " needs an attribute name");
    attr = a[k++];
  }
  JinjaList out;
  for (const JinjaValue& x : *l) {
    const JinjaValue v = by_attr ? attribute_of(x, attr) : x;
    bool r;
    if (k >= a.size()) {
      r = v.truthy();
    } else {
      auto t = test(a[k].to_output(), v, Args(a.begin() + static_cast<long>(k) + 1, a.end()));
      if (!t) return t.status();
      r = *t;
    }
    if (r == keep_if) out.push_back(x);
  }
  (void)kw;
  return generator(std::move(out));
}

Result<JinjaValue> map(const JinjaValue& in, const Args& a, const Kwargs& kw) {
  if (!in.truthy()) return generator({});
  auto l = iterate(in);
  if (!l) return l.status();
  const JinjaValue attr = arg(a, kw, 99, "attribute");
  const JinjaValue dflt = arg(a, kw, 99, "default");
  JinjaList out;
  for (const JinjaValue& x : *l) {
    if (!attr.is_undefined()) {
      JinjaValue v = attribute_of(x, attr);
      out.push_back(v.is_undefined() && !dflt.is_undefined() ? dflt : v);
    } else if (!a.empty() && a[0].is_string()) {
      auto r = filter(a[0].str(), x, Args(a.begin() + 1, a.end()), {});
      if (!r) return r;
      out.push_back(*r);
    } else {
      return error("map needs attribute= or a filter name");
    }
  }
  return generator(std::move(out));
}

Result<JinjaValue> dictsort(const JinjaValue& in, const Args& a, const Kwargs& kw) {
  if (!in.is_dict() || in.tag == JinjaTag::kNamespace) return error("dictsort needs a dict");
  const bool case_sensitive = arg(a, kw, 0, "case_sensitive", JinjaValue(false)).truthy();
  const std::string by = arg(a, kw, 1, "by", JinjaValue("key")).to_output();
  const bool reverse = arg(a, kw, 2, "reverse", JinjaValue(false)).truthy();
  if (by != "key" && by != "value") return error("dictsort: by must be 'key' or 'value'");
  JinjaList pairs;
  for (const auto& [k, v] : in.dict()) pairs.push_back(tuple({JinjaValue(k), v}));
  Args sort_args{JinjaValue(reverse), JinjaValue(case_sensitive), JinjaValue(by == "key" ? 0 : 1)};
  return sorted(JinjaValue(std::move(pairs)), sort_args, {});
}

Result<JinjaValue> sum_filter(const JinjaValue& in, const Args& a, const Kwargs& kw) {
  auto l = iterate(in);
  if (!l) return l.status();
  const JinjaValue attr = arg(a, kw, 0, "attribute");
  JinjaValue acc = arg(a, kw, 1, "start", JinjaValue(0));
  for (const JinjaValue& x : *l) {
    const JinjaValue v = attr.is_undefined() || attr.is_none() ? x : attribute_of(x, attr);
    if (!acc.is_number() || !v.is_number()) return error("sum needs numbers");
    acc = acc.is_int() && v.is_int() ? JinjaValue(acc.integer() + v.integer()) : JinjaValue(acc.number() + v.number());
  }
  return acc;
}

Result<JinjaValue> min_max(bool is_max, const JinjaValue& in, const Args& a, const Kwargs& kw) {
  auto s = sorted(
      in, {JinjaValue(is_max), arg(a, kw, 0, "case_sensitive", JinjaValue(false)), arg(a, kw, 1, "attribute")}, {});
  if (!s) return s;
  if (s->list().empty()) return JinjaValue();
  return s->list().front();
}

size_t word_count(const std::string& s) {
  size_t n = 0;
  bool in_word = false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    const bool w = std::isalnum(u) || c == '_' || u >= 0x80;
    if (w && !in_word) ++n;
    in_word = w;
  }
  return n;
}

JinjaValue fn(JinjaFunction f) { return JinjaValue::function(std::move(f)); }

JinjaValue string_method(const std::string& s, const std::string& name) {
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return fn([s, name](Args& a, Kwargs&) -> Result<JinjaValue> {
      return JinjaValue(strip_chars(s, a.empty() ? JinjaValue() : a[0], name != "rstrip", name != "lstrip"));
    });
  if (name == "upper") return fn([s](Args&, Kwargs&) -> Result<JinjaValue> { return JinjaValue(upper(s)); });
  if (name == "lower") return fn([s](Args&, Kwargs&) -> Result<JinjaValue> { return JinjaValue(lower(s)); });
  if (name == "title") return fn([s](Args&, Kwargs&) -> Result<JinjaValue> { return JinjaValue(title_case(s)); });
  if (name == "capitalize") return fn([s](Args&, Kwargs&) -> Result<JinjaValue> { return JinjaValue(capitalize(s)); });
  if (name == "startswith" || name == "endswith")
    return fn([s, name](Args& a, Kwargs&) -> Result<JinjaValue> {
      if (a.empty()) return error(name + "() needs an argument");
      std::vector<JinjaValue> options = a[0].is_list() ? a[0].list() : std::vector<JinjaValue>{a[0]};
      for (const JinjaValue& o : options) {
        if (!o.is_string()) return error(name + "() needs a string or a tuple of strings");
        const std::string& x = o.str();
        if (x.size() <= s.size() &&
            (name == "startswith" ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0))
          return JinjaValue(true);
      }
      return JinjaValue(false);
    });
  if (name == "replace")
    return fn([s](Args& a, Kwargs&) -> Result<JinjaValue> {
      if (a.size() < 2 || !a[0].is_string() || !a[1].is_string()) return error("replace() needs two strings");
      auto replaced = replace_all(s, a[0].str(), a[1].str(), a.size() > 2 && a[2].is_int() ? a[2].integer() : -1);
      if (!replaced) return replaced.status();
      return JinjaValue(std::move(replaced).value());
    });
  if (name == "split" || name == "rsplit")
    return fn([s, name](Args& a, Kwargs& kw) -> Result<JinjaValue> {
      const JinjaValue sep = arg(a, kw, 0, "sep", JinjaValue(nullptr));
      const JinjaValue maxv = arg(a, kw, 1, "maxsplit", JinjaValue(-1));
      const int64_t max = maxv.is_int() ? maxv.integer() : -1;
      JinjaList out;
      if (sep.is_none()) {
        std::vector<std::string> words;
        size_t i = 0;
        while (i < s.size()) {
          while (i < s.size() && is_py_space(s[i])) ++i;
          size_t j = i;
          while (j < s.size() && !is_py_space(s[j])) ++j;
          if (j > i) words.push_back(s.substr(i, j - i));
          i = j;
        }
        if (max >= 0 && static_cast<int64_t>(words.size()) > max + 1 && name == "split") {
          // the rest after `max` words, leading whitespace stripped
          size_t pos = 0;
          for (int64_t w = 0; w < max; ++w) {
            pos = s.find(words[static_cast<size_t>(w)], pos) + words[static_cast<size_t>(w)].size();
          }
          words.resize(static_cast<size_t>(max));
          words.push_back(strip_chars(s.substr(pos), JinjaValue(), true, false));
        }
        for (auto& w : words) out.emplace_back(std::move(w));
        return JinjaValue(std::move(out));
      }
      if (!sep.is_string() || sep.str().empty()) return error(name + "() needs a non-empty separator");
      const std::string& d = sep.str();
      std::vector<std::string> parts;
      size_t pos = 0;
      for (size_t hit; (hit = s.find(d, pos)) != std::string::npos; pos = hit + d.size())
        parts.push_back(s.substr(pos, hit - pos));
      parts.push_back(s.substr(pos));
      if (max >= 0 && static_cast<int64_t>(parts.size()) > max + 1) {
        std::vector<std::string> merged;
        if (name == "split") {
          merged.assign(parts.begin(), parts.begin() + max);
          std::string rest;
          for (size_t k = static_cast<size_t>(max); k < parts.size(); ++k)
            rest += (k > static_cast<size_t>(max) ? d : "") + parts[k];
          merged.push_back(rest);
        } else {
          const size_t keep = parts.size() - static_cast<size_t>(max);
          std::string rest;
          for (size_t k = 0; k < keep; ++k) rest += (k ? d : "") + parts[k];
          merged.push_back(rest);
          merged.insert(merged.end(), parts.begin() + static_cast<long>(keep), parts.end());
        }
        parts = std::move(merged);
      }
      for (auto& p : parts) out.emplace_back(std::move(p));
      return JinjaValue(std::move(out));
    });
  if (name == "splitlines")
    return fn([s](Args&, Kwargs&) -> Result<JinjaValue> {
      JinjaList out;
      for (auto& l : split_lines(s)) out.emplace_back(std::move(l));
      return JinjaValue(std::move(out));
    });
  if (name == "join")
    return fn([s](Args& a, Kwargs&) -> Result<JinjaValue> {
      if (a.empty()) return error("join() needs an iterable");
      auto l = iterate(a[0]);
      if (!l) return l.status();
      std::string out;
      for (size_t i = 0; i < l->size(); ++i) {
        if (!(*l)[i].is_string()) return error("join() needs strings");
        if (i) out += s;
        out += (*l)[i].str();
      }
      return JinjaValue(out);
    });
  if (name == "find" || name == "count" || name == "index")
    return fn([s, name](Args& a, Kwargs&) -> Result<JinjaValue> {
      if (a.empty() || !a[0].is_string()) return error(name + "() needs a string");
      const std::string& x = a[0].str();
      if (name == "count") {
        if (x.empty()) return JinjaValue(static_cast<int64_t>(utf8_chars(s).size() + 1));
        int64_t n = 0;
        for (size_t p = s.find(x); p != std::string::npos; p = s.find(x, p + x.size())) ++n;
        return JinjaValue(n);
      }
      const size_t p = s.find(x);
      if (p == std::string::npos) {
        if (name == "index") return error("substring not found");
        return JinjaValue(-1);
      }
      return JinjaValue(static_cast<int64_t>(utf8_chars(s.substr(0, p)).size()));
    });
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "islower" ||
      name == "isupper")
    return fn([s, name](Args&, Kwargs&) -> Result<JinjaValue> {
      if (s.empty()) return JinjaValue(false);
      bool cased = false;
      for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        bool ok = true;
        if (name == "isdigit") ok = std::isdigit(u);
        else if (name == "isalpha") ok = std::isalpha(u);
        else if (name == "isalnum") ok = std::isalnum(u);
        else if (name == "isspace") ok = is_py_space(c);
        else if (name == "islower") ok = !std::isupper(u);
        else ok = !std::islower(u);
        if (!ok) return JinjaValue(false);
        cased = cased || std::isalpha(u);
      }
      return JinjaValue(name == "islower" || name == "isupper" ? cased : true);
    });
  return {};
}

}  // namespace

Status error(const std::string& what) { return Status::invalid_argument("chat template: " + what); }

std::string type_name(const JinjaValue& v) {
  if (v.is_undefined()) return "undefined";
  if (v.is_none()) return "none";
  if (v.is_bool()) return "bool";
  if (v.is_int()) return "int";
  if (v.is_number()) return "float";
  if (v.is_string()) return "string";
  if (v.is_list()) return v.tag == JinjaTag::kGenerator ? "generator" : "list";
  if (v.is_dict()) return v.tag == JinjaTag::kNamespace ? "namespace" : "dict";
  return "function";
}

std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t n = 1;
    while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xc0) == 0x80) ++n;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string escape_html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '"':
        out += "&#34;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

Result<JinjaList> iterate(const JinjaValue& v) {
  if (v.is_list()) return v.list();
  if (v.is_dict() && v.tag != JinjaTag::kNamespace) {
    JinjaList l;
    for (const auto& kv : v.dict()) l.emplace_back(kv.first);
    return l;
  }
  if (v.is_string()) {
    JinjaList l;
    for (auto& ch : utf8_chars(v.str())) l.emplace_back(std::move(ch));
    return l;
  }
  if (v.is_undefined()) return JinjaList{};
  return error("'" + type_name(v) + "' object is not iterable");
}

bool has_method(const JinjaValue& self, const std::string& name) {
  if (self.is_dict() && self.tag != JinjaTag::kNamespace)
    return name == "items" || name == "keys" || name == "values" || name == "get" || name == "copy" || name == "pop" ||
           name == "popitem" || name == "setdefault" || name == "update" || name == "clear";
  return !method(self, name).is_undefined();
}

JinjaValue method(const JinjaValue& self, const std::string& name) {
  if (self.is_string()) return string_method(self.str(), name);
  if (self.is_dict() && self.tag != JinjaTag::kNamespace) {
    if (name == "items" || name == "keys" || name == "values")
      return fn([self, name](Args&, Kwargs&) -> Result<JinjaValue> {
        JinjaList out;
        for (const auto& [k, v] : self.dict()) {
          if (name == "items") out.push_back(tuple({JinjaValue(k), v}));
          else if (name == "keys") out.emplace_back(k);
          else out.push_back(v);
        }
        return JinjaValue(out);
      });
    if (name == "get")
      return fn([self](Args& a, Kwargs&) -> Result<JinjaValue> {
        if (a.empty()) return error("get() needs a key");
        if (!a[0].is_string()) return a.size() > 1 ? a[1] : JinjaValue(nullptr);
        JinjaValue v = self.get(a[0].str());
        if (v.is_undefined()) return a.size() > 1 ? a[1] : JinjaValue(nullptr);
        return v;
      });
    if (name == "copy")
      return fn([self](Args&, Kwargs&) -> Result<JinjaValue> { return JinjaValue(JinjaDict(self.dict())); });
    if (has_method(self, name))
      return fn([name](Args&, Kwargs&) -> Result<JinjaValue> {
        return error("dict." + name + "() is unsafe (the sandbox is immutable)");
      });
  }
  if (self.is_list() && self.tag != JinjaTag::kGenerator) {
    if (name == "append" || name == "extend" || name == "pop" || name == "insert" || name == "remove" ||
        name == "clear" || name == "sort" || name == "reverse")
      return fn([name](Args&, Kwargs&) -> Result<JinjaValue> {
        return error("list." + name + "() is unsafe (the sandbox is immutable)");
      });
    if (name == "index" || name == "count")
      return fn([self, name](Args& a, Kwargs&) -> Result<JinjaValue> {
        if (a.empty()) return error(name + "() needs an argument");
        int64_t n = 0;
        for (size_t i = 0; i < self.list().size(); ++i) {
          if (!self.list()[i].equals(a[0])) continue;
          if (name == "index") return JinjaValue(static_cast<int64_t>(i));
          ++n;
        }
        if (name == "index") return error("list.index(x): x not in list");
        return JinjaValue(n);
      });
  }
  return {};
}

Result<JinjaValue> filter(const std::string& f, const JinjaValue& in, const Args& a, const Kwargs& kw) {
  if (f == "trim") return soft_str(in, strip_chars(in.to_output(), arg(a, kw, 0, "chars"), true, true));
  if (f == "length" || f == "count") {
    auto n = length(in);
    if (!n) return n.status();
    return JinjaValue(*n);
  }
  if (f == "tojson") return tojson(in, a, kw);
  if (f == "upper") return soft_str(in, upper(in.to_output()));
  if (f == "lower") return soft_str(in, lower(in.to_output()));
  if (f == "title") return soft_str(in, title_case(in.to_output()));
  if (f == "capitalize") return soft_str(in, capitalize(in.to_output()));
  if (f == "default" || f == "d") {
    const bool boolean = arg(a, kw, 1, "boolean", JinjaValue(false)).truthy();
    if (in.is_undefined() || (boolean && !in.truthy())) return arg(a, kw, 0, "default_value", JinjaValue(""));
    return in;
  }
  if (f == "first") {
    auto l = iterate(in);
    if (!l) return l.status();
    return l->empty() ? JinjaValue() : l->front();
  }
  if (f == "last") {
    if (in.is_list() && in.tag == JinjaTag::kGenerator) return error("a generator is not reversible");
    auto l = iterate(in);
    if (!l) return l.status();
    return l->empty() ? JinjaValue() : l->back();
  }
  if (f == "join") {
    auto l = iterate(in);
    if (!l) return l.status();
    const std::string sep = arg(a, kw, 0, "d", JinjaValue("")).to_output();
    const JinjaValue attr = arg(a, kw, 1, "attribute");
    std::string out;
    for (size_t i = 0; i < l->size(); ++i) {
      if (i) out += sep;
      out += (attr.is_undefined() || attr.is_none() ? (*l)[i] : attribute_of((*l)[i], attr)).to_output();
    }
    return JinjaValue(out);
  }
  if (f == "string") return soft_str(in, in.to_output());
  if (f == "safe") return markup(in.to_output());
  if (f == "e" || f == "escape" || f == "forceescape")
    return in.is_string() && in.tag == JinjaTag::kMarkup && f != "forceescape" ? in
                                                                               : markup(escape_html(in.to_output()));
  if (f == "int") {
    const JinjaValue dflt = arg(a, kw, 0, "default", JinjaValue(0));
    if (in.is_bool()) return JinjaValue(static_cast<int64_t>(std::get<bool>(in.v)));
    if (in.is_int()) return in;
    if (in.is_number()) return std::isfinite(in.number()) ? JinjaValue(static_cast<int64_t>(in.number())) : dflt;
    if (in.is_string()) {
      const std::string t = strip_chars(in.str(), JinjaValue(), true, true);
      try {
        size_t used = 0;
        const long long v = std::stoll(t, &used);
        if (used == t.size()) return JinjaValue(static_cast<int64_t>(v));
        const double d = std::stod(t, &used);
        if (used == t.size() && std::isfinite(d)) return JinjaValue(static_cast<int64_t>(d));
      } catch (...) {
      }
    }
    return dflt;
  }
  if (f == "float") {
    if (in.is_number()) return JinjaValue(in.number());
    if (in.is_bool()) return JinjaValue(std::get<bool>(in.v) ? 1.0 : 0.0);
    try {
      size_t used = 0;
      const std::string t = strip_chars(in.to_output(), JinjaValue(), true, true);
      const double d = std::stod(t, &used);
      if (used == t.size()) return JinjaValue(d);
    } catch (...) {
    }
    return arg(a, kw, 0, "default", JinjaValue(0.0));
  }
  if (f == "abs") {
    if (in.is_int()) return JinjaValue(in.integer() < 0 ? -in.integer() : in.integer());
    if (in.is_number()) return JinjaValue(std::fabs(in.number()));
    return error("bad operand type for abs(): '" + type_name(in) + "'");
  }
  if (f == "round") {
    if (!in.is_number()) return error("round needs a number");
    const int64_t precision = arg(a, kw, 0, "precision", JinjaValue(0)).integer();
    const std::string how = arg(a, kw, 1, "method", JinjaValue("common")).to_output();
    const double scale = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(precision, -300, 300)));
    const double x = in.number() * scale;
    const double r = how == "ceil" ? std::ceil(x) : how == "floor" ? std::floor(x) : std::nearbyint(x);
    return JinjaValue(r / scale);
  }
  if (f == "list") {
    auto l = iterate(in);
    if (!l) return l.status();
    return JinjaValue(*l);
  }
  if (f == "reverse") {
    if (in.is_string()) {
      auto chars = utf8_chars(in.str());
      std::string out;
      for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
      return JinjaValue(out);
    }
    if (in.is_list() && in.tag == JinjaTag::kGenerator) {
      JinjaList l = in.list();
      std::reverse(l.begin(), l.end());
      return JinjaValue(std::move(l));
    }
    auto l = iterate(in);
    if (!l) return l.status();
    std::reverse(l->begin(), l->end());
    return generator(std::move(l).value());
  }
  if (f == "unique") {
    auto l = iterate(in);
    if (!l) return l.status();
    JinjaList out;
    for (const auto& x : *l)
      if (std::none_of(out.begin(), out.end(), [&](const JinjaValue& y) { return y.equals(x); })) out.push_back(x);
    return generator(std::move(out));
  }
  if (f == "items") {
    if (in.is_undefined()) return generator({});
    if (!in.is_dict() || in.tag == JinjaTag::kNamespace) return error("Can only get item pairs from a mapping.");
    JinjaList out;
    for (const auto& [k, v] : in.dict()) out.push_back(tuple({JinjaValue(k), v}));
    return generator(std::move(out));
  }
  if (f == "dictsort") return dictsort(in, a, kw);
  if (f == "sort") return sorted(in, a, kw);
  if (f == "min" || f == "max") return min_max(f == "max", in, a, kw);
  if (f == "sum") return sum_filter(in, a, kw);
  if (f == "replace") {
    if (a.size() < 2) return error("replace needs two arguments");
    const JinjaValue count = arg(a, kw, 2, "count");
    auto replaced =
        replace_all(in.to_output(), a[0].to_output(), a[1].to_output(), count.is_int() ? count.integer() : -1);
    if (!replaced) return replaced.status();
    return soft_str(in, std::move(replaced).value());
  }
  if (f == "indent") return indent(in, a, kw);
  if (f == "wordcount") return JinjaValue(static_cast<int64_t>(word_count(in.to_output())));
  if (f == "attr") {
    if (a.empty() || !a[0].is_string()) return error("attr needs a name");
    return in.get(a[0].str());
  }
  if (f == "select" || f == "reject" || f == "selectattr" || f == "rejectattr") return select(f, in, a, kw);
  if (f == "map") return map(in, a, kw);
  return error("unsupported filter '" + f + "'");
}

Result<bool> test(const std::string& t, const JinjaValue& v, const Args& a) {
  if (t == "defined") return !v.is_undefined();
  if (t == "undefined") return v.is_undefined();
  if (t == "none") return v.is_none();
  if (t == "string") return v.is_string();
  if (t == "number") return v.is_number() || v.is_bool();
  if (t == "integer") return v.is_int();
  if (t == "float") return v.is_number() && !v.is_int();
  if (t == "boolean") return v.is_bool();
  if (t == "true") return v.is_bool() && std::get<bool>(v.v);
  if (t == "false") return v.is_bool() && !std::get<bool>(v.v);
  if (t == "mapping") return v.is_dict() && v.tag != JinjaTag::kNamespace;
  if (t == "iterable")
    return v.is_list() || (v.is_dict() && v.tag != JinjaTag::kNamespace) || v.is_string() || v.is_undefined();
  if (t == "sequence")
    return (v.is_list() && v.tag != JinjaTag::kGenerator) || (v.is_dict() && v.tag != JinjaTag::kNamespace) ||
           v.is_string() || v.is_undefined();
  if (t == "callable") return v.is_function();
  if (t == "escaped") return v.is_string() && v.tag == JinjaTag::kMarkup;
  if (t == "lower") return v.is_string() && lower(v.str()) == v.str();
  if (t == "upper") return v.is_string() && upper(v.str()) == v.str();
  if (t == "odd" || t == "even") {
    if (!v.is_int()) return error("'" + t + "' needs an integer");
    const int64_t r = ((v.integer() % 2) + 2) % 2;
    return (r == 1) == (t == "odd");
  }
  if (t == "divisibleby") {
    if (a.empty() || !v.is_int() || !a[0].is_int() || a[0].integer() == 0) return error("divisibleby needs integers");
    return v.integer() % a[0].integer() == 0;
  }
  if (t == "eq" || t == "equalto" || t == "==") return !a.empty() && v.equals(a[0]);
  if (t == "ne" || t == "!=") return a.empty() || !v.equals(a[0]);
  if (t == "sameas") {
    if (a.empty()) return false;
    if (v.is_list() && a[0].is_list()) return &v.list() == &a[0].list();
    if (v.is_dict() && a[0].is_dict()) return &v.dict() == &a[0].dict();
    if ((v.is_none() && a[0].is_none()) || (v.is_bool() && a[0].is_bool())) return v.equals(a[0]);
    return false;
  }
  if (t == "lt" || t == "<" || t == "le" || t == "<=" || t == "gt" || t == ">" || t == "ge" || t == ">=") {
    if (a.empty()) return error("'" + t + "' needs an argument");
    auto lt = less(v, a[0]);
    if (!lt) return lt.status();
    auto gt = less(a[0], v);
    if (!gt) return gt.status();
    if (t == "lt" || t == "<") return *lt;
    if (t == "gt" || t == ">") return *gt;
    if (t == "le" || t == "<=") return !*gt;
    return !*lt;
  }
  if (t == "in") {
    if (a.empty()) return false;
    const JinjaValue& c = a[0];
    if (c.is_string()) {
      if (!v.is_string()) return error("'in <string>' requires a string on the left");
      return c.str().find(v.str()) != std::string::npos;
    }
    if (c.is_dict() && c.tag != JinjaTag::kNamespace) return v.is_string() && !c.get(v.str()).is_undefined();
    if (c.is_list())
      return std::any_of(c.list().begin(), c.list().end(), [&](const JinjaValue& x) { return x.equals(v); });
    if (c.is_undefined()) return false;
    return error("argument of type '" + type_name(c) + "' is not iterable");
  }
  return error("unsupported test '" + t + "'");
}

}  // namespace pagoda::jinja_builtins
