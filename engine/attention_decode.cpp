#include "engine/attention_decode.h"

#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "engine/attention_rows.h"
#include "engine/simd_exp.h"
#include "kvpool/kv_codec.h"

namespace pagoda {

#if defined(__AVX512F__)
namespace {

using kv_rows::RowBF16;
using kv_rows::RowF16;
using kv_rows::RowF32;
using kv_rows::RowInt8;

constexpr int kHeads = 4;    // group heads per pass, one per 128-bit block
constexpr int kKeys = 16;    // keys per online-softmax step (one chunk)
constexpr int kMaxDim = 128;

// Per-thread buffers, grown on demand and reused across calls.
struct DecodeScratch {
  std::vector<float> kf;    // one chunk's K rows widened to f32: [kKeys][head_dim]
  std::vector<float> k, v;  // an int4 tile decoded to f32: [page_size][head_dim]
};

DecodeScratch& decode_scratch() {
  static thread_local DecodeScratch scratch;
  return scratch;
}

// The stored rows of one tile (row r at k + r * rb) and int8 row scales; the
// next tile's rows and scales, fetched row by row while this one is computed
// (a decode item's tiles are scattered over the pool and the hardware
// prefetcher does not follow the block table; nullptr: none).
struct Tile {
  const uint8_t* k;
  const uint8_t* v;
  size_t rb;
  const float* ks;
  const float* vs;
  const char* next_k = nullptr;
  const char* next_v = nullptr;
  const float* next_ks = nullptr;
  const float* next_vs = nullptr;
};

// Running state of one pass (four group heads, head u in 128-bit block u).
struct PassState {
  alignas(64) float qm[kMaxDim / 4][16];  // qm[b][4u + j] = scaled q of head u, dim 4b + j
  alignas(64) float acc[kHeads][kMaxDim];  // unnormalized outputs
  __m512 m;                                // running max of head u in all lanes of block u
  __m512 l;                                // running sum, same layout
};

// Lanes of each 128-bit block reduced: every lane of block u = op over its 4.
inline __m512 block_max(__m512 x) {
  x = _mm512_max_ps(x, _mm512_permute_ps(x, 0x4E));
  return _mm512_max_ps(x, _mm512_permute_ps(x, 0xB1));
}
inline __m512 block_sum(__m512 x) {
  x = _mm512_add_ps(x, _mm512_permute_ps(x, 0x4E));
  return _mm512_add_ps(x, _mm512_permute_ps(x, 0xB1));
}

// Keys c0 + [i_lo, i_hi) of a tile (all visible to the query) through the
// online softmax of the pass's four heads. kf: scratch for kKeys widened K
// rows (unused for f32 rows, read in place).
template <class Row, int DC>
void attend_chunk(const Tile& t, int64_t c0, int i_lo, int i_hi, PassState& st, float* kf) {
  if (t.next_ks != nullptr) {
    _mm_prefetch(reinterpret_cast<const char*>(t.next_ks + c0), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(t.next_vs + c0), _MM_HINT_T0);
  }
  // K rows as f32. Rows outside [i_lo, i_hi) alias a visible row: their
  // scores are computed and then masked, so nothing outside the tile is read.
  const float* kr[kKeys];
  if constexpr (std::is_same_v<Row, RowF32>) {
    for (int i = 0; i < kKeys; ++i)
      kr[i] = reinterpret_cast<const float*>(t.k + (c0 + std::clamp(i, i_lo, i_hi - 1)) * t.rb);
  } else {
    for (int i = i_lo; i < i_hi; ++i)
      for (int c = 0; c < DC / 16; ++c) _mm512_storeu_ps(kf + i * DC + 16 * c, Row::load(t.k + (c0 + i) * t.rb, c));
    for (int i = 0; i < kKeys; ++i) kr[i] = kf + std::clamp(i, i_lo, i_hi - 1) * DC;
  }

  // Scores: sc[k] lane 4u + l = head u's score of key 4k + l. Per key, the
  // vector s sums qm[b] * (dims 4b..4b+3 of the key in every block); two
  // transpose stages then add each block's 4 lanes for 8 keys at once.
  __m512 sc[4];
  for (int g = 0; g < 2; ++g) {
    if (8 * g >= i_hi || 8 * g + 8 <= i_lo) {  // no visible key in this half
      sc[2 * g] = sc[2 * g + 1] = _mm512_setzero_ps();
      continue;
    }
    __m512 s[8];
    for (int k = 0; k < 8; ++k) s[k] = _mm512_setzero_ps();
    for (int h = 0; h < DC / 64; ++h) {
      __m512 qv[16];
      for (int b = 0; b < 16; ++b) qv[b] = _mm512_load_ps(st.qm[16 * h + b]);
      for (int b = 0; b < 16; ++b)
        for (int k = 0; k < 8; ++k)
          s[k] = _mm512_fmadd_ps(qv[b], _mm512_broadcast_f32x4(_mm_loadu_ps(kr[8 * g + k] + 64 * h + 4 * b)), s[k]);
    }
    __m512 a[4];  // block u: [x0+x2, y0+y2, x1+x3, y1+y3] of keys x = 2p, y = 2p + 1
    for (int p = 0; p < 4; ++p)
      a[p] = _mm512_add_ps(_mm512_unpacklo_ps(s[2 * p], s[2 * p + 1]), _mm512_unpackhi_ps(s[2 * p], s[2 * p + 1]));
    for (int r = 0; r < 2; ++r) {  // block u: the sums of keys 4r .. 4r + 3 of this half
      const __m512d x = _mm512_castps_pd(a[2 * r]), y = _mm512_castps_pd(a[2 * r + 1]);
      sc[2 * g + r] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                                    _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
  }
  // Online softmax for the four heads at once.
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const unsigned keys = ((1u << i_hi) - 1) & ~((1u << i_lo) - 1);
  __mmask16 vis[4];
  __m512 mx = ninf;
  for (int k = 0; k < 4; ++k) {
    const unsigned bits = (keys >> (4 * k)) & 0xF;
    vis[k] = static_cast<__mmask16>(bits * 0x1111u);
    if constexpr (Row::kScaled)
      sc[k] = _mm512_mul_ps(sc[k], _mm512_broadcast_f32x4(_mm_maskz_loadu_ps(static_cast<__mmask8>(bits), t.ks + c0 + 4 * k)));
    sc[k] = _mm512_mask_blend_ps(vis[k], ninf, sc[k]);
    mx = _mm512_max_ps(mx, sc[k]);
  }
  const __m512 m_new = _mm512_max_ps(st.m, block_max(mx));
  // A head that has seen no key keeps max -inf: subtract 0 there (no -inf - -inf).
  const __m512 m_sub = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m_new, ninf, _CMP_NEQ_OQ), m_new);
  const __m512 alpha = simd::exp512(_mm512_sub_ps(st.m, m_sub));
  alignas(64) float pr[4][16];  // pr[k][4u + l]: head u's weight of key 4k + l
  __m512 sum = _mm512_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    __m512 p = _mm512_maskz_mov_ps(vis[k], simd::exp512(_mm512_sub_ps(sc[k], m_sub)));
    sum = _mm512_add_ps(sum, p);
    if constexpr (Row::kScaled) {
      const unsigned bits = (keys >> (4 * k)) & 0xF;
      p = _mm512_mul_ps(p, _mm512_broadcast_f32x4(_mm_maskz_loadu_ps(static_cast<__mmask8>(bits), t.vs + c0 + 4 * k)));
    }
    _mm512_store_ps(pr[k], p);
  }
  st.l = _mm512_fmadd_ps(st.l, alpha, block_sum(sum));
  st.m = m_new;
  alignas(64) float al[16];
  _mm512_store_ps(al, alpha);

