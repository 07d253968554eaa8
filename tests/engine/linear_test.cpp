// Linear (oneDNN matmul, the panel kernels of gemv.h and, with AMX, the tile
// kernels)
// against a plain triple loop, for f32, bf16 and int8 weights, several batch
// sizes and shapes, and fused weights; int4 (q4 panels) against an emulation
// of its arithmetic and its quantization against the step it promises.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "engine/kernels/gemv.h"
#include "engine/kernels/linear.h"
#include "engine/kernels/q4_weights.h"
#include "engine/kernels/quantize.h"
#include "tests/engine/isa_levels.h"

using namespace pagoda;

namespace {

std::vector<float> random_vec(int64_t n, float sd, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

// y[m, n] = sum_k x[m, k] * w[n, k] in double, and sum_k |x||w| (the scale
// every rounding error is measured against).
void reference(const std::vector<float>& x, const std::vector<float>& w, int64_t M, int64_t N, int64_t K,
               std::vector<double>& y, std::vector<double>& mag) {
  y.assign(static_cast<size_t>(M * N), 0.0);
  mag.assign(y.size(), 0.0);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double s = 0, a = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = double(x[m * K + k]) * double(w[n * K + k]);
        s += p;
        a += std::fabs(p);
      }
      y[m * N + n] = s;
      mag[m * N + n] = a;
    }
  }
}

// int8 error bound from the quantization steps alone: with |x - qx*sx| <= sx/2
// and |w - qw*sw| <= sw/2, |err| <= sum_k (|x| sw/2 + |w| sx/2 + sx sw/4).
std::vector<double> int8_bound(const std::vector<float>& x, const std::vector<float>& w, int64_t M, int64_t N,
                               int64_t K, int32_t max_q) {
  std::vector<double> sx(M), sw(N), b(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m) {
    double mx = 0;
    for (int64_t k = 0; k < K; ++k) mx = std::max(mx, double(std::fabs(x[m * K + k])));
    sx[m] = mx / 127;
  }
  for (int64_t n = 0; n < N; ++n) {
    double mx = 0;
    for (int64_t k = 0; k < K; ++k) mx = std::max(mx, double(std::fabs(w[n * K + k])));
    sw[n] = mx / max_q;
  }
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double e = 0;
      for (int64_t k = 0; k < K; ++k) {
        e += std::fabs(x[m * K + k]) * sw[n] / 2 + std::fabs(w[n * K + k]) * sx[m] / 2 + sx[m] * sw[n] / 4;
      }
      b[m * N + n] = e;
    }
  }
  return b;
}

struct Shape {
  int64_t out, in;
};

// Whether `dtype` runs on this CPU (bf16 needs oneDNN's AVX-512 kernels).
// Where it does not, checks that create() refuses it as invalid_argument
// (a start-up error for the user, not an internal one) and says it skipped.
bool runnable(WeightDtype dtype) {
  if (Linear::dtype_supported(dtype)) return true;
  auto lin = Linear::create(random_vec(64 * 64, 1.0f, 1).data(), 64, 64, dtype);
  CHECK(!lin.is_ok());
  if (!lin) CHECK(lin.status().code() == StatusCode::kInvalidArgument);
  WARN(weight_dtype_name(dtype) << " weights do not run on this CPU: refused, not tested");
  return false;
}

// gemv_max_m / amx_max_m >= 0 override the Linear's small-batch and AMX
// limits (0 and 0: oneDNN only).
void check_linear(WeightDtype dtype, Shape s, int64_t M, uint32_t seed, int64_t gemv_max_m = -1,
                  int64_t amx_max_m = -1) {
  INFO(weight_dtype_name(dtype) << " out=" << s.out << " in=" << s.in << " M=" << M << " gemv_max_m=" << gemv_max_m
                                << " amx_max_m=" << amx_max_m);
  if (!runnable(dtype)) return;
  const auto w = random_vec(s.out * s.in, 0.02f, seed);
  auto x = random_vec(M * s.in, 1.0f, seed + 1);
  if (M >= 3) {
    for (int64_t k = 0; k < s.in; ++k) x[1 * s.in + k] = 0.0f;  // an all-zero row
    x[2 * s.in + 5 % s.in] = 40.0f;                             // an outlier
  }
  auto lin = Linear::create(w.data(), s.out, s.in, dtype);
  REQUIRE(lin.is_ok());
  if (gemv_max_m >= 0) lin->set_gemv_max_m(gemv_max_m);
  if (amx_max_m >= 0) lin->set_amx_max_m(amx_max_m);
  INFO("impl " << lin->impl_name(M));
  CHECK(lin->in_features() == s.in);
  CHECK(lin->out_features() == s.out);
  std::vector<float> y(static_cast<size_t>(M * s.out), -1.0f);
  lin->forward(x.data(), M, y.data());
  std::vector<double> ref, mag;
  reference(x, w, M, s.out, s.in, ref, mag);
  std::vector<double> bound;
  if (dtype == WeightDtype::kInt8) bound = int8_bound(x, w, M, s.out, s.in, lin->int8_max_q());
  int64_t bad = 0;
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs(y[i] - ref[i]);
    double tol = 0;
    switch (dtype) {
      case WeightDtype::kF32:
        tol = 2e-5 * mag[i] + 1e-6;
        break;
      // Both operands rounded to 8 significant bits: relative 2^-9 each.
      case WeightDtype::kBF16:
        tol = 1e-2 * mag[i] + 1e-6;
        break;
      case WeightDtype::kInt8:
        tol = 1.001 * bound[i] + 1e-5 * mag[i] + 1e-6;
        break;
      case WeightDtype::kInt4:  // tested against its emulation below
        FAIL("check_linear: int4 has its own test");
        break;
    }
    worst = std::max(worst, err / (tol > 0 ? tol : 1));
    bad += !(err <= tol);
  }
  INFO("worst error / tolerance = " << worst);
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("Linear matches the reference for every dtype, shape and batch", "[linear]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  const Shape shapes[] = {{172, 64}, {64, 172}, {2816, 1024}, {1024, 2816}, {17, 33}};
  const int64_t batches[] = {1, 3, 16, 33, 64, 170};  // 170: an f32 bucket of 176
  uint32_t seed = 1;
  for (WeightDtype dtype : {WeightDtype::kF32, WeightDtype::kBF16, WeightDtype::kInt8}) {
    if (!runnable(dtype)) continue;
    for (const Shape& s : shapes) {
      for (int64_t M : batches) {
        if (s.out * s.in > 1'000'000 && M != 1 && M != 33) continue;  // keep the test quick
        check_linear(dtype, s, M, seed++);
      }
    }
  }
}

TEST_CASE("panel kernels match the reference for every dtype and M", "[linear]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  // Output counts off the 64-column panel, K off the 16/32/64 k blocks and
  // off the 32-value (f32), 64-value (bf16) and 256-value (int8) chunks,
  // and the bench-200m shapes; every M up to 8 on the panel kernels (up to 4
  // rows: one pass; from 5 rows on: row groups of up to 6 over chunks, 7 =
  // 6 + 1; int8 splits them nearly equally, 7 = 4 + 3), 9 on oneDNN (the
  // limit), then the M where the row groups and 64-row tiles end (9 = 6 + 3,
  // 12, 13, 15 = 6 + 6 + 3, 31, 64, 65, 130: a third tile of 2 rows).
  // {96, 1100}: full chunks then a partial one (int8 288 k groups = 4 x 64
  // + 32, bf16 560 k pairs = 17 x 32 + 16); {64, 20}: one partial chunk only
  // (kp 32 or 64).
  const Shape shapes[] = {{172, 64}, {17, 33}, {100, 2816}, {1536, 1024}, {64, 1000}, {96, 1100}, {64, 20}};
  uint32_t seed = 500;
  for (WeightDtype dtype : {WeightDtype::kF32, WeightDtype::kBF16, WeightDtype::kInt8}) {
    if (!runnable(dtype)) continue;
    auto probe = Linear::create(random_vec(64 * 64, 1.0f, 1).data(), 64, 64, dtype);
    REQUIRE(probe.is_ok());
    if (probe->gemv_max_m() == 0) {
      WARN("oneDNN's packed layout is not the panel layout here; panel kernels not used");
      continue;
    }
    CHECK(probe->impl_name(1).rfind("gemv:", 0) == 0);
    for (const Shape& s : shapes) {
      for (int64_t M = 1; M <= 9; ++M) check_linear(dtype, s, M, seed++, 8);
      for (int64_t M : {9, 12, 13, 15, 31, 64, 65, 130}) check_linear(dtype, s, M, seed++, 200);
    }
  }
}

