// Elementwise and row kernels of a Llama forward pass: RMSNorm, RoPE,
// SwiGLU, residual add, argmax, softmax. AVX-512 paths with a portable
// scalar fallback, compiled per instruction-set level and chosen at start-up
// (kernel_table.h).
//
// Pure functions on caller-owned buffers; thread-safe. Batched kernels
// split rows over OpenMP threads when the work is large enough.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/model/model_config.h"

namespace pagoda {

// out[r, i] = x[r, i] / sqrt(mean_i(x[r, :]^2) + eps) * weight[i] for each
// of `rows` rows of `n` floats. out may alias x.
void rmsnorm(const float* x, const float* weight, int64_t rows, int64_t n, float eps, float* out);

// The head_dim / 2 RoPE inverse frequencies: theta^(-2i / head_dim) (float
// powf, like llama2.c), then rescaled as `scaling` says (see RopeScaling).
std::vector<float> rope_inv_freq(int64_t head_dim, float theta, const RopeScaling& scaling);

// cos/sin of pos * inv_freq[i] for pos < max_pos and i < head_dim / 2
// (float product, like llama2.c); inv_freq from rope_inv_freq().
// Immutable after construction; thread-safe to share.
class RopeTable {
 public:
  RopeTable(int64_t max_pos, int64_t head_dim, float theta);
  RopeTable(int64_t max_pos, int64_t head_dim, float theta, const RopeScaling& scaling);
  int64_t max_pos() const { return max_pos_; }
  int64_t head_dim() const { return head_dim_; }
  // head_dim / 2 values each; requires 0 <= pos < max_pos.
  const float* cos(int64_t pos) const { return cos_.data() + pos * (head_dim_ / 2); }
  const float* sin(int64_t pos) const { return sin_.data() + pos * (head_dim_ / 2); }

 private:
  int64_t max_pos_, head_dim_;
  std::vector<float> cos_, sin_;
};

// Rotates every head of x [n_heads * head_dim] for `position` in place.
// The table's head_dim must equal head_dim and position < table.max_pos().
void rope_inplace(float* x, int64_t n_heads, int64_t head_dim, int64_t position, const RopeTable& table,
                  RopeLayout layout);
// Same, computing the angles on the fly from theta (no table).
void rope_inplace(float* x, int64_t n_heads, int64_t head_dim, int64_t position, float theta, RopeLayout layout);
// Batched: row r (starting at x + r * row_stride) holds n_heads heads of
// token r, rotated for positions[r]. Lets q and k be rotated inside a fused
// QKV output ([rows, q_dim + 2 * kv_dim], row_stride = q_dim + 2 * kv_dim).
void rope_inplace_rows(float* x, int64_t rows, int64_t row_stride, int64_t n_heads, int64_t head_dim,
                       const int32_t* positions, const RopeTable& table, RopeLayout layout);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). out may alias
// gate or up.
void swiglu(const float* gate, const float* up, int64_t n, float* out);
// For the fused gate|up Linear: row r of gate_up is [gate (n) | up (n)];
// out[r, :] = silu(gate) * up, out is [rows, n].
void swiglu_rows(const float* gate_up, int64_t rows, int64_t n, float* out);

// x[i] += y[i] (the residual add).
void add_inplace(float* x, const float* y, int64_t n);

// Index of the largest value (the first one on ties); -1 if n == 0.
int64_t argmax(const float* x, int64_t n);

// x = exp(x - max) / sum exp(x - max), in place; -inf entries become 0.
// Needs at least one finite entry.
void softmax_inplace(float* x, int64_t n);

}  // namespace pagoda
