// ModelConfig: the shape of a Llama-architecture model (dimensions, heads,
// RoPE flavour, norm epsilon, special token ids) and its validation.
// Plain value type; not synchronized.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace pagoda {

// How RoPE pairs the elements of one head.
//   kAdjacentPairs: rotates (x[2i], x[2i+1])            (llama2.c, Meta)
//   kHalves:        rotates (x[i], x[i + head_dim / 2])  (Hugging Face)
// Pair i uses the frequency theta^(-2i / head_dim) in both layouts.
enum class RopeLayout { kAdjacentPairs, kHalves };

const char* rope_layout_name(RopeLayout layout);

// Rescaling of the RoPE inverse frequencies (Hugging Face "rope_scaling").
//   kNone:   inv_freq[i] = theta^(-2i / head_dim)
//   kLinear: inv_freq[i] / factor (position interpolation)
//   kLlama3: Llama 3.1's rule: wavelengths 2*pi/inv_freq longer than
//            original_max_position / low_freq_factor are divided by factor,
//            shorter than original_max_position / high_freq_factor are kept,
//            the band between is interpolated smoothly.
struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3 };
  Type type = Type::kNone;
  float factor = 1.0f;                   // kLinear, kLlama3
  float low_freq_factor = 1.0f;          // kLlama3
  float high_freq_factor = 4.0f;         // kLlama3
  int64_t original_max_position = 8192;  // kLlama3: original_max_position_embeddings
};

struct ModelConfig {
  int64_t dim = 0;                                      // residual stream width (hidden_size)
  int64_t hidden_dim = 0;                               // MLP inner width (intermediate_size)
  int64_t n_layers = 0;                                 // transformer blocks
  int64_t n_heads = 0;                                  // query heads
  int64_t n_kv_heads = 0;                               // key/value heads (GQA: n_heads % n_kv_heads == 0)
  int64_t head_dim = 0;                                 // width of one head (even, for RoPE)
  int64_t vocab_size = 0;                               // tokens (rows of the embedding and classifier)
  int64_t max_seq_len = 0;                              // positions the model was trained for
  float rope_theta = 10000.0f;                          // RoPE base
  RopeLayout rope_layout = RopeLayout::kAdjacentPairs;  // llama2.c default
  RopeScaling rope_scaling;                             // none by default
  float rms_eps = 1e-5f;                                // RMSNorm epsilon (llama2.c uses 1e-5)
  int64_t sliding_window = 0;                           // attention window in tokens; 0 = full causal
  bool tied_classifier = true;                          // classifier shares the token embedding table
  int32_t bos_id = 1;                                   // beginning of sequence
  int32_t eos_id = 2;                                   // end of sequence

  int64_t q_dim() const { return n_heads * head_dim; }      // rows of wq
  int64_t kv_dim() const { return n_kv_heads * head_dim; }  // rows of wk, wv
  int64_t gqa_group() const { return n_kv_heads > 0 ? n_heads / n_kv_heads : 0; }

  // Number of weight parameters (embedding, classifier if untied, all layers,
  // final norm).
  int64_t num_parameters() const;

  // Checks every field; the error names the field, its value and what is
  // allowed. `require_dim_equals_heads` enforces dim == n_heads * head_dim
  // (true for llama2.c checkpoints, not for every Hugging Face model).
  Status validate(bool require_dim_equals_heads = true) const;

  // One line, e.g. "dim=64 hidden=172 layers=5 heads=8 kv_heads=4 ...".
  std::string summary() const;
};

}  // namespace pagoda
