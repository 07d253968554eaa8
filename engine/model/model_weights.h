// The weights of a Llama-architecture model as float32 views, the
// LoadedModel that owns their storage, and the ModelReader interface that
// each checkpoint format (llama2.c, later Hugging Face safetensors)
// implements.
//
// All matrices are row-major [rows, cols] with the output dimension first,
// as stored in checkpoints, so y = W x reads row n of W for output n.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/mapped_file.h"
#include "common/status.h"
#include "engine/kernels/linear.h"
#include "engine/kernels/q4_weights.h"
#include "engine/model/model_config.h"

namespace pagoda {

// Views of one transformer block (pointers into LoadedModel's storage).
struct LayerWeights {
  const float* rms_att = nullptr;  // [dim]
  const float* wq = nullptr;       // [n_heads * head_dim, dim]
  const float* wk = nullptr;       // [kv_dim, dim]
  const float* wv = nullptr;       // [kv_dim, dim]
  const float* wo = nullptr;       // [dim, n_heads * head_dim]
  const float* rms_ffn = nullptr;  // [dim]
  const float* w1 = nullptr;       // [hidden_dim, dim]   gate
  const float* w2 = nullptr;       // [dim, hidden_dim]   down
  const float* w3 = nullptr;       // [hidden_dim, dim]   up
  // Optional attention biases (Qwen2), added after the projections; all
  // three are set or all are null.
  const float* bq = nullptr;  // [n_heads * head_dim]
  const float* bk = nullptr;  // [kv_dim]
  const float* bv = nullptr;  // [kv_dim]
};

// Views of the whole model.
struct ModelWeights {
  // [vocab, dim]; null when LoadedModel::stored holds it unexpanded (GGUF,
  // expand_matrices off): its rows are then expanded per token.
  const float* token_embedding = nullptr;
  std::vector<LayerWeights> layers;   // n_layers entries
  const float* rms_final = nullptr;   // [dim]
  const float* classifier = nullptr;  // [vocab, dim]; == token_embedding when tied
};

// How a checkpoint stores one weight matrix (GGUF files say per tensor), for
// model.weight_dtype auto and for exact 4-bit packing.
struct StoredMatrix {
  // The weight dtype of the file's precision class: f32 (f32), bf16 (f16,
  // bf16), int8 (q8_0, q5_*, q6_K), int4 (q4_*, q4_K, q2_K).
  WeightDtype precision = WeightDtype::kF32;
  // The matrix's shape as stored: [rows, cols].
  int64_t rows = 0, cols = 0;
  // q4_0, q4_1, q4_K: the groups as stored (Linear packs them as they are).
  Q4Weights::ColumnSource q4;
  // A matrix loaded without an f32 copy (null view; GgufReader with
  // expand_matrices off): writes its rows [first, first + count) as f32 to
  // `out`, the file's exact dequantization (several rows: on all threads,
  // unless called inside a parallel region; one row: on the caller's).
  // LlamaModel hands it to int8 Linears, which quantize a few rows at a
  // time, expands other Linears whole, one at a time, into a buffer it
  // reuses, and expands the embedding's rows of each step's tokens. Safe to
  // call from several threads at once.
  WeightBlock::RowSource expand;
};

// A model in memory: its config, the weight views, and whatever backs them
// (a read-only file mapping and/or owned float buffers). Immutable after
// loading, so concurrent reads are safe; movable only through unique_ptr.
struct LoadedModel {
  std::string path;
  ModelConfig config;
  ModelWeights weights;
  std::unique_ptr<MappedFile> file;                     // backs views into the file
  std::vector<std::unique_ptr<MappedFile>> more_files;  // further shards, if any
  // Back converted arrays, if any (allocated uninitialized: the converting
  // threads fault their pages in, a zero fill first would cost as much again).
  std::vector<std::unique_ptr<float[]>> owned_arrays;
  // Per matrix, keyed by the address of its pointer in `weights`
  // (&weights.layers[i].wq, &weights.classifier), how the file stores it;
  // empty for formats whose matrices are all f32/bf16 floats. A matrix whose
  // view is null exists only as StoredMatrix::q4 and ::expand (GgufReader,
  // expand_matrices off).
  std::unordered_map<const float* const*, StoredMatrix> stored;
};

// Reads one checkpoint format. Stateless implementations; a reader may be
// used from several threads at once.
class ModelReader {
 public:
  virtual ~ModelReader() = default;
  // Format name used in messages and --format flags ("llama2c", "hf").
  virtual const char* name() const = 0;
  // Loads the checkpoint at `path`; the Status names the file and the problem.
  virtual Result<std::unique_ptr<LoadedModel>> read(const std::string& path) const = 0;
};

}  // namespace pagoda
