#include "engine/kernels/amx_gemm.h"

#include <algorithm>
#include <cstring>

#include "engine/kernels/kernel_table.h"

#include "engine/kernels/isa_begin.h"

namespace pagoda::amx {
PAGODA_ISA_NAMESPACE_BEGIN
namespace {

#if defined(PAGODA_AMX)
constexpr int64_t kPanelCols = 64;
constexpr int64_t kRowBytes = 256;               // one k group (s8 quad, bf16 pair) of a panel
constexpr int64_t kBlockBytes = 16 * kRowBytes;  // 16 k groups: one B tile's worth of K
constexpr int64_t kTileBytes = 16 * 64;          // one A tile: 16 rows x 64 bytes

// The AMX tile configuration (palette 1): rows and bytes per row of tiles 0-7.
struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Every tile 16 rows x 64 bytes: C tiles 16 x 16 s32 / f32, A 16 rows x 64
// s8 or 32 bf16 k values, B 16 k groups x 16 columns.
void load_full_config() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.rows[t] = 16;
    c.colsb[t] = 64;
  }
  _tile_loadconfig(&c);
}

// k blocks the first pass over a panel prefetches ahead. A k block is one
// 4-KB page, and the hardware prefetcher does not cross pages, so without
// this every block's tile loads wait for DRAM (linear_bench, int8, the five
// bench-200m shapes at M = 24-48: 20-35% less time with 4 blocks ahead).
constexpr int64_t kPrefetchBlocks = 4;

// Bytes of panels one row pair walks before the next row pair starts.
constexpr int64_t kGroupBytes = 1 << 20;

// Prefetches the 4-KB k block at b (when below end) into L1.
inline void prefetch_block(const uint8_t* b, const uint8_t* end) {
  if (b >= end) return;
  for (int i = 0; i < 64; ++i) _mm_prefetch(reinterpret_cast<const char*>(b + i * 64), _MM_HINT_T0);
}

// Sums of 32 rows (two 16-row blocks of the A-tile ordered activations at x)
// x 32 columns (a panel half at wp) over nkb k blocks into c [32][32]
// (s32, or f32 bits for bf16); with `two` false only the first block (rows
// 0-15 of c). Tiles: C 0-3 (A0B0, A0B1, A1B0, A1B1), A 4-5, B 6-7. With pf
// set, also prefetches the whole k block at pf + kb * 4 KB (up to pf_end) in
// step kb.
template <bool kInt8>
void half_panel_2x2(const uint8_t* wp, int64_t nkb, const uint8_t* x, bool two, int32_t* c, const uint8_t* pf,
                    const uint8_t* pf_end) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const uint8_t* x1 = x + nkb * kTileBytes;
  for (int64_t kb = 0; kb < nkb; ++kb) {
    const uint8_t* wb = wp + kb * kBlockBytes;
    if (pf) prefetch_block(pf + kb * kBlockBytes, pf_end);
    _tile_loadd(6, wb, kRowBytes);
    _tile_loadd(4, x + kb * kTileBytes, 64);
    if constexpr (kInt8) _tile_dpbusd(0, 4, 6);
    else _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(7, wb + 64, kRowBytes);
    if constexpr (kInt8) _tile_dpbusd(1, 4, 7);
    else _tile_dpbf16ps(1, 4, 7);
    if (two) {
      _tile_loadd(5, x1 + kb * kTileBytes, 64);
      if constexpr (kInt8) {
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
      } else {
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
    }
  }
  _tile_stored(0, c, 128);
  _tile_stored(1, c + 16, 128);
  if (two) {
    _tile_stored(2, c + 16 * 32, 128);
    _tile_stored(3, c + 16 * 32 + 16, 128);
  }
}

inline __mmask16 lane_mask(int64_t c, int64_t cols) {
  if (c + 16 <= cols) return 0xFFFF;
  if (c >= cols) return 0;
  return static_cast<__mmask16>((1u << (cols - c)) - 1);
}

// Output panels [p0, p1) for m rows of A-tile ordered activations at x
// (row_bytes per row: kp s8 or 2 kp bf16 values); `finish(c, r0, rows, c0)`
// writes the [rows][32] sums at c (row stride 32) to rows r0.. and columns
// [c0, c0 + 32) of the output.
template <bool kInt8, typename Finish>
void panels(const uint8_t* w, int64_t row_bytes, const uint8_t* x, int64_t m, int64_t n_out, int64_t p0, int64_t p1,
            Finish finish) {
  load_full_config();
  const int64_t nkb = row_bytes / 64;
  const int64_t panel_bytes = nkb * kBlockBytes;
  const uint8_t* pf_end = w + p1 * panel_bytes;
  const int64_t pf_off = kPrefetchBlocks * kBlockBytes;
  alignas(64) int32_t c[32 * 32];
  // Groups of panels that fit L2 (1 MB of the 2 MB); within a group, row
  // pairs outer: a row pair's activations stay in L1 while the group's
  // panels come from L2 (M = 128-512: 1.4-1.6x less time than panels outer).
  const int64_t group = std::max<int64_t>(1, kGroupBytes / panel_bytes);
  for (int64_t g0 = p0; g0 < p1; g0 += group) {
    const int64_t g1 = std::min(p1, g0 + group);
    for (int64_t r0 = 0; r0 < m; r0 += 32) {
      const int64_t rows = std::min<int64_t>(32, m - r0);
      for (int64_t p = g0; p < g1; ++p) {
        const uint8_t* wp = w + p * panel_bytes;
        for (int h = 0; h < 2; ++h) {
          const int64_t c0 = p * kPanelCols + h * 32;
          if (c0 >= n_out) break;
          const uint8_t* pf = (h == 0 && r0 == 0) ? wp + pf_off : nullptr;
          half_panel_2x2<kInt8>(wp + h * 128, nkb, x + r0 * row_bytes, rows > 16, c, pf, pf_end);
          finish(c, r0, rows, c0);
        }
      }
    }
  }
}
#endif  // PAGODA_AMX

}  // namespace

void s8_panels(const int8_t* w, int64_t kp, const uint8_t* x, int64_t m, int64_t n_out, const float* x_scale,
               const float* w_scale, const int32_t* comp, float* y, int64_t ldy, int64_t p0, int64_t p1) {
#if defined(PAGODA_AMX)
  auto finish = [&](const int32_t* c, int64_t r0, int64_t rows, int64_t c0) {
    const int64_t cols = std::min<int64_t>(32, n_out - c0);
    const __mmask16 k0 = lane_mask(0, cols), k1 = lane_mask(16, cols);
    const __m512 ws0 = _mm512_maskz_loadu_ps(k0, w_scale + c0);
    const __m512 ws1 = _mm512_maskz_loadu_ps(k1, w_scale + c0 + 16);
    const __m512i cp0 = _mm512_maskz_loadu_epi32(k0, comp + c0);
    const __m512i cp1 = _mm512_maskz_loadu_epi32(k1, comp + c0 + 16);
    for (int64_t r = 0; r < rows; ++r) {
      const __m512 sx = _mm512_set1_ps(x_scale[r0 + r]);
      const int32_t* a = c + r * 32;
      float* yr = y + (r0 + r) * ldy + c0;
      const __m512 v0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_loadu_si512(a), cp0));
      const __m512 v1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_loadu_si512(a + 16), cp1));
      _mm512_mask_storeu_ps(yr, k0, _mm512_mul_ps(v0, _mm512_mul_ps(sx, ws0)));
      _mm512_mask_storeu_ps(yr + 16, k1, _mm512_mul_ps(v1, _mm512_mul_ps(sx, ws1)));
    }
  };
  panels<true>(reinterpret_cast<const uint8_t*>(w), kp, x, m, n_out, p0, p1, finish);
#else
  (void)w, (void)kp, (void)x, (void)m, (void)n_out, (void)x_scale, (void)w_scale, (void)comp;
  (void)y, (void)ldy, (void)p0, (void)p1;
#endif
}

void bf16_panels(const uint16_t* w, int64_t kp, const uint16_t* x, int64_t m, int64_t n_out, float* y, int64_t ldy,
                 int64_t p0, int64_t p1) {
#if defined(PAGODA_AMX)
  auto finish = [&](const int32_t* c, int64_t r0, int64_t rows, int64_t c0) {
    const int64_t cols = std::min<int64_t>(32, n_out - c0);
    const __mmask16 k0 = lane_mask(0, cols), k1 = lane_mask(16, cols);
    const float* cf = reinterpret_cast<const float*>(c);
    for (int64_t r = 0; r < rows; ++r) {
      float* yr = y + (r0 + r) * ldy + c0;
      _mm512_mask_storeu_ps(yr, k0, _mm512_loadu_ps(cf + r * 32));
      _mm512_mask_storeu_ps(yr + 16, k1, _mm512_loadu_ps(cf + r * 32 + 16));
    }
  };
  panels<false>(reinterpret_cast<const uint8_t*>(w), kp * 2, reinterpret_cast<const uint8_t*>(x), m, n_out, p0, p1,
                finish);
#else
  (void)w, (void)kp, (void)x, (void)m, (void)n_out, (void)y, (void)ldy, (void)p0, (void)p1;
#endif
}

void register_kernels(KernelTable& table) {
#if defined(PAGODA_AMX)
  table.amx_s8_fn = &s8_panels;
  table.amx_bf16_fn = &bf16_panels;
#else
  (void)table;
#endif
}

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda::amx
