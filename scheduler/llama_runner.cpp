#include "scheduler/llama_runner.h"

namespace pagoda {

Status LlamaRunner::run(const SchedulerOutput& step, const KvCacheManager& kv, std::vector<float>* logits,
                        std::vector<float>* hidden) {
  batch_.tokens.clear();
  batch_.seqs.clear();
  for (const ScheduledSeq& s : step.seqs) {
    const Request& r = *s.request;
    const auto begin = r.tokens.begin() + r.num_computed_tokens;
    batch_.tokens.insert(batch_.tokens.end(), begin, begin + s.num_new_tokens);
    batch_.seqs.push_back(
        {r.num_computed_tokens, s.num_new_tokens, kv.page_table(r.id), s.sample, s.prompt_logits, s.hidden});
  }
  return model_->forward(batch_, logits, hidden);
}

}  // namespace pagoda
