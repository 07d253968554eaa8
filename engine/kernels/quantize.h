// Number-format conversions used by Linear: f32 -> bf16 and symmetric int8
// quantization (per output channel for weights, per row for activations).
// Pure functions on caller-owned buffers; thread-safe.
#pragma once

#include <cstdint>
#include <cstring>

namespace pagoda {

// bf16 is the top 16 bits of an f32; conversion rounds to nearest even
// (NaN stays NaN).
inline uint16_t f32_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_f32(uint16_t x) {
  const uint32_t u = static_cast<uint32_t>(x) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}
void f32_to_bf16_n(const float* x, int64_t n, uint16_t* out);
// out[i] = x[i] rounded to bf16 and widened back to f32 (out may equal x).
void round_to_bf16_n(const float* x, int64_t n, float* out);

// Symmetric quantization of each row of w [rows, cols] to s8 in
// [-max_q, max_q] (max_q in 1..127): scale[r] = max|w[r,:]| / max_q (1.0 for
// an all-zero row), q = round(w / scale). Also writes row_sum[r] = sum of
// q[r, :] (used for zero-point compensation).
void quantize_rows_s8(const float* w, int64_t rows, int64_t cols, int8_t* q, float* scale, int32_t* row_sum,
                      int32_t max_q);

// Per-row activation quantization to u8 with zero point 128:
// scale[r] = max|x[r,:]| / 127 (1.0 for an all-zero row),
// q = round(x / scale) + 128, so q - 128 lies in [-127, 127].
void quantize_rows_u8(const float* x, int64_t rows, int64_t cols, uint8_t* q, float* scale);

}  // namespace pagoda
