#include "common/metrics.h"

#include <algorithm>

namespace pagoda {

namespace {
std::vector<double> sorted(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v;
}
}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(sorted(std::move(bounds))), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  MutexLock lock(mu_);
  counts_[i]++;
  count_++;
  sum_ += v;
}

Histogram::Snapshot Histogram::snapshot() const {
  MutexLock lock(mu_);
  Snapshot s;
  s.bounds = bounds_;
  uint64_t acc = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) s.cumulative.push_back(acc += counts_[i]);
  s.count = count_;
  s.sum = sum_;
  return s;
}

std::vector<double> Histogram::latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,  0.15, 0.2,  0.3,
          0.5,   0.75,   1.0,   2.5,  5.0,   10.0, 20.0,  30.0, 60.0, 120.0};
}

std::vector<double> Histogram::count_buckets() {
  std::vector<double> b;
  for (double v = 1; v <= 8192; v *= 2) b.push_back(v);
  return b;
}

}  // namespace pagoda
