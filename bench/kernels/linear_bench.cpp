// linear_bench: throughput of pagoda::Linear (oneDNN matmul) on the
// bench-200m projection shapes, for f32, bf16 and int8 weights and batch
// sizes M = 1..64. Prints a Markdown table: median time per call over
// several runs, GFLOP/s, and GB/s of packed weight bytes streamed.
//
// Each measurement cycles through enough copies of the layer to cover a
// working set larger than the last-level cache (default 600 MB, L3 is
// 300 MB here), as in a real forward pass where every layer's weights are
// different, so M = 1 numbers are memory-bound like decode.
//
// The machine is shared, so the table also gives the best run ("best us"):
// the median shows what a neighbour's load costs, the best what the kernel
// can do. A last table repeats DESIGN.md's reference point (M = 32,
// K = N = 2048, one copy, cache-resident).
//
// Usage: linear_bench [--reps N] [--ws-mb MB] [--dtype f32|bf16|int8] [--m 1,4,16,32,64]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "engine/kernels/linear.h"
#include "formats/model_writer.h"

using namespace pagoda;

namespace {

struct Shape {
  const char* name;
  int64_t in, out;
};

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  int reps = 7;
  int64_t ws_mb = 600;
  std::vector<WeightDtype> dtypes = {WeightDtype::kF32, WeightDtype::kBF16, WeightDtype::kInt8};
  std::vector<int64_t> batches = {1, 4, 16, 32, 64};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--reps") {
      reps = std::max(1, std::atoi(argv[i + 1]));
    } else if (flag == "--ws-mb") {
      ws_mb = std::max(1, std::atoi(argv[i + 1]));
    } else if (flag == "--dtype") {
      auto d = parse_weight_dtype(argv[i + 1]);
      if (!d) {
        std::fprintf(stderr, "%s\n", d.status().message().c_str());
        return 2;
      }
      dtypes = {*d};
    } else if (flag == "--m") {
      batches.clear();
      std::stringstream list(argv[i + 1]);
      for (std::string item; std::getline(list, item, ',');) batches.push_back(std::max(1, std::atoi(item.c_str())));
    } else {
      std::fprintf(stderr, "usage: linear_bench [--reps N] [--ws-mb MB] [--dtype D] [--m M1,M2,...]\n");
      return 2;
    }
  }
  const Shape shapes[] = {{"qkv", 1024, 1536},
                          {"wo", 1024, 1024},
                          {"gate_up", 1024, 5632},
                          {"down", 2816, 1024},
                          {"classifier", 1024, 32000}};

  std::printf("linear_bench: %d OpenMP threads, %d runs per point (median), working set >= %lld MB\n\n",
              omp_get_max_threads(), reps, static_cast<long long>(ws_mb));
  std::printf(
      "| dtype | layer | K -> N | M | median us/call | GFLOP/s | weight GB/s | best us | best GFLOP/s | best GB/s | "
      "oneDNN impl |\n");
  std::printf("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
  for (WeightDtype dtype : dtypes) {
    for (const Shape& s : shapes) {
      std::vector<float> w(static_cast<size_t>(s.in * s.out));
      fill_normal(1, 1, 0.02f, w.data(), static_cast<int64_t>(w.size()));
      std::vector<Linear> copies;
      int64_t bytes = 0;
      double create_ms = -1;
      do {
        const double c0 = now_s();
        auto lin = Linear::create(w.data(), s.out, s.in, dtype);
        if (!lin) {
          std::fprintf(stderr, "%s\n", lin.status().message().c_str());
          return 1;
        }
        if (create_ms < 0) create_ms = (now_s() - c0) * 1e3;  // quantize + pack + 18 primitives
        bytes += lin->weight_bytes();
        copies.push_back(std::move(lin).value());
      } while (bytes < ws_mb * (int64_t(1) << 20));
      std::printf("| %s | %s | create: %.1f ms, %zu copies, %.1f MB packed each | | | | | | | | |\n",
                  weight_dtype_name(dtype), s.name, create_ms, copies.size(), double(copies[0].weight_bytes()) / 1e6);
      for (int64_t M : batches) {
        std::vector<float> x(static_cast<size_t>(M * s.in)), y(static_cast<size_t>(M * s.out));
        fill_normal(2, 2, 1.0f, x.data(), static_cast<int64_t>(x.size()));
        for (auto& l : copies) l.forward(x.data(), M, y.data());  // warm-up
        std::vector<double> per_call;
        size_t next = 0;
        for (int r = 0; r < reps; ++r) {
          int64_t calls = 0;
          const double t0 = now_s();
          double t1 = t0;
          // At least one pass over the copies and at least 50 ms.
          while (calls < static_cast<int64_t>(copies.size()) || t1 - t0 < 0.05) {
            copies[next].forward(x.data(), M, y.data());
            next = (next + 1) % copies.size();
            ++calls;
            t1 = now_s();
          }
          per_call.push_back((t1 - t0) / static_cast<double>(calls));
        }
        std::sort(per_call.begin(), per_call.end());
        const double t = per_call[per_call.size() / 2], best = per_call[0];
        const double flop = 2.0 * double(M) * double(s.in) * double(s.out);
        const double wbytes = double(copies[0].weight_bytes());
        std::printf("| %s | %s | %lld -> %lld | %lld | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s |\n",
                    weight_dtype_name(dtype), s.name, static_cast<long long>(s.in), static_cast<long long>(s.out),
                    static_cast<long long>(M), t * 1e6, flop / t / 1e9, wbytes / t / 1e9, best * 1e6, flop / best / 1e9,
                    wbytes / best / 1e9, copies[0].impl_name(M).c_str());
        std::fflush(stdout);
      }
    }
  }
  // DESIGN.md's reference point: M = 32, K = N = 2048, one cache-resident copy.
  std::printf("\n| dtype | M=32 K=N=2048 (hot) | median GFLOP/s | best GFLOP/s |\n| --- | --- | ---: | ---: |\n");
  for (WeightDtype dtype : dtypes) {
    const int64_t K = 2048, N = 2048, M = 32;
    std::vector<float> w(static_cast<size_t>(K * N)), x(static_cast<size_t>(M * K)), y(static_cast<size_t>(M * N));
    fill_normal(3, 3, 0.02f, w.data(), K * N);
    fill_normal(4, 4, 1.0f, x.data(), M * K);
    auto lin = Linear::create(w.data(), N, K, dtype);
    if (!lin) return 1;
    lin->forward(x.data(), M, y.data());
    std::vector<double> per_call;
    for (int r = 0; r < reps; ++r) {
      int64_t calls = 0;
      const double t0 = now_s();
      double t1 = t0;
      while (t1 - t0 < 0.05) {
        lin->forward(x.data(), M, y.data());
        ++calls;
        t1 = now_s();
      }
      per_call.push_back((t1 - t0) / static_cast<double>(calls));
    }
    std::sort(per_call.begin(), per_call.end());
    const double flop = 2.0 * M * K * N;
    std::printf("| %s | %s | %.1f | %.1f |\n", weight_dtype_name(dtype), lin->impl_name(M).c_str(),
                flop / per_call[per_call.size() / 2] / 1e9, flop / per_call[0] / 1e9);
  }
  return 0;
}
