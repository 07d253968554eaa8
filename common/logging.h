// Process-wide logging setup on spdlog: level and format (`text` lines or
// `json`, one JSON object per line with ts, level, logger and msg).
// Call setup_logging once at start-up, before other threads log; spdlog's
// loggers themselves are thread-safe afterwards.
#pragma once

#include <string>
#include <string_view>

#include <spdlog/common.h>
#include <nlohmann/json.hpp>

#include "common/status.h"

namespace pagoda {

// level: trace|debug|info|warn|error|off; format: text|json. Logs go to stderr.
Status setup_logging(const std::string& level, const std::string& format);

// One record with named fields: `event k=v k=v ...` in text format (strings
// with spaces or quotes are JSON-quoted), or the JSON object with the fields
// beside ts/level/logger and msg = event in json format. Thread-safe.
void log_event(spdlog::level::level_enum level, std::string_view event, const nlohmann::ordered_json& fields);

// One record written for people in text format (`text` as given) and as
// named fields in json format (msg = event, then `fields`): for summaries
// such as the start-up lines, where `event k=v` would read poorly.
// Thread-safe.
void log_summary(spdlog::level::level_enum level, std::string_view event, std::string_view text,
                 const nlohmann::ordered_json& fields);

}  // namespace pagoda
