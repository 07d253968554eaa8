// Presenting bench results: the readable table of one run, the JSON result
// file (config, workload and every figure), the table of a sweep, and the
// sweep's PNG plots drawn by gnuplot. Pure functions over results.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_serve.h"
#include "common/status.h"

namespace pagoda::bench {

// The end-of-run table.
void print_report(const BenchResult& r, std::ostream& os);

// Everything about one run; `with_requests` adds one compact row per request.
nlohmann::json result_json(const BenchResult& r, bool with_requests);

// Writes `j` (pretty-printed) to `path`.
Status write_json_file(const std::string& path, const nlohmann::json& j);

// One line per sweep point: throughput and latency percentiles.
void print_sweep_table(const std::vector<BenchResult>& points, SweepParam param, std::ostream& os);

// The hint for a failure class ("http_401" -> pass --api-key; "connection"
// -> is the server running at `url`?), or "".
std::string failure_hint(const std::string& failure_key, const std::string& url);

// The files write_sweep_plots writes for `prefix` (.dat, .gp, two PNGs).
std::vector<std::string> sweep_output_files(const std::string& prefix);

// Writes PREFIX_throughput.png (output tokens/s against the swept knob) and
// PREFIX_latency.png (TTFT and ITL median/p90/p99 against it) through gnuplot,
// plus PREFIX_sweep.dat with the numbers (an infinite request rate is drawn
// right of the largest finite one, labelled "inf"; with repeats, bars show
// the min-max of the runs). Unavailable (with a message saying
// what to install) when gnuplot is not on PATH; the .dat file is still written.
Status write_sweep_plots(const std::vector<BenchResult>& points, SweepParam param, const std::string& prefix,
                         std::vector<std::string>* written);

}  // namespace pagoda::bench
