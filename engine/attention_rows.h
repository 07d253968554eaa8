// In-register readers of stored K/V rows for the AVX-512 attention kernels
// (paged_attention.cpp, attention_decode.cpp): Row::load(row, c) returns the
// 16 values of a stored row starting at element 16 * c, widened to f32. int8
// rows come without their row scale (kScaled), which the caller folds into
// scores and weights. Header-only and stateless; only defined with AVX-512F.
#pragma once

#include <cstdint>

#include "engine/simd.h"

#if defined(__AVX512F__)

namespace pagoda::kv_rows {

struct RowF32 {
  static constexpr bool kScaled = false;
  static __m512 load(const uint8_t* row, int c) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + 16 * c);
  }
};
struct RowBF16 {
  static constexpr bool kScaled = false;
  static __m512 load(const uint8_t* row, int c) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32 * c));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
};
struct RowF16 {
  static constexpr bool kScaled = false;
  static __m512 load(const uint8_t* row, int c) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32 * c)));
  }
};
struct RowInt8 {
  static constexpr bool kScaled = true;
  static __m512 load(const uint8_t* row, int c) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16 * c));
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
  }
};

}  // namespace pagoda::kv_rows

#endif
