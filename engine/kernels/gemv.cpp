#include "engine/kernels/gemv.h"

#include <algorithm>
#include <cstring>
#include "engine/kernels/quantize.h"

#include "engine/kernels/kernel_table.h"

#include "engine/kernels/isa_begin.h"

namespace pagoda::gemv {
PAGODA_ISA_NAMESPACE_BEGIN
namespace {

constexpr int kMaxRows = 4;               // rows per pass over a whole panel (4 x 4 accumulators)
constexpr int kRowGroup = 6;              // rows per pass over a chunk of the multi-row kernels (6 x 4)
constexpr int64_t kPrefetchBytes = 4096;  // software prefetch distance in a panel

inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

#if defined(PAGODA_AVX512F)
// Prefetches the 256 bytes one k step reads (4 lines from p), or those
// kPrefetchBytes ahead (the hardware prefetcher alone leaves M = 1 short of
// the read bandwidth).
inline void prefetch_lines(const void* p) {
  const char* c = static_cast<const char*>(p);
  for (int j = 0; j < 4; ++j) _mm_prefetch(c + 64 * j, _MM_HINT_T0);
}
// Prefetches the same 4 lines into L2 only.
inline void prefetch_lines_l2(const void* p) {
  const char* c = static_cast<const char*>(p);
  for (int j = 0; j < 4; ++j) _mm_prefetch(c + 64 * j, _MM_HINT_T1);
}
inline void prefetch_step(const void* wk) { prefetch_lines(static_cast<const char*>(wk) + kPrefetchBytes); }

// Stores 4 x 16 lanes to y[0, cols) (cols <= 64), masking the tail.
inline void store_panel_row(float* y, const __m512* v, int64_t cols) {
  for (int j = 0; j < 4; ++j) {
    const int64_t c = j * 16;
    if (c + 16 <= cols) {
      _mm512_storeu_ps(y + c, v[j]);
    } else if (c < cols) {
      _mm512_mask_storeu_ps(y + c, static_cast<__mmask16>((1u << (cols - c)) - 1), v[j]);
    }
  }
}

// Loads 16 lanes of p[c .. c + 16) masked to [0, cols).
inline __m512 load_ps_tail(const float* p, int64_t c, int64_t cols) {
  if (c + 16 <= cols) return _mm512_loadu_ps(p + c);
  if (c >= cols) return _mm512_setzero_ps();
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (cols - c)) - 1), p + c);
}
inline __m512i load_epi32_tail(const int32_t* p, int64_t c, int64_t cols) {
  if (c + 16 <= cols) return _mm512_loadu_si512(p + c);
  if (c >= cols) return _mm512_setzero_si512();
  return _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << (cols - c)) - 1), p + c);
}

// One row: two sets of accumulators on alternating k (kp is a multiple of
// 16), so consecutive FMAs do not wait on each other.
void f32_panel_row(const float* wp, int64_t kp, const float* x, float* y, int64_t cols) {
  __m512 a[4], b[4];
  for (int j = 0; j < 4; ++j) a[j] = b[j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kp; k += 2) {
    const float* wk = wp + k * kPanel;
    prefetch_step(wk);
    prefetch_step(wk + kPanel);
    const __m512 x0 = _mm512_set1_ps(x[k]), x1 = _mm512_set1_ps(x[k + 1]);
    for (int j = 0; j < 4; ++j) {
      a[j] = _mm512_fmadd_ps(_mm512_loadu_ps(wk + 16 * j), x0, a[j]);
      b[j] = _mm512_fmadd_ps(_mm512_loadu_ps(wk + kPanel + 16 * j), x1, b[j]);
    }
  }
  for (int j = 0; j < 4; ++j) a[j] = _mm512_add_ps(a[j], b[j]);
  store_panel_row(y, a, cols);
}

#endif

#if defined(PAGODA_AVX512F) && defined(PAGODA_AVX512BF16)
// One row: two sets of accumulators on alternating k pairs (kp is a
// multiple of 32), so consecutive vdpbf16ps do not wait on each other.
void bf16_panel_row(const uint16_t* wp, int64_t kp, const uint16_t* x, float* y, int64_t cols) {
  __m512 a[4], b[4];
  for (int j = 0; j < 4; ++j) a[j] = b[j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kp; k += 4) {
    const uint16_t* wk = wp + k * kPanel;
    prefetch_step(wk);
    prefetch_step(wk + 2 * kPanel);
    const __m512bh x0 = (__m512bh)_mm512_set1_epi32(load_i32(x + k));
    const __m512bh x1 = (__m512bh)_mm512_set1_epi32(load_i32(x + k + 2));
    for (int j = 0; j < 4; ++j) {
      a[j] = _mm512_dpbf16_ps(a[j], (__m512bh)_mm512_loadu_si512(wk + 32 * j), x0);
      b[j] = _mm512_dpbf16_ps(b[j], (__m512bh)_mm512_loadu_si512(wk + 2 * kPanel + 32 * j), x1);
    }
  }
  for (int j = 0; j < 4; ++j) a[j] = _mm512_add_ps(a[j], b[j]);
  store_panel_row(y, a, cols);
}

template <int MR>
void bf16_panel(const uint16_t* wp, int64_t kp, const uint16_t* x, float* y, int64_t ldy, int64_t cols) {
  if constexpr (MR == 1) return bf16_panel_row(wp, kp, x, y, cols);
  __m512 acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kp; k += 2) {
    const uint16_t* wk = wp + k * kPanel;  // (k / 2) * 64 * 2
    prefetch_step(wk);
    const __m512bh w0 = (__m512bh)_mm512_loadu_si512(wk);
    const __m512bh w1 = (__m512bh)_mm512_loadu_si512(wk + 32);
    const __m512bh w2 = (__m512bh)_mm512_loadu_si512(wk + 64);
    const __m512bh w3 = (__m512bh)_mm512_loadu_si512(wk + 96);
    for (int r = 0; r < MR; ++r) {
      const __m512bh xb = (__m512bh)_mm512_set1_epi32(load_i32(x + r * kp + k));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], w0, xb);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], w1, xb);
      acc[r][2] = _mm512_dpbf16_ps(acc[r][2], w2, xb);
      acc[r][3] = _mm512_dpbf16_ps(acc[r][3], w3, xb);
    }
  }
  for (int r = 0; r < MR; ++r) store_panel_row(y + r * ldy, acc[r], cols);
}
#endif

#if defined(PAGODA_AVX512F) && defined(PAGODA_AVX512VNNI)
// s8 weights, u8 activations (zero point 128), s32 sums; the epilogue is
// y = (acc - comp) * x_scale * w_scale. madd is an asm statement: see the
// note above ChunkOutput. Used by s8_panel and the multi-row kernel.
struct S8Ops {
  using Acc = __m512i;
  static Acc zero() { return _mm512_setzero_si512(); }
  static Acc load(const void* p) { return _mm512_load_si512(p); }
  static void store(void* p, Acc a) { _mm512_store_si512(p, a); }
  // acc += x (u8 quads) . w (s8 quads).
  static void madd(Acc& acc, __m512i x, __m512i w) { asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w)); }
  // The panel's part of the epilogue: w_scale and comp of its columns (zero
  // beyond `cols`) and the row scales of the tile's rows.
  struct Epilogue {
    __m512 ws[4];
    __m512i cp[4];
    const float* x_scale;
    void set_columns(const float* w_scale, const int32_t* comp, int64_t cols) {
      for (int j = 0; j < 4; ++j) {
        ws[j] = load_ps_tail(w_scale, j * 16, cols);
        cp[j] = load_epi32_tail(comp, j * 16, cols);
      }
    }
    __m512 finish(Acc a, int64_t r, int j) const {
      const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(a, cp[j]));
      return _mm512_mul_ps(v, _mm512_mul_ps(_mm512_set1_ps(x_scale[r]), ws[j]));
    }
  };
};

