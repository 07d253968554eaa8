// LlamaRunner: the ModelRunner that runs steps on a LlamaModel: gathers each
// scheduled request's new tokens and page table (from the KvCacheManager) into
// one BatchInput and calls forward. Borrows the model; reuses its batch
// buffers. Engine thread only.
#pragma once

#include <vector>

#include "engine/model/llama_model.h"
#include "scheduler/model_runner.h"

namespace pagoda {

class LlamaRunner final : public ModelRunner {
 public:
  explicit LlamaRunner(LlamaModel* model) : model_(model) {}
  int32_t vocab_size() const override { return static_cast<int32_t>(model_->config().vocab_size); }
  int64_t hidden_size() const override { return model_->config().dim; }
  Status run(const SchedulerOutput& step, const KvCacheManager& kv, std::vector<float>* logits,
             std::vector<float>* hidden) override;

 private:
  LlamaModel* model_;
  BatchInput batch_;
};

}  // namespace pagoda
