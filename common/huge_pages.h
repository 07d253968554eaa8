// Large, long-lived buffers backed by transparent huge pages where the kernel
// allows it: packed weights and the KV arena. Streaming hundreds of megabytes
// through 4-KiB pages costs a TLB miss and a page walk every 4 KiB; 2-MiB
// pages cut those 512-fold. With THP set to "madvise" (Debian's default)
// nothing is huge unless asked for, which is what these allocators do.
// PAGODA_HUGE_PAGES=0 in the environment turns the advice off (for A/B runs).
// Without THP in the kernel the memory silently stays on 4-KiB pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "common/mutex.h"

namespace pagoda {

struct HugeBufferDeleter {
  void operator()(void* p) const { std::free(p); }
};
// One owned allocation, freed on destruction.
using HugeBuffer = std::unique_ptr<void, HugeBufferDeleter>;

// At least `bytes` of uninitialized memory: whole 2-MiB pages, 2-MiB aligned
// and advised huge, from one huge page up; 64-byte aligned below. Null when
// out of memory. Thread-safe.
HugeBuffer allocate_huge(size_t bytes);

// ScratchBuffer: one allocate_huge buffer reused for a run of jobs of
// varying size (packing a model's matrices one after another), grown only
// when a job needs more, so its pages fault in once. Owns the buffer; not
// thread-safe (one per thread or per job sequence).
class ScratchBuffer {
 public:
  // At least `bytes` of uninitialized memory, valid until the next call;
  // null when out of memory (the buffer is then empty).
  void* get(size_t bytes);

 private:
  HugeBuffer buffer_;
  size_t bytes_ = 0;
};

// Deleter of a ZeroedMapping: unmaps its `bytes`.
struct MappingDeleter {
  size_t bytes = 0;
  void operator()(void* p) const;
};
using ZeroedMapping = std::unique_ptr<void, MappingDeleter>;

// At least `bytes` of zeroed memory that takes physical memory only where it
// is written: an anonymous mapping whose pages fault in on first touch, so
// the process's resident size follows use, not the size asked for. 2-MiB
// aligned and advised huge like allocate_huge (so it grows 2 MiB at a time).
// Null when the kernel refuses the size (more than memory and swap could
// ever back, under the default overcommit policy). Thread-safe.
ZeroedMapping map_zeroed(size_t bytes);

// Makes `bytes` at `p` (a map_zeroed mapping) resident now instead of at
// first write: MADV_POPULATE_WRITE where the kernel has it (5.14+), else (the
// kernel does not know the advice) a write of zeros. Returns 0, or the errno
// of a failure (ENOMEM: the machine cannot back it). Blocking; the caller
// owns the memory.
int populate_now(void* p, size_t bytes);

// The process's resident set size in bytes (VmRSS of /proc/self/status), or
// -1 where it cannot be read. Thread-safe.
int64_t resident_memory_bytes();

// HugeArena: packs many medium buffers (one per weight matrix, 1-6 MB each)
// into shared 2-MiB-aligned chunks advised huge, so that no matrix wastes the
// tail of its own huge page. Each piece is 64-byte aligned and keeps its
// chunk alive (a shared_ptr aliasing the chunk); a chunk is freed when its
// last piece goes (the arena itself holds no chunk). Pieces over a quarter
// of a chunk get a chunk of their own. Thread-safe (a mutex).
class HugeArena {
 public:
  explicit HugeArena(size_t chunk_bytes = size_t{32} << 20) : chunk_bytes_(chunk_bytes) {}

  // The arena shared by every model's packed weights.
  static HugeArena& weights();

  // At least `bytes` of uninitialized memory; null when out of memory.
  std::shared_ptr<void> allocate(size_t bytes);

 private:
  const size_t chunk_bytes_;
  Mutex mu_;
  std::weak_ptr<void> chunk_ GUARDED_BY(mu_);  // the chunk being filled, while any piece of it lives
  size_t used_ GUARDED_BY(mu_) = 0;
};

}  // namespace pagoda
