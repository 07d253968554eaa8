// Reader for Karpathy's llama2.c checkpoint format (legacy "version 0"):
// a header of 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len; a negative vocab_size means a separate classifier),
// then float32 arrays: token_embedding, rms_att, wq, wk, wv, wo, rms_ffn,
// w1, w2, w3, rms_final, two legacy RoPE tables (skipped), and the
// classifier if untied. See /work/shared/models/README.md.
//
// The file is memory-mapped read-only and every array is a view into it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "engine/model/model_config.h"
#include "engine/model/model_weights.h"

namespace pagoda {

struct Llama2cHeader {
  int32_t dim = 0;
  int32_t hidden_dim = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t vocab_size = 0;  // negative: a separate classifier follows
  int32_t seq_len = 0;
};
static_assert(sizeof(Llama2cHeader) == 28, "llama2.c header is 7 int32");

// The ModelConfig a header describes (llama2.c conventions: adjacent-pair
// RoPE, theta 10000, rms_eps 1e-5, BOS 1, EOS 2), validated. `source` names
// the file in error messages.
Result<ModelConfig> llama2c_config_from_header(const Llama2cHeader& header, const std::string& source);

// The header that describes `config` (vocab_size negated when untied).
Llama2cHeader llama2c_header_from_config(const ModelConfig& config);

// Exact size in bytes of a llama2.c file for `config` (header included).
uint64_t llama2c_file_size(const ModelConfig& config);

// ModelReader for llama2.c files. Stateless; thread-safe.
class Llama2cReader final : public ModelReader {
 public:
  const char* name() const override { return "llama2c"; }
  Result<std::unique_ptr<LoadedModel>> read(const std::string& path) const override;
};

}  // namespace pagoda
