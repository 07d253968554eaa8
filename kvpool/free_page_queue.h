// FreePageQueue: the free pages as an intrusive doubly linked list through
// PageInfo::prev_free / next_free, in eviction order: the front is taken first.
// Pages without a cached hash go to the front (nothing to lose); cached pages
// go to the back (most recently used), so the cached pages in the list are in
// LRU order. O(1) push, pop and removal from the middle.
// Does not own the pages (PagePool does); not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "kvpool/page.h"

namespace pagoda {

class FreePageQueue {
 public:
  explicit FreePageQueue(std::vector<PageInfo>* pages) : pages_(pages) {}

  void push_back(int32_t id);
  void push_front(int32_t id);
  // Removes and returns the front page; kNoPage if empty.
  int32_t pop_front();
  // Removes a page from anywhere in the list (it must be in it).
  void remove(int32_t id);

  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  int32_t front() const { return head_; }
  // The page after `id` (towards the back), kNoPage at the end.
  int32_t next(int32_t id) const { return (*pages_)[static_cast<size_t>(id)].next_free; }

 private:
  PageInfo& at(int32_t id) { return (*pages_)[static_cast<size_t>(id)]; }

  std::vector<PageInfo>* pages_;
  int32_t head_ = kNoPage;
  int32_t tail_ = kNoPage;
  int64_t size_ = 0;
  uint64_t tick_ = 0;
};

}  // namespace pagoda
