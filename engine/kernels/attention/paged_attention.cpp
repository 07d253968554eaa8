#include "engine/kernels/attention/paged_attention.h"

#include <omp.h>
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "engine/kernels/kernel_table.h"

#include "engine/kernels/isa_begin.h"
#include "engine/kernels/attention/attention_blocks8.h"
#include "engine/kernels/attention/attention_decode.h"
#include "engine/kernels/attention/attention_lanes.h"
#include "engine/kernels/attention/attention_rows.h"
#include "engine/kernels/attention/attention_softmax.h"
#include "engine/kernels/simd_exp.h"
#include "kvpool/kv_codec.h"

namespace pagoda {
PAGODA_ISA_NAMESPACE_BEGIN
namespace {

constexpr int64_t kQueryBlock = 16;  // query tokens per work item
// Largest (query tokens x group heads) uses of each KV row for which reading
// bf16, f16 and int8 rows in their stored dtype (one widening per use) beats
// decoding the tile to f32 once (see choose_item_kernel).
constexpr int64_t kMaxStoredReads = 8;

// The kernel of one work item; the table in paged_attention.h says which
// shapes take which.
enum class ItemKernel { kDecode, kLanes, kStoredRows, kDecodedTile, kBlocks8, kScalar };

ItemKernel choose_item_kernel(int64_t query_tokens, int group, int head_dim, KvDtype dtype) {
  const int64_t uses = query_tokens * group;
  if (query_tokens == 1 && decode_kernel_supports(group, head_dim)) return ItemKernel::kDecode;
  if (uses > kMaxStoredReads && lanes_kernel_supports(head_dim)) return ItemKernel::kLanes;
#if defined(PAGODA_AVX512F)
  if (head_dim % 16 == 0) {
    if (dtype != KvDtype::kInt4 && (dtype == KvDtype::kF32 || uses <= kMaxStoredReads)) return ItemKernel::kStoredRows;
    return ItemKernel::kDecodedTile;
  }
#else
  (void)dtype;
#endif
  if (blocks8_kernel_supports(head_dim)) return ItemKernel::kBlocks8;
  return ItemKernel::kScalar;
}

struct WorkItem {
  int32_t seq;
  int32_t kv_head;
  int64_t t0, t1;  // query tokens [t0, t1) of the sequence
};

// Per-thread buffers, grown on demand and reused across calls.
struct Scratch {
  std::vector<float> kt;    // K tile transposed: [head_dim][page_size]
  std::vector<float> v;     // V tile: [page_size][head_dim]
  std::vector<float> k;     // K tile (AVX-512 path): [page_size][head_dim]
  std::vector<float> q;     // scaled queries: [tokens][group][head_dim]
  std::vector<float> acc;   // accumulators: [tokens][group][head_dim]
  std::vector<float> m, l;  // running max and sum: [tokens][group]
  std::vector<float> s;     // one score row of the tile: [page_size]
  std::vector<float> row;   // one decoded row: [head_dim]
};

Scratch& thread_scratch() {
  static thread_local Scratch scratch;
  return scratch;
}

// The scalar kernel's two inner products.
//
// s[r] = sum_d q[d] * kt[d * P + r] for r in [lo, hi) (kt: K transposed).
inline void tile_scores(const float* q, const float* kt, int64_t P, int D, int64_t lo, int64_t hi, float* s) {
  for (int64_t r = lo; r < hi; ++r) {
    float sr = 0.0f;
    for (int d = 0; d < D; ++d) sr += q[d] * kt[d * P + r];
    s[r] = sr;
  }
}

// acc[d] = acc[d] * alpha + sum_r p[r] * v[r * D + d] (r in [lo, hi), in
// order) for d < D.
inline void tile_values(const float* p, const float* v, int D, int64_t lo, int64_t hi, float alpha, float* acc) {
  for (int d = 0; d < D; ++d) {
    float a = acc[d] * alpha;
    for (int64_t r = lo; r < hi; ++r) a += p[r] * v[r * D + d];
    acc[d] = a;
  }
}

#if defined(PAGODA_AVX512F)
constexpr int kChunk = 16;  // KV rows per vector of scores

using kv_rows::RowBF16;
using kv_rows::RowF16;
using kv_rows::RowF32;
using kv_rows::RowInt8;

// Lane i (< n) = dot(q, row i of k) over the head_dim (DC when nonzero, else
// the runtime d; a multiple of 16); lanes >= n are 0 and their rows not read.
// Rows are `rb` bytes apart. With DC, q stays in registers and loops unroll.
template <class Row, int DC>
inline __m512 chunk_dots(const float* q, const uint8_t* k, size_t rb, int d, int n) {
  const int D = DC > 0 ? DC : d;
  __m512 part[kChunk];
  if constexpr (DC > 0) {
    __m512 qv[DC / 16];
    for (int c = 0; c < DC / 16; ++c) qv[c] = _mm512_loadu_ps(q + 16 * c);
    for (int i = 0; i < kChunk; ++i) {
      if (i >= n) {
        part[i] = _mm512_setzero_ps();
        continue;
      }
      const uint8_t* kr = k + i * rb;
      __m512 a = _mm512_mul_ps(qv[0], Row::load(kr, 0));
      for (int c = 1; c < DC / 16; ++c) a = _mm512_fmadd_ps(qv[c], Row::load(kr, c), a);
      part[i] = a;
    }
  } else {
    for (int i = 0; i < kChunk; ++i) {
      if (i >= n) {
        part[i] = _mm512_setzero_ps();
        continue;
      }
      const uint8_t* kr = k + i * rb;
      __m512 a = _mm512_mul_ps(_mm512_loadu_ps(q), Row::load(kr, 0));
      for (int c = 1; c < D / 16; ++c) a = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * c), Row::load(kr, c), a);
      part[i] = a;
    }
  }
  return simd::sum16x16(part);
}