  // acc_u = acc_u * alpha_u + sum_i pr(u, i) * V row i: each V row widened
  // once for the four heads, 64 columns of accumulators in registers.
  for (int h = 0; h < DC / 64; ++h) {
    __m512 a[kHeads][4];
    for (int u = 0; u < kHeads; ++u) {
      const __m512 au = _mm512_set1_ps(al[4 * u]);
      for (int c = 0; c < 4; ++c) a[u][c] = _mm512_mul_ps(_mm512_load_ps(st.acc[u] + 64 * h + 16 * c), au);
    }
    for (int i = i_lo; i < i_hi; ++i) {
      if (h == 0 && t.next_k != nullptr) {
        for (size_t off = 0; off < t.rb; off += 64) {
          _mm_prefetch(t.next_k + (c0 + i) * t.rb + off, _MM_HINT_T0);
          _mm_prefetch(t.next_v + (c0 + i) * t.rb + off, _MM_HINT_T0);
        }
      }
      const uint8_t* vr = t.v + (c0 + i) * t.rb;
      __m512 v[4];
      for (int c = 0; c < 4; ++c) v[c] = Row::load(vr, 4 * h + c);
      const float* pi = &pr[i >> 2][i & 3];
      for (int u = 0; u < kHeads; ++u) {
        const __m512 p = _mm512_set1_ps(pi[4 * u]);
        for (int c = 0; c < 4; ++c) a[u][c] = _mm512_fmadd_ps(p, v[c], a[u][c]);
      }
    }
    for (int u = 0; u < kHeads; ++u)
      for (int c = 0; c < 4; ++c) _mm512_store_ps(st.acc[u] + 64 * h + 16 * c, a[u][c]);
  }
}

// Rows [r0, r1) of one tile, kKeys-aligned chunks at a time.
template <class Row, int DC>
void attend_tile(const Tile& t, int64_t r0, int64_t r1, PassState& st, float* kf) {
  for (int64_t c0 = r0 / kKeys * kKeys; c0 < r1; c0 += kKeys) {
    const int i_lo = static_cast<int>(std::max<int64_t>(r0 - c0, 0));
    const int i_hi = static_cast<int>(std::min<int64_t>(r1 - c0, kKeys));
    attend_chunk<Row, DC>(t, c0, i_lo, i_hi, st, kf);
  }
}

// Four group heads (q rows and out rows DC floats apart) of the query at
// position `pos` against its visible keys.
template <int DC>
void attend_pass(const KvStorage& kv, int layer, const AttentionSeq& seq, int kv_head, int64_t pos,
                 const float* q, float* out, const AttentionShape& sh, DecodeScratch& sc) {
  const KvLayout& lay = kv.layout();
  const int64_t P = lay.page_size;
  const size_t rb = lay.row_bytes();
  PassState st;
  for (int b = 0; b < DC / 4; ++b)
    for (int u = 0; u < kHeads; ++u)
      for (int j = 0; j < 4; ++j) st.qm[b][4 * u + j] = q[u * DC + 4 * b + j] * sh.scale;
  std::fill(&st.acc[0][0], &st.acc[0][0] + kHeads * kMaxDim, 0.0f);
  st.m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  st.l = _mm512_setzero_ps();

  const int64_t W = sh.sliding_window;
  const int64_t k_lo = W > 0 ? std::max<int64_t>(0, pos - W + 1) : 0;  // keys [k_lo, pos]
  for (int64_t b = k_lo / P; b <= pos / P; ++b) {
    const int32_t page = seq.block_table[static_cast<size_t>(b)];
    const int64_t base = b * P;
    const int64_t r0 = std::max(k_lo, base) - base;
    const int64_t r1 = std::min(pos, base + P - 1) - base + 1;
    Tile t{kv.k_tile(layer, page, kv_head), kv.v_tile(layer, page, kv_head), rb,
           kv.k_scales(layer, page, kv_head), kv.v_scales(layer, page, kv_head)};
    if (b + 1 <= pos / P) {
      const int32_t next = seq.block_table[static_cast<size_t>(b + 1)];
      t.next_k = reinterpret_cast<const char*>(kv.k_tile(layer, next, kv_head));
      t.next_v = reinterpret_cast<const char*>(kv.v_tile(layer, next, kv_head));
      t.next_ks = kv.k_scales(layer, next, kv_head);
      t.next_vs = kv.v_scales(layer, next, kv_head);
    }
    switch (lay.dtype) {
      case KvDtype::kF32: attend_tile<RowF32, DC>(t, r0, r1, st, sc.kf.data()); break;
      case KvDtype::kBF16: attend_tile<RowBF16, DC>(t, r0, r1, st, sc.kf.data()); break;
      case KvDtype::kF16: attend_tile<RowF16, DC>(t, r0, r1, st, sc.kf.data()); break;
      case KvDtype::kInt8: attend_tile<RowInt8, DC>(t, r0, r1, st, sc.kf.data()); break;
      case KvDtype::kInt4: {
        sc.k.resize(static_cast<size_t>(P * DC));
        sc.v.resize(static_cast<size_t>(P * DC));
        for (int64_t r = r0; r < r1; ++r) {
          decode_row(lay.dtype, t.k + r * rb, t.ks ? t.ks[r] : 0.0f, DC, sc.k.data() + r * DC);
          decode_row(lay.dtype, t.v + r * rb, t.vs ? t.vs[r] : 0.0f, DC, sc.v.data() + r * DC);
        }
        const Tile f{reinterpret_cast<const uint8_t*>(sc.k.data()), reinterpret_cast<const uint8_t*>(sc.v.data()),
                     DC * sizeof(float), nullptr, nullptr};
        attend_tile<RowF32, DC>(f, r0, r1, st, sc.kf.data());
        break;
      }
    }
  }

  alignas(64) float l[16];
  _mm512_store_ps(l, st.l);
  for (int u = 0; u < kHeads; ++u) {
    const float inv = l[4 * u] > 0 ? 1.0f / l[4 * u] : 0.0f;
    for (int d = 0; d < DC; ++d) out[u * DC + d] = st.acc[u][d] * inv;
  }
}

}  // namespace

