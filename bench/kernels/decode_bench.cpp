// decode_bench: engine step time for a model at several batch sizes, next to
// the machine's limits. For each batch size B, B sequences are prefilled with
// `--context` tokens, then decode steps (one token per sequence) are timed.
// Also times a prefill of `--prefill` tokens (one sequence, one step) and,
// with `--mixed N`, the step a cached prompt costs while the largest batch
// decodes: its other B - 1 sequences decode one token each and the last one
// computes N prompt tokens after its `--context` (a prefix-cache hit).
//
//   decode_bench --model FILE [--dtype auto|f32|bf16|int8|int4] [--kv f32|bf16|f16|int8|int4]
//                [--batches 1,4,16,32,64] [--context 128] [--steps 16] [--runs 5]
//                [--bandwidth-gbs 29] [--peak-gflops G]
//
// --peak-gflops defaults to the weight dtype's GEMM peak measured on the
// 2-core reference machine without AMX (DESIGN.md): f32 230, bf16 155, int8
// 1000 GFLOP/s. Pass the host's own figure elsewhere (AMX hosts reach more).
//
// Reports medians over --runs runs of --steps steps each: ms per step,
// tokens/s, weight GB/s streamed (batch 1 vs the bandwidth roofline) and
// GFLOP/s (2 * matmul parameters * tokens per step, vs the GEMM peak).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/model/llama_model.h"
#include "formats/model_loader.h"

using namespace pagoda;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"decode_bench: engine step time at several batch sizes"};
  std::string model_path, dtype = "f32", kv_dtype = "f32", batches = "1,4,16,32,64";
  int context = 128, steps = 16, runs = 5, prefill = 512, mixed = 0;
  double bandwidth_gbs = 29, peak_gflops = 0;  // 0: the dtype's default above
  app.add_option("--model", model_path, "model file (llama2.c, GGUF) or Hugging Face directory")->required();
  app.add_option("--dtype", dtype, "weight dtype");
  app.add_option("--kv", kv_dtype, "KV dtype");
  app.add_option("--batches", batches, "batch sizes");
  app.add_option("--context", context, "tokens per sequence before decoding");
  app.add_option("--steps", steps, "decode steps per run");
  app.add_option("--runs", runs, "runs (median reported)");
  app.add_option("--prefill", prefill, "prefill length for the prefill measurement");
  app.add_option("--mixed", mixed, "prompt tokens of the mixed step (0: not measured)");
  app.add_option("--bandwidth-gbs", bandwidth_gbs, "memory bandwidth for the roofline");
  app.add_option("--peak-gflops", peak_gflops, "GEMM peak for the weight dtype (default: its reference peak)");
  CLI11_PARSE(app, argc, argv);

  auto wdt = parse_weight_choice(dtype);  // auto: as the file stores each matrix
  // GGUF matrices keep no f32 copies, as the server loads them.
  LoadOptions load_options;
  load_options.expand_matrices = false;
  auto loaded = load_model(model_path, ModelFormat::kAuto, load_options);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.status().to_string().c_str());
    return 1;
  }
  std::shared_ptr<const LoadedModel> model(std::move(loaded).value());
  const ModelConfig& c = model->config;
  auto kdt = parse_kv_dtype(kv_dtype);
  if (!wdt || !kdt) {
    std::fprintf(stderr, "bad --dtype or --kv\n");
    return 2;
  }
  if (peak_gflops <= 0) peak_gflops = *wdt == WeightDtype::kInt8 ? 1000 : *wdt == WeightDtype::kBF16 ? 155 : 230;
  const std::vector<int> bs = parse_list(batches);
  const int max_b = *std::max_element(bs.begin(), bs.end());
  const int P = 16;
  const int64_t per_seq_pages = (std::max(context + steps * runs + mixed + 2, prefill) + P - 1) / P + 1;
  auto storage =
      KvStorage::create({int(c.n_layers), int(c.n_kv_heads), int(c.head_dim), P, *kdt}, 1 + per_seq_pages * max_b);
  if (!storage) {
    std::fprintf(stderr, "%s\n", storage.status().to_string().c_str());
    return 1;
  }
  auto lm = LlamaModel::create(model, *wdt, storage->get());
  if (!lm) {
    std::fprintf(stderr, "%s\n", lm.status().to_string().c_str());
    return 1;
  }
  LlamaModel& m = **lm;
  const double weight_gb = m.weight_bytes() / 1e9;
  // Matmul parameters per token (every projection + classifier).
  const double matmul_params = double(c.n_layers) * (double(c.dim) * (c.q_dim() + 2 * c.kv_dim()) +
                                                     double(c.q_dim()) * c.dim + 3.0 * c.dim * c.hidden_dim) +
                               double(c.vocab_size) * c.dim;
  std::printf("model %s: %s, weights %s (%.1f MB packed), kv %s, context %d\n", model_path.c_str(), c.summary().c_str(),
              dtype.c_str(), weight_gb * 1e3, kv_dtype.c_str(), context);
  std::printf("%6s %10s %10s %12s %12s %10s\n", "batch", "ms/step", "tokens/s", "weight GB/s", "GFLOP/s", "of limit");

  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(max_b));
  for (int s = 0; s < max_b; ++s)
    for (int64_t p = 0; p < per_seq_pages; ++p) tables[size_t(s)].push_back(int32_t(1 + s * per_seq_pages + p));
  std::vector<float> logits;
  // One decode token at `pos` for each of sequences [0, n).
  auto append_decodes = [&](BatchInput& step, int n, int64_t pos) {
    for (int s = 0; s < n; ++s) {
      step.tokens.push_back(int32_t(3 + (s + pos) % (c.vocab_size - 3)));
      step.seqs.push_back({pos, 1, tables[size_t(s)], true});
    }
  };
  for (int B : bs) {
    // Prefill every sequence's context in one step.
    BatchInput pre;
    for (int s = 0; s < B; ++s) {
      for (int t = 0; t < context; ++t) pre.tokens.push_back(int32_t(3 + (s * 7 + t * 13) % (c.vocab_size - 3)));
      pre.seqs.push_back({0, context, tables[size_t(s)], true});
    }
    if (!m.forward(pre, &logits).is_ok()) return 1;
    int64_t pos = context;
    std::vector<double> ms;
    for (int r = 0; r < runs; ++r) {
      const auto t0 = Clock::now();
      for (int k = 0; k < steps; ++k, ++pos) {
        BatchInput step;
        append_decodes(step, B, pos);
        if (!m.forward(step, &logits).is_ok()) return 1;
      }
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / steps);
    }
    const double step_ms = median(ms);
    const double gbs = weight_gb / (step_ms / 1e3);
    const double gflops = 2.0 * matmul_params * B / (step_ms / 1e3) / 1e9;
    const double of_limit = B == 1 ? gbs / bandwidth_gbs : gflops / peak_gflops;
    std::printf("%6d %10.2f %10.1f %12.1f %12.1f %9.0f%%\n", B, step_ms, B / (step_ms / 1e3), gbs, gflops,
                100 * of_limit);
    std::fflush(stdout);
    if (mixed > 0 && B == max_b) {
      // B - 1 decodes at the next position plus N prompt tokens of the last
      // sequence after its context, the same positions every step (their
      // K/V rewritten in place: only the timing matters).
      const int64_t chunk_pos = pos;
      std::vector<double> mixed_ms;
      for (int k = 0; k < std::max(steps, 3) * runs; ++k) {
        BatchInput step;
        append_decodes(step, B - 1, pos);
        for (int t = 0; t < mixed; ++t) step.tokens.push_back(int32_t(3 + (t * 11) % (c.vocab_size - 3)));
        step.seqs.push_back({chunk_pos, mixed, tables[size_t(B - 1)], true});
        const auto t0 = Clock::now();
        if (Status st = m.forward(step, &logits); !st.is_ok()) {
          std::fprintf(stderr, "mixed step: %s\n", st.to_string().c_str());
          return 1;
        }
        mixed_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      std::printf("mixed step, %d decodes + %d prompt tokens at context %lld: %.2f ms\n", B - 1, mixed,
                  static_cast<long long>(chunk_pos), median(mixed_ms));
    }
  }
  // Prefill throughput: one sequence of `prefill` tokens in one step.
  std::vector<double> ms;
  for (int r = 0; r < runs; ++r) {
    BatchInput pre;
    for (int t = 0; t < prefill; ++t) pre.tokens.push_back(int32_t(3 + (t * 13) % (c.vocab_size - 3)));
    pre.seqs.push_back({0, prefill, tables[0], true});
    const auto t0 = Clock::now();
    if (!m.forward(pre, &logits).is_ok()) return 1;
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::printf("prefill %d tokens: %.1f ms, %.0f tokens/s\n", prefill, median(ms), prefill / (median(ms) / 1e3));
  std::printf("limits used: %.0f GB/s bandwidth (batch 1), %.0f GFLOP/s GEMM peak (larger batches)\n", bandwidth_gbs,
              peak_gflops);
  return 0;
}
