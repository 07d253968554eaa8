#include "chat/jinja_value.h"

#include <cmath>
#include <cstdio>

namespace pagoda {

bool JinjaValue::truthy() const {
  if (is_undefined() || is_none()) return false;
  if (is_bool()) return std::get<bool>(v);
  if (is_number()) return number() != 0;
  if (is_string()) return !str().empty();
  if (is_list()) return !list().empty();
  if (is_dict()) return !dict().empty();
  return true;
}

namespace {

std::string number_text(const JinjaValue& x) {
  if (x.is_int()) return std::to_string(std::get<int64_t>(x.v));
  const double d = std::get<double>(x.v);
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e16) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", d);
    return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

void json_string(const std::string& s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
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
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void to_json_rec(const JinjaValue& x, int indent, int depth, std::string* out) {
  auto newline = [&](int d) {
    if (indent < 0) return;
    out->push_back('\n');
    out->append(static_cast<size_t>(indent * d), ' ');
  };
  if (x.is_undefined() || x.is_none()) *out += "null";
  else if (x.is_bool()) *out += std::get<bool>(x.v) ? "true" : "false";
  else if (x.is_number()) *out += number_text(x);
  else if (x.is_string()) json_string(x.str(), out);
  else if (x.is_list()) {
    const JinjaList& l = x.list();
    out->push_back('[');
    for (size_t i = 0; i < l.size(); ++i) {
      if (i) *out += indent < 0 ? ", " : ",";
      newline(depth + 1);
      to_json_rec(l[i], indent, depth + 1, out);
    }
    if (!l.empty()) newline(depth);
    out->push_back(']');
  } else if (x.is_dict()) {
    const JinjaDict& d = x.dict();
    out->push_back('{');
    for (size_t i = 0; i < d.size(); ++i) {
      if (i) *out += indent < 0 ? ", " : ",";
      newline(depth + 1);
      json_string(d[i].first, out);
      *out += ": ";
      to_json_rec(d[i].second, indent, depth + 1, out);
    }
    if (!d.empty()) newline(depth);
    out->push_back('}');
  } else {
    *out += "null";
  }
}

void repr(const JinjaValue& x, std::string* out) {
  if (x.is_string()) {
    *out += '\'' + x.str() + '\'';
  } else if (x.is_list()) {
    out->push_back('[');
    for (size_t i = 0; i < x.list().size(); ++i) {
      if (i) *out += ", ";
      repr(x.list()[i], out);
    }
    out->push_back(']');
  } else if (x.is_dict()) {
    out->push_back('{');
    for (size_t i = 0; i < x.dict().size(); ++i) {
      if (i) *out += ", ";
      *out += '\'' + x.dict()[i].first + "': ";
      repr(x.dict()[i].second, out);
    }
    out->push_back('}');
  } else {
    *out += x.to_output();
  }
}

}  // namespace

std::string JinjaValue::to_output() const {
  if (is_undefined()) return "";
  if (is_none()) return "None";
  if (is_bool()) return std::get<bool>(v) ? "True" : "False";
  if (is_number()) return number_text(*this);
  if (is_string()) return str();
  if (is_function()) return "<function>";
  std::string out;
  repr(*this, &out);
  return out;
}

std::string JinjaValue::to_json(int indent) const {
  std::string out;
  to_json_rec(*this, indent, 0, &out);
  return out;
}

bool JinjaValue::equals(const JinjaValue& o) const {
  if (is_number() && o.is_number()) return number() == o.number();
  if (is_bool() && o.is_bool()) return std::get<bool>(v) == std::get<bool>(o.v);
  if (is_string() && o.is_string()) return str() == o.str();
  if ((is_none() || is_undefined()) && (o.is_none() || o.is_undefined())) return is_none() == o.is_none();
  if (is_list() && o.is_list()) {
    if (list().size() != o.list().size()) return false;
    for (size_t i = 0; i < list().size(); ++i)
      if (!list()[i].equals(o.list()[i])) return false;
    return true;
  }
  if (is_dict() && o.is_dict()) return &dict() == &o.dict();
  return false;
}

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
