#include "bench/arrivals.h"

#include <cmath>
#include <limits>
#include <string>

namespace pagoda::bench {

Result<ArrivalProcess> ArrivalProcess::create(double rate, double burstiness, uint64_t seed) {
  if (!(rate > 0)) return Status::invalid_argument("--request-rate must be > 0 (or inf), got " + std::to_string(rate));
  if (!(burstiness > 0) || std::isinf(burstiness))
    return Status::invalid_argument("--burstiness must be a finite number > 0, got " + std::to_string(burstiness));
  return ArrivalProcess(rate, burstiness, seed);
}

ArrivalProcess::ArrivalProcess(double rate, double burstiness, uint64_t seed)
    : rate_(rate), burstiness_(burstiness), unlimited_(std::isinf(rate)), rng_(seed),
      // Shape b, scale 1/(rate*b): mean 1/rate, variance 1/(b*rate^2). b = 1 is exponential.
      gamma_(burstiness, unlimited_ ? 1.0 : 1.0 / (rate * burstiness)) {}

double ArrivalProcess::next_gap_s() {
  if (unlimited_) return 0;
  return gamma_(rng_);
}

}  // namespace pagoda::bench
