#include "bench/repeat.h"

#include <algorithm>
#include <functional>

#include "bench/latency_stats.h"

namespace pagoda::bench {

namespace {

// The median of one figure picked from each run.
template <typename T, typename Get>
T median_of(const std::vector<BenchResult>& runs, Get get) {
  std::vector<double> v;
  v.reserve(runs.size());
  for (const BenchResult& r : runs) v.push_back(static_cast<double>(get(r)));
  return static_cast<T>(percentile(v, 50));
}

Distribution median_distribution(const std::vector<BenchResult>& runs,
                                 const std::function<const Distribution&(const BenchResult&)>& pick) {
  Distribution d;
  d.count = median_of<int64_t>(runs, [&](const BenchResult& r) { return pick(r).count; });
  d.mean_ms = median_of<double>(runs, [&](const BenchResult& r) { return pick(r).mean_ms; });
  d.std_ms = median_of<double>(runs, [&](const BenchResult& r) { return pick(r).std_ms; });
  d.median_ms = median_of<double>(runs, [&](const BenchResult& r) { return pick(r).median_ms; });
  d.p90_ms = median_of<double>(runs, [&](const BenchResult& r) { return pick(r).p90_ms; });
  d.p99_ms = median_of<double>(runs, [&](const BenchResult& r) { return pick(r).p99_ms; });
  d.min_ms = median_of<double>(runs, [&](const BenchResult& r) { return pick(r).min_ms; });
  d.max_ms = median_of<double>(runs, [&](const BenchResult& r) { return pick(r).max_ms; });
  return d;
}

// Median of an optional server figure over the runs that have it.
std::optional<double> median_optional(const std::vector<BenchResult>& runs,
                                      const std::function<std::optional<double>(const BenchResult&)>& pick) {
  std::vector<double> v;
  for (const BenchResult& r : runs)
    if (auto x = pick(r)) v.push_back(*x);
  if (v.empty()) return std::nullopt;
  return percentile(v, 50);
}

}  // namespace

BenchResult median_result(const std::vector<BenchResult>& runs) {
  BenchResult out = runs.front();
  out.records.clear();
  BenchMetrics& m = out.metrics;
  m.duration_s = median_of<double>(runs, [](const BenchResult& r) { return r.metrics.duration_s; });
  m.request_throughput = median_of<double>(runs, [](const BenchResult& r) { return r.metrics.request_throughput; });
  m.output_throughput = median_of<double>(runs, [](const BenchResult& r) { return r.metrics.output_throughput; });
  m.total_token_throughput =
      median_of<double>(runs, [](const BenchResult& r) { return r.metrics.total_token_throughput; });
  m.goodput = median_of<double>(runs, [](const BenchResult& r) { return r.metrics.goodput; });
  m.ttft = median_distribution(runs, [](const BenchResult& r) -> const Distribution& { return r.metrics.ttft; });
  m.tpot = median_distribution(runs, [](const BenchResult& r) -> const Distribution& { return r.metrics.tpot; });
  m.itl = median_distribution(runs, [](const BenchResult& r) -> const Distribution& { return r.metrics.itl; });
  m.e2el = median_distribution(runs, [](const BenchResult& r) -> const Distribution& { return r.metrics.e2el; });
  out.server.kv_usage_peak = median_optional(runs, [](const BenchResult& r) { return r.server.kv_usage_peak; });
  out.server.prefix_hit_rate = median_optional(runs, [](const BenchResult& r) { return r.server.prefix_hit_rate; });
  out.server.running_peak = median_optional(runs, [](const BenchResult& r) { return r.server.running_peak; });
  out.server.kv_slot_waste = median_optional(runs, [](const BenchResult& r) { return r.server.kv_slot_waste; });
  // Request counts are not medians: every request of every run counts.
  m.completed = 0;
  m.failed = 0;
  m.failures.clear();
  m.first_errors.clear();
  for (const BenchResult& r : runs) {
    m.completed += r.metrics.completed;
    m.failed += r.metrics.failed;
    for (const auto& [key, n] : r.metrics.failures) m.failures[key] += n;
    for (const auto& [key, e] : r.metrics.first_errors) m.first_errors.emplace(key, e);
  }
  out.runs = static_cast<int>(runs.size());
  auto range = [&](auto figure) {
    RunRange rr{figure(runs.front()), figure(runs.front())};
    for (const BenchResult& r : runs) {
      rr.min = std::min(rr.min, figure(r));
      rr.max = std::max(rr.max, figure(r));
    }
    return rr;
  };
  out.spread.output_throughput = range([](const BenchResult& r) { return r.metrics.output_throughput; });
  out.spread.ttft_median_ms = range([](const BenchResult& r) { return r.metrics.ttft.median_ms; });
  out.spread.tpot_median_ms = range([](const BenchResult& r) { return r.metrics.tpot.median_ms; });
  return out;
}

nlohmann::json run_spread_json(const std::vector<BenchResult>& runs) {
  nlohmann::json j = {{"runs", runs.size()},
                      {"output_throughput", nlohmann::json::array()},
                      {"ttft_median_ms", nlohmann::json::array()},
                      {"tpot_median_ms", nlohmann::json::array()}};
  for (const BenchResult& r : runs) {
    j["output_throughput"].push_back(r.metrics.output_throughput);
    j["ttft_median_ms"].push_back(r.metrics.ttft.median_ms);
    j["tpot_median_ms"].push_back(r.metrics.tpot.median_ms);
  }
  return j;
}

}  // namespace pagoda::bench
