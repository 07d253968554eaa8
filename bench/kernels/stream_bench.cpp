// stream_bench: STREAM-like memory bandwidth (triad a[i] = b[i] + s * c[i],
// and a read-only sum, the pattern of a weight-streaming GEMV) with OpenMP
// threads over arrays far beyond the last-level cache. Counts 3 x 8 bytes per
// triad element (STREAM convention, no write-allocate) and 4 bytes per read.
//
//   stream_bench [--mb 800] [--runs 15]
//   stream_bench --first-touch FILE [--mb 800]
//
// Prints the best and the median run (the machine is shared: the best run is
// what the memory system can do, the median what a neighbour's load leaves).
//
// --first-touch measures what bounds loading a model instead: reading a file
// through a fresh read-only mapping (its page-cache pages mapped on first
// touch) and writing fresh anonymous memory (transparent huge pages where
// allowed; pages faulted in and zeroed by the kernel on first touch), each
// first touch against a second pass over the same pages, on all threads.
// Read the file once before (cat FILE > /dev/null) so it is in the page cache.
#include <fcntl.h>
#include <omp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <immintrin.h>

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void report(const char* name, std::vector<double> gbs) {
  std::sort(gbs.begin(), gbs.end());
  std::printf("%-12s best %6.1f GB/s  median %6.1f GB/s  (%zu runs, %d threads)\n", name, gbs.back(),
              gbs[gbs.size() / 2], gbs.size(), omp_get_max_threads());
}

// Sum of n floats with eight independent accumulators, in AVX-512 (a
// function compiled for it, chosen at run time: the portable build compiles
// this file for baseline x86-64, whose scalar sum is one dependent add per
// float and measures the adder's latency, not memory).
__attribute__((target("avx512f"))) float sum_floats_avx512(const float* f, int64_t n) {
  int64_t i = 0;
  __m512 acc[8];
  for (auto& a : acc) a = _mm512_setzero_ps();
  for (; i + 128 <= n; i += 128)
    for (int j = 0; j < 8; ++j) acc[j] = _mm512_add_ps(acc[j], _mm512_loadu_ps(f + i + 16 * j));
  for (int j = 1; j < 8; ++j) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  float s = _mm512_reduce_add_ps(acc[0]);
  for (; i < n; ++i) s += f[i];
  return s;
}

// The same with AVX2 (hosts without AVX-512).
__attribute__((target("avx2"))) float sum_floats_avx2(const float* f, int64_t n) {
  int64_t i = 0;
  __m256 acc[8];
  for (auto& a : acc) a = _mm256_setzero_ps();
  for (; i + 64 <= n; i += 64)
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_add_ps(acc[j], _mm256_loadu_ps(f + i + 8 * j));
  for (int j = 1; j < 8; ++j) acc[0] = _mm256_add_ps(acc[0], acc[j]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc[0]);
  float s = 0;
  for (float v : lanes) s += v;
  for (; i < n; ++i) s += f[i];
  return s;
}

// Plain code for x86-64 without AVX2: still eight independent sums.
float sum_floats_plain(const float* f, int64_t n) {
  int64_t i = 0;
  float acc[8] = {};
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += f[i + j];
  float s = 0;
  for (float v : acc) s += v;
  for (; i < n; ++i) s += f[i];
  return s;
}

float sum_floats(const float* f, int64_t n) {
  static const int level = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
  if (level == 2) return sum_floats_avx512(f, n);
  if (level == 1) return sum_floats_avx2(f, n);
  return sum_floats_plain(f, n);
}

// Sum of the floats of [p, p + bytes) on all threads.
double sum_all_threads(const uint8_t* p, int64_t bytes) {
  const int64_t nf = bytes / 4;
  double s = 0;
#pragma omp parallel reduction(+ : s)
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = (nf / 1024 + nt - 1) / nt * 1024;
    const int64_t lo = std::min(nf, t * chunk), hi = t == nt - 1 ? nf : std::min(nf, lo + chunk);
    s += sum_floats(reinterpret_cast<const float*>(p) + lo, hi - lo);
  }
  return s;
}

