// ModelRunner: what the engine loop needs from a model: run the scheduled
// tokens of one step and return logits where a token will be sampled.
// LlamaRunner (scheduler/llama_runner.h) adapts LlamaModel; tests plug in fake
// runners. Implementations are used by the engine thread only.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "kvpool/kv_cache_manager.h"
#include "scheduler/scheduler.h"

namespace pagoda {

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual int32_t vocab_size() const = 0;
  // Floats per hidden state row (embeddings); 0 when the runner has none.
  virtual int64_t hidden_size() const { return 0; }
  // Computes every scheduled token (K/V into each request's pages) and fills
  // `logits` with vocab_size rows, in order: one per sequence with
  // sample = true (its last token's), or with prompt_logits = true one per
  // token it computes; and `hidden` with hidden_size() rows per token of
  // each sequence with hidden = true (the final-norm states), in order.
  virtual Status run(const SchedulerOutput& step, const KvCacheManager& kv, std::vector<float>* logits,
                     std::vector<float>* hidden) = 0;
};

}  // namespace pagoda
