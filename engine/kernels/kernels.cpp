#include "engine/kernels/kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/kernels/kernel_table.h"

#include "engine/kernels/isa_begin.h"
#include "engine/kernels/simd_exp.h"

namespace pagoda {
PAGODA_ISA_NAMESPACE_BEGIN

namespace {

constexpr int64_t kParallelWork = 1 << 16;  // elements before splitting rows over threads

void rmsnorm_row(const float* x, const float* weight, int64_t n, float eps, float* out) {
  int64_t i = 0;
  float ss = 0.0f;
#if defined(PAGODA_AVX512F)
  __m512 acc = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    acc = _mm512_fmadd_ps(v, v, acc);
  }
  ss = _mm512_reduce_add_ps(acc);
#endif
  for (; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  i = 0;
#if defined(PAGODA_AVX512F)
  const __m512 vinv = _mm512_set1_ps(inv);
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), vinv);
    _mm512_storeu_ps(out + i, _mm512_mul_ps(v, _mm512_loadu_ps(weight + i)));
  }
#endif
  for (; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

// One head of head_dim values, pair i rotated by (c[i], s[i]).
void rope_head(float* h, int64_t head_dim, const float* c, const float* s, RopeLayout layout) {
  const int64_t half = head_dim / 2;
  int64_t i = 0;
  if (layout == RopeLayout::kAdjacentPairs) {
#if defined(PAGODA_AVX512F)
    // 8 pairs per vector: duplicate c/s into both slots of each pair and
    // swap the pair members, so out = x * C + swap(x) * (-S, +S).
    const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512 sign = _mm512_set_ps(1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1);
    for (; i + 8 <= half; i += 8) {
      const __m512 vc = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(c + i)));
      const __m512 vs = _mm512_mul_ps(sign, _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(s + i))));
      const __m512 x = _mm512_loadu_ps(h + 2 * i);
      const __m512 swapped = _mm512_permute_ps(x, 0xB1);  // (x1, x0) in each pair
      _mm512_storeu_ps(h + 2 * i, _mm512_fmadd_ps(x, vc, _mm512_mul_ps(swapped, vs)));
    }
#endif
    for (; i < half; ++i) {
      const float x0 = h[2 * i], x1 = h[2 * i + 1];
      h[2 * i] = x0 * c[i] - x1 * s[i];
      h[2 * i + 1] = x0 * s[i] + x1 * c[i];
    }
  } else {
#if defined(PAGODA_AVX512F)
    for (; i + 16 <= half; i += 16) {
      const __m512 vc = _mm512_loadu_ps(c + i), vs = _mm512_loadu_ps(s + i);
      const __m512 x0 = _mm512_loadu_ps(h + i), x1 = _mm512_loadu_ps(h + half + i);
      _mm512_storeu_ps(h + i, _mm512_fmsub_ps(x0, vc, _mm512_mul_ps(x1, vs)));
      _mm512_storeu_ps(h + half + i, _mm512_fmadd_ps(x0, vs, _mm512_mul_ps(x1, vc)));
    }
#endif
    for (; i < half; ++i) {
      const float x0 = h[i], x1 = h[half + i];
      h[i] = x0 * c[i] - x1 * s[i];
      h[half + i] = x0 * s[i] + x1 * c[i];
    }
  }
}

// The llama2.c angle for pair i of a head at `pos`.
float rope_angle(int64_t pos, int64_t i, int64_t head_dim, float theta) {
  const float freq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
  return static_cast<float>(pos) * freq;
}

inline float silu_scalar(float g) { return g / (1.0f + std::exp(-g)); }

}  // namespace

void rmsnorm(const float* x, const float* weight, int64_t rows, int64_t n, float eps, float* out) {
#pragma omp parallel for schedule(static) if (rows > 1 && rows * n > kParallelWork)
  for (int64_t r = 0; r < rows; ++r) rmsnorm_row(x + r * n, weight, n, eps, out + r * n);
}

void rope_inplace(float* x, int64_t n_heads, int64_t head_dim, int64_t position, const RopeTable& table,
                  RopeLayout layout) {
  const float* c = table.cos(position);
  const float* s = table.sin(position);
  for (int64_t h = 0; h < n_heads; ++h) rope_head(x + h * head_dim, head_dim, c, s, layout);
}

void rope_inplace(float* x, int64_t n_heads, int64_t head_dim, int64_t position, float theta, RopeLayout layout) {
  const int64_t half = head_dim / 2;
  std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float a = rope_angle(position, i, head_dim, theta);
    c[i] = std::cos(a);
    s[i] = std::sin(a);
  }
  for (int64_t h = 0; h < n_heads; ++h) {
    rope_head(x + h * head_dim, head_dim, c.data(), s.data(), layout);
  }
}

void rope_inplace_rows(float* x, int64_t rows, int64_t row_stride, int64_t n_heads, int64_t head_dim,
                       const int32_t* positions, const RopeTable& table, RopeLayout layout) {
#pragma omp parallel for schedule(static) if (rows * n_heads * head_dim > kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    PAGODA_ISA_NS::rope_inplace(  // qualified: ADL also finds the public one
        x + r * row_stride, n_heads, head_dim, positions[r], table, layout);
  }
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
  int64_t i = 0;
#if defined(PAGODA_AVX512F)
  const __m512 one = _mm512_set1_ps(1.0f);
  for (; i + 16 <= n; i += 16) {
    const __m512 g = _mm512_loadu_ps(gate + i);
    const __m512 e = simd::exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(silu, _mm512_loadu_ps(up + i)));
  }
#endif
  for (; i < n; ++i) out[i] = silu_scalar(gate[i]) * up[i];
}

void swiglu_rows(const float* gate_up, int64_t rows, int64_t n, float* out) {
#pragma omp parallel for schedule(static) if (rows > 1 && rows * n > kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = gate_up + r * 2 * n;
    swiglu(row, row + n, n, out + r * n);
  }
}

void add_inplace(float* x, const float* y, int64_t n) {
  int64_t i = 0;
#if defined(PAGODA_AVX512F)
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(x + i, _mm512_add_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  }
#endif
  for (; i < n; ++i) x[i] += y[i];
}

int64_t argmax(const float* x, int64_t n) {
  if (n <= 0) return -1;
  float best = x[0];
  int64_t i = 0;
#if defined(PAGODA_AVX512F)
  if (n >= 16) {
    __m512 vm = _mm512_loadu_ps(x);
    for (i = 16; i + 16 <= n; i += 16) vm = _mm512_max_ps(vm, _mm512_loadu_ps(x + i));
    best = _mm512_reduce_max_ps(vm);
  }
#endif
  for (; i < n; ++i) best = std::max(best, x[i]);
  for (int64_t j = 0; j < n; ++j) {
    if (x[j] == best) return j;
  }
  // Only reachable with NaNs: fall back to a scan that skips them.
  int64_t arg = 0;
  for (int64_t j = 1; j < n; ++j) {
    if (x[j] > x[arg] || std::isnan(x[arg])) arg = j;
  }
  return arg;
}

void softmax_inplace(float* x, int64_t n) {
  if (n <= 0) return;
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  int64_t i = 0;
  double sum = 0.0;  // the scalar path sums every element: in double, as 32000 float adds drift by ~1e-5
#if defined(PAGODA_AVX512F)
  const __m512 vmx = _mm512_set1_ps(mx);
  __m512 acc = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    const __m512 e = simd::exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmx));
    _mm512_storeu_ps(x + i, e);
    acc = _mm512_add_ps(acc, e);
  }
  sum = _mm512_reduce_add_ps(acc);
#endif
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  i = 0;
#if defined(PAGODA_AVX512F)
  const __m512 vinv = _mm512_set1_ps(inv);
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vinv));
#endif
  for (; i < n; ++i) x[i] *= inv;
}

void register_elementwise_kernels(KernelTable& table) {
  table.rmsnorm_fn = &rmsnorm;
  table.rope_table_fn = &rope_inplace;
  table.rope_theta_fn = &rope_inplace;
  table.rope_rows_fn = &rope_inplace_rows;
  table.swiglu_fn = &swiglu;
  table.swiglu_rows_fn = &swiglu_rows;
  table.add_inplace_fn = &add_inplace;
  table.argmax_fn = &argmax;
  table.softmax_fn = &softmax_inplace;
}

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda
