// Elementwise kernels against plain double-precision references.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "engine/kernels/kernels.h"
#include "tests/engine/isa_levels.h"

using namespace pagoda;

namespace {

std::vector<float> random_vec(int64_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

// Plain RoPE: pair i of each head uses angle pos * theta^(-2i/head_dim).
void rope_reference(std::vector<double>& x, int64_t n_heads, int64_t head_dim, int64_t pos, double theta,
                    RopeLayout layout) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    double* v = x.data() + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const double a = double(pos) * std::pow(theta, -2.0 * double(i) / double(head_dim));
      const int64_t j0 = layout == RopeLayout::kAdjacentPairs ? 2 * i : i;
      const int64_t j1 = layout == RopeLayout::kAdjacentPairs ? 2 * i + 1 : i + half;
      const double x0 = v[j0], x1 = v[j1];
      v[j0] = x0 * std::cos(a) - x1 * std::sin(a);
      v[j1] = x0 * std::sin(a) + x1 * std::cos(a);
    }
  }
}

}  // namespace

TEST_CASE("rmsnorm matches the reference", "[kernels]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  for (int64_t n : {1, 7, 16, 64, 100, 1024}) {
    const int64_t rows = 3;
    const auto x = random_vec(rows * n, -3, 3, uint32_t(n));
    const auto w = random_vec(n, 0.5, 1.5, uint32_t(n) + 1);
    std::vector<float> out(rows * n);
    rmsnorm(x.data(), w.data(), rows, n, 1e-5f, out.data());
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
      const double inv = 1.0 / std::sqrt(ss / n + 1e-5);
      for (int64_t i = 0; i < n; ++i) {
        const double ref = x[r * n + i] * inv * w[i];
        CHECK(out[r * n + i] == Approx(ref).epsilon(2e-6).margin(1e-6));
      }
    }
    // In place gives the same result.
    auto y = x;
    rmsnorm(y.data(), w.data(), rows, n, 1e-5f, y.data());
    CHECK(y == out);
  }
  // A zero row stays zero (eps keeps it finite).
  std::vector<float> z(32, 0.0f), w(32, 1.0f), out(32, 1.0f);
  rmsnorm(z.data(), w.data(), 1, 32, 1e-5f, out.data());
  for (float v : out) CHECK(v == 0.0f);
}

TEST_CASE("RoPE matches the reference for both layouts", "[kernels]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  for (RopeLayout layout : {RopeLayout::kAdjacentPairs, RopeLayout::kHalves}) {
    for (int64_t head_dim : {8, 16, 32, 64, 128, 6}) {
      const int64_t n_heads = 3;
      const float theta = head_dim == 128 ? 500000.0f : 10000.0f;
      RopeTable table(600, head_dim, theta);
      for (int64_t pos : {0, 1, 7, 100, 511, 599}) {
        INFO(rope_layout_name(layout) << " head_dim=" << head_dim << " pos=" << pos);
        const auto x = random_vec(n_heads * head_dim, -2, 2, uint32_t(pos * 131 + head_dim));
        std::vector<double> ref(x.begin(), x.end());
        rope_reference(ref, n_heads, head_dim, pos, theta, layout);
        auto a = x;
        rope_inplace(a.data(), n_heads, head_dim, pos, table, layout);
        auto b = x;
        rope_inplace(b.data(), n_heads, head_dim, pos, theta, layout);
        CHECK(a == b);
        for (size_t i = 0; i < x.size(); ++i) {
          // Float angles (as llama2.c computes them) differ from double ones
          // by ~pos * 6e-8 radians.
          CHECK(a[i] == Approx(ref[i]).margin(2e-6 + 2e-7 * pos));
        }
      }
    }
  }
}

TEST_CASE("RoPE layouts are the same rotation on permuted elements", "[kernels]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  const int64_t head_dim = 64, half = 32;
  RopeTable table(64, head_dim, 10000.0f);
  const auto x = random_vec(head_dim, -1, 1, 77);
  std::vector<float> halves(head_dim);
  for (int64_t i = 0; i < half; ++i) {
    halves[i] = x[2 * i];
    halves[half + i] = x[2 * i + 1];
  }
  auto adjacent = x;
  rope_inplace(adjacent.data(), 1, head_dim, 37, table, RopeLayout::kAdjacentPairs);
  rope_inplace(halves.data(), 1, head_dim, 37, table, RopeLayout::kHalves);
  for (int64_t i = 0; i < half; ++i) {
    CHECK(adjacent[2 * i] == Approx(halves[i]).margin(1e-6));
    CHECK(adjacent[2 * i + 1] == Approx(halves[half + i]).margin(1e-6));
  }
}

TEST_CASE("rope_inplace_rows rotates each row for its position", "[kernels]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  const int64_t n_heads = 4, head_dim = 16, stride = 100, rows = 5;
  RopeTable table(64, head_dim, 10000.0f);
  const int32_t positions[rows] = {3, 0, 63, 10, 3};
  const auto x = random_vec(rows * stride, -1, 1, 5);
  auto batched = x;
  rope_inplace_rows(batched.data(), rows, stride, n_heads, head_dim, positions, table, RopeLayout::kHalves);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> one(x.begin() + r * stride, x.begin() + (r + 1) * stride);
    rope_inplace(one.data(), n_heads, head_dim, positions[r], table, RopeLayout::kHalves);
    for (int64_t i = 0; i < stride; ++i) CHECK(batched[r * stride + i] == one[i]);
  }
}

TEST_CASE("swiglu matches silu(gate) * up", "[kernels]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  for (int64_t n : {1, 15, 16, 100, 1000}) {
    auto gate = random_vec(n, -20, 20, uint32_t(n));
    const auto up = random_vec(n, -3, 3, uint32_t(n) + 1);
    if (n >= 16) {
      gate[0] = 95.0f, gate[1] = -95.0f, gate[2] = -1000.0f, gate[3] = 0.0f, gate[4] = 1e-8f;
    }
    std::vector<float> out(n);
    swiglu(gate.data(), up.data(), n, out.data());
    for (int64_t i = 0; i < n; ++i) {
      const double g = gate[i];
      const double ref = g / (1.0 + std::exp(-g)) * up[i];
      CHECK(out[i] == Approx(ref).epsilon(2e-6).margin(1e-30));
    }
  }
  // Fused gate|up rows.
  const int64_t rows = 3, n = 40;
  const auto gu = random_vec(rows * 2 * n, -5, 5, 3);
  std::vector<float> out(rows * n), expect(n);
  swiglu_rows(gu.data(), rows, n, out.data());
  for (int64_t r = 0; r < rows; ++r) {
    swiglu(gu.data() + r * 2 * n, gu.data() + r * 2 * n + n, n, expect.data());
    for (int64_t i = 0; i < n; ++i) CHECK(out[r * n + i] == expect[i]);
  }
}

TEST_CASE("add_inplace adds exactly", "[kernels]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  for (int64_t n : {1, 16, 37}) {
    auto x = random_vec(n, -1, 1, 1);
    const auto y = random_vec(n, -1, 1, 2);
    const auto x0 = x;
    add_inplace(x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) CHECK(x[i] == x0[i] + y[i]);
  }
}

TEST_CASE("argmax returns the first largest index", "[kernels]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  CHECK(argmax(nullptr, 0) == -1);
  for (int64_t n : {1, 5, 16, 17, 33, 32000}) {
    for (int64_t where : {int64_t(0), n / 2, n - 1}) {
      auto x = random_vec(n, -1, 1, uint32_t(n + where));
      x[where] = 5.0f;
      CHECK(argmax(x.data(), n) == where);
    }
  }
  std::vector<float> ties = {1, 3, 2, 3, 3};
  CHECK(argmax(ties.data(), 5) == 1);
  std::vector<float> neg(40, -7.0f);
  neg[39] = -6.0f;
  CHECK(argmax(neg.data(), 40) == 39);
}

TEST_CASE("softmax matches the reference", "[kernels]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  for (int64_t n : {1, 7, 16, 100, 32000}) {
    auto x = random_vec(n, -30, 30, uint32_t(n));
    const float inf = std::numeric_limits<float>::infinity();
    if (n >= 16) x[3] = -inf, x[15] = -inf;
    const auto x0 = x;
    softmax_inplace(x.data(), n);
    double mx = -1e300, sum = 0;
    for (float v : x0) mx = std::max(mx, double(v));
    for (float v : x0) sum += std::exp(double(v) - mx);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double ref = std::exp(double(x0[i]) - mx) / sum;
      CHECK(x[i] == Approx(ref).epsilon(5e-6).margin(1e-12));
      total += x[i];
    }
    CHECK(total == Approx(1.0).epsilon(1e-5));
    if (n >= 16) {
      CHECK(x[3] == 0.0f);
      CHECK(x[15] == 0.0f);
    }
  }
}
