#include "kvpool/free_block_queue.h"

#include <cassert>

namespace pagoda {

void FreeBlockQueue::push_back(int32_t id) {
  Block& b = at(id);
  assert(!b.in_free_list);
  b.in_free_list = true;
  b.free_tick = ++tick_;
  b.next_free = kNoBlock;
  b.prev_free = tail_;
  if (tail_ != kNoBlock) at(tail_).next_free = id; else head_ = id;
  tail_ = id;
  ++size_;
}

void FreeBlockQueue::push_front(int32_t id) {
  Block& b = at(id);
  assert(!b.in_free_list);
  b.in_free_list = true;
  b.free_tick = ++tick_;
  b.prev_free = kNoBlock;
  b.next_free = head_;
  if (head_ != kNoBlock) at(head_).prev_free = id; else tail_ = id;
  head_ = id;
  ++size_;
}

int32_t FreeBlockQueue::pop_front() {
  if (head_ == kNoBlock) return kNoBlock;
  const int32_t id = head_;
  remove(id);
  return id;
}

void FreeBlockQueue::remove(int32_t id) {
  Block& b = at(id);
  assert(b.in_free_list);
  if (b.prev_free != kNoBlock) at(b.prev_free).next_free = b.next_free; else head_ = b.next_free;
  if (b.next_free != kNoBlock) at(b.next_free).prev_free = b.prev_free; else tail_ = b.prev_free;
  b.prev_free = b.next_free = kNoBlock;
  b.in_free_list = false;
  --size_;
}

}  // namespace pagoda
