#include "engine/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <omp.h>

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
