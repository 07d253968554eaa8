// KernelTable: the hot kernels of one instruction-set level, as function
// pointers. Every kernel source is compiled once per level (isa_begin.h);
// each level's copy fills its table (register_kernels in each source,
// kernel_table_fill.cpp), and kernel_dispatch.cpp points the public
// functions of kernels.h, quantize.h, gemv.h, q4_gemv.h, amx_gemm.h,
// paged_attention.h and sampler_math.h at the table of the level chosen at start-up.
//
// select_kernel_isa() chooses the level: the best the CPU supports unless a
// lower one is asked for (PAGODA_ISA, engine.isa, tests). Choose before the
// kernels run (start-up, or between tests): the choice is an atomic pointer,
// but a Linear::forward reads it several times and must see one level.
// Tables are immutable; thread-safe.
#pragma once

#include "common/cpu_isa.h"
#include "common/status.h"
#include "engine/kernels/amx_gemm.h"
#include "engine/kernels/attention/paged_attention.h"
#include "engine/kernels/gemv.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/q4_gemv.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/sampler_math.h"

namespace pagoda {

struct KernelTable {
  IsaLevel level = IsaLevel::kBaseline;
  // kernels.h
  decltype(&rmsnorm) rmsnorm_fn = nullptr;
  void (*rope_table_fn)(float*, int64_t, int64_t, int64_t, const RopeTable&, RopeLayout) = nullptr;
  void (*rope_theta_fn)(float*, int64_t, int64_t, int64_t, float, RopeLayout) = nullptr;
  decltype(&rope_inplace_rows) rope_rows_fn = nullptr;
  decltype(&swiglu) swiglu_fn = nullptr;
  decltype(&swiglu_rows) swiglu_rows_fn = nullptr;
  decltype(&add_inplace) add_inplace_fn = nullptr;
  decltype(&argmax) argmax_fn = nullptr;
  decltype(&softmax_inplace) softmax_fn = nullptr;
  // quantize.h
  decltype(&f32_to_bf16_n) f32_to_bf16_n_fn = nullptr;
  decltype(&round_to_bf16_n) round_to_bf16_n_fn = nullptr;
  decltype(&quantize_rows_s8) quantize_rows_s8_fn = nullptr;
  decltype(&quantize_rows_u8) quantize_rows_u8_fn = nullptr;
  // gemv.h (vector_*: whether the int8 / bf16 panel kernels are vectorized)
  bool gemv_vector_s8 = false;
  bool gemv_vector_bf16 = false;
  decltype(&gemv::f32_panels) gemv_f32_fn = nullptr;
  decltype(&gemv::bf16_panels) gemv_bf16_fn = nullptr;
  decltype(&gemv::bf16_panels_f32x) gemv_bf16_f32x_fn = nullptr;
  decltype(&gemv::s8_panels) gemv_s8_fn = nullptr;
  // q4_gemv.h (q4_vector: whether the 4-bit kernel is vectorized)
  bool q4_vector = false;
  decltype(&q4::panels) q4_panels_fn = nullptr;
  // amx_gemm.h (null below the amx level)
  decltype(&amx::s8_panels) amx_s8_fn = nullptr;
  decltype(&amx::bf16_panels) amx_bf16_fn = nullptr;
  // paged_attention.h
  decltype(&paged_attention) paged_attention_fn = nullptr;
  // sampler_math.h
  decltype(&sampler_math::max_value) sampler_max_fn = nullptr;
  decltype(&sampler_math::exp_minus) sampler_exp_minus_fn = nullptr;
  decltype(&sampler_math::sum) sampler_sum_fn = nullptr;
};

// The table of the chosen level (the CPU's best until select_kernel_isa).
const KernelTable& active_kernels();
// The chosen level.
IsaLevel active_kernel_isa();
// Chooses `level` for every later kernel call; an error naming the level if
// the CPU cannot run it. Call before serving (the engine does at start-up).
Status select_kernel_isa(IsaLevel level);
// "auto" (the CPU's best) or a level name; for the value of PAGODA_ISA or
// engine.isa. The error names the accepted values, or the CPU's best level.
Result<IsaLevel> resolve_isa_request(const std::string& request);

}  // namespace pagoda
