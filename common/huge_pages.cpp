#include "common/huge_pages.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace pagoda {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kLine = 64;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

bool huge_pages_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("PAGODA_HUGE_PAGES");
    return env == nullptr || env[0] != '0';
  }();
  return enabled;
}
}  // namespace

HugeBuffer allocate_huge(size_t bytes) {
  if (bytes < kHugePage) return HugeBuffer(std::aligned_alloc(kLine, round_up(bytes == 0 ? 1 : bytes, kLine)));
  const size_t size = round_up(bytes, kHugePage);
  void* p = std::aligned_alloc(kHugePage, size);
  // Advice only: a kernel without THP leaves the buffer on 4-KiB pages. Off,
  // the advice is the opposite, so that THP's "always" mode cannot make the
  // A/B's "off" side huge through the alignment.
  if (p != nullptr) (void)madvise(p, size, huge_pages_enabled() ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  return HugeBuffer(p);
}

void* ScratchBuffer::get(size_t bytes) {
  if (bytes > bytes_) {
    buffer_.reset();
    bytes_ = 0;
    buffer_ = allocate_huge(bytes);
    if (!buffer_) return nullptr;
    bytes_ = bytes;
  }
  return buffer_.get();
}

void MappingDeleter::operator()(void* p) const {
  if (p != nullptr) munmap(p, bytes);
}

ZeroedMapping map_zeroed(size_t bytes) {
  const size_t size = round_up(bytes == 0 ? 1 : bytes, kHugePage);
  // Map one huge page more, then unmap the head and tail around a 2-MiB
  // aligned window. Pages take memory only when touched; without
  // MAP_NORESERVE the kernel's overcommit check still refuses a size the
  // machine could never back, so an absurd kv.memory_gib fails at start-up.
  const size_t mapped = size + kHugePage;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return ZeroedMapping(nullptr, MappingDeleter{0});
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = start + mapped;
  if (end > aligned + size) munmap(reinterpret_cast<void*>(aligned + size), end - (aligned + size));
  void* p = reinterpret_cast<void*>(aligned);
  (void)madvise(p, size, huge_pages_enabled() ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  return ZeroedMapping(p, MappingDeleter{size});
}

int populate_now(void* p, size_t bytes) {
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14
#endif
  if (madvise(p, bytes, MADV_POPULATE_WRITE) == 0) return 0;
  if (errno != EINVAL) return errno;
  std::memset(p, 0, bytes);  // an older kernel: fault every page by writing it
  return 0;
}

int64_t resident_memory_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      int64_t kib = -1;
      in >> kib;
      return kib < 0 ? -1 : kib * 1024;
    }
    in.ignore(1 << 16, '\n');
  }
  return -1;
}

HugeArena& HugeArena::weights() {
  static HugeArena arena;
  return arena;
}

std::shared_ptr<void> HugeArena::allocate(size_t bytes) {
  const size_t size = round_up(bytes == 0 ? 1 : bytes, kLine);
  if (size > chunk_bytes_ / 4) {
    HugeBuffer own = allocate_huge(size);
    if (!own) return nullptr;
    return std::shared_ptr<void>(own.release(), HugeBufferDeleter());
  }
  MutexLock lock(mu_);
  std::shared_ptr<void> chunk = chunk_.lock();
  if (!chunk || used_ + size > chunk_bytes_) {
    HugeBuffer fresh = allocate_huge(chunk_bytes_);
    if (!fresh) return nullptr;
    chunk = std::shared_ptr<void>(fresh.release(), HugeBufferDeleter());
    chunk_ = chunk;
    used_ = 0;
  }
  void* piece = static_cast<char*>(chunk.get()) + used_;
  used_ += size;
  return std::shared_ptr<void>(chunk, piece);
}

}  // namespace pagoda