int first_touch(const std::string& path, int64_t mb) {
  const int fd = open(path.c_str(), O_RDONLY);
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0) {
    if (fd >= 0) close(fd);
    std::fprintf(stderr, "stream_bench: cannot read %s\n", path.c_str());
    return 2;
  }
  const auto size = static_cast<int64_t>(st.st_size);
  void* mapped = mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (mapped == MAP_FAILED) {
    std::fprintf(stderr, "stream_bench: cannot map %s\n", path.c_str());
    return 2;
  }
  double sink = 0;
  for (const char* pass : {"first", "second"}) {
    const double t0 = now_s();
    sink += sum_all_threads(static_cast<const uint8_t*>(mapped), size);
    const double s = now_s() - t0;
    std::printf("mapped file read, %-6s touch: %6.2f GB/s (%.0f MB in %.3f s, %d threads)\n", pass,
                static_cast<double>(size) / s / 1e9, static_cast<double>(size) / 1e6, s, omp_get_max_threads());
  }
  munmap(mapped, static_cast<size_t>(size));
  const int64_t bytes = mb << 20;
  void* fresh = mmap(nullptr, static_cast<size_t>(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fresh == MAP_FAILED) return 2;
  madvise(fresh, static_cast<size_t>(bytes), MADV_HUGEPAGE);
  for (const char* pass : {"first", "second"}) {
    const double t0 = now_s();
#pragma omp parallel for schedule(static)
    for (int64_t off = 0; off < bytes; off += 1 << 20)
      std::memset(static_cast<uint8_t*>(fresh) + off, static_cast<int>(off >> 20), 1 << 20);
    const double s = now_s() - t0;
    std::printf("fresh memory write, %-6s touch: %6.2f GB/s (%lld MB in %.3f s)\n", pass,
                static_cast<double>(bytes) / s / 1e9, static_cast<long long>(mb), s);
  }
  // The sums are of arbitrary bytes (NaN likely): printed only so that they are computed.
  std::printf("(checksum %d)\n", static_cast<int>(sink == sink) + static_cast<uint8_t*>(fresh)[bytes / 2]);
  munmap(fresh, static_cast<size_t>(bytes));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t mb = 800;
  int runs = 15;
  std::string first_touch_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--mb") mb = std::max(1, std::atoi(argv[i + 1]));
    if (flag == "--runs") runs = std::max(1, std::atoi(argv[i + 1]));
    if (flag == "--first-touch") first_touch_file = argv[i + 1];
  }
  if (argc > 1 && std::string(argv[argc - 1]) == "--first-touch") {
    std::fprintf(stderr, "stream_bench: --first-touch needs a FILE\n");
    return 2;
  }
  if (!first_touch_file.empty()) return first_touch(first_touch_file, mb);
  // Triad: three double arrays totalling `mb`.
  const int64_t n = mb * (1 << 20) / 3 / 8;
  double* a = static_cast<double*>(std::aligned_alloc(64, n * 8));
  double* b = static_cast<double*>(std::aligned_alloc(64, n * 8));
  double* c = static_cast<double*>(std::aligned_alloc(64, n * 8));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    a[i] = 0;
    b[i] = 1;
    c[i] = 2;
  }
  std::vector<double> triad, read;
  for (int r = 0; r < runs; ++r) {
    const double t0 = now_s();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i] + 3.0 * c[i];
    triad.push_back(3.0 * 8 * n / (now_s() - t0) / 1e9);
  }
  // Read-only: sum of floats over all three arrays, 8 independent vector
  // accumulators per thread (a GEMV's access pattern without the FMAs).
  const int64_t nf = n * 2;
  double sink = 0;
  for (int r = 0; r < runs; ++r) {
    double total = 0;
    const double t0 = now_s();
    for (const double* arr : {a, b, c}) total += sum_all_threads(reinterpret_cast<const uint8_t*>(arr), 4 * nf);
    read.push_back(3.0 * 4 * nf / (now_s() - t0) / 1e9);
    sink += total;
  }
  report("triad", triad);
  report("read (sum)", read);
  std::printf("(checksum %g)\n", sink + a[n / 2]);
  std::free(a);
  std::free(b);
  std::free(c);
  return 0;
}
