// The online softmax of the attention kernels: its end for every kernel
// (the outputs divided by the running sums), and its step for the AVX-512
// ones (attention_lanes.cpp: one query per lane; attention_decode.cpp: one
// query per 128-bit block; only defined with AVX-512F). Header-only,
// stateless, thread-safe.
#pragma once

#if !defined(PAGODA_ISA_BEGUN)
#error "a kernel helper header: include it after engine/kernels/isa_begin.h"
#endif

#include <cstdint>
#include <limits>

#include "engine/kernels/attention/paged_attention.h"
#include "engine/kernels/simd_exp.h"

namespace pagoda::online_softmax {
PAGODA_ISA_NAMESPACE_BEGIN

// The output rows of query tokens t0 + [0, T) of `seq`, the G group heads of
// `kv_head`: head g of token t gets acc[u] / l[u] for use u = t * G + g
// (acc: D floats per use); a use that saw no key (l = 0) gets zeros.
inline void write_outputs(const AttentionSeq& seq, int64_t t0, int64_t T, int kv_head, int G, int D, const float* acc,
                          const float* l, float* out, int64_t out_stride) {
  for (int64_t t = 0; t < T; ++t) {
    float* dst = out + (seq.row + t0 + t) * out_stride + static_cast<int64_t>(kv_head) * G * D;
    for (int g = 0; g < G; ++g) {
      const int64_t u = t * G + g;
      const float inv = l[u] > 0 ? 1.0f / l[u] : 0.0f;
      for (int d = 0; d < D; ++d) dst[g * D + d] = acc[u * D + d] * inv;
    }
  }
}

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda::online_softmax

#if defined(PAGODA_AVX512F)

namespace pagoda::online_softmax {
PAGODA_ISA_NAMESPACE_BEGIN

// Lanes [lo, hi) of a 16-lane vector (the visible keys of a 16-key chunk).
inline __mmask16 key_lanes(int lo, int hi) { return static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1)); }

// How lanes map to queries, for the max and sum over one query's lanes.
struct PerLane {  // every lane is its own query
  static __m512 max(__m512 x) { return x; }
  static __m512 sum(__m512 x) { return x; }
};
struct PerBlock {  // the 4 lanes of each 128-bit block are one query
  static __m512 max(__m512 x) {
    x = _mm512_max_ps(x, _mm512_permute_ps(x, 0x4E));
    return _mm512_max_ps(x, _mm512_permute_ps(x, 0xB1));
  }
  static __m512 sum(__m512 x) {
    x = _mm512_add_ps(x, _mm512_permute_ps(x, 0x4E));
    return _mm512_add_ps(x, _mm512_permute_ps(x, 0xB1));
  }
};

// One step over N score vectors s (lanes outside vis[i] are ignored): the
// running max m and sum l (equal across a query's lanes) are updated, the
// weights go to p[i] (0 outside vis[i]), and the factor that rescales the
// accumulators so far, exp(m_old - m_new), is returned. A query that has
// seen no key keeps max -inf; 0 is subtracted there instead, so no
// -inf - -inf appears and its weights and factor come out 0.
template <class Queries, int N>
inline __m512 step(const __m512* s, const __mmask16* vis, __m512& m, __m512& l, __m512* p) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 mx = ninf;
  for (int i = 0; i < N; ++i) mx = _mm512_max_ps(mx, _mm512_mask_blend_ps(vis[i], ninf, s[i]));
  const __m512 m_new = _mm512_max_ps(m, Queries::max(mx));
  const __m512 m_sub = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m_new, ninf, _CMP_NEQ_OQ), m_new);
  const __m512 alpha = simd::exp512(_mm512_sub_ps(m, m_sub));
  __m512 sum = _mm512_setzero_ps();
  for (int i = 0; i < N; ++i) {
    p[i] = _mm512_maskz_mov_ps(vis[i], simd::exp512(_mm512_sub_ps(s[i], m_sub)));
    sum = _mm512_add_ps(sum, p[i]);
  }
  l = _mm512_fmadd_ps(l, alpha, Queries::sum(sum));
  m = m_new;
  return alpha;
}

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda::online_softmax

#endif