template <int MR>
void s8_panel(const int8_t* wp, int64_t kp, const uint8_t* x, const float* x_scale, const float* w_scale,
              const int32_t* comp, float* y, int64_t ldy, int64_t cols) {
  __m512i acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_si512();
  int64_t k = 0;
  if constexpr (MR == 1) {
    // One row: a second set of accumulators on alternating k quads (kp is a
    // multiple of 64), so consecutive vpdpbusd do not wait on each other.
    __m512i b[4];
    for (int j = 0; j < 4; ++j) b[j] = _mm512_setzero_si512();
    for (; k < kp; k += 8) {
      const int8_t* wk = wp + k * kPanel;
      prefetch_step(wk);
      prefetch_step(wk + 4 * kPanel);
      const __m512i x0 = _mm512_set1_epi32(load_i32(x + k)), x1 = _mm512_set1_epi32(load_i32(x + k + 4));
      for (int j = 0; j < 4; ++j) {
        acc[0][j] = _mm512_dpbusd_epi32(acc[0][j], x0, _mm512_loadu_si512(wk + 64 * j));
        b[j] = _mm512_dpbusd_epi32(b[j], x1, _mm512_loadu_si512(wk + 4 * kPanel + 64 * j));
      }
    }
    for (int j = 0; j < 4; ++j) acc[0][j] = _mm512_add_epi32(acc[0][j], b[j]);
  }
  for (; k < kp; k += 4) {
    const int8_t* wk = wp + k * kPanel;  // (k / 4) * 64 * 4
    prefetch_step(wk);
    const __m512i w0 = _mm512_loadu_si512(wk), w1 = _mm512_loadu_si512(wk + 64), w2 = _mm512_loadu_si512(wk + 128),
                  w3 = _mm512_loadu_si512(wk + 192);
    for (int r = 0; r < MR; ++r) {
      const __m512i xb = _mm512_set1_epi32(load_i32(x + r * kp + k));
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], xb, w0);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], xb, w1);
      acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], xb, w2);
      acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], xb, w3);
    }
  }
  S8Ops::Epilogue ep;
  ep.set_columns(w_scale, comp, cols);
  ep.x_scale = x_scale;
  for (int r = 0; r < MR; ++r) {
    __m512 out[4];
    for (int j = 0; j < 4; ++j) out[j] = ep.finish(acc[r][j], r, j);
    store_panel_row(y + r * ldy, out, cols);
  }
}
#endif

#if defined(PAGODA_AVX512F)
// Multi-row kernel for int8 (M > kMaxRows), the twin of the f32-FMA one
// below: a panel is walked in chunks of kGroupChunk k groups (64 groups of
// 256 bytes = 16 KB of weights: 256 k values of s8 quads); each group of up
// to kRowGroup rows runs over a chunk while it sits in L1 (6 x 4
// accumulators, 4 weight registers and one broadcast activation group: 24
// vpdpbusd per 10 loads), keeping its sums
// in a per-panel tile between chunks; the last chunk applies the epilogue in
// registers. So M rows cost one pass over memory and ceil(M / kRowGroup)
// passes over L1 per chunk, and every pass prefetches its share of the next
// chunk into L1 and of the chunk after it into L2. From cache this reaches
// the VNNI peak (~1000 GOPS on 2 cores). The L2 prefetch is what lets the
// memory stream overlap the arithmetic: L1 prefetches alone wait ~100 ns on
// DRAM each, and the few L1 fill buffers then cap the stream near 17 GB/s
// (M = 8 took 1.34x the M = 1 time; with it 1.1x).
constexpr int64_t kGroupChunk = 64;     // k groups per chunk
constexpr int64_t kGroupBytes = 256;    // one k group of a panel: 64 columns x 4 bytes
constexpr int64_t kGroupTileRows = 64;  // rows per tile; more rows run in blocks of 64

// Note on S8Ops::madd: GCC 12 compiles the vpdpbusd
// intrinsics inside unrolled multi-row loops into register copies and stack
// spills around every instruction (it does not treat the accumulator as
// updated in place), which halved the kernel's rate; the asm forms keep each
// accumulator in its register.

// Where the last chunk writes: the epilogue, the output (row 0 of the tile,
// the panel's column 0), its row stride and the panel's columns.
template <class Ops>
struct ChunkOutput {
  typename Ops::Epilogue ep;
  float* y;
  int64_t ldy, cols;
};

// MR rows x 64 columns over the `groups` k groups of one chunk `wc`. The sums
// start from zero when `first`, else from the tile (64 sums per row); with
// `out` (the last chunk) rows [r0, r0 + MR) of the output are written, else
// the sums go back to the tile. x points at row 0's first group of the
// chunk, rows x_stride bytes apart. For every group g with g % pf_period ==
// pf_phase, prefetches its lines of `next` into L1 and of the chunk after
// `next` into L2. Kept out of line with its loops
// fully unrolled, so that GCC holds the 4 x MR accumulators in registers
// (inlined into the caller, it kept them on the stack).
template <class Ops, int MR>
[[gnu::noinline]] void chunk_rows(const uint8_t* wc, int64_t groups, const uint8_t* x, int64_t x_stride, void* tile,
                                  bool first, const ChunkOutput<Ops>* out, int64_t r0, const uint8_t* next,
                                  int64_t pf_period, int64_t pf_phase) {
  using Acc = typename Ops::Acc;
  auto* t = static_cast<Acc*>(tile);  // 4 vectors per row
  Acc acc[MR][4];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[r][j] = first ? Ops::zero() : Ops::load(t + r * 4 + j);
  }
  for (int64_t g = 0, pf_g = pf_phase; g < groups; ++g) {
    const uint8_t* wk = wc + g * kGroupBytes;
    if (g == pf_g) {
      prefetch_lines(next + g * kGroupBytes);
      prefetch_lines_l2(next + (kGroupChunk + g) * kGroupBytes);
      pf_g += pf_period;
    }
    const __m512i w0 = _mm512_loadu_si512(wk), w1 = _mm512_loadu_si512(wk + 64), w2 = _mm512_loadu_si512(wk + 128),
                  w3 = _mm512_loadu_si512(wk + 192);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i xb = _mm512_set1_epi32(load_i32(x + r * x_stride + 4 * g));
      Ops::madd(acc[r][0], xb, w0);
      Ops::madd(acc[r][1], xb, w1);
      Ops::madd(acc[r][2], xb, w2);
      Ops::madd(acc[r][3], xb, w3);
    }
  }
  if (out == nullptr) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) Ops::store(t + r * 4 + j, acc[r][j]);
    }
    return;
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    __m512 v[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) v[j] = out->ep.finish(acc[r][j], r0 + r, j);
    store_panel_row(out->y + (r0 + r) * out->ldy, v, out->cols);
  }
}

// chunk_rows for 1..kRowGroup rows.
template <class Ops>
constexpr decltype(&chunk_rows<Ops, 1>) kChunkRows[kRowGroup] = {chunk_rows<Ops, 1>, chunk_rows<Ops, 2>,
                                                                 chunk_rows<Ops, 3>, chunk_rows<Ops, 4>,
                                                                 chunk_rows<Ops, 5>, chunk_rows<Ops, 6>};

