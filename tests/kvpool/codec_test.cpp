// KV row codecs against plain references written here: the f16/bf16 bit
// layouts decoded by hand, nearest-value checks on encode, the int8/int4
// byte and nibble layouts unpacked by hand, and the error bounds that follow
// from each format.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "kvpool/kv_codec.h"

using namespace pagoda;

namespace {

const int kLengths[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100, 127, 128, 129};
const KvDtype kAllDtypes[] = {KvDtype::kF32, KvDtype::kBF16, KvDtype::kF16, KvDtype::kInt8, KvDtype::kInt4};

// binary16 by the book: (-1)^s * 2^(e-15) * 1.m, subnormals 2^-14 * 0.m.
float ref_f16(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 0) v = std::ldexp(m, -24);
  else if (e == 31) v = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else v = std::ldexp(1024 + m, e - 25);
  return static_cast<float>(s ? -v : v);
}

// bfloat16 is the top half of a float32.
float ref_bf16(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t u16_at(const std::vector<uint8_t>& b, int i) { return static_cast<uint16_t>(b[2 * i] | (b[2 * i + 1] << 8)); }

// The encoded half must be the nearest representable value, ties to an even mantissa.
void check_nearest(float x, uint16_t h, float (*dec)(uint16_t)) {
  const double got = std::fabs(static_cast<double>(x) - dec(h));
  for (int d : {-1, 1}) {
    const uint16_t nb = static_cast<uint16_t>(h + d);
    if (((nb ^ h) & 0x8000) || std::isnan(dec(nb))) continue;  // crossed the sign or into NaN
    const double other = std::fabs(static_cast<double>(x) - dec(nb));
    INFO("x=" << x << " h=" << h << " neighbour=" << nb);
    REQUIRE(got <= other);
    if (got == other) REQUIRE((h & 1) == 0);
  }
}

std::vector<float> random_row(std::mt19937& rng, int n, float range) {
  std::uniform_real_distribution<float> u(-range, range);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = u(rng);
  return v;
}

int ref_nibble(uint8_t byte, bool high) {
  int v = high ? byte >> 4 : byte & 15;
  return v >= 8 ? v - 16 : v;
}

}  // namespace

TEST_CASE("kvpool: kv dtype names parse and print", "[kvpool][codec]") {
  for (KvDtype d : kAllDtypes) {
    auto parsed = parse_kv_dtype(kv_dtype_name(d));
    REQUIRE(parsed.is_ok());
    REQUIRE(*parsed == d);
  }
  auto bad = parse_kv_dtype("fp8");
  REQUIRE_FALSE(bad.is_ok());
  REQUIRE(bad.status().message().find("f32, bf16, f16, int8, int4") != std::string::npos);
}

TEST_CASE("kvpool: kv_row_bytes follows each format", "[kvpool][codec]") {
  REQUIRE(kv_row_bytes(KvDtype::kF32, 128) == 512);
  REQUIRE(kv_row_bytes(KvDtype::kBF16, 128) == 256);
  REQUIRE(kv_row_bytes(KvDtype::kF16, 128) == 256);
  REQUIRE(kv_row_bytes(KvDtype::kInt8, 128) == 128);
  REQUIRE(kv_row_bytes(KvDtype::kInt4, 128) == 64);
  REQUIRE(kv_row_bytes(KvDtype::kInt4, 7) == 4);
}

TEST_CASE("kvpool: f32 rows round-trip exactly", "[kvpool][codec]") {
  std::mt19937 rng(1);
  for (int n : kLengths) {
    auto x = random_row(rng, n, 1e6f);
    std::vector<uint8_t> buf(kv_row_bytes(KvDtype::kF32, n));
    std::vector<float> y(static_cast<size_t>(n));
    encode_row(KvDtype::kF32, x.data(), n, buf.data(), nullptr);
    decode_row(KvDtype::kF32, buf.data(), 0.0f, n, y.data());
    REQUIRE(x == y);
  }
}

TEST_CASE("kvpool: f16 rows: nearest half, relative error <= 2^-11, decode matches the bit layout", "[kvpool][codec]") {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> mag(-14.0f, 15.0f);
  for (int n : kLengths) {
    std::vector<float> x(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i)
      x[i] = std::ldexp(1.0f + static_cast<float>(rng() % 1000) / 1000.0f, static_cast<int>(mag(rng))) *
             ((rng() & 1) ? 1.0f : -1.0f);
    std::vector<uint8_t> buf(kv_row_bytes(KvDtype::kF16, n));
    std::vector<float> y(static_cast<size_t>(n));
    encode_row(KvDtype::kF16, x.data(), n, buf.data(), nullptr);
    decode_row(KvDtype::kF16, buf.data(), 0.0f, n, y.data());
    for (int i = 0; i < n; ++i) {
      const uint16_t h = u16_at(buf, i);
      check_nearest(x[i], h, ref_f16);
      REQUIRE(y[i] == ref_f16(h));
      REQUIRE(std::fabs(y[i] - x[i]) <= std::ldexp(std::fabs(x[i]), -11));
    }
  }
}

TEST_CASE("kvpool: f16 scalar fallback agrees with F16C on random bit patterns", "[kvpool][codec]") {
  namespace d = kv_codec_detail;
  std::mt19937 rng(3);
  for (int i = 0; i < 200000; ++i) {
    const uint32_t bits = rng();
    float f;
    std::memcpy(&f, &bits, 4);
    const uint16_t soft = d::f32_to_f16_bits_soft(f);
    if (std::isnan(f)) {
      REQUIRE(std::isnan(ref_f16(soft)));
      continue;
    }
    REQUIRE(soft == d::f32_to_f16_bits(f));
    if (std::fabs(f) < 65504.0f) check_nearest(f, soft, ref_f16);
  }
  for (uint32_t h = 0; h < 65536; ++h) {
    const float a = d::f16_bits_to_f32_soft(static_cast<uint16_t>(h)), b = ref_f16(static_cast<uint16_t>(h));
    if (std::isnan(b)) REQUIRE(std::isnan(a));
    else REQUIRE(std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b));
    if (!std::isnan(b)) REQUIRE(d::f16_bits_to_f32(static_cast<uint16_t>(h)) == b);
  }
}

TEST_CASE("kvpool: bf16 rows: nearest bf16, relative error <= 2^-8, ties to even", "[kvpool][codec]") {
  std::mt19937 rng(4);
  for (int n : kLengths) {
    auto x = random_row(rng, n, 1000.0f);
    if (n > 3) x[3] = ref_bf16(0x3f81) + (ref_bf16(0x3f82) - ref_bf16(0x3f81)) / 2;  // exact tie -> even 0x3f82
    std::vector<uint8_t> buf(kv_row_bytes(KvDtype::kBF16, n));
    std::vector<float> y(static_cast<size_t>(n));
    encode_row(KvDtype::kBF16, x.data(), n, buf.data(), nullptr);
    decode_row(KvDtype::kBF16, buf.data(), 0.0f, n, y.data());
    for (int i = 0; i < n; ++i) {
      const uint16_t h = u16_at(buf, i);
      check_nearest(x[i], h, ref_bf16);
      REQUIRE(y[i] == ref_bf16(h));
      REQUIRE(std::fabs(y[i] - x[i]) <= std::ldexp(std::fabs(x[i]), -8));
    }
    if (n > 3) REQUIRE(u16_at(buf, 3) == 0x3f82);
  }
  // The scalar path on its own, including NaN staying NaN.
  REQUIRE(std::isnan(ref_bf16(kv_codec_detail::f32_to_bf16_bits(std::numeric_limits<float>::quiet_NaN()))));
  REQUIRE(kv_codec_detail::f32_to_bf16_bits(1.0f) == 0x3f80);
}

