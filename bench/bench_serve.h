// `pagoda bench serve`: drives an OpenAI-compatible server with a workload
// (open loop at a request rate, or closed loop at a fixed concurrency), times
// every streamed token, reads the server's /metrics before, during and after
// the run, and returns every figure. Sweeps run one point after another.
// Each run owns its io_context and runs it on the calling thread; the
// functions are reentrant, nothing is shared between calls.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/latency_stats.h"
#include "bench/workload.h"
#include "common/status.h"

namespace pagoda::bench {

constexpr double kProgressLineInterval_s = 5;

struct BenchConfig {
  std::string url = "http://127.0.0.1:8000";
  std::string endpoint = "/v1/completions";  // or /v1/chat/completions
  std::string model;                         // "" = the first model of /v1/models
  std::string api_key;
  std::string session_header;  // conversation workload: send each conversation's id in this header ("" = none)
  WorkloadSpec workload;
  int64_t num_prompts = 0;  // requests to send; 0 = until `duration_s`
  double duration_s = 0;    // stop sending after this many seconds; 0 = until `num_prompts`
  double request_rate = std::numeric_limits<double>::infinity();  // requests/s (open loop); inf = all at once
  double burstiness = 1.0;                                        // gamma shape of the gaps; 1 = Poisson
  int64_t max_concurrency = 0;                           // requests in flight at most (closed loop); 0 = no limit
  bool ignore_eos = false;                               // ask for exactly max_tokens tokens
  double temperature = 0;                                // 0 = greedy
  nlohmann::json extra_body = nlohmann::json::object();  // merged into every request body
  Slo slo;                                               // goodput SLOs
  double timeout_s = 600;                                // per request, whole response
  double metrics_interval_s = 0.25;                      // /metrics poll period during the run; 0 = no polling
  // kTerminal: a live line redrawn in place; kLines: one line every
  // kProgressLineInterval_s with percentage and ETA (for logs and CI).
  enum class Progress { kOff, kTerminal, kLines } progress = Progress::kOff;
  std::string label;  // free text stored with the result
};

// What the server's /metrics said (absent fields: the server does not export them).
struct ServerSide {
  bool available = false;
  std::optional<double> prefix_hit_rate;      // delta hits / delta queries (tokens)
  std::optional<double> prefix_query_tokens;  // delta
  std::optional<double> prefix_hit_tokens;    // delta
  std::optional<double> kv_usage_peak;        // max pagoda_kv_usage_ratio seen while polling
  // KV slots held but empty (partly filled pages) over slots held, summed over
  // the polls: sum(pagoda_kv_slots_unused) / sum(pagoda_kv_slots_allocated).
  std::optional<double> kv_slot_waste;
  double kv_slots_allocated_sum = 0, kv_slots_unused_sum = 0;
  std::optional<double> generation_tokens;  // delta pagoda_generation_tokens_total
  std::optional<double> prompt_tokens;      // delta pagoda_prompt_tokens_total
  std::optional<double> preemptions;        // delta pagoda_preemptions_total
  std::optional<double> running_peak;       // max pagoda_requests_running seen
  int64_t polls = 0;
};

// The smallest and largest value of a figure over repeated runs.
struct RunRange {
  double min = 0, max = 0;
};

struct BenchResult {
  BenchConfig config;
  int runs = 1;  // > 1: the figures are medians over this many runs (median_result)
  struct {
    RunRange output_throughput, ttft_median_ms, tpot_median_ms;
  } spread;  // with runs > 1
  std::string model;
  int64_t vocab_size = 0;   // what the token-id prompts used
  nlohmann::json workload;  // Workload::describe()
  std::string started_at;   // local date and time
  BenchMetrics metrics;
  ServerSide server;
  std::vector<RequestRecord> records;
};

// One run. Errors: bad config, unreachable server, or a failed probe request;
// a failure of the server's answer names its failure class (failure_key(),
// "connection", "http_401") in the status's field().
Result<BenchResult> run_bench(const BenchConfig& config);

// Which knob a sweep varies.
enum class SweepParam { kMaxConcurrency, kRequestRate };
struct Sweep {
  SweepParam param = SweepParam::kMaxConcurrency;
  std::vector<double> values;
};
// Parses "max-concurrency=1,4,16" or "request-rate=1,2.5,inf".
Result<Sweep> parse_sweep(const std::string& text);
const char* sweep_param_name(SweepParam p);

// Runs every point of `sweep` in order with `config` as the base; point i
// uses workload seed + 100 i, so no point reuses another's prompts.
Result<std::vector<BenchResult>> run_sweep(const BenchConfig& config, const Sweep& sweep);

}  // namespace pagoda::bench
