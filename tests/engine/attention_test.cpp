// Paged attention against a plain reference that materializes every score:
// MHA, GQA and MQA; with and without a sliding window; every page size and KV
// dtype; prefill chunks, decode tokens and several sequences in one call.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/kernels/attention/paged_attention.h"
#include "kvpool/kv_codec.h"
#include "tests/engine/isa_levels.h"

using namespace pagoda;

namespace {

// One sequence's KV as plain floats: [pos][kv_head][head_dim].
struct PlainSeq {
  std::vector<float> k, v;
  std::vector<int32_t> page_table;
  int64_t len = 0;
};

// softmax(q k^T * scale) v over keys 0..p (inside the window), per head.
void reference_attention(const PlainSeq& s, const float* q, int64_t p, const AttentionShape& sh, float* out) {
  const int G = sh.n_heads / sh.n_kv_heads, D = sh.head_dim;
  for (int h = 0; h < sh.n_heads; ++h) {
    const int kvh = h / G;
    std::vector<double> scores;
    std::vector<int64_t> keys;
    for (int64_t k = 0; k <= p; ++k) {
      if (sh.sliding_window > 0 && p - k >= sh.sliding_window) continue;
      double dot = 0;
      for (int d = 0; d < D; ++d) dot += double(q[h * D + d]) * s.k[(k * sh.n_kv_heads + kvh) * D + d];
      scores.push_back(dot * sh.scale);
      keys.push_back(k);
    }
    const double mx = *std::max_element(scores.begin(), scores.end());
    double sum = 0;
    for (double& x : scores) sum += (x = std::exp(x - mx));
    for (int d = 0; d < D; ++d) {
      double acc = 0;
      for (size_t i = 0; i < keys.size(); ++i) acc += scores[i] / sum * s.v[(keys[i] * sh.n_kv_heads + kvh) * D + d];
      out[h * D + d] = static_cast<float>(acc);
    }
  }
}

// The error bound of one stored value, relative to the row's max |x|.
double dtype_tolerance(KvDtype dt) {
  switch (dt) {
    case KvDtype::kF32:
      return 1e-5;
    case KvDtype::kBF16:
      return 1e-2;
    case KvDtype::kF16:
      return 2e-3;
    case KvDtype::kInt8:
      return 1.5e-2;  // half a step of maxabs/127, accumulated over the softmax
    case KvDtype::kInt4:
      return 2.5e-1;  // half a step of maxabs/7
  }
  return 0;
}

struct Case {
  int n_heads, n_kv_heads, head_dim, page_size;
  int64_t window;
  KvDtype dtype;
  int64_t max_q = 20;  // query tokens per sequence: its last min(len, max_q) positions
};

void run_case(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int D = c.head_dim, KVH = c.n_kv_heads, H = c.n_heads;
  const int64_t P = c.page_size;
  // Context lengths per sequence; 45 ends in the middle of a 16-key chunk.
  const std::vector<int64_t> lens = {1, 37, 3 * P + 5, 2 * P, 45};
  int64_t pages_needed = 1;
  for (int64_t L : lens) pages_needed += (L + P - 1) / P;
  KvLayout lay{1, KVH, D, c.page_size, c.dtype};
  auto storage = KvStorage::create(lay, pages_needed + 3);
  REQUIRE(storage.is_ok());
  KvStorage& kv = **storage;

  // Fill pages in a scrambled order so page tables are not contiguous.
  std::vector<int32_t> free_pages;
  for (int32_t p = 1; p < kv.num_pages(); ++p) free_pages.push_back(p);
  std::shuffle(free_pages.begin(), free_pages.end(), rng);
  std::vector<PlainSeq> seqs(lens.size());
  std::vector<float> row_k(KVH * D), row_v(KVH * D), tmp(D), dec(D);
  std::vector<uint8_t> enc(kv_row_bytes(c.dtype, D));
  for (size_t i = 0; i < lens.size(); ++i) {
    PlainSeq& s = seqs[i];
    s.len = lens[i];
    for (int64_t b = 0; b < (s.len + P - 1) / P; ++b) {
      s.page_table.push_back(free_pages.back());
      free_pages.pop_back();
    }
    for (int64_t pos = 0; pos < s.len; ++pos) {
      for (auto& x : row_k) x = nd(rng);
      for (auto& x : row_v) x = nd(rng);
      kv.write(0, s.page_table[pos / P] * P + pos % P, row_k.data(), row_v.data());
      // The reference sees exactly what the storage holds (round trip per row).
      for (int h = 0; h < KVH; ++h)
        for (auto [src, dst] : {std::pair{&row_k, &s.k}, std::pair{&row_v, &s.v}}) {
          float scale = 0;
          encode_row(c.dtype, src->data() + h * D, D, enc.data(), &scale);
          decode_row(c.dtype, enc.data(), scale, D, dec.data());
          dst->insert(dst->end(), dec.begin(), dec.end());
        }
    }
  }
  // Queries: each sequence's last min(len, max_q) positions form its chunk
  // (a prefill chunk; the 1-token sequence, or max_q 1, a decode).
  AttentionShape sh{H, KVH, D, c.window, 1.0f / std::sqrt(float(D))};
  std::vector<AttentionSeq> aseqs;
  int64_t rows = 0;
  for (const PlainSeq& s : seqs) {
    const int64_t n_q = std::min<int64_t>(s.len, c.max_q);
    aseqs.push_back({s.page_table, s.len - n_q, n_q, rows});
    rows += n_q;
  }
  const int64_t q_stride = H * D + 3;  // q inside a wider row, like a fused QKV buffer
  std::vector<float> q(rows * q_stride), out(rows * H * D, -7.0f), ref(H * D);
  for (auto& x : q) x = nd(rng);
  paged_attention(kv, 0, aseqs, q.data(), q_stride, out.data(), H * D, sh);
  double max_err = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    for (int64_t t = 0; t < aseqs[i].n_q; ++t) {
      const int64_t r = aseqs[i].row + t;
      reference_attention(seqs[i], q.data() + r * q_stride, aseqs[i].first_pos + t, sh, ref.data());
      for (int j = 0; j < H * D; ++j) max_err = std::max(max_err, double(std::fabs(out[r * H * D + j] - ref[j])));
    }
  }
  // Exactness against the dequantized reference (the kernel's own error).
  INFO("heads " << H << "/" << KVH << " D " << D << " page " << P << " window " << c.window << " dtype "
                << kv_dtype_name(c.dtype) << " max_q " << c.max_q << " max_err " << max_err);
  CHECK(max_err < 2e-5);
}

// The quantization error against the unquantized values: bounded by the dtype.
void quantization_error_case(KvDtype dtype) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int H = 8, KVH = 2, D = 64, P = 16;
  const int64_t len = 100;
  KvLayout lay{1, KVH, D, P, dtype};
  auto storage = KvStorage::create(lay, 16);
  REQUIRE(storage.is_ok());
  PlainSeq s;
  s.len = len;
  for (int32_t b = 0; b < (len + P - 1) / P; ++b) s.page_table.push_back(b + 1);
  std::vector<float> rk(KVH * D), rv(KVH * D);
  for (int64_t pos = 0; pos < len; ++pos) {
    for (auto& x : rk) x = nd(rng);
    for (auto& x : rv) x = nd(rng);
    (*storage)->write(0, s.page_table[pos / P] * P + pos % P, rk.data(), rv.data());
    s.k.insert(s.k.end(), rk.begin(), rk.end());
    s.v.insert(s.v.end(), rv.begin(), rv.end());
  }
  AttentionShape sh{H, KVH, D, 0, 1.0f / 8.0f};
  std::vector<float> q(H * D), out(H * D), ref(H * D);
  for (auto& x : q) x = nd(rng);
  AttentionSeq a{s.page_table, len - 1, 1, 0};
  paged_attention(**storage, 0, std::span(&a, 1), q.data(), H * D, out.data(), H * D, sh);
  reference_attention(s, q.data(), len - 1, sh, ref.data());
  double max_err = 0;
  for (int j = 0; j < H * D; ++j) max_err = std::max(max_err, double(std::fabs(out[j] - ref[j])));
  INFO("dtype " << kv_dtype_name(dtype) << " max_err " << max_err);
  // Values are N(0,1) with max |x| about 3: the bound is a few storage steps.
  CHECK(max_err < 3.0 * dtype_tolerance(dtype));
}

}  // namespace

TEST_CASE("paged attention equals the reference for MHA, GQA and MQA, every page size and dtype") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  uint32_t seed = 1;
  for (KvDtype dt : {KvDtype::kF32, KvDtype::kBF16, KvDtype::kF16, KvDtype::kInt8, KvDtype::kInt4})
    for (int page : {8, 16, 32, 64, 128, 256})
      for (auto [h, kvh] : {std::pair{4, 4}, std::pair{8, 2}, std::pair{6, 1}})
        for (int64_t window : {int64_t{0}, int64_t{13}}) run_case({h, kvh, 16, page, window, dt}, seed++);
}

TEST_CASE("paged attention handles head_dim 8 12 40 and 64 and a window wider than the context") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  // head_dim 8 and 40 take the 8-key-block kernel at every level from avx2
  // (decodes and chunks); 12 the scalar one.
  run_case({8, 4, 8, 16, 0, KvDtype::kF32}, 100);
  run_case({8, 2, 40, 16, 0, KvDtype::kInt8, 1}, 103);
  run_case({8, 2, 40, 32, 7, KvDtype::kF16}, 104);
  run_case({4, 4, 12, 8, 5, KvDtype::kF32}, 105);
  run_case({16, 4, 64, 16, 4096, KvDtype::kF32}, 101);
  run_case({16, 4, 64, 32, 24, KvDtype::kBF16}, 102);
}

TEST_CASE("paged attention's unrolled head_dim 64 / 128 paths, full and partial 16-row chunks") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  // head_dim 64 and 128 take the register-resident AVX-512 code: group 2
  // the per-use kernel for decodes and 4-token tails, group 4 the decode
  // and lanes kernels; page 8 gives chunks shorter than 16 rows, 48 a full
  // chunk plus a partial one.
  uint32_t seed = 200;
  for (int d : {64, 128})
    for (KvDtype dt : {KvDtype::kF32, KvDtype::kF16, KvDtype::kInt8, KvDtype::kInt4})
      for (int page : {8, 16, 48})
        for (auto [h, kvh] : {std::pair{8, 2}, std::pair{4, 2}})
          for (int64_t window : {int64_t{0}, int64_t{21}}) run_case({h, kvh, d, page, window, dt}, seed++);
}

TEST_CASE("paged attention reads bf16, f16 and int8 tiles in place for decode and short chunks") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  // Work items with at most 8 (query token, group head) pairs read 16-bit
  // and int8 rows in their stored dtype; longer ones decode the tile first.
  // Decodes (max_q 1), 3- and 4-token chunks, groups of 4 (decodes of head
  // dim 64 / 128 take the decode kernel), 2 (4-token chunks fill the 8
  // shared uses) and 1 (MHA).
  uint32_t seed = 300;
  for (int d : {16, 64, 128})
    for (KvDtype dt : {KvDtype::kBF16, KvDtype::kF16, KvDtype::kInt8, KvDtype::kInt4})
      for (int page : {8, 16, 48})
        for (auto [h, kvh] : {std::pair{8, 2}, std::pair{4, 2}, std::pair{4, 4}})
          for (int64_t max_q : {1, 3, 4})
            for (int64_t window : {int64_t{0}, int64_t{21}}) run_case({h, kvh, d, page, window, dt, max_q}, seed++);
}

TEST_CASE("paged attention's decode kernel: groups 4 and 8, head_dim 64 / 128, every dtype") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  // Single-token items of a group of 4 or 8 heads take attention_decode
  // (four heads per pass in the blocks of a vector): decodes (max_q 1) and
  // the 17th token of 17-token chunks. Pages of 8 give half chunks, 48 full
  // and partial ones; windows of 3 and 21 make chunks whose first visible
  // key is inside their first or second half.
  uint32_t seed = 400;
  for (int d : {64, 128})
    for (KvDtype dt : {KvDtype::kF32, KvDtype::kBF16, KvDtype::kF16, KvDtype::kInt8, KvDtype::kInt4})
      for (int page : {8, 16, 48})
        for (auto [h, kvh] : {std::pair{8, 2}, std::pair{16, 2}})
          for (int64_t window : {int64_t{0}, int64_t{3}, int64_t{21}})
            for (int64_t max_q : {1, 17}) run_case({h, kvh, d, page, window, dt, max_q}, seed++);
}

TEST_CASE("paged attention with many uses per work item: long chunks, wide groups, head_dim 32/48/128") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  // Work items with more than 8 (query token, group head) pairs put the uses
  // in vector lanes (head_dim 16/32/64/128): 40-token chunks make full and
  // partial query blocks, group 8 two vectors of uses per token pair, group 6
  // vectors with padding lanes; head_dim 48 takes the per-use fallback.
  uint32_t seed = 500;
  for (int d : {32, 48, 128})
    for (KvDtype dt : {KvDtype::kF32, KvDtype::kBF16, KvDtype::kInt8, KvDtype::kInt4})
      for (int page : {16, 48})
        for (auto [h, kvh] : {std::pair{16, 2}, std::pair{6, 1}})
          for (int64_t window : {int64_t{0}, int64_t{29}}) run_case({h, kvh, d, page, window, dt, 40}, seed++);
}

TEST_CASE("paged attention's quantization error is bounded by the KV dtype") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  for (KvDtype dt : {KvDtype::kF32, KvDtype::kBF16, KvDtype::kF16, KvDtype::kInt8, KvDtype::kInt4})
    quantization_error_case(dt);
}
