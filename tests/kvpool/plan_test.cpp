// The memory plan against the textbook figures (one layer, 4000 cached
// tokens, head_dim 128, fp16 K and V) and against sizes computed by hand.
#include <string>

#include <catch2/catch.hpp>

#include "kvpool/kv_plan.h"

using namespace pagoda;

namespace {

KvPlan plan(int kv_heads, KvDtype dtype, KvBudget budget = {.tokens = 4000}) {
  const KvLayout l{.num_layers = 1, .num_kv_heads = kv_heads, .head_dim = 128, .page_size = 16, .dtype = dtype};
  auto p = plan_kv(l, budget);
  REQUIRE(p.is_ok());
  return *p;
}

}  // namespace

TEST_CASE("kvpool: kv plan reproduces the textbook fp16 figures", "[kvpool][plan]") {
  REQUIRE(plan(32, KvDtype::kF16).kv_bytes_for_tokens == 65'536'000);
  REQUIRE(plan(8, KvDtype::kF16).kv_bytes_for_tokens == 16'384'000);
  REQUIRE(plan(16, KvDtype::kF16).kv_bytes_for_tokens == 32'768'000);
  REQUIRE(plan(1, KvDtype::kF16).kv_bytes_for_tokens == 2'048'000);
  REQUIRE(plan(32, KvDtype::kF16).kv_scale_bytes_for_tokens == 0);
}

TEST_CASE("kvpool: kv plan: int8 halves fp16, int4 quarters it, scales reported apart", "[kvpool][plan]") {
  for (int heads : {1, 8, 16, 32}) {
    const auto f16 = plan(heads, KvDtype::kF16);
    const auto i8 = plan(heads, KvDtype::kInt8);
    const auto i4 = plan(heads, KvDtype::kInt4);
    REQUIRE(i8.kv_bytes_for_tokens * 2 == f16.kv_bytes_for_tokens);
    REQUIRE(i4.kv_bytes_for_tokens * 4 == f16.kv_bytes_for_tokens);
    // One float scale per token per head, for K and for V.
    REQUIRE(i8.kv_scale_bytes_for_tokens == 4000u * heads * 2 * 4);
    REQUIRE(i4.kv_scale_bytes_for_tokens == i8.kv_scale_bytes_for_tokens);
    REQUIRE(plan(heads, KvDtype::kF32).kv_bytes_for_tokens == 2 * f16.kv_bytes_for_tokens);
    REQUIRE(plan(heads, KvDtype::kBF16).kv_bytes_for_tokens == f16.kv_bytes_for_tokens);
  }
  REQUIRE(plan(32, KvDtype::kInt8).kv_bytes_for_tokens == 32'768'000);
  REQUIRE(plan(32, KvDtype::kInt4).kv_bytes_for_tokens == 16'384'000);
}

TEST_CASE("kvpool: kv plan: pages from a memory budget or an explicit count", "[kvpool][plan]") {
  // 8 heads x 128 x f16 x (K,V) = 4096 bytes per token per layer; a 16-token page = 65536 bytes.
  const auto by_pages = plan(8, KvDtype::kF16, {.tokens = 0, .memory_gib = 0, .num_pages = 100});
  REQUIRE(by_pages.bytes_per_token_per_layer == 4096);
  REQUIRE(by_pages.page_bytes == 65536);
  REQUIRE(by_pages.num_pages == 100);
  REQUIRE(by_pages.usable_pages == 99);
  REQUIRE(by_pages.max_tokens_in_flight == 99 * 16);
  REQUIRE(by_pages.arena_bytes == 100u * 65536);

  const auto by_mem = plan(8, KvDtype::kF16, {.tokens = 0, .memory_gib = 1.0});
  REQUIRE(by_mem.num_pages == 16384);  // 2^30 / 2^16
  REQUIRE(by_mem.max_tokens_in_flight == 16383 * 16);
  REQUIRE(by_mem.arena_bytes <= (size_t{1} << 30));

  // With scales the arena must still fit the budget.
  const auto i8 = plan(8, KvDtype::kInt8, {.tokens = 0, .memory_gib = 0.5});
  REQUIRE(i8.page_bytes == 16u * (8 * 128 * 2 + 8 * 2 * 4));
  REQUIRE(i8.arena_bytes <= (size_t{1} << 29));
  REQUIRE(i8.num_pages == static_cast<int64_t>((size_t{1} << 29) / i8.page_bytes));

  const std::string text = format_kv_plan(plan(8, KvDtype::kF16));
  REQUIRE(text.find("\nkv_bytes_for_tokens: 16384000\n") != std::string::npos);
}

TEST_CASE("kvpool: kv plan rejects bad shapes and budgets with the field name", "[kvpool][plan]") {
  KvLayout l{.num_layers = 1, .num_kv_heads = 0, .head_dim = 128, .page_size = 16, .dtype = KvDtype::kF16};
  auto p = plan_kv(l, {});
  REQUIRE_FALSE(p.is_ok());
  REQUIRE(p.status().message().find("num_kv_heads") != std::string::npos);
  l.num_kv_heads = 8;
  REQUIRE(plan_kv(l, {.tokens = -1}).status().message().find("tokens") != std::string::npos);
  REQUIRE(plan_kv(l, {.memory_gib = -2}).status().message().find("kv.memory_gib") != std::string::npos);
  REQUIRE(plan_kv(l, {.memory_gib = 1e-6}).status().code() == StatusCode::kResourceExhausted);
  REQUIRE(plan_kv(l, {.num_pages = 1}).status().message().find("kv.num_pages") != std::string::npos);
}
