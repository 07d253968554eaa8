#include "kvpool/page_pool.h"

#include <algorithm>
#include <cassert>

namespace pagoda {

PagePool::PagePool(int64_t num_pages, int page_size)
    : page_size_(page_size), pages_(static_cast<size_t>(num_pages)),
      tokens_(static_cast<size_t>(num_pages) * static_cast<size_t>(page_size), 0), free_(&pages_) {
  assert(num_pages >= 2 && page_size >= 1);
  for (int64_t i = 0; i < num_pages; ++i) pages_[static_cast<size_t>(i)].id = static_cast<int32_t>(i);
  for (int64_t i = 1; i < num_pages; ++i) free_.push_back(static_cast<int32_t>(i));
}

void PagePool::evict(PageInfo& b) {
  index_.erase(b.hash, b.id);
  children_.erase(child_key(b.parent, b.parent_generation), b.id);
  b.hashed = false;
  b.hash = 0;
  b.parent = kNoPage;
  b.parent_generation = 0;
  b.salt.clear();
  ++evictions_;
}

int32_t PagePool::allocate() {
  const int32_t id = free_.pop_front();
  if (id == kNoPage) return kNoPage;
  PageInfo& b = at(id);
  if (b.hashed) {
    --num_cached_free_;
    evict(b);
  }
  ++b.generation;
  b.ref_count = 1;
  return id;
}

void PagePool::acquire(int32_t id) {
  PageInfo& b = at(id);
  if (b.in_free_list) {
    free_.remove(id);
    if (b.hashed) --num_cached_free_;
  }
  ++b.ref_count;
}

void PagePool::release(int32_t id) {
  if (id <= kNullPage || id >= num_pages()) {
    ++errors_;
    return;
  }
  PageInfo& b = at(id);
  if (b.ref_count <= 0) {
    ++errors_;
    return;
  }
  if (--b.ref_count > 0) return;
  if (b.hashed) {
    free_.push_back(id);
    ++num_cached_free_;
  } else {
    free_.push_front(id);
  }
}

int32_t PagePool::find_cached(uint64_t hash, int32_t parent, uint32_t parent_generation,
                              std::span<const int32_t> tokens, std::string_view salt) const {
  if (static_cast<int64_t>(tokens.size()) != page_size_) return kNoPage;
  return index_.find_if(hash, [&](int32_t id) {
    const PageInfo& b = page(id);
    if (!b.hashed || b.parent != parent) return false;
    if (parent == kNoPage ? b.salt != salt : b.parent_generation != parent_generation) return false;
    const auto mine = page_tokens(id);
    return std::equal(mine.begin(), mine.end(), tokens.begin());
  });
}

void PagePool::register_page(int32_t id, uint64_t hash, int32_t parent, uint32_t parent_generation,
                             std::span<const int32_t> tokens, std::string_view salt) {
  PageInfo& b = at(id);
  assert(!b.hashed && b.ref_count > 0 && static_cast<int64_t>(tokens.size()) == page_size_);
  b.hashed = true;
  b.hash = hash;
  b.parent = parent;
  b.parent_generation = parent_generation;
  if (parent == kNoPage) b.salt.assign(salt);
  std::copy(tokens.begin(), tokens.end(), tokens_.begin() + static_cast<ptrdiff_t>(id) * page_size_);
  index_.insert(hash, id);
  children_.insert(child_key(parent, parent_generation), id);
}

PagePool::PartialMatch PagePool::find_partial(int32_t parent, uint32_t parent_generation,
                                              std::span<const int32_t> tokens, std::string_view salt) const {
  PartialMatch best;
  const size_t n = std::min(tokens.size(), static_cast<size_t>(page_size_));
  int scanned = 0;
  children_.find_if(child_key(parent, parent_generation), [&](int32_t id) {
    const PageInfo& b = page(id);
    if (b.hashed && (parent != kNoPage || b.salt == salt)) {
      const auto mine = page_tokens(id);
      const int rows = static_cast<int>(
          std::mismatch(mine.begin(), mine.begin() + static_cast<ptrdiff_t>(n), tokens.begin()).first - mine.begin());
      if (rows > best.rows) best = {id, rows};
    }
    return best.rows == static_cast<int>(n) || ++scanned == kMaxPartialCandidates;
  });
  return best;
}

}  // namespace pagoda