// Rows [0, m) of one panel (wp: kp_groups k groups) into `out`'s rows; x
// rows are x_stride bytes apart. `set_rows(b0)` points the epilogue at the
// tile starting at row b0.
template <class Ops, class SetRows>
void grouped_panel_rows(const uint8_t* wp, int64_t kp_groups, const uint8_t* x, int64_t x_stride, int64_t m,
                        ChunkOutput<Ops> out, SetRows set_rows) {
  alignas(64) uint8_t tile[kGroupTileRows * kGroupBytes];
  float* const y = out.y;
  for (int64_t b0 = 0; b0 < m; b0 += kGroupTileRows) {
    const int64_t rows = std::min(kGroupTileRows, m - b0);
    // Passes over a chunk with nearly equal row counts (32 rows: 6, 6, 5, 5,
    // 5, 5), none above kRowGroup.
    const int64_t passes = (rows + kRowGroup - 1) / kRowGroup;
    set_rows(out.ep, b0);
    out.y = y + b0 * out.ldy;
    for (int64_t g0 = 0; g0 < kp_groups; g0 += kGroupChunk) {
      const int64_t groups = std::min(kGroupChunk, kp_groups - g0);
      const uint8_t* wc = wp + g0 * kGroupBytes;
      // Prefetching past the last panel is harmless (prefetches do not fault).
      const uint8_t* next = wc + kGroupChunk * kGroupBytes;
      const ChunkOutput<Ops>* o = g0 + groups >= kp_groups ? &out : nullptr;
      for (int64_t pass = 0, r = 0; pass < passes; ++pass) {
        const int64_t n = rows / passes + (pass < rows % passes ? 1 : 0);
        const uint8_t* xr = x + (b0 + r) * x_stride + g0 * 4;
        void* tr = tile + r * kGroupBytes;
        kChunkRows<Ops>[n - 1](wc, groups, xr, x_stride, tr, g0 == 0, o, r, next, passes, pass);
        r += n;
      }
    }
  }
}
#endif

#if defined(PAGODA_AVX512F)
// f32-FMA multi-row kernel (M > kMaxRows) for f32 weights and for bf16
// weights (widened to f32 in registers: on this CPU vdpbf16ps retires one
// instruction per ~2.2 cycles, 84 GFLOP/s per core, against two f32 FMAs per
// cycle, 340; f32 FMAs on widened weights do the same arithmetic in half the
// time). A panel is walked in chunks of kChunkSteps k steps (one step = 256
// bytes of weights: one k of f32, a k pair of bf16; 8 KB per chunk); each
// group of up to kRowGroup rows runs over a chunk while it sits in L1 and
// accumulates into a per-panel tile, so M rows cost one pass over memory and
// ceil(M / kRowGroup) passes over L1 (instead of re-reading the whole
// 256-720 KB panel from L2 for every 4 rows). Every pass prefetches its
// share of the next chunk into L1 and of the chunk after it into L2 (as the
// int8 kernel does), so the memory stream stays busy while the passes
// compute.
constexpr int64_t kChunkSteps = 32;  // k steps per chunk: 8 KB of weights
constexpr int64_t kTileRows = 64;    // rows per tile; more rows run in blocks of 64

// acc += w * broadcast(*x), the broadcast folded into the FMA's memory
// operand. An asm statement: with intrinsics GCC hoists the 2 x 6 activation
// broadcasts of a bf16 step out of the column loop and spills accumulators.
inline void fmadd_broadcast(__m512& acc, __m512 w, const float* x) {
  asm("vfmadd231ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*x));
}

// k values per step: 1 for f32 weights, 2 for bf16 pairs.
template <class W>
constexpr int64_t kStepK = sizeof(W) == 4 ? 1 : 2;

// What a pass over a chunk prefetches: for every step s with s % period ==
// phase, the step's 256 bytes of `next` into L1 and, unless `after` is null,
// those of `after` into L2.
template <class W>
struct StepPrefetch {
  const W* next;
  const W* after;
  int64_t period, phase;
};

// MR rows x 64 columns over steps [0, steps) of one chunk `wc` (weights of
// type W: float, or uint16_t bf16 pairs). The tile rows (64 floats each)
// start from zero when `first`, else from the tile; x (f32) points at row
// 0's first k of the chunk, rows kp apart.
template <class W, int MR>
[[gnu::noinline]] void fma_chunk_rows(const W* wc, int64_t steps, const float* x, int64_t kp, float* tile, bool first,
                                      StepPrefetch<W> pf) {
  constexpr int64_t V = kStepK<W>;
  __m512 acc[MR][4];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[r][j] = first ? _mm512_setzero_ps() : _mm512_load_ps(tile + r * kPanel + 16 * j);
  for (int64_t st = 0, pf_s = pf.phase; st < steps; ++st) {
    const W* wk = wc + st * V * kPanel;  // 256 bytes per step
    if (st == pf_s) {
      prefetch_lines(pf.next + st * V * kPanel);
      if (pf.after != nullptr) prefetch_lines_l2(pf.after + st * V * kPanel);
      pf_s += pf.period;
    }
    const int64_t k = st * V;
    if constexpr (V == 1) {
      const __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + 16), w2 = _mm512_loadu_ps(wk + 32),
                   w3 = _mm512_loadu_ps(wk + 48);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m512 xb = _mm512_set1_ps(x[r * kp + k]);
        acc[r][0] = _mm512_fmadd_ps(w0, xb, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(w1, xb, acc[r][1]);
        acc[r][2] = _mm512_fmadd_ps(w2, xb, acc[r][2]);
        acc[r][3] = _mm512_fmadd_ps(w3, xb, acc[r][3]);
      }
    } else {
      // 32-bit lane c of a 64-byte load holds column 16 j + c at k (low
      // half) and k + 1 (high half); a bf16 value is the top half of its f32.
      const __m512i high = _mm512_set1_epi32(static_cast<int32_t>(0xFFFF0000u));
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const __m512i wp = _mm512_loadu_si512(wk + 32 * j);
        const __m512 lo = _mm512_castsi512_ps(_mm512_slli_epi32(wp, 16));
        const __m512 hi = _mm512_castsi512_ps(_mm512_and_si512(wp, high));
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          fmadd_broadcast(acc[r][j], lo, x + r * kp + k);
          fmadd_broadcast(acc[r][j], hi, x + r * kp + k + 1);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) _mm512_store_ps(tile + r * kPanel + 16 * j, acc[r][j]);
}

// Runs fma_chunk_rows for `rows` (1..kRowGroup) rows.
template <class W>
void fma_chunk_rows_n(int64_t rows, const W* wc, int64_t steps, const float* x, int64_t kp, float* tile, bool first,
                      StepPrefetch<W> pf) {
  switch (rows) {
    case 1:
      return fma_chunk_rows<W, 1>(wc, steps, x, kp, tile, first, pf);
    case 2:
      return fma_chunk_rows<W, 2>(wc, steps, x, kp, tile, first, pf);
    case 3:
      return fma_chunk_rows<W, 3>(wc, steps, x, kp, tile, first, pf);
    case 4:
      return fma_chunk_rows<W, 4>(wc, steps, x, kp, tile, first, pf);
    case 5:
      return fma_chunk_rows<W, 5>(wc, steps, x, kp, tile, first, pf);
    default:
      return fma_chunk_rows<W, 6>(wc, steps, x, kp, tile, first, pf);
  }
}

// tile[r * 64 + c] = sum over all of kp of x[r, k] * W[k, c], r < m <= kTileRows.
template <class W>
void fma_panel_tile(const W* wp, int64_t kp, const float* x, int64_t m, float* tile) {
  constexpr int64_t V = kStepK<W>;
  const int64_t steps = kp / V;
  if (m <= kMaxRows) {  // one pass over the whole panel, prefetching kPrefetchBytes ahead
    const StepPrefetch<W> pf{wp + kPrefetchBytes / sizeof(W), nullptr, 1, 0};
    return fma_chunk_rows_n<W>(m, wp, steps, x, kp, tile, true, pf);
  }
  // Passes of kRowGroup rows and the remainder (31 rows: 6 x 5 + 1; nearly
  // equal row counts measured 3-10% slower for f32 at M = 7, 13, 31).
  const int64_t passes = (m + kRowGroup - 1) / kRowGroup;
  for (int64_t s0 = 0; s0 < steps; s0 += kChunkSteps) {
    const int64_t sn = std::min(kChunkSteps, steps - s0);
    const W* wc = wp + s0 * V * kPanel;
    // Prefetching past the last panel is harmless (prefetches do not fault).
    const W* next = wc + kChunkSteps * V * kPanel;
    for (int64_t pass = 0, r = 0; pass < passes; ++pass, r += kRowGroup) {
      const StepPrefetch<W> pf{next, next + kChunkSteps * V * kPanel, passes, pass};
      fma_chunk_rows_n<W>(std::min<int64_t>(kRowGroup, m - r), wc, sn, x + r * kp + s0 * V, kp, tile + r * kPanel,
                          s0 == 0, pf);
    }
  }
}

// y rows [0, m) of one panel's `cols` columns, any m.
template <class W>
void fma_panel_rows(const W* wp, int64_t kp, const float* x, int64_t m, float* y, int64_t ldy, int64_t cols) {
  alignas(64) float tile[kTileRows * kPanel];
  for (int64_t r0 = 0; r0 < m; r0 += kTileRows) {
    const int64_t rows = std::min(kTileRows, m - r0);
    fma_panel_tile<W>(wp, kp, x + r0 * kp, rows, tile);
    for (int64_t r = 0; r < rows; ++r) {
      __m512 v[4];
      for (int j = 0; j < 4; ++j) v[j] = _mm512_load_ps(tile + r * kPanel + 16 * j);
      store_panel_row(y + (r0 + r) * ldy, v, cols);
    }
  }
}
#endif

// Scalar versions of the same arithmetic (portable fallback).
[[maybe_unused]] void f32_panel_scalar(const float* wp, int64_t kp, const float* x, int64_t rows, float* y, int64_t ldy,
                                       int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float s = 0;
      for (int64_t k = 0; k < kp; ++k) s += x[r * kp + k] * wp[k * kPanel + c];
      y[r * ldy + c] = s;
    }
}

