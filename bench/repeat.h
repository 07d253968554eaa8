// Repeated runs of one bench point, reduced to their medians: BENCHMARKS.md
// quotes medians of several runs because the machine is shared and noisy.
// median_result() takes the runs of one point (same config) and returns a
// result whose throughputs, latency figures and server-side gauges are the
// median over the runs (each figure on its own). Pure functions.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_serve.h"

namespace pagoda::bench {

// Median of each figure over `runs` (non-empty); config, model and workload
// are the first run's, request records are dropped. Request counts
// (completed, failed, failures by kind) are summed over the runs; `spread`
// holds the range of the headline figures.
BenchResult median_result(const std::vector<BenchResult>& runs);

// {"runs": N, "output_throughput": [each run], "ttft_median_ms": [...],
//  "tpot_median_ms": [...]}: the spread behind a median, for the result file.
nlohmann::json run_spread_json(const std::vector<BenchResult>& runs);

}  // namespace pagoda::bench
