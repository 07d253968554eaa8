#include "engine/kernels/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/kernels/kernel_table.h"

#include "engine/kernels/isa_begin.h"

namespace pagoda {
PAGODA_ISA_NAMESPACE_BEGIN

void f32_to_bf16_n(const float* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
#if defined(PAGODA_AVX512BF16) && defined(PAGODA_AVX512F)
  for (; i + 16 <= n; i += 16) {
    __m256bh b = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), reinterpret_cast<__m256i&>(b));
  }
#endif
  for (; i < n; ++i) out[i] = f32_to_bf16(x[i]);
}

void round_to_bf16_n(const float* x, int64_t n, float* out) {
  int64_t i = 0;
#if defined(PAGODA_AVX512BF16) && defined(PAGODA_AVX512F)
  for (; i + 16 <= n; i += 16) {
    const __m256bh b = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
    const __m512i w = _mm512_cvtepu16_epi32(reinterpret_cast<const __m256i&>(b));
    _mm512_storeu_ps(out + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
#endif
  for (; i < n; ++i) out[i] = bf16_to_f32(f32_to_bf16(x[i]));
}

namespace {

float max_abs(const float* x, int64_t n) {
  int64_t i = 0;
  float m = 0.0f;
#if defined(PAGODA_AVX512F)
  __m512 vm = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) vm = _mm512_max_ps(vm, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
  m = _mm512_reduce_max_ps(vm);
#endif
  for (; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

}  // namespace

void quantize_rows_s8(const float* w, int64_t rows, int64_t cols, int8_t* q, float* scale, int32_t* row_sum,
                      int32_t max_q) {
  const auto top = static_cast<float>(max_q);
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* wr = w + r * cols;
    const float m = max_abs(wr, cols);
    const float s = m > 0.0f ? m / top : 1.0f;
    const float inv = 1.0f / s;
    int32_t sum = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = std::clamp(std::nearbyint(wr[c] * inv), -top, top);
      q[r * cols + c] = static_cast<int8_t>(v);
      sum += static_cast<int32_t>(v);
    }
    scale[r] = s;
    row_sum[r] = sum;
  }
}

void quantize_rows_u8(const float* x, int64_t rows, int64_t cols, uint8_t* q, float* scale) {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    uint8_t* qr = q + r * cols;
    const float m = max_abs(xr, cols);
    const float s = m > 0.0f ? m / 127.0f : 1.0f;
    const float inv = 1.0f / s;
    int64_t c = 0;
#if defined(PAGODA_AVX512F) && defined(PAGODA_AVX512BW)
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    const __m512i zp = _mm512_set1_epi32(128);
    for (; c + 16 <= cols; c += 16) {
      __m512 v = _mm512_mul_ps(_mm512_loadu_ps(xr + c), vinv);
      v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
      // cvtps rounds to nearest even under the default MXCSR, like nearbyint.
      __m512i iv = _mm512_add_epi32(_mm512_cvtps_epi32(v), zp);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qr + c), _mm512_cvtusepi32_epi8(iv));
    }
#endif
    for (; c < cols; ++c) {
      const float v = std::clamp(std::nearbyint(xr[c] * inv), -127.0f, 127.0f);
      qr[c] = static_cast<uint8_t>(static_cast<int32_t>(v) + 128);
    }
    scale[r] = s;
  }
}

void register_quantize_kernels(KernelTable& table) {
  table.f32_to_bf16_n_fn = &f32_to_bf16_n;
  table.round_to_bf16_n_fn = &round_to_bf16_n;
  table.quantize_rows_s8_fn = &quantize_rows_s8;
  table.quantize_rows_u8_fn = &quantize_rows_u8;
}

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda
