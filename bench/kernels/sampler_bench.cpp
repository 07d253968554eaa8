// sampler_bench: microseconds per Sampler::sample call on one 32000-entry
// row of logits, for the common parameter mixes; median of several runs.
// Usage: sampler_bench [RUNS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "engine/sampler/sampler.h"

using pagoda::RequestRng;
using pagoda::Sampler;
using pagoda::SamplingParams;

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
  std::mt19937 gen(1);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> peaked(32000), flat(32000);
  for (float& x : peaked) x = dist(gen);
  for (float& x : flat) x = dist(gen) * 0.1f;
  std::vector<int32_t> history(1000);
  for (auto& t : history) t = static_cast<int32_t>(gen() % 32000);

  Sampler sampler;
  RequestRng rng(1);
  auto bench = [&](const char* name, const std::vector<float>& logits, SamplingParams p, bool penalties) {
    constexpr int kIters = 300;
    std::vector<double> us;
    for (int r = 0; r < runs; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      int64_t sink = 0;
      for (int i = 0; i < kIters; ++i) {
        sink += sampler
                    .sample(logits, p, rng, penalties ? std::span<const int32_t>(history) : std::span<const int32_t>(),
                            penalties ? std::span<const int32_t>(history).first(200) : std::span<const int32_t>())
                    .token;
      }
      const auto t1 = std::chrono::steady_clock::now();
      if (sink < 0) return;
      us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / kIters);
    }
    std::sort(us.begin(), us.end());
    std::printf("%-40s median %7.1f us  (min %7.1f, max %7.1f)\n", name, us[us.size() / 2], us.front(), us.back());
  };
  SamplingParams p;
  p.temperature = 0;
  bench("greedy", peaked, p, false);
  p = {};
  bench("temperature 1", peaked, p, false);
  p.temperature = 0.7f;
  p.top_p = 0.9f;
  bench("T 0.7, top_p 0.9 (peaked logits)", peaked, p, false);
  bench("T 0.7, top_p 0.9 (flat logits, worst case)", flat, p, false);
  p.top_k = 50;
  bench("T 0.7, top_k 50, top_p 0.9", peaked, p, false);
  p = {};
  p.min_p = 0.05f;
  bench("min_p 0.05", peaked, p, false);
  p = {};
  p.repetition_penalty = 1.1f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.5f;
  bench("T 1 + 3 penalties (1000 prompt, 200 out)", peaked, p, true);
  p = {};
  p.logprobs = 5;
  bench("T 1 + top-5 logprobs", peaked, p, false);
  return 0;
}