[[maybe_unused]] void bf16_panel_scalar(const uint16_t* wp, int64_t kp, const uint16_t* x, int64_t rows, float* y,
                                        int64_t ldy, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float s = 0;
      for (int64_t k = 0; k < kp; ++k)
        s += bf16_to_f32(x[r * kp + k]) * bf16_to_f32(wp[(k / 2) * kPanel * 2 + c * 2 + k % 2]);
      y[r * ldy + c] = s;
    }
}

[[maybe_unused]] void s8_panel_scalar(const int8_t* wp, int64_t kp, const uint8_t* x, int64_t rows,
                                      const float* x_scale, const float* w_scale, const int32_t* comp, float* y,
                                      int64_t ldy, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      int32_t acc = 0;
      for (int64_t k = 0; k < kp; ++k)
        acc += int32_t(x[r * kp + k]) * int32_t(wp[(k / 4) * kPanel * 4 + c * 4 + k % 4]);
      y[r * ldy + c] = static_cast<float>(acc - comp[c]) * (x_scale[r] * w_scale[c]);
    }
}

}  // namespace

void f32_panels(const float* w, int64_t kp, const float* x, int64_t m, int64_t n_out, float* y, int64_t ldy, int64_t p0,
                int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* wp = w + p * kp * kPanel;
    const int64_t c0 = p * kPanel, cols = std::min(kPanel, n_out - c0);
#if defined(PAGODA_AVX512F)
    if (m == 1) {
      f32_panel_row(wp, kp, x, y + c0, cols);
    } else {
      fma_panel_rows<float>(wp, kp, x, m, y + c0, ldy, cols);
    }
#else
    f32_panel_scalar(wp, kp, x, m, y + c0, ldy, cols);
#endif
  }
}

void bf16_panels(const uint16_t* w, int64_t kp, const uint16_t* x, int64_t m, int64_t n_out, float* y, int64_t ldy,
                 int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    const uint16_t* wp = w + p * kp * kPanel;
    const int64_t c0 = p * kPanel, cols = std::min(kPanel, n_out - c0);
    for (int64_t r = 0; r < m; r += kMaxRows) {
      const int64_t rows = std::min<int64_t>(kMaxRows, m - r);
      const uint16_t* xr = x + r * kp;
      float* yr = y + r * ldy + c0;
#if defined(PAGODA_AVX512F) && defined(PAGODA_AVX512BF16)
      switch (rows) {
        case 1:
          bf16_panel<1>(wp, kp, xr, yr, ldy, cols);
          break;
        case 2:
          bf16_panel<2>(wp, kp, xr, yr, ldy, cols);
          break;
        case 3:
          bf16_panel<3>(wp, kp, xr, yr, ldy, cols);
          break;
        default:
          bf16_panel<4>(wp, kp, xr, yr, ldy, cols);
          break;
      }
#else
      bf16_panel_scalar(wp, kp, xr, rows, yr, ldy, cols);
#endif
    }
  }
}

