#include <algorithm>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/kernels/isa_begin.h"
#include "engine/kernels/attention/attention_blocks8.h"
#include "engine/kernels/attention/attention_softmax.h"
#include "engine/kernels/simd_exp.h"
#include "kvpool/kv_codec.h"

namespace pagoda {
PAGODA_ISA_NAMESPACE_BEGIN

#if defined(PAGODA_AVX2)
namespace {

constexpr int kBlock = 8;          // keys per vector
constexpr int kUseGroup = 4;       // uses scored together
constexpr int kMaxDimVectors = 8;  // accumulator vectors held in registers (64 dims)

// Per-thread buffers, grown on demand and reused across calls.
struct Blocks8Scratch {
  std::vector<float> q;     // scaled queries: [uses rounded up to kUseGroup][D] (padding rows 0)
  std::vector<float> acc;   // accumulators: [uses][D]
  std::vector<float> m, l;  // running max and sum: [uses]
  std::vector<float> kt;    // the tile's K transposed: [D][P8] (P8: page size rounded up to kBlock)
  std::vector<float> k, v;  // the tile's K / V rows decoded to f32 (dtypes other than f32): [P][D]
  std::vector<float> s;     // one tile's scores, then weights: [padded uses][P8]
  std::vector<float> zero;  // a row of D zeros (rows of a block outside the visible ones)
};

Blocks8Scratch& blocks8_scratch() {
  static thread_local Blocks8Scratch scratch;
  return scratch;
}

// dst + j * dst_stride (8 floats) = element d + j of rows[0..7], for j < 8.
inline void transpose8(const float* const* rows, int d, float* dst, int64_t dst_stride) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(rows[i] + d);
  for (int i = 0; i < 4; ++i) {  // t[2i] = [a0 b0 a1 b1 | a4 b4 a5 b5], t[2i+1] = [a2 b2 a3 b3 | a6 b6 a7 b7]
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 4h..4h+3: column c of them in the halves of r[4h + c % 4]
    r[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
    r[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
    r[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
    r[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    _mm256_storeu_ps(dst + c * dst_stride, _mm256_permute2f128_ps(r[c], r[4 + c], 0x20));
    _mm256_storeu_ps(dst + (c + 4) * dst_stride, _mm256_permute2f128_ps(r[c], r[4 + c], 0x31));
  }
}

// Scores of kUseGroup uses (queries q + u * D) against KB key blocks starting
// at block kb of the transposed tile kt (row d at kt + d * P8): written to
// s + u * P8 + 8 * (kb + b). 4 x KB independent FMA chains over the dims.
template <int KB>
inline void score_blocks(const float* q, int D, const float* kt, int64_t P8, int64_t kb, float* s) {
  __m256 a[kUseGroup][KB];
  for (int u = 0; u < kUseGroup; ++u)
    for (int b = 0; b < KB; ++b) a[u][b] = _mm256_setzero_ps();
  const float* kcol = kt + kBlock * kb;
  for (int d = 0; d < D; ++d) {
    __m256 kv[KB];
    for (int b = 0; b < KB; ++b) kv[b] = _mm256_loadu_ps(kcol + d * P8 + kBlock * b);
    for (int u = 0; u < kUseGroup; ++u) {
      const __m256 qv = _mm256_broadcast_ss(q + u * D + d);
      for (int b = 0; b < KB; ++b) a[u][b] = _mm256_fmadd_ps(qv, kv[b], a[u][b]);
    }
  }
  for (int u = 0; u < kUseGroup; ++u)
    for (int b = 0; b < KB; ++b) _mm256_storeu_ps(s + u * P8 + kBlock * (kb + b), a[u][b]);
}

inline float hmax(__m256 x) {
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

inline float hsum(__m256 x) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

// Lanes i of key block kb with lo <= 8 * kb + i < hi, as an all-ones mask.
inline __m256 block_mask(int64_t kb, int64_t lo, int64_t hi) {
  const __m256i idx =
      _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(kBlock * kb)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i ge_lo = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(static_cast<int>(lo) - 1));
  const __m256i lt_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(hi)), idx);
  return _mm256_castsi256_ps(_mm256_and_si256(ge_lo, lt_hi));
}

// The online-softmax step of one use over its visible keys [lo, hi) of the
// tile (scores in s, one row): updates the running max m and sum l, turns
// s[lo, hi) into the weights and returns the factor that rescales the
// accumulator so far.
inline float softmax_tile(float* s, int64_t lo, int64_t hi, float& m, float& l) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 mx = ninf;
  for (int64_t kb = lo / kBlock; kb * kBlock < hi; ++kb)
    mx = _mm256_max_ps(mx, _mm256_blendv_ps(ninf, _mm256_loadu_ps(s + kBlock * kb), block_mask(kb, lo, hi)));
  const float m_new = std::max(m, hmax(mx));
  const float alpha = std::exp(m - m_new);  // exp(-inf) = 0 on the first tile
  const __m256 mv = _mm256_set1_ps(m_new);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t kb = lo / kBlock; kb * kBlock < hi; ++kb) {
    const __m256 p =
        _mm256_and_ps(block_mask(kb, lo, hi), simd::exp256(_mm256_sub_ps(_mm256_loadu_ps(s + kBlock * kb), mv)));
    _mm256_storeu_ps(s + kBlock * kb, p);
    sum = _mm256_add_ps(sum, p);
  }
  l = l * alpha + hsum(sum);
  m = m_new;
  return alpha;
}

// acc[0, 8 NC) = acc * alpha + sum_{r in [lo, hi)} p[r] * v[r * v_stride + (0 .. 8 NC)].
template <int NC>
inline void values_chunk(const float* p, const float* v, int64_t v_stride, int64_t lo, int64_t hi, float alpha,
                         float* acc) {
  __m256 a[NC];
  const __m256 al = _mm256_set1_ps(alpha);
  for (int c = 0; c < NC; ++c) a[c] = _mm256_mul_ps(_mm256_loadu_ps(acc + kBlock * c), al);
  for (int64_t r = lo; r < hi; ++r) {
    const __m256 pr = _mm256_broadcast_ss(p + r);
    const float* vr = v + r * v_stride;
    for (int c = 0; c < NC; ++c) a[c] = _mm256_fmadd_ps(pr, _mm256_loadu_ps(vr + kBlock * c), a[c]);
  }
  for (int c = 0; c < NC; ++c) _mm256_storeu_ps(acc + kBlock * c, a[c]);
}

// The same over all D dims (a multiple of 8), 64 at a time.
inline void tile_values(const float* p, const float* v, int64_t v_stride, int D, int64_t lo, int64_t hi, float alpha,
                        float* acc) {
  for (int d0 = 0; d0 < D; d0 += kBlock * kMaxDimVectors) {
    const int nc = std::min(kMaxDimVectors, (D - d0) / kBlock);
    const float* vd = v + d0;
    float* ad = acc + d0;
    switch (nc) {
      case 8:
        values_chunk<8>(p, vd, v_stride, lo, hi, alpha, ad);
        break;
      case 7:
        values_chunk<7>(p, vd, v_stride, lo, hi, alpha, ad);
        break;
      case 6:
        values_chunk<6>(p, vd, v_stride, lo, hi, alpha, ad);
        break;
      case 5:
        values_chunk<5>(p, vd, v_stride, lo, hi, alpha, ad);
        break;
      case 4:
        values_chunk<4>(p, vd, v_stride, lo, hi, alpha, ad);
        break;
      case 3:
        values_chunk<3>(p, vd, v_stride, lo, hi, alpha, ad);
        break;
      case 2:
        values_chunk<2>(p, vd, v_stride, lo, hi, alpha, ad);
        break;
      default:
        values_chunk<1>(p, vd, v_stride, lo, hi, alpha, ad);
        break;
    }
  }
}

// Fetches a tile's rows into L1 (a decode item's tiles are scattered over
// the pool; the hardware prefetcher does not follow the page table).
inline void fetch_tile(const uint8_t* p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T0);
}

}  // namespace