TEST_CASE("panel kernels and oneDNN agree on the same weights", "[linear]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  const int64_t N = 200, K = 300;
  const auto w = random_vec(N * K, 0.05f, 21);
  for (WeightDtype dtype : {WeightDtype::kF32, WeightDtype::kBF16, WeightDtype::kInt8}) {
    if (!runnable(dtype)) continue;
    auto lin = Linear::create(w.data(), N, K, dtype);
    REQUIRE(lin.is_ok());
    if (lin->gemv_max_m() == 0) continue;
    for (int64_t M : {int64_t{1}, int64_t{4}, int64_t{7}, int64_t{37}, Linear::kMaxBucket + 37}) {
      if (M > 8 && dtype == WeightDtype::kF32) continue;
      INFO(weight_dtype_name(dtype) << " M=" << M);
      const auto xm = random_vec(M * K, 1.0f, 23 + static_cast<uint32_t>(M));
      std::vector<float> a(M * N), b(M * N);
      lin->set_gemv_max_m(Linear::kMaxBucket);
      lin->forward(xm.data(), M, a.data());
      lin->set_gemv_max_m(0);
      lin->set_amx_max_m(0);
      if (lin->gemv_max_m() != 0) break;  // no oneDNN matmul (int8 without VNNI): nothing to compare
      CHECK(lin->impl_name(M).rfind("gemv:", 0) != 0);
      lin->forward(xm.data(), M, b.data());
      // Same rounded inputs, different summation order; int8: the same
      // quantized inputs, exact s32 sums and the same epilogue, so bitwise.
      int64_t diff = 0;
      for (int64_t i = 0; i < M * N; ++i) {
        const float tol = dtype == WeightDtype::kInt8 ? 0.0f : 1e-4f * std::fabs(b[i]) + 1e-5f;
        diff += !(std::fabs(a[i] - b[i]) <= tol);
      }
      CHECK(diff == 0);
    }
  }
}

TEST_CASE("int8 and bf16 batches of every size run our kernels by default", "[linear]") {
  // Without AMX the chunked panel kernels (VNNI; f32 FMAs for bf16) beat oneDNN at every M
  // (BENCHMARKS.md, tenth session); with AMX the tile kernels take M > 4.
  // Skipped where the environment overrides the limits (benchmark A/Bs).
  if (std::getenv("PAGODA_GEMV_MAX_M") != nullptr || std::getenv("PAGODA_AMX_MAX_M") != nullptr) {
    WARN("PAGODA_GEMV_MAX_M / PAGODA_AMX_MAX_M set: defaults not checked");
    return;
  }
  const auto w = random_vec(200 * 300, 0.05f, 31);
  for (WeightDtype dtype : {WeightDtype::kInt8, WeightDtype::kBF16}) {
    if (!runnable(dtype)) continue;
    auto lin = Linear::create(w.data(), 200, 300, dtype);
    REQUIRE(lin.is_ok());
    if (lin->gemv_max_m() == 0) continue;  // not the panel layout: oneDNN only
    // int8 below VNNI runs every batch on our kernel only on an AVX2-only
    // CPU whose oneDNN has no VNNI either (Linear packs the panels itself);
    // beside oneDNN's panel layout the AVX2 kernel takes small batches.
    const bool avx2_own_panels = supported_isa_levels().back() == IsaLevel::kAvx2 && Linear::int8_weight_max() == 63;
    const bool vector =
        dtype == WeightDtype::kInt8
            ? pagoda::gemv::vector_s8() && (active_kernel_isa() >= IsaLevel::kAvx512Vnni || avx2_own_panels)
            : pagoda::gemv::vector_bf16();
    for (int64_t M : {int64_t{1}, int64_t{5}, int64_t{32}, int64_t{256}, Linear::kMaxBucket + 1}) {
      INFO(weight_dtype_name(dtype) << " M=" << M << " impl " << lin->impl_name(M));
      if (lin->amx_max_m() > 0) {
        CHECK(lin->impl_name(M).rfind(M <= 4 ? "gemv:" : "amx:", 0) == 0);
      } else if (vector) {
        CHECK(lin->impl_name(M).rfind("gemv:", 0) == 0);
      }
    }
  }
}

