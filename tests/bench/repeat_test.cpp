// median_result: each figure is the median over the runs, on its own.
#include <catch2/catch.hpp>

#include "bench/repeat.h"

using namespace pagoda::bench;

namespace {

BenchResult run_with(double out_tok_s, double ttft_p50, double tpot_p50, std::optional<double> kv_peak) {
  BenchResult r;
  r.model.assign(1, 'm');  // not = "m": GCC 12 -Wrestrict false positive
  r.metrics.completed = 10;
  r.metrics.output_throughput = out_tok_s;
  r.metrics.ttft.median_ms = ttft_p50;
  r.metrics.tpot.median_ms = tpot_p50;
  r.server.kv_usage_peak = kv_peak;
  r.records.resize(3);
  return r;
}

}  // namespace

TEST_CASE("bench: median_result takes the median of each figure separately", "[bench][repeat]") {
  // Figures chosen so that no single run holds every median.
  const std::vector<BenchResult> runs = {run_with(100, 900, 20, 0.5), run_with(300, 500, 40, std::nullopt),
                                         run_with(200, 700, 10, 0.1)};
  const BenchResult m = median_result(runs);
  CHECK(m.metrics.output_throughput == Approx(200));
  CHECK(m.metrics.ttft.median_ms == Approx(700));
  CHECK(m.metrics.tpot.median_ms == Approx(20));
  // Optional server figures: the median over the runs that have them (0.1, 0.5 -> 0.3).
  REQUIRE(m.server.kv_usage_peak.has_value());
  CHECK(*m.server.kv_usage_peak == Approx(0.3));
  CHECK_FALSE(m.server.prefix_hit_rate.has_value());
  CHECK(m.records.empty());
  CHECK(m.model == "m");

  const auto spread = run_spread_json(runs);
  CHECK(spread["runs"] == 3);
  CHECK(spread["output_throughput"] == nlohmann::json({100.0, 300.0, 200.0}));
}

TEST_CASE("bench: median_result of an even number of runs interpolates", "[bench][repeat]") {
  const std::vector<BenchResult> runs = {run_with(100, 10, 1, 0.2), run_with(200, 30, 3, 0.4)};
  const BenchResult m = median_result(runs);
  CHECK(m.metrics.output_throughput == Approx(150));
  CHECK(m.metrics.ttft.median_ms == Approx(20));
}
