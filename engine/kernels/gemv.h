// Matmul kernels ("panel kernels") that read oneDNN's packed matmul weights
// in place, so Linear needs no second copy: small batches for f32 and, on
// CPUs without AMX, every batch for int8 and bf16. On CPUs with AVX2 but no
// VNNI, where oneDNN packs int8 otherwise, Linear packs int8 weights in this
// layout itself and every batch runs the AVX2 kernel (gemv_s8_avx2.cpp).
//
// The layout ("panel layout") is the one oneDNN 2.6 picks for f32, bf16 and
// s8 matmul weights on AVX-512/AMX (format BA16a64b, BA16a64b2a, BA16a64b4a):
// the output columns are split into panels of 64; a panel holds all of the
// padded K for its 64 columns, as kp / V groups of [64 columns][V consecutive
// k] (V = 1 for f32, 2 for bf16, 4 for s8: the VNNI / dpbf16 pair and quad
// layouts), so element (k, n) of panel p = n / 64 is at
//   p * kp * 64 + (k / V) * 64 * V + (n % 64) * V + k % V.
// kp is K rounded up to a multiple of 16 * V and the padding is zero.
//
// Each call computes output panels [p0, p1) for `m` rows: up to 4 rows in one
// pass over the panel; with more rows the panel is walked in chunks (8 KB of
// f32 or bf16, 16 KB of s8) and groups of up to 6 rows run over each chunk
// while it is in L1, which is how int8 reaches the VNNI peak (~1000 GOPS on
// 2 cores) from cache at any M. A panel is streamed from memory once per 64
// rows (later 64-row tiles re-read it from L2).
// Callers split panels across threads. AVX-512 (F, BF16, VNNI) paths with a
// scalar fallback of the same arithmetic; the AVX2 int8 kernel has its own
// shape (its file's comment). Pure functions; thread-safe on disjoint
// outputs.
#pragma once

#include <cstdint>

namespace pagoda::gemv {

constexpr int64_t kPanel = 64;  // output columns per panel

// Whether the chosen instruction-set level (kernel_table.h) has the vector
// int8 (AVX512_VNNI; or AVX2, gemv_s8_avx2.cpp) and bf16 (AVX512_BF16 for up to 4 rows; more rows need
// only AVX512F) kernels; without them the same arithmetic runs scalar
// (correct, for tests, but slower than oneDNN beyond a few rows).
bool vector_s8();
bool vector_bf16();
constexpr int64_t kKBlock = 16;  // k groups per oneDNN block (kp is a multiple of 16 * V)

// y[r * ldy + n] = sum_k x[r * kp + k] * W[k, n] for r < m, n in panels
// [p0, p1) and n < n_out. x rows are kp floats (zero beyond the real K).
void f32_panels(const float* w, int64_t kp, const float* x, int64_t m, int64_t n_out, float* y, int64_t ldy, int64_t p0,
                int64_t p1);

// Same with bf16 weights and bf16 activations (x rows kp values, zero-padded),
// f32 accumulation (AVX512_BF16 vdpbf16ps). For up to kBF16DotRows rows,
// where the weights' memory stream bounds the time; any m is correct.
void bf16_panels(const uint16_t* w, int64_t kp, const uint16_t* x, int64_t m, int64_t n_out, float* y, int64_t ldy,
                 int64_t p0, int64_t p1);
constexpr int64_t kBF16DotRows = 4;

// bf16 weights times f32 activations (x rows kp floats, zero-padded), with f32
// FMAs on the weights widened in registers: for more than kBF16DotRows rows,
// where the arithmetic bounds the time and vdpbf16ps (one per ~2.2 cycles on
// Sapphire Rapids) runs at half the f32 FMA rate. Linear rounds x to bf16
// first, so both paths compute the same products.
void bf16_panels_f32x(const uint16_t* w, int64_t kp, const float* x, int64_t m, int64_t n_out, float* y, int64_t ldy,
                      int64_t p0, int64_t p1);

// s8 weights times u8 activations (zero point 128, real values in
// [1, 255]; x rows kp values, any value in the padding) with exact s32
// accumulation (AVX512_VNNI vpdpbusd; AVX2: gemv_s8_avx2.cpp),
// then the Linear int8 epilogue:
//   y[r, n] = (acc[r, n] - comp[n]) * x_scale[r] * w_scale[n].
// w_max: the largest |w| of these weights; the AVX2 kernel has a cheaper
// form for 7-bit weights (<= 63), the others ignore it.
void s8_panels(const int8_t* w, int64_t kp, const uint8_t* x, int64_t m, int64_t n_out, const float* x_scale,
               const float* w_scale, const int32_t* comp, float* y, int64_t ldy, int64_t p0, int64_t p1, int32_t w_max);

}  // namespace pagoda::gemv
