// Readers of stored K/V rows for the attention kernels (paged_attention.cpp,
// attention_decode.cpp): decode_tile_rows decodes a tile's rows to f32
// scratch; with AVX-512F, Row::load(row, c) returns the 16 values of a stored
// row starting at element 16 * c, widened to f32 in registers (int8 rows
// come without their row scale, kScaled, which the caller folds into scores
// and weights). Header-only and stateless; thread-safe.
#pragma once

#if !defined(PAGODA_ISA_BEGUN)
#error "a kernel helper header: include it after engine/kernels/isa_begin.h"
#endif

#include <cstddef>
#include <cstdint>

#include "kvpool/kv_codec.h"

namespace pagoda::kv_rows {
PAGODA_ISA_NAMESPACE_BEGIN

// Rows [r0, r1) of a K tile and its V tile (stored rows rb bytes apart, row
// scales ks / vs or nullptr) decoded to f32 rows of d floats at k_out + r * d
// and v_out + r * d.
inline void decode_tile_rows(KvDtype dtype, const uint8_t* k, const uint8_t* v, size_t rb, const float* ks,
                             const float* vs, int64_t r0, int64_t r1, int d, float* k_out, float* v_out) {
  for (int64_t r = r0; r < r1; ++r) {
    decode_row(dtype, k + r * rb, ks ? ks[r] : 0.0f, d, k_out + r * d);
    decode_row(dtype, v + r * rb, vs ? vs[r] : 0.0f, d, v_out + r * d);
  }
}

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda::kv_rows

#if defined(PAGODA_AVX512F)

namespace pagoda::kv_rows {
PAGODA_ISA_NAMESPACE_BEGIN

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

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda::kv_rows

#endif
