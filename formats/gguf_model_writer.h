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

// The weight encodings make-model writes: "f32", "f16", "q8_0", "q4_0" (every
// matrix in that type), "q4_k_m" (llama.cpp's Q4_K_M mix: q4_K, with q6_K for
// the classifier and for attn_v and ffn_down on some layers) and "q6_k"
// (llama.cpp's Q6_K: every matrix q6_K).
const std::vector<std::string>& gguf_quant_names();

// A matrix written in another type than its encoding asks for, because its
// rows are not a multiple of that type's block (llama.cpp falls back the
// same way: q4_K -> q5_0, q6_K -> q8_0, then f16 when 32 does not divide the
// rows either).
struct GgufFallback {
  std::string name;
  std::string wanted;   // ggml's type names: "q4_K", ...
  std::string written;  // "q5_0", "q8_0" or "f16"
};

struct GgufModelWriteResult {
  std::vector<GgufFallback> fallbacks;
  uint64_t bytes = 0;
};

// Writes `weights` (shaped by `config`; RopeLayout::kAdjacentPairs, as
// llama.cpp's `llama` architecture computes RoPE) to `path` with the matrices
// encoded as `quant` says and norms as f32. Writes `path`.part, then renames
// it. Quantizes with ggml's reference quantizers (no importance matrix), on
// all of OpenMP's threads.
// No vocabulary is written: serve the file with model.tokenizer set.
Result<GgufModelWriteResult> write_gguf_model(const ModelConfig& config, const ModelWeights& weights,
                                              const std::string& quant, const std::string& path);

}  // namespace pagoda
