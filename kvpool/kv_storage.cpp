#include "kvpool/kv_storage.h"

#include <cassert>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "common/huge_pages.h"
#include "kvpool/kv_codec.h"

namespace pagoda {

namespace {

constexpr size_t kAlign = 64;

size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

// a * b, or false on overflow.
bool mul(size_t a, size_t b, size_t* out) { return !__builtin_mul_overflow(a, b, out); }

}  // namespace

size_t KvLayout::row_bytes() const { return kv_row_bytes(dtype, head_dim); }
bool KvLayout::has_scales() const { return kv_dtype_has_scales(dtype); }
size_t KvLayout::bytes_per_token_per_layer() const { return 2 * static_cast<size_t>(num_kv_heads) * row_bytes(); }
size_t KvLayout::scale_bytes_per_token_per_layer() const {
  return has_scales() ? 2 * static_cast<size_t>(num_kv_heads) * sizeof(float) : 0;
}
size_t KvLayout::page_bytes() const {
  return static_cast<size_t>(num_layers) * static_cast<size_t>(page_size) *
         (bytes_per_token_per_layer() + scale_bytes_per_token_per_layer());
}
size_t KvLayout::tile_bytes() const { return static_cast<size_t>(page_size) * row_bytes(); }

Status KvLayout::validate() const {
  auto check = [](const char* name, int v, int max) -> Status {
    if (v < 1 || v > max) {
      return Status::invalid_argument(std::string(name) + ": got " + std::to_string(v) + ", allowed 1.." +
                                      std::to_string(max));
    }
    return Status::ok();
  };
  PAGODA_RETURN_IF_ERROR(check("num_layers", num_layers, 4096));
  PAGODA_RETURN_IF_ERROR(check("num_kv_heads", num_kv_heads, 4096));
  PAGODA_RETURN_IF_ERROR(check("head_dim", head_dim, 65536));
  PAGODA_RETURN_IF_ERROR(check("page_size", page_size, 65536));
  return Status::ok();
}

size_t KvStorage::arena_bytes(const KvLayout& layout, int64_t num_pages) {
  if (!layout.validate().is_ok() || num_pages < 1) return 0;
  size_t tiles = 0, data = 0, scales = 0;
  if (!mul(static_cast<size_t>(layout.num_layers) * 2 * static_cast<size_t>(layout.num_kv_heads),
           static_cast<size_t>(num_pages), &tiles)) {
    return 0;
  }
  if (!mul(tiles, layout.tile_bytes(), &data)) return 0;
  if (layout.has_scales() && !mul(tiles, static_cast<size_t>(layout.page_size) * sizeof(float), &scales)) return 0;
  if (data > std::numeric_limits<size_t>::max() / 2 || scales > std::numeric_limits<size_t>::max() / 2) return 0;
  return round_up(round_up(data, kAlign) + scales, kAlign);
}

Result<std::unique_ptr<KvStorage>> KvStorage::create(const KvLayout& layout, int64_t num_pages) {
  PAGODA_RETURN_IF_ERROR(layout.validate());
  if (num_pages < 1 || num_pages > std::numeric_limits<int32_t>::max()) {
    return Status::invalid_argument("kv num_pages: got " + std::to_string(num_pages) + ", allowed 1.." +
                                    std::to_string(std::numeric_limits<int32_t>::max()));
  }
  const size_t size = arena_bytes(layout, num_pages);
  if (size == 0) return Status::invalid_argument("kv arena size overflows for " + std::to_string(num_pages) + " pages");
  // Zeroed (the null page reads as zeros) and faulted in on first write, so
  // resident memory follows the pages requests use; huge pages where the
  // kernel allows, since attention reads pages all over the arena.
  ZeroedMapping arena = map_zeroed(size);
  if (!arena) {
    return Status::resource_exhausted("cannot allocate the KV arena of " + std::to_string(size) +
                                      " bytes; lower kv.memory_gib or kv.num_pages");
  }
  return std::unique_ptr<KvStorage>(new KvStorage(layout, num_pages, std::move(arena), size));
}

Status KvStorage::prefault() {
  if (const int err = populate_now(data_, arena_size_); err != 0)
    return Status::resource_exhausted("cannot make the KV arena of " + std::to_string(arena_size_) +
                                      " bytes resident: " + std::strerror(err) +
                                      "; lower kv.memory_gib or kv.num_pages");
  return Status::ok();
}

KvStorage::KvStorage(const KvLayout& layout, int64_t num_pages, ZeroedMapping arena, size_t size)
    : layout_(layout), num_pages_(num_pages), arena_(std::move(arena)), arena_size_(size),
      tile_bytes_(layout.tile_bytes()), row_bytes_(layout.row_bytes()), data_(static_cast<uint8_t*>(arena_.get())),
      scales_(nullptr) {
  if (layout_.has_scales()) {
    const size_t tiles = static_cast<size_t>(layout_.num_layers) * static_cast<size_t>(num_pages_) * 2 *
                         static_cast<size_t>(layout_.num_kv_heads);
    scales_ = reinterpret_cast<float*>(data_ + round_up(tiles * tile_bytes_, kAlign));
  }
}

const float* KvStorage::k_scales(int layer, int64_t page, int kv_head) const {
  return scales_ ? scales_at(layer, page, 0, kv_head) : nullptr;
}
const float* KvStorage::v_scales(int layer, int64_t page, int kv_head) const {
  return scales_ ? scales_at(layer, page, 1, kv_head) : nullptr;
}

void KvStorage::write(int layer, int64_t slot, const float* k, const float* v) {
  assert(layer >= 0 && layer < layout_.num_layers);
  assert(slot >= 0 && slot < num_pages_ * layout_.page_size);
  const int64_t page = slot / layout_.page_size;
  const int off = static_cast<int>(slot % layout_.page_size);
  const int hd = layout_.head_dim;
  for (int h = 0; h < layout_.num_kv_heads; ++h) {
    uint8_t* kd = data_ + tile_offset(layer, page, 0, h) + static_cast<size_t>(off) * row_bytes_;
    uint8_t* vd = data_ + tile_offset(layer, page, 1, h) + static_cast<size_t>(off) * row_bytes_;
    float* ks = scales_ ? scales_at(layer, page, 0, h) + off : nullptr;
    float* vs = scales_ ? scales_at(layer, page, 1, h) + off : nullptr;
    encode_row(layout_.dtype, k + static_cast<size_t>(h) * hd, hd, kd, ks);
    encode_row(layout_.dtype, v + static_cast<size_t>(h) * hd, hd, vd, vs);
  }
}

void KvStorage::copy_rows(int64_t src, int64_t dst, int rows) {
  assert(src != dst && src >= 0 && src < num_pages_ && dst >= 0 && dst < num_pages_);
  assert(rows >= 0 && rows <= layout_.page_size);
  for (int layer = 0; layer < layout_.num_layers; ++layer) {
    for (int kv = 0; kv < 2; ++kv) {
      for (int h = 0; h < layout_.num_kv_heads; ++h) {
        std::memcpy(data_ + tile_offset(layer, dst, kv, h), data_ + tile_offset(layer, src, kv, h),
                    static_cast<size_t>(rows) * row_bytes_);
        if (scales_)
          std::memcpy(scales_at(layer, dst, kv, h), scales_at(layer, src, kv, h),
                      static_cast<size_t>(rows) * sizeof(float));
      }
    }
  }
}

}  // namespace pagoda
