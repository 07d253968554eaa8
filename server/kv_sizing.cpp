#include "server/kv_sizing.h"

#include "kvpool/kv_dtype.h"

namespace pagoda {

Result<ServerKvPlan> plan_server_kv(const ServerConfig& c, const ModelConfig& shape, int64_t tokens_to_price) {
  ServerKvPlan out;
  out.max_model_len = c.model.max_model_len > 0 ? c.model.max_model_len : shape.max_seq_len;
  if (shape.max_seq_len > 0 && out.max_model_len > shape.max_seq_len)
    return Status::invalid_argument("config key 'model.max_model_len': got " + std::to_string(out.max_model_len) +
                                    ", but the model supports at most " + std::to_string(shape.max_seq_len) +
                                    " positions");
  auto dtype = parse_kv_dtype(c.kv.dtype);
  if (!dtype) return Status::invalid_argument("config key 'kv.dtype': " + dtype.status().message());
  const KvLayout layout{static_cast<int>(shape.n_layers), static_cast<int>(shape.n_kv_heads),
                        static_cast<int>(shape.head_dim), static_cast<int>(c.kv.page_size), *dtype};
  KvBudget budget;
  budget.memory_gib = c.kv.num_pages > 0 ? 0 : c.kv.memory_gib;
  budget.num_pages = c.kv.num_pages;
  budget.tokens = tokens_to_price > 0 ? tokens_to_price : out.max_model_len;
  auto plan = plan_kv(layout, budget);
  if (!plan)
    return Status::invalid_argument("config keys 'kv.memory_gib' / 'kv.num_pages': " + plan.status().message());
  out.plan = *plan;
  if (out.max_model_len > 0) {
    if (plan->max_tokens_in_flight < out.max_model_len)
      return Status::invalid_argument(
          "config key '" + std::string(c.kv.num_pages > 0 ? "kv.num_pages" : "kv.memory_gib") +
          "': the KV pool holds " + std::to_string(plan->max_tokens_in_flight) + " tokens, less than one sequence of " +
          std::to_string(out.max_model_len) + " (model.max_model_len): raise it");
    // A sequence of max_model_len tokens takes ceil(len / page_size) pages.
    const int64_t pages_per_sequence = (out.max_model_len + c.kv.page_size - 1) / c.kv.page_size;
    out.sequences_at_max_len = plan->usable_pages / pages_per_sequence;
  }
  return out;
}

}  // namespace pagoda
