// Metric primitives for /metrics: Counter (monotonic), Gauge (set/add) and
// Histogram (fixed cumulative buckets, sum and count), in the Prometheus
// model. All are thread-safe: counters and gauges are atomics; a histogram
// takes a short mutex per observation. Rendering to the text format lives in
// the server.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "common/mutex.h"

namespace pagoda {

class Counter {
 public:
  void add(double v = 1.0) {
    double cur = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
    }
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  struct Snapshot {
    std::vector<double> bounds;        // upper bounds, ascending (+Inf implied)
    std::vector<uint64_t> cumulative;  // count of observations <= bound, per bound
    uint64_t count = 0;
    double sum = 0;
  };
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  Snapshot snapshot() const;

  // Common bucket sets.
  static std::vector<double> latency_buckets();  // 1 ms .. 120 s
  static std::vector<double> count_buckets();    // 1 .. 8192, powers of two

 private:
  mutable Mutex mu_;
  const std::vector<double> bounds_;
  std::vector<uint64_t> counts_ GUARDED_BY(mu_);  // per bucket (not cumulative), plus +Inf last
  uint64_t count_ GUARDED_BY(mu_) = 0;
  double sum_ GUARDED_BY(mu_) = 0;
};

}  // namespace pagoda
