// Renders the engine's statistics in the Prometheus text exposition format
// (names: pagoda_ prefix, snake_case, base units, _total on counters).
// Free function; reads thread-safe metric primitives, so callable from any
// thread.
#pragma once

#include <string>

#include "scheduler/engine_stats.h"

namespace pagoda {

std::string render_metrics(const EngineStats& stats, int64_t http_connections);

}  // namespace pagoda
