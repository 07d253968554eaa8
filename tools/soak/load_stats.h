// LoadStats: the outcomes of one phase of a soak or overload run: counts per
// Outcome kind, latencies, completion tokens, and the first few failures.
// A plain accumulator; not thread-safe (the soak client runs on one thread).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/soak/load_client.h"

namespace pagoda::soak {

// The q-quantile (0..1) of `v` (sorted copy; nearest rank), 0 if empty.
double quantile(std::vector<double> v, double q);

class LoadStats {
 public:
  void add(const Outcome& o);
  int64_t count(Outcome::Kind k) const { return counts_[static_cast<int>(k)]; }
  int64_t total() const;
  int64_t completion_tokens() const { return tokens_; }
  const std::vector<double>& latencies(Outcome::Kind k) const { return latencies_[static_cast<int>(k)]; }
  const std::vector<std::string>& failures() const { return failures_; }
  nlohmann::json summary(double seconds) const;

 private:
  static constexpr int kKinds = static_cast<int>(Outcome::Kind::kFailed) + 1;  // kFailed is the last kind
  std::array<int64_t, kKinds> counts_{};
  std::array<std::vector<double>, kKinds> latencies_;
  int64_t tokens_ = 0;
  std::vector<std::string> failures_;  // the first 20
};

}  // namespace pagoda::soak
