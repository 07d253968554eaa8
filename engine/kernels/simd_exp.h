// SIMD helpers shared by engine kernels: a vectorized exp (AVX2 and
// AVX-512) and transposing block / vector sums (AVX-512). Header-only,
// stateless, thread-safe; each only defined at the levels it names (callers
// keep a scalar path).
#pragma once

#if !defined(PAGODA_ISA_BEGUN)
#error "a kernel helper header: include it after engine/kernels/isa_begin.h"
#endif

#if defined(PAGODA_AVX2)

namespace pagoda::simd {
PAGODA_ISA_NAMESPACE_BEGIN

// exp(x) with relative error ~2e-7, as exp512 below: x = n ln2 + r, e^r by a
// degree-6 Taylor polynomial, times 2^n built in the exponent field. Inputs
// are clamped to [-87.33, 88]: below, the result stays at ~1.2e-38 (the
// smallest normal float) instead of reaching 0, including for -inf.
inline __m256 exp256(__m256 x) {
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.0f)), _mm256_set1_ps(-87.33654f));
  const __m256 n =
      _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // n in [-126, 127]: 2^n is the float with biased exponent n + 127.
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda::simd

#endif

#if defined(PAGODA_AVX512F)

namespace pagoda::simd {
PAGODA_ISA_NAMESPACE_BEGIN

// exp(x) with relative error ~2e-7: x = n ln2 + r, |r| <= ln2/2, e^r by a
// degree-6 Taylor polynomial, then scaled by 2^n. Inputs are clamped to
// [-110, 88.72]: below that the result underflows to 0 (or a denormal);
// -inf gives 0.
inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.72283f)), _mm512_set1_ps(-110.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// Block sums of 8 vectors: lane 4u + l of out[r] = the sum of the 4 lanes of
// 128-bit block u of v[4r + l] (two transposing stages: 6 adds, 12 shuffles).
inline void block_sums8(const __m512* v, __m512* out) {
  __m512 a[4];
  for (int i = 0; i < 4; ++i)  // per block: [x0+x2, y0+y2, x1+x3, y1+y3]
    a[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  for (int r = 0; r < 2; ++r) {  // per block: the block sums of 4 vectors, in order
    const __m512d x = _mm512_castps_pd(a[2 * r]), y = _mm512_castps_pd(a[2 * r + 1]);
    out[r] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
}

// Lane i of the result = sum of the 16 lanes of v[i] (a transposing
// reduction tree: 15 adds and 30 shuffles for 16 sums).
inline __m512 sum16x16(const __m512* v) {
  __m512 b[4];
  block_sums8(v, b);
  block_sums8(v + 8, b + 2);
  __m512 c[2];
  for (int i = 0; i < 2; ++i)
    c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda::simd

#endif
