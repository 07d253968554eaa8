// The KV memory plan: what a layout costs per token and per page, how many
// pages a budget buys and how many tokens can be in flight. Used by
// `pagoda kv-plan` and by the server's start-up banner.
// Plain functions over plain values; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "kvpool/kv_storage.h"

namespace pagoda {

struct KvBudget {
  int64_t tokens = 0;     // tokens to price in kv_bytes_for_tokens; 0 = none
  double memory_gib = 0;  // memory for the arena; used when num_pages == 0; 0 = no pool
  int64_t num_pages = 0;  // explicit page count including the null page; 0 = from memory_gib
};

struct KvPlan {
  KvLayout layout;
  size_t bytes_per_token_per_layer = 0;        // K + V data
  size_t scale_bytes_per_token_per_layer = 0;  // K + V scales (int8 / int4), else 0
  size_t bytes_per_token = 0;                  // all layers, data + scales
  size_t page_bytes = 0;                       // one page, all layers, data + scales
  int64_t num_pages = 0;                       // in the pool, with the reserved null page
  int64_t usable_pages = 0;                    // num_pages - 1
  int64_t max_tokens_in_flight = 0;            // usable_pages * page_size
  size_t arena_bytes = 0;                      // what KvStorage::create allocates
  int64_t tokens = 0;
  size_t kv_bytes_for_tokens = 0;        // tokens * layers * bytes_per_token_per_layer
  size_t kv_scale_bytes_for_tokens = 0;  // tokens * layers * scale_bytes_per_token_per_layer
};

// InvalidArgument naming the field for a bad layout or budget;
// ResourceExhausted if the budget holds fewer than 2 pages.
Result<KvPlan> plan_kv(const KvLayout& layout, const KvBudget& budget);

// One "key: value" line per field (values are plain integers, except the layout line).
std::string format_kv_plan(const KvPlan& plan);

}  // namespace pagoda
