// Writes a Llama-architecture model as a GGUF file in llama.cpp's layout
// (architecture `llama`, its tensor names and metadata keys), so that
// formats/gguf_reader.h and llama.cpp read it: for benchmarks at real shapes
// in the precisions GGUF users hold, and for tests.
// Free functions; thread-safe (they share no state).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "engine/model/model_config.h"
#include "engine/model/model_weights.h"

namespace pagoda {

// The weight encodings make-model writes: "f32", "f16", "q8_0", "q4_0".
const std::vector<std::string>& gguf_quant_names();

struct GgufModelWriteResult {
  // Tensors written as f16 instead of the asked type because their rows are
  // not a multiple of its block of 32 (llama.cpp falls back the same way).
  std::vector<std::string> fallbacks;
  uint64_t bytes = 0;
};

// Writes `weights` (shaped by `config`; RopeLayout::kAdjacentPairs, as
// llama.cpp's `llama` architecture computes RoPE) to `path` with every matrix
// encoded as `quant` and norms as f32. Writes `path`.part, then renames it.
// No vocabulary is written: serve the file with model.tokenizer set.
Result<GgufModelWriteResult> write_gguf_model(const ModelConfig& config, const ModelWeights& weights,
                                              const std::string& quant, const std::string& path);

}  // namespace pagoda
