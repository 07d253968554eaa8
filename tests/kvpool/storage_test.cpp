// KvStorage: layout sizes by hand, arena alignment, and write -> tile read
// round trips for every dtype (checked with each format's error bound).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include "common/huge_pages.h"
#include "kvpool/kv_codec.h"
#include "kvpool/kv_storage.h"

using namespace pagoda;

namespace {

// The largest error a stored value may have, given the format.
float bound(KvDtype d, float x, float scale) {
  switch (d) {
    case KvDtype::kF32:
      return 0.0f;
    case KvDtype::kBF16:
      return std::ldexp(std::fabs(x), -8);
    case KvDtype::kF16:
      return std::ldexp(std::fabs(x), -11) + std::ldexp(1.0f, -25);  // + half a subnormal step
    case KvDtype::kInt8:
    case KvDtype::kInt4:
      return 0.5f * scale * (1 + 1e-5f);
  }
  return 0;
}

}  // namespace

TEST_CASE("kvpool: KvLayout sizes follow from the shape and dtype", "[kvpool][storage]") {
  KvLayout l{.num_layers = 2, .num_kv_heads = 8, .head_dim = 128, .page_size = 16, .dtype = KvDtype::kF16};
  REQUIRE(l.row_bytes() == 256);
  REQUIRE_FALSE(l.has_scales());
  REQUIRE(l.bytes_per_token_per_layer() == 2 * 8 * 128 * 2);
  REQUIRE(l.scale_bytes_per_token_per_layer() == 0);
  REQUIRE(l.page_bytes() == 2u * 16 * 2 * 8 * 128 * 2);
  l.dtype = KvDtype::kInt4;
  REQUIRE(l.row_bytes() == 64);
  REQUIRE(l.has_scales());
  REQUIRE(l.bytes_per_token_per_layer() == 2 * 8 * 64);
  REQUIRE(l.scale_bytes_per_token_per_layer() == 2 * 8 * 4);
  REQUIRE(l.page_bytes() == 2u * 16 * (2 * 8 * 64 + 2 * 8 * 4));
  l.head_dim = 0;
  REQUIRE(l.validate().message().find("head_dim") != std::string::npos);
}

TEST_CASE("kvpool: KvStorage rejects bad arguments with a message", "[kvpool][storage]") {
  KvLayout l{.num_layers = 1, .num_kv_heads = 1, .head_dim = 8, .page_size = 4, .dtype = KvDtype::kF32};
  REQUIRE_FALSE(KvStorage::create(l, 0).is_ok());
  l.num_kv_heads = -1;
  auto r = KvStorage::create(l, 4);
  REQUIRE_FALSE(r.is_ok());
  REQUIRE(r.status().message().find("num_kv_heads") != std::string::npos);
}

