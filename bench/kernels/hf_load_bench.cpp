// hf_load_bench: time to load a model directory (or llama2.c file) with
// load_model, and to then read every weight once (for F32 views this is when
// the mapping is paged in; BF16/F16 were converted during the load).
// Usage: hf_load_bench PATH [RUNS=5]. Prints each run and the medians.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "formats/model_loader.h"

using namespace pagoda;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Sums one float per 64 bytes of every weight array (touches every page and
// cache line; the sum keeps the reads alive).
double touch(const LoadedModel& m) {
  const ModelConfig& c = m.config;
  const ModelWeights& w = m.weights;
  double s = 0;
  auto read = [&s](const float* p, int64_t n) {
    if (p == nullptr) return;
    for (int64_t i = 0; i < n; i += 16) s += p[i];
  };
  read(w.token_embedding, c.vocab_size * c.dim);
  if (!c.tied_classifier) read(w.classifier, c.vocab_size * c.dim);
  read(w.rms_final, c.dim);
  for (const LayerWeights& l : w.layers) {
    read(l.wq, c.q_dim() * c.dim);
    read(l.wk, c.kv_dim() * c.dim);
    read(l.wv, c.kv_dim() * c.dim);
    read(l.wo, c.dim * c.q_dim());
    read(l.w1, c.hidden_dim * c.dim);
    read(l.w2, c.dim * c.hidden_dim);
    read(l.w3, c.hidden_dim * c.dim);
    read(l.rms_att, c.dim);
    read(l.rms_ffn, c.dim);
  }
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: hf_load_bench PATH [RUNS=5]\n");
    return 2;
  }
  const std::string path = argv[1];
  const int runs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  std::vector<double> load_s, touch_s;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    auto m = load_model(path);
    if (!m) {
      std::fprintf(stderr, "%s\n", m.status().message().c_str());
      return 1;
    }
    const double tl = seconds_since(t0);
    const auto t1 = std::chrono::steady_clock::now();
    const double sum = touch(**m);
    const double tt = seconds_since(t1);
    load_s.push_back(tl);
    touch_s.push_back(tt);
    std::printf("run %d: load_model %.3f s, read all weights %.3f s (owned arrays %zu, checksum %g)\n", r, tl, tt,
                (*m)->owned_arrays.size(), sum);
  }
  std::printf("median of %d: load_model %.3f s, read all weights %.3f s, total %.3f s\n", runs, median(load_s),
              median(touch_s), median(load_s) + median(touch_s));
  return 0;
}
