#include "kvpool/free_page_queue.h"

#include <cassert>

namespace pagoda {

void FreePageQueue::push_back(int32_t id) {
  PageInfo& b = at(id);
  assert(!b.in_free_list);
  b.in_free_list = true;
  b.free_tick = ++tick_;
  b.next_free = kNoPage;
  b.prev_free = tail_;
  if (tail_ != kNoPage) at(tail_).next_free = id;
  else head_ = id;
  tail_ = id;
  ++size_;
}

void FreePageQueue::push_front(int32_t id) {
  PageInfo& b = at(id);
  assert(!b.in_free_list);
  b.in_free_list = true;
  b.free_tick = ++tick_;
  b.prev_free = kNoPage;
  b.next_free = head_;
  if (head_ != kNoPage) at(head_).prev_free = id;
  else tail_ = id;
  head_ = id;
  ++size_;
}

int32_t FreePageQueue::pop_front() {
  if (head_ == kNoPage) return kNoPage;
  const int32_t id = head_;
  remove(id);
  return id;
}

void FreePageQueue::remove(int32_t id) {
  PageInfo& b = at(id);
  assert(b.in_free_list);
  if (b.prev_free != kNoPage) at(b.prev_free).next_free = b.next_free;
  else head_ = b.next_free;
  if (b.next_free != kNoPage) at(b.next_free).prev_free = b.prev_free;
  else tail_ = b.prev_free;
  b.prev_free = b.next_free = kNoPage;
  b.in_free_list = false;
  --size_;
}

}  // namespace pagoda
