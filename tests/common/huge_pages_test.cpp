// Huge-page allocators: alignment, non-overlapping pieces, chunk lifetime
// (ASan catches a piece outliving its chunk) and the madvise advice itself.
#include "common/huge_pages.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace pagoda {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

uintptr_t addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

// The VmFlags of the mapping in /proc/self/smaps that holds `p` ("" if none).
std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = addr(p) >= lo && addr(p) < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

TEST_CASE("allocate_huge aligns big buffers to huge pages and advises them") {
  HugeBuffer big = allocate_huge(3 * kMiB + 5);
  REQUIRE(big);
  CHECK(addr(big.get()) % (2 * kMiB) == 0);
  std::memset(big.get(), 0x5a, 4 * kMiB);  // whole huge pages are usable
  const char* env = std::getenv("PAGODA_HUGE_PAGES");
  const bool advised = env == nullptr || env[0] != '0';
  if (advised && std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled")) {  // a kernel with THP
    const std::string flags = vm_flags_of(big.get());
    INFO(flags);
    CHECK(flags.find(" hg") != std::string::npos);  // MADV_HUGEPAGE
  }

  HugeBuffer small = allocate_huge(100);
  REQUIRE(small);
  CHECK(addr(small.get()) % 64 == 0);
  HugeBuffer empty = allocate_huge(0);
  CHECK(empty);
}

TEST_CASE("HugeArena packs pieces into shared chunks that outlive the arena's interest") {
  HugeArena arena(8 * kMiB);
  std::vector<std::shared_ptr<void>> pieces;
  std::vector<size_t> sizes;
  for (size_t i = 0; i < 12; ++i) {  // 12 x ~1.5 MiB: three chunks
    const size_t n = kMiB + kMiB / 2 + 13 * i;
    pieces.push_back(arena.allocate(n));
    sizes.push_back(n);
    REQUIRE(pieces.back());
    CHECK(addr(pieces.back().get()) % 64 == 0);
    std::memset(pieces.back().get(), static_cast<int>(i + 1), n);
  }
  // Pieces of one chunk are adjacent, 64-byte rounded; a new chunk starts 2-MiB aligned.
  CHECK(addr(pieces[1].get()) == addr(pieces[0].get()) + (sizes[0] + 63) / 64 * 64);
  std::set<uintptr_t> chunk_starts;
  for (const auto& p : pieces) {
    if (addr(p.get()) % (2 * kMiB) == 0) chunk_starts.insert(addr(p.get()));
  }
  CHECK(chunk_starts.size() >= 3);
  // No piece overwrote another.
  for (size_t i = 0; i < pieces.size(); ++i) {
    const auto* bytes = static_cast<const unsigned char*>(pieces[i].get());
    CHECK(bytes[0] == i + 1);
    CHECK(bytes[sizes[i] - 1] == i + 1);
  }
  // Dropping the early pieces frees their chunk (the first five pieces fill
  // it); a chunk that still has a live piece stays, and the later pieces stay
  // valid.
  std::weak_ptr<void> first_chunk = pieces[0], second_chunk = pieces[5];
  pieces.erase(pieces.begin(), pieces.begin() + 6);
  CHECK(first_chunk.expired());
  CHECK_FALSE(second_chunk.expired());
  std::memset(pieces.back().get(), 0x11, sizes.back());
  // The arena holds no chunk of its own: with every piece gone, all are freed.
  std::weak_ptr<void> last_chunk = pieces.back();
  pieces.clear();
  CHECK(second_chunk.expired());
  CHECK(last_chunk.expired());

  // Over a quarter of a chunk: a chunk of its own, huge-page aligned.
  std::shared_ptr<void> large = arena.allocate(3 * kMiB);
  REQUIRE(large);
  CHECK(addr(large.get()) % (2 * kMiB) == 0);
  std::memset(large.get(), 0x22, 3 * kMiB);
}

TEST_CASE("HugeArena hands distinct pieces to concurrent callers") {
  HugeArena arena(4 * kMiB);
  constexpr int kThreads = 4, kEach = 64;
  std::vector<std::vector<std::shared_ptr<void>>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        got[t].push_back(arena.allocate(64 * 1024));
        std::memset(got[t].back().get(), t, 64 * 1024);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uintptr_t> starts;
  for (const auto& list : got) {
    for (const auto& p : list) {
      REQUIRE(p);
      starts.insert(addr(p.get()));
    }
  }
  CHECK(starts.size() == size_t{kThreads} * kEach);
  // No two pieces overlap.
  for (auto it = starts.begin(); std::next(it) != starts.end(); ++it) CHECK(*std::next(it) - *it >= 64 * 1024);
  for (int t = 0; t < kThreads; ++t) {
    for (const auto& p : got[t]) CHECK(static_cast<const unsigned char*>(p.get())[64 * 1024 - 1] == t);
  }
}

TEST_CASE("ScratchBuffer keeps its buffer for smaller jobs and grows it for larger ones") {
  ScratchBuffer scratch;
  auto* small = static_cast<uint8_t*>(scratch.get(4096));
  REQUIRE(small != nullptr);
  std::memset(small, 7, 4096);
  CHECK(scratch.get(100) == small);  // reused, contents untouched
  CHECK(small[4095] == 7);
  const size_t big = size_t{3} << 20;
  auto* grown = static_cast<uint8_t*>(scratch.get(big));
  REQUIRE(grown != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(grown) % (size_t{2} << 20) == 0);  // allocate_huge's alignment
  std::memset(grown, 1, big);                                          // all of it is writable
  CHECK(scratch.get(4096) == grown);
}

}  // namespace
}  // namespace pagoda
