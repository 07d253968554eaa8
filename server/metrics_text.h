// Renders the engine's statistics in the Prometheus text exposition format
// (names: pagoda_ prefix, snake_case, base units, _total on counters).
// Free function; reads thread-safe metric primitives, so callable from any
// thread.
#pragma once

#include <string>

#include "scheduler/engine_stats.h"

namespace pagoda {

// `replica` (server.replica_id) is the label of pagoda_replica_info, the
// series a dashboard joins on to name the replica behind a scrape target.
std::string render_metrics(const EngineStats& stats, int64_t http_connections, const std::string& replica);

}  // namespace pagoda
