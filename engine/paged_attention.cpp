#include "engine/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <omp.h>

#include "engine/simd_exp.h"
#include "kvpool/kv_codec.h"

namespace pagoda {
namespace {

constexpr int64_t kQueryBlock = 16;  // query tokens per work item

struct WorkItem {
  int32_t seq;
  int32_t kv_head;
  int64_t t0, t1;  // query tokens [t0, t1) of the sequence
};

// Per-thread buffers, grown on demand and reused across calls.
struct Scratch {
  std::vector<float> kt;     // K tile transposed: [head_dim][page_size]
  std::vector<float> v;      // V tile: [page_size][head_dim]
  std::vector<float> k;      // K tile (AVX-512 path): [page_size][head_dim]
  std::vector<float> q;      // scaled queries: [tokens][group][head_dim]
  std::vector<float> acc;    // accumulators: [tokens][group][head_dim]
  std::vector<float> m, l;   // running max and sum: [tokens][group]
  std::vector<float> s;      // one score row of the tile: [page_size]
  std::vector<float> row;    // one decoded row: [head_dim]
};

Scratch& thread_scratch() {
  static thread_local Scratch scratch;
  return scratch;
}

#if defined(__AVX512F__)
constexpr int kChunk = 16;  // KV rows per vector of scores

// Lane i (< n) = dot(q, k + i * D) over D floats (D % 16 == 0); lanes >= n
// are 0 and their rows are not read.
inline __m512 dots16(const float* q, const float* k, int D, int n) {
  __m512 part[kChunk];
  for (int i = 0; i < kChunk; ++i) {
    if (i >= n) {
      part[i] = _mm512_setzero_ps();
      continue;
    }
    const float* kr = k + static_cast<int64_t>(i) * D;
    __m512 a = _mm512_mul_ps(_mm512_loadu_ps(q), _mm512_loadu_ps(kr));
    for (int d = 16; d < D; d += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), _mm512_loadu_ps(kr + d), a);
    part[i] = a;
  }
  return simd::sum16x16(part);
}

// dots16 for a full chunk of 16 rows and a compile-time head_dim: q stays
// in registers and the loops unroll.
template <int D>
inline __m512 dots16_full(const float* q, const float* k) {
  __m512 qv[D / 16];
  for (int c = 0; c < D / 16; ++c) qv[c] = _mm512_loadu_ps(q + 16 * c);
  __m512 part[kChunk];
  for (int i = 0; i < kChunk; ++i) {
    const float* kr = k + i * D;
    __m512 a = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kr));
    for (int c = 1; c < D / 16; ++c) a = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kr + 16 * c), a);
    part[i] = a;
  }
  return simd::sum16x16(part);
}

inline __m512 chunk_dots(const float* q, const float* k, int D, int n) {
  if (n == kChunk) {
    if (D == 64) return dots16_full<64>(q, k);
    if (D == 128) return dots16_full<128>(q, k);
  }
  return dots16(q, k, D, n);
}

// acc = acc * alpha + sum_{r in [lo, hi)} pr[r] * v[r] for a compile-time
// head_dim: the accumulator lives in registers, two independent FMA chains.
template <int D>
inline void accumulate_v(float* acc, float alpha, const float* pr, const float* v, int lo, int hi) {
  constexpr int C = D / 16;
  __m512 a0[C], a1[C];
  const __m512 va = _mm512_set1_ps(alpha);
  for (int c = 0; c < C; ++c) {
    a0[c] = _mm512_mul_ps(_mm512_loadu_ps(acc + 16 * c), va);
    a1[c] = _mm512_setzero_ps();
  }
  int r = lo;
  for (; r + 2 <= hi; r += 2) {
    const __m512 p0 = _mm512_set1_ps(pr[r]), p1 = _mm512_set1_ps(pr[r + 1]);
    const float* v0 = v + r * D;
    for (int c = 0; c < C; ++c) {
      a0[c] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0 + 16 * c), a0[c]);
      a1[c] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(v0 + D + 16 * c), a1[c]);
    }
  }
  if (r < hi) {
    const __m512 p0 = _mm512_set1_ps(pr[r]);
    for (int c = 0; c < C; ++c) a0[c] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v + r * D + 16 * c), a0[c]);
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(acc + 16 * c, _mm512_add_ps(a0[c], a1[c]));
}

// One query head (scaled q) against KV rows [lo, hi) of a chunk of n <= 16
// rows starting at k / v (f32, row stride D): the online-softmax update of
// its running max m, sum l and accumulator acc[D].
inline void chunk_update(const float* q, const float* k, const float* v, int D, int n, int lo,
                         int hi, float& m, float& l, float* acc) {
  const __mmask16 vis = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
  const __m512 s = _mm512_mask_blend_ps(vis, _mm512_set1_ps(-std::numeric_limits<float>::infinity()),
                                        chunk_dots(q, k, D, n));
  const float m_new = std::max(m, _mm512_mask_reduce_max_ps(vis, s));
  const float alpha = std::exp(m - m_new);  // exp(-inf) = 0 on the first chunk
  const __m512 p = _mm512_maskz_mov_ps(vis, simd::exp512(_mm512_sub_ps(s, _mm512_set1_ps(m_new))));
  l = l * alpha + _mm512_reduce_add_ps(p);
  alignas(64) float pr[kChunk];
  _mm512_store_ps(pr, p);
  m = m_new;
  if (D == 64) return accumulate_v<64>(acc, alpha, pr, v, lo, hi);
  if (D == 128) return accumulate_v<128>(acc, alpha, pr, v, lo, hi);
  const __m512 va = _mm512_set1_ps(alpha);
  for (int d = 0; d < D; d += 16) {
    __m512 a = _mm512_mul_ps(_mm512_loadu_ps(acc + d), va);
    for (int r = lo; r < hi; ++r)
      a = _mm512_fmadd_ps(_mm512_set1_ps(pr[r]), _mm512_loadu_ps(v + static_cast<int64_t>(r) * D + d), a);
    _mm512_storeu_ps(acc + d, a);
  }
}
#endif

