// EngineStats: what the engine loop measures, for /metrics and logs.
// Written by the engine thread, read by any thread (every member is a
// thread-safe metric primitive; kv_usage is guarded by a mutex).
#pragma once

#include <array>

#include "common/metrics.h"
#include "common/mutex.h"
#include "kvpool/kv_cache_manager.h"
#include "scheduler/request.h"

namespace pagoda {

struct EngineStats {
  Gauge requests_running;
  Gauge requests_waiting;
  Counter prompt_tokens;      // prompt tokens of finished-or-running requests, counted at admission
  Counter generation_tokens;  // tokens generated
  Counter steps;
  Counter preemptions;
  Counter late_grammar_masks;       // token masks not ready in time for their step's sampling
  Counter rejected_queue_full;      // refused at submit: queue full
  std::array<Counter, 5> finished;  // by FinishReason (index = enum value)
  Histogram time_to_first_token{Histogram::latency_buckets()};
  Histogram inter_token_latency{Histogram::latency_buckets()};
  Histogram e2e_latency{Histogram::latency_buckets()};
  Histogram queue_time{Histogram::latency_buckets()};
  Histogram step_time{Histogram::latency_buckets()};
  Histogram batch_tokens{Histogram::count_buckets()};
  Histogram batch_seqs{Histogram::count_buckets()};

  void set_kv_usage(const KvUsage& u) {
    MutexLock lock(mu_);
    kv_usage_ = u;
  }
  KvUsage kv_usage() const {
    MutexLock lock(mu_);
    return kv_usage_;
  }

 private:
  mutable Mutex mu_;
  KvUsage kv_usage_ GUARDED_BY(mu_);
};

}  // namespace pagoda