// acc = acc * alpha + sum_{r in [lo, hi)} pr[r] * row r of v (head_dim DC or
// the runtime d). With DC the accumulator lives in registers, two FMA chains.
template <class Row, int DC>
inline void accumulate_v(float* acc, float alpha, const float* pr, const uint8_t* v, size_t rb, int d, int lo, int hi) {
  if constexpr (DC > 0) {
    constexpr int C = DC / 16;
    __m512 a0[C], a1[C];
    const __m512 va = _mm512_set1_ps(alpha);
    for (int c = 0; c < C; ++c) {
      a0[c] = _mm512_mul_ps(_mm512_loadu_ps(acc + 16 * c), va);
      a1[c] = _mm512_setzero_ps();
    }
    int r = lo;
    for (; r + 2 <= hi; r += 2) {
      const __m512 p0 = _mm512_set1_ps(pr[r]), p1 = _mm512_set1_ps(pr[r + 1]);
      const uint8_t* v0 = v + r * rb;
      for (int c = 0; c < C; ++c) {
        a0[c] = _mm512_fmadd_ps(p0, Row::load(v0, c), a0[c]);
        a1[c] = _mm512_fmadd_ps(p1, Row::load(v0 + rb, c), a1[c]);
      }
    }
    if (r < hi) {
      const __m512 p0 = _mm512_set1_ps(pr[r]);
      for (int c = 0; c < C; ++c) a0[c] = _mm512_fmadd_ps(p0, Row::load(v + r * rb, c), a0[c]);
    }
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(acc + 16 * c, _mm512_add_ps(a0[c], a1[c]));
  } else {
    const __m512 va = _mm512_set1_ps(alpha);
    for (int c = 0; c < d / 16; ++c) {
      __m512 a = _mm512_mul_ps(_mm512_loadu_ps(acc + 16 * c), va);
      for (int r = lo; r < hi; ++r) a = _mm512_fmadd_ps(_mm512_set1_ps(pr[r]), Row::load(v + r * rb, c), a);
      _mm512_storeu_ps(acc + 16 * c, a);
    }
  }
}

