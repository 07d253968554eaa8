#include "engine/kernels/sampler_math.h"

#include <cmath>
#include <limits>

#include "engine/kernels/kernel_table.h"

#include "engine/kernels/isa_begin.h"

namespace pagoda::sampler_math {
PAGODA_ISA_NAMESPACE_BEGIN
namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kCutoff = -87.0f;  // exp(-87) ~ 1.6e-38: near FLT_MIN, treat as 0
}  // namespace

float max_value(const float* x, size_t n) {
  size_t i = 0;
  float m = kNegInf;
#ifdef PAGODA_AVX512F
  __m512 vm = _mm512_set1_ps(kNegInf);
  for (; i + 16 <= n; i += 16) {
    // max_ps returns the second operand when either is NaN: keep vm there.
    vm = _mm512_max_ps(_mm512_loadu_ps(x + i), vm);
  }
  m = _mm512_reduce_max_ps(vm);
#endif
  for (; i < n; ++i) {
    if (x[i] > m) m = x[i];
  }
  return m;
}

double exp_minus(const float* x, float m, float* out, size_t n) {
  size_t i = 0;
  double total = 0.0;
#ifdef PAGODA_AVX512F
  const __m512 vm = _mm512_set1_ps(m);
  const __m512 cutoff = _mm512_set1_ps(kCutoff);
  const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
  const __m512 ln2_hi = _mm512_set1_ps(0.693145751953125f);
  const __m512 ln2_lo = _mm512_set1_ps(1.42860682030941723212e-6f);
  // Taylor coefficients of exp(r) for |r| <= ln2/2.
  const __m512 c2 = _mm512_set1_ps(1.0f / 2), c3 = _mm512_set1_ps(1.0f / 6), c4 = _mm512_set1_ps(1.0f / 24),
               c5 = _mm512_set1_ps(1.0f / 120), c6 = _mm512_set1_ps(1.0f / 720), one = _mm512_set1_ps(1.0f);
  __m512 acc = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm);
    const __mmask16 keep = _mm512_cmp_ps_mask(v, cutoff, _CMP_GE_OQ);  // false for NaN, -inf
    const __m512 vc = _mm512_max_ps(v, cutoff);
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(vc, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, ln2_hi, vc);
    r = _mm512_fnmadd_ps(k, ln2_lo, r);
    __m512 p = _mm512_fmadd_ps(c6, r, c5);
    p = _mm512_fmadd_ps(p, r, c4);
    p = _mm512_fmadd_ps(p, r, c3);
    p = _mm512_fmadd_ps(p, r, c2);
    p = _mm512_fmadd_ps(p, r, one);
    p = _mm512_fmadd_ps(p, r, one);
    const __m512 e = _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(p, k));
    _mm512_storeu_ps(out + i, e);
    acc = _mm512_add_ps(acc, e);
    if ((i & 4095) == 4080) {  // flush to double every 4096 values
      total += _mm512_reduce_add_ps(acc);
      acc = _mm512_setzero_ps();
    }
  }
  total += _mm512_reduce_add_ps(acc);
#endif
  for (; i < n; ++i) {
    const float v = x[i] - m;
    out[i] = v >= kCutoff ? std::exp(v) : 0.0f;
    total += out[i];
  }
  return total;
}

double sum(const float* x, size_t n) {
  size_t i = 0;
  double total = 0.0;
#ifdef PAGODA_AVX512F
  __m512 acc = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    acc = _mm512_add_ps(acc, _mm512_loadu_ps(x + i));
    if ((i & 4095) == 4080) {  // flush to double every 4096 values
      total += _mm512_reduce_add_ps(acc);
      acc = _mm512_setzero_ps();
    }
  }
  total += _mm512_reduce_add_ps(acc);
#endif
  for (; i < n; ++i) total += x[i];
  return total;
}

void register_kernels(KernelTable& table) {
  table.sampler_max_fn = &max_value;
  table.sampler_exp_minus_fn = &exp_minus;
  table.sampler_sum_fn = &sum;
}

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda::sampler_math
