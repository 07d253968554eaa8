#include "bench/latency_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace pagoda::bench {

const char* failure_kind_name(FailureKind k) {
  switch (k) {
    case FailureKind::kNone:
      return "none";
    case FailureKind::kHttpStatus:
      return "http";
    case FailureKind::kConnection:
      return "connection";
    case FailureKind::kTimeout:
      return "timeout";
    case FailureKind::kStreamError:
      return "stream_error";
    case FailureKind::kProtocol:
      return "protocol";
  }
  return "unknown";
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

Distribution summarize_ms(const std::vector<double>& values_s) {
  Distribution d;
  d.count = static_cast<int64_t>(values_s.size());
  if (values_s.empty()) return d;
  std::vector<double> ms(values_s.size());
  std::transform(values_s.begin(), values_s.end(), ms.begin(), [](double s) { return s * 1000.0; });
  const double n = static_cast<double>(ms.size());
  d.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / n;
  double var = 0;
  for (double v : ms) var += (v - d.mean_ms) * (v - d.mean_ms);
  d.std_ms = std::sqrt(var / n);  // population std, as numpy's default
  d.min_ms = *std::min_element(ms.begin(), ms.end());
  d.max_ms = *std::max_element(ms.begin(), ms.end());
  std::sort(ms.begin(), ms.end());
  d.median_ms = percentile(ms, 50);
  d.p90_ms = percentile(ms, 90);
  d.p99_ms = percentile(ms, 99);
  return d;
}

double tpot_s(const RequestRecord& r) {
  if (r.output_tokens < 2) return 0;
  return (r.e2e_s - r.ttft_s) / static_cast<double>(r.output_tokens - 1);
}

bool meets_slo(const RequestRecord& r, const Slo& slo) {
  if (!r.ok()) return false;
  if (slo.ttft_ms > 0 && r.ttft_s * 1000.0 > slo.ttft_ms) return false;
  if (slo.tpot_ms > 0 && tpot_s(r) * 1000.0 > slo.tpot_ms) return false;
  if (slo.e2el_ms > 0 && r.e2e_s * 1000.0 > slo.e2el_ms) return false;
  return true;
}

std::string failure_key(const RequestRecord& r) {
  // (Built with append: GCC 12 warns falsely about `+=` of a temporary here, bug 105329.)
  std::string key = failure_kind_name(r.failure);
  if (r.failure == FailureKind::kHttpStatus) key.append("_").append(std::to_string(r.http_status));
  return key;
}

BenchMetrics compute_metrics(const std::vector<RequestRecord>& records, double duration_s, const Slo& slo) {
  BenchMetrics m;
  m.duration_s = duration_s;
  std::vector<double> ttfts, tpots, itls, e2els;
  std::vector<std::pair<double, int>> edges;  // (time, +1 start / -1 end)
  for (const RequestRecord& r : records) {
    edges.emplace_back(r.start_s, +1);
    edges.emplace_back(r.start_s + r.e2e_s, -1);
    if (!r.ok()) {
      ++m.failed;
      const std::string key = failure_key(r);
      ++m.failures[key];
      m.first_errors.emplace(key, r.error);  // keeps the first
      continue;
    }
    ++m.completed;
    m.total_input_tokens += r.prompt_tokens;
    m.total_output_tokens += r.output_tokens;
    m.total_output_events += r.output_events;
    m.total_cached_tokens += r.cached_tokens;
    ttfts.push_back(r.ttft_s);
    e2els.push_back(r.e2e_s);
    if (r.output_tokens > 1) tpots.push_back(tpot_s(r));
    itls.insert(itls.end(), r.itl_s.begin(), r.itl_s.end());
    if (slo.any() && meets_slo(r, slo)) ++m.good_requests;
  }
  // Ends sort before starts at the same instant: back-to-back requests do not overlap.
  std::sort(edges.begin(), edges.end());
  int in_flight = 0;
  for (const auto& e : edges) {
    in_flight += e.second;
    m.max_concurrency_seen = std::max(m.max_concurrency_seen, static_cast<double>(in_flight));
  }
  if (duration_s > 0) {
    m.request_throughput = static_cast<double>(m.completed) / duration_s;
    m.output_throughput = static_cast<double>(m.total_output_tokens) / duration_s;
    m.total_token_throughput = static_cast<double>(m.total_input_tokens + m.total_output_tokens) / duration_s;
    if (slo.any()) m.goodput = static_cast<double>(m.good_requests) / duration_s;
  }
  m.ttft = summarize_ms(ttfts);
  m.tpot = summarize_ms(tpots);
  m.itl = summarize_ms(itls);
  m.e2el = summarize_ms(e2els);
  return m;
}

}  // namespace pagoda::bench