// The online-softmax step of one query head over a chunk's scores s (lanes
// outside `vis` ignored; int8 K row scales ks applied first): updates the
// running max m and sum l, writes the chunk's weights to pr (times the int8
// V row scales vs; 0 outside `vis`) and returns the factor that rescales the
// accumulator so far.
template <class Row>
inline float softmax_chunk(__m512 s, __mmask16 vis, const float* ks, const float* vs, float& m, float& l, float* pr) {
  if constexpr (Row::kScaled) s = _mm512_mul_ps(s, _mm512_maskz_loadu_ps(vis, ks));
  s = _mm512_mask_blend_ps(vis, _mm512_set1_ps(-std::numeric_limits<float>::infinity()), s);
  const float m_new = std::max(m, _mm512_mask_reduce_max_ps(vis, s));
  // exp(-inf) = 0 on the first chunk; a max that did not move needs no rescale.
  const float alpha = m_new == m ? 1.0f : std::exp(m - m_new);
  __m512 p = _mm512_maskz_mov_ps(vis, simd::exp512(_mm512_sub_ps(s, _mm512_set1_ps(m_new))));
  l = l * alpha + _mm512_reduce_add_ps(p);
  m = m_new;
  if constexpr (Row::kScaled) p = _mm512_mul_ps(p, _mm512_maskz_loadu_ps(vis, vs));
  _mm512_store_ps(pr, p);
  return alpha;
}

// One query head (scaled q) against KV rows [lo, hi) of a chunk of n <= 16
// rows starting at k / v: the online-softmax update of its running max m,
// sum l and accumulator acc. ks / vs: the chunk's int8 row scales (kScaled).
template <class Row, int DC>
inline void chunk_update(const float* q, const uint8_t* k, const uint8_t* v, size_t rb, int d, int n, int lo, int hi,
                         const float* ks, const float* vs, float& m, float& l, float* acc) {
  alignas(64) float pr[kChunk];
  const float alpha =
      softmax_chunk<Row>(chunk_dots<Row, DC>(q, k, rb, d, n), online_softmax::key_lanes(lo, hi), ks, vs, m, l, pr);
  accumulate_v<Row, DC>(acc, alpha, pr, v, rb, d, lo, hi);
}

// Everything run_item needs to walk one tile.
struct TileWork {
  const uint8_t* k;  // K rows of the tile (row r at k + r * rb)
  const uint8_t* v;
  size_t rb;        // bytes per row
  const float* ks;  // int8 row scales of the tile (else unused)
  const float* vs;
  int64_t r0, r1;  // rows of the tile the item may see
  int64_t base;    // position of the tile's row 0
  int64_t n_rows;  // rows in the tile (page size)
};

// Uses (query token x group head) that share one pass over a chunk's rows.
constexpr int kMaxUses = 8;

// acc[u] = acc[u] * alpha[u] + sum_{r in [lo, hi)} pr[u][r] * row r of v for
// UB uses at once: each V row is read (and widened) once for all of them,
// the UB x DC / 16 accumulators stay in registers.
template <class Row, int DC, int UB>
inline void accumulate_uses(float* const* acc, const float* alpha, const float (*pr)[kChunk], const uint8_t* v,
                            size_t rb, int lo, int hi) {
  constexpr int C = DC / 16;
  __m512 a[UB][C];
  for (int u = 0; u < UB; ++u) {
    const __m512 va = _mm512_set1_ps(alpha[u]);
    for (int c = 0; c < C; ++c) a[u][c] = _mm512_mul_ps(_mm512_loadu_ps(acc[u] + 16 * c), va);
  }
  for (int r = lo; r < hi; ++r) {
    __m512 vr[C];
    for (int c = 0; c < C; ++c) vr[c] = Row::load(v + r * rb, c);
    for (int u = 0; u < UB; ++u) {
      const __m512 p = _mm512_set1_ps(pr[u][r]);
      for (int c = 0; c < C; ++c) a[u][c] = _mm512_fmadd_ps(p, vr[c], a[u][c]);
    }
  }
  for (int u = 0; u < UB; ++u)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(acc[u] + 16 * c, a[u][c]);
}

// nu <= kMaxUses uses against one chunk of n <= 16 rows (compile-time head
// dim DC): use u is query q + idx[u] * DC seeing rows [lo[u], hi[u]), with
// running max m[idx[u]], sum l[...] and accumulator acc + idx[u] * DC. Every
// K and V row is read once for all uses; rows no use sees are not read.
template <class Row, int DC>
void chunk_update_uses(const float* q, const int* idx, int nu, const int* lo, const int* hi, const uint8_t* k,
                       const uint8_t* v, size_t rb, int n, const float* ks, const float* vs, float* m, float* l,
                       float* acc) {
  constexpr int C = DC / 16;
  int row_lo = kChunk, row_hi = 0;
  for (int u = 0; u < nu; ++u) {
    row_lo = std::min(row_lo, lo[u]);
    row_hi = std::max(row_hi, hi[u]);
  }
  __m512 part[kMaxUses][kChunk];
  for (int i = 0; i < kChunk; ++i) {
    if (i < row_lo || i >= row_hi || i >= n) {
      for (int u = 0; u < nu; ++u) part[u][i] = _mm512_setzero_ps();
      continue;
    }
    __m512 kr[C];
    for (int c = 0; c < C; ++c) kr[c] = Row::load(k + i * rb, c);
    for (int u = 0; u < nu; ++u) {
      const float* qu = q + idx[u] * DC;
      __m512 a = _mm512_mul_ps(_mm512_loadu_ps(qu), kr[0]);
      for (int c = 1; c < C; ++c) a = _mm512_fmadd_ps(_mm512_loadu_ps(qu + 16 * c), kr[c], a);
      part[u][i] = a;
    }
  }
  alignas(64) float pr[kMaxUses][kChunk];
  float alpha[kMaxUses];
  float* accs[kMaxUses];
  for (int u = 0; u < nu; ++u) {
    alpha[u] = softmax_chunk<Row>(simd::sum16x16(part[u]), online_softmax::key_lanes(lo[u], hi[u]), ks, vs, m[idx[u]],
                                  l[idx[u]], pr[u]);
    accs[u] = acc + idx[u] * DC;
  }
  constexpr int UB = DC == 64 ? 4 : 2;  // accumulators that fit the registers
  int u = 0;
  for (; u + UB <= nu; u += UB) accumulate_uses<Row, DC, UB>(accs + u, alpha + u, pr + u, v, rb, row_lo, row_hi);
  for (; u < nu; ++u) accumulate_uses<Row, DC, 1>(accs + u, alpha + u, pr + u, v, rb, row_lo, row_hi);
}

// Whether uses share each row read (chunk_update_uses): for rows stored
// narrower than f32, where widening costs more than the shared pass saves;
// f32 rows are read per use (chunk_update, q and accumulator in registers).
template <class Row, int DC>
constexpr bool kShareRows = DC > 0 && !std::is_same_v<Row, RowF32>;

// Attends every query token t in [0, T) (position first + t) and group head
// to the tile's visible rows (causal and windowed), 16 rows at a time.
template <class Row, int DC>
void attend_tile(const TileWork& w, int64_t first, int64_t T, int G, int d, int64_t W, const float* q, float* m,
                 float* l, float* acc) {
  for (int64_t c0 = w.r0 / kChunk * kChunk; c0 < w.r1; c0 += kChunk) {
    const int n = static_cast<int>(std::min<int64_t>(kChunk, w.n_rows - c0));
    const uint8_t* kc = w.k + c0 * w.rb;
    const uint8_t* vc = w.v + c0 * w.rb;
    const float* ks = Row::kScaled ? w.ks + c0 : nullptr;
    const float* vs = Row::kScaled ? w.vs + c0 : nullptr;
    int idx[kMaxUses], lo_u[kMaxUses], hi_u[kMaxUses];
    int nu = 0;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t p = first + t;
      const int64_t lo = std::max({w.r0, (W > 0 ? p - W + 1 : 0) - w.base, c0}) - c0;
      const int64_t hi = std::min({w.r1, p - w.base + 1, c0 + n}) - c0;
      if (lo >= hi) continue;
      for (int g = 0; g < G; ++g) {
        const int tg = static_cast<int>(t * G + g);
        if constexpr (kShareRows<Row, DC>) {
          idx[nu] = tg;
          lo_u[nu] = static_cast<int>(lo);
          hi_u[nu] = static_cast<int>(hi);
          if (++nu == kMaxUses) {
            chunk_update_uses<Row, DC>(q, idx, nu, lo_u, hi_u, kc, vc, w.rb, n, ks, vs, m, l, acc);
            nu = 0;
          }
        } else {
          chunk_update<Row, DC>(q + tg * d, kc, vc, w.rb, d, n, static_cast<int>(lo), static_cast<int>(hi), ks, vs,
                                m[tg], l[tg], acc + tg * d);
        }
      }
    }
    if constexpr (kShareRows<Row, DC>) {
      if (nu > 0) chunk_update_uses<Row, DC>(q, idx, nu, lo_u, hi_u, kc, vc, w.rb, n, ks, vs, m, l, acc);
    }
  }
}

template <class Row>
void attend_tile_d(const TileWork& w, int64_t first, int64_t T, int G, int d, int64_t W, const float* q, float* m,
                   float* l, float* acc) {
  if (d == 64) return attend_tile<Row, 64>(w, first, T, G, d, W, q, m, l, acc);
  if (d == 128) return attend_tile<Row, 128>(w, first, T, G, d, W, q, m, l, acc);
  attend_tile<Row, 0>(w, first, T, G, d, W, q, m, l, acc);
}

// Reads the tile in its stored dtype when a row reader exists for it: false
// for int4 (decoded to a scratch tile instead).
bool attend_tile_stored(KvDtype dtype, const TileWork& w, int64_t first, int64_t T, int G, int d, int64_t W,
                        const float* q, float* m, float* l, float* acc) {
  switch (dtype) {
    case KvDtype::kF32:
      attend_tile_d<RowF32>(w, first, T, G, d, W, q, m, l, acc);
      return true;
    case KvDtype::kBF16:
      attend_tile_d<RowBF16>(w, first, T, G, d, W, q, m, l, acc);
      return true;
    case KvDtype::kF16:
      attend_tile_d<RowF16>(w, first, T, G, d, W, q, m, l, acc);
      return true;
    case KvDtype::kInt8:
      attend_tile_d<RowInt8>(w, first, T, G, d, W, q, m, l, acc);
      return true;
    case KvDtype::kInt4:
      return false;
  }
  return false;
}
#endif

