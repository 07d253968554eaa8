// Serving-benchmark statistics, defined as in vLLM's benchmark_serving.py:
// per-request TTFT, TPOT, ITL and E2EL, their mean / median / p90 / p99,
// request and token throughput, and goodput under SLOs.
// Plain value types and pure functions; thread-compatible (no shared state).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pagoda::bench {

// How one request went wrong (kNone = it succeeded).
// kStreamError: the server sent an error event inside a 200 stream;
// kProtocol: the stream was malformed (bad JSON, no [DONE]).
enum class FailureKind { kNone, kHttpStatus, kConnection, kTimeout, kStreamError, kProtocol };
const char* failure_kind_name(FailureKind k);

// What the client measured for one request. Times are seconds.
struct RequestRecord {
  FailureKind failure = FailureKind::kNone;
  int http_status = 0;        // the HTTP status when failure == kHttpStatus
  std::string error;          // a short human-readable reason for a failure
  double start_s = 0;         // when the request was sent, from the start of the run
  double ttft_s = 0;          // time to the first event carrying output
  double e2e_s = 0;           // time to the end of the response
  std::vector<double> itl_s;  // gaps between consecutive output-carrying events
  int64_t prompt_tokens = 0;  // from the usage chunk (or the workload when absent)
  int64_t output_tokens = 0;  // from the usage chunk (or the count of output events)
  int64_t output_events = 0;  // SSE events that carried output text
  int64_t cached_tokens = 0;  // usage.prompt_tokens_details.cached_tokens when reported
  std::string text;           // the output text of choice 0 (streamed chunks with index 0)
  std::string finish_reason;  // choice 0's finish_reason ("stop", "length"), when sent
  bool ok() const { return failure == FailureKind::kNone; }
};

// The failure class of a failed request, as reports and result files name
// it: failure_kind_name(), plus the status for HTTP errors ("http_429").
std::string failure_key(const RequestRecord& r);

// mean, median, p90, p99 (and std, min, max) of one latency, in milliseconds.
struct Distribution {
  int64_t count = 0;
  double mean_ms = 0, std_ms = 0, median_ms = 0, p90_ms = 0, p99_ms = 0, min_ms = 0, max_ms = 0;
};

// Percentile `p` in [0, 100] of `values` with linear interpolation between
// closest ranks (numpy's default): rank = p/100 * (n-1). 0 for an empty input.
double percentile(std::vector<double> values, double p);

// Summary of `values_s` (seconds), reported in milliseconds.
Distribution summarize_ms(const std::vector<double>& values_s);

// TPOT of one request: (e2e - ttft) / (output_tokens - 1); 0 when the request
// produced fewer than two tokens.
double tpot_s(const RequestRecord& r);

// Service-level objectives for goodput; a limit <= 0 is not checked.
struct Slo {
  double ttft_ms = 0;
  double tpot_ms = 0;
  double e2el_ms = 0;
  bool any() const { return ttft_ms > 0 || tpot_ms > 0 || e2el_ms > 0; }
};

// True when a successful request meets every SLO.
bool meets_slo(const RequestRecord& r, const Slo& slo);

// Every figure of one run.
struct BenchMetrics {
  int64_t completed = 0;
  int64_t failed = 0;
  std::map<std::string, int64_t> failures;  // "http_429", "connection", "timeout", "stream_error", "protocol" -> count
  std::map<std::string, std::string> first_errors;  // the same keys -> the first failure's message
  double duration_s = 0;
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  int64_t total_output_events = 0;
  int64_t total_cached_tokens = 0;
  double request_throughput = 0;      // completed requests / s
  double output_throughput = 0;       // output tokens / s
  double total_token_throughput = 0;  // (input + output) tokens / s
  double goodput = -1;                // requests / s meeting the SLOs; -1 when no SLO was given
  int64_t good_requests = 0;
  double max_concurrency_seen = 0;  // most requests in flight at once
  Distribution ttft, tpot, itl, e2el;
};

// Computes the metrics of a run that lasted `duration_s` (first send to last
// response). Only successful requests enter the latency figures.
BenchMetrics compute_metrics(const std::vector<RequestRecord>& records, double duration_s, const Slo& slo);

}  // namespace pagoda::bench