TEST_CASE("kvpool: KvStorage write/read round trip through tiles, every dtype", "[kvpool][storage]") {
  const KvDtype dtypes[] = {KvDtype::kF32, KvDtype::kBF16, KvDtype::kF16, KvDtype::kInt8, KvDtype::kInt4};
  for (KvDtype d : dtypes) {
    for (int head_dim : {20, 64, 7}) {
      DYNAMIC_SECTION(kv_dtype_name(d) << " head_dim " << head_dim) {
        const KvLayout l{.num_layers = 2, .num_kv_heads = 3, .head_dim = head_dim, .page_size = 4, .dtype = d};
        const int64_t pages = 5;
        auto created = KvStorage::create(l, pages);
        REQUIRE(created.is_ok());
        KvStorage& s = **created;
        REQUIRE(s.size_bytes() == KvStorage::arena_bytes(l, pages));
        REQUIRE(reinterpret_cast<uintptr_t>(s.k_tile(0, 0, 0)) % 64 == 0);
        if (l.has_scales()) {
          REQUIRE(reinterpret_cast<uintptr_t>(s.k_scales(0, 0, 0)) % 64 == 0);
        } else {
          REQUIRE(s.k_scales(0, 0, 0) == nullptr);
        }
        // Tiles are disjoint and each spans tile_bytes: collect every tile start.
        std::set<const uint8_t*> starts;
        for (int layer = 0; layer < 2; ++layer)
          for (int64_t p = 0; p < pages; ++p)
            for (int h = 0; h < 3; ++h) {
              starts.insert(s.k_tile(layer, p, h));
              starts.insert(s.v_tile(layer, p, h));
            }
        REQUIRE(starts.size() == 2u * pages * 2 * 3);
        const uint8_t* prev = nullptr;
        for (const uint8_t* p : starts) {
          if (prev) REQUIRE(static_cast<size_t>(p - prev) == l.tile_bytes());
          prev = p;
        }

        // Write every slot of every layer with random K/V, remember them.
        std::mt19937 rng(static_cast<unsigned>(head_dim) * 31u + static_cast<unsigned>(d));
        std::uniform_real_distribution<float> u(-3.0f, 3.0f);
        const size_t per_token = static_cast<size_t>(3 * head_dim);
        std::vector<float> k_ref(2 * pages * 4 * per_token), v_ref(k_ref.size());
        for (auto& x : k_ref) x = u(rng);
        for (auto& x : v_ref) x = u(rng);
        auto at = [&](int layer, int64_t slot) {
          return (static_cast<size_t>(layer) * pages * 4 + static_cast<size_t>(slot)) * per_token;
        };
        for (int layer = 0; layer < 2; ++layer)
          for (int64_t slot = 0; slot < pages * 4; ++slot)
            s.write(layer, slot, k_ref.data() + at(layer, slot), v_ref.data() + at(layer, slot));

        std::vector<float> row(static_cast<size_t>(head_dim));
        for (int layer = 0; layer < 2; ++layer)
          for (int64_t slot = 0; slot < pages * 4; ++slot)
            for (int h = 0; h < 3; ++h)
              for (int kv = 0; kv < 2; ++kv) {
                const int64_t page = slot / 4;
                const int off = static_cast<int>(slot % 4);
                const uint8_t* tile = kv == 0 ? s.k_tile(layer, page, h) : s.v_tile(layer, page, h);
                const float* scales = kv == 0 ? s.k_scales(layer, page, h) : s.v_scales(layer, page, h);
                const float scale = scales ? scales[off] : 0.0f;
                decode_row(d, tile + static_cast<size_t>(off) * l.row_bytes(), scale, head_dim, row.data());
                const float* want =
                    (kv == 0 ? k_ref.data() : v_ref.data()) + at(layer, slot) + static_cast<size_t>(h) * head_dim;
                float maxabs = 0;
                for (int i = 0; i < head_dim; ++i) maxabs = std::max(maxabs, std::fabs(want[i]));
                if (d == KvDtype::kInt8) REQUIRE(scale == maxabs / 127.0f);
                if (d == KvDtype::kInt4) REQUIRE(scale == maxabs / 7.0f);
                for (int i = 0; i < head_dim; ++i) {
                  INFO("layer " << layer << " slot " << slot << " head " << h << " kv " << kv << " i " << i);
                  REQUIRE(std::fabs(row[i] - want[i]) <= bound(d, want[i], scale));
                }
              }
      }
    }
  }
}

TEST_CASE("kvpool: a fresh arena is all zeros (the null page reads as zeros)", "[kvpool][storage]") {
  const KvLayout l{.num_layers = 1, .num_kv_heads = 2, .head_dim = 16, .page_size = 8, .dtype = KvDtype::kInt8};
  auto s = KvStorage::create(l, 3);
  REQUIRE(s.is_ok());
  for (int h = 0; h < 2; ++h) {
    for (size_t i = 0; i < l.tile_bytes(); ++i) REQUIRE((*s)->k_tile(0, 0, h)[i] == 0);
    for (int i = 0; i < 8; ++i) REQUIRE((*s)->v_scales(0, 0, h)[i] == 0.0f);
  }
}