// The kStoredRows, kDecodedTile and kScalar kernels: one tile at a time,
// with the online softmax below.
void run_item(ItemKernel kernel, const KvStorage& kv, int layer, const AttentionSeq& seq, int kv_head, int64_t t0,
              int64_t t1, const float* q, int64_t q_stride, float* out, int64_t out_stride, const AttentionShape& sh) {
  const KvLayout& lay = kv.layout();
  const int64_t P = lay.page_size;
  const int D = sh.head_dim;
  const int G = sh.n_heads / sh.n_kv_heads;
  const int64_t T = t1 - t0;
  const KvDtype dtype = lay.dtype;
  const int64_t W = sh.sliding_window;
#if !defined(PAGODA_AVX512F)
  (void)kernel;  // always kScalar below AVX-512
#endif
  Scratch& sc = thread_scratch();
  sc.kt.resize(static_cast<size_t>(D * P));
  sc.v.resize(static_cast<size_t>(P * D));
  sc.q.resize(static_cast<size_t>(T * G * D));
  sc.acc.assign(static_cast<size_t>(T * G * D), 0.0f);
  sc.m.assign(static_cast<size_t>(T * G), -std::numeric_limits<float>::infinity());
  sc.l.assign(static_cast<size_t>(T * G), 0.0f);
  sc.s.resize(static_cast<size_t>(P));
  sc.row.resize(static_cast<size_t>(D));

  for (int64_t t = 0; t < T; ++t) {
    const float* src = q + (seq.row + t0 + t) * q_stride + static_cast<int64_t>(kv_head) * G * D;
    float* dst = sc.q.data() + t * G * D;
    for (int64_t i = 0; i < G * D; ++i) dst[i] = src[i] * sh.scale;
  }

  const int64_t p_first = seq.first_pos + t0;     // earliest query position
  const int64_t p_last = seq.first_pos + t1 - 1;  // latest query position
  const int64_t k_lo = W > 0 ? std::max<int64_t>(0, p_first - W + 1) : 0;
  const int64_t k_hi = p_last;  // keys [k_lo, k_hi]

  for (int64_t b = k_lo / P; b <= k_hi / P; ++b) {
    const int32_t page = seq.page_table[static_cast<size_t>(b)];
    const int64_t base = b * P;
    const int64_t r0 = std::max(k_lo, base) - base;
    const int64_t r1 = std::min(k_hi, base + P - 1) - base + 1;  // rows [r0, r1)
    const uint8_t* ktile = kv.k_tile(layer, page, kv_head);
    const uint8_t* vtile = kv.v_tile(layer, page, kv_head);
    const float* kscale = kv.k_scales(layer, page, kv_head);
    const float* vscale = kv.v_scales(layer, page, kv_head);
    const size_t row_bytes = lay.row_bytes();
#if defined(PAGODA_AVX512F)
    if (b + 1 <= k_hi / P) {
      // Tiles are a few KB each, scattered over the pool: the hardware
      // prefetcher does not follow the page table, so fetch the next tile
      // while this one is computed.
      const int32_t next = seq.page_table[static_cast<size_t>(b + 1)];
      const char* nk = reinterpret_cast<const char*>(kv.k_tile(layer, next, kv_head));
      const char* nv = reinterpret_cast<const char*>(kv.v_tile(layer, next, kv_head));
      const size_t tile = static_cast<size_t>(P) * row_bytes;
      for (size_t off = 0; off < tile; off += 64) {
        _mm_prefetch(nk + off, _MM_HINT_T0);
        _mm_prefetch(nv + off, _MM_HINT_T0);
      }
    }
    if (kernel != ItemKernel::kScalar) {
      const int64_t first = seq.first_pos + t0;
      TileWork tw{ktile, vtile, row_bytes, kscale, vscale, r0, r1, base, P};
      // kStoredRows: few uses of each row; read the stored rows in place,
      // widening in registers. kDecodedTile: decode the visible rows to f32
      // once, then read those.
      if (kernel == ItemKernel::kStoredRows &&
          attend_tile_stored(dtype, tw, first, T, G, D, W, sc.q.data(), sc.m.data(), sc.l.data(), sc.acc.data()))
        continue;
      sc.k.resize(static_cast<size_t>(P * D));
      sc.v.resize(static_cast<size_t>(P * D));
      kv_rows::decode_tile_rows(dtype, ktile, vtile, row_bytes, kscale, vscale, r0, r1, D, sc.k.data(), sc.v.data());
      tw.k = reinterpret_cast<const uint8_t*>(sc.k.data());
      tw.v = reinterpret_cast<const uint8_t*>(sc.v.data());
      tw.rb = static_cast<size_t>(D) * sizeof(float);
      attend_tile_d<RowF32>(tw, first, T, G, D, W, sc.q.data(), sc.m.data(), sc.l.data(), sc.acc.data());
      continue;
    }
#endif
    // Decode the tile once for the whole group and every query token.
    for (int64_t r = r0; r < r1; ++r) {
      decode_row(dtype, ktile + r * row_bytes, kscale ? kscale[r] : 0.0f, D, sc.row.data());
      for (int d = 0; d < D; ++d) sc.kt[static_cast<size_t>(d * P + r)] = sc.row[static_cast<size_t>(d)];
      decode_row(dtype, vtile + r * row_bytes, vscale ? vscale[r] : 0.0f, D, sc.v.data() + r * D);
    }
    for (int64_t t = 0; t < T; ++t) {
      const int64_t p = seq.first_pos + t0 + t;
      // Rows this query may see: causal (k <= p) and inside its window.
      const int64_t vis_lo = std::max(r0, (W > 0 ? p - W + 1 : 0) - base);
      const int64_t vis_hi = std::min(r1, p - base + 1);
      if (vis_lo >= vis_hi) continue;
      for (int g = 0; g < G; ++g) {
        const float* qv = sc.q.data() + (t * G + g) * D;
        float* s = sc.s.data();
        tile_scores(qv, sc.kt.data(), P, D, vis_lo, vis_hi, s);
        float tile_max = s[vis_lo];
        for (int64_t r = vis_lo + 1; r < vis_hi; ++r) tile_max = std::max(tile_max, s[r]);
        float& m = sc.m[static_cast<size_t>(t * G + g)];
        float& l = sc.l[static_cast<size_t>(t * G + g)];
        float* acc = sc.acc.data() + (t * G + g) * D;
        const float m_new = std::max(m, tile_max);
        const float alpha = std::exp(m - m_new);  // exp(-inf) = 0 on the first tile
        l *= alpha;
        for (int64_t r = vis_lo; r < vis_hi; ++r) {  // the scores become the softmax weights
          s[r] = std::exp(s[r] - m_new);
          l += s[r];
        }
        tile_values(s, sc.v.data(), D, vis_lo, vis_hi, alpha, acc);
        m = m_new;
      }
    }
  }

  online_softmax::write_outputs(seq, t0, T, kv_head, G, D, sc.acc.data(), sc.l.data(), out, out_stride);
}

}  // namespace

