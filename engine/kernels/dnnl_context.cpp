#include "engine/kernels/dnnl_context.h"

#include <new>

namespace pagoda {

DnnlContext& DnnlContext::get() {
  static DnnlContext context;
  return context;
}

DnnlContext::DnnlContext() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {}

void* DnnlContext::scratch(Slot slot, size_t bytes) {
  if (bytes > sizes_[slot]) {
    const size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) throw std::bad_alloc();
    buffers_[slot].reset(p);
    sizes_[slot] = rounded;
  }
  return buffers_[slot].get();
}

}  // namespace pagoda