TEST_CASE("kvpool: int8 rows: symmetric per-row scale, error <= half a step", "[kvpool][codec]") {
  std::mt19937 rng(5);
  for (int n : kLengths) {
    for (float range : {1e-3f, 1.0f, 300.0f}) {
      auto x = random_row(rng, n, range);
      float maxabs = 0;
      for (float v : x) maxabs = std::max(maxabs, std::fabs(v));
      std::vector<uint8_t> buf(kv_row_bytes(KvDtype::kInt8, n));
      std::vector<float> y(static_cast<size_t>(n));
      float scale = -1;
      encode_row(KvDtype::kInt8, x.data(), n, buf.data(), &scale);
      REQUIRE(scale == maxabs / 127.0f);
      decode_row(KvDtype::kInt8, buf.data(), scale, n, y.data());
      bool saw_full_scale = false;
      for (int i = 0; i < n; ++i) {
        const int q = static_cast<int8_t>(buf[i]);
        REQUIRE(q >= -127);
        REQUIRE(q <= 127);
        saw_full_scale |= (q == 127 || q == -127);
        REQUIRE(y[i] == static_cast<float>(q) * scale);  // decode is code * scale
        INFO("n=" << n << " i=" << i << " x=" << x[i] << " q=" << q << " scale=" << scale);
        REQUIRE(std::fabs(y[i] - x[i]) <= 0.5f * scale * (1 + 1e-5f));
      }
      REQUIRE(saw_full_scale);
    }
  }
}

TEST_CASE("kvpool: int4 rows: nibble layout, symmetric scale, error <= half a step, odd n", "[kvpool][codec]") {
  std::mt19937 rng(6);
  for (int n : kLengths) {
    for (float range : {1e-3f, 1.0f, 300.0f}) {
      auto x = random_row(rng, n, range);
      float maxabs = 0;
      for (float v : x) maxabs = std::max(maxabs, std::fabs(v));
      std::vector<uint8_t> buf(kv_row_bytes(KvDtype::kInt4, n), 0xAB);
      std::vector<float> y(static_cast<size_t>(n));
      float scale = -1;
      encode_row(KvDtype::kInt4, x.data(), n, buf.data(), &scale);
      REQUIRE(scale == maxabs / 7.0f);
      decode_row(KvDtype::kInt4, buf.data(), scale, n, y.data());
      for (int i = 0; i < n; ++i) {
        const int q = ref_nibble(buf[static_cast<size_t>(i / 2)], i % 2 == 1);
        REQUIRE(q >= -7);
        REQUIRE(q <= 7);
        REQUIRE(y[i] == static_cast<float>(q) * scale);
        INFO("n=" << n << " i=" << i << " x=" << x[i] << " q=" << q << " scale=" << scale);
        REQUIRE(std::fabs(y[i] - x[i]) <= 0.5f * scale * (1 + 1e-5f));
      }
      if (n % 2) REQUIRE((buf.back() >> 4) == 0);  // unused high nibble of an odd row
    }
  }
  // A hand-made row: -7..7 by steps with maxabs 7 gives scale 1 and exact codes.
  std::vector<float> x = {-7, -3, 0, 1, 2, 7, -1};
  std::vector<uint8_t> buf(4);
  float scale = 0;
  encode_row(KvDtype::kInt4, x.data(), 7, buf.data(), &scale);
  REQUIRE(scale == 1.0f);
  REQUIRE(buf[0] == static_cast<uint8_t>((0x9) | (0xD << 4)));  // -7 -> 0x9, -3 -> 0xD
  REQUIRE(buf[1] == static_cast<uint8_t>(0x0 | (0x1 << 4)));
  REQUIRE(buf[2] == static_cast<uint8_t>(0x2 | (0x7 << 4)));
  REQUIRE(buf[3] == 0xF);  // -1 in the low nibble, high nibble 0
}

TEST_CASE("kvpool: zero rows encode to zero codes and zero scale, decode to zeros", "[kvpool][codec]") {
  for (KvDtype d : kAllDtypes) {
    for (int n : kLengths) {
      std::vector<float> x(static_cast<size_t>(n), 0.0f), y(static_cast<size_t>(n), 9.0f);
      std::vector<uint8_t> buf(kv_row_bytes(d, n), 0x5A);
      float scale = 5.0f;
      encode_row(d, x.data(), n, buf.data(), &scale);
      for (uint8_t b : buf) REQUIRE(b == 0);
      if (kv_dtype_has_scales(d)) REQUIRE(scale == 0.0f);
      decode_row(d, buf.data(), scale, n, y.data());
      for (float v : y) REQUIRE(v == 0.0f);
    }
  }
}
