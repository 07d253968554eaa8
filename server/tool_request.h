// The tool-calling fields of a chat request: OpenAI's `tools`,
// `tool_choice` and `parallel_tool_calls`, read into a ToolRequest, and the
// grammar that forces a call when tool_choice is `required` or names a
// function (vLLM's approach: a named call's output is its arguments object;
// a required call's output is a JSON array of {"name", "parameters"}).
// Pure functions (thread-safe).
#pragma once

#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "structured/grammar_spec.h"

namespace pagoda {

enum class ToolChoice { kNone, kAuto, kRequired, kNamed };

struct ToolRequest {
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();  // as sent (key order kept for the template)
  ToolChoice choice = ToolChoice::kAuto;
  std::string function;        // kNamed: the function the call must be
  bool parallel_calls = true;  // parallel_tool_calls

  // The `parameters` schema of function `name` ({"type":"object"} when it has none).
  nlohmann::ordered_json parameters_of(const std::string& name) const;
  // The offered functions' names.
  std::set<std::string> function_names() const;
};

// The top-level fields this reads (for the chat route's list of known fields).
const std::set<std::string>& tool_request_fields();

// The tools the body offers; nullopt when it offers none (`tools` absent,
// null or empty and no tool_choice but "none"). Errors are InvalidArgument
// with field() naming the request field.
Result<std::optional<ToolRequest>> parse_tool_request(const nlohmann::ordered_json& body);

// The grammar a forced call follows: kRequired and kNamed only.
std::optional<structured::GrammarSpec> forced_tool_call_grammar(const ToolRequest& request);

}  // namespace pagoda
