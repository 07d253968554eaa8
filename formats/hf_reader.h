// Reader for Hugging Face model directories: config.json (see hf_config.h)
// plus model.safetensors, or shards listed by model.safetensors.index.json
// ("weight_map": tensor name -> shard file).
//
// Tensor names follow transformers' Llama layout: model.embed_tokens.weight,
// model.layers.N.{input_layernorm, post_attention_layernorm}.weight,
// model.layers.N.self_attn.{q,k,v,o}_proj.weight (+ q/k/v .bias for Qwen2),
// model.layers.N.mlp.{gate,up,down}_proj.weight, model.norm.weight and
// lm_head.weight (absent when tie_word_embeddings). F32 tensors are views
// into the read-only mappings; BF16 and F16 are converted to float32 into
// LoadedModel::owned_arrays. q/k rows are used as stored (RopeLayout::kHalves).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "engine/model/model_weights.h"

namespace pagoda {

// Names of the files in a model directory.
inline constexpr const char* kHfConfigFile = "config.json";
inline constexpr const char* kHfWeightsFile = "model.safetensors";
inline constexpr const char* kHfIndexFile = "model.safetensors.index.json";

// ModelReader for Hugging Face directories. Stateless; thread-safe.
// Errors name the file and the tensor or config key at fault: unsupported
// architecture, missing or mis-shaped tensor, unsupported dtype, damaged
// safetensors file.
class HfReader final : public ModelReader {
 public:
  const char* name() const override { return "hf"; }
  Result<std::unique_ptr<LoadedModel>> read(const std::string& dir) const override;
};

}  // namespace pagoda
