#include "engine/kernels/q4_gemv.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/float16.h"
#include "engine/kernels/kernel_table.h"

#include "engine/kernels/isa_begin.h"

namespace pagoda::q4 {
PAGODA_ISA_NAMESPACE_BEGIN
namespace {

constexpr int kMaxRows = 4;               // rows per pass over a panel (4 x 4 integer accumulators)
constexpr int64_t kPrefetchBytes = 4096;  // software prefetch distance in a panel

inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Prefetches the panel-group kPrefetchBytes ahead of `gp` (the vector
// kernels, once per group: the hardware prefetcher alone leaves one row short
// of the read bandwidth).
[[maybe_unused]] inline void prefetch_ahead(const uint8_t* gp) {
  for (int64_t line = 0; line < kPanelGroupBytes; line += 64)
    _mm_prefetch(reinterpret_cast<const char*>(gp) + kPrefetchBytes + line, _MM_HINT_T0);
}

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

#if defined(PAGODA_AVX512F) && defined(PAGODA_AVX512VNNI)
// The dot products of one block (16 columns x 32 k) for R rows into acc.
template <int R>
inline void block_rows(const uint8_t* b, const int8_t* xg, int64_t ldx, const float* xsum_g, int64_t n_groups,
                       __m512* acc) {
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  __m512i dot[R];
  for (int r = 0; r < R; ++r) dot[r] = _mm512_setzero_si512();
  for (int c = 0; c < 4; ++c) {
    const __m512i v = _mm512_loadu_si512(b + 64 * c);
    const __m512i lo = _mm512_and_si512(v, nibble);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
    for (int r = 0; r < R; ++r)
      dot[r] = _mm512_dpbusd_epi32(dot[r], lo, _mm512_set1_epi32(load_i32(xg + r * ldx + 8 * c)));
    for (int r = 0; r < R; ++r)
      dot[r] = _mm512_dpbusd_epi32(dot[r], hi, _mm512_set1_epi32(load_i32(xg + r * ldx + 8 * c + 4)));
  }
  const __m512 scale = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 256)));
  const __m512 min = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 288)));
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(dot[r]), acc[r]);
    acc[r] = _mm512_fmadd_ps(min, _mm512_set1_ps(xsum_g[r * n_groups]), acc[r]);
  }
}

// Stores R rows of one 16-column vector, scaled, masked to [0, cols).
template <int R>
inline void store_rows(const __m512* acc, const float* x_scale, float* y, int64_t ldy, int64_t c0, int64_t cols) {
  for (int r = 0; r < R; ++r) {
    const __m512 v = _mm512_mul_ps(acc[r], _mm512_set1_ps(x_scale[r]));
    if (c0 + kVector <= cols) {
      _mm512_storeu_ps(y + r * ldy + c0, v);
    } else if (c0 < cols) {
      _mm512_mask_storeu_ps(y + r * ldy + c0, static_cast<__mmask16>((1u << (cols - c0)) - 1), v);
    }
  }
}

// R <= 4 rows over one panel, reading it once in order (group by group, its
// four blocks in turn): 4R accumulators.
template <int R>
void panel_rows_stream(const uint8_t* wp, int64_t n_groups, const int8_t* xq, int64_t ldx, const float* xsum,
                       const float* x_scale, float* y, int64_t ldy, int64_t cols) {
  __m512 acc[4][R];
  for (int j = 0; j < 4; ++j)
    for (int r = 0; r < R; ++r) acc[j][r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* gp = wp + g * kPanelGroupBytes;
    prefetch_ahead(gp);
    for (int j = 0; j < 4; ++j) block_rows<R>(gp + j * kBlockBytes, xq + g * kGroup, ldx, xsum + g, n_groups, acc[j]);
  }
  for (int j = 0; j < 4; ++j) store_rows<R>(acc[j], x_scale, y, ldy, j * kVector, cols);
}

// R (<= 4) rows over one panel, reading it once in order: each broadcast of
// 4 activation bytes serves the panel's four 16-column vectors (the dot
// products of a group for R rows x 64 columns stay in 4R registers); the
// float sums live in a small array in L1.
template <int R>
void panel_rows_multi(const uint8_t* wp, int64_t n_groups, const int8_t* xq, int64_t ldx, const float* xsum,
                      const float* x_scale, float* y, int64_t ldy, int64_t cols) {
  alignas(64) float sums[R][kPanel] = {};
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* gp = wp + g * kPanelGroupBytes;
    prefetch_ahead(gp);
    const int8_t* xg = xq + g * kGroup;
    __m512i dot[R][4];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < 4; ++j) dot[r][j] = _mm512_setzero_si512();
    for (int c = 0; c < 4; ++c) {
      __m512i x_lo[R], x_hi[R];
      for (int r = 0; r < R; ++r) {
        x_lo[r] = _mm512_set1_epi32(load_i32(xg + r * ldx + 8 * c));
        x_hi[r] = _mm512_set1_epi32(load_i32(xg + r * ldx + 8 * c + 4));
      }
      for (int j = 0; j < 4; ++j) {
        const __m512i v = _mm512_loadu_si512(gp + j * kBlockBytes + 64 * c);
        const __m512i lo = _mm512_and_si512(v, nibble);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
        for (int r = 0; r < R; ++r) {
          dot[r][j] = _mm512_dpbusd_epi32(dot[r][j], lo, x_lo[r]);
          dot[r][j] = _mm512_dpbusd_epi32(dot[r][j], hi, x_hi[r]);
        }
      }
    }
    for (int j = 0; j < 4; ++j) {
      const uint8_t* b = gp + j * kBlockBytes;
      const __m512 scale = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 256)));
      const __m512 min = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 288)));
      for (int r = 0; r < R; ++r) {
        __m512 a = _mm512_load_ps(sums[r] + j * kVector);
        a = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(dot[r][j]), a);
        a = _mm512_fmadd_ps(min, _mm512_set1_ps(xsum[r * n_groups + g]), a);
        _mm512_store_ps(sums[r] + j * kVector, a);
      }
    }
  }
  for (int j = 0; j < 4; ++j) {
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_load_ps(sums[r] + j * kVector);
    store_rows<R>(acc, x_scale, y, ldy, j * kVector, cols);
  }
}

