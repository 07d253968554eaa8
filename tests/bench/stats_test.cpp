// latency_stats: percentiles, summaries, TPOT, goodput and run metrics
// against values computed by hand.
#include <catch2/catch.hpp>

#include "bench/latency_stats.h"

using namespace pagoda::bench;

namespace {

RequestRecord ok_record(double start, double ttft, double e2e, int64_t in, int64_t out, std::vector<double> itl = {}) {
  RequestRecord r;
  r.start_s = start;
  r.ttft_s = ttft;
  r.e2e_s = e2e;
  r.prompt_tokens = in;
  r.output_tokens = out;
  r.output_events = out;
  r.itl_s = std::move(itl);
  return r;
}

}  // namespace

TEST_CASE("bench: percentile interpolates linearly between closest ranks", "[bench][stats]") {
  // Sorted: 1 2 3 4 10. rank = p/100 * 4.
  const std::vector<double> v = {10, 3, 1, 4, 2};
  CHECK(percentile(v, 0) == Approx(1));
  CHECK(percentile(v, 50) == Approx(3));
  CHECK(percentile(v, 100) == Approx(10));
  CHECK(percentile(v, 90) == Approx(4 + 0.6 * (10 - 4)));   // rank 3.6
  CHECK(percentile(v, 99) == Approx(4 + 0.96 * (10 - 4)));  // rank 3.96
  CHECK(percentile(v, 25) == Approx(2));                    // rank 1.0
  CHECK(percentile({1, 2}, 50) == Approx(1.5));
  CHECK(percentile({7}, 99) == Approx(7));
  CHECK(percentile({}, 50) == 0);
}

TEST_CASE("bench: summarize_ms converts seconds and reports mean, std, median, p90, p99", "[bench][stats]") {
  // 0.001 .. 0.100 s = 1 .. 100 ms.
  std::vector<double> s;
  for (int i = 100; i >= 1; --i) s.push_back(i / 1000.0);
  const Distribution d = summarize_ms(s);
  CHECK(d.count == 100);
  CHECK(d.mean_ms == Approx(50.5));
  CHECK(d.median_ms == Approx(50.5));
  CHECK(d.p90_ms == Approx(90.1));   // rank 89.1 -> 90 + 0.1
  CHECK(d.p99_ms == Approx(99.01));  // rank 98.01 -> 99 + 0.01
  CHECK(d.min_ms == Approx(1));
  CHECK(d.max_ms == Approx(100));
  CHECK(d.std_ms == Approx(std::sqrt((100.0 * 100 - 1) / 12.0)));  // population std of 1..n
  CHECK(summarize_ms({}).count == 0);
}

TEST_CASE("bench: TPOT excludes the first token", "[bench][stats]") {
  CHECK(tpot_s(ok_record(0, 0.2, 1.2, 10, 11)) == Approx(0.1));  // (1.2 - 0.2) / 10
  CHECK(tpot_s(ok_record(0, 0.2, 0.2, 10, 1)) == 0);
  CHECK(tpot_s(ok_record(0, 0.0, 0.0, 10, 0)) == 0);
}

TEST_CASE("bench: goodput counts successful requests meeting every SLO", "[bench][stats]") {
  Slo slo;
  slo.ttft_ms = 300;
  slo.tpot_ms = 50;
  std::vector<RequestRecord> rs;
  rs.push_back(ok_record(0, 0.100, 0.100 + 0.040 * 9, 5, 10));  // ttft 100, tpot 40: good
  rs.push_back(ok_record(0, 0.400, 0.400 + 0.010 * 9, 5, 10));  // ttft 400: bad
  rs.push_back(ok_record(0, 0.100, 0.100 + 0.060 * 9, 5, 10));  // tpot 60: bad
  rs.push_back(ok_record(0, 0.300, 0.300, 5, 1));               // one token: tpot 0, ttft == limit: good
  RequestRecord failed;
  failed.failure = FailureKind::kHttpStatus;
  failed.http_status = 429;
  rs.push_back(failed);
  CHECK(meets_slo(rs[0], slo));
  CHECK_FALSE(meets_slo(rs[1], slo));
  CHECK_FALSE(meets_slo(rs[2], slo));
  CHECK(meets_slo(rs[3], slo));
  CHECK_FALSE(meets_slo(rs[4], slo));
  const BenchMetrics m = compute_metrics(rs, 2.0, slo);
  CHECK(m.good_requests == 2);
  CHECK(m.goodput == Approx(1.0));
  Slo e2e_only;
  e2e_only.e2el_ms = 450;  // 460, 490, 640, 300 ms -> only the last
  CHECK(compute_metrics(rs, 2.0, e2e_only).good_requests == 1);
  CHECK(compute_metrics(rs, 2.0, Slo{}).goodput == -1);  // no SLO: not reported
}

TEST_CASE("bench: compute_metrics throughputs, failures, latencies and overlap", "[bench][stats]") {
  std::vector<RequestRecord> rs;
  rs.push_back(ok_record(0.0, 0.5, 2.0, 100, 4, {0.5, 0.5, 0.5}));                 // tpot 0.5
  rs.push_back(ok_record(1.0, 1.0, 4.0, 200, 7, {0.5, 0.5, 0.5, 0.5, 0.5, 0.5}));  // tpot 0.5
  rs.push_back(ok_record(3.5, 0.25, 0.25, 50, 1));                                 // one token: no TPOT entry
  RequestRecord timeout;
  timeout.failure = FailureKind::kTimeout;
  timeout.start_s = 4.5;
  timeout.e2e_s = 0.5;
  rs.push_back(timeout);
  RequestRecord busy;
  busy.failure = FailureKind::kHttpStatus;
  busy.http_status = 429;
  rs.push_back(busy);
  const BenchMetrics m = compute_metrics(rs, 5.0, Slo{});
  CHECK(m.completed == 3);
  CHECK(m.failed == 2);
  CHECK(m.failures.at("timeout") == 1);
  CHECK(m.failures.at("http_429") == 1);
  CHECK(m.total_input_tokens == 350);
  CHECK(m.total_output_tokens == 12);
  CHECK(m.request_throughput == Approx(3 / 5.0));
  CHECK(m.output_throughput == Approx(12 / 5.0));
  CHECK(m.total_token_throughput == Approx(362 / 5.0));
  CHECK(m.ttft.count == 3);
  CHECK(m.ttft.mean_ms == Approx((500 + 1000 + 250) / 3.0));
  CHECK(m.ttft.median_ms == Approx(500));
  CHECK(m.tpot.count == 2);
  CHECK(m.tpot.mean_ms == Approx(500));
  CHECK(m.itl.count == 9);
  CHECK(m.e2el.max_ms == Approx(4000));
  // Intervals [0,2] [1,5] [3.5,3.75] [4.5,5] [0,0]: never more than two at once.
  CHECK(m.max_concurrency_seen == 2);
}
