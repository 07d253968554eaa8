// Reader for GGUF model files (llama.cpp's format, gguf/gguf_file.h).
//
// Architectures: `llama` (Llama 2/3, Mistral, TinyLlama, the llama2.c
// conversions; RoPE on adjacent pairs, as llama.cpp's converter permutes q/k
// for it) and `qwen2` (q/k/v biases; RoPE on halves). Tensor names follow
// llama.cpp: token_embd, output_norm, output (absent = tied), blk.N.{attn_norm,
// attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}
// (+ attn_{q,k,v}.bias). Every tensor is dequantized exactly (ggml_types.h)
// into float32 owned by the LoadedModel; F32 tensors stay views into the
// mapping. The engine then converts them to model.weight_dtype as for any
// other format.
//
// Errors name the file and the key or tensor at fault: an architecture or
// tensor type pagoda cannot run, a missing or mis-shaped tensor, a damaged file.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "engine/model/model_weights.h"

namespace pagoda {

// ModelReader for GGUF files. Stateless; thread-safe.
class GgufReader final : public ModelReader {
 public:
  // expand_matrices false: a matrix stored in any type but f32 gets no f32
  // copy: its view is null, and LoadedModel::stored holds how to expand it
  // (StoredMatrix::expand) and, for q4_0 / q4_1 / q4_K, its groups, which
  // int4 Linears read as they are. That includes the embedding, whose rows
  // LlamaModel expands per token; f32 tensors are views into the mapping.
  explicit GgufReader(bool expand_matrices = true) : expand_matrices_(expand_matrices) {}
  const char* name() const override { return "gguf"; }
  Result<std::unique_ptr<LoadedModel>> read(const std::string& path) const override;

 private:
  bool expand_matrices_;
};

}  // namespace pagoda
