// One instruction-set level's KernelTable (compiled once per level, like
// every kernel source): the functions each source registers.
#include "engine/kernels/kernel_table.h"

#include "engine/kernels/isa_begin.h"

namespace pagoda {
PAGODA_ISA_NAMESPACE_BEGIN
void register_elementwise_kernels(KernelTable& table);  // kernels.cpp
void register_quantize_kernels(KernelTable& table);     // quantize.cpp
void register_attention_kernels(KernelTable& table);    // attention/paged_attention.cpp
PAGODA_ISA_NAMESPACE_END
namespace gemv {
PAGODA_ISA_NAMESPACE_BEGIN
void register_kernels(KernelTable& table);          // gemv.cpp
void register_s8_avx2_kernels(KernelTable& table);  // gemv_s8_avx2.cpp (after gemv.cpp's)
PAGODA_ISA_NAMESPACE_END
}  // namespace gemv
namespace q4 {
PAGODA_ISA_NAMESPACE_BEGIN
void register_kernels(KernelTable& table);  // q4_gemv.cpp
PAGODA_ISA_NAMESPACE_END
}  // namespace q4
namespace amx {
PAGODA_ISA_NAMESPACE_BEGIN
void register_kernels(KernelTable& table);  // amx_gemm.cpp
PAGODA_ISA_NAMESPACE_END
}  // namespace amx
namespace sampler_math {
PAGODA_ISA_NAMESPACE_BEGIN
void register_kernels(KernelTable& table);  // sampler_math.cpp
PAGODA_ISA_NAMESPACE_END
}  // namespace sampler_math

// Declared in kernel_dispatch.cpp, which calls it only when the CPU supports
// this level (the function itself may use the level's instructions).
const KernelTable& PAGODA_ISA_TABLE() {
  static const KernelTable table = [] {
    KernelTable t;
    t.level = static_cast<IsaLevel>(PAGODA_ISA_LEVEL);
    PAGODA_ISA_NS::register_elementwise_kernels(t);
    PAGODA_ISA_NS::register_quantize_kernels(t);
    PAGODA_ISA_NS::register_attention_kernels(t);
    gemv::PAGODA_ISA_NS::register_kernels(t);
    gemv::PAGODA_ISA_NS::register_s8_avx2_kernels(t);
    q4::PAGODA_ISA_NS::register_kernels(t);
    amx::PAGODA_ISA_NS::register_kernels(t);
    sampler_math::PAGODA_ISA_NS::register_kernels(t);
    return t;
  }();
  return table;
}

}  // namespace pagoda