bool blocks8_kernel_supports(int head_dim) { return head_dim > 0 && head_dim % kBlock == 0; }

void attend_blocks8(const KvStorage& kv, int layer, const AttentionSeq& seq, int kv_head, int64_t t0, int64_t t1,
                    const float* q, int64_t q_stride, float* out, int64_t out_stride, const AttentionShape& sh) {
  const KvLayout& lay = kv.layout();
  const int64_t P = lay.page_size;
  const int64_t P8 = (P + kBlock - 1) / kBlock * kBlock;
  const int D = sh.head_dim;
  const int G = sh.n_heads / sh.n_kv_heads;
  const int64_t T = t1 - t0;
  const int64_t U = T * G;  // use u = t * G + g
  const int64_t U4 = (U + kUseGroup - 1) / kUseGroup * kUseGroup;
  const KvDtype dtype = lay.dtype;
  const size_t rb = lay.row_bytes();
  const int64_t W = sh.sliding_window;

  Blocks8Scratch& sc = blocks8_scratch();
  sc.q.assign(static_cast<size_t>(U4 * D), 0.0f);
  sc.acc.assign(static_cast<size_t>(U * D), 0.0f);
  sc.m.assign(static_cast<size_t>(U), -std::numeric_limits<float>::infinity());
  sc.l.assign(static_cast<size_t>(U), 0.0f);
  sc.kt.resize(static_cast<size_t>(D * P8));
  sc.s.resize(static_cast<size_t>(U4 * P8));
  sc.zero.assign(static_cast<size_t>(D), 0.0f);
  if (dtype != KvDtype::kF32) {
    sc.k.resize(static_cast<size_t>(P * D));
    sc.v.resize(static_cast<size_t>(P * D));
  }
  for (int64_t t = 0; t < T; ++t) {
    const float* src = q + (seq.row + t0 + t) * q_stride + static_cast<int64_t>(kv_head) * G * D;
    float* dst = sc.q.data() + t * G * D;
    for (int64_t i = 0; i < G * D; ++i) dst[i] = src[i] * sh.scale;
  }

  const int64_t p_first = seq.first_pos + t0;  // earliest query position
  const int64_t k_lo = W > 0 ? std::max<int64_t>(0, p_first - W + 1) : 0;
  const int64_t k_hi = seq.first_pos + t1 - 1;  // keys [k_lo, k_hi]
  for (int64_t b = k_lo / P; b <= k_hi / P; ++b) {
    const int32_t page = seq.page_table[static_cast<size_t>(b)];
    const int64_t base = b * P;
    const int64_t r0 = std::max(k_lo, base) - base;
    const int64_t r1 = std::min(k_hi, base + P - 1) - base + 1;  // rows [r0, r1)
    const uint8_t* ktile = kv.k_tile(layer, page, kv_head);
    const uint8_t* vtile = kv.v_tile(layer, page, kv_head);
    if (b + 1 <= k_hi / P) {
      const int32_t next = seq.page_table[static_cast<size_t>(b + 1)];
      fetch_tile(kv.k_tile(layer, next, kv_head), lay.tile_bytes());
      fetch_tile(kv.v_tile(layer, next, kv_head), lay.tile_bytes());
    }

    // K rows of the visible blocks as f32 (in place or decoded), transposed;
    // the rows of those blocks outside [r0, r1) read as zeros.
    const float* krow;
    const float* vrows;
    int64_t row_stride;  // floats between K rows, and between V rows
    if (dtype == KvDtype::kF32) {
      krow = reinterpret_cast<const float*>(ktile);
      vrows = reinterpret_cast<const float*>(vtile);
      row_stride = static_cast<int64_t>(rb / sizeof(float));
    } else {
      const float* ks = kv.k_scales(layer, page, kv_head);
      const float* vs = kv.v_scales(layer, page, kv_head);
      for (int64_t r = r0; r < r1; ++r) {
        decode_row(dtype, ktile + r * rb, ks ? ks[r] : 0.0f, D, sc.k.data() + r * D);
        decode_row(dtype, vtile + r * rb, vs ? vs[r] : 0.0f, D, sc.v.data() + r * D);
      }
      krow = sc.k.data();
      vrows = sc.v.data();
      row_stride = D;
    }
    const int64_t kb_lo = r0 / kBlock, kb_hi = (r1 - 1) / kBlock + 1;  // key blocks [kb_lo, kb_hi)
    for (int64_t kb = kb_lo; kb < kb_hi; ++kb) {
      const float* rows[kBlock];
      for (int i = 0; i < kBlock; ++i) {
        const int64_t r = kBlock * kb + i;
        rows[i] = r >= r0 && r < r1 ? krow + r * row_stride : sc.zero.data();
      }
      for (int d = 0; d < D; d += kBlock) transpose8(rows, d, sc.kt.data() + d * P8 + kBlock * kb, P8);
    }

    // Scores of every use against the visible blocks, then per use the
    // online softmax and the weighted V rows.
    for (int64_t u0 = 0; u0 < U4; u0 += kUseGroup) {
      const float* qg = sc.q.data() + u0 * D;
      float* sg = sc.s.data() + u0 * P8;
      int64_t kb = kb_lo;
      for (; kb + 2 <= kb_hi; kb += 2) score_blocks<2>(qg, D, sc.kt.data(), P8, kb, sg);
      if (kb < kb_hi) score_blocks<1>(qg, D, sc.kt.data(), P8, kb, sg);
    }
    for (int64_t t = 0; t < T; ++t) {
      const int64_t p = seq.first_pos + t0 + t;
      // Rows this query may see: causal (k <= p) and inside its window.
      const int64_t vis_lo = std::max(r0, (W > 0 ? p - W + 1 : 0) - base);
      const int64_t vis_hi = std::min(r1, p - base + 1);
      if (vis_lo >= vis_hi) continue;
      for (int g = 0; g < G; ++g) {
        const int64_t u = t * G + g;
        float* s = sc.s.data() + u * P8;
        const float alpha = softmax_tile(s, vis_lo, vis_hi, sc.m[static_cast<size_t>(u)], sc.l[static_cast<size_t>(u)]);
        tile_values(s, vrows, row_stride, D, vis_lo, vis_hi, alpha, sc.acc.data() + u * D);
      }
    }
  }

  online_softmax::write_outputs(seq, t0, T, kv_head, G, D, sc.acc.data(), sc.l.data(), out, out_stride);
}

#else

bool blocks8_kernel_supports(int) { return false; }
void attend_blocks8(const KvStorage&, int, const AttentionSeq&, int, int64_t, int64_t, const float*, int64_t, float*,
                    int64_t, const AttentionShape&) {}

#endif

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda
