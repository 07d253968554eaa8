// The public kernel functions (kernels.h, quantize.h, gemv.h, q4_gemv.h, amx_gemm.h,
// paged_attention.h, sampler_math.h) forward to the table of the chosen instruction-set
// level; this file chooses it. Compiled once, for the baseline.
#include <atomic>
#include <string>

#include "engine/kernels/isa_choice.h"
#include "engine/kernels/kernel_table.h"

namespace pagoda {

// Each level's table (kernel_table_fill.cpp, compiled once per level). Call
// only for a level the CPU supports.
const KernelTable& kernel_table_isa_baseline();
const KernelTable& kernel_table_isa_avx2();
const KernelTable& kernel_table_isa_avx512();
const KernelTable& kernel_table_isa_avx512_vnni();
const KernelTable& kernel_table_isa_amx();

namespace {

const KernelTable& table_for(IsaLevel level) {
  switch (level) {
    case IsaLevel::kBaseline:
      return kernel_table_isa_baseline();
    case IsaLevel::kAvx2:
      return kernel_table_isa_avx2();
    case IsaLevel::kAvx512:
      return kernel_table_isa_avx512();
    case IsaLevel::kAvx512Vnni:
      return kernel_table_isa_avx512_vnni();
    case IsaLevel::kAmx:
      return kernel_table_isa_amx();
  }
  return kernel_table_isa_baseline();
}

// The level a process starts with: PAGODA_ISA when it names a level this CPU
// supports (the server reports a bad value at start-up), else the best.
IsaLevel initial_level() {
  const Result<IsaChoice> choice = choose_isa("auto");
  return choice.is_ok() ? choice->level : best_cpu_isa();
}

// The error for a level this CPU cannot run (`what` names the request).
Status cpu_lacks(const std::string& what) {
  return Status::invalid_argument("this CPU (" + cpu_model_name() + ") cannot run " + what + "; its best level is " +
                                  isa_level_name(best_cpu_isa()));
}

std::atomic<const KernelTable*>& active_slot() {
  static std::atomic<const KernelTable*> slot{&table_for(initial_level())};
  return slot;
}

}  // namespace

const KernelTable& active_kernels() { return *active_slot().load(std::memory_order_acquire); }

IsaLevel active_kernel_isa() { return active_kernels().level; }

Status select_kernel_isa(IsaLevel level) {
  if (!cpu_supports(level)) return cpu_lacks(std::string("the ") + isa_level_name(level) + " kernels");
  active_slot().store(&table_for(level), std::memory_order_release);
  return Status::ok();
}

Result<IsaLevel> resolve_isa_request(const std::string& request) {
  if (request == "auto") return best_cpu_isa();
  Result<IsaLevel> level = parse_isa_level(request);
  if (!level.is_ok()) return level.status();
  if (!cpu_supports(*level)) return cpu_lacks("'" + request + "'");
  return *level;
}

// ---- the public functions ---------------------------------------------------

void rmsnorm(const float* x, const float* weight, int64_t rows, int64_t n, float eps, float* out) {
  active_kernels().rmsnorm_fn(x, weight, rows, n, eps, out);
}
void rope_inplace(float* x, int64_t n_heads, int64_t head_dim, int64_t position, const RopeTable& table,
                  RopeLayout layout) {
  active_kernels().rope_table_fn(x, n_heads, head_dim, position, table, layout);
}
void rope_inplace(float* x, int64_t n_heads, int64_t head_dim, int64_t position, float theta, RopeLayout layout) {
  active_kernels().rope_theta_fn(x, n_heads, head_dim, position, theta, layout);
}
void rope_inplace_rows(float* x, int64_t rows, int64_t row_stride, int64_t n_heads, int64_t head_dim,
                       const int32_t* positions, const RopeTable& table, RopeLayout layout) {
  active_kernels().rope_rows_fn(x, rows, row_stride, n_heads, head_dim, positions, table, layout);
}
void swiglu(const float* gate, const float* up, int64_t n, float* out) { active_kernels().swiglu_fn(gate, up, n, out); }
void swiglu_rows(const float* gate_up, int64_t rows, int64_t n, float* out) {
  active_kernels().swiglu_rows_fn(gate_up, rows, n, out);
}
void add_inplace(float* x, const float* y, int64_t n) { active_kernels().add_inplace_fn(x, y, n); }
int64_t argmax(const float* x, int64_t n) { return active_kernels().argmax_fn(x, n); }
void softmax_inplace(float* x, int64_t n) { active_kernels().softmax_fn(x, n); }

void f32_to_bf16_n(const float* x, int64_t n, uint16_t* out) { active_kernels().f32_to_bf16_n_fn(x, n, out); }
void round_to_bf16_n(const float* x, int64_t n, float* out) { active_kernels().round_to_bf16_n_fn(x, n, out); }
void quantize_rows_s8(const float* w, int64_t rows, int64_t cols, int8_t* q, float* scale, int32_t* row_sum,
                      int32_t max_q) {
  active_kernels().quantize_rows_s8_fn(w, rows, cols, q, scale, row_sum, max_q);
}
void quantize_rows_u8(const float* x, int64_t rows, int64_t cols, uint8_t* q, float* scale) {
  active_kernels().quantize_rows_u8_fn(x, rows, cols, q, scale);
}

void paged_attention(const KvStorage& kv, int layer, std::span<const AttentionSeq> seqs, const float* q,
                     int64_t q_stride, float* out, int64_t out_stride, const AttentionShape& shape) {
  active_kernels().paged_attention_fn(kv, layer, seqs, q, q_stride, out, out_stride, shape);
}

namespace gemv {
bool vector_s8() { return active_kernels().gemv_vector_s8; }
bool vector_bf16() { return active_kernels().gemv_vector_bf16; }
void f32_panels(const float* w, int64_t kp, const float* x, int64_t m, int64_t n_out, float* y, int64_t ldy, int64_t p0,
                int64_t p1) {
  active_kernels().gemv_f32_fn(w, kp, x, m, n_out, y, ldy, p0, p1);
}
void bf16_panels(const uint16_t* w, int64_t kp, const uint16_t* x, int64_t m, int64_t n_out, float* y, int64_t ldy,
                 int64_t p0, int64_t p1) {
  active_kernels().gemv_bf16_fn(w, kp, x, m, n_out, y, ldy, p0, p1);
}
void bf16_panels_f32x(const uint16_t* w, int64_t kp, const float* x, int64_t m, int64_t n_out, float* y, int64_t ldy,
                      int64_t p0, int64_t p1) {
  active_kernels().gemv_bf16_f32x_fn(w, kp, x, m, n_out, y, ldy, p0, p1);
}
void s8_panels(const int8_t* w, int64_t kp, const uint8_t* x, int64_t m, int64_t n_out, const float* x_scale,
               const float* w_scale, const int32_t* comp, float* y, int64_t ldy, int64_t p0, int64_t p1,
               int32_t w_max) {
  active_kernels().gemv_s8_fn(w, kp, x, m, n_out, x_scale, w_scale, comp, y, ldy, p0, p1, w_max);
}
}  // namespace gemv

namespace q4 {
bool vector_kernel() { return active_kernels().q4_vector; }
void panels(const uint8_t* w, int64_t n_groups, const int8_t* xq, const float* xsum, const float* x_scale, int64_t m,
            int64_t n_out, float* y, int64_t ldy, int64_t p0, int64_t p1) {
  active_kernels().q4_panels_fn(w, n_groups, xq, xsum, x_scale, m, n_out, y, ldy, p0, p1);
}
}  // namespace q4

namespace sampler_math {
float max_value(const float* x, size_t n) { return active_kernels().sampler_max_fn(x, n); }
double exp_minus(const float* x, float m, float* out, size_t n) {
  return active_kernels().sampler_exp_minus_fn(x, m, out, n);
}
double sum(const float* x, size_t n) { return active_kernels().sampler_sum_fn(x, n); }
}  // namespace sampler_math

namespace amx {
bool available() { return active_kernels().amx_s8_fn != nullptr; }
void s8_panels(const int8_t* w, int64_t kp, const uint8_t* x, int64_t m, int64_t n_out, const float* x_scale,
               const float* w_scale, const int32_t* comp, float* y, int64_t ldy, int64_t p0, int64_t p1) {
  active_kernels().amx_s8_fn(w, kp, x, m, n_out, x_scale, w_scale, comp, y, ldy, p0, p1);
}
void bf16_panels(const uint16_t* w, int64_t kp, const uint16_t* x, int64_t m, int64_t n_out, float* y, int64_t ldy,
                 int64_t p0, int64_t p1) {
  active_kernels().amx_bf16_fn(w, kp, x, m, n_out, y, ldy, p0, p1);
}
}  // namespace amx

}  // namespace pagoda
