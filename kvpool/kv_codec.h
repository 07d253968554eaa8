// KV row codecs: convert one row of n floats (one token, one KV head) to and
// from the storage format of a KvDtype.
//
// Formats (a row is stored contiguously, little-endian):
//   f32   4n bytes, exact copy.
//   bf16  2n bytes, upper half of the f32, round-to-nearest-even (NaN stays NaN).
//   f16   2n bytes, IEEE binary16 via F16C (round-to-nearest-even), scalar fallback.
//   int8  n bytes, symmetric: scale = maxabs/127, q = round-to-nearest(x/scale)
//         clamped to [-127,127]; x ~= q * scale.
//   int4  (n+1)/2 bytes, symmetric: scale = maxabs/7, q in [-7,7]; element i
//         lives in byte i/2, low nibble for even i, high nibble for odd i, as a
//         two's-complement nibble; the unused high nibble of an odd row is 0.
//   An all-zero row gets scale 0 and all-zero codes. int8/int4 expect finite
//   input (the engine's K/V are finite).
//
// Header-only, stateless, thread-safe. decode_row is on the attention hot path:
// it has AVX-512 paths (guarded) and a portable scalar path for the tails.
// Its functions live in the instruction-set namespace of the code including
// it (common/isa_namespace.h), so each kernel level has its own copy.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

// The vector paths: inside a kernel source compiled for one instruction-set
// level (engine/kernels/isa_begin.h, which has included <immintrin.h>) those
// of that level; elsewhere those the whole program is compiled for.
#if defined(PAGODA_ISA_BEGUN)
#if defined(PAGODA_AVX512F)
#define PAGODA_KV_AVX512F 1
#endif
#if defined(PAGODA_AVX512BF16)
#define PAGODA_KV_AVX512BF16 1
#endif
#if defined(PAGODA_F16C)
#define PAGODA_KV_F16C 1
#endif
#else
#if defined(__AVX512F__)
#define PAGODA_KV_AVX512F 1
#endif
#if defined(__AVX512BF16__)
#define PAGODA_KV_AVX512BF16 1
#endif
#if defined(__F16C__)
#define PAGODA_KV_F16C 1
#endif
#if defined(__AVX512F__) || defined(__F16C__)
// GCC 12 reports its own `__m512 __Y = __Y;` placeholders in the intrinsic
// headers as uninitialized (GCC PR 105593); the warnings point into the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // GCC-only warning (clang would warn that it is unknown)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
#endif

#include "common/isa_namespace.h"
#include "kvpool/kv_dtype.h"

namespace pagoda {
PAGODA_ISA_NAMESPACE_BEGIN

// Bytes of one row of n values (int4: (n+1)/2).
inline size_t kv_row_bytes(KvDtype dtype, int n) {
  const size_t un = n > 0 ? static_cast<size_t>(n) : 0;
  switch (dtype) {
    case KvDtype::kF32:
      return 4 * un;
    case KvDtype::kBF16:
    case KvDtype::kF16:
      return 2 * un;
    case KvDtype::kInt8:
      return un;
    case KvDtype::kInt4:
      return (un + 1) / 2;
  }
  return 0;
}

namespace kv_codec_detail {

// ---- scalar conversions (portable; also used for row tails) ----------------

inline uint16_t f32_to_bf16_bits(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(x >> 16);
}

inline float bf16_bits_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

inline uint16_t f32_to_f16_bits_soft(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // inf / NaN
    return ax > 0x7f800000u ? static_cast<uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu))
                            : static_cast<uint16_t>(sign | 0x7c00u);
  }
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 -> inf
  if (ax >= 0x38800000u) {                                              // normal half
    uint32_t m = ax - (112u << 23);                                     // rebias 127 -> 15
    m += 0xfffu + ((m >> 13) & 1u);                                     // RNE on 13 dropped bits
    return static_cast<uint16_t>(sign | (m >> 13));
  }
  // Subnormal half (unit 2^-24) or zero: the scaling by 2^24 is exact.
  const float r = std::nearbyint(std::bit_cast<float>(ax) * 16777216.0f);
  return static_cast<uint16_t>(sign | static_cast<uint16_t>(r));
}

inline float f16_bits_to_f32_soft(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  const uint32_t m = h & 0x3ffu;
  if (e == 0) {
    const float v = static_cast<float>(m) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  if (e == 31) return std::bit_cast<float>(sign | 0x7f800000u | (m << 13));
  return std::bit_cast<float>(sign | ((e + 112u) << 23) | (m << 13));
}

inline uint16_t f32_to_f16_bits(float f) {
#ifdef PAGODA_KV_F16C
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#else
  return f32_to_f16_bits_soft(f);
#endif
}

inline float f16_bits_to_f32(uint16_t h) {
#ifdef PAGODA_KV_F16C
  return _cvtsh_ss(h);
#else
  return f16_bits_to_f32_soft(h);
#endif
}

// Unaligned-safe 16-bit loads/stores for the scalar paths.
inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

inline float max_abs(const float* src, int n) {
  int i = 0;
  float m = 0.0f;
#ifdef PAGODA_KV_AVX512F
  __m512 vm = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) vm = _mm512_max_ps(vm, _mm512_abs_ps(_mm512_loadu_ps(src + i)));
  m = _mm512_reduce_max_ps(vm);
#endif
  for (; i < n; ++i) m = std::max(m, std::fabs(src[i]));
  return m;
}

// round-to-nearest-even of x/scale, clamped to [-lim, lim].
inline int quantize_one(float x, float scale, int lim) {
  const float q = std::nearbyint(x / scale);
  return static_cast<int>(std::clamp(q, -static_cast<float>(lim), static_cast<float>(lim)));
}

inline void encode_int8(const float* src, int n, int8_t* dst, float* scale_out) {
  const float scale = max_abs(src, n) / 127.0f;
  if (scale_out) *scale_out = scale;
  if (!(scale > 0.0f)) {
    std::memset(dst, 0, static_cast<size_t>(n));
    return;
  }
  int i = 0;
#ifdef PAGODA_KV_AVX512F
  const __m512 vs = _mm512_set1_ps(scale);
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  for (; i + 16 <= n; i += 16) {
    __m512 q = _mm512_div_ps(_mm512_loadu_ps(src + i), vs);
    q = _mm512_roundscale_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(q)));
  }
#endif
  for (; i < n; ++i) dst[i] = static_cast<int8_t>(quantize_one(src[i], scale, 127));
}

inline void decode_int8(const int8_t* src, float scale, int n, float* dst) {
  int i = 0;
#ifdef PAGODA_KV_AVX512F
  const __m512 vs = _mm512_set1_ps(scale);
  for (; i + 16 <= n; i += 16) {
    const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    _mm512_storeu_ps(dst + i, _mm512_mul_ps(_mm512_cvtepi32_ps(q), vs));
  }
#endif
  for (; i < n; ++i) dst[i] = static_cast<float>(src[i]) * scale;
}

inline void encode_int4(const float* src, int n, uint8_t* dst, float* scale_out) {
  const float scale = max_abs(src, n) / 7.0f;
  if (scale_out) *scale_out = scale;
  const size_t bytes = kv_row_bytes(KvDtype::kInt4, n);
  if (!(scale > 0.0f)) {
    std::memset(dst, 0, bytes);
    return;
  }
  int i = 0;
#ifdef PAGODA_KV_AVX512F
  const __m512 vs = _mm512_set1_ps(scale);
  const __m512 qlo = _mm512_set1_ps(-7.0f), qhi = _mm512_set1_ps(7.0f);
  for (; i + 16 <= n; i += 16) {
    __m512 q = _mm512_div_ps(_mm512_loadu_ps(src + i), vs);
    q = _mm512_roundscale_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm512_min_ps(_mm512_max_ps(q, qlo), qhi);
    const __m128i b = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(q));  // 16 codes, one a byte
    // Per 16-bit lane (codes 2j, 2j+1): low nibble of the even code, then of the odd one.
    const __m128i packed = _mm_or_si128(_mm_and_si128(b, _mm_set1_epi16(0x000f)),
                                        _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi16(0x00f0)));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + i / 2), _mm_packus_epi16(packed, packed));
  }
#endif
  for (; i + 1 < n; i += 2) {
    const unsigned lo = static_cast<unsigned>(quantize_one(src[i], scale, 7)) & 0xfu;
    const unsigned hi = static_cast<unsigned>(quantize_one(src[i + 1], scale, 7)) & 0xfu;
    dst[i / 2] = static_cast<uint8_t>(lo | (hi << 4));
  }
  if (n % 2) dst[n / 2] = static_cast<uint8_t>(static_cast<unsigned>(quantize_one(src[n - 1], scale, 7)) & 0xfu);
}

inline int int4_nibble(const uint8_t* src, int i) {
  const int nib = (i % 2 == 0) ? (src[i / 2] & 0xf) : (src[i / 2] >> 4);
  return (nib ^ 8) - 8;  // sign-extend the 4-bit two's complement value
}

inline void decode_int4(const uint8_t* src, float scale, int n, float* dst) {
  int i = 0;
#ifdef PAGODA_KV_AVX512F
  // A 16-entry table of decoded values indexed by the raw nibble (code c means
  // ((c ^ 8) - 8) * scale); vpermps reads only the low 4 bits of each index.
  const __m512 table =
      _mm512_mul_ps(_mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1), _mm512_set1_ps(scale));
  const __m512i shifts = _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
  for (; i + 16 <= n; i += 16) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + i / 2));
    const __m512i idx = _mm512_srlv_epi32(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(b, b)), shifts);
    _mm512_storeu_ps(dst + i, _mm512_permutexvar_ps(idx, table));
  }
#endif
  for (; i < n; ++i) dst[i] = static_cast<float>(int4_nibble(src, i)) * scale;
}

inline void encode_bf16(const float* src, int n, uint8_t* dst) {
  int i = 0;
#if defined(PAGODA_KV_AVX512BF16) && defined(PAGODA_KV_AVX512F)
  for (; i + 16 <= n; i += 16) {
    const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * i), std::bit_cast<__m256i>(h));
  }
#endif
  for (; i < n; ++i) store_u16(dst + 2 * i, f32_to_bf16_bits(src[i]));
}

inline void decode_bf16(const uint8_t* src, int n, float* dst) {
  int i = 0;
#ifdef PAGODA_KV_AVX512F
  for (; i + 16 <= n; i += 16) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i)));
    _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
#endif
  for (; i < n; ++i) dst[i] = bf16_bits_to_f32(load_u16(src + 2 * i));
}

inline void encode_f16(const float* src, int n, uint8_t* dst) {
  int i = 0;
#ifdef PAGODA_KV_AVX512F
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * i), h);
  }
#elif defined(PAGODA_KV_F16C)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * i), h);
  }
#endif
  for (; i < n; ++i) store_u16(dst + 2 * i, f32_to_f16_bits(src[i]));
}

inline void decode_f16(const uint8_t* src, int n, float* dst) {
  int i = 0;
#ifdef PAGODA_KV_AVX512F
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i))));
#elif defined(PAGODA_KV_F16C)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i))));
#endif
  for (; i < n; ++i) dst[i] = f16_bits_to_f32(load_u16(src + 2 * i));
}

}  // namespace kv_codec_detail

// Quantize/convert n floats into dst (kv_row_bytes(dtype, n) bytes, any
// alignment); for int8/int4 writes the row's scale to *scale (may be nullptr
// to drop it). scale is untouched for float dtypes.
inline void encode_row(KvDtype dtype, const float* src, int n, uint8_t* dst, float* scale) {
  namespace d = kv_codec_detail;
  switch (dtype) {
    case KvDtype::kF32:
      std::memcpy(dst, src, kv_row_bytes(dtype, n));
      return;
    case KvDtype::kBF16:
      d::encode_bf16(src, n, dst);
      return;
    case KvDtype::kF16:
      d::encode_f16(src, n, dst);
      return;
    case KvDtype::kInt8:
      d::encode_int8(src, n, reinterpret_cast<int8_t*>(dst), scale);
      return;
    case KvDtype::kInt4:
      d::encode_int4(src, n, dst, scale);
      return;
  }
}

// The inverse: dst[i] = decoded value (times scale for int8/int4; scale is
// ignored for float dtypes).
inline void decode_row(KvDtype dtype, const uint8_t* src, float scale, int n, float* dst) {
  namespace d = kv_codec_detail;
  switch (dtype) {
    case KvDtype::kF32:
      std::memcpy(dst, src, kv_row_bytes(dtype, n));
      return;
    case KvDtype::kBF16:
      d::decode_bf16(src, n, dst);
      return;
    case KvDtype::kF16:
      d::decode_f16(src, n, dst);
      return;
    case KvDtype::kInt8:
      d::decode_int8(reinterpret_cast<const int8_t*>(src), scale, n, dst);
      return;
    case KvDtype::kInt4:
      d::decode_int4(src, scale, n, dst);
      return;
  }
}

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda

#undef PAGODA_KV_AVX512F
#undef PAGODA_KV_AVX512BF16
#undef PAGODA_KV_F16C
