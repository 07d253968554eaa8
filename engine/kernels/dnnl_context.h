// DnnlContext: the process-wide oneDNN CPU engine and stream, plus growable
// scratch buffers for the engine thread's oneDNN-based layers (Linear).
//
// get() is thread-safe (a function-local static). The engine is thread-safe;
// the stream and the scratch buffers are NOT: they belong to the one engine
// thread that runs the model's forward passes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include <dnnl.hpp>

namespace pagoda {

class DnnlContext {
 public:
  // The shared context, created on first use.
  static DnnlContext& get();

  const dnnl::engine& engine() const { return engine_; }
  dnnl::stream& stream() { return stream_; }

  // Scratch slots used by Linear::forward (each slot is one buffer).
  enum Slot { kSrc = 0, kDst = 1, kRowScale = 2, kNumSlots = 3 };
  // A 64-byte-aligned buffer of at least `bytes`, reused across calls; the
  // pointer stays valid until the next call with the same slot and a larger
  // size. Contents are unspecified.
  void* scratch(Slot slot, size_t bytes);

  DnnlContext(const DnnlContext&) = delete;
  DnnlContext& operator=(const DnnlContext&) = delete;

 private:
  DnnlContext();
  struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
  };
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::unique_ptr<void, FreeDeleter> buffers_[kNumSlots];
  size_t sizes_[kNumSlots] = {};
};

}  // namespace pagoda
