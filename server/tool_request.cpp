// Tool-calling request fields (see tool_request.h).
#include "server/tool_request.h"

#include <utility>

namespace pagoda {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kMaxTools = 128;  // OpenAI's limit
constexpr size_t kMaxNameLength = 64;

Status field_error(const std::string& field, const std::string& message) {
  return Status::invalid_argument(message).with_field(field);
}

bool valid_function_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status check_tools(const Json& tools) {
  if (!tools.is_array()) return field_error("tools", "'tools' must be an array of {\"type\": \"function\", ...}");
  if (tools.size() > kMaxTools)
    return field_error("tools", "'tools' has more than " + std::to_string(kMaxTools) + " entries");
  std::set<std::string> names;
  for (size_t i = 0; i < tools.size(); ++i) {
    const Json& t = tools[i];
    const std::string where = "tools[" + std::to_string(i) + "]";
    if (!t.is_object()) return field_error("tools", where + " must be an object");
    if (!t.contains("type") || t["type"] != "function")
      return field_error("tools", where + ".type must be \"function\" (the only tool type supported)");
    if (!t.contains("function") || !t["function"].is_object())
      return field_error("tools", where + ".function must be an object with 'name'");
    const Json& f = t["function"];
    if (!f.contains("name") || !f["name"].is_string() || !valid_function_name(f["name"].get<std::string>()))
      return field_error("tools", where + ".function.name must be 1 to 64 letters, digits, '_' or '-'");
    if (!names.insert(f["name"].get<std::string>()).second)
      return field_error("tools", where + ".function.name '" + f["name"].get<std::string>() + "' is repeated");
    if (f.contains("description") && !f["description"].is_string() && !f["description"].is_null())
      return field_error("tools", where + ".function.description must be a string");
    if (f.contains("parameters") && !f["parameters"].is_object() && !f["parameters"].is_null())
      return field_error("tools", where + ".function.parameters must be a JSON Schema object");
    if (f.contains("strict") && !f["strict"].is_boolean() && !f["strict"].is_null())
      return field_error("tools", where + ".function.strict must be a boolean");
  }
  return Status::ok();
}

const Json* find_function(const Json& tools, const std::string& name) {
  for (const Json& t : tools) {
    if (t["function"]["name"] == name) return &t["function"];
  }
  return nullptr;
}

// Points every JSON-pointer "$ref" ("#" or "#/...") of `schema` below
// `prefix`, for a schema embedded at that pointer of a larger one. Values
// that are data, not schemas (const, enum, default, examples), are left alone.
void rebase_refs(Json& schema, const std::string& prefix) {
  if (schema.is_object()) {
    for (auto& [key, value] : schema.items()) {
      if (key == "const" || key == "enum" || key == "default" || key == "examples") continue;
      const bool schema_map = key == "properties" || key == "patternProperties" || key == "$defs" ||
                              key == "definitions" || key == "dependentSchemas";
      if (key == "$ref" && value.is_string()) {
        const std::string ref = value.get<std::string>();
        if (ref == "#" || ref.starts_with("#/")) value = "#" + prefix + ref.substr(1);
      } else if (schema_map && value.is_object()) {
        for (auto& item : value.items()) rebase_refs(item.value(), prefix);  // any name, even "default"
      } else {
        rebase_refs(value, prefix);
      }
    }
  } else if (schema.is_array()) {
    for (Json& item : schema) rebase_refs(item, prefix);
  }
}

bool is_strict(const Json& function) { return function.contains("strict") && function["strict"] == true; }

}  // namespace

Json ToolRequest::parameters_of(const std::string& name) const {
  const Json* f = find_function(tools, name);
  if (f == nullptr || !f->contains("parameters") || (*f)["parameters"].is_null()) return Json{{"type", "object"}};
  return (*f)["parameters"];
}

std::set<std::string> ToolRequest::function_names() const {
  std::set<std::string> names;
  for (const Json& t : tools) names.insert(t["function"]["name"].get<std::string>());
  return names;
}

const std::set<std::string>& tool_request_fields() {
  static const std::set<std::string> f = {"tools", "tool_choice", "parallel_tool_calls", "functions", "function_call"};
  return f;
}

Result<std::optional<ToolRequest>> parse_tool_request(const Json& body) {
  for (const char* legacy : {"functions", "function_call"}) {
    if (body.contains(legacy) && !body[legacy].is_null())
      return field_error(legacy, std::string("'") + legacy +
                                     "' (OpenAI's deprecated function calling) is not supported: send 'tools' and "
                                     "'tool_choice'");
  }
  ToolRequest request;
  if (body.contains("tools") && !body["tools"].is_null()) {
    if (Status st = check_tools(body["tools"]); !st.is_ok()) return st;
    request.tools = body["tools"];
  }
  if (body.contains("parallel_tool_calls") && !body["parallel_tool_calls"].is_null()) {
    if (!body["parallel_tool_calls"].is_boolean())
      return field_error("parallel_tool_calls", "'parallel_tool_calls' must be a boolean");
    request.parallel_calls = body["parallel_tool_calls"].get<bool>();
  }
  const bool has_tools = !request.tools.empty();
  request.choice = has_tools ? ToolChoice::kAuto : ToolChoice::kNone;
  if (body.contains("tool_choice") && !body["tool_choice"].is_null()) {
    const Json& c = body["tool_choice"];
    if (c.is_string()) {
      const std::string s = c.get<std::string>();
      if (s == "none") request.choice = ToolChoice::kNone;
      else if (s == "auto") request.choice = ToolChoice::kAuto;
      else if (s == "required") request.choice = ToolChoice::kRequired;
      else return field_error("tool_choice", "'tool_choice' must be none, auto, required or a named function");
    } else if (c.is_object() && c.contains("type") && c["type"] == "function" && c.contains("function") &&
               c["function"].is_object() && c["function"].contains("name") && c["function"]["name"].is_string()) {
      request.choice = ToolChoice::kNamed;
      request.function = c["function"]["name"].get<std::string>();
      if (find_function(request.tools, request.function) == nullptr)
        return field_error("tool_choice", "'tool_choice' names function '" + request.function.substr(0, 64) +
                                              "', which is not in 'tools'");
    } else {
      return field_error("tool_choice",
                         "'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": "
                         "{\"name\": ...}}");
    }
    if (request.choice != ToolChoice::kNone && !has_tools)
      return field_error("tool_choice", "'tool_choice' needs 'tools'");
  }
  if (!has_tools) return std::optional<ToolRequest>();
  return std::optional<ToolRequest>(std::move(request));
}

std::optional<structured::GrammarSpec> forced_tool_call_grammar(const ToolRequest& request) {
  structured::GrammarSpec spec;
  spec.kind = structured::GrammarSpec::Kind::kJsonSchema;
  if (request.choice == ToolChoice::kNamed) {
    spec.schema = request.parameters_of(request.function);
    spec.strict = is_strict(*find_function(request.tools, request.function));
    return spec;
  }
  if (request.choice != ToolChoice::kRequired) return std::nullopt;
  Json any_of = Json::array();
  bool all_strict = true;
  for (size_t i = 0; i < request.tools.size(); ++i) {
    const Json& f = request.tools[i]["function"];
    const std::string name = f["name"].get<std::string>();
    Json parameters = request.parameters_of(name);
    rebase_refs(parameters, "/items/anyOf/" + std::to_string(i) + "/properties/parameters");
    any_of.push_back(Json{{"type", "object"},
                          {"properties", Json{{"name", Json{{"const", name}}}, {"parameters", std::move(parameters)}}},
                          {"required", Json::array({"name", "parameters"})},
                          {"additionalProperties", false}});
    all_strict = all_strict && is_strict(f);
  }
  spec.schema = Json{{"type", "array"}, {"minItems", 1}, {"items", Json{{"anyOf", std::move(any_of)}}}};
  if (!request.parallel_calls) spec.schema["maxItems"] = 1;
  spec.strict = all_strict;
  return spec;
}

}  // namespace pagoda
