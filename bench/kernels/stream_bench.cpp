// stream_bench: STREAM-like memory bandwidth (triad a[i] = b[i] + s * c[i],
// and a read-only sum, the pattern of a weight-streaming GEMV) with OpenMP
// threads over arrays far beyond the last-level cache. Counts 3 x 8 bytes per
// triad element (STREAM convention, no write-allocate) and 4 bytes per read.
//
//   stream_bench [--mb 800] [--runs 15]
//
// Prints the best and the median run (the machine is shared: the best run is
// what the memory system can do, the median what a neighbour's load leaves).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/kernels/simd.h"

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void report(const char* name, std::vector<double> gbs) {
  std::sort(gbs.begin(), gbs.end());
  std::printf("%-12s best %6.1f GB/s  median %6.1f GB/s  (%zu runs, %d threads)\n", name, gbs.back(),
              gbs[gbs.size() / 2], gbs.size(), omp_get_max_threads());
}

// Sum of n floats with four independent accumulators (n % 64 == 0 except
// the tail, summed plainly).
float sum_floats(const float* f, int64_t n) {
  int64_t i = 0;
  float s = 0;
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(f + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(f + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(f + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(f + i + 48));
  }
  s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
#endif
  for (; i < n; ++i) s += f[i];
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t mb = 800;
  int runs = 15;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--mb") mb = std::max(1, std::atoi(argv[i + 1]));
    if (flag == "--runs") runs = std::max(1, std::atoi(argv[i + 1]));
  }
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
  // Read-only: sum of floats over all three arrays, 4 independent AVX-512
  // accumulators per thread (a GEMV's access pattern without the FMAs).
  const int64_t nf = n * 2;
  double sink = 0;
  for (int r = 0; r < runs; ++r) {
    double total = 0;
    const double t0 = now_s();
    for (const double* arr : {a, b, c}) {
      const float* f = reinterpret_cast<const float*>(arr);
      double s = 0;
#pragma omp parallel reduction(+ : s)
      {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        const int64_t chunk = (nf / 64 + nt - 1) / nt * 64;
        const int64_t lo = std::min(nf, t * chunk), hi = std::min(nf, lo + chunk);
        s += sum_floats(f + lo, hi - lo);
      }
      total += s;
    }
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
