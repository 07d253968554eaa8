#include "server/structured_request.h"

#include <vector>

#include "common/json_nesting.h"
#include "structured/json_schema_compiler.h"

namespace pagoda {

namespace {

using json = nlohmann::ordered_json;
using structured::GrammarSpec;
using Spec = std::optional<GrammarSpec>;

Status field_error(const std::string& field, const std::string& message) {
  return Status::invalid_argument(message).with_field(field);
}

// A schema given as an object (or boolean), or as a string holding JSON (vLLM accepts both).
Result<json> schema_value(const json& value, const std::string& field) {
  if (value.is_object() || value.is_boolean()) return value;
  if (value.is_string()) {
    json parsed = json::parse(value.get<std::string>(), nullptr, false);
    if (!parsed.is_discarded() && json_nesting_exceeds(parsed, structured::kMaxSchemaJsonDepth))
      return field_error(field, "'" + field + "' is nested more than " +
                                    std::to_string(structured::kMaxSchemaJsonDepth) + " levels deep");
    if (!parsed.is_discarded() && (parsed.is_object() || parsed.is_boolean())) return parsed;
  }
  return field_error(field, "'" + field + "' must be a JSON Schema (an object, or a string holding one)");
}

Result<Spec> json_schema_spec(const json& value, const std::string& field, bool strict) {
  // Checked first, before anything walks the schema recursively (copying
  // it, or dumping it for the cache key, would exhaust the stack).
  if (json_nesting_exceeds(value, structured::kMaxSchemaJsonDepth))
    return field_error(field, "'" + field + "' is nested more than " + std::to_string(structured::kMaxSchemaJsonDepth) +
                                  " levels deep");
  auto schema = schema_value(value, field);
  if (!schema) return schema.status();
  GrammarSpec spec;
  spec.kind = GrammarSpec::Kind::kJsonSchema;
  spec.schema = std::move(schema).value();
  spec.strict = strict;
  return Spec(std::move(spec));
}

Result<Spec> text_spec(const json& value, const std::string& field, GrammarSpec::Kind kind) {
  if (!value.is_string() || value.get<std::string>().empty())
    return field_error(field, "'" + field + "' must be a non-empty string");
  GrammarSpec spec;
  spec.kind = kind;
  spec.text = value.get<std::string>();
  return Spec(std::move(spec));
}

Result<Spec> choice_spec(const json& value, const std::string& field) {
  if (!value.is_array() || value.empty())
    return field_error(field, "'" + field + "' must be a non-empty list of strings");
  GrammarSpec spec;
  spec.kind = GrammarSpec::Kind::kChoice;
  for (const json& c : value) {
    if (!c.is_string()) return field_error(field, "'" + field + "' must be a non-empty list of strings");
    spec.choices.push_back(c.get<std::string>());
  }
  return Spec(std::move(spec));
}

Spec json_object_spec() {
  GrammarSpec spec;
  spec.kind = GrammarSpec::Kind::kJsonObject;
  return spec;
}

Result<Spec> response_format_spec(const json& rf) {
  if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
    return field_error("response_format", "'response_format' must be an object with a 'type'");
  const std::string type = rf["type"].get<std::string>();
  if (type == "text") return Spec();
  if (type == "json_object") return json_object_spec();
  if (type == "json_schema") {
    if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
      return field_error("response_format.json_schema", "'response_format.json_schema' must be an object");
    const json& js = rf["json_schema"];
    if (js.contains("strict") && !js["strict"].is_null() && !js["strict"].is_boolean())
      return field_error("response_format.json_schema.strict", "'strict' must be true or false");
    const bool strict = js.contains("strict") && js["strict"].is_boolean() && js["strict"].get<bool>();
    if (!js.contains("schema") || js["schema"].is_null()) return json_object_spec();  // OpenAI: schema optional
    return json_schema_spec(js["schema"], "response_format.json_schema.schema", strict);
  }
  return field_error("response_format.type",
                     "'response_format.type' must be 'text', 'json_object' or 'json_schema', got '" + type + "'");
}

Result<Spec> structured_outputs_spec(const json& so) {
  if (!so.is_object()) return field_error("structured_outputs", "'structured_outputs' must be an object");
  Spec found;
  for (const auto& [key, value] : so.items()) {
    const std::string field = "structured_outputs." + key;
    Result<Spec> spec = Spec();
    if (value.is_null()) continue;
    if (key == "json") {
      spec = json_schema_spec(value, field, false);
    } else if (key == "regex") {
      spec = text_spec(value, field, GrammarSpec::Kind::kRegex);
    } else if (key == "choice") {
      spec = choice_spec(value, field);
    } else if (key == "grammar") {
      spec = text_spec(value, field, GrammarSpec::Kind::kGbnf);
    } else if (key == "json_object") {
      if (!value.is_boolean()) return field_error(field, "'" + field + "' must be true or false");
      if (!value.get<bool>()) continue;
      spec = json_object_spec();
    } else if (key == "whitespace_pattern" || key == "disable_any_whitespace" || key == "disable_fallback" ||
               key == "disable_additional_properties" || key == "backend") {
      continue;  // backend tuning knobs of vLLM: one engine here
    } else {
      return field_error(field, "unknown field '" + field + "'");
    }
    if (!spec) return spec.status();
    if (found)
      return field_error(field, "'structured_outputs' may hold one of json, regex, choice, grammar, json_object");
    found = std::move(spec).value();
  }
  return found;
}

}  // namespace

const std::set<std::string>& structured_request_fields() {
  static const std::set<std::string> fields = {"response_format",
                                               "guided_json",
                                               "guided_regex",
                                               "guided_choice",
                                               "guided_grammar",
                                               "structured_outputs",
                                               "guided_decoding_backend",
                                               "guided_whitespace_pattern",
                                               "json_schema",
                                               "grammar"};
  return fields;
}

Result<std::optional<GrammarSpec>> parse_structured_request(const json& body, std::string* asked_field) {
  std::vector<std::pair<std::string, Spec>> asked;
  auto take = [&](const char* field, Result<Spec> spec) -> Status {
    if (!spec) return spec.status();
    if (*spec) asked.emplace_back(field, std::move(spec).value());
    return Status::ok();
  };
  auto present = [&](const char* field) { return body.contains(field) && !body[field].is_null(); };
  Status status;
  if (present("response_format")) status = take("response_format", response_format_spec(body["response_format"]));
  if (status && present("guided_json"))
    status = take("guided_json", json_schema_spec(body["guided_json"], "guided_json", false));
  if (status && present("guided_regex"))
    status = take("guided_regex", text_spec(body["guided_regex"], "guided_regex", GrammarSpec::Kind::kRegex));
  if (status && present("guided_choice"))
    status = take("guided_choice", choice_spec(body["guided_choice"], "guided_choice"));
  if (status && present("guided_grammar"))
    status = take("guided_grammar", text_spec(body["guided_grammar"], "guided_grammar", GrammarSpec::Kind::kGbnf));
  if (status && present("structured_outputs"))
    status = take("structured_outputs", structured_outputs_spec(body["structured_outputs"]));
  if (status && present("json_schema"))
    status = take("json_schema", json_schema_spec(body["json_schema"], "json_schema", false));
  if (status && present("grammar"))
    status = take("grammar", text_spec(body["grammar"], "grammar", GrammarSpec::Kind::kGbnf));
  if (!status) return status;
  if (asked.size() > 1) {
    return field_error(asked[1].first,
                       "'" + asked[0].first + "' and '" + asked[1].first + "' both constrain the output: send one");
  }
  if (asked.empty()) return Spec();
  if (asked_field) *asked_field = asked[0].first;
  return std::move(asked[0].second);
}

}  // namespace pagoda
