#include <algorithm>

#include <limits>
#include <type_traits>
#include <vector>

#include "engine/kernels/isa_begin.h"
#include "engine/kernels/attention/attention_decode.h"
#include "engine/kernels/attention/attention_rows.h"
#include "engine/kernels/attention/attention_softmax.h"
#include "kvpool/kv_codec.h"

namespace pagoda {
PAGODA_ISA_NAMESPACE_BEGIN

#if defined(PAGODA_AVX512F)
namespace {

using kv_rows::RowBF16;
using kv_rows::RowF16;
using kv_rows::RowF32;
using kv_rows::RowInt8;

constexpr int kHeads = 4;  // group heads per pass, one per 128-bit block
constexpr int kKeys = 16;  // keys per online-softmax step (one chunk)
constexpr int kMaxDim = 128;
constexpr int64_t kL2TilesAhead = 2;  // the tile fetched whole into L2 while one is computed

// Per-thread buffers, grown on demand and reused across calls.
struct DecodeScratch {
  std::vector<float> kf;    // one chunk's K rows widened to f32: [kKeys][head_dim]
  std::vector<float> k, v;  // an int4 tile decoded to f32: [page_size][head_dim]
};

DecodeScratch& decode_scratch() {
  static thread_local DecodeScratch scratch;
  return scratch;
}

// A view (owns nothing) of one tile: its stored rows (row r at k + r * rb)
// and int8 row scales, and the next tile's rows and scales, fetched row by
// row while this one is computed (a decode item's tiles are scattered over
// the pool and the hardware prefetcher does not follow the page table;
// nullptr: none).
struct Tile {
  const uint8_t* k;
  const uint8_t* v;
  size_t rb;
  const float* ks;
  const float* vs;
  const uint8_t* next_k = nullptr;
  const uint8_t* next_v = nullptr;
  const float* next_ks = nullptr;
  const float* next_vs = nullptr;
};

// Running state of one pass (four group heads, head u in 128-bit block u).
struct PassState {
  alignas(64) float qm[kMaxDim / 4][16];        // qm[b][4u + j] = scaled q of head u, dim 4b + j
  alignas(64) float acc[kHeads][kMaxDim] = {};  // unnormalized outputs
  __m512 m;                                     // running max of head u in all lanes of block u
  __m512 l;                                     // running sum, same layout
};

// Fetches rows [lo, hi) of the next tile.
inline void fetch_next_rows(const Tile& t, int64_t lo, int64_t hi) {
  if (t.next_k == nullptr) return;
  for (int64_t r = lo; r < hi; ++r)
    for (size_t off = 0; off < t.rb; off += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(t.next_k + r * t.rb + off), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(t.next_v + r * t.rb + off), _MM_HINT_T0);
    }
}

// Fetches `bytes` of a tile into L2.
inline void fetch_tile_l2(const uint8_t* p, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T1);
}

// Fetches the next tile's scales of rows [lo, hi) (int8; whole lines).
inline void fetch_next_scales(const Tile& t, int64_t lo, int64_t hi) {
  if (t.next_ks == nullptr) return;
  for (int64_t r = lo / 16 * 16; r < hi; r += 16) {
    _mm_prefetch(reinterpret_cast<const char*>(t.next_ks + r), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(t.next_vs + r), _MM_HINT_T0);
  }
}

// Scores of keys c0 + [0, kKeys) of a tile for the pass's four heads:
// sc[k] lane 4u + l = head u's score of key 4k + l (keys outside [i_lo,
// i_hi) repeat a visible key's score or 0, and are masked later). Per key, a vector sums qm[b] times the
// key's dims 4b..4b+3 broadcast to every block; block_sums8 then adds each
// block's 4 lanes for 8 keys at once. K rows stored narrower than f32 are
// widened into kf first; f32 rows are read in place.
template <class Row, int DC>
void chunk_scores(const Tile& t, int64_t c0, int i_lo, int i_hi, const PassState& st, float* kf, __m512* sc) {
  // Rows outside [i_lo, i_hi) alias a visible row, so nothing outside the
  // tile (or stale scratch) is read.
  const float* kr[kKeys];
  if constexpr (std::is_same_v<Row, RowF32>) {
    for (int i = 0; i < kKeys; ++i)
      kr[i] = reinterpret_cast<const float*>(t.k + (c0 + std::clamp(i, i_lo, i_hi - 1)) * t.rb);
  } else {
    for (int i = i_lo; i < i_hi; ++i)
      for (int c = 0; c < DC / 16; ++c) _mm512_storeu_ps(kf + i * DC + 16 * c, Row::load(t.k + (c0 + i) * t.rb, c));
    for (int i = 0; i < kKeys; ++i) kr[i] = kf + std::clamp(i, i_lo, i_hi - 1) * DC;
  }
  for (int g = 0; g < 2; ++g) {                // keys 8g .. 8g + 7
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
    simd::block_sums8(s, sc + 2 * g);
  }
}

