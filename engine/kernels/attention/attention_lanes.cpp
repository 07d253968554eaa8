#include <algorithm>

#include <limits>
#include <vector>

#include "engine/kernels/isa_begin.h"
#include "engine/kernels/attention/attention_lanes.h"
#include "engine/kernels/attention/attention_softmax.h"
#include "kvpool/kv_codec.h"

namespace pagoda {
PAGODA_ISA_NAMESPACE_BEGIN

#if defined(PAGODA_AVX512F)
namespace {

constexpr int kLanes = 16;  // uses per vector
constexpr int kKeys = 16;   // keys per online-softmax step (one block)

// Per-thread buffers, grown on demand and reused across calls.
struct LanesScratch {
  std::vector<float> qt;     // scaled queries, transposed: [head_dim][padded uses]
  std::vector<float> acc;    // accumulators: [padded uses][head_dim]
  std::vector<float> m, l;   // running max and sum: [padded uses]
  std::vector<int32_t> pos;  // each use's query position (-1: padding, sees nothing)
  std::vector<float> k, v;   // one block's rows decoded to f32: [kKeys][head_dim]
};

LanesScratch& lanes_scratch() {
  static thread_local LanesScratch scratch;
  return scratch;
}

// One block of keys c0 + [0, kKeys) (rows k / v, DC floats each; only rows
// [i_lo, i_hi) hold keys of the sequence) against one vector of 16 uses:
// qt = their transposed queries (row d at qt + d * q_rows), pos = their
// positions, m / l / acc = their running max, sum and accumulators.
template <int DC>
void attend_block(const float* qt, int64_t q_rows, const int32_t* pos, int64_t c0, int i_lo, int i_hi, int32_t window,
                  const float* k, const float* v, float* m, float* l, float* acc) {
  // Scores: s[i] lane u = q_u . k_i, as 16 independent FMA chains.
  __m512 s[kKeys];
  for (int i = 0; i < kKeys; ++i) s[i] = _mm512_setzero_ps();
  for (int d = 0; d < DC; ++d) {
    const __m512 qv = _mm512_loadu_ps(qt + d * q_rows);
    for (int i = 0; i < kKeys; ++i) s[i] = _mm512_fmadd_ps(qv, _mm512_set1_ps(k[i * DC + d]), s[i]);
  }
  // Visibility per key and lane (causal and windowed), then the online
  // softmax, lane-wise for all 16 uses.
  const __m512i pv = _mm512_loadu_si512(pos);
  __mmask16 vis[kKeys];
  for (int i = 0; i < kKeys; ++i) {
    vis[i] = 0;
    if (i >= i_lo && i < i_hi) {
      const __m512i kp = _mm512_set1_epi32(static_cast<int32_t>(c0 + i));
      vis[i] = _mm512_cmple_epi32_mask(kp, pv);
      if (window > 0) vis[i] &= _mm512_cmplt_epi32_mask(_mm512_sub_epi32(pv, kp), _mm512_set1_epi32(window));
    }
  }
  __m512 mv = _mm512_loadu_ps(m), lv = _mm512_loadu_ps(l), pw[kKeys];
  const __m512 alpha = online_softmax::step<online_softmax::PerLane, kKeys>(s, vis, mv, lv, pw);
  _mm512_storeu_ps(m, mv);
  _mm512_storeu_ps(l, lv);
  alignas(64) float p[kKeys][kLanes];
  for (int i = 0; i < kKeys; ++i) _mm512_store_ps(p[i], pw[i]);
  alignas(64) float al[kLanes];
  _mm512_store_ps(al, alpha);
  // acc_u = acc_u * alpha_u + sum_i p[i][u] * v_i, 16 columns at a time with
  // the 16 uses' accumulators in registers; each V vector is loaded once.
  for (int c = 0; c < DC / 16; ++c) {
    __m512 a[kLanes];
    for (int u = 0; u < kLanes; ++u)
      a[u] = _mm512_mul_ps(_mm512_loadu_ps(acc + u * DC + 16 * c), _mm512_set1_ps(al[u]));
    for (int i = i_lo; i < i_hi; ++i) {
      const __m512 vr = _mm512_loadu_ps(v + i * DC + 16 * c);
      for (int u = 0; u < kLanes; ++u) a[u] = _mm512_fmadd_ps(_mm512_set1_ps(p[i][u]), vr, a[u]);
    }
    for (int u = 0; u < kLanes; ++u) _mm512_storeu_ps(acc + u * DC + 16 * c, a[u]);
  }
}

template <int DC>
void attend_item(const KvStorage& kv, int layer, const AttentionSeq& seq, int kv_head, int64_t t0, int64_t t1,
                 const float* q, int64_t q_stride, float* out, int64_t out_stride, const AttentionShape& sh) {
  const KvLayout& lay = kv.layout();
  const int64_t P = lay.page_size;
  const int G = sh.n_heads / sh.n_kv_heads;
  const int64_t T = t1 - t0;
  const int64_t n_uses = T * G;  // use u = t * G + g
  const int64_t n_vec = (n_uses + kLanes - 1) / kLanes;
  const int64_t rows = n_vec * kLanes;
  LanesScratch& sc = lanes_scratch();
  sc.qt.assign(static_cast<size_t>(DC * rows), 0.0f);
  sc.acc.assign(static_cast<size_t>(rows * DC), 0.0f);
  sc.m.assign(static_cast<size_t>(rows), -std::numeric_limits<float>::infinity());
  sc.l.assign(static_cast<size_t>(rows), 0.0f);
  sc.pos.assign(static_cast<size_t>(rows), -1);
  sc.k.resize(static_cast<size_t>(kKeys * DC));
  sc.v.resize(static_cast<size_t>(kKeys * DC));
  for (int64_t t = 0; t < T; ++t) {
    const float* src = q + (seq.row + t0 + t) * q_stride + static_cast<int64_t>(kv_head) * G * DC;
    for (int g = 0; g < G; ++g) {
      const int64_t u = t * G + g;
      for (int d = 0; d < DC; ++d) sc.qt[static_cast<size_t>(d * rows + u)] = src[g * DC + d] * sh.scale;
      sc.pos[static_cast<size_t>(u)] = static_cast<int32_t>(seq.first_pos + t0 + t);
    }
  }

  const int64_t W = sh.sliding_window;
  const int32_t window = W > 0 ? static_cast<int32_t>(std::min<int64_t>(W, std::numeric_limits<int32_t>::max())) : 0;
  const int64_t k_lo = W > 0 ? std::max<int64_t>(0, seq.first_pos + t0 - W + 1) : 0;
  const int64_t k_hi = seq.first_pos + t1 - 1;  // keys [k_lo, k_hi]: the only rows read
  const size_t rb = lay.row_bytes();
  for (int64_t c0 = k_lo / kKeys * kKeys; c0 <= k_hi; c0 += kKeys) {
    const int i_lo = static_cast<int>(std::max<int64_t>(k_lo - c0, 0));
    const int i_hi = static_cast<int>(std::min<int64_t>(k_hi - c0 + 1, kKeys));
    const float* kc = sc.k.data();
    const float* vc = sc.v.data();
    if (lay.dtype == KvDtype::kF32 && P % kKeys == 0 && i_lo == 0 && i_hi == kKeys) {
      // A whole block inside one page: read the f32 rows in place.
      const int32_t page = seq.page_table[static_cast<size_t>(c0 / P)];
      const int64_t r = c0 % P;
      kc = reinterpret_cast<const float*>(kv.k_tile(layer, page, kv_head) + r * rb);
      vc = reinterpret_cast<const float*>(kv.v_tile(layer, page, kv_head) + r * rb);
    } else {
      for (int i = i_lo; i < i_hi; ++i) {
        const int64_t kp = c0 + i;
        const int32_t page = seq.page_table[static_cast<size_t>(kp / P)];
        const int64_t r = kp % P;
        const float* ks = kv.k_scales(layer, page, kv_head);
        const float* vs = kv.v_scales(layer, page, kv_head);
        decode_row(lay.dtype, kv.k_tile(layer, page, kv_head) + r * rb, ks ? ks[r] : 0.0f, DC, sc.k.data() + i * DC);
        decode_row(lay.dtype, kv.v_tile(layer, page, kv_head) + r * rb, vs ? vs[r] : 0.0f, DC, sc.v.data() + i * DC);
      }
    }
    for (int64_t j = 0; j < n_vec; ++j) {
      const int64_t u0 = j * kLanes;
      attend_block<DC>(sc.qt.data() + u0, rows, sc.pos.data() + u0, c0, i_lo, i_hi, window, kc, vc, sc.m.data() + u0,
                       sc.l.data() + u0, sc.acc.data() + u0 * DC);
    }
  }

  online_softmax::write_outputs(seq, t0, T, kv_head, G, DC, sc.acc.data(), sc.l.data(), out, out_stride);
}

}  // namespace

bool lanes_kernel_supports(int head_dim) {
  return head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128;
}

void attend_uses_in_lanes(const KvStorage& kv, int layer, const AttentionSeq& seq, int kv_head, int64_t t0, int64_t t1,
                          const float* q, int64_t q_stride, float* out, int64_t out_stride, const AttentionShape& sh) {
  switch (sh.head_dim) {
    case 16:
      return attend_item<16>(kv, layer, seq, kv_head, t0, t1, q, q_stride, out, out_stride, sh);
    case 32:
      return attend_item<32>(kv, layer, seq, kv_head, t0, t1, q, q_stride, out, out_stride, sh);
    case 64:
      return attend_item<64>(kv, layer, seq, kv_head, t0, t1, q, q_stride, out, out_stride, sh);
    case 128:
      return attend_item<128>(kv, layer, seq, kv_head, t0, t1, q, q_stride, out, out_stride, sh);
    default:
      break;
  }
}

#else

bool lanes_kernel_supports(int) { return false; }
void attend_uses_in_lanes(const KvStorage&, int, const AttentionSeq&, int, int64_t, int64_t, const float*, int64_t,
                          float*, int64_t, const AttentionShape&) {}

#endif

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda
