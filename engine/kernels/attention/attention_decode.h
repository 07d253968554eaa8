// Decode attention for grouped-query layouts: one query token and the group
// heads of one KV head, groups of 4 or 8 heads, head_dim 64 or 128. Internal
// to paged_attention, which sends every single-token work item of such a
// shape here.
//
// Four group heads share each pass over the visible KV rows (a group of 8
// makes two passes), and their scores are computed with the heads in the
// four 128-bit blocks of a vector: per key, the queries' dims 4b..4b+3 (one
// block per head) multiply the key's dims 4b..4b+3 broadcast to all blocks,
// so the head_dim sum leaves only four lanes per head to add, done for 8
// keys at once by a two-stage transpose. The online softmax then runs on
// four vectors holding 4 keys x 4 heads each, one exp per vector for all
// heads, and the weights multiply each V row, widened once, into the four
// heads' accumulators held in registers. K rows stored narrower than f32 are
// widened once per pass into scratch; f32 rows are read in place; int4 tiles
// are decoded to f32 first. Stateless apart from per-thread scratch;
// thread-safe for concurrent calls on disjoint outputs.
#pragma once

#if !defined(PAGODA_ISA_BEGUN)
#error "a kernel helper header: include it after engine/kernels/isa_begin.h"
#endif

#include <cstdint>

#include "engine/kernels/attention/paged_attention.h"

namespace pagoda {
PAGODA_ISA_NAMESPACE_BEGIN

// Whether attend_decode handles this group size (query heads per KV head)
// and head_dim in this build (AVX-512).
bool decode_kernel_supports(int group, int head_dim);

// Query token t of `seq` (one token), all group heads of `kv_head`, against
// the keys it may see (causal, sliding window): writes its rows of `out`.
// Arguments as for paged_attention; the shape must be supported.
void attend_decode(const KvStorage& kv, int layer, const AttentionSeq& seq, int kv_head, int64_t t, const float* q,
                   int64_t q_stride, float* out, int64_t out_stride, const AttentionShape& shape);

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda
