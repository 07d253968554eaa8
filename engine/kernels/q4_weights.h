// Q4Weights: one weight matrix W [out, in] in the q4 panel layout of
// q4_gemv.h (4-bit quants in groups of 32 along `in`, an f16 scale and min
// per group and output column), built by quantizing f32 weights or from
// groups a caller supplies (an exact repack of a GGUF file's 4-bit blocks).
//
// Owns its packed bytes (in the shared weights arena). Immutable after
// building, so concurrent reads are safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "common/status.h"
#include "engine/kernels/q4_gemv.h"

namespace pagoda {

class Q4Weights {
 public:
  // Fills the groups of output column n: q[32 g + i] (0..15) is the quant
  // of k = 32 g + i, and scale[g], min[g] group g's f16 scale and min
  // (w = scale * q + min), for every group g < in / 32. Called once for every
  // n < out, from several threads.
  using ColumnSource = std::function<void(int64_t n, uint8_t* q, uint16_t* scale, uint16_t* min)>;

  // W [out, in] quantized asymmetrically per group: min = the group's
  // minimum, scale = (max - min) / 15, both rounded to f16, then
  // q = round((w - min) / scale) clamped to [0, 15]. K beyond `in` (when
  // in % 32 != 0) is zero.
  static Result<Q4Weights> quantize(const float* w, int64_t out, int64_t in);
  // W from the groups `source` gives per column (in % 32 must be 0).
  static Result<Q4Weights> build(int64_t out, int64_t in, const ColumnSource& source);

  const uint8_t* data() const { return static_cast<const uint8_t*>(buffer_.get()); }
  int64_t out() const { return out_; }
  int64_t in() const { return in_; }
  int64_t n_groups() const { return n_groups_; }
  int64_t n_panels() const { return n_panels_; }
  int64_t bytes() const { return n_panels_ * n_groups_ * q4::kPanelGroupBytes; }
  // The weight W[n, k] as the kernel computes it (scale * q + min), for tests.
  float value(int64_t n, int64_t k) const;

 private:
  std::shared_ptr<void> buffer_;
  int64_t out_ = 0, in_ = 0, n_groups_ = 0, n_panels_ = 0;
};

}  // namespace pagoda
