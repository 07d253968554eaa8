// IEEE 754 half precision (binary16) <-> float32, scalar and exact: f16 ->
// f32 is exact for every value (subnormals, infinities, NaN payloads kept);
// f32 -> f16 rounds to nearest even, as F16C's vcvtps2ph and ggml do.
// Pure inline functions; thread-safe.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace pagoda {

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1F;
  uint32_t mantissa = h & 0x3FF;
  uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // infinity / NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalize
    uint32_t e = 113;
    while ((mantissa & 0x400) == 0) {
      mantissa <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mantissa & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t abs = x & 0x7FFFFFFF;
  if (abs > 0x7F800000) return sign | 0x7E00;   // NaN
  if (abs >= 0x477FF000) return sign | 0x7C00;  // rounds to infinity
  if (abs >= 0x38800000) {                      // a normal half
    uint32_t h = (((abs >> 23) - 112) << 10) | ((abs & 0x7FFFFF) >> 13);
    const uint32_t rest = abs & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1) != 0)) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  // A subnormal half: a multiple of 2^-24, rounded to nearest even (exact
  // scaling by a power of two, then the default rounding mode).
  float a;
  std::memcpy(&a, &abs, 4);
  return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.0f)));
}

}  // namespace pagoda
