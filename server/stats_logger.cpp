#include "server/stats_logger.h"

#include <chrono>
#include <cmath>

#include <spdlog/fmt/fmt.h>
#include <nlohmann/json.hpp>

#include "common/logging.h"

namespace pagoda {

namespace {

double round1(double x) { return std::round(x * 10) / 10; }

struct Totals {
  double prompt_tokens = 0;
  double generation_tokens = 0;
  int64_t prefix_query_tokens = 0;
  int64_t prefix_hit_tokens = 0;
  double preemptions = 0;
  double rejected_queue_full = 0;
  double failed = 0;  // finished with an internal error
};

Totals totals_of(const EngineStats& s, const KvUsage& kv) {
  return {s.prompt_tokens.value(),
          s.generation_tokens.value(),
          kv.prefix_query_tokens,
          kv.prefix_hit_tokens,
          s.preemptions.value(),
          s.rejected_queue_full.value(),
          s.finished[static_cast<size_t>(FinishReason::kError)].value()};
}

// One warning: "N <what> in the last T s: <why>" when N > 0.
void warn_count(const char* event, int64_t count, const char* one, const char* many, const char* why, double dt) {
  if (count <= 0) return;
  log_summary(spdlog::level::warn, event,
              fmt::format("{} {} in the last {:.0f} s: {}", count, count == 1 ? one : many, dt, why),
              {{"count", count}, {"interval_s", round1(dt)}});
}

// The warnings an operator should act on, once per interval in which the
// cause occurred.
void log_warnings(const Totals& last, const Totals& cur, double dt) {
  warn_count("preemptions", static_cast<int64_t>(cur.preemptions - last.preemptions), "preemption", "preemptions",
             "the KV cache was full, so running requests were paused and will recompute their tokens (raise "
             "kv.memory_gib, or lower scheduler.max_num_seqs)",
             dt);
  warn_count("queue_full", static_cast<int64_t>(cur.rejected_queue_full - last.rejected_queue_full),
             "request was refused with 429", "requests were refused with 429",
             "the waiting queue was full (scheduler.max_queue); the server is overloaded", dt);
  warn_count("internal_errors", static_cast<int64_t>(cur.failed - last.failed),
             "request ended with an internal error (500)", "requests ended with an internal error (500)",
             "see the errors logged before", dt);
}

}  // namespace

StatsLogger::StatsLogger(const EngineStats& stats, double interval_s)
    : stats_(stats), stats_interval_s_(interval_s), interval_s_(interval_s > 0 ? interval_s : kWarningInterval_s) {
  thread_ = std::thread([this] { run(); });
}

StatsLogger::~StatsLogger() { stop(); }

void StatsLogger::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StatsLogger::run() {
  const auto interval = std::chrono::duration<double>(interval_s_);
  Totals last = totals_of(stats_, stats_.kv_usage());
  auto last_time = std::chrono::steady_clock::now();
  for (;;) {
    {
      MutexLock lock(mu_);
      const auto deadline = last_time + std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval);
      while (!stopping_ && std::chrono::steady_clock::now() < deadline) cv_.wait_until(lock.native(), deadline);
      if (stopping_) return;
    }
    const auto now = std::chrono::steady_clock::now();
    const KvUsage kv = stats_.kv_usage();
    const Totals cur = totals_of(stats_, kv);
    const double running = stats_.requests_running.value();
    const double waiting = stats_.requests_waiting.value();
    const double dt = std::chrono::duration<double>(now - last_time).count();
    const bool traffic = cur.prompt_tokens != last.prompt_tokens || cur.generation_tokens != last.generation_tokens ||
                         running > 0 || waiting > 0;
    if (dt > 0) log_warnings(last, cur, dt);
    if (stats_interval_s_ > 0 && traffic && dt > 0) {
      nlohmann::ordered_json f;
      f["running"] = static_cast<int64_t>(running);
      f["waiting"] = static_cast<int64_t>(waiting);
      f["prompt_tok_s"] = round1((cur.prompt_tokens - last.prompt_tokens) / dt);
      f["gen_tok_s"] = round1((cur.generation_tokens - last.generation_tokens) / dt);
      f["kv_usage_pct"] = round1(100 * kv.usage_ratio);
      const int64_t queried = cur.prefix_query_tokens - last.prefix_query_tokens;
      if (queried > 0)
        f["prefix_hit_pct"] = round1(100.0 * static_cast<double>(cur.prefix_hit_tokens - last.prefix_hit_tokens) /
                                     static_cast<double>(queried));
      log_event(spdlog::level::info, "stats", f);
    }
    last = cur;
    last_time = now;
  }
}

}  // namespace pagoda
