// Reads a Hugging Face model's config.json into a ModelConfig, for the
// Llama-family architectures pagoda runs: LlamaForCausalLM (Llama 2 / 3,
// incl. Llama 3's rope_scaling), MistralForCausalLM (sliding_window) and
// Qwen2ForCausalLM (Q/K/V biases, use_sliding_window). Free functions;
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/model/model_config.h"

namespace pagoda {

enum class HfArch { kLlama, kMistral, kQwen2 };

// What config.json says, beyond the shape.
struct HfConfig {
  HfArch arch = HfArch::kLlama;
  std::string architecture;      // as spelled in "architectures" (or model_type)
  ModelConfig model;             // rope_layout kHalves; validated without dim == heads * head_dim
  bool qkv_bias = false;         // q/k/v_proj carry .bias tensors (Qwen2)
  std::vector<int32_t> eos_ids;  // every eos_token_id (model.eos_id is the first)
};

// "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM".
std::string hf_supported_architectures();

// Parses config.json text; `source` names the file in errors. Each error
// names the key at fault and what is allowed.
Result<HfConfig> parse_hf_config(const std::string& json_text, const std::string& source);

// Reads DIR/config.json (NotFound naming it if absent).
Result<HfConfig> read_hf_config(const std::string& dir);

}  // namespace pagoda
