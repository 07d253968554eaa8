// KvLayout: the shape of KV memory (layers, KV heads, head_dim, page size,
// dtype) and the byte sizes that follow from it.
// KvStorage: the one arena holding every KV page, allocated at start-up.
//
// Arena layout (64-byte aligned base; every offset below is from it):
//   data area   [layer][page][K=0 | V=1][kv_head][slot][row_bytes]
//               So per layer and page: the K tile (kv_heads tiles of
//               page_size rows each, contiguous) then the V tile, the same.
//               tile_bytes = page_size * row_bytes.
//   padding     up to the next multiple of 64 bytes
//   scale area  (int8/int4 only) float [layer][page][K=0 | V=1][kv_head][slot]
//               one scale per token per head, beside the data.
//   The whole arena is zero-filled at creation; page 0 (kNullPage) is never
//   allocated by the pool, so it stays all zeros and may be read harmlessly.
//
// KvStorage owns the arena. Not thread-safe: write() and copy_rows() are not
// synchronized; the engine thread alone writes (copies happen while the
// scheduler runs, between steps), and readers (attention) run in the same step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "common/huge_pages.h"
#include "common/status.h"
#include "kvpool/kv_dtype.h"

namespace pagoda {

struct KvLayout {
  int num_layers = 0, num_kv_heads = 0, head_dim = 0, page_size = 16;
  KvDtype dtype = KvDtype::kF32;

  size_t row_bytes() const;                        // kv_row_bytes(dtype, head_dim)
  bool has_scales() const;                         // int8 / int4
  size_t bytes_per_token_per_layer() const;        // K and V data, without scales
  size_t scale_bytes_per_token_per_layer() const;  // K and V scales (a float per head each); 0 for float dtypes
  size_t page_bytes() const;                       // one page over all layers, data + scales
  size_t tile_bytes() const;                       // page_size * row_bytes
  // All fields positive and within sane limits; the message names the field.
  Status validate() const;
};

class KvStorage {
 public:
  // InvalidArgument for a bad layout or num_pages < 1 (or > INT32_MAX);
  // ResourceExhausted if the arena cannot be allocated.
  static Result<std::unique_ptr<KvStorage>> create(const KvLayout& layout, int64_t num_pages);
  // Bytes create() would allocate (data + padding + scales), or 0 on overflow.
  static size_t arena_bytes(const KvLayout& layout, int64_t num_pages);

  const KvLayout& layout() const { return layout_; }
  int64_t num_pages() const { return num_pages_; }
  size_t size_bytes() const { return arena_size_; }
  // Makes the whole arena resident now (kv.prefault), so no request pays
  // for zeroing a page on its first write. ResourceExhausted if the machine
  // cannot back it. Not thread-safe with use.
  Status prefault();

  // Stores K and V of one token for `layer` at `slot` = page * page_size + offset.
  // k and v hold num_kv_heads * head_dim floats (head-major).
  void write(int layer, int64_t slot, const float* k, const float* v);

  // Copies token slots 0..rows-1 of page src into page dst, in every layer,
  // K and V, with their scales. src != dst, 0 <= rows <= page_size.
  void copy_rows(int64_t src, int64_t dst, int rows);
  // copy_rows as a KvCacheConfig::copy_rows function; this storage must outlive it.
  std::function<void(int32_t, int32_t, int)> row_copier() {
    return [this](int32_t src, int32_t dst, int rows) { copy_rows(src, dst, rows); };
  }

  // The page_size rows (each row_bytes) of one (layer, page, kv_head): contiguous.
  const uint8_t* k_tile(int layer, int64_t page, int kv_head) const {
    return data_ + tile_offset(layer, page, 0, kv_head);
  }
  const uint8_t* v_tile(int layer, int64_t page, int kv_head) const {
    return data_ + tile_offset(layer, page, 1, kv_head);
  }
  // page_size per-row scales of that tile (int8/int4), nullptr for float dtypes.
  const float* k_scales(int layer, int64_t page, int kv_head) const;
  const float* v_scales(int layer, int64_t page, int kv_head) const;

 private:
  KvStorage(const KvLayout& layout, int64_t num_pages, ZeroedMapping arena, size_t size);
  // Index of the (layer, page, kv, head) tile, in tiles.
  size_t tile_index(int layer, int64_t page, int kv, int kv_head) const {
    return ((static_cast<size_t>(layer) * static_cast<size_t>(num_pages_) + static_cast<size_t>(page)) * 2 +
            static_cast<size_t>(kv)) *
               static_cast<size_t>(layout_.num_kv_heads) +
           static_cast<size_t>(kv_head);
  }
  size_t tile_offset(int layer, int64_t page, int kv, int kv_head) const {
    return tile_index(layer, page, kv, kv_head) * tile_bytes_;
  }
  float* scales_at(int layer, int64_t page, int kv, int kv_head) const {
    return scales_ + tile_index(layer, page, kv, kv_head) * static_cast<size_t>(layout_.page_size);
  }

  KvLayout layout_;
  int64_t num_pages_;
  ZeroedMapping arena_;  // faulted in as pages are written: resident memory follows use
  size_t arena_size_;
  size_t tile_bytes_;
  size_t row_bytes_;
  uint8_t* data_;
  float* scales_;  // nullptr for float dtypes
};

}  // namespace pagoda