TEST_CASE("kvpool: copy_rows copies the leading slots of every layer, K and V, with scales", "[kvpool][storage]") {
  for (KvDtype d : {KvDtype::kF32, KvDtype::kInt8, KvDtype::kInt4}) {
    const KvLayout l{.num_layers = 2, .num_kv_heads = 2, .head_dim = 8, .page_size = 4, .dtype = d};
    auto made = KvStorage::create(l, 4);
    REQUIRE(made.is_ok());
    KvStorage& s = **made;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> k(16), v(16);
    for (int layer = 0; layer < 2; ++layer)
      for (int64_t slot = 4; slot < 16; ++slot) {  // pages 1-3 full of distinct values
        for (auto& x : k) x = u(rng);
        for (auto& x : v) x = u(rng);
        s.write(layer, slot, k.data(), v.data());
      }
    const size_t rb = l.row_bytes();
    auto rows_equal = [&](int layer, int64_t p, int64_t q, int h, int from, int to) {
      const bool data = std::equal(s.k_tile(layer, p, h) + from * rb, s.k_tile(layer, p, h) + to * rb,
                                   s.k_tile(layer, q, h) + from * rb) &&
                        std::equal(s.v_tile(layer, p, h) + from * rb, s.v_tile(layer, p, h) + to * rb,
                                   s.v_tile(layer, q, h) + from * rb);
      if (!l.has_scales()) return data;
      return data &&
             std::equal(s.k_scales(layer, p, h) + from, s.k_scales(layer, p, h) + to, s.k_scales(layer, q, h) + from) &&
             std::equal(s.v_scales(layer, p, h) + from, s.v_scales(layer, p, h) + to, s.v_scales(layer, q, h) + from);
    };
    const std::vector<uint8_t> before(s.k_tile(0, 0, 0), s.k_tile(0, 0, 0) + s.size_bytes());
    s.copy_rows(1, 2, 3);
    const std::vector<uint8_t> after(s.k_tile(0, 0, 0), s.k_tile(0, 0, 0) + s.size_bytes());
    size_t changed = 0;  // only page 2's first three slots may change: 2 layers x K,V x 2 heads x 3 rows
    for (size_t i = 0; i < before.size(); ++i) changed += before[i] != after[i];
    CHECK(changed <= 2 * 2 * 2 * 3 * (rb + (l.has_scales() ? sizeof(float) : 0)));
    for (int layer = 0; layer < 2; ++layer)
      for (int h = 0; h < 2; ++h) {
        CHECK(rows_equal(layer, 1, 2, h, 0, 3));
        CHECK_FALSE(rows_equal(layer, 1, 2, h, 3, 4));  // row 3 keeps page 2's own value
      }
  }
}

TEST_CASE("kvpool: the KV arena takes memory only as its pages are written", "[kvpool][storage]") {
  // 8 layers x 8 heads x 128 dims x 16 tokens x 4 bytes x 2 (K, V) = 1 MiB a page: 512 MiB in all.
  const KvLayout layout{.num_layers = 8, .num_kv_heads = 8, .head_dim = 128, .page_size = 16, .dtype = KvDtype::kF32};
  const int64_t before = resident_memory_bytes();
  REQUIRE(before > 0);
  auto created = KvStorage::create(layout, 512);
  REQUIRE(created.is_ok());
  KvStorage& kv = **created;
  REQUIRE(kv.size_bytes() >= size_t{512} << 20);
  const int64_t after_create = resident_memory_bytes();
  CHECK(after_create - before < (int64_t{64} << 20));  // nothing of the 512 MiB touched yet

  // The null page reads as zeros without being written.
  const float* null_k = reinterpret_cast<const float*>(kv.k_tile(0, 0, 0));
  CHECK(std::all_of(null_k, null_k + layout.page_size * layout.head_dim, [](float x) { return x == 0.0f; }));

  // Writing every token slot of 256 pages (every layer) brings about half the arena in.
  std::vector<float> row(static_cast<size_t>(layout.num_kv_heads * layout.head_dim), 1.0f);
  for (int layer = 0; layer < layout.num_layers; ++layer)
    for (int64_t slot = 0; slot < 256 * layout.page_size; ++slot) kv.write(layer, slot, row.data(), row.data());
  const int64_t after_write = resident_memory_bytes();
  CHECK(after_write - after_create > (int64_t{200} << 20));
  CHECK(after_write - after_create < (int64_t{400} << 20));
}

TEST_CASE("kvpool: prefault makes the whole KV arena resident at once (kv.prefault)", "[kvpool][storage]") {
  const KvLayout layout{.num_layers = 8, .num_kv_heads = 8, .head_dim = 128, .page_size = 16, .dtype = KvDtype::kF32};
  auto created = KvStorage::create(layout, 256);  // 256 MiB
  REQUIRE(created.is_ok());
  const int64_t before = resident_memory_bytes();
  REQUIRE((*created)->prefault().is_ok());
  const int64_t after = resident_memory_bytes();
  CHECK(after - before > (int64_t{240} << 20));
  const float* null_k = reinterpret_cast<const float*>((*created)->k_tile(0, 0, 0));
  CHECK(std::all_of(null_k, null_k + layout.page_size * layout.head_dim, [](float x) { return x == 0.0f; }));
}
