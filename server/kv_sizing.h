// The KV pool a config buys for a model: the plan and the checks `pagoda
// serve` makes before it reserves the arena. `pagoda kv-plan` prints the same
// plan, so the two cannot disagree. Pure function; thread-safe.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "config/server_config.h"
#include "engine/model/model_config.h"
#include "kvpool/kv_plan.h"

namespace pagoda {

struct ServerKvPlan {
  KvPlan plan;
  int64_t max_model_len = 0;         // model.max_model_len, or the model's limit when 0; 0 = unknown
  int64_t sequences_at_max_len = 0;  // full-length sequences the pool holds at once; 0 = unknown
};

// The plan for `config` (kv.page_size, kv.dtype, kv.memory_gib or
// kv.num_pages, model.max_model_len) and the model's n_layers, n_kv_heads,
// head_dim and max_seq_len (0 = unknown: a shape given by hand, when only
// those three are set). `tokens_to_price` > 0
// prices that many tokens (kv-plan --tokens), else max_model_len. Errors name
// the config key: a max_model_len beyond the model, a pool smaller than one
// sequence, a budget of fewer than 2 pages.
Result<ServerKvPlan> plan_server_kv(const ServerConfig& config, const ModelConfig& model, int64_t tokens_to_price = 0);

}  // namespace pagoda
