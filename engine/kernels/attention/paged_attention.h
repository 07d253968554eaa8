// Fused paged attention: for each sequence of a batch, its query tokens attend
// to the keys and values stored in its KV pages (read through its page
// table), with causal masking, an optional sliding window and any KV dtype
// dequantized on the fly.
//
// FlashAttention-style: KV is walked one page (tile) at a time with an online
// softmax (running max, running sum, rescaled accumulator), so no score row
// over the whole context is ever materialized. GQA-aware: each K/V tile is
// read once for every query head of its group (four at a time in the decode
// kernel) and every query token of the work item (MHA: group of 1; MQA: one
// KV head for all).
//
// Work is split into items (sequence, KV head, block of up to 16 query
// tokens) run in parallel with OpenMP; scratch is per thread. Each item takes
// one kernel, the first row of this table that matches (choose_item_kernel
// in the .cpp, the one place it is chosen); "uses" =
// the item's query tokens x the group's query heads, the times each KV row is
// read:
//
//   kernel        takes items with                              file
//   decode        1 query token, group 4 or 8, head_dim 64/128  attention_decode.h
//                 (four heads in the blocks of each vector)
//   lanes         > 8 uses, head_dim 16/32/64/128               attention_lanes.h
//                 (16 uses in the lanes of a vector)
//   stored rows   <= 8 uses (any number with f32 KV), not int4, paged_attention.cpp
//                 head_dim % 16 == 0: 16 KV rows scored at a time, rows read
//                 in their stored dtype and widened in registers
//   decoded tile  the rest with head_dim % 16 == 0: the tile      paged_attention.cpp
//                 decoded to f32 once, then read as f32
//   blocks8       the rest with head_dim % 8 == 0 (every such    attention_blocks8.h
//                 item at the avx2 level): K transposed, 8 keys
//                 per 256-bit vector
//   scalar        everything else (and every item at the         paged_attention.cpp
//                 baseline level)
//
// The first four need AVX-512 (runtime dispatch: engine/kernels/kernel_table.h).
// Thread-safe for concurrent calls only on disjoint outputs; reads `kv`,
// never writes it.
#pragma once

#include <cstdint>
#include <span>

#include "kvpool/kv_storage.h"

namespace pagoda {

struct AttentionShape {
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // KV heads; n_heads % n_kv_heads == 0
  int head_dim = 0;
  int64_t sliding_window = 0;  // a query at p sees keys k with p - k < window; 0 = all k <= p
  float scale = 0;             // softmax scale, usually 1/sqrt(head_dim)
};

// One sequence's part of the batch: `n_q` query tokens at consecutive
// positions first_pos .. first_pos + n_q - 1, whose rows in q/out start at
// `row`. K/V for every position up to the last query's must already be in
// the pages of `page_table` (page of position p = page_table[p / page_size];
// pages wholly outside every query's window may be kNullPage).
struct AttentionSeq {
  std::span<const int32_t> page_table;
  int64_t first_pos = 0;
  int64_t n_q = 0;
  int64_t row = 0;
};

// q: rows of n_heads * head_dim floats, `q_stride` floats apart (so q may sit
// inside a fused QKV buffer); out: rows `out_stride` apart, written with the
// attention output per head.
void paged_attention(const KvStorage& kv, int layer, std::span<const AttentionSeq> seqs, const float* q,
                     int64_t q_stride, float* out, int64_t out_stride, const AttentionShape& shape);

}  // namespace pagoda
