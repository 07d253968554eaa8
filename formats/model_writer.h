// Synthetic checkpoints for tests and benchmarks: named model shapes
// ("presets") and a writer of random-weight llama2.c files.
// Free functions; thread-safe (they share no state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/model/model_config.h"

namespace pagoda {

// Preset names, in a stable order: "tiny", "bench-200m", "tinyllama-1.1b".
//   tiny:           dim 64, hidden 192, 2 layers, 4 heads, 2 kv heads, vocab 512
//                   (tok512.bin), 256 positions, separate classifier (tests)
//   bench-200m:     dim 1024, hidden 2816, 12 layers, 16 heads, 4 kv heads,
//                   vocab 32000 (Llama 2 tokenizer.bin), 2048 positions,
//                   separate classifier (benchmarks, ~0.8 GB f32)
//   tinyllama-1.1b: TinyLlama-1.1B's shape: dim 2048, hidden 5632, 22 layers,
//                   32 heads, 4 kv heads, vocab 32000, 2048 positions,
//                   separate classifier (~4.4 GB f32)
const std::vector<std::string>& model_preset_names();

// The config of a preset; InvalidArgument listing the names if unknown.
Result<ModelConfig> model_preset(const std::string& name);

// Writes a llama2.c checkpoint for `config` with weights drawn from
// N(0, stddev^2) and every RMSNorm weight 1.0. The bytes depend only on
// (config, seed, stddev), not on the thread count. Writes `path`.part then
// renames it, so a crash never leaves a truncated `path`.
Status write_random_llama2c(const ModelConfig& config, const std::string& path, uint64_t seed, float stddev = 0.02f);

// Fills out[0..n) with N(0, stddev^2) values from the deterministic stream
// (seed, stream); used by the writer and by tests and benchmarks.
void fill_normal(uint64_t seed, uint64_t stream, float stddev, float* out, int64_t n);

}  // namespace pagoda
