// The JSON Schema compiler in two steps: translate() turns the schema document
// into a normalized tree of Nodes (one per type alternative; allOf, enum,
// const and $ref siblings merged by intersect()), then emit() writes each
// Node as grammar rules. Errors inside the compiler travel as a SchemaError
// exception that never leaves this file: compile_json_schema() turns it (and
// any nlohmann exception) into a Status.
#include "structured/json_schema_compiler.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/json_nesting.h"
#include "structured/grammar_automaton.h"
#include "structured/json_schema_formats.h"
#include "structured/json_schema_numbers.h"
#include "structured/json_schema_strings.h"
#include "structured/regex_compiler.h"

namespace pagoda::structured {
namespace {

using Json = nlohmann::ordered_json;

// Accept "3.0" where an integer is expected? Draft 6 and later count it as one,
// draft 4 does not; refusing it is right for both.
constexpr bool kIntegerZeroFraction = false;
// Limits that keep a hostile schema from building an enormous grammar.
constexpr uint32_t kMaxRepeat = 100'000;   // minLength / maxLength / minItems / maxItems
constexpr int kMaxRefDepth = 32;           // $ref resolutions nested inside one merge
constexpr long kMaxNesting = 256;          // JSON pointer segments below the root schema
constexpr size_t kMaxAlternatives = 4096;  // anyOf options after merging
constexpr size_t kMaxObjectStates = 20'000;

struct SchemaError {
  Status status;
};

[[noreturn]] void fail(const std::string& message) {
  throw SchemaError{Status::invalid_argument("json_schema: " + message)};
}

std::string at(const std::string& where) { return where.empty() ? "/" : where; }

[[noreturn]] void unsupported(std::string_view keyword, const std::string& where, std::string_view why = {}) {
  std::string message = "'" + std::string(keyword) + "' at " + at(where) + " is not supported";
  if (!why.empty()) message += " (" + std::string(why) + ")";
  fail(message);
}

// Bounds a hostile schema's cost: recursion depth through the compiler's
// recursive passes (a long $ref chain, a $ref cycle under `not`), the stack
// those passes use (frames are several times larger under the sanitizers, so
// a depth that fits in Release can overflow there), and the total work of
// merging and emitting (allOf over recursive definitions).
constexpr int kMaxRecursion = 1000;
constexpr uintptr_t kMaxStackBytes = 2u << 20;  // of the caller's (at least 8 MiB) stack
constexpr long kMaxWork = 500'000;

// The compiler's running totals, checked by RecursionGuard.
struct CompileBudget {
  uintptr_t stack_base = 0;  // frame address where compilation started
  int depth = 0;
  long work = 0;
};

class RecursionGuard {
 public:
  RecursionGuard(CompileBudget& budget, const std::string& where) : budget_(budget) {
    const auto frame = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    const uintptr_t used = budget_.stack_base > frame ? budget_.stack_base - frame : 0;  // the stack grows down
    if (budget_.depth + 1 > kMaxRecursion || used > kMaxStackBytes) {
      if (used > kMaxStackBytes) {
        fail("the schema is nested more than " + std::to_string(budget_.depth) +
             " levels deep (counting $ref links) at " + at(where.substr(0, 200)));
      }
      fail("the schema nests or chains references more than " + std::to_string(kMaxRecursion) + " deep at " +
           at(where.substr(0, 200)));
    }
    if (++budget_.work > kMaxWork) {
      fail("the schema is too complex to compile (over " + std::to_string(kMaxWork) + " steps)");
    }
    ++budget_.depth;
  }
  ~RecursionGuard() { --budget_.depth; }
  RecursionGuard(const RecursionGuard&) = delete;
  RecursionGuard& operator=(const RecursionGuard&) = delete;

 private:
  CompileBudget& budget_;
};

std::string escape_pointer_token(const std::string& token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string child(const std::string& where, const std::string& key) { return where + "/" + escape_pointer_token(key); }
std::string child(const std::string& where, const std::string& key, size_t index) {
  return child(where, key) + "/" + std::to_string(index);
}

// Decodes UTF-8 into code points; false on malformed input.
bool decode_utf8(std::string_view text, std::vector<uint32_t>& out) {
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<uint8_t>(text[i]);
    uint32_t cp = 0;
    size_t n = 0;
    if (b < 0x80) {
      cp = b, n = 1;
    } else if ((b & 0xE0) == 0xC0) {
      cp = b & 0x1F, n = 2;
    } else if ((b & 0xF0) == 0xE0) {
      cp = b & 0x0F, n = 3;
    } else if ((b & 0xF8) == 0xF0) {
      cp = b & 0x07, n = 4;
    } else {
      return false;
    }
    if (i + n > text.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      const auto c = static_cast<uint8_t>(text[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    out.push_back(cp);
    i += n;
  }
  return true;
}

size_t codepoint_count(std::string_view text) {
  size_t n = 0;
  for (char c : text) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return n;
}

// The canonical JSON text of a string's content (as json.dumps writes it with
// ensure_ascii=False), without the quotes.
std::string string_content(const std::string& value) {
  const std::string quoted = Json(value).dump();
  return quoted.substr(1, quoted.size() - 2);
}

// ---------------------------------------------------------------------------
// The normalized schema tree.

enum class Kind { kAny, kNever, kNull, kBoolean, kNumber, kString, kArray, kObject, kConst, kAnyOf, kRef };

struct Node;
using NodePtr = std::shared_ptr<const Node>;

struct Property {
  std::string name;
  NodePtr schema;
  bool required = false;
};

struct Node {
  Kind kind = Kind::kAny;
  std::string where;  // JSON pointer of the schema it comes from, for messages
  // kNumber
  bool integer = false;
  std::optional<NumberBound> lower, upper;
  std::optional<Decimal> multiple_of;
  // kString
  uint32_t min_length = 0, max_length = kUnbounded;
  std::vector<std::string> patterns;
  std::string format;  // one with FormatPattern::Kind::kPattern, or ""
  // kArray
  std::vector<NodePtr> prefix_items;
  NodePtr items;  // items after the prefix (kNever: none)
  uint32_t min_items = 0, max_items = kUnbounded;
  bool unique_items = false;
  // kObject
  std::vector<Property> properties;
  std::vector<std::pair<std::string, NodePtr>> pattern_properties;
  NodePtr additional;      // other keys' values (kNever: no other keys)
  NodePtr property_names;  // nullptr: any key
  uint32_t min_properties = 0, max_properties = kUnbounded;
  // kConst
  Json value;
  // kAnyOf
  std::vector<NodePtr> options;
  // kRef
  std::string target;  // JSON pointer into the document
};

std::shared_ptr<Node> make(Kind kind, const std::string& where) {
  auto node = std::make_shared<Node>();
  node->kind = kind;
  node->where = where;
  return node;
}

enum class Tri { kNo, kYes, kUnknown };

// Type bits of the `type` keyword.
enum : uint32_t {
  kTypeNull = 1,
  kTypeBoolean = 2,
  kTypeObject = 4,
  kTypeArray = 8,
  kTypeNumber = 16,
  kTypeInteger = 32,
  kTypeString = 64,
  kAllTypes = 127,
};

bool has_any_key(const Json& schema, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    if (schema.contains(key)) return true;
  }
  return false;
}

std::optional<Decimal> json_decimal(const Json& value) {
  if (!value.is_number()) return std::nullopt;
  return parse_decimal(value.dump());
}

// A non-negative integer keyword (minLength: 3; 3.0 also).
uint32_t count_keyword(const Json& schema, const char* key, const std::string& where, uint32_t fallback) {
  auto it = schema.find(key);
  if (it == schema.end()) return fallback;
  std::optional<Decimal> d = json_decimal(*it);
  if (!d || d->negative || !d->is_integer())
    fail("'" + std::string(key) + "' at " + at(where) + " must be a non-negative integer");
  if (d->integer.size() > 9) return kUnbounded - 1;
  return static_cast<uint32_t>(std::stoul(d->integer));
}

// ---------------------------------------------------------------------------

class Compiler {
 public:
  Compiler(const Json& document, const JsonSchemaOptions& options) : document_(document), options_(options) {
    any_ = make(Kind::kAny, "");
    never_ = make(Kind::kNever, "");
    index_resources(document_, "", "");
  }

  Grammar compile() {
    budget_.stack_base = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    NodePtr root = translate(document_, "");
    if (root->kind == Kind::kNever) fail("the schema admits no value");
    Element element = emit(root);
    grammar_.set_root(grammar_.add_rule("root", {{element}}));
    Status status = grammar_.validate();
    if (!status.is_ok()) fail("the schema's grammar is invalid: " + status.message());
    return std::move(grammar_);
  }

  Grammar any_object_grammar() {
    grammar_.set_root(grammar_.add_rule("root", {{any_object()}}));
    return std::move(grammar_);
  }

 private:
  // ----- $ref resolution -----------------------------------------------------

  // Records $id / $anchor of every schema position, and the resource (the
  // schema with the nearest $id) each pointer belongs to.
  void index_resources(const Json& schema, const std::string& where, const std::string& resource) {
    if (!schema.is_object()) return;
    std::string current = resource;
    for (const char* key : {"$id", "id"}) {
      auto it = schema.find(key);
      if (it == schema.end() || !it->is_string()) continue;
      std::string id = it->get<std::string>();
      if (!id.empty() && id[0] == '#') {
        anchors_[id.substr(1)] = where;
      } else if (!id.empty()) {
        while (!id.empty() && id.back() == '#') id.pop_back();
        ids_[id] = where;
        current = where;
        if (where.empty()) root_id_ = id;
      }
    }
    if (auto it = schema.find("$anchor"); it != schema.end() && it->is_string())
      anchors_[it->get<std::string>()] = where;
    resource_of_[where] = current;
    for (const char* key : {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}) {
      auto it = schema.find(key);
      if (it == schema.end() || !it->is_object()) continue;
      for (auto& [name, sub] : it->items()) index_resources(sub, child(child(where, key), name), current);
    }
    for (const char* key : {"items", "prefixItems", "allOf", "anyOf", "oneOf"}) {
      auto it = schema.find(key);
      if (it == schema.end()) continue;
      if (it->is_array()) {
        for (size_t i = 0; i < it->size(); ++i) index_resources((*it)[i], child(where, key, i), current);
      } else {
        index_resources(*it, child(where, key), current);
      }
    }
    for (const char* key : {"not", "if", "then", "else", "additionalProperties", "additionalItems", "contains",
                            "propertyNames", "unevaluatedProperties", "unevaluatedItems"}) {
      auto it = schema.find(key);
      if (it != schema.end()) index_resources(*it, child(where, key), current);
    }
  }

  static std::string percent_decode(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
        out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  }

  // The JSON pointer (into the document) a $ref names.
  std::string resolve_reference(const std::string& ref, const std::string& where, const std::string& owner) {
    const size_t hash = ref.find('#');
    const std::string base = ref.substr(0, hash);
    const std::string fragment = hash == std::string::npos ? "" : percent_decode(ref.substr(hash + 1));
    std::string resource;
    if (base.empty()) {
      auto it = resource_of_.find(owner);
      resource = it == resource_of_.end() ? "" : it->second;
    } else if (auto it = ids_.find(base); it != ids_.end()) {
      resource = it->second;
    } else {
      // Relative to the root's $id: replace its last path segment.
      std::optional<std::string> found;
      const size_t slash = root_id_.rfind('/');
      if (slash != std::string::npos) {
        auto it2 = ids_.find(root_id_.substr(0, slash + 1) + base);
        if (it2 != ids_.end()) found = it2->second;
      }
      if (!found) unsupported("$ref", where, "cannot resolve '" + ref + "'");
      resource = *found;
    }
    if (fragment.empty()) return resource;
    if (fragment[0] == '/') return resource + fragment;
    auto it = anchors_.find(fragment);
    if (it == anchors_.end()) unsupported("$ref", where, "cannot resolve '" + ref + "'");
    return it->second;
  }

  const Json& schema_at(const std::string& pointer, const std::string& where) {
    Json::json_pointer json_pointer(pointer);
    if (!document_.contains(json_pointer)) unsupported("$ref", where, "'" + pointer + "' names nothing");
    return document_.at(json_pointer);
  }

  // The translation of the schema at `target` (memoized).
  NodePtr resolve(const std::string& target) {
    auto it = resolved_.find(target);
    if (it != resolved_.end()) {
      if (!it->second) fail("the $ref cycle through " + at(target) + " never reaches a schema");
      return it->second;
    }
    resolved_[target] = nullptr;  // in progress
    NodePtr node = translate(schema_at(target, target), target);
    resolved_[target] = node;
    return node;
  }

  // ----- translation ---------------------------------------------------------

  NodePtr translate(const Json& schema, const std::string& where) {
    RecursionGuard guard(budget_, where);
    if (schema.is_boolean()) return schema.get<bool>() ? any_ : never_;
    // Bounds the recursion (and the pointer strings it copies) on a hostile
    // schema nested thousands deep.
    if (std::count(where.begin(), where.end(), '/') > kMaxNesting) {
      fail("the schema is nested more than " + std::to_string(kMaxNesting) + " levels deep at " +
           at(where.substr(0, 200)) + "...");
    }
    if (!schema.is_object()) fail("the schema at " + at(where) + " is not an object or a boolean");
    refuse_unsupported_keywords(schema, where);

    NodePtr node = typed_union(schema, where);
    if (auto it = schema.find("$ref"); it != schema.end()) {
      if (!it->is_string()) fail("'$ref' at " + at(where) + " must be a string");
      auto ref = make(Kind::kRef, child(where, "$ref"));
      ref->target = resolve_reference(it->get<std::string>(), ref->where, where);
      node = intersect(node, ref);
    }
    if (auto it = schema.find("enum"); it != schema.end()) {
      if (!it->is_array()) fail("'enum' at " + at(where) + " must be an array");
      auto options = make(Kind::kAnyOf, child(where, "enum"));
      for (const Json& value : *it) {
        auto constant = make(Kind::kConst, options->where);
        constant->value = value;
        options->options.push_back(constant);
      }
      node = intersect(node, options);
    }
    if (auto it = schema.find("const"); it != schema.end()) {
      auto constant = make(Kind::kConst, child(where, "const"));
      constant->value = *it;
      node = intersect(node, constant);
    }
    if (auto it = schema.find("allOf"); it != schema.end()) {
      if (!it->is_array()) fail("'allOf' at " + at(where) + " must be an array");
      for (size_t i = 0; i < it->size(); ++i) node = intersect(node, translate((*it)[i], child(where, "allOf", i)));
    }
    if (auto it = schema.find("anyOf"); it != schema.end()) {
      if (!it->is_array()) fail("'anyOf' at " + at(where) + " must be an array");
      auto options = make(Kind::kAnyOf, child(where, "anyOf"));
      for (size_t i = 0; i < it->size(); ++i) options->options.push_back(translate((*it)[i], child(where, "anyOf", i)));
      node = intersect(node, options);
    }
    if (auto it = schema.find("oneOf"); it != schema.end()) {
      if (!it->is_array()) fail("'oneOf' at " + at(where) + " must be an array");
      auto options = make(Kind::kAnyOf, child(where, "oneOf"));
      for (size_t i = 0; i < it->size(); ++i) {
        NodePtr option = intersect(node, translate((*it)[i], child(where, "oneOf", i)));
        if (option->kind != Kind::kNever) options->options.push_back(option);
      }
      for (size_t i = 0; i < options->options.size(); ++i) {
        for (size_t j = i + 1; j < options->options.size(); ++j) {
          if (!disjoint(options->options[i], options->options[j], 0)) {
            unsupported("oneOf", options->where,
                        "branches " + std::to_string(i) + " and " + std::to_string(j) + " may both match");
          }
        }
      }
      node = simplify_any_of(options);
    }
    if (auto it = schema.find("not"); it != schema.end()) node = intersect_not(node, *it, child(where, "not"));
    return node;
  }

  void refuse_unsupported_keywords(const Json& schema, const std::string& where) {
    for (const char* key : {"dependentRequired", "dependentSchemas", "dependencies", "$dynamicRef", "$recursiveRef"}) {
      auto it = schema.find(key);
      if (it == schema.end()) continue;
      if (it->is_object() && it->empty()) continue;
      unsupported(key, where);
    }
    for (const char* key : {"unevaluatedProperties", "unevaluatedItems"}) {
      auto it = schema.find(key);
      if (it != schema.end() && !(it->is_boolean() && it->get<bool>()) && !(it->is_object() && it->empty())) {
        unsupported(key, where);
      }
    }
    if (auto it = schema.find("contains"); it != schema.end()) {
      auto min = schema.find("minContains");
      if (!(min != schema.end() && min->is_number() && min->get<double>() == 0)) unsupported("contains", where);
    }
    if (schema.contains("if") && (schema.contains("then") || schema.contains("else"))) unsupported("if", where);
  }

  uint32_t type_set(const Json& schema, const std::string& where) {
    auto it = schema.find("type");
    if (it == schema.end()) return kAllTypes;
    auto bit = [&](const Json& name) -> uint32_t {
      if (!name.is_string()) fail("'type' at " + at(where) + " must name types");
      const std::string& type = name.get_ref<const std::string&>();
      if (type == "null") return kTypeNull;
      if (type == "boolean") return kTypeBoolean;
      if (type == "object") return kTypeObject;
      if (type == "array") return kTypeArray;
      if (type == "number") return kTypeNumber;
      if (type == "integer") return kTypeInteger;
      if (type == "string") return kTypeString;
      if (type == "any") return kAllTypes;
      fail("'type' at " + at(where) + " names an unknown type '" + type + "'");
    };
    if (it->is_array()) {
      uint32_t types = 0;
      for (const Json& name : *it) types |= bit(name);
      return types;
    }
    return bit(*it);
  }

  bool asserted_format(const Json& schema) {
    auto it = schema.find("format");
    return it != schema.end() && it->is_string() &&
           format_pattern(it->get_ref<const std::string&>()).kind != FormatPattern::Kind::kIgnored;
  }

  NodePtr typed_union(const Json& schema, const std::string& where) {
    const bool typed = schema.contains("type");
    const uint32_t types = type_set(schema, where);
    const bool number_keys =
        has_any_key(schema, {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"});
    const bool string_keys = has_any_key(schema, {"minLength", "maxLength", "pattern"}) || asserted_format(schema);
    const bool array_keys =
        has_any_key(schema, {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems"});
    const bool object_keys = has_any_key(schema, {"properties", "required", "additionalProperties", "patternProperties",
                                                  "propertyNames", "minProperties", "maxProperties"}) ||
                             (options_.strict && (types & kTypeObject));
    if (!typed && !number_keys && !string_keys && !array_keys && !object_keys) return any_;
    auto options = make(Kind::kAnyOf, where);
    if (types & kTypeNull) options->options.push_back(make(Kind::kNull, where));
    if (types & kTypeBoolean) options->options.push_back(make(Kind::kBoolean, where));
    if (types & (kTypeNumber | kTypeInteger)) options->options.push_back(number(schema, where, !(types & kTypeNumber)));
    if (types & kTypeString) options->options.push_back(string(schema, where));
    if (types & kTypeArray) options->options.push_back(array(schema, where));
    if (types & kTypeObject) options->options.push_back(object(schema, where));
    return simplify_any_of(options);
  }

  NodePtr number(const Json& schema, const std::string& where, bool integer) {
    auto node = make(Kind::kNumber, where);
    node->integer = integer;
    auto bound = [&](const char* key) -> std::optional<Decimal> {
      auto it = schema.find(key);
      if (it == schema.end() || it->is_boolean()) return std::nullopt;
      std::optional<Decimal> d = json_decimal(*it);
      if (!d) fail("'" + std::string(key) + "' at " + at(where) + " must be a number");
      return d;
    };
    auto flag = [&](const char* key) {
      auto it = schema.find(key);
      return it != schema.end() && it->is_boolean() && it->get<bool>();
    };
    if (auto d = bound("minimum")) node->lower = NumberBound{*d, flag("exclusiveMinimum")};
    if (auto d = bound("maximum")) node->upper = NumberBound{*d, flag("exclusiveMaximum")};
    if (auto d = bound("exclusiveMinimum")) {
      if (!node->lower || compare_decimals(*d, node->lower->value) >= 0) node->lower = NumberBound{*d, true};
    }
    if (auto d = bound("exclusiveMaximum")) {
      if (!node->upper || compare_decimals(*d, node->upper->value) <= 0) node->upper = NumberBound{*d, true};
    }
    if (auto d = bound("multipleOf")) {
      if (d->negative || d->is_zero()) fail("'multipleOf' at " + at(where) + " must be positive");
      node->multiple_of = *d;
    }
    return node;
  }

  NodePtr string(const Json& schema, const std::string& where) {
    auto node = make(Kind::kString, where);
    node->min_length = count_keyword(schema, "minLength", where, 0);
    node->max_length = count_keyword(schema, "maxLength", where, kUnbounded);
    if (auto it = schema.find("pattern"); it != schema.end()) {
      if (!it->is_string()) fail("'pattern' at " + at(where) + " must be a string");
      node->patterns.push_back(it->get<std::string>());
    }
    if (auto it = schema.find("format"); it != schema.end() && it->is_string()) {
      const std::string& format = it->get_ref<const std::string&>();
      FormatPattern pattern = format_pattern(format);
      if (pattern.kind == FormatPattern::Kind::kUnsupported) unsupported("format", where, "'" + format + "'");
      if (pattern.kind == FormatPattern::Kind::kPattern) node->format = format;
    }
    return node;
  }

  NodePtr array(const Json& schema, const std::string& where) {
    auto node = make(Kind::kArray, where);
    node->items = any_;
    auto items = schema.find("items");
    auto prefix = schema.find("prefixItems");
    if (prefix != schema.end()) {
      if (!prefix->is_array()) fail("'prefixItems' at " + at(where) + " must be an array");
      for (size_t i = 0; i < prefix->size(); ++i) {
        node->prefix_items.push_back(translate((*prefix)[i], child(where, "prefixItems", i)));
      }
      if (items != schema.end()) node->items = translate(*items, child(where, "items"));
    } else if (items != schema.end() && items->is_array()) {
      for (size_t i = 0; i < items->size(); ++i) {
        node->prefix_items.push_back(translate((*items)[i], child(where, "items", i)));
      }
      if (auto extra = schema.find("additionalItems"); extra != schema.end()) {
        node->items = translate(*extra, child(where, "additionalItems"));
      }
    } else if (items != schema.end()) {
      node->items = translate(*items, child(where, "items"));
    }
    node->min_items = count_keyword(schema, "minItems", where, 0);
    node->max_items = count_keyword(schema, "maxItems", where, kUnbounded);
    if (auto it = schema.find("uniqueItems"); it != schema.end() && it->is_boolean())
      node->unique_items = it->get<bool>();
    return node;
  }

  NodePtr object(const Json& schema, const std::string& where) {
    auto node = make(Kind::kObject, where);
    if (auto it = schema.find("properties"); it != schema.end()) {
      if (!it->is_object()) fail("'properties' at " + at(where) + " must be an object");
      for (auto& [name, sub] : it->items()) {
        node->properties.push_back({name, translate(sub, child(child(where, "properties"), name)), false});
      }
    }
    if (auto it = schema.find("patternProperties"); it != schema.end()) {
      if (!it->is_object()) fail("'patternProperties' at " + at(where) + " must be an object");
      for (auto& [pattern, sub] : it->items()) {
        node->pattern_properties.emplace_back(pattern,
                                              translate(sub, child(child(where, "patternProperties"), pattern)));
      }
    }
    if (auto it = schema.find("additionalProperties"); it != schema.end()) {
      node->additional = translate(*it, child(where, "additionalProperties"));
    } else {
      node->additional = options_.strict ? never_ : any_;
    }
    if (auto it = schema.find("propertyNames"); it != schema.end()) {
      NodePtr names = translate(*it, child(where, "propertyNames"));
      if (names->kind != Kind::kAny) node->property_names = intersect(names, make(Kind::kString, node->where));
    }
    node->min_properties = count_keyword(schema, "minProperties", where, 0);
    node->max_properties = count_keyword(schema, "maxProperties", where, kUnbounded);
    // Listed properties also obey the patternProperties they match.
    for (Property& property : node->properties) {
      for (auto& [pattern, sub] : node->pattern_properties) {
        if (pattern_matches(pattern, property.name, child(where, "patternProperties"))) {
          property.schema = intersect(property.schema, sub);
        }
      }
    }
    if (auto it = schema.find("required"); it != schema.end()) {
      if (!it->is_array()) fail("'required' at " + at(where) + " must be an array");
      for (const Json& name : *it) {
        if (!name.is_string()) fail("'required' at " + at(where) + " must list strings");
        const std::string& key = name.get_ref<const std::string&>();
        auto found = std::find_if(node->properties.begin(), node->properties.end(),
                                  [&](const Property& p) { return p.name == key; });
        if (found != node->properties.end()) {
          found->required = true;
        } else {
          node->properties.push_back({key, extra_value(*node, key), true});
        }
      }
    }
    return finish_object(node);
  }

  // The schema a key not among `object`'s properties must satisfy.
  NodePtr extra_value(const Node& object, const std::string& key) {
    NodePtr value;
    for (auto& [pattern, sub] : object.pattern_properties) {
      if (pattern_matches(pattern, key, object.where)) value = value ? intersect(value, sub) : sub;
    }
    return value ? value : object.additional;
  }

  // Applies propertyNames to the listed keys; Never when a required key
  // cannot be.
  NodePtr finish_object(std::shared_ptr<Node> node) {
    for (Property& property : node->properties) {
      if (node->property_names) {
        Json key = property.name;
        Tri ok = check(key, node->property_names, 0);
        if (ok == Tri::kUnknown) unsupported("propertyNames", node->where);
        if (ok == Tri::kNo) property.schema = never_;
      }
      if (property.required && property.schema->kind == Kind::kNever) return never_;
    }
    size_t required = 0;
    for (const Property& property : node->properties) required += property.required;
    if (required > node->max_properties || node->min_properties > node->max_properties) return never_;
    return node;
  }

  NodePtr simplify_any_of(const std::shared_ptr<Node>& node) {
    std::vector<NodePtr> flat;
    for (const NodePtr& option : node->options) {
      if (option->kind == Kind::kNever) continue;
      if (option->kind == Kind::kAny) return any_;
      if (option->kind == Kind::kAnyOf) {
        for (const NodePtr& inner : option->options) flat.push_back(inner);
      } else {
        flat.push_back(option);
      }
    }
    std::vector<NodePtr> unique;
    for (const NodePtr& option : flat) {
      if (std::find(unique.begin(), unique.end(), option) == unique.end()) unique.push_back(option);
    }
    if (unique.empty()) return never_;
    if (unique.size() == 1) return unique[0];
    if (unique.size() > kMaxAlternatives) unsupported("anyOf", node->where, "too many alternatives after merging");
    auto result = make(Kind::kAnyOf, node->where);
    result->options = std::move(unique);
    return result;
  }

  // `node` and not `negated` (the schema under "not").
  NodePtr intersect_not(const NodePtr& node, const Json& negated_schema, const std::string& where) {
    NodePtr negated = translate(negated_schema, where);
    if (negated->kind == Kind::kNever) return node;
    if (negated->kind == Kind::kAny) return never_;
    // A union of types without further constraints: keep the other types.
    std::vector<NodePtr> parts = negated->kind == Kind::kAnyOf ? negated->options : std::vector<NodePtr>{negated};
    uint32_t excluded = 0;
    bool plain_types = true;
    std::vector<Json> excluded_values;
    bool only_values = true;
    for (const NodePtr& part : parts) {
      if (part->kind == Kind::kConst) {
        excluded_values.push_back(part->value);
        plain_types = false;
        continue;
      }
      only_values = false;
      const Node& p = *part;
      switch (p.kind) {
        case Kind::kNull:
          excluded |= kTypeNull;
          break;
        case Kind::kBoolean:
          excluded |= kTypeBoolean;
          break;
        case Kind::kNumber:
          if (p.lower || p.upper || p.multiple_of) plain_types = false;
          excluded |= p.integer ? kTypeInteger : kTypeNumber;
          break;
        case Kind::kString:
          if (p.min_length || p.max_length != kUnbounded || !p.patterns.empty() || !p.format.empty())
            plain_types = false;
          excluded |= kTypeString;
          break;
        case Kind::kArray:
          if (!p.prefix_items.empty() || p.items->kind != Kind::kAny || p.min_items || p.max_items != kUnbounded ||
              p.unique_items) {
            plain_types = false;
          }
          excluded |= kTypeArray;
          break;
        case Kind::kObject:
          if (!p.properties.empty() || !p.pattern_properties.empty() || p.additional->kind != Kind::kAny ||
              p.property_names || p.min_properties || p.max_properties != kUnbounded) {
            plain_types = false;
          }
          excluded |= kTypeObject;
          break;
        default:
          plain_types = false;
      }
    }
    if (only_values) return exclude_values(node, excluded_values, where);
    if (!plain_types) unsupported("not", where);
    return restrict_types(node, excluded, where);
  }

  // `node` without the values of types in `excluded`.
  NodePtr restrict_types(const NodePtr& node, uint32_t excluded, const std::string& where) {
    RecursionGuard guard(budget_, where);
    if (excluded & kTypeNumber) excluded |= kTypeInteger;  // integers are numbers
    switch (node->kind) {
      case Kind::kAny: {
        auto all = make(Kind::kAnyOf, where);
        const uint32_t kept = kAllTypes & ~excluded;
        Json empty = Json::object();
        if (kept & kTypeNull) all->options.push_back(make(Kind::kNull, where));
        if (kept & kTypeBoolean) all->options.push_back(make(Kind::kBoolean, where));
        if (kept & kTypeNumber) {
          all->options.push_back(number(empty, where, false));
        } else if ((kept & kTypeInteger) && !(excluded & kTypeInteger)) {
          all->options.push_back(number(empty, where, true));
        } else if (kept & kTypeInteger) {
          unsupported("not", where, "numbers that are not integers");
        }
        if (kept & kTypeString) all->options.push_back(string(empty, where));
        if (kept & kTypeArray) all->options.push_back(array(empty, where));
        if (kept & kTypeObject) all->options.push_back(object(empty, where));
        return simplify_any_of(all);
      }
      case Kind::kAnyOf: {
        auto all = make(Kind::kAnyOf, node->where);
        for (const NodePtr& option : node->options) all->options.push_back(restrict_types(option, excluded, where));
        return simplify_any_of(all);
      }
      case Kind::kRef:
        return restrict_types(resolve(node->target), excluded, where);
      case Kind::kNever:
        return node;
      case Kind::kNull:
        return (excluded & kTypeNull) ? never_ : node;
      case Kind::kBoolean:
        return (excluded & kTypeBoolean) ? never_ : node;
      case Kind::kString:
        return (excluded & kTypeString) ? never_ : node;
      case Kind::kArray:
        return (excluded & kTypeArray) ? never_ : node;
      case Kind::kObject:
        return (excluded & kTypeObject) ? never_ : node;
      case Kind::kNumber:
        if (excluded & kTypeNumber) return never_;
        if (excluded & kTypeInteger) {
          if (node->integer) return never_;
          unsupported("not", where, "numbers that are not integers");
        }
        return node;
      case Kind::kConst: {
        const Json& v = node->value;
        uint32_t type = v.is_null()      ? kTypeNull
                        : v.is_boolean() ? kTypeBoolean
                        : v.is_number()  ? (json_decimal(v)->is_integer() ? kTypeInteger | kTypeNumber : kTypeNumber)
                        : v.is_string()  ? kTypeString
                        : v.is_array()   ? kTypeArray
                                         : kTypeObject;
        return (type & excluded) ? never_ : node;
      }
    }
    return node;
  }

  // `node` without the given values: exact for finite sets of constants.
  NodePtr exclude_values(const NodePtr& node, const std::vector<Json>& values, const std::string& where) {
    auto differs = [&](const NodePtr& option) {
      return std::none_of(values.begin(), values.end(), [&](const Json& v) { return v == option->value; });
    };
    if (node->kind == Kind::kConst) return differs(node) ? node : never_;
    if (node->kind == Kind::kAnyOf && std::all_of(node->options.begin(), node->options.end(),
                                                  [](const NodePtr& o) { return o->kind == Kind::kConst; })) {
      auto kept = make(Kind::kAnyOf, node->where);
      for (const NodePtr& option : node->options) {
        if (differs(option)) kept->options.push_back(option);
      }
      return simplify_any_of(kept);
    }
    // A value of a type `node` cannot have is no constraint.
    bool relevant = false;
    for (const Json& v : values) relevant |= check(v, node, 0) != Tri::kNo;
    if (!relevant) return node;
    unsupported("not", where);
  }

  // ----- merging (allOf) -----------------------------------------------------

  NodePtr intersect(const NodePtr& a, const NodePtr& b, int depth = 0) {
    RecursionGuard guard(budget_, a->where);
    if (depth > kMaxRefDepth) unsupported("$ref", a->where, "recursive references under allOf");
    if (a->kind == Kind::kAny || b->kind == Kind::kNever) return b;
    if (b->kind == Kind::kAny || a->kind == Kind::kNever) return a;
    if (a == b) return a;
    if (a->kind == Kind::kRef && b->kind == Kind::kRef && a->target == b->target) return a;
    if (a->kind == Kind::kRef) return intersect(resolve(a->target), b, depth + 1);
    if (b->kind == Kind::kRef) return intersect(a, resolve(b->target), depth + 1);
    if (a->kind == Kind::kAnyOf || b->kind == Kind::kAnyOf) {
      const NodePtr& many = a->kind == Kind::kAnyOf ? a : b;
      const NodePtr& other = a->kind == Kind::kAnyOf ? b : a;
      auto result = make(Kind::kAnyOf, many->where);
      for (const NodePtr& option : many->options) {
        // Keep the arguments' order: the merged object lists a's properties first.
        NodePtr merged = many == a ? intersect(option, other, depth) : intersect(other, option, depth);
        if (merged->kind != Kind::kNever) result->options.push_back(merged);
        if (result->options.size() > kMaxAlternatives) unsupported("anyOf", many->where, "too many alternatives");
      }
      return simplify_any_of(result);
    }
    if (a->kind == Kind::kConst || b->kind == Kind::kConst) {
      const NodePtr& constant = a->kind == Kind::kConst ? a : b;
      const NodePtr& other = a->kind == Kind::kConst ? b : a;
      Tri ok = check(constant->value, other, depth);
      if (ok == Tri::kUnknown) unsupported(constant->where.ends_with("/enum") ? "enum" : "const", constant->where);
      return ok == Tri::kYes ? constant : never_;
    }
    if (a->kind != b->kind) return never_;
    auto merged = std::make_shared<Node>(*a);
    switch (a->kind) {
      case Kind::kNull:
      case Kind::kBoolean:
        return a;
      case Kind::kNumber: {
        merged->integer = a->integer || b->integer;
        if (b->lower && (!a->lower || compare_decimals(b->lower->value, a->lower->value) > 0 ||
                         (compare_decimals(b->lower->value, a->lower->value) == 0 && b->lower->exclusive))) {
          merged->lower = b->lower;
        }
        if (b->upper && (!a->upper || compare_decimals(b->upper->value, a->upper->value) < 0 ||
                         (compare_decimals(b->upper->value, a->upper->value) == 0 && b->upper->exclusive))) {
          merged->upper = b->upper;
        }
        if (b->multiple_of) {
          if (a->multiple_of && compare_decimals(*a->multiple_of, *b->multiple_of) != 0) {
            unsupported("multipleOf", b->where, "two different multipleOf");
          }
          merged->multiple_of = b->multiple_of;
        }
        return merged;
      }
      case Kind::kString: {
        merged->min_length = std::max(a->min_length, b->min_length);
        merged->max_length = std::min(a->max_length, b->max_length);
        for (const std::string& p : b->patterns) {
          if (std::find(merged->patterns.begin(), merged->patterns.end(), p) == merged->patterns.end()) {
            merged->patterns.push_back(p);
          }
        }
        if (!b->format.empty()) {
          if (!a->format.empty() && a->format != b->format) unsupported("format", b->where, "two different formats");
          merged->format = b->format;
        }
        return merged;
      }
      case Kind::kArray: {
        const size_t n = std::max(a->prefix_items.size(), b->prefix_items.size());
        merged->prefix_items.clear();
        for (size_t i = 0; i < n; ++i) {
          const NodePtr& x = i < a->prefix_items.size() ? a->prefix_items[i] : a->items;
          const NodePtr& y = i < b->prefix_items.size() ? b->prefix_items[i] : b->items;
          merged->prefix_items.push_back(intersect(x, y, depth));
        }
        merged->items = intersect(a->items, b->items, depth);
        merged->min_items = std::max(a->min_items, b->min_items);
        merged->max_items = std::min(a->max_items, b->max_items);
        merged->unique_items = a->unique_items || b->unique_items;
        return merged;
      }
      case Kind::kObject:
        return intersect_objects(*a, *b, depth);
      default:
        break;
    }
    fail("internal: cannot merge schemas at " + at(a->where));
  }

  NodePtr intersect_objects(const Node& a, const Node& b, int depth) {
    auto merged = make(Kind::kObject, a.where);
    for (const Property& p : a.properties) {
      auto in_b =
          std::find_if(b.properties.begin(), b.properties.end(), [&](const Property& q) { return q.name == p.name; });
      if (in_b != b.properties.end()) {
        merged->properties.push_back({p.name, intersect(p.schema, in_b->schema, depth), p.required || in_b->required});
      } else {
        merged->properties.push_back({p.name, intersect(p.schema, extra_value(b, p.name), depth), p.required});
      }
    }
    for (const Property& q : b.properties) {
      auto in_a =
          std::find_if(a.properties.begin(), a.properties.end(), [&](const Property& p) { return p.name == q.name; });
      if (in_a == a.properties.end()) {
        merged->properties.push_back({q.name, intersect(q.schema, extra_value(a, q.name), depth), q.required});
      }
    }
    if (!a.pattern_properties.empty() && !b.pattern_properties.empty()) {
      if (a.pattern_properties.size() != b.pattern_properties.size())
        unsupported("patternProperties", b.where, "under allOf");
      for (size_t i = 0; i < a.pattern_properties.size(); ++i) {
        if (a.pattern_properties[i].first != b.pattern_properties[i].first) {
          unsupported("patternProperties", b.where, "under allOf");
        }
        merged->pattern_properties.emplace_back(
            a.pattern_properties[i].first,
            intersect(a.pattern_properties[i].second, b.pattern_properties[i].second, depth));
      }
    } else {
      for (auto& [pattern, sub] : a.pattern_properties) {
        merged->pattern_properties.emplace_back(pattern, intersect(sub, b.additional, depth));
      }
      for (auto& [pattern, sub] : b.pattern_properties) {
        merged->pattern_properties.emplace_back(pattern, intersect(sub, a.additional, depth));
      }
    }
    merged->additional = intersect(a.additional, b.additional, depth);
    if (a.property_names && b.property_names) {
      merged->property_names = intersect(a.property_names, b.property_names, depth);
    } else {
      merged->property_names = a.property_names ? a.property_names : b.property_names;
    }
    merged->min_properties = std::max(a.min_properties, b.min_properties);
    merged->max_properties = std::min(a.max_properties, b.max_properties);
    return finish_object(merged);
  }

  // ----- checking a value against a node --------------------------------------

  bool pattern_matches(const std::string& pattern, const std::string& text, const std::string& where) {
    auto cached = pattern_grammars_.find(pattern);
    if (cached == pattern_grammars_.end()) {
      Result<Grammar> grammar = regex_grammar(pattern, RegexOptions{.search = true, .json_string = true});
      if (!grammar.is_ok()) unsupported("pattern", where, grammar.status().message());
      cached = pattern_grammars_.emplace(pattern, std::move(grammar).value()).first;
    }
    return grammar_matches(cached->second, string_content(text));
  }

  bool format_matches(const std::string& format, const std::string& text, const std::string& where) {
    FormatPattern pattern = format_pattern(format);
    return pattern_matches("^(?:" + pattern.pattern + ")$", text, where);
  }

  Tri check(const Json& value, const NodePtr& node, int depth) {
    RecursionGuard guard(budget_, node->where);
    if (depth > kMaxRefDepth) return Tri::kUnknown;
    const Node& n = *node;
    switch (n.kind) {
      case Kind::kAny:
        return Tri::kYes;
      case Kind::kNever:
        return Tri::kNo;
      case Kind::kRef:
        return check(value, resolve(n.target), depth + 1);
      case Kind::kAnyOf: {
        Tri result = Tri::kNo;
        for (const NodePtr& option : n.options) {
          Tri t = check(value, option, depth);
          if (t == Tri::kYes) return Tri::kYes;
          if (t == Tri::kUnknown) result = Tri::kUnknown;
        }
        return result;
      }
      case Kind::kConst:
        return value == n.value ? Tri::kYes : Tri::kNo;
      case Kind::kNull:
        return value.is_null() ? Tri::kYes : Tri::kNo;
      case Kind::kBoolean:
        return value.is_boolean() ? Tri::kYes : Tri::kNo;
      case Kind::kNumber: {
        if (!value.is_number()) return Tri::kNo;
        std::optional<Decimal> d = json_decimal(value);
        if (!d) return Tri::kUnknown;
        if (n.integer && !d->is_integer()) return Tri::kNo;
        if (n.lower) {
          int c = compare_decimals(*d, n.lower->value);
          if (c < 0 || (c == 0 && n.lower->exclusive)) return Tri::kNo;
        }
        if (n.upper) {
          int c = compare_decimals(*d, n.upper->value);
          if (c > 0 || (c == 0 && n.upper->exclusive)) return Tri::kNo;
        }
        if (n.multiple_of) {
          if (!n.multiple_of->is_integer() || !d->is_integer() || n.multiple_of->integer.size() > 9)
            return Tri::kUnknown;
          const uint64_t k = std::stoull(n.multiple_of->integer);
          uint64_t r = 0;
          for (char c : d->integer) r = (r * 10 + static_cast<uint64_t>(c - '0')) % k;
          if (r != 0) return Tri::kNo;
        }
        return Tri::kYes;
      }
      case Kind::kString: {
        if (!value.is_string()) return Tri::kNo;
        const std::string& s = value.get_ref<const std::string&>();
        const size_t length = codepoint_count(s);
        if (length < n.min_length || length > n.max_length) return Tri::kNo;
        for (const std::string& pattern : n.patterns) {
          if (!pattern_matches(pattern, s, n.where)) return Tri::kNo;
        }
        if (!n.format.empty() && !format_matches(n.format, s, n.where)) return Tri::kNo;
        return Tri::kYes;
      }
      case Kind::kArray: {
        if (!value.is_array()) return Tri::kNo;
        if (value.size() < n.min_items || value.size() > n.max_items) return Tri::kNo;
        Tri result = Tri::kYes;
        for (size_t i = 0; i < value.size(); ++i) {
          Tri t = check(value[i], i < n.prefix_items.size() ? n.prefix_items[i] : n.items, depth);
          if (t == Tri::kNo) return Tri::kNo;
          if (t == Tri::kUnknown) result = Tri::kUnknown;
        }
        if (n.unique_items) {
          for (size_t i = 0; i < value.size(); ++i) {
            for (size_t j = i + 1; j < value.size(); ++j) {
              if (value[i] == value[j]) return Tri::kNo;
            }
          }
        }
        return result;
      }
      case Kind::kObject: {
        if (!value.is_object()) return Tri::kNo;
        if (value.size() < n.min_properties || value.size() > n.max_properties) return Tri::kNo;
        Tri result = Tri::kYes;
        auto merge = [&](Tri t) {
          if (t == Tri::kUnknown) result = Tri::kUnknown;
          return t != Tri::kNo;
        };
        for (const Property& p : n.properties) {
          auto it = value.find(p.name);
          if (it == value.end()) {
            if (p.required) return Tri::kNo;
            continue;
          }
          if (!merge(check(*it, p.schema, depth))) return Tri::kNo;
        }
        for (const auto& item : value.items()) {
          // Named, not bound: Debian's clang 14 cannot capture a structured binding.
          const std::string& key = item.key();
          const Json& sub = item.value();
          const bool listed =
              std::any_of(n.properties.begin(), n.properties.end(), [&](const Property& p) { return p.name == key; });
          if (!listed && !merge(check(sub, extra_value(n, key), depth))) return Tri::kNo;
          if (n.property_names && !merge(check(Json(key), n.property_names, depth))) return Tri::kNo;
        }
        return result;
      }
    }
    return Tri::kUnknown;
  }

  // ----- disjointness (oneOf) -------------------------------------------------

  // Whether some string satisfies both string nodes (true when unsure).
  bool strings_overlap(const Node& a, const Node& b) {
    std::vector<StringPattern> patterns;
    for (const Node* node : {&a, &b}) {
      for (const std::string& pattern : node->patterns) patterns.push_back({pattern, true});
      if (!node->format.empty()) patterns.push_back({format_pattern(node->format).pattern, false});
    }
    Grammar scratch;
    Result<Element> element = string_intersection(scratch, patterns, std::max(a.min_length, b.min_length),
                                                  std::min(a.max_length, b.max_length));
    if (!element.is_ok()) return true;
    return productive(scratch, *element);
  }

  // Whether `element` of `grammar` matches some text.
  static bool productive(const Grammar& grammar, Element element) {
    const std::vector<Rule>& rules = grammar.rules();
    std::vector<bool> rule_productive(rules.size(), false);
    auto element_productive = [&](const Element& e) {
      return e.kind == Element::Kind::kBytes ? !grammar.byte_sets()[e.index].empty() : bool(rule_productive[e.index]);
    };
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < rules.size(); ++r) {
        if (rule_productive[r]) continue;
        for (const Sequence& alternative : rules[r].alternatives) {
          if (std::all_of(alternative.begin(), alternative.end(), element_productive)) {
            rule_productive[r] = true;
            changed = true;
            break;
          }
        }
      }
    }
    return element_productive(element);
  }

  // Whether no value satisfies both (false when unsure).
  bool disjoint(const NodePtr& a, const NodePtr& b, int depth) {
    if (depth > kMaxRefDepth) return false;
    if (a->kind == Kind::kNever || b->kind == Kind::kNever) return true;
    if (a->kind == Kind::kAny || b->kind == Kind::kAny) return false;
    if (a->kind == Kind::kRef) return disjoint(resolve(a->target), b, depth + 1);
    if (b->kind == Kind::kRef) return disjoint(a, resolve(b->target), depth + 1);
    if (a->kind == Kind::kAnyOf) {
      return std::all_of(a->options.begin(), a->options.end(), [&](const NodePtr& o) { return disjoint(o, b, depth); });
    }
    if (b->kind == Kind::kAnyOf) {
      return std::all_of(b->options.begin(), b->options.end(), [&](const NodePtr& o) { return disjoint(a, o, depth); });
    }
    if (a->kind == Kind::kConst) return check(a->value, b, depth) == Tri::kNo;
    if (b->kind == Kind::kConst) return check(b->value, a, depth) == Tri::kNo;
    if (a->kind != b->kind) return true;
    switch (a->kind) {
      case Kind::kNumber: {
        auto below = [](const std::optional<NumberBound>& upper, const std::optional<NumberBound>& lower) {
          if (!upper || !lower) return false;
          int c = compare_decimals(upper->value, lower->value);
          return c < 0 || (c == 0 && (upper->exclusive || lower->exclusive));
        };
        return below(a->upper, b->lower) || below(b->upper, a->lower);
      }
      case Kind::kString: {
        if (a->max_length < b->min_length || b->max_length < a->min_length) return true;
        if (a->patterns.empty() && a->format.empty() && b->patterns.empty() && b->format.empty()) return false;
        return !strings_overlap(*a, *b);
      }
      case Kind::kArray: {
        if (a->max_items < b->min_items || b->max_items < a->min_items) return true;
        const size_t n = std::max(a->prefix_items.size(), b->prefix_items.size());
        for (size_t i = 0; i < n; ++i) {
          if (i >= a->min_items && i >= b->min_items) break;
          const NodePtr& x = i < a->prefix_items.size() ? a->prefix_items[i] : a->items;
          const NodePtr& y = i < b->prefix_items.size() ? b->prefix_items[i] : b->items;
          if (disjoint(x, y, depth)) return true;
        }
        return false;
      }
      case Kind::kObject: {
        if (a->max_properties < b->min_properties || b->max_properties < a->min_properties) return true;
        auto separated = [&](const Node& x, const Node& y) {
          for (const Property& p : x.properties) {
            if (!p.required) continue;
            auto in_y = std::find_if(y.properties.begin(), y.properties.end(),
                                     [&](const Property& q) { return q.name == p.name; });
            const NodePtr other = in_y != y.properties.end() ? in_y->schema : extra_value(y, p.name);
            if (disjoint(p.schema, other, depth)) return true;
          }
          return false;
        };
        return separated(*a, *b) || separated(*b, *a);
      }
      default:
        return false;
    }
  }

  // ----- emission --------------------------------------------------------------

  bool flexible() const { return options_.whitespace == JsonSchemaOptions::Whitespace::kFlexible; }

  void ws(Sequence& sequence) {
    if (!flexible()) return;
    if (!ws_) {
      ByteSet blank;
      for (char c : {' ', '\t', '\n', '\r'}) blank.add(static_cast<uint8_t>(c));
      ws_ = grammar_.choice({grammar_.repeat({grammar_.bytes(blank)}, 0, kMaxWhitespace)}, "ws");
    }
    sequence.push_back(*ws_);
  }

  void append(Sequence& sequence, const Sequence& tail) { sequence.insert(sequence.end(), tail.begin(), tail.end()); }

  // One JSON string character: a raw code point or an escape (a surrogate
  // pair as one; lone surrogates are not accepted).
  Element string_char() {
    if (string_char_) return *string_char_;
    const CodepointRange raw_excluded[] = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};
    Element raw = grammar_.codepoints(raw_excluded, true);
    ByteSet simple;
    for (char c : std::string_view("\"\\/bfnrt")) simple.add(static_cast<uint8_t>(c));
    ByteSet hex, hex_not_d, hex_0_7, hex_8_b, hex_c_f, d;
    hex.add_range('0', '9'), hex.add_range('a', 'f'), hex.add_range('A', 'F');
    hex_not_d = hex;
    hex_not_d = ByteSet{};
    hex_not_d.add_range('0', '9'), hex_not_d.add_range('a', 'c'), hex_not_d.add_range('A', 'C'), hex_not_d.add('e'),
        hex_not_d.add('f'), hex_not_d.add('E'), hex_not_d.add('F');
    hex_0_7.add_range('0', '7');
    hex_8_b.add_range('8', '9'), hex_8_b.add_range('a', 'b'), hex_8_b.add_range('A', 'B');
    hex_c_f.add_range('c', 'f'), hex_c_f.add_range('C', 'F');
    d.add('d'), d.add('D');
    Element h = grammar_.bytes(hex);
    Element escape = grammar_.choice(
        {
            {grammar_.bytes(simple)},
            {grammar_.byte('u'), grammar_.bytes(hex_not_d), h, h, h},
            {grammar_.byte('u'), grammar_.bytes(d), grammar_.bytes(hex_0_7), h, h},
            {grammar_.byte('u'), grammar_.bytes(d), grammar_.bytes(hex_8_b), h, h, grammar_.byte('\\'),
             grammar_.byte('u'), grammar_.bytes(d), grammar_.bytes(hex_c_f), h, h},
        },
        "escape");
    string_char_ = grammar_.choice({{raw}, {grammar_.byte('\\'), escape}}, "char");
    return *string_char_;
  }

  Element any_string() {
    if (!any_string_) {
      any_string_ =
          grammar_.choice({{grammar_.byte('"'), grammar_.star({string_char()}), grammar_.byte('"')}}, "string");
    }
    return *any_string_;
  }

  Element any_number() {
    if (!any_number_) any_number_ = *number_range(grammar_, std::nullopt, std::nullopt, {});
    return *any_number_;
  }

  // Rules for any JSON value, object and array.
  void make_any_value() {
    if (any_value_rule_) return;
    any_value_rule_ = grammar_.add_rule("value");
    any_object_rule_ = grammar_.add_rule("object");
    any_array_rule_ = grammar_.add_rule("array");
    const Element value = Grammar::ref(*any_value_rule_);
    // object: "{" ws ( member ( "," ws member )* )? "}", member: string ws ":" ws value ws
    Sequence member{any_string()};
    ws(member);
    member.push_back(grammar_.byte(':'));
    ws(member);
    member.push_back(value);
    ws(member);
    Sequence more{grammar_.byte(',')};
    ws(more);
    append(more, member);
    Sequence object{grammar_.byte('{')};
    ws(object);
    Sequence members = member;
    members.push_back(grammar_.star(more));
    object.push_back(grammar_.optional(members));
    object.push_back(grammar_.byte('}'));
    grammar_.add_alternative(*any_object_rule_, object);
    Sequence item{value};
    ws(item);
    Sequence more_items{grammar_.byte(',')};
    ws(more_items);
    append(more_items, item);
    Sequence array{grammar_.byte('[')};
    ws(array);
    Sequence items = item;
    items.push_back(grammar_.star(more_items));
    array.push_back(grammar_.optional(items));
    array.push_back(grammar_.byte(']'));
    grammar_.add_alternative(*any_array_rule_, array);
    for (Sequence alternative :
         {Sequence{Grammar::ref(*any_object_rule_)}, Sequence{Grammar::ref(*any_array_rule_)}, Sequence{any_string()},
          Sequence{any_number()}, grammar_.literal("true"), grammar_.literal("false"), grammar_.literal("null")}) {
      grammar_.add_alternative(*any_value_rule_, alternative);
    }
  }

  Element any_value() {
    make_any_value();
    return Grammar::ref(*any_value_rule_);
  }
  Element any_object() {
    make_any_value();
    return Grammar::ref(*any_object_rule_);
  }
  Element any_array() {
    make_any_value();
    return Grammar::ref(*any_array_rule_);
  }

  Element never() {
    if (!never_rule_) never_rule_ = grammar_.add_rule("never");
    return Grammar::ref(*never_rule_);
  }

  Element emit(const NodePtr& node) {
    auto it = emitted_.find(node.get());
    if (it != emitted_.end()) return it->second;
    RecursionGuard guard(budget_, node->where);
    Element element = emit_uncached(node);
    emitted_.emplace(node.get(), element);
    return element;
  }

  Element emit_uncached(const NodePtr& node) {
    const Node& n = *node;
    switch (n.kind) {
      case Kind::kAny:
        return any_value();
      case Kind::kNever:
        return never();
      case Kind::kNull:
        return grammar_.literal_element("null");
      case Kind::kBoolean:
        return grammar_.choice({grammar_.literal("true"), grammar_.literal("false")}, "boolean");
      case Kind::kConst:
        return grammar_.choice({literal_value(n.value)}, "const");
      case Kind::kNumber:
        return emit_number(n);
      case Kind::kString:
        return emit_string(n);
      case Kind::kArray:
        return emit_array(n);
      case Kind::kObject:
        return emit_object(n);
      case Kind::kAnyOf: {
        std::vector<Sequence> alternatives;
        for (const NodePtr& option : n.options) alternatives.push_back({emit(option)});
        return grammar_.choice(std::move(alternatives), "any-of");
      }
      case Kind::kRef: {
        auto found = ref_rules_.find(n.target);
        if (found != ref_rules_.end()) return Grammar::ref(found->second);
        const uint32_t rule = grammar_.add_rule("ref " + n.target);
        ref_rules_.emplace(n.target, rule);
        grammar_.add_alternative(rule, {emit(resolve(n.target))});
        return Grammar::ref(rule);
      }
    }
    fail("internal: unknown node");
  }

  // The text of `value` (compact, or with optional whitespace between tokens).
  Sequence literal_value(const Json& value) {
    if (!flexible() || !value.is_structured() || value.empty()) return grammar_.literal(value.dump());
    Sequence out{grammar_.byte(value.is_object() ? '{' : '[')};
    ws(out);
    bool first = true;
    if (value.is_object()) {
      for (auto& [key, sub] : value.items()) {
        if (!first) {
          out.push_back(grammar_.byte(','));
          ws(out);
        }
        first = false;
        append(out, grammar_.literal(Json(key).dump()));
        ws(out);
        out.push_back(grammar_.byte(':'));
        ws(out);
        append(out, literal_value(sub));
        ws(out);
      }
    } else {
      for (const Json& sub : value) {
        if (!first) {
          out.push_back(grammar_.byte(','));
          ws(out);
        }
        first = false;
        append(out, literal_value(sub));
        ws(out);
      }
    }
    out.push_back(grammar_.byte(value.is_object() ? '}' : ']'));
    return out;
  }

  Element emit_number(const Node& n) {
    NumberRangeOptions range{.integer = n.integer, .integer_zero_fraction = kIntegerZeroFraction};
    if (n.multiple_of) {
      const Decimal& k = *n.multiple_of;
      if (!k.is_integer() || k.integer.size() > 4)
        unsupported("multipleOf", n.where, "only integer divisors up to 9999");
      const auto divisor = static_cast<uint32_t>(std::stoul(k.integer));
      if (divisor != 1) {
        if (n.lower || n.upper) unsupported("multipleOf", n.where, "together with minimum or maximum");
        return integer_multiple_of(grammar_, divisor);
      }
      range.integer = true;
    }
    if (!range.integer && !n.lower && !n.upper) return any_number();
    std::optional<Element> element = number_range(grammar_, n.lower, n.upper, range);
    return element ? *element : never();
  }

  Element emit_string(const Node& n) {
    if (n.min_length > n.max_length) return never();
    const bool lengths = n.min_length > 0 || n.max_length != kUnbounded;
    Sequence content;
    if (n.patterns.empty() && n.format.empty()) {
      if (!lengths) return any_string();
      if (n.min_length > kMaxRepeat || (n.max_length != kUnbounded && n.max_length > kMaxRepeat)) {
        unsupported("maxLength", n.where, "lengths above 100000");
      }
      content = grammar_.repeat({string_char()}, n.min_length, n.max_length);
    } else if (n.patterns.size() + !n.format.empty() == 1 && !lengths) {
      // One regular expression: compile_regex writes its JSON string content.
      const bool is_format = !n.format.empty();
      const std::string pattern = is_format ? format_pattern(n.format).pattern : n.patterns[0];
      Result<Element> element =
          compile_regex(grammar_, pattern, RegexOptions{.search = !is_format, .json_string = true});
      if (!element.is_ok()) unsupported(is_format ? "format" : "pattern", n.where, element.status().message());
      content.push_back(*element);
    } else {
      // Several constraints: the product of their automata.
      std::vector<StringPattern> patterns;
      for (const std::string& pattern : n.patterns) patterns.push_back({pattern, true});
      if (!n.format.empty()) patterns.push_back({format_pattern(n.format).pattern, false});
      Result<Element> element = string_intersection(grammar_, patterns, n.min_length, n.max_length);
      if (!element.is_ok()) {
        unsupported(n.patterns.empty() ? "format" : "pattern", n.where,
                    element.status().message() + (lengths ? ", with minLength / maxLength" : ""));
      }
      content.push_back(*element);
    }
    Sequence sequence{grammar_.byte('"')};
    append(sequence, content);
    sequence.push_back(grammar_.byte('"'));
    return grammar_.choice({std::move(sequence)}, "string");
  }

  Element emit_array(const Node& n) {
    if (n.unique_items && n.max_items > 1) {
      // Trivially unique: at most one value is possible for every item.
      unsupported("uniqueItems", n.where);
    }
    if (n.min_items > n.max_items) return never();
    if (n.prefix_items.empty() && n.items->kind == Kind::kAny && n.min_items == 0 && n.max_items == kUnbounded) {
      return any_array();
    }
    if (n.min_items > kMaxRepeat || (n.max_items != kUnbounded && n.max_items > kMaxRepeat)) {
      unsupported("maxItems", n.where, "counts above 100000");
    }
    Sequence comma{grammar_.byte(',')};
    ws(comma);
    // Tail: items after the prefix.
    const uint32_t k = static_cast<uint32_t>(n.prefix_items.size());
    Sequence tail;  // empty: nothing more; may hold a never()
    bool tail_possible = true;
    if (n.max_items > k && n.items->kind != Kind::kNever) {
      const uint32_t min_rest = n.min_items > k ? n.min_items - k : 0;
      const uint32_t max_rest = n.max_items == kUnbounded ? kUnbounded : n.max_items - k;
      Sequence item{emit(n.items)};
      ws(item);
      if (k == 0) {
        Sequence more = comma;
        append(more, item);
        Sequence all = item;
        append(all, grammar_.repeat(more, min_rest > 0 ? min_rest - 1 : 0,
                                    max_rest == kUnbounded ? kUnbounded : max_rest - 1));
        tail = min_rest > 0 ? all : Sequence{grammar_.optional(all)};
      } else {
        Sequence more = comma;
        append(more, item);
        tail = grammar_.repeat(more, min_rest, max_rest);
      }
    } else {
      tail_possible = n.min_items <= k;
    }
    // Prefix positions from the last to the first: A(i) = ("" if i >= min) | sep P_i A(i+1).
    std::optional<Sequence> next;
    if (tail_possible) next = tail;
    for (uint32_t i = k; i-- > 0;) {
      std::vector<Sequence> alternatives;
      if (i >= n.min_items) alternatives.push_back({});
      if (i < n.max_items && next && n.prefix_items[i]->kind != Kind::kNever) {
        Sequence taken = i == 0 ? Sequence{} : comma;
        taken.push_back(emit(n.prefix_items[i]));
        ws(taken);
        append(taken, *next);
        alternatives.push_back(std::move(taken));
      }
      if (alternatives.empty()) {
        next.reset();
      } else if (alternatives.size() == 1) {
        next = std::move(alternatives[0]);
      } else {
        next = Sequence{grammar_.choice(std::move(alternatives), "items")};
      }
    }
    if (!next) return never();
    Sequence sequence{grammar_.byte('[')};
    ws(sequence);
    append(sequence, *next);
    sequence.push_back(grammar_.byte(']'));
    return grammar_.choice({std::move(sequence)}, "array");
  }

  // A key (with quotes) that is none of `names`, in canonical form.
  Element key_except(const std::vector<std::string>& names, const std::string& where) {
    struct Trie {
      std::map<uint32_t, size_t> children;
      bool terminal = false;
    };
    std::vector<Trie> trie(1);
    for (const std::string& name : names) {
      std::vector<uint32_t> cps;
      if (!decode_utf8(name, cps)) fail("a property name at " + at(where) + " is not UTF-8");
      size_t t = 0;
      for (uint32_t cp : cps) {
        auto it = trie[t].children.find(cp);
        if (it == trie[t].children.end()) {
          trie.push_back({});
          it = trie[t].children.emplace(cp, trie.size() - 1).first;
        }
        t = it->second;
      }
      trie[t].terminal = true;
    }
    // The rest of a key after a divergence: canonical chars then the quote.
    // One rule, last in each divergence, so every trie node's divergence
    // leads to the same parser states.
    const Element rest = grammar_.choice({{grammar_.star({canonical_char({})}), grammar_.byte('"')}}, "key-rest");
    std::vector<uint32_t> rules(trie.size());
    for (size_t t = 0; t < trie.size(); ++t) rules[t] = grammar_.add_rule("key-except");
    for (size_t t = 0; t < trie.size(); ++t) {
      if (!trie[t].terminal) grammar_.add_alternative(static_cast<uint32_t>(rules[t]), {grammar_.byte('"')});
      std::vector<uint32_t> used;
      for (auto& [cp, next] : trie[t].children) {
        used.push_back(cp);
        std::string character;
        append_utf8(character, cp);
        std::string encoded = string_content(character);
        Sequence sequence = grammar_.literal(encoded);
        sequence.push_back(Grammar::ref(rules[next]));
        grammar_.add_alternative(rules[t], std::move(sequence));
      }
      grammar_.add_alternative(rules[t], {canonical_char(used), rest});
    }
    return grammar_.choice({{grammar_.byte('"'), Grammar::ref(rules[0])}}, "key");
  }

  // One string character in canonical form, other than the code points in
  // `excluded` (sorted).
  Element canonical_char(const std::vector<uint32_t>& excluded) {
    auto cached = canonical_chars_.find(excluded);
    if (cached != canonical_chars_.end()) return cached->second;
    std::vector<CodepointRange> raw_excluded{{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};
    for (uint32_t cp : excluded) raw_excluded.push_back({cp, cp});
    std::sort(raw_excluded.begin(), raw_excluded.end(),
              [](const CodepointRange& a, const CodepointRange& b) { return a.first < b.first; });
    std::vector<Sequence> alternatives{{grammar_.codepoints(raw_excluded, true)}};
    for (uint32_t cp = 0; cp < 0x20; ++cp) {
      if (!std::binary_search(excluded.begin(), excluded.end(), cp)) {
        alternatives.push_back(grammar_.literal(string_content(std::string(1, static_cast<char>(cp)))));
      }
    }
    for (uint32_t cp : {uint32_t{'"'}, uint32_t{'\\'}}) {
      if (!std::binary_search(excluded.begin(), excluded.end(), cp)) {
        alternatives.push_back(grammar_.literal(string_content(std::string(1, static_cast<char>(cp)))));
      }
    }
    Element element = grammar_.choice(std::move(alternatives), "canonical-char");
    canonical_chars_.emplace(excluded, element);
    return element;
  }

  struct Extra {
    Element key;
    NodePtr value;
  };

  // The keys beyond the listed properties, with their value schemas: a
  // subset of what the schema allows where the exact set needs a regex
  // complement (keys matching no pattern are then refused).
  std::vector<Extra> extra_keys(const Node& n) {
    std::vector<Extra> extras;
    std::vector<std::string> names;
    for (const Property& p : n.properties) names.push_back(p.name);
    const bool names_free = n.property_names == nullptr;
    if (!n.pattern_properties.empty()) {
      bool all_any = n.additional->kind == Kind::kAny && names_free;
      for (auto& [pattern, sub] : n.pattern_properties) all_any &= sub->kind == Kind::kAny;
      if (!all_any) {
        // Keys through a pattern: exact when no listed name matches it, all
        // patterns share one schema, and no propertyNames applies.
        if (!names_free) return extras;
        for (auto& [pattern, sub] : n.pattern_properties) {
          if (sub != n.pattern_properties[0].second) {
            unsupported("patternProperties", n.where, "several patterns with different schemas");
          }
          for (const std::string& name : names) {
            if (pattern_matches(pattern, name, n.where)) return extras;
          }
        }
        for (auto& [pattern, sub] : n.pattern_properties) {
          if (sub->kind == Kind::kNever) continue;
          Result<Element> key = compile_regex(grammar_, pattern, RegexOptions{.search = true, .json_string = true});
          if (!key.is_ok()) unsupported("patternProperties", n.where, key.status().message());
          extras.push_back({grammar_.choice({{grammar_.byte('"'), *key, grammar_.byte('"')}}, "pattern-key"), sub});
        }
        return extras;
      }
    }
    if (n.additional->kind == Kind::kNever) return extras;
    if (!names_free) {
      // A finite set of names: the ones not listed, each a literal key.
      const Node& allowed = *n.property_names;
      std::vector<NodePtr> constants =
          allowed.kind == Kind::kAnyOf ? allowed.options : std::vector<NodePtr>{n.property_names};
      if (std::all_of(constants.begin(), constants.end(), [](const NodePtr& c) { return c->kind == Kind::kConst; })) {
        for (const NodePtr& constant : constants) {
          if (!constant->value.is_string()) continue;
          const std::string& key = constant->value.get_ref<const std::string&>();
          if (std::find(names.begin(), names.end(), key) != names.end()) continue;
          extras.push_back({grammar_.literal_element(Json(key).dump()), n.additional});
        }
        return extras;
      }
      for (const std::string& name : names) {
        if (check(Json(name), n.property_names, 0) != Tri::kNo) return extras;
      }
      extras.push_back({emit(n.property_names), n.additional});
      return extras;
    }
    extras.push_back({names.empty() ? any_string() : key_except(names, n.where), n.additional});
    return extras;
  }

  Element emit_object(const Node& n) {
    if (n.properties.empty() && n.pattern_properties.empty() && n.additional->kind == Kind::kAny && !n.property_names &&
        n.min_properties == 0 && n.max_properties == kUnbounded) {
      return any_object();
    }
    struct Listed {
      Sequence member;  // "key" ws ":" ws value ws
      bool required;
    };
    std::vector<Listed> listed;
    for (const Property& p : n.properties) {
      if (p.schema->kind == Kind::kNever) {
        if (p.required) return never();
        continue;
      }
      Sequence member = grammar_.literal(Json(p.name).dump());
      ws(member);
      member.push_back(grammar_.byte(':'));
      ws(member);
      member.push_back(emit(p.schema));
      ws(member);
      listed.push_back({std::move(member), p.required});
    }
    std::vector<Sequence> extra_members;
    for (Extra& extra : extra_keys(n)) {
      if (extra.value->kind == Kind::kNever) continue;
      Sequence member{extra.key};
      ws(member);
      member.push_back(grammar_.byte(':'));
      ws(member);
      member.push_back(emit(extra.value));
      ws(member);
      extra_members.push_back(std::move(member));
    }
    const uint32_t min = n.min_properties;
    const uint32_t max = n.max_properties;
    const uint32_t cap = max != kUnbounded ? max : std::max<uint32_t>(min, 1);
    if (static_cast<size_t>(cap + 1) * (listed.size() + 1) > kMaxObjectStates) {
      unsupported("maxProperties", n.where, "too many states");
    }
    auto next_count = [&](uint32_t c) { return max != kUnbounded ? c + 1 : std::min(c + 1, cap); };
    Sequence comma{grammar_.byte(',')};
    ws(comma);

    // Extra members, count c so far.
    std::optional<Element> extra_member;
    if (!extra_members.empty()) {
      extra_member = extra_members.size() == 1 ? grammar_.choice({extra_members[0]}, "member")
                                               : grammar_.choice(std::move(extra_members), "member");
    }
    // Rules are created on first reference and filled from a worklist, so
    // the depth of C++ recursion does not grow with the counts.
    std::map<uint32_t, uint32_t> extra_rules;
    std::vector<uint32_t> extra_pending;
    auto extra_state = [&](uint32_t c) -> Element {
      auto it = extra_rules.find(c);
      if (it == extra_rules.end()) {
        it = extra_rules.emplace(c, grammar_.add_rule("members")).first;
        extra_pending.push_back(c);
      }
      return Grammar::ref(it->second);
    };
    auto fill_extra_states = [&] {
      while (!extra_pending.empty()) {
        const uint32_t c = extra_pending.back();
        extra_pending.pop_back();
        const uint32_t rule = extra_rules.at(c);
        if (c >= min) grammar_.add_alternative(rule, {});
        if (extra_member && (max == kUnbounded || c < max)) {
          Sequence sequence = c == 0 ? Sequence{} : comma;
          sequence.push_back(*extra_member);
          sequence.push_back(extra_state(next_count(c)));
          grammar_.add_alternative(rule, std::move(sequence));
        }
      }
    };

    Element body;
    if (options_.any_order_properties && listed.size() <= kAnyOrderProperties && listed.size() > 1) {
      // Any order: state = the set of listed members already written.
      std::map<uint32_t, uint32_t> mask_rules;
      uint32_t required_mask = 0;
      for (size_t i = 0; i < listed.size(); ++i) required_mask |= listed[i].required ? 1u << i : 0;
      std::function<Element(uint32_t)> mask_state = [&](uint32_t mask) -> Element {
        auto it = mask_rules.find(mask);
        if (it != mask_rules.end()) return Grammar::ref(it->second);
        const uint32_t rule = grammar_.add_rule("members");
        mask_rules.emplace(mask, rule);
        const auto count = static_cast<uint32_t>(std::popcount(mask));
        for (size_t i = 0; i < listed.size(); ++i) {
          if ((mask >> i) & 1 || (max != kUnbounded && count >= max)) continue;
          Sequence sequence = count == 0 ? Sequence{} : comma;
          append(sequence, listed[i].member);
          sequence.push_back(mask_state(mask | (1u << i)));
          grammar_.add_alternative(rule, std::move(sequence));
        }
        if ((mask & required_mask) == required_mask) {
          grammar_.add_alternative(rule, {extra_state(max != kUnbounded ? count : std::min(count, cap))});
        }
        return Grammar::ref(rule);
      };
      body = mask_state(0);
    } else {
      // In order: state = (next listed index, count so far).
      std::map<std::pair<size_t, uint32_t>, uint32_t> rules;
      std::vector<std::pair<size_t, uint32_t>> pending;
      auto state = [&](size_t i, uint32_t c) -> Element {
        if (i == listed.size()) return extra_state(c);
        auto it = rules.find({i, c});
        if (it == rules.end()) {
          it = rules.emplace(std::make_pair(i, c), grammar_.add_rule("members")).first;
          pending.emplace_back(i, c);
        }
        return Grammar::ref(it->second);
      };
      body = state(0, 0);
      while (!pending.empty()) {
        const auto [i, c] = pending.back();
        pending.pop_back();
        const uint32_t rule = rules.at({i, c});
        if (!listed[i].required) grammar_.add_alternative(rule, {state(i + 1, c)});
        if (max == kUnbounded || c < max) {
          Sequence sequence = c == 0 ? Sequence{} : comma;
          append(sequence, listed[i].member);
          sequence.push_back(state(i + 1, next_count(c)));
          grammar_.add_alternative(rule, std::move(sequence));
        }
      }
    }
    fill_extra_states();
    Sequence sequence{grammar_.byte('{')};
    ws(sequence);
    sequence.push_back(body);
    sequence.push_back(grammar_.byte('}'));
    return grammar_.choice({std::move(sequence)}, "object");
  }

  const Json& document_;
  JsonSchemaOptions options_;
  CompileBudget budget_;  // RecursionGuard's depth, stack and step totals
  Grammar grammar_;
  NodePtr any_;
  NodePtr never_;
  std::map<std::string, std::string> ids_;          // $id -> pointer
  std::map<std::string, std::string> anchors_;      // anchor -> pointer
  std::map<std::string, std::string> resource_of_;  // pointer -> pointer of its resource
  std::string root_id_;
  std::map<std::string, NodePtr> resolved_;  // $ref target -> node (nullptr while in progress)
  std::map<std::string, Grammar> pattern_grammars_;
  std::map<const Node*, Element> emitted_;
  std::map<std::string, uint32_t> ref_rules_;
  std::map<std::vector<uint32_t>, Element> canonical_chars_;
  std::optional<Element> ws_, string_char_, any_string_, any_number_;
  std::optional<uint32_t> any_value_rule_, any_object_rule_, any_array_rule_, never_rule_;
};

}  // namespace

Result<Grammar> compile_json_schema(const nlohmann::ordered_json& schema, const JsonSchemaOptions& options) {
  // Every pass below recurses over the schema: bound its depth first.
  if (json_nesting_exceeds(schema, kMaxSchemaJsonDepth)) {
    return Status::invalid_argument("json_schema: the schema is nested more than " +
                                    std::to_string(kMaxSchemaJsonDepth) + " JSON levels deep");
  }
  try {
    Compiler compiler(schema, options);
    return compiler.compile();
  } catch (const SchemaError& error) {
    return error.status;
  } catch (const nlohmann::json::exception& error) {
    return Status::invalid_argument(std::string("json_schema: ") + error.what());
  } catch (const std::exception& error) {
    return Status::internal(std::string("json_schema: ") + error.what());
  }
}

Result<Grammar> compile_json_schema(const nlohmann::json& schema, const JsonSchemaOptions& options) {
  try {
    return compile_json_schema(nlohmann::ordered_json::parse(schema.dump()), options);
  } catch (const std::exception& error) {
    return Status::invalid_argument(std::string("json_schema: ") + error.what());
  }
}

Grammar json_object_grammar(const JsonSchemaOptions& options) {
  static const nlohmann::ordered_json kEmpty = nlohmann::ordered_json::object();
  Compiler compiler(kEmpty, options);
  return compiler.any_object_grammar();
}

}  // namespace pagoda::structured
