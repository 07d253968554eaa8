#include "tools/soak/load_stats.h"

#include <algorithm>
#include <cmath>

namespace pagoda::soak {

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

void LoadStats::add(const Outcome& o) {
  const int k = static_cast<int>(o.kind);
  counts_[k]++;
  latencies_[k].push_back(o.latency_s);
  tokens_ += o.completion_tokens;
  if (o.kind == Outcome::Kind::kFailed && failures_.size() < 20)
    failures_.push_back("status " + std::to_string(o.status) + ": " + o.detail);
}

int64_t LoadStats::total() const {
  int64_t n = 0;
  for (int64_t c : counts_) n += c;
  return n;
}

nlohmann::json LoadStats::summary(double seconds) const {
  nlohmann::json j;
  j["seconds"] = seconds;
  j["requests"] = total();
  for (int k = 0; k < kKinds; ++k) {
    const auto kind = static_cast<Outcome::Kind>(k);
    nlohmann::json e = {{"count", counts_[k]}};
    if (!latencies_[k].empty())
      e["latency_s"] = {{"p50", quantile(latencies_[k], 0.5)},
                        {"p99", quantile(latencies_[k], 0.99)},
                        {"max", quantile(latencies_[k], 1.0)}};
    j[outcome_name(kind)] = e;
  }
  j["completion_tokens"] = tokens_;
  j["completed_per_s"] = seconds > 0 ? static_cast<double>(count(Outcome::Kind::kCompleted)) / seconds : 0;
  j["client_tokens_per_s"] = seconds > 0 ? static_cast<double>(tokens_) / seconds : 0;
  if (!failures_.empty()) j["failures"] = failures_;
  return j;
}

}  // namespace pagoda::soak
