// LlamaModel: one batched forward pass of a Llama-family model over paged KV.
//
// Input is a flat list of tokens from many sequences at once (prefill chunks
// and single decode tokens mixed), each sequence with its first position and
// page table. Every projection is one GEMM over the whole batch (QKV fused,
// gate|up fused); attention runs per sequence over its pages; new K/V are
// written to their slots (page = page_table[pos / page_size]) before
// attention reads them; logits are computed only for sequences that sample.
//
// Owns the packed weights (Linear), the RoPE table and its scratch buffers;
// borrows the KvStorage. NOT thread-safe: the engine thread alone calls
// forward().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "common/status.h"
#include "engine/kernels/attention/paged_attention.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/linear.h"
#include "engine/model/model_weights.h"
#include "kvpool/kv_storage.h"

namespace pagoda {

// One sequence's slice of a step.
struct BatchSequence {
  int64_t first_pos = 0;                // position of its first token this step
  int64_t n_tokens = 0;                 // tokens this step (a prefill chunk, or 1)
  std::span<const int32_t> page_table;  // pages holding positions 0 .. first_pos + n_tokens - 1
  bool want_logits = false;             // logits for its last token
  bool all_logits = false;              // logits for every token of this step (prompt logprobs)
  bool want_hidden = false;             // the final hidden state of every token of this step (embeddings)
  int64_t logit_rows() const { return all_logits ? n_tokens : (want_logits ? 1 : 0); }
  // Rows kept through the last layer: the logit rows are the last of them.
  int64_t kept_rows() const { return want_hidden ? n_tokens : logit_rows(); }
};

struct BatchInput {
  std::vector<int32_t> tokens;  // every sequence's tokens, in sequence order
  std::vector<BatchSequence> seqs;
};

// Parses model.weight_dtype: "auto" (nullopt: each matrix as its file stores
// it) or a WeightDtype name; the error lists the allowed values.
Result<std::optional<WeightDtype>> parse_weight_choice(const std::string& name);

class LlamaModel {
 public:
  // Packs the weights of `model` in `dtype` for matmuls; nullopt ("auto")
  // keeps each matrix in the precision class its file stores it in
  // (LoadedModel::stored; f32 when not listed, bf16 as f32 where the CPU has
  // no bf16 kernels), a fused matrix in the highest of its parts'. int4
  // matrices whose file holds 4-bit groups are packed as stored. `kv` must
  // have the model's layers, KV heads and head_dim, and outlive the LlamaModel.
  static Result<std::unique_ptr<LlamaModel>> create(std::shared_ptr<const LoadedModel> model,
                                                    std::optional<WeightDtype> dtype, KvStorage* kv);

  // Runs one step. On success `logits` holds logit_rows() rows of
  // vocab_size floats per sequence (its last token's, or with all_logits
  // every token's), in sequence order, and `hidden` (when given) n_tokens
  // rows of dim floats per sequence with want_hidden: the final-norm states
  // the classifier would read. Errors (bad positions, a
  // page table too short, token ids out of range) leave KV untouched.
  Status forward(const BatchInput& batch, std::vector<float>* logits, std::vector<float>* hidden = nullptr);

  const ModelConfig& config() const { return model_->config; }
  // Bytes of packed weights streamed per step (embedding rows not counted).
  int64_t weight_bytes() const;

 private:
  struct Layer {
    Linear qkv, wo, gate_up, down;
  };
  LlamaModel(std::shared_ptr<const LoadedModel> model, KvStorage* kv, std::vector<Layer> layers, Linear classifier,
             const WeightBlock::RowSource* embedding_rows);
  Status check_batch(const BatchInput& batch) const;
  // The embedding rows of `tokens` into x [tokens, dim].
  void embed(const std::vector<int32_t>& tokens, float* x) const;
  // Before the last layer's attention: moves the q|k|v and residual rows of
  // each sampling sequence's last token to rows 0..n_out-1 and points the
  // attention descriptors at them (one query each).
  void keep_output_rows(const BatchInput& batch, int64_t qkv_w, int64_t dim);

  std::shared_ptr<const LoadedModel> model_;
  KvStorage* kv_;
  std::vector<Layer> layers_;
  Linear classifier_;
  // The stored embedding's row expansion when it has no f32 view (in
  // model_->stored, which lives as long as model_); null otherwise.
  const WeightBlock::RowSource* embedding_rows_;
  RopeTable rope_;
  // Scratch, grown on demand and reused across steps.
  std::vector<float> x_, xn_, qkv_, attn_, proj_, gate_up_, hidden_, sel_;
  std::vector<int32_t> positions_;
  std::vector<AttentionSeq> attn_seqs_;
};

}  // namespace pagoda
