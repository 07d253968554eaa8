// JinjaValue: the dynamic values of the Jinja subset used by chat templates
// (undefined, none, bool, int, float, string, list, dict, callable), with
// the Python behaviour Jinja2 gives them: str() and repr() text, json.dumps
// text, ==. A tag marks the Python types that behave differently from their
// plain counterparts: Markup strings (the 'safe' filter: '+' escapes the
// other operand), generators (what map/select/items return: not
// JSON-serializable, no length), tuples (printed in parentheses, never equal
// to a list) and namespaces (attributes may be set).
// Lists and dicts are shared (copying a value copies a pointer), as in
// Python; dicts keep insertion order (tojson prints keys in that order).
// Values are not thread-safe when shared; each render builds its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/status.h"

namespace pagoda {

// The longest text one render may build: its output, and any one string
// made on the way (tojson, repr, indent), so a hostile template or request
// data cannot grow memory without bound.
constexpr size_t kMaxJinjaTextBytes = size_t{64} << 20;

struct JinjaValue;
using JinjaList = std::vector<JinjaValue>;
using JinjaDict = std::vector<std::pair<std::string, JinjaValue>>;
// Positional arguments, then keyword arguments.
using JinjaFunction = std::function<Result<JinjaValue>(std::vector<JinjaValue>& args,
                                                       std::vector<std::pair<std::string, JinjaValue>>& kwargs)>;

struct JinjaUndefined {};

enum class JinjaTag : uint8_t {
  kPlain,
  kMarkup,     // a string: markupsafe.Markup
  kGenerator,  // a list: a one-pass iterator in Jinja2 (map, select, items, ...)
  kNamespace,  // a dict: namespace(...)
  kTuple,      // a list: a Python tuple (dict items, dictsort pairs, (a, b) literals)
};

// json.dumps options (transformers' tojson filter passes them through).
struct JinjaJsonStyle {
  bool pretty = false;          // indent given (even 0): newlines
  std::string indent;           // per level, when pretty
  std::string item_sep = ", ";  // "," when pretty, unless separators= says
  std::string key_sep = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};

struct JinjaValue {
  std::variant<JinjaUndefined, std::nullptr_t, bool, int64_t, double, std::string, std::shared_ptr<JinjaList>,
               std::shared_ptr<JinjaDict>, std::shared_ptr<JinjaFunction>>
      v;
  JinjaTag tag = JinjaTag::kPlain;

  JinjaValue() = default;
  JinjaValue(std::nullptr_t) : v(nullptr) {}
  JinjaValue(bool b) : v(b) {}
  JinjaValue(int64_t i) : v(i) {}
  JinjaValue(int i) : v(static_cast<int64_t>(i)) {}
  JinjaValue(double d) : v(d) {}
  JinjaValue(std::string s) : v(std::move(s)) {}
  JinjaValue(const char* s) : v(std::string(s)) {}
  JinjaValue(JinjaList l) : v(std::make_shared<JinjaList>(std::move(l))) {}
  JinjaValue(JinjaDict d) : v(std::make_shared<JinjaDict>(std::move(d))) {}
  static JinjaValue function(JinjaFunction f) {
    JinjaValue r;
    r.v = std::make_shared<JinjaFunction>(std::move(f));
    return r;
  }

  bool is_undefined() const { return std::holds_alternative<JinjaUndefined>(v); }
  bool is_none() const { return std::holds_alternative<std::nullptr_t>(v); }
  bool is_bool() const { return std::holds_alternative<bool>(v); }
  bool is_int() const { return std::holds_alternative<int64_t>(v); }
  bool is_number() const { return is_int() || std::holds_alternative<double>(v); }
  bool is_string() const { return std::holds_alternative<std::string>(v); }
  bool is_list() const { return std::holds_alternative<std::shared_ptr<JinjaList>>(v); }
  bool is_dict() const { return std::holds_alternative<std::shared_ptr<JinjaDict>>(v); }
  bool is_function() const { return std::holds_alternative<std::shared_ptr<JinjaFunction>>(v); }

  const std::string& str() const { return std::get<std::string>(v); }
  JinjaList& list() const { return *std::get<std::shared_ptr<JinjaList>>(v); }
  JinjaDict& dict() const { return *std::get<std::shared_ptr<JinjaDict>>(v); }
  const JinjaFunction& fn() const { return *std::get<std::shared_ptr<JinjaFunction>>(v); }
  double number() const { return is_int() ? static_cast<double>(std::get<int64_t>(v)) : std::get<double>(v); }
  int64_t integer() const { return is_int() ? std::get<int64_t>(v) : static_cast<int64_t>(std::get<double>(v)); }

  // Python truthiness; undefined is false.
  bool truthy() const;
  // What {{ value }} prints (Python's str(): None, True, 1.5, lists as repr).
  std::string to_output() const;
  // Python's repr() (strings quoted as Python quotes them).
  std::string repr() const;
  // JSON text as Python's json.dumps(ensure_ascii=False) writes it: ", " and
  // ": " separators, or newlines and `indent` spaces when indent >= 0.
  std::string to_json(int indent = -1) const;
  // json.dumps with `style`; InvalidArgument for what json.dumps refuses
  // (undefined, functions, generators, namespaces, nesting beyond 512).
  Result<std::string> to_json(const JinjaJsonStyle& style) const;
  // Python == (dicts by content, whatever the key order).
  bool equals(const JinjaValue& o) const;
  // Dict lookup; undefined when missing or not a dict.
  JinjaValue get(const std::string& key) const;
  void set(const std::string& key, JinjaValue value) const;  // dicts only
};

}  // namespace pagoda