template <int R>
void panel_rows(const uint8_t* wp, int64_t n_groups, const int8_t* xq, int64_t ldx, const float* xsum,
                const float* x_scale, float* y, int64_t ldy, int64_t cols) {
  if constexpr (R == 1) {
    panel_rows_stream<R>(wp, n_groups, xq, ldx, xsum, x_scale, y, ldy, cols);
  } else {
    panel_rows_multi<R>(wp, n_groups, xq, ldx, xsum, x_scale, y, ldy, cols);
  }
}
#elif defined(PAGODA_AVX2)
// AVX2 (no VNNI): vpmaddubsw multiplies the unsigned quants (<= 15) by the
// signed activations (|xq| <= 127) and adds each pair in 16 bits (at most
// 2 * 15 * 127 = 3810); the 8 such results of a group (4 chunks x 2 nibble
// planes) are added in 16 bits too (at most 30480 < 32767), then vpmaddwd
// with ones widens the pairs to the group's s32 dot product: exact, the same
// integers as VNNI. A block's 16 columns are two 8-column halves: bytes
// [32h, 32h + 32) of each 64-byte chunk.
//
// R (<= 4) rows over one panel, reading it once in order: for each of the
// panel's 8 column vectors the R dot products stay in R registers; the
// float sums live in a small array in L1.
template <int R>
void panel_rows(const uint8_t* wp, int64_t n_groups, const int8_t* xq, int64_t ldx, const float* xsum,
                const float* x_scale, float* y, int64_t ldy, int64_t cols) {
  alignas(32) float sums[R][kPanel] = {};
  const __m256i nibble = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* gp = wp + g * kPanelGroupBytes;
    prefetch_ahead(gp);
    const int8_t* xg = xq + g * kGroup;
    for (int j = 0; j < 4; ++j) {
      const uint8_t* b = gp + j * kBlockBytes;
      for (int h = 0; h < 2; ++h) {
        __m256i dot[R];
        for (int r = 0; r < R; ++r) dot[r] = _mm256_setzero_si256();
        for (int c = 0; c < 4; ++c) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * c + 32 * h));
          const __m256i lo = _mm256_and_si256(v, nibble);
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
          for (int r = 0; r < R; ++r) {
            const __m256i x_lo = _mm256_set1_epi32(load_i32(xg + r * ldx + 8 * c));
            const __m256i x_hi = _mm256_set1_epi32(load_i32(xg + r * ldx + 8 * c + 4));
            dot[r] = _mm256_add_epi16(dot[r], _mm256_maddubs_epi16(lo, x_lo));
            dot[r] = _mm256_add_epi16(dot[r], _mm256_maddubs_epi16(hi, x_hi));
          }
        }
        const int64_t c0 = j * kVector + 8 * h;
        const __m256 scale = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 256 + 16 * h)));
        const __m256 min = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 288 + 16 * h)));
        for (int r = 0; r < R; ++r) {
          const __m256 d = _mm256_cvtepi32_ps(_mm256_madd_epi16(dot[r], ones));
          __m256 a = _mm256_load_ps(sums[r] + c0);
          a = _mm256_fmadd_ps(scale, d, a);
          a = _mm256_fmadd_ps(min, _mm256_set1_ps(xsum[r * n_groups + g]), a);
          _mm256_store_ps(sums[r] + c0, a);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const __m256 s = _mm256_set1_ps(x_scale[r]);
    for (int64_t c = 0; c < kPanel; c += 8) {
      const __m256 v = _mm256_mul_ps(_mm256_load_ps(sums[r] + c), s);
      if (c + 8 <= cols) {
        _mm256_storeu_ps(y + r * ldy + c, v);
      } else if (c < cols) {
        alignas(32) float tail[8];
        _mm256_store_ps(tail, v);
        std::memcpy(y + r * ldy + c, tail, static_cast<size_t>(cols - c) * sizeof(float));
      }
    }
  }
}
#else
// The same arithmetic, one value at a time.
template <int R>
void panel_rows(const uint8_t* wp, int64_t n_groups, const int8_t* xq, int64_t ldx, const float* xsum,
                const float* x_scale, float* y, int64_t ldy, int64_t cols) {
  float acc[R][kPanel] = {};
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* gp = wp + g * kPanelGroupBytes;
    const int8_t* xg = xq + g * kGroup;
    for (int j = 0; j < 4; ++j) {
      const uint8_t* b = gp + j * kBlockBytes;
      for (int i = 0; i < kVector; ++i) {
        const float scale = f16_to_f32(load_u16(b + 256 + 2 * i));
        const float min = f16_to_f32(load_u16(b + 288 + 2 * i));
        for (int r = 0; r < R; ++r) {
          int32_t dot = 0;
          for (int c = 0; c < 4; ++c)
            for (int kk = 0; kk < 4; ++kk) {
              const uint8_t byte = b[64 * c + 4 * i + kk];
              dot += (byte & 0x0F) * xg[r * ldx + 8 * c + kk];
              dot += (byte >> 4) * xg[r * ldx + 8 * c + 4 + kk];
            }
          float& a = acc[r][j * kVector + i];
          a = std::fma(scale, static_cast<float>(dot), a);
          a = std::fma(min, xsum[r * n_groups + g], a);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * ldy + c] = acc[r][c] * x_scale[r];
}
#endif

}  // namespace

void panels(const uint8_t* w, int64_t n_groups, const int8_t* xq, const float* xsum, const float* x_scale, int64_t m,
            int64_t n_out, float* y, int64_t ldy, int64_t p0, int64_t p1) {
  const int64_t ldx = n_groups * kGroup;
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* wp = w + p * n_groups * kPanelGroupBytes;
    const int64_t cols = std::min<int64_t>(kPanel, n_out - p * kPanel);
    float* yp = y + p * kPanel;
    for (int64_t r = 0; r < m; r += kMaxRows) {
      const int64_t rows = std::min<int64_t>(kMaxRows, m - r);
      const int8_t* xr = xq + r * ldx;
      const float* sr = xsum + r * n_groups;
      switch (rows) {
        case 1:
          panel_rows<1>(wp, n_groups, xr, ldx, sr, x_scale + r, yp + r * ldy, ldy, cols);
          break;
        case 2:
          panel_rows<2>(wp, n_groups, xr, ldx, sr, x_scale + r, yp + r * ldy, ldy, cols);
          break;
        case 3:
          panel_rows<3>(wp, n_groups, xr, ldx, sr, x_scale + r, yp + r * ldy, ldy, cols);
          break;
        default:
          panel_rows<4>(wp, n_groups, xr, ldx, sr, x_scale + r, yp + r * ldy, ldy, cols);
          break;
      }
    }
  }
}

void register_kernels(KernelTable& table) {
#if defined(PAGODA_AVX2)
  table.q4_vector = true;
#endif
  table.q4_panels_fn = &panels;
}

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda::q4
