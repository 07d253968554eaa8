// When requests are sent: the gaps between arrivals of an open-loop load.
// Poisson arrivals (exponential gaps) by default; with burstiness b != 1 the
// gaps follow a gamma distribution of shape b and mean 1/rate, so the rate is
// unchanged and the coefficient of variation of the gaps is 1/sqrt(b)
// (b < 1: burstier, b > 1: more regular). An infinite rate sends everything at
// once (gap 0). Owns its random generator; not thread-safe.
#pragma once

#include <cstdint>
#include <random>

#include "common/status.h"

namespace pagoda::bench {

class ArrivalProcess {
 public:
  // `rate` in requests/s (> 0, may be +infinity); `burstiness` > 0.
  static Result<ArrivalProcess> create(double rate, double burstiness, uint64_t seed);

  // The gap in seconds before the next request.
  double next_gap_s();

  double rate() const { return rate_; }
  double burstiness() const { return burstiness_; }
  bool unlimited() const { return unlimited_; }

 private:
  ArrivalProcess(double rate, double burstiness, uint64_t seed);
  double rate_;
  double burstiness_;
  bool unlimited_;
  std::mt19937_64 rng_;
  std::gamma_distribution<double> gamma_;
};

}  // namespace pagoda::bench
