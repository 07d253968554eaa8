// The structured-output fields of a request body, read into a GrammarSpec:
// OpenAI's `response_format` (text, json_object, json_schema with name,
// schema, strict), vLLM's `guided_json`, `guided_regex`, `guided_choice`,
// `guided_grammar` and its newer `structured_outputs` object, and
// llama.cpp's `json_schema` and `grammar`. Pure functions (thread-safe).
#pragma once

#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "structured/grammar_spec.h"

namespace pagoda {

// The top-level fields this reads (for the routes' lists of known fields).
const std::set<std::string>& structured_request_fields();

// The grammar the body asks for, nullopt when none (or response_format
// text), and in `*asked_field` (optional) the request field that asked for it.
// Errors are InvalidArgument with field() naming the request field;
// asking for two at once is an error. The body is parsed keeping key order,
// since a schema's property order is the order the output follows.
Result<std::optional<structured::GrammarSpec>> parse_structured_request(const nlohmann::ordered_json& body,
                                                                        std::string* asked_field = nullptr);

}  // namespace pagoda
