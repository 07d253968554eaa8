// JSON to Jinja values: a request's JSON (tools, tool-call arguments) as the
// dicts and lists a chat template reads, keys in the order the JSON has them.
// A pure function; thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include "chat/jinja_value.h"
#include "common/status.h"

namespace pagoda {

// objects -> dicts (key order kept), arrays -> lists, integers -> int (an
// unsigned one beyond int64 -> float), floats, strings, booleans, null.
// InvalidArgument when nested deeper than 512 levels.
Result<JinjaValue> jinja_from_json(const nlohmann::ordered_json& json);

}  // namespace pagoda
