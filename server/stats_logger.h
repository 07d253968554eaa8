// StatsLogger: a thread that logs one "stats" record every interval while the
// server had traffic in it (prompt or generated tokens, or requests in the
// engine): requests running and waiting, prompt and generation tokens per
// second over the interval, KV usage and the prefix-cache hit rate of the
// interval (logging.stats_interval_s; 0 = off). In the same rhythm (every
// 10 s when stats lines are off) it warns of what an operator should act on:
// preemptions (KV cache full), 429s for a full queue, internal errors.
// Reads only EngineStats, which is thread-safe. Owns its thread: started by
// the constructor, stopped and joined by stop() or the destructor.
#pragma once

#include <condition_variable>
#include <thread>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "scheduler/engine_stats.h"

namespace pagoda {

class StatsLogger {
 public:
  StatsLogger(const EngineStats& stats, double interval_s);
  ~StatsLogger();
  StatsLogger(const StatsLogger&) = delete;
  StatsLogger& operator=(const StatsLogger&) = delete;
  void stop() EXCLUDES(mu_);

 private:
  void run() EXCLUDES(mu_);

  static constexpr double kWarningInterval_s = 10;

  const EngineStats& stats_;
  const double stats_interval_s_;  // 0: no stats lines
  const double interval_s_;        // between checks
  Mutex mu_;
  std::condition_variable cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace pagoda
