// Vector helpers for the sampler over one row of logits: max, shifted exp
// with its sum, and plain float sums. AVX-512 at the avx512 levels and up
// (kernel_table.h), else a scalar path with the same contract. Pure
// functions; thread-safe.
#pragma once

#include <cstddef>

namespace pagoda::sampler_math {

// Largest value of x[0..n), ignoring NaN; -inf if n == 0 or nothing is larger.
float max_value(const float* x, size_t n);

// out[i] = exp(x[i] - m) for x[i] <= m (so results are in [0, 1]); inputs
// below m - 87 (including -inf) and NaN give exactly 0. Returns the sum of
// out. Relative error of each value about 2e-7.
double exp_minus(const float* x, float m, float* out, size_t n);

// Sum of x[0..n).
double sum(const float* x, size_t n);

}  // namespace pagoda::sampler_math
