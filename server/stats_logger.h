// StatsLogger: a thread that logs one "stats" record every interval while the
// server had traffic in it (prompt or generated tokens, or requests in the
// engine): requests running and waiting, prompt and generation tokens per
// second over the interval, KV usage and the prefix-cache hit rate of the
// interval (logging.stats_interval_s; 0 = off). Reads only EngineStats, which
// is thread-safe. Owns its thread: started by the constructor, stopped and
// joined by stop() or the destructor.
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

  const EngineStats& stats_;
  const double interval_s_;
  Mutex mu_;
  std::condition_variable cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace pagoda