void run_item(const KvStorage& kv, int layer, const AttentionSeq& seq, int kv_head, int64_t t0,
              int64_t t1, const float* q, int64_t q_stride, float* out, int64_t out_stride,
              const AttentionShape& sh) {
  const KvLayout& lay = kv.layout();
  const int64_t P = lay.page_size;
  const int D = sh.head_dim;
  const int G = sh.n_heads / sh.n_kv_heads;
  const int64_t T = t1 - t0;
  const KvDtype dtype = lay.dtype;
  const int64_t W = sh.sliding_window;
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

  const int64_t p_first = seq.first_pos + t0;      // earliest query position
  const int64_t p_last = seq.first_pos + t1 - 1;   // latest query position
  const int64_t k_lo = W > 0 ? std::max<int64_t>(0, p_first - W + 1) : 0;
  const int64_t k_hi = p_last;                      // keys [k_lo, k_hi]

  for (int64_t b = k_lo / P; b <= k_hi / P; ++b) {
    const int32_t page = seq.block_table[static_cast<size_t>(b)];
    const int64_t base = b * P;
    const int64_t r0 = std::max(k_lo, base) - base;
    const int64_t r1 = std::min(k_hi, base + P - 1) - base + 1;  // rows [r0, r1)
    const uint8_t* ktile = kv.k_tile(layer, page, kv_head);
    const uint8_t* vtile = kv.v_tile(layer, page, kv_head);
    const float* kscale = kv.k_scales(layer, page, kv_head);
    const float* vscale = kv.v_scales(layer, page, kv_head);
    const size_t row_bytes = lay.row_bytes();
#if defined(__AVX512F__)
    if (b + 1 <= k_hi / P) {
      // Tiles are a few KB each, scattered over the pool: the hardware
      // prefetcher does not follow the block table, so fetch the next tile
      // while this one is computed.
      const int32_t next = seq.block_table[static_cast<size_t>(b + 1)];
      const char* nk = reinterpret_cast<const char*>(kv.k_tile(layer, next, kv_head));
      const char* nv = reinterpret_cast<const char*>(kv.v_tile(layer, next, kv_head));
      const size_t tile = static_cast<size_t>(P) * row_bytes;
      for (size_t off = 0; off < tile; off += 64) {
        _mm_prefetch(nk + off, _MM_HINT_T0);
        _mm_prefetch(nv + off, _MM_HINT_T0);
      }
    }
    if (D % 16 == 0) {
      // K and V rows as f32 [P][D]: the tile itself for f32, else decoded
      // once (rows [r0, r1); other rows are only ever masked out).
      const float* kf = reinterpret_cast<const float*>(ktile);
      const float* vf = reinterpret_cast<const float*>(vtile);
      if (dtype != KvDtype::kF32) {
        sc.k.resize(static_cast<size_t>(P * D));
        sc.v.resize(static_cast<size_t>(P * D));
        for (int64_t r = r0; r < r1; ++r) {
          decode_row(dtype, ktile + r * row_bytes, kscale ? kscale[r] : 0.0f, D, sc.k.data() + r * D);
          decode_row(dtype, vtile + r * row_bytes, vscale ? vscale[r] : 0.0f, D, sc.v.data() + r * D);
        }
        kf = sc.k.data();
        vf = sc.v.data();
      }
      for (int64_t c0 = r0 / kChunk * kChunk; c0 < r1; c0 += kChunk) {
        const int n = static_cast<int>(std::min<int64_t>(kChunk, P - c0));
        for (int64_t t = 0; t < T; ++t) {
          const int64_t p = seq.first_pos + t0 + t;
          const int64_t lo = std::max({r0, (W > 0 ? p - W + 1 : 0) - base, c0}) - c0;
          const int64_t hi = std::min({r1, p - base + 1, c0 + n}) - c0;
          if (lo >= hi) continue;
          for (int g = 0; g < G; ++g) {
            const size_t tg = static_cast<size_t>(t * G + g);
            chunk_update(sc.q.data() + tg * D, kf + c0 * D, vf + c0 * D, D, n, static_cast<int>(lo),
                         static_cast<int>(hi), sc.m[tg], sc.l[tg], sc.acc.data() + tg * D);
          }
        }
      }
      continue;
    }
#endif
    // Decode the tile once for the whole group and every query token.
    for (int64_t r = r0; r < r1; ++r) {
      decode_row(dtype, ktile + r * row_bytes, kscale ? kscale[r] : 0.0f, D, sc.row.data());
      for (int d = 0; d < D; ++d) sc.kt[static_cast<size_t>(d * P + r)] = sc.row[static_cast<size_t>(d)];
      decode_row(dtype, vtile + r * row_bytes, vscale ? vscale[r] : 0.0f, D,
                 sc.v.data() + r * D);
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
        for (int64_t r = vis_lo; r < vis_hi; ++r) s[r] = 0.0f;
        for (int d = 0; d < D; ++d) {  // s[r] += q[d] * K[r][d], vectorized over r
          const float qd = qv[d];
          const float* kd = sc.kt.data() + d * P;
          for (int64_t r = vis_lo; r < vis_hi; ++r) s[r] += qd * kd[r];
        }
        float tile_max = s[vis_lo];
        for (int64_t r = vis_lo + 1; r < vis_hi; ++r) tile_max = std::max(tile_max, s[r]);
        float& m = sc.m[static_cast<size_t>(t * G + g)];
        float& l = sc.l[static_cast<size_t>(t * G + g)];
        float* acc = sc.acc.data() + (t * G + g) * D;
        const float m_new = std::max(m, tile_max);
        const float alpha = std::exp(m - m_new);  // exp(-inf) = 0 on the first tile
        l *= alpha;
        for (int d = 0; d < D; ++d) acc[d] *= alpha;
        for (int64_t r = vis_lo; r < vis_hi; ++r) {
          const float pr = std::exp(s[r] - m_new);
          l += pr;
          const float* vr = sc.v.data() + r * D;
          for (int d = 0; d < D; ++d) acc[d] += pr * vr[d];
        }
        m = m_new;
      }
    }
  }

  for (int64_t t = 0; t < T; ++t) {
    float* dst = out + (seq.row + t0 + t) * out_stride + static_cast<int64_t>(kv_head) * G * D;
    for (int g = 0; g < G; ++g) {
      const float l = sc.l[static_cast<size_t>(t * G + g)];
      const float inv = l > 0 ? 1.0f / l : 0.0f;
      const float* acc = sc.acc.data() + (t * G + g) * D;
      for (int d = 0; d < D; ++d) dst[g * D + d] = acc[d] * inv;
    }
  }
}

}  // namespace

void paged_attention(const KvStorage& kv, int layer, std::span<const AttentionSeq> seqs,
                     const float* q, int64_t q_stride, float* out, int64_t out_stride,
                     const AttentionShape& shape) {
  static thread_local std::vector<WorkItem> items;
  items.clear();
  for (size_t i = 0; i < seqs.size(); ++i)
    for (int h = 0; h < shape.n_kv_heads; ++h)
      for (int64_t t0 = 0; t0 < seqs[i].n_q; t0 += kQueryBlock)
        items.push_back({static_cast<int32_t>(i), h, t0, std::min(seqs[i].n_q, t0 + kQueryBlock)});
  const int64_t n = static_cast<int64_t>(items.size());
  const std::vector<WorkItem>& work = items;
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
  for (int64_t i = 0; i < n; ++i) {
    const WorkItem& w = work[static_cast<size_t>(i)];
    run_item(kv, layer, seqs[static_cast<size_t>(w.seq)], w.kv_head, w.t0, w.t1, q, q_stride,
             out, out_stride, shape);
  }
}

}  // namespace pagoda