void paged_attention(const KvStorage& kv, int layer, std::span<const AttentionSeq> seqs, const float* q,
                     int64_t q_stride, float* out, int64_t out_stride, const AttentionShape& shape) {
  static thread_local std::vector<WorkItem> items;
  items.clear();
  for (size_t i = 0; i < seqs.size(); ++i)
    for (int h = 0; h < shape.n_kv_heads; ++h)
      for (int64_t t0 = 0; t0 < seqs[i].n_q; t0 += kQueryBlock)
        items.push_back({static_cast<int32_t>(i), h, t0, std::min(seqs[i].n_q, t0 + kQueryBlock)});
  const int64_t n = static_cast<int64_t>(items.size());
  const std::vector<WorkItem>& work = items;
  const int group = shape.n_heads / shape.n_kv_heads;
  const KvDtype dtype = kv.layout().dtype;
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
  for (int64_t i = 0; i < n; ++i) {
    const WorkItem& w = work[static_cast<size_t>(i)];
    const AttentionSeq& seq = seqs[static_cast<size_t>(w.seq)];
    const ItemKernel kernel = choose_item_kernel(w.t1 - w.t0, group, shape.head_dim, dtype);
    switch (kernel) {
      case ItemKernel::kDecode:
        attend_decode(kv, layer, seq, w.kv_head, w.t0, q, q_stride, out, out_stride, shape);
        break;
      case ItemKernel::kLanes:
        attend_uses_in_lanes(kv, layer, seq, w.kv_head, w.t0, w.t1, q, q_stride, out, out_stride, shape);
        break;
      case ItemKernel::kBlocks8:
        attend_blocks8(kv, layer, seq, w.kv_head, w.t0, w.t1, q, q_stride, out, out_stride, shape);
        break;
      default:
        run_item(kernel, kv, layer, seq, w.kv_head, w.t0, w.t1, q, q_stride, out, out_stride, shape);
    }
  }
}

void register_attention_kernels(KernelTable& table) { table.paged_attention_fn = &paged_attention; }

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda
