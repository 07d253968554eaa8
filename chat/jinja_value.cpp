#include "chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace pagoda {

namespace {

// Values nest as deep as the data (a request's JSON) or a template makes
// them; printing, comparing and json.dumps stop at this depth.
constexpr int kMaxNesting = 512;

// Python's repr(float): the shortest digits that read back the same, fixed
// notation for exponents -4..15, else d.ddde+XX.
std::string float_text(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  std::string sign;
  if (!sci.empty() && sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e_pos = sci.find('e');
  std::string digits = sci.substr(0, e_pos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp = std::atoi(sci.c_str() + e_pos + 1);
  // (appends only: GCC 12 warns falsely (-Wrestrict) on "literal" + string)
  std::string out = sign;
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const size_t int_digits = static_cast<size_t>(exp) + 1;
      if (digits.size() < int_digits) digits.append(int_digits - digits.size(), '0');
      out.append(digits, 0, int_digits);
      out.push_back('.');
      if (digits.size() > int_digits) out.append(digits, int_digits, std::string::npos);
      else out.push_back('0');
    } else {
      out.append("0.");
      out.append(static_cast<size_t>(-exp - 1), '0');
      out.append(digits);
    }
  } else {
    out.push_back(digits[0]);
    if (digits.size() > 1) {
      out.push_back('.');
      out.append(digits, 1, std::string::npos);
    }
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out.append(e);
  }
  return out;
}

std::string number_text(const JinjaValue& x) {
  if (x.is_int()) return std::to_string(std::get<int64_t>(x.v));
  return float_text(std::get<double>(x.v));
}

// One UTF-8 sequence at s[i]: its code point and length (a stray byte is
// itself, length 1).
uint32_t decode_utf8(const std::string& s, size_t i, size_t* len) {
  const auto b = static_cast<unsigned char>(s[i]);
  int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;
  if (i + static_cast<size_t>(n) > s.size()) n = 1;
  uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1f) : n == 3 ? (b & 0x0f) : (b & 0x07);
  for (int k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((c >> 6) != 2) {
      n = 1;
      cp = b;
      break;
    }
    cp = (cp << 6) | (c & 0x3f);
  }
  *len = static_cast<size_t>(n);
  return cp;
}

void json_string(const std::string& s, bool ensure_ascii, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          *out += buf;
        } else if (c >= 0x80 && ensure_ascii) {
          size_t len = 1;
          uint32_t cp = decode_utf8(s, i, &len);
          char buf[16];
          if (cp >= 0x10000) {
            cp -= 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", cp);
          }
          *out += buf;
          i += len;
          continue;
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

Status json_rec(const JinjaValue& x, const JinjaJsonStyle& st, int depth, std::string* out) {
  if (depth > kMaxNesting) return Status::invalid_argument("chat template: tojson: nesting too deep");
  if (out->size() > kMaxJinjaTextBytes) return Status::invalid_argument("chat template: tojson: the text is too long");
  auto newline = [&](int d) {
    if (!st.pretty) return;
    out->push_back('\n');
    for (int k = 0; k < d; ++k) *out += st.indent;
  };
  if (x.is_none()) {
    *out += "null";
  } else if (x.is_bool()) {
    *out += std::get<bool>(x.v) ? "true" : "false";
  } else if (x.is_int()) {
    *out += number_text(x);
  } else if (x.is_number()) {
    const double d = x.number();
    *out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity") : float_text(d);
  } else if (x.is_string()) {
    json_string(x.str(), st.ensure_ascii, out);
  } else if (x.is_list() && x.tag != JinjaTag::kGenerator) {
    const JinjaList& l = x.list();
    out->push_back('[');
    for (size_t i = 0; i < l.size(); ++i) {
      if (i) *out += st.item_sep;
      newline(depth + 1);
      Status s = json_rec(l[i], st, depth + 1, out);
      if (!s.is_ok()) return s;
    }
    if (!l.empty()) newline(depth);
    out->push_back(']');
  } else if (x.is_dict() && x.tag != JinjaTag::kNamespace) {
    std::vector<const std::pair<std::string, JinjaValue>*> items;
    for (const auto& kv : x.dict()) items.push_back(&kv);
    if (st.sort_keys)
      std::stable_sort(items.begin(), items.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
    out->push_back('{');
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) *out += st.item_sep;
      newline(depth + 1);
      json_string(items[i]->first, st.ensure_ascii, out);
      *out += st.key_sep;
      Status s = json_rec(items[i]->second, st, depth + 1, out);
      if (!s.is_ok()) return s;
    }
    if (!items.empty()) newline(depth);
    out->push_back('}');
  } else {
    const char* what = x.is_undefined() ? "Undefined"
                       : x.is_list()    ? "generator"
                       : x.is_dict()    ? "Namespace"
                                        : "function";
    return Status::invalid_argument(std::string("chat template: tojson: Object of type ") + what +
                                    " is not JSON serializable");
  }
  return Status::ok();
}

// Whether Python's str.isprintable() holds for the code point (controls,
// separators other than space and format characters are not printable).
bool printable(uint32_t cp) {
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad) return false;
  if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f)) return false;
  if ((cp >= 0x205f && cp <= 0x2064) || cp == 0x3000 || cp == 0xfeff) return false;
  return true;
}

void string_repr(const std::string& s, std::string* out) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  out->push_back(quote);
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    const uint32_t cp = decode_utf8(s, i, &len);
    char buf[16];
    if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(cp));
    } else if (cp == '\n') {
      *out += "\\n";
    } else if (cp == '\r') {
      *out += "\\r";
    } else if (cp == '\t') {
      *out += "\\t";
    } else if (!printable(cp)) {
      std::snprintf(buf, sizeof buf, cp < 0x100 ? "\\x%02x" : "\\u%04x", cp);
      *out += buf;
    } else {
      out->append(s, i, len);
    }
    i += len;
  }
  out->push_back(quote);
}

void repr_rec(const JinjaValue& x, int depth, std::string* out) {
  if (depth > kMaxNesting || out->size() > kMaxJinjaTextBytes) {  // cut short; the render's output limit refuses it
    *out += "...";
    return;
  }
  if (x.is_string()) {
    if (x.tag == JinjaTag::kMarkup) *out += "Markup(";
    string_repr(x.str(), out);
    if (x.tag == JinjaTag::kMarkup) *out += ")";
  } else if (x.is_list() && x.tag == JinjaTag::kGenerator) {
    *out += "<generator object>";
  } else if (x.is_list()) {
    const bool tuple = x.tag == JinjaTag::kTuple;
    out->push_back(tuple ? '(' : '[');
    for (size_t i = 0; i < x.list().size(); ++i) {
      if (i) *out += ", ";
      repr_rec(x.list()[i], depth + 1, out);
    }
    if (tuple && x.list().size() == 1) out->push_back(',');
    out->push_back(tuple ? ')' : ']');
  } else if (x.is_dict()) {
    *out += x.tag == JinjaTag::kNamespace ? "<Namespace {" : "{";
    for (size_t i = 0; i < x.dict().size(); ++i) {
      if (i) *out += ", ";
      string_repr(x.dict()[i].first, out);
      *out += ": ";
      repr_rec(x.dict()[i].second, depth + 1, out);
    }
    *out += x.tag == JinjaTag::kNamespace ? "}>" : "}";
  } else if (x.is_undefined()) {
    *out += "Undefined";
  } else {
    *out += x.to_output();
  }
}

bool equals_rec(const JinjaValue& a, const JinjaValue& o, int depth) {
  if (depth > kMaxNesting) return false;
  if (a.is_number() && o.is_number()) return a.number() == o.number();
  if (a.is_bool() && o.is_bool()) return std::get<bool>(a.v) == std::get<bool>(o.v);
  if (a.is_bool() && o.is_number()) return (std::get<bool>(a.v) ? 1.0 : 0.0) == o.number();
  if (a.is_number() && o.is_bool()) return a.number() == (std::get<bool>(o.v) ? 1.0 : 0.0);
  if (a.is_string() && o.is_string()) return a.str() == o.str();
  if (a.is_none() || o.is_none()) return a.is_none() && o.is_none();
  if (a.is_undefined() || o.is_undefined()) return a.is_undefined() && o.is_undefined();
  if (a.is_list() && o.is_list()) {
    if (a.tag == JinjaTag::kGenerator || o.tag == JinjaTag::kGenerator) return &a.list() == &o.list();
    if ((a.tag == JinjaTag::kTuple) != (o.tag == JinjaTag::kTuple)) return false;
    if (a.list().size() != o.list().size()) return false;
    for (size_t i = 0; i < a.list().size(); ++i)
      if (!equals_rec(a.list()[i], o.list()[i], depth + 1)) return false;
    return true;
  }
  if (a.is_dict() && o.is_dict()) {
    if (&a.dict() == &o.dict()) return true;
    if (a.tag == JinjaTag::kNamespace || o.tag == JinjaTag::kNamespace) return false;
    if (a.dict().size() != o.dict().size()) return false;
    for (const auto& [k, val] : a.dict()) {
      const JinjaValue other = o.get(k);
      if (other.is_undefined() || !equals_rec(val, other, depth + 1)) return false;
    }
    return true;
  }
  if (a.is_function() && o.is_function()) return &a.fn() == &o.fn();
  return false;
}

}  // namespace

bool JinjaValue::truthy() const {
  if (is_undefined() || is_none()) return false;
  if (is_bool()) return std::get<bool>(v);
  if (is_number()) return number() != 0;
  if (is_string()) return !str().empty();
  if (is_list()) return tag == JinjaTag::kGenerator || !list().empty();
  if (is_dict()) return tag == JinjaTag::kNamespace || !dict().empty();
  return true;
}

std::string JinjaValue::to_output() const {
  if (is_undefined()) return "";
  if (is_none()) return "None";
  if (is_bool()) return std::get<bool>(v) ? "True" : "False";
  if (is_number()) return number_text(*this);
  if (is_string()) return str();
  if (is_function()) return "<function>";
  std::string out;
  repr_rec(*this, 0, &out);
  return out;
}

std::string JinjaValue::repr() const {
  std::string out;
  repr_rec(*this, 0, &out);
  return out;
}

std::string JinjaValue::to_json(int indent) const {
  JinjaJsonStyle st;
  if (indent >= 0) {
    st.pretty = true;
    st.indent.assign(static_cast<size_t>(indent), ' ');
    st.item_sep.resize(1);  // "," (an assignment of "," trips GCC 12's -Wrestrict)
  }
  auto r = to_json(st);
  return r ? std::move(r).value() : "null";
}

Result<std::string> JinjaValue::to_json(const JinjaJsonStyle& style) const {
  std::string out;
  Status s = json_rec(*this, style, 0, &out);
  if (!s.is_ok()) return s;
  return out;
}

bool JinjaValue::equals(const JinjaValue& o) const { return equals_rec(*this, o, 0); }

JinjaValue JinjaValue::get(const std::string& key) const {
  if (!is_dict()) return {};
  for (const auto& [k, val] : dict())
    if (k == key) return val;
  return {};
}

void JinjaValue::set(const std::string& key, JinjaValue value) const {
  if (!is_dict()) return;
  for (auto& [k, val] : dict())
    if (k == key) {
      val = std::move(value);
      return;
    }
  dict().emplace_back(key, std::move(value));
}

}  // namespace pagoda
