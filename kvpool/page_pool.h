// PagePool: a fixed set of KV pages (ids 0..num_pages-1) and who holds them.
//
// Page 0 is the reserved null page (kNullPage): never allocated, never free.
// Every other page is at any time exactly one of
//   in use  ref_count > 0 (held by that many page tables), or
//   free    ref_count == 0 and in the FreePageQueue.
// A full page may carry a prefix-cache identity (hash, parent page, tokens,
// salt) registered in the PrefixIndex; it keeps it while free (the free list
// is the cache) and loses it only when it is handed out again (an eviction).
// Cached pages are also indexed by their parent, so a prompt that matches only
// the leading tokens of a cached page can find it (find_partial).
// Freed cached pages join the back of the free list, uncached ones the front;
// allocation takes the front, so cached pages are evicted least recently used
// first.
//
// Owns the PageInfo records, each page's token ids, the free list and the index.
// Not thread-safe: the engine thread alone calls it (through KvCacheManager).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "kvpool/free_page_queue.h"
#include "kvpool/page.h"
#include "kvpool/prefix_index.h"

namespace pagoda {

class PagePool {
 public:
  // num_pages >= 2 (the null page plus at least one), page_size >= 1;
  // KvCacheManager::create validates these.
  PagePool(int64_t num_pages, int page_size);
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;

  int page_size() const { return page_size_; }
  int64_t num_pages() const { return static_cast<int64_t>(pages_.size()); }  // with the null page
  int64_t num_usable_pages() const { return num_pages() - 1; }
  int64_t num_free() const { return free_.size(); }
  int64_t num_in_use() const { return num_usable_pages() - num_free(); }
  int64_t num_cached_free() const { return num_cached_free_; }

  // Takes the front free page with ref_count 1, evicting its cached identity
  // if it has one. kNoPage if no page is free.
  int32_t allocate();
  // One more holder: ref_count + 1; a free page leaves the free list.
  void acquire(int32_t id);
  // One holder fewer; at 0 the page joins the free list. Releasing a page that
  // is already free (or the null page) changes nothing and counts an error.
  void release(int32_t id);

  // The cached page with this hash whose content is exactly (parent page at
  // parent_generation, tokens, salt), or kNoPage. For a first page pass
  // parent = kNoPage. Does not take a reference.
  int32_t find_cached(uint64_t hash, int32_t parent, uint32_t parent_generation, std::span<const int32_t> tokens,
                      std::string_view salt) const;
  // A cached page to copy leading rows from: among the cached pages that follow
  // `parent` at parent_generation (first pages with this salt for parent =
  // kNoPage), the one whose leading tokens match the most leading `tokens`
  // (at least one). Scans at most kMaxPartialCandidates of them. Does not take
  // a reference.
  struct PartialMatch {
    int32_t page = kNoPage;
    int rows = 0;  // leading tokens that match
  };
  static constexpr int kMaxPartialCandidates = 64;
  PartialMatch find_partial(int32_t parent, uint32_t parent_generation, std::span<const int32_t> tokens,
                            std::string_view salt) const;
  // Gives an in-use, uncached page its cache identity and indexes it.
  void register_page(int32_t id, uint64_t hash, int32_t parent, uint32_t parent_generation,
                     std::span<const int32_t> tokens, std::string_view salt);

  // ---- inspection (metrics, tests) ----
  const PageInfo& page(int32_t id) const { return pages_[static_cast<size_t>(id)]; }
  // The token ids a cached page was registered with (page_size of them).
  std::span<const int32_t> page_tokens(int32_t id) const {
    return {tokens_.data() + static_cast<size_t>(id) * static_cast<size_t>(page_size_),
            static_cast<size_t>(page_size_)};
  }
  const FreePageQueue& free_queue() const { return free_; }
  const PrefixIndex& index() const { return index_; }
  const PrefixIndex& children() const { return children_; }  // keyed by child_key(parent, generation)
  static uint64_t child_key(int32_t parent, uint32_t parent_generation) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(parent + 1)) << 32) | parent_generation;
  }
  int64_t evictions() const { return evictions_; }
  int64_t errors() const { return errors_; }  // bad releases; always 0 unless there is a bug

 private:
  PageInfo& at(int32_t id) { return pages_[static_cast<size_t>(id)]; }
  void evict(PageInfo& b);

  int page_size_;
  std::vector<PageInfo> pages_;
  std::vector<int32_t> tokens_;  // page_size per page, valid while hashed
  FreePageQueue free_;
  PrefixIndex index_;     // page hash -> cached page
  PrefixIndex children_;  // child_key(parent, parent_generation) -> cached page
  int64_t num_cached_free_ = 0;
  int64_t evictions_ = 0;
  int64_t errors_ = 0;
};

}  // namespace pagoda
