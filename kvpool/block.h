// Block: the bookkeeping of one KV page (not its bytes; those live in
// KvStorage at the same page id). Plain struct owned by BlockPool; not
// synchronized.
#pragma once

#include <cstdint>
#include <string>

namespace pagoda {

// Page 0 is reserved as the null page: never allocated, all zeros in
// KvStorage. Block-table entries released by the sliding window become it.
constexpr int32_t kNullPage = 0;
// "No block": an empty free-list link, a first page's parent, a failed allocation.
constexpr int32_t kNoBlock = -1;

struct Block {
  int32_t id = kNoBlock;
  int32_t ref_count = 0;  // block tables holding this page; 0 = free

  // Intrusive free-list links (FreeBlockQueue), valid while in_free_list.
  int32_t prev_free = kNoBlock;
  int32_t next_free = kNoBlock;
  bool in_free_list = false;
  uint64_t free_tick = 0;  // when it last joined the free list (LRU order)

  // Bumped every time the page is handed out again, so a child page that
  // names this page as its parent stops matching once the content changes.
  uint32_t generation = 0;

  // Prefix-cache identity, valid while `hashed` (kept while free; dropped on reuse).
  bool hashed = false;
  uint64_t hash = 0;
  int32_t parent = kNoBlock;    // the page holding the previous tokens of the chain
  uint32_t parent_generation = 0;
  std::string salt;             // cache_salt; only set for first pages (parent == kNoBlock)
};

}  // namespace pagoda
