// Process-wide logging setup on spdlog: level and format (`text` lines or
// `json`, one JSON object per line with ts, level, logger and msg).
// Call setup_logging once at start-up, before other threads log; spdlog's
// loggers themselves are thread-safe afterwards.
#pragma once

#include <string>

#include "common/status.h"

namespace pagoda {

// level: trace|debug|info|warn|error|off; format: text|json. Logs go to stderr.
Status setup_logging(const std::string& level, const std::string& format);

}  // namespace pagoda