bool decode_kernel_supports(int group, int head_dim) {
  return (group == 4 || group == 8) && (head_dim == 64 || head_dim == 128);
}

void attend_decode(const KvStorage& kv, int layer, const AttentionSeq& seq, int kv_head, int64_t t,
                   const float* q, int64_t q_stride, float* out, int64_t out_stride,
                   const AttentionShape& sh) {
  const int G = sh.n_heads / sh.n_kv_heads;
  const int D = sh.head_dim;
  const int64_t pos = seq.first_pos + t;
  const float* qrow = q + (seq.row + t) * q_stride + static_cast<int64_t>(kv_head) * G * D;
  float* orow = out + (seq.row + t) * out_stride + static_cast<int64_t>(kv_head) * G * D;
  DecodeScratch& sc = decode_scratch();
  sc.kf.resize(static_cast<size_t>(kKeys * D));
  for (int g0 = 0; g0 < G; g0 += kHeads) {
    if (D == 64) attend_pass<64>(kv, layer, seq, kv_head, pos, qrow + g0 * D, orow + g0 * D, sh, sc);
    else attend_pass<128>(kv, layer, seq, kv_head, pos, qrow + g0 * D, orow + g0 * D, sh, sc);
  }
}

#else

bool decode_kernel_supports(int, int) { return false; }
void attend_decode(const KvStorage&, int, const AttentionSeq&, int, int64_t, const float*, int64_t,
                   float*, int64_t, const AttentionShape&) {}

#endif

}  // namespace pagoda