void bf16_panels_f32x(const uint16_t* w, int64_t kp, const float* x, int64_t m, int64_t n_out, float* y, int64_t ldy,
                      int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    const uint16_t* wp = w + p * kp * kPanel;
    const int64_t c0 = p * kPanel, cols = std::min(kPanel, n_out - c0);
#if defined(PAGODA_AVX512F)
    fma_panel_rows<uint16_t>(wp, kp, x, m, y + c0, ldy, cols);
#else
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        float s = 0;
        for (int64_t k = 0; k < kp; ++k) s += x[r * kp + k] * bf16_to_f32(wp[(k / 2) * kPanel * 2 + c * 2 + k % 2]);
        y[r * ldy + c0 + c] = s;
      }
#endif
  }
}

void s8_panels(const int8_t* w, int64_t kp, const uint8_t* x, int64_t m, int64_t n_out, const float* x_scale,
               const float* w_scale, const int32_t* comp, float* y, int64_t ldy, int64_t p0, int64_t p1,
               int32_t /*w_max: any*/) {
  for (int64_t p = p0; p < p1; ++p) {
    const int8_t* wp = w + p * kp * kPanel;
    const int64_t c0 = p * kPanel, cols = std::min(kPanel, n_out - c0);
#if defined(PAGODA_AVX512F) && defined(PAGODA_AVX512VNNI)
    if (m > kMaxRows) {
      ChunkOutput<S8Ops> out;
      out.ep.set_columns(w_scale + c0, comp + c0, cols);
      out.y = y + c0;
      out.ldy = ldy;
      out.cols = cols;
      grouped_panel_rows<S8Ops>(reinterpret_cast<const uint8_t*>(wp), kp / 4, x, kp, m, out,
                                [&](S8Ops::Epilogue& ep, int64_t b0) { ep.x_scale = x_scale + b0; });
      continue;
    }
#endif
    for (int64_t r = 0; r < m; r += kMaxRows) {
      const int64_t rows = std::min<int64_t>(kMaxRows, m - r);
      const uint8_t* xr = x + r * kp;
      const float* sx = x_scale + r;
      float* yr = y + r * ldy + c0;
#if defined(PAGODA_AVX512F) && defined(PAGODA_AVX512VNNI)
      switch (rows) {
        case 1:
          s8_panel<1>(wp, kp, xr, sx, w_scale + c0, comp + c0, yr, ldy, cols);
          break;
        case 2:
          s8_panel<2>(wp, kp, xr, sx, w_scale + c0, comp + c0, yr, ldy, cols);
          break;
        case 3:
          s8_panel<3>(wp, kp, xr, sx, w_scale + c0, comp + c0, yr, ldy, cols);
          break;
        default:
          s8_panel<4>(wp, kp, xr, sx, w_scale + c0, comp + c0, yr, ldy, cols);
          break;
      }
#else
      s8_panel_scalar(wp, kp, xr, rows, sx, w_scale + c0, comp + c0, yr, ldy, cols);
#endif
    }
  }
}

void register_kernels(KernelTable& table) {
#if defined(PAGODA_AVX512F) && defined(PAGODA_AVX512VNNI)
  table.gemv_vector_s8 = true;
#endif
#if defined(PAGODA_AVX512F) && defined(PAGODA_AVX512BF16)
  table.gemv_vector_bf16 = true;
#endif
  table.gemv_f32_fn = &f32_panels;
  table.gemv_bf16_fn = &bf16_panels;
  table.gemv_bf16_f32x_fn = &bf16_panels_f32x;
  table.gemv_s8_fn = &s8_panels;
}

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda::gemv
