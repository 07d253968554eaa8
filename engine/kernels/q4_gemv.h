// 4-bit weight matmul ("q4 panels"): y[m, n] = x[m, k] * W^T for W stored as
// 4-bit quants in groups of 32 along k, each (group, output column) with its
// own f16 scale and f16 min: w = scale * q + min, q in [0, 15]. That is
// ggml's q4_1 numbers; q4_0 (min = -8 * scale) and q4_K (scale = d * sc,
// min = -dmin * m, rounded to f16) repack into it.
//
// Layout ("q4 panel layout"): output columns in panels of 64, a panel holds
// every group of k for its 64 columns, a group four blocks of 16 columns:
//   block (panel p, group g, vector j) at ((p * n_groups + g) * 4 + j) * kBlockBytes:
//     bytes [0, 256): 4 chunks of 64 bytes; byte e of chunk c holds, for
//       column 16j + e / 4 of the panel and kk = e % 4, the quant of
//       k = 32g + 8c + kk in its low nibble and of k = 32g + 8c + 4 + kk in
//       its high nibble (each nibble plane is vpdpbusd's quad layout);
//     bytes [256, 288): the 16 columns' f16 scales; [288, 320): f16 mins.
// Columns past n and k past the real K are zero (scale 0, min 0).
//
// Activations: each row quantized symmetrically to s8 (x ~ x_scale * xq,
// xq in [-127, 127]), with the sum of xq over each group; then
//   y[r, n] = x_scale[r] * sum_g (scale[g, n] * sum_k xq q + min[g, n] * xsum[r, g])
// with the integer dot products exact (AVX512_VNNI vpdpbusd, or AVX2
// vpmaddubsw + vpmaddwd, weights as the unsigned operand) and the float steps
// in that order with FMAs, so the vector and scalar paths give the same bits.
//
// One row streams its panel once in order (memory-bound decode); 2-4 rows
// share each unpacked weight vector and each activation broadcast across
// the panel's four column vectors. Pure functions; thread-safe on disjoint
// outputs (callers split panels).
#pragma once

#include <cstdint>

namespace pagoda::q4 {

constexpr int64_t kGroup = 32;        // k per quantization group
constexpr int64_t kPanel = 64;        // output columns per panel
constexpr int64_t kVector = 16;       // columns per block
constexpr int64_t kBlockBytes = 320;  // 256 quant bytes + 16 f16 scales + 16 f16 mins
constexpr int64_t kPanelGroupBytes = kBlockBytes * (kPanel / kVector);

// Whether the chosen instruction-set level (kernel_table.h) runs a vector
// kernel (AVX512_VNNI, or AVX2 from the avx2 level up); otherwise the same
// arithmetic runs scalar.
bool vector_kernel();

// Output panels [p0, p1) of y (row stride ldy, n_out real columns) for m
// rows of s8 activations `xq` (row stride n_groups * kGroup, zero beyond the
// real K), their per-group sums `xsum` (row stride n_groups) and per-row
// scales `x_scale`.
void panels(const uint8_t* w, int64_t n_groups, const int8_t* xq, const float* xsum, const float* x_scale, int64_t m,
            int64_t n_out, float* y, int64_t ldy, int64_t p0, int64_t p1);

}  // namespace pagoda::q4