// Row scales of keys c0 + [0, kKeys) laid out like the scores (lane 4u + l
// of vector k = scale of key 4k + l); scales outside `keys` read as 0.
inline void chunk_scales(const float* scales, int64_t c0, __mmask16 keys, __m512* out) {
  const __m512 s = _mm512_maskz_loadu_ps(keys, scales + c0);
  out[0] = _mm512_shuffle_f32x4(s, s, 0x00);
  out[1] = _mm512_shuffle_f32x4(s, s, 0x55);
  out[2] = _mm512_shuffle_f32x4(s, s, 0xAA);
  out[3] = _mm512_shuffle_f32x4(s, s, 0xFF);
}

// Keys c0 + [i_lo, i_hi) of a tile (all visible to the query) through the
// online softmax of the pass's four heads. kf: scratch for kKeys widened K
// rows.
template <class Row, int DC>
void attend_chunk(const Tile& t, int64_t c0, int i_lo, int i_hi, PassState& st, float* kf) {
  __m512 sc[4];
  chunk_scores<Row, DC>(t, c0, i_lo, i_hi, st, kf, sc);
  const __mmask16 keys = online_softmax::key_lanes(i_lo, i_hi);
  __mmask16 vis[4];
  for (int k = 0; k < 4; ++k) vis[k] = static_cast<__mmask16>(((keys >> (4 * k)) & 0xF) * 0x1111u);
  __m512 scale[4];
  if constexpr (Row::kScaled) {
    chunk_scales(t.ks, c0, keys, scale);
    for (int k = 0; k < 4; ++k) sc[k] = _mm512_mul_ps(sc[k], scale[k]);
  }
  __m512 p[4];
  const __m512 alpha = online_softmax::step<online_softmax::PerBlock, 4>(sc, vis, st.m, st.l, p);
  alignas(64) float pr[4][16];  // pr[k][4u + l]: head u's weight of key 4k + l
  if constexpr (Row::kScaled) chunk_scales(t.vs, c0, keys, scale);
  for (int k = 0; k < 4; ++k) _mm512_store_ps(pr[k], Row::kScaled ? _mm512_mul_ps(p[k], scale[k]) : p[k]);
  alignas(64) float al[16];
  _mm512_store_ps(al, alpha);

  // acc_u = acc_u * alpha_u + sum_i pr(u, i) * V row i: each V row widened
  // once for the four heads, 64 columns of accumulators in registers; the
  // next tile's row i is fetched along.
  fetch_next_scales(t, c0 + i_lo, c0 + i_hi);
  for (int h = 0; h < DC / 64; ++h) {
    __m512 a[kHeads][4];
    for (int u = 0; u < kHeads; ++u) {
      const __m512 au = _mm512_set1_ps(al[4 * u]);
      for (int c = 0; c < 4; ++c) a[u][c] = _mm512_mul_ps(_mm512_load_ps(st.acc[u] + 64 * h + 16 * c), au);
    }
    for (int i = i_lo; i < i_hi; ++i) {
      if (h == 0) fetch_next_rows(t, c0 + i, c0 + i + 1);
      const uint8_t* vr = t.v + (c0 + i) * t.rb;
      __m512 v[4];
      for (int c = 0; c < 4; ++c) v[c] = Row::load(vr, 4 * h + c);
      const float* pi = &pr[i >> 2][i & 3];
      for (int u = 0; u < kHeads; ++u) {
        const __m512 pu = _mm512_set1_ps(pi[4 * u]);
        for (int c = 0; c < 4; ++c) a[u][c] = _mm512_fmadd_ps(pu, v[c], a[u][c]);
      }
    }
    for (int u = 0; u < kHeads; ++u)
      for (int c = 0; c < 4; ++c) _mm512_store_ps(st.acc[u] + 64 * h + 16 * c, a[u][c]);
  }
}

// Rows [r0, r1) of one tile, kKeys-aligned chunks at a time.
template <class Row, int DC>
void attend_tile(const Tile& t, int64_t r0, int64_t r1, PassState& st, float* kf) {
  // The chunks fetch the next tile's rows [r0, r1); below the window's start
  // here (a tile with a next one ends at its last row, so r1 = page size).
  fetch_next_rows(t, 0, r0);
  fetch_next_scales(t, 0, r0);
  for (int64_t c0 = r0 / kKeys * kKeys; c0 < r1; c0 += kKeys) {
    const int i_lo = static_cast<int>(std::max<int64_t>(r0 - c0, 0));
    const int i_hi = static_cast<int>(std::min<int64_t>(r1 - c0, kKeys));
    attend_chunk<Row, DC>(t, c0, i_lo, i_hi, st, kf);
  }
}

// Four group heads (q rows and out rows DC floats apart) of the query at
// position `pos` against its visible keys.
template <int DC>
void attend_pass(const KvStorage& kv, int layer, const AttentionSeq& seq, int kv_head, int64_t pos, const float* q,
                 float* out, const AttentionShape& sh, DecodeScratch& sc) {
  const KvLayout& lay = kv.layout();
  const int64_t P = lay.page_size;
  const size_t rb = lay.row_bytes();
  PassState st;
  for (int b = 0; b < DC / 4; ++b)
    for (int u = 0; u < kHeads; ++u)
      for (int j = 0; j < 4; ++j) st.qm[b][4 * u + j] = q[u * DC + 4 * b + j] * sh.scale;
  st.m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  st.l = _mm512_setzero_ps();

  const int64_t W = sh.sliding_window;
  const int64_t k_lo = W > 0 ? std::max<int64_t>(0, pos - W + 1) : 0;  // keys [k_lo, pos]
  for (int64_t b = k_lo / P; b <= pos / P; ++b) {
    const int32_t page = seq.page_table[static_cast<size_t>(b)];
    const int64_t base = b * P;
    const int64_t r0 = std::max(k_lo, base) - base;
    const int64_t r1 = std::min(pos, base + P - 1) - base + 1;
    Tile t{kv.k_tile(layer, page, kv_head), kv.v_tile(layer, page, kv_head), rb, kv.k_scales(layer, page, kv_head),
           kv.v_scales(layer, page, kv_head)};
    // The tile after the next one goes to L2 now: one tile of compute (~100
    // ns for 16 keys) is shorter than a DRAM access, so fetching only the
    // next tile left the kernel waiting on memory (2 tiles ahead: -9% to -13%
    // per attention call at 16 sequences, contexts 200-512; 3 or 4 ahead
    // were slower).
    if (b + kL2TilesAhead <= pos / P) {
      const int32_t after = seq.page_table[static_cast<size_t>(b + kL2TilesAhead)];
      const int64_t rows = std::min<int64_t>(P, pos - (b + kL2TilesAhead) * P + 1);
      fetch_tile_l2(kv.k_tile(layer, after, kv_head), rows * rb);
      fetch_tile_l2(kv.v_tile(layer, after, kv_head), rows * rb);
    }
    if (b + 1 <= pos / P) {
      const int32_t next = seq.page_table[static_cast<size_t>(b + 1)];
      t.next_k = kv.k_tile(layer, next, kv_head);
      t.next_v = kv.v_tile(layer, next, kv_head);
      t.next_ks = kv.k_scales(layer, next, kv_head);
      t.next_vs = kv.v_scales(layer, next, kv_head);
    }
    switch (lay.dtype) {
      case KvDtype::kF32:
        attend_tile<RowF32, DC>(t, r0, r1, st, sc.kf.data());
        break;
      case KvDtype::kBF16:
        attend_tile<RowBF16, DC>(t, r0, r1, st, sc.kf.data());
        break;
      case KvDtype::kF16:
        attend_tile<RowF16, DC>(t, r0, r1, st, sc.kf.data());
        break;
      case KvDtype::kInt8:
        attend_tile<RowInt8, DC>(t, r0, r1, st, sc.kf.data());
        break;
      case KvDtype::kInt4: {
        // Decoded to f32 scratch (no in-register int4 reader); the next
        // stored tile is fetched whole before.
        fetch_next_rows(t, 0, P);
        fetch_next_scales(t, 0, P);
        sc.k.resize(static_cast<size_t>(P * DC));
        sc.v.resize(static_cast<size_t>(P * DC));
        kv_rows::decode_tile_rows(lay.dtype, t.k, t.v, rb, t.ks, t.vs, r0, r1, DC, sc.k.data(), sc.v.data());
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

void attend_decode(const KvStorage& kv, int layer, const AttentionSeq& seq, int kv_head, int64_t t, const float* q,
                   int64_t q_stride, float* out, int64_t out_stride, const AttentionShape& sh) {
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
void attend_decode(const KvStorage&, int, const AttentionSeq&, int, int64_t, const float*, int64_t, float*, int64_t,
                   const AttentionShape&) {}

#endif

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda
