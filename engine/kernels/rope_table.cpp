// RoPE frequencies and the cos/sin table (kernels.h): computed once per
// model, so compiled once, for the baseline (not per instruction-set level).
#include <cmath>
#include <numbers>
#include <vector>

#include "engine/kernels/kernels.h"

namespace pagoda {

std::vector<float> rope_inv_freq(int64_t head_dim, float theta, const RopeScaling& scaling) {
  const int64_t half = head_dim / 2;
  std::vector<float> f(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    f[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
  }
  if (scaling.type == RopeScaling::Type::kLinear) {
    for (float& v : f) v /= scaling.factor;
  } else if (scaling.type == RopeScaling::Type::kLlama3) {
    const double old_len = static_cast<double>(scaling.original_max_position);
    const double lo = scaling.low_freq_factor, hi = scaling.high_freq_factor;
    const double low_freq_wavelen = old_len / lo, high_freq_wavelen = old_len / hi;
    for (float& v : f) {
      const double wavelen = 2.0 * std::numbers::pi / v;
      if (wavelen < high_freq_wavelen) continue;  // high frequency: kept
      if (wavelen > low_freq_wavelen) {           // low frequency: scaled
        v = static_cast<float>(v / scaling.factor);
        continue;
      }
      const double smooth = (old_len / wavelen - lo) / (hi - lo);
      v = static_cast<float>((1.0 - smooth) * v / scaling.factor + smooth * v);
    }
  }
  return f;
}

RopeTable::RopeTable(int64_t max_pos, int64_t head_dim, float theta)
    : RopeTable(max_pos, head_dim, theta, RopeScaling{}) {}

RopeTable::RopeTable(int64_t max_pos, int64_t head_dim, float theta, const RopeScaling& scaling)
    : max_pos_(max_pos), head_dim_(head_dim) {
  const int64_t half = head_dim / 2;
  const std::vector<float> inv_freq = rope_inv_freq(head_dim, theta, scaling);
  cos_.resize(static_cast<size_t>(max_pos * half));
  sin_.resize(cos_.size());
  for (int64_t pos = 0; pos < max_pos; ++pos) {
    for (int64_t i = 0; i < half; ++i) {
      const float a = static_cast<float>(pos) * inv_freq[static_cast<size_t>(i)];
      cos_[pos * half + i] = std::cos(a);
      sin_[pos * half + i] = std::sin(a);
    }
  }
}

}  // namespace pagoda
