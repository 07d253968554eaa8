// The int8 panel kernel (gemv::s8_panels, gemv.h) for levels with AVX2 but
// no VNNI: the avx2 level, and avx512 (AVX-512 without VNNI), where it runs
// in 256-bit registers. Registered over gemv.cpp's scalar fallback at those
// levels (register_s8_avx2_kernels, after gemv's own).
//
// Arithmetic: without vpdpbusd the u8 x s8 products are formed by
// vpmaddubsw, which adds each pair in 16 bits with saturation; vpmaddwd with
// ones then widens the pairs to s32. Two forms, by the weights' range:
//  - 7-bit weights (|w| <= 63, what Linear quantizes to where oneDNN has no
//    VNNI: Linear::int8_weight_max): vpmaddubsw(x, w) directly, each pair
//    at most 2 * 255 * 63 = 32130 < 32767; the epilogue subtracts comp as
//    the VNNI kernel does. Three instructions per 32 products.
//  - any s8 weights: the activations taken as signed, xs = x - 128 (in
//    [-127, 127]: Linear quantizes them to 128 +- 127), and the sign of each
//    weight moved onto them: vpmaddubsw(|w|, sign(xs, w)), each pair at most
//    2 * 128 * 127 = 32512 (|w| = 128 for -128); the sum is sum_k (x - 128) w = acc - comp
//    already. Two more instructions per 32 products (1.6x the time of the
//    7-bit form at large M on a Zen 3 class EPYC).
// Either way the same integers and the same float steps as the scalar and
// VNNI paths, so the same bits. Padding: weights are zero there, so any
// activation byte is harmless.
//
// Shape: a panel is walked in chunks of 32 k quads (8 KB); over each chunk,
// while it sits in L1, passes of 2 rows x 4 column vectors of 8 columns (8
// sums in registers; one row x 8 vectors for an odd last row) add into a
// per-panel tile of int32 sums, and each pass prefetches its share of the
// next chunk into L1 and of the one after into L2. So M rows read a panel
// from memory once per 64 rows, one row reads it in order. Pure functions;
// thread-safe on disjoint outputs (callers split panels).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "engine/kernels/gemv.h"
#include "engine/kernels/kernel_table.h"

#include "engine/kernels/isa_begin.h"

namespace pagoda::gemv {
PAGODA_ISA_NAMESPACE_BEGIN
#if defined(PAGODA_AVX2) && !defined(PAGODA_AVX512VNNI)
namespace {

constexpr int64_t kQuadBytes = kPanel * 4;  // one k quad of a panel: 64 columns x 4 bytes
constexpr int64_t kChunkQuads = 32;         // k quads per chunk: 8 KB of a panel
constexpr int64_t kTileRows = 64;           // rows per block; more rows run in blocks of 64

// Four activation bytes, broadcast: as they are (7-bit form) or as signed
// values x - 128 (kSigned).
template <bool kSigned>
inline __m256i activation_quad(const uint8_t* x) {
  int32_t v;
  std::memcpy(&v, x, sizeof(v));
  return _mm256_set1_epi32(kSigned ? v ^ static_cast<int32_t>(0x80808080u) : v);
}

// acc += sum over each column's 4 k of x * w (exact; see the file comment).
template <bool kSigned>
inline __m256i dot_quad(__m256i acc, __m256i w, __m256i x, __m256i ones) {
  const __m256i pairs =
      kSigned ? _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w)) : _mm256_maddubs_epi16(x, w);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
}

// One pass: R rows x V column vectors (8 columns each, from vector v0) of a
// panel over the `quads` k quads of one chunk `wc` (the chunk's start in the
// panel); x points at row 0's first k of the chunk, rows kp bytes apart. The
// sums start from zero when `first`, else from the tile (kPanel int32 per
// row), and go back to it. For every quad q with q % pf_period == pf_phase,
// prefetches its 4 lines of `next` into L1 and of the chunk after `next`
// into L2. Out of line with its loops unrolled, so the R x V sums stay in
// registers.
template <int R, int V, bool kSigned>
[[gnu::noinline]] void chunk_pass(const int8_t* wc, int64_t quads, int v0, const uint8_t* x, int64_t kp, int32_t* tile,
                                  bool first, const int8_t* next, int64_t pf_period, int64_t pf_phase) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[R][V];
#pragma GCC unroll 2
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v)
      acc[r][v] = first ? _mm256_setzero_si256()
                        : _mm256_load_si256(reinterpret_cast<const __m256i*>(tile + r * kPanel + 8 * (v0 + v)));
  for (int64_t q = 0, pf_q = pf_phase; q < quads; ++q) {
    const int8_t* wk = wc + q * kQuadBytes + 32 * v0;
    if (q == pf_q) {
      const char* n = reinterpret_cast<const char*>(next + q * kQuadBytes);
      const char* a = n + kChunkQuads * kQuadBytes;
      for (int line = 0; line < 4; ++line) {
        _mm_prefetch(n + 64 * line, _MM_HINT_T0);
        _mm_prefetch(a + 64 * line, _MM_HINT_T1);
      }
      pf_q += pf_period;
    }
    __m256i xq[R];
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r) xq[r] = activation_quad<kSigned>(x + r * kp + 4 * q);
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wk + 32 * v));
#pragma GCC unroll 2
      for (int r = 0; r < R; ++r) acc[r][v] = dot_quad<kSigned>(acc[r][v], w, xq[r], ones);
    }
  }
#pragma GCC unroll 2
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v)
      _mm256_store_si256(reinterpret_cast<__m256i*>(tile + r * kPanel + 8 * (v0 + v)), acc[r][v]);
}

// y[r, c] = (tile[r, c] - comp[c]) * (x_scale[r] * w_scale[c]) for r < m,
// c < cols; comp null: zero.
void tile_epilogue(const int32_t* tile, int64_t m, const float* x_scale, const float* w_scale, const int32_t* comp,
                   float* y, int64_t ldy, int64_t cols) {
  alignas(32) float ws[kPanel] = {};
  alignas(32) int32_t cp[kPanel] = {};
  std::memcpy(ws, w_scale, static_cast<size_t>(cols) * sizeof(float));
  if (comp != nullptr) std::memcpy(cp, comp, static_cast<size_t>(cols) * sizeof(int32_t));
  for (int64_t r = 0; r < m; ++r) {
    const __m256 sx = _mm256_set1_ps(x_scale[r]);
    for (int64_t c = 0; c < cols; c += 8) {
      const __m256i acc = _mm256_sub_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(tile + r * kPanel + c)),
                                           _mm256_load_si256(reinterpret_cast<const __m256i*>(cp + c)));
      const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_mul_ps(sx, _mm256_load_ps(ws + c)));
      if (c + 8 <= cols) {
        _mm256_storeu_ps(y + r * ldy + c, v);
      } else {
        alignas(32) float out[8];
        _mm256_store_ps(out, v);
        std::memcpy(y + r * ldy + c, out, static_cast<size_t>(cols - c) * sizeof(float));
      }
    }
  }
}

// Rows [0, m) (m <= kTileRows) of one panel (wp, kp / 4 k quads) into y's
// `cols` columns.
template <bool kSigned>
void panel_block(const int8_t* wp, int64_t kp, const uint8_t* x, int64_t m, const float* x_scale, const float* w_scale,
                 const int32_t* comp, float* y, int64_t ldy, int64_t cols) {
  alignas(32) int32_t tile[kTileRows * kPanel];
  const int64_t quads_total = kp / 4, pairs = m / 2;
  const int64_t passes = 2 * pairs + m % 2;
  for (int64_t q0 = 0; q0 < quads_total; q0 += kChunkQuads) {
    const int64_t quads = std::min(kChunkQuads, quads_total - q0);
    const int8_t* wc = wp + q0 * kQuadBytes;
    // Prefetching past the last panel is harmless (prefetches do not fault).
    const int8_t* next = wc + kChunkQuads * kQuadBytes;
    const uint8_t* xc = x + 4 * q0;
    const bool first = q0 == 0;
    int64_t pass = 0;
    for (int64_t i = 0; i < pairs; ++i) {
      for (int v0 = 0; v0 < 8; v0 += 4, ++pass)
        chunk_pass<2, 4, kSigned>(wc, quads, v0, xc + 2 * i * kp, kp, tile + 2 * i * kPanel, first, next, passes, pass);
    }
    if (m % 2 != 0)
      chunk_pass<1, 8, kSigned>(wc, quads, 0, xc + (m - 1) * kp, kp, tile + (m - 1) * kPanel, first, next, passes,
                                pass);
  }
  tile_epilogue(tile, m, x_scale, w_scale, kSigned ? nullptr : comp, y, ldy, cols);
}

void s8_panels_avx2(const int8_t* w, int64_t kp, const uint8_t* x, int64_t m, int64_t n_out, const float* x_scale,
                    const float* w_scale, const int32_t* comp, float* y, int64_t ldy, int64_t p0, int64_t p1,
                    int32_t w_max) {
  const bool seven_bit = w_max <= 63;
  for (int64_t p = p0; p < p1; ++p) {
    const int8_t* wp = w + p * kp * kPanel;
    const int64_t c0 = p * kPanel, cols = std::min(kPanel, n_out - c0);
    for (int64_t r = 0; r < m; r += kTileRows) {
      const int64_t rows = std::min(kTileRows, m - r);
      if (seven_bit) {
        panel_block<false>(wp, kp, x + r * kp, rows, x_scale + r, w_scale + c0, comp + c0, y + r * ldy + c0, ldy, cols);
      } else {
        panel_block<true>(wp, kp, x + r * kp, rows, x_scale + r, w_scale + c0, comp + c0, y + r * ldy + c0, ldy, cols);
      }
    }
  }
}

}  // namespace
#endif

void register_s8_avx2_kernels(KernelTable& table) {
#if defined(PAGODA_AVX2) && !defined(PAGODA_AVX512VNNI)
  table.gemv_vector_s8 = true;
  table.gemv_s8_fn = &s8_panels_avx2;
#else
  (void)table;
#endif
}

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda::gemv
