// Writes Hugging Face model directories (config.json, generation_config.json,
// model.safetensors or N shards + model.safetensors.index.json) in the
// layouts hf_reader.h reads: random-weight models of a family for tests and
// benchmarks, and conversions of loaded weights (e.g. a llama2.c file).
// Free functions; thread-safe (they share no state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/model/model_config.h"
#include "engine/model/model_weights.h"
#include "formats/safetensors.h"

namespace pagoda {

// Checkpoint families make-model can write:
//   llama2: LlamaForCausalLM, rope_theta 1e4, rms_norm_eps 1e-5, untied
//   llama3: LlamaForCausalLM, rope_theta 5e5, rope_scaling llama3 (factor 8,
//           low 1, high 4, original 8192), eos_token_id as a list, untied
//   qwen2:  Qwen2ForCausalLM, rope_theta 1e6, rms_norm_eps 1e-6, q/k/v biases,
//           tie_word_embeddings, use_sliding_window false
enum class HfFamily { kLlama2, kLlama3, kQwen2 };

const std::vector<std::string>& hf_family_names();  // "llama2", "llama3", "qwen2"
// InvalidArgument listing the names if unknown.
Result<HfFamily> parse_hf_family(const std::string& name);

// `shape` with the family's conventions applied (theta, eps, scaling, tying,
// RopeLayout::kHalves).
ModelConfig hf_family_config(const ModelConfig& shape, HfFamily family);

struct HfWriteOptions {
  HfFamily family = HfFamily::kLlama2;  // architecture and config keys
  SafeDtype dtype = SafeDtype::kF32;    // kF32, kBF16 or kF16
  int shards = 1;                       // > 1: shards + index
};

// Writes a model with weights N(0, stddev^2) (biases too), RMSNorm gains 1,
// for `config` (use hf_family_config). The bytes depend only on the
// arguments. Creates `dir` if needed.
Status write_random_hf(const ModelConfig& config, const HfWriteOptions& options, const std::string& dir, uint64_t seed,
                       float stddev = 0.02f);

// Writes `weights` (shaped by `config`) as a Hugging Face directory. When
// config.rope_layout is kAdjacentPairs (llama2.c) the rows of wq and wk (and
// bq, bk) are permuted to the halves layout, as transformers'
// convert_llama_weights_to_hf does, so the written model computes the same
// function under RopeLayout::kHalves.
Status write_hf_model(const ModelConfig& config, const ModelWeights& weights, const HfWriteOptions& options,
                      const std::string& dir);

// Row permutation of one projection [n_heads * head_dim, cols] from
// adjacent-pair RoPE order to halves order: within each head, output row
// i (< head_dim / 2) is input row 2i and row head_dim / 2 + i is row 2i + 1.
// cols = 1 permutes a bias vector.
void permute_rows_adjacent_to_halves(const float* in, int64_t n_heads, int64_t head_dim, int64_t cols, float* out);

}  // namespace pagoda