TEST_CASE("Linear splits batches above the largest bucket", "[linear]") {
  for (WeightDtype dtype : {WeightDtype::kF32, WeightDtype::kBF16, WeightDtype::kInt8}) {
    if (!runnable(dtype)) continue;
    check_linear(dtype, {48, 80}, Linear::kMaxBucket + 37, 99);
  }
  check_linear(WeightDtype::kInt8, {48, 80}, Linear::kMaxBucket + 37, 98, 4, 0);  // oneDNN
}

TEST_CASE("AMX kernels match the reference and oneDNN", "[linear]") {
  for (WeightDtype dtype : {WeightDtype::kInt8, WeightDtype::kBF16}) {
    if (!runnable(dtype)) continue;
    INFO(weight_dtype_name(dtype));
    auto probe = Linear::create(random_vec(200 * 130, 1.0f, 1).data(), 200, 130, dtype);
    REQUIRE(probe.is_ok());
    if (probe->amx_max_m() == 0) {
      WARN("no AMX on this CPU / build (or not the panel layout): AMX kernels not used");
      continue;
    }
    CHECK(probe->impl_name(5).rfind("amx:", 0) == 0);
    CHECK(probe->impl_name(Linear::kMaxBucket + 1).rfind("amx:", 0) == 0);
    probe->set_amx_max_m(0);
    CHECK(probe->impl_name(5).rfind("amx:", 0) != 0);
    probe->set_amx_max_m(1 << 20);
    CHECK(probe->amx_max_m() == Linear::kMaxBucket);
    // Output counts off the 64-column panel and its 32-column halves, K off
    // the 64-byte k block, the bench-200m shapes; M: one or two 16-row
    // blocks, partial blocks, several 32-row pairs.
    const Shape shapes[] = {{172, 64}, {17, 33}, {100, 2816}, {1536, 1024}, {40, 300}, {200, 130}};
    const int64_t batches[] = {5, 15, 16, 17, 31, 32, 33, 48, 64, 65, 100, 170};
    uint32_t seed = 700;
    for (const Shape& s : shapes) {
      for (int64_t M : batches) {
        if (s.out * s.in > 1'000'000 && M > 33) continue;  // keep the test quick
        check_linear(dtype, s, M, seed++, 4, Linear::kMaxBucket);
      }
    }
    // Against oneDNN on the same weights, M up to a chunk split. int8: same
    // quantized inputs, exact s32 sums and the same epilogue, so bitwise
    // equal; bf16: the same rounded products summed in another order.
    for (const Shape& s : {Shape{200, 130}, Shape{1536, 1024}}) {
      const auto w = random_vec(s.out * s.in, 0.05f, seed++);
      auto lin = Linear::create(w.data(), s.out, s.in, dtype);
      REQUIRE(lin.is_ok());
      for (int64_t M : {int64_t{6}, int64_t{37}, Linear::kMaxBucket + 37}) {
        INFO("out=" << s.out << " in=" << s.in << " M=" << M);
        const auto x = random_vec(M * s.in, 1.0f, seed++);
        std::vector<float> a(M * s.out), b(M * s.out);
        lin->set_gemv_max_m(4);
        lin->set_amx_max_m(Linear::kMaxBucket);
        lin->forward(x.data(), M, a.data());
        lin->set_amx_max_m(0);
        lin->forward(x.data(), M, b.data());
        int64_t diff = 0;
        for (int64_t i = 0; i < M * s.out; ++i) {
          const float tol = dtype == WeightDtype::kInt8 ? 0.0f : 1e-4f * std::fabs(b[i]) + 1e-5f;
          diff += !(std::fabs(a[i] - b[i]) <= tol);
        }
        CHECK(diff == 0);
      }
    }
  }
}

TEST_CASE("int8 Linear equals an emulation of its documented arithmetic", "[linear]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  // Quantize with the public helpers, accumulate exactly in integers, and
  // apply (acc - 128 * sum(qw)) * sx * sw; this pins down the zero-point
  // compensation, not just an error bound.
  const int64_t N = 96, K = 200, M = 5;
  const auto w = random_vec(N * K, 0.05f, 5);
  const auto x = random_vec(M * K, 2.0f, 6);
  std::vector<int8_t> qw(N * K);
  std::vector<float> sw(N), sx(M);
  std::vector<int32_t> rowsum(N);
  auto lin = Linear::create(w.data(), N, K, WeightDtype::kInt8);
  REQUIRE(lin.is_ok());
  CHECK((lin->int8_max_q() == 127 || lin->int8_max_q() == 63));
  quantize_rows_s8(w.data(), N, K, qw.data(), sw.data(), rowsum.data(), lin->int8_max_q());
  std::vector<uint8_t> qx(M * K);
  quantize_rows_u8(x.data(), M, K, qx.data(), sx.data());
  // Small-batch kernel, AMX kernel (where available), oneDNN.
  for (int64_t amx_max_m : {int64_t{-1}, Linear::kMaxBucket, int64_t{0}}) {
    INFO("amx_max_m " << amx_max_m);
    lin->set_gemv_max_m(amx_max_m < 0 ? 8 : 0);
    lin->set_amx_max_m(std::max<int64_t>(amx_max_m, 0));
    std::vector<float> y(M * N);
    lin->forward(x.data(), M, y.data());
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N; ++n) {
        int64_t acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          acc += (int64_t(qx[m * K + k]) - 128) * int64_t(qw[n * K + k]);
        }
        const double expect = double(acc) * sx[m] * sw[n];
        CHECK(y[m * N + n] == Approx(expect).epsilon(1e-6).margin(1e-7));
      }
    }
  }
}

TEST_CASE("int8 Linear does not saturate at the extremes", "[linear]") {
  // Every weight at its row's maximum and every activation at the top of
  // u8 (255): on a CPU whose int8 kernels add pairs of u8 x s8 products in
  // 16 bits (vpmaddubsw, no VNNI), 8-bit weights would overflow every pair
  // (255 * 127 * 2 > 32767); Linear::int8_weight_max() keeps them exact on
  // oneDNN, the sign trick of the AVX2 panel kernel on ours.
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  const int64_t N = 64, K = 256;
  std::vector<float> w(N * K);
  for (int64_t n = 0; n < N; ++n) std::fill_n(w.begin() + n * K, K, n % 2 == 0 ? 0.05f : -0.05f);
  auto lin = Linear::create(w.data(), N, K, WeightDtype::kInt8);
  REQUIRE(lin.is_ok());
  for (int64_t M : {int64_t{1}, int64_t{5}, int64_t{64}}) {
    const std::vector<float> x(M * K, 1.0f);
    for (int64_t gemv_max_m : {Linear::kMaxBucket, int64_t{0}}) {  // our kernels (where they run), oneDNN
      INFO("M " << M << " gemv_max_m " << gemv_max_m << " int8_max_q " << lin->int8_max_q());
      lin->set_gemv_max_m(gemv_max_m);
      lin->set_amx_max_m(0);
      std::vector<float> y(M * N);
      lin->forward(x.data(), M, y.data());
      int64_t bad = 0;
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < N; ++n) {
          const double expect = (n % 2 == 0 ? 1 : -1) * 0.05 * K;
          bad += !(std::fabs(y[m * N + n] - expect) <= 1e-4 * std::fabs(expect));
        }
      }
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("int4 Linear equals an emulation of its documented arithmetic", "[linear]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  // Shapes: K not a multiple of 32 (zero padding), N not a multiple of 64
  // (a partial panel), a model-sized K; M across the 4-row passes.
  for (const auto& [N, K] : {std::pair<int64_t, int64_t>{96, 200}, {197, 1024}, {64, 32}}) {
    const auto w = random_vec(N * K, 0.05f, 7);
    auto packed = Q4Weights::quantize(w.data(), N, K);
    REQUIRE(packed.is_ok());
    auto lin = Linear::create(w.data(), N, K, WeightDtype::kInt4);
    REQUIRE(lin.is_ok());
    CHECK(lin->impl_name(1) == "gemv:q4_panels");
    CHECK(lin->weight_bytes() == packed->bytes());
    for (int64_t M : {1, 3, 4, 5, 9, 17}) {
      INFO("N " << N << " K " << K << " M " << M);
      auto x = random_vec(M * K, 2.0f, 8 + uint32_t(M));
      if (M >= 3) std::fill(x.begin() + K, x.begin() + 2 * K, 0.0f);  // an all-zero row
      std::vector<int8_t> qx(M * K);
      std::vector<float> sx(M);
      std::vector<int32_t> rowsum(M);
      quantize_rows_s8(x.data(), M, K, qx.data(), sx.data(), rowsum.data(), 127);
      std::vector<float> y(M * N, -1.0f);
      lin->forward(x.data(), M, y.data());
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < N; ++n) {
          double expect = 0, mag = 0;
          for (int64_t k = 0; k < K; ++k) {
            const double p = double(qx[m * K + k]) * double(packed->value(n, k));
            expect += p;
            mag += std::fabs(p);
          }
          expect *= sx[m];
          mag *= sx[m];
          REQUIRE(std::fabs(y[m * N + n] - expect) <= 1e-5 * mag + 1e-7);
        }
      }
    }
    // The quantization: every weight within half a step of its group's
    // (f16) scale, plus the f16 rounding of the group's min.
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t g = 0; g * 32 < K; ++g) {
        float lo = 0, hi = 0;  // padding zeros belong to a partial group
        if ((g + 1) * 32 <= K) lo = hi = w[n * K + g * 32];
        for (int64_t k = g * 32; k < std::min(K, (g + 1) * 32); ++k) {
          lo = std::min(lo, w[n * K + k]);
          hi = std::max(hi, w[n * K + k]);
        }
        const double step = (hi - lo) / 15.0, slack = std::ldexp(std::fabs(lo) + std::fabs(hi), -10);
        for (int64_t k = g * 32; k < std::min(K, (g + 1) * 32); ++k)
          REQUIRE(std::fabs(packed->value(n, k) - w[n * K + k]) <= step / 2 * 1.01 + slack);
      }
    }
  }
}

TEST_CASE("int8 panel kernel is exact for 7-bit and 8-bit weights at the extremes", "[linear]") {
  // gemv::s8_panels on hand-packed panels (gemv.h's layout): weights at
  // +-w_max, activations at 1 and 255 (128 -+ 127) and random bytes. The
  // AVX2 kernel has a 7-bit form (w_max <= 63, vpmaddubsw directly) and a
  // sign-moving form for 8-bit weights; either way every sum must be exact.
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  const int64_t N = 72, K = 200, kp = 256, panels = 2;  // a partial second panel, K off the 64-value block
  std::mt19937 rng(17);
  for (int32_t w_max : {63, 127}) {
    std::vector<int8_t> wq(static_cast<size_t>(N * K));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        const int sign = n % 3 == 0 ? 1 : n % 3 == 1 ? -1 : (k % 2 ? 1 : -1);
        wq[n * K + k] = static_cast<int8_t>(n % 5 == 4 ? int32_t(rng() % (2 * w_max + 1)) - w_max : sign * w_max);
      }
    std::vector<int8_t> packed(static_cast<size_t>(panels * kp * 64), 0);
    std::vector<int32_t> comp(N, 0);
    std::vector<float> w_scale(N, 1.0f);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        packed[(n / 64) * kp * 64 + (k / 4) * 256 + (n % 64) * 4 + k % 4] = wq[n * K + k];
        comp[n] += 128 * wq[n * K + k];
      }
    for (int64_t M : {1, 2, 3, 5, 70}) {
      INFO("w_max " << w_max << " M " << M);
      std::vector<uint8_t> x(static_cast<size_t>(M * kp), 128);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t k = 0; k < K; ++k)
          x[m * kp + k] = m % 3 == 0 ? 255 : m % 3 == 1 ? 1 : static_cast<uint8_t>(1 + rng() % 255);
      const std::vector<float> x_scale(M, 1.0f);
      std::vector<float> y(static_cast<size_t>(M * N), -1.0f);
      gemv::s8_panels(packed.data(), kp, x.data(), M, N, x_scale.data(), w_scale.data(), comp.data(), y.data(), N, 0,
                      panels, w_max);
      int64_t bad = 0;
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          int64_t acc = 0;
          for (int64_t k = 0; k < K; ++k) acc += (int64_t(x[m * kp + k]) - 128) * wq[n * K + k];
          bad += y[m * N + n] != static_cast<float>(acc);
        }
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("int4 kernels do not overflow at the extremes", "[linear]") {
  // Every quant of a group at 15 (one at 0 sets the group's range) and
  // every activation at +-127: the AVX2 kernel adds a group's 16 products per
  // 16-bit lane (15 * 127 * 16 = 30480) before widening; one more term and
  // it would wrap. Checked against the exact integer emulation.
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  const int64_t N = 64, K = 256, M = 3;
  std::vector<float> w(N * K, 1.0f);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < K / 32; ++g) w[n * K + g * 32 + (n + g) % 32] = 0.0f;
  auto packed = Q4Weights::quantize(w.data(), N, K);
  REQUIRE(packed.is_ok());
  auto lin = Linear::create(w.data(), N, K, WeightDtype::kInt4);
  REQUIRE(lin.is_ok());
  std::vector<float> x(M * K, 1.0f);
  std::fill_n(x.begin() + K, K, -1.0f);                                        // row 1: -127 everywhere
  for (int64_t k = 0; k < K; ++k) x[2 * K + k] = (k / 32) % 2 ? 1.0f : -1.0f;  // row 2: signs by group
  std::vector<float> y(M * N);
  lin->forward(x.data(), M, y.data());
  int64_t bad = 0;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double expect = 0;
      for (int64_t k = 0; k < K; ++k) expect += (x[m * K + k] > 0 ? 1.0 : -1.0) * packed->value(n, k);
      bad += !(std::fabs(y[m * N + n] - expect) <= 1e-5 * std::fabs(expect) + 1e-6);
    }
  }
  CHECK(bad == 0);
}

TEST_CASE("int4 kernels give the same bits at every instruction-set level", "[linear]") {
  const int64_t N = 130, K = 320, M = 6;
  const auto w = random_vec(N * K, 0.05f, 9);
  const auto x = random_vec(M * K, 1.0f, 10);
  std::vector<std::vector<float>> results;
  for (IsaLevel level : testing::test_isa_levels()) {
    const testing::IsaLevelScope isa(level);
    auto lin = Linear::create(w.data(), N, K, WeightDtype::kInt4);
    REQUIRE(lin.is_ok());
    std::vector<float> y(M * N);
    lin->forward(x.data(), M, y.data());
    results.push_back(y);
  }
  for (size_t i = 1; i < results.size(); ++i) CHECK(results[i] == results[0]);
}

TEST_CASE("quantize helpers", "[linear]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  const float w[] = {0.5f, -1.0f, 0.25f, 0.0f, 0.0f, 0.0f};
  int8_t q[6];
  float scale[2];
  int32_t sum[2];
  quantize_rows_s8(w, 2, 3, q, scale, sum, 127);
  CHECK(scale[0] == Approx(1.0f / 127));
  CHECK(q[0] == 64);  // 63.5 rounds to even
  CHECK(q[1] == -127);
  CHECK(q[2] == 32);  // 31.75
  CHECK(sum[0] == 64 - 127 + 32);
  // 7-bit weights (Linear::int8_weight_max() where oneDNN has no VNNI).
  const float w7[] = {0.3f, -1.0f, 0.25f};
  quantize_rows_s8(w7, 1, 3, q, scale, sum, 63);
  CHECK(scale[0] == Approx(1.0f / 63));
  CHECK(q[0] == 19);  // 18.9
  CHECK(q[1] == -63);
  CHECK(q[2] == 16);  // 15.75
  CHECK(sum[0] == 19 - 63 + 16);
  CHECK(scale[1] == 1.0f);
  CHECK(sum[1] == 0);
  std::vector<float> x = random_vec(37, 3.0f, 9);
  std::vector<uint8_t> qx(37);
  float sx;
  quantize_rows_u8(x.data(), 1, 37, qx.data(), &sx);
  for (int i = 0; i < 37; ++i) {
    CHECK(qx[i] >= 1);
    CHECK(std::fabs((qx[i] - 128) * sx - x[i]) <= sx / 2 * 1.0001f);
  }
  CHECK(bf16_to_f32(f32_to_bf16(1.0f)) == 1.0f);
  CHECK(f32_to_bf16(1.00390625f) == 0x3f80);  // halfway: rounds to even (down)
  CHECK(f32_to_bf16(1.01171875f) == 0x3f82);  // halfway: rounds to even (up)
  std::vector<float> many = random_vec(40, 1.0f, 10);
  std::vector<uint16_t> b(40);
  f32_to_bf16_n(many.data(), 40, b.data());
  for (int i = 0; i < 40; ++i) CHECK(b[i] == f32_to_bf16(many[i]));
  std::vector<float> rounded(40);
  round_to_bf16_n(many.data(), 40, rounded.data());
  for (int i = 0; i < 40; ++i) CHECK(rounded[i] == bf16_to_f32(b[i]));
  round_to_bf16_n(many.data(), 40, many.data());  // in place
  CHECK(many == rounded);
}

TEST_CASE("fused Linear equals the separate Linears concatenated", "[linear]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  const int64_t K = 64, M = 7;
  const auto wq = random_vec(64 * K, 0.02f, 11);
  const auto wk = random_vec(32 * K, 0.02f, 12);
  const auto wv = random_vec(32 * K, 0.02f, 13);
  const auto x = random_vec(M * K, 1.0f, 14);
  for (WeightDtype dtype : {WeightDtype::kF32, WeightDtype::kBF16, WeightDtype::kInt8}) {
    if (!runnable(dtype)) continue;
    INFO(weight_dtype_name(dtype));
    const WeightBlock blocks[] = {{wq.data(), 64}, {wk.data(), 32}, {wv.data(), 32}};
    auto fused = Linear::create_fused(blocks, K, dtype);
    REQUIRE(fused.is_ok());
    REQUIRE(fused->out_features() == 128);
    std::vector<float> y(M * 128);
    fused->forward(x.data(), M, y.data());
    int64_t col = 0;
    for (const auto& b : blocks) {
      auto single = Linear::create(b.data, b.rows, K, dtype);
      REQUIRE(single.is_ok());
      std::vector<float> ys(M * b.rows);
      single->forward(x.data(), M, ys.data());
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < b.rows; ++n) {
          CHECK(y[m * 128 + col + n] == Approx(ys[m * b.rows + n]).epsilon(1e-5).margin(1e-6));
        }
      }
      col += b.rows;
    }
  }
}

TEST_CASE("Linear rejects bad arguments and reports buckets", "[linear]") {
  const float w[4] = {1, 2, 3, 4};
  CHECK_FALSE(Linear::create(nullptr, 2, 2, WeightDtype::kF32).is_ok());
  CHECK_FALSE(Linear::create(w, 0, 2, WeightDtype::kF32).is_ok());
  CHECK_FALSE(Linear::create(w, 2, 0, WeightDtype::kF32).is_ok());
  CHECK_FALSE(Linear::create_fused({}, 2, WeightDtype::kF32).is_ok());
  CHECK(Linear::bucket_for(1, WeightDtype::kF32) == 1);
  CHECK(Linear::bucket_for(5, WeightDtype::kF32) == 6);
  CHECK(Linear::bucket_for(33, WeightDtype::kF32) == 40);
  CHECK(Linear::bucket_for(170, WeightDtype::kF32) == 176);
  CHECK(Linear::bucket_for(512, WeightDtype::kF32) == 512);
  CHECK(Linear::bucket_for(900, WeightDtype::kF32) == 512);
  CHECK(Linear::bucket_for(33, WeightDtype::kInt8) == 48);
  CHECK(Linear::bucket_for(170, WeightDtype::kBF16) == 192);
  CHECK(*parse_weight_dtype("bf16") == WeightDtype::kBF16);
  CHECK_FALSE(parse_weight_dtype("fp8").is_ok());
  auto lin = Linear::create(w, 2, 2, WeightDtype::kF32);
  REQUIRE(lin.is_ok());
  float y[2] = {7, 7};
  lin->forward(nullptr, 0, y);  // M = 0: nothing to do
  CHECK(y[0] == 7);
  const float x[2] = {1, 1};
  lin->forward(x, 1, y);
  CHECK(y[0] == 3);
  CHECK(y[1] == 7);
  CHECK_FALSE(lin->impl_name(1).empty());
}
