// ggml_quantize's k-quants (q4_K, q6_K), as the repository's exact
// dequantizer reads them back: every weight comes back as the point of its
// sub-block's grid (the block's own f16 and 6- or 8-bit scales) nearest to
// it, so within half a step wherever the grid spans it; the RMS error is well
// below that of a uniform 4-bit (q4_K) / 5-bit (q6_K) quantizer of the whole
// row; constant rows (positive, negative, zero) come back within the f16
// rounding of their scale; quantizing the dequantized weights again gives
// nearly the same weights. q5_0, q4_K's fallback, round-trips within half its
// step. (That the bytes equal ggml's own quantize_row_*_ref was checked
// against llama.cpp's library when they were written, and for q5_0 / q8_0 is
// checked against llama-quantize's files in tests/formats/gguf_reader_test.)
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gguf/ggml_types.h"
#include "gguf/gguf_writer.h"

using namespace pagoda;

namespace {

constexpr int64_t kRow = 1024;  // four super-blocks

std::vector<float> dequantize(GgmlType t, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  ggml_dequantize(t, bytes.data(), n, y.data());
  return y;
}

double rms(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s / double(a.size()));
}

// The error of a uniform quantizer with 2^bits levels spanning
// [min(x, 0), max(x, 0)] of the whole row, rounding to the nearest level: a
// grid through zero, as q4_K's (its mins are subtracted, never added) and
// q6_K's (symmetric) are.
double uniform_rms(const std::vector<float>& x, int bits) {
  double lo = 0, hi = 0;
  for (float v : x) lo = std::min(lo, double(v)), hi = std::max(hi, double(v));
  const double step = (hi - lo) / ((1 << bits) - 1);
  double s = 0;
  for (float v : x) {
    const double e = v - (lo + step * std::round((v - lo) / step));
    s += e * e;
  }
  return std::sqrt(s / double(x.size()));
}

// The rows the quantizers meet: N(0, s^2) at several scales, one-signed,
// with an outlier, with all-zero and constant sub-blocks, and constant rows.
struct Row {
  std::string name;
  std::vector<float> x;
  bool both_signs = true;  // one-signed rows use half of a grid through zero
};

std::vector<Row> test_rows() {
  std::mt19937 rng(7);
  std::vector<Row> rows;
  for (const float s : {1e-3f, 0.02f, 1.0f, 300.0f}) {
    std::normal_distribution<float> n(0.0f, s);
    Row r{"normal sigma " + std::to_string(s), std::vector<float>(kRow)};
    for (float& v : r.x) v = n(rng);
    rows.push_back(r);
    Row neg{"negative only sigma " + std::to_string(s), r.x, false};
    for (float& v : neg.x) v = -std::fabs(v);
    rows.push_back(neg);
    Row pos{"positive and away from zero sigma " + std::to_string(s), r.x, false};
    for (float& v : pos.x) v = std::fabs(v) + 2 * s;
    rows.push_back(pos);
  }
  std::normal_distribution<float> n(0.0f, 0.02f);
  Row outlier{"an outlier in each super-block", std::vector<float>(kRow)};
  for (float& v : outlier.x) v = n(rng);
  for (int64_t i = 0; i < kRow; i += 256) outlier.x[size_t(i + 37)] = 0.5f;
  rows.push_back(outlier);
  Row patchy{"zero and constant sub-blocks among normal ones", std::vector<float>(kRow)};
  for (int64_t i = 0; i < kRow; ++i) {
    const int64_t sub = i / 16;
    patchy.x[size_t(i)] = sub % 5 == 0 ? 0.0f : sub % 5 == 1 ? -0.03f : sub % 5 == 2 ? 0.01f : n(rng);
  }
  rows.push_back(patchy);
  Row scales{"sub-blocks at scales 1000 apart", std::vector<float>(kRow)};
  for (int64_t i = 0; i < kRow; ++i) scales.x[size_t(i)] = n(rng) * ((i / 32) % 4 == 0 ? 1000.0f : 1.0f);
  rows.push_back(scales);
  return rows;
}

std::vector<Row> constant_rows() {
  std::vector<Row> rows;
  for (const float v : {0.0f, 0.0123f, -0.0123f, 0.75f, 7.5f, -300.0f})
    rows.push_back({"all equal to " + std::to_string(v), std::vector<float>(kRow, v)});
  return rows;
}

// The grid of sub-block `s` of a decoded k-quant row: its points in the
// order of the levels, as the dequantizer computes them.
std::vector<float> grid(GgmlType t, const std::vector<uint8_t>& bytes, int64_t s) {
  std::vector<float> points;
  if (t == GgmlType::kQ4_K) {  // sub-blocks of 32: scale * q + min, q in [0, 15]
    uint8_t q[32];
    float scale = 0, min = 0;
    REQUIRE(ggml_q4_group(t, bytes.data(), s, q, &scale, &min));
    for (int l = 0; l < 16; ++l) points.push_back(scale * float(l) + min);
  } else {  // q6_K, sub-blocks of 16: d * sc * (q - 32), q in [0, 63]
    const uint8_t* b = bytes.data() + (s / 16) * 210;
    const float d = ggml_f16_to_f32(static_cast<uint16_t>(b[208] | (b[209] << 8)));
    const auto sc = static_cast<int8_t>(b[192 + s % 16]);
    for (int l = 0; l < 64; ++l) points.push_back(d * float(sc) * float(l - 32));
  }
  return points;
}

// Checks that each weight of `x` came back as the nearest point of its
// sub-block's grid, within half a step where the grid spans it; returns the
// fraction of weights beyond the grid's span (clipped to an end) among those
// of sub-blocks with a nonzero step.
double check_nearest_on_grid(GgmlType t, const std::vector<float>& x, const std::vector<uint8_t>& bytes,
                             const std::vector<float>& y) {
  const int64_t sub = t == GgmlType::kQ4_K ? 32 : 16;
  int64_t clipped = 0, spanned = kRow;
  for (int64_t s = 0; s < kRow / sub; ++s) {
    const std::vector<float> g = grid(t, bytes, s);
    const auto [lo, hi] = std::minmax_element(g.begin(), g.end());
    const double step = std::fabs(double(g[1]) - g[0]);
    for (int64_t i = s * sub; i < (s + 1) * sub; ++i) {
      const double v = x[size_t(i)], got = y[size_t(i)];
      double best = INFINITY;
      for (float p : g) best = std::min(best, std::fabs(v - p));
      INFO("sub-block " << s << " element " << i << ": " << v << " -> " << got << ", step " << step);
      // The quantizer divides by the step and rounds: a tie may go either way.
      const double slack = 1e-5 * (std::fabs(v) + std::fabs(double(*lo)) + std::fabs(double(*hi)));
      REQUIRE(std::find(g.begin(), g.end(), y[size_t(i)]) != g.end());
      REQUIRE(std::fabs(v - got) <= best + slack);
      // A sub-block whose scale rounded to 0 (1000x smaller than the
      // largest of its super-block: the 6- or 8-bit sub-scales cannot reach
      // it) is one point, nearest to all; it is not counted.
      if (step == 0) continue;
      if (v < *lo - 0.5 * step || v > *hi + 0.5 * step) ++clipped;
      else REQUIRE(std::fabs(v - got) <= 0.5 * step + slack);
    }
    if (step == 0) spanned -= sub;
  }
  return spanned > 0 ? double(clipped) / double(spanned) : 0.0;
}

}  // namespace

TEST_CASE("ggml_quantize q4_K and q6_K: each weight comes back as the nearest point of its sub-block grid", "[gguf]") {
  for (const GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(t));
    for (const Row& r : test_rows()) {
      INFO(info->name << ": " << r.name);
      const std::vector<uint8_t> bytes = ggml_quantize(t, r.x.data(), kRow);
      REQUIRE(bytes.size() == ggml_row_bytes(t, kRow));
      const std::vector<float> y = dequantize(t, bytes, kRow);
      const double clipped = check_nearest_on_grid(t, r.x, bytes, y);
      // The fits may clip a sub-block's extremes to shrink its step, rarely
      // (most at sigma 0.001, where q6_K's d is an f16 subnormal).
      CHECK(clipped <= 0.03);
      // Well below a uniform quantizer of the row: q4_K's 4 bits per weight
      // than 4 bits, q6_K's 6 than 5 bits. On one-signed rows half of each
      // grid through zero goes unused, as half of the uniform one does.
      const bool four = t == GgmlType::kQ4_K;
      const double ratio = rms(r.x, y) / uniform_rms(r.x, four ? 4 : 5);
      INFO("rms error / the uniform quantizer's: " << ratio);
      if (r.both_signs) CHECK(ratio <= (four ? 0.7 : 0.4));
      else CHECK(ratio <= (four ? 0.85 : 0.75));
    }
  }
}

TEST_CASE("ggml_quantize q4_K beats q4_0 and q6_K beats q5_0 on normal weights", "[gguf]") {
  std::mt19937 rng(9);
  std::normal_distribution<float> n(0.0f, 0.02f);
  std::vector<float> x(kRow * 16);
  for (float& v : x) v = n(rng);
  const int64_t len = static_cast<int64_t>(x.size());
  auto error = [&](GgmlType t) { return rms(x, dequantize(t, ggml_quantize(t, x.data(), len), len)); };
  const double q4_0 = error(GgmlType::kQ4_0), q4_k = error(GgmlType::kQ4_K);
  const double q5_0 = error(GgmlType::kQ5_0), q6_k = error(GgmlType::kQ6_K);
  INFO("rms: q4_0 " << q4_0 << ", q4_K " << q4_k << ", q5_0 " << q5_0 << ", q6_K " << q6_k);
  CHECK(q4_k < 0.9 * q4_0);
  CHECK(q6_k < 0.6 * q5_0);
  CHECK(q5_0 < 0.6 * q4_0);
}

TEST_CASE("ggml_quantize q4_K and q6_K: constant rows come back within f16 rounding and zeros exactly", "[gguf]") {
  for (const GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    for (const Row& r : constant_rows()) {
      INFO(ggml_type_name(static_cast<uint32_t>(t)) << ": " << r.name);
      const std::vector<float> y = dequantize(t, ggml_quantize(t, r.x.data(), kRow), kRow);
      const float v = r.x[0];
      // The super-block scale is an f16: relative error 2^-11, or half its
      // subnormal step 2^-24 below 2^-14, times at most 63 * 15 (q4_K) or
      // 128 * 32 (q6_K) levels.
      const double levels = t == GgmlType::kQ4_K ? 63 * 15 : 128 * 32;
      const double bound = std::fabs(v) * 1.01 / 2048 + levels * std::ldexp(1.0, -25);
      for (float got : y) REQUIRE(std::fabs(got - v) <= bound);
      if (v == 0.0f)
        for (float got : y) REQUIRE(got == 0.0f);
    }
  }
}

TEST_CASE("ggml_quantize q4_K and q6_K: quantizing the dequantized weights again gives nearly the same weights",
          "[gguf]") {
  for (const GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    for (const Row& r : test_rows()) {
      INFO(ggml_type_name(static_cast<uint32_t>(t)) << ": " << r.name);
      const std::vector<uint8_t> once = ggml_quantize(t, r.x.data(), kRow);
      const std::vector<float> y1 = dequantize(t, once, kRow);
      const std::vector<uint8_t> twice = ggml_quantize(t, y1.data(), kRow);
      const std::vector<float> y2 = dequantize(t, twice, kRow);
      // Each weight of y1 is on its grid; the second fit may choose a
      // slightly different grid (new scales, rounded to 6 or 8 bits, most
      // where q6_K's d is an f16 subnormal), whose nearest point is then a
      // fraction of a step away. A third pass moves even less.
      const double first = rms(r.x, y1);
      CHECK(rms(y1, y2) <= 0.35 * first);
      // q4_K's weights of both signs are a fixed point outright.
      if (t == GgmlType::kQ4_K && r.both_signs) CHECK(y2 == y1);
      const std::vector<uint8_t> thrice = ggml_quantize(t, y2.data(), kRow);
      CHECK(rms(y2, dequantize(t, thrice, kRow)) <= 0.15 * first);
    }
  }
}

TEST_CASE("ggml_quantize q5_0: the fallback of q4_K round-trips within half its step", "[gguf]") {
  for (const Row& r : test_rows()) {
    INFO(r.name);
    const std::vector<uint8_t> bytes = ggml_quantize(GgmlType::kQ5_0, r.x.data(), kRow);
    REQUIRE(bytes.size() == ggml_row_bytes(GgmlType::kQ5_0, kRow));
    const std::vector<float> y = dequantize(GgmlType::kQ5_0, bytes, kRow);
    for (int64_t b = 0; b < kRow / 32; ++b) {
      // d = -max / 16 for the largest-magnitude weight, so levels -16 .. 15
      // times d: a weight beyond level 15.5 (the opposite extreme) clamps to
      // 15, within one step. The levels are rounded with d before its f16
      // rounding (relative 2^-11, times up to 16 levels).
      const float d = ggml_f16_to_f32(static_cast<uint16_t>(bytes[size_t(b * 22)] | (bytes[size_t(b * 22 + 1)] << 8)));
      for (int64_t i = b * 32; i < b * 32 + 32; ++i) {
        const float v = r.x[size_t(i)];
        const bool clamps = d != 0.0f && v / d > 15.5f;
        REQUIRE(std::fabs(y[size_t(i)] - v) <= ((clamps ? 1.0f : 0.5f) + 16.0f / 2048.0f) * std::fabs(d));
      }
    }
  }
}
