#include "kvpool/kv_plan.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "kvpool/kv_dtype.h"

namespace pagoda {

Result<KvPlan> plan_kv(const KvLayout& layout, const KvBudget& budget) {
  PAGODA_RETURN_IF_ERROR(layout.validate());
  constexpr int64_t kMaxTokens = int64_t{1} << 40;
  if (budget.tokens < 0 || budget.tokens > kMaxTokens) {
    return Status::invalid_argument("tokens: got " + std::to_string(budget.tokens) + ", allowed 0.." +
                                    std::to_string(kMaxTokens));
  }
  if (!std::isfinite(budget.memory_gib) || budget.memory_gib < 0 || budget.memory_gib > 1 << 20) {
    return Status::invalid_argument("kv.memory_gib: got " + std::to_string(budget.memory_gib) + ", allowed 0..1048576");
  }
  if (budget.num_pages < 0 || budget.num_pages > std::numeric_limits<int32_t>::max()) {
    return Status::invalid_argument("kv.num_pages: got " + std::to_string(budget.num_pages) + ", allowed 0.." +
                                    std::to_string(std::numeric_limits<int32_t>::max()));
  }

  KvPlan p;
  p.layout = layout;
  p.bytes_per_token_per_layer = layout.bytes_per_token_per_layer();
  p.scale_bytes_per_token_per_layer = layout.scale_bytes_per_token_per_layer();
  p.bytes_per_token =
      static_cast<size_t>(layout.num_layers) * (p.bytes_per_token_per_layer + p.scale_bytes_per_token_per_layer);
  p.page_bytes = layout.page_bytes();
  p.tokens = budget.tokens;
  p.kv_bytes_for_tokens =
      static_cast<size_t>(budget.tokens) * static_cast<size_t>(layout.num_layers) * p.bytes_per_token_per_layer;
  p.kv_scale_bytes_for_tokens =
      static_cast<size_t>(budget.tokens) * static_cast<size_t>(layout.num_layers) * p.scale_bytes_per_token_per_layer;

  if (budget.num_pages > 0) {
    p.num_pages = budget.num_pages;
    if (p.num_pages < 2) {
      return Status::invalid_argument("kv.num_pages: got 1, must be >= 2 (page 0 is the reserved null page)");
    }
  } else if (budget.memory_gib > 0) {
    const double bytes = budget.memory_gib * 1024.0 * 1024.0 * 1024.0;
    int64_t pages = static_cast<int64_t>(std::floor(bytes / static_cast<double>(p.page_bytes)));
    pages = std::min<int64_t>(pages, std::numeric_limits<int32_t>::max());
    while (pages >= 2 && static_cast<double>(KvStorage::arena_bytes(layout, pages)) > bytes) --pages;
    if (pages < 2) {
      return Status::resource_exhausted("kv.memory_gib: " + std::to_string(budget.memory_gib) +
                                        " GiB holds fewer than 2 pages of " + std::to_string(p.page_bytes) +
                                        " bytes; raise it or lower kv.page_size");
    }
    p.num_pages = pages;
  }
  if (p.num_pages > 0) {
    p.usable_pages = p.num_pages - 1;
    p.max_tokens_in_flight = p.usable_pages * layout.page_size;
    p.arena_bytes = KvStorage::arena_bytes(layout, p.num_pages);
    if (p.arena_bytes == 0) return Status::invalid_argument("kv arena size overflows");
  }
  return p;
}

std::string format_kv_plan(const KvPlan& p) {
  std::ostringstream o;
  o << "layout: layers=" << p.layout.num_layers << " kv_heads=" << p.layout.num_kv_heads
    << " head_dim=" << p.layout.head_dim << " dtype=" << kv_dtype_name(p.layout.dtype)
    << " page_size=" << p.layout.page_size << "\n"
    << "bytes_per_token_per_layer: " << p.bytes_per_token_per_layer << "\n"
    << "scale_bytes_per_token_per_layer: " << p.scale_bytes_per_token_per_layer << "\n"
    << "bytes_per_token: " << p.bytes_per_token << "\n"
    << "page_bytes: " << p.page_bytes << "\n"
    << "num_pages: " << p.num_pages << "\n"
    << "usable_pages: " << p.usable_pages << "\n"
    << "max_tokens_in_flight: " << p.max_tokens_in_flight << "\n"
    << "arena_bytes: " << p.arena_bytes << "\n"
    << "tokens: " << p.tokens << "\n"
    << "kv_bytes_for_tokens: " << p.kv_bytes_for_tokens << "\n"
    << "kv_scale_bytes_for_tokens: " << p.kv_scale_bytes_for_tokens << "\n";
  return o.str();
}

}  // namespace pagoda
