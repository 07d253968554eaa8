// Paged attention for work items with many (query token x group head) uses:
// prefill chunks, and decode of wide groups (MQA). Internal to
// paged_attention, which splits the batch into work items and picks this
// kernel or its own per-use one.
//
// FlashAttention-2 style with the uses in vector lanes: per 16-key block the
// scores of 16 uses form 16 vectors (one per key, from broadcast K values
// times a transposed query block), so the online-softmax max, sum and rescale
// are lane-wise vector operations shared by 16 uses, not horizontal
// reductions per use; the weights then multiply the block's V rows into the
// 16 uses' accumulators with broadcasts. K/V rows of every dtype are decoded
// to f32 once per block for all uses (f32 rows inside one page are read in
// place). Stateless apart from per-thread scratch; thread-safe for
// concurrent calls on disjoint outputs.
#pragma once

#if !defined(PAGODA_ISA_BEGUN)
#error "a kernel helper header: include it after engine/kernels/isa_begin.h"
#endif

#include <cstdint>

#include "engine/kernels/attention/paged_attention.h"

namespace pagoda {
PAGODA_ISA_NAMESPACE_BEGIN

// Whether attend_uses_in_lanes handles this head_dim in this build
// (AVX-512 and head_dim 16, 32, 64 or 128).
bool lanes_kernel_supports(int head_dim);

// Query tokens [t0, t1) of `seq`, all group heads of `kv_head`, against the
// KV they may see (causal, sliding window): writes their rows of `out`.
// Arguments as for paged_attention; head_dim must be supported.
void attend_uses_in_lanes(const KvStorage& kv, int layer, const AttentionSeq& seq, int kv_head, int64_t t0, int64_t t1,
                          const float* q, int64_t q_stride, float* out, int64_t out_stride,
                          const AttentionShape& shape);

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda
