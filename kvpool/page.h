// PageInfo: the bookkeeping of one KV page (not its bytes; those live in
// KvStorage at the same page id). Plain struct owned by PagePool; not
// synchronized.
#pragma once

#include <cstdint>
#include <string>

namespace pagoda {

// Page 0 is reserved as the null page: never allocated, all zeros in
// KvStorage. PageInfo-table entries released by the sliding window become it.
constexpr int32_t kNullPage = 0;
// "No page": an empty free-list link, a first page's parent, a failed allocation.
constexpr int32_t kNoPage = -1;

struct PageInfo {
  int32_t id = kNoPage;
  int32_t ref_count = 0;  // page tables holding this page; 0 = free

  // Intrusive free-list links (FreePageQueue), valid while in_free_list.
  int32_t prev_free = kNoPage;
  int32_t next_free = kNoPage;
  bool in_free_list = false;
  uint64_t free_tick = 0;  // when it last joined the free list (LRU order)

  // Bumped every time the page is handed out again, so a child page that
  // names this page as its parent stops matching once the content changes.
  uint32_t generation = 0;

  // Prefix-cache identity, valid while `hashed` (kept while free; dropped on reuse).
  bool hashed = false;
  uint64_t hash = 0;
  int32_t parent = kNoPage;  // the page holding the previous tokens of the chain
  uint32_t parent_generation = 0;
  std::string salt;  // cache_salt; only set for first pages (parent == kNoPage)
};

}  // namespace pagoda
