// load_model: picks the ModelReader for a checkpoint path and loads it.
// Free functions; thread-safe.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "engine/model/model_weights.h"

namespace pagoda {

enum class ModelFormat {
  kAuto,     // a GGUF file -> gguf; another regular file -> llama2c; a directory with config.json -> hf
  kLlama2c,  // Karpathy's llama2.c checkpoint
  kHf,       // Hugging Face directory (config.json + safetensors), see hf_reader.h
  kGguf,     // llama.cpp's GGUF file, see gguf_reader.h
};

// Parses "auto" | "llama2c" | "hf" | "gguf"; the error lists the allowed values.
Result<ModelFormat> parse_model_format(const std::string& name);

struct LoadOptions {
  // false: quantized and f16/bf16 GGUF matrices keep no f32 copy
  // (GgufReader): LlamaModel expands them one Linear at a time while packing
  // (StoredMatrix::expand), or packs an int4 Linear whose parts are all
  // 4-bit from their groups; a non-f32 embedding has no view either (its
  // rows are expanded per step). For engines; true for tools that read the
  // float views.
  bool expand_matrices = true;
};

// Loads the model at `path`. Errors name the path and what is wrong.
Result<std::unique_ptr<LoadedModel>> load_model(const std::string& path, ModelFormat format = ModelFormat::kAuto,
                                                const LoadOptions& options = {});

}  // namespace pagoda
