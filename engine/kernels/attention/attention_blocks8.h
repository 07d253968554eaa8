// Paged attention in 8-key blocks with 256-bit vectors: the kernel of the
// avx2 level for every work item (decode and prefill), and of the AVX-512
// levels for head_dims the 16-lane kernels do not take. Internal to
// paged_attention, which picks it per work item.
//
// Per KV tile: the visible K rows are decoded to f32 (f32 rows read in place)
// and transposed, 8x8 at a time, so a vector holds one dim of 8 keys; the
// scores of 4 uses (query token x group head) and 2 key blocks then form 8
// independent FMA chains fed by broadcast query values. The online softmax
// runs on 8 keys per vector with a vectorized exp; the weights multiply the V
// rows into each use's accumulator, up to 64 dims (8 vectors) in registers at
// a time. Stateless apart from per-thread scratch; thread-safe for concurrent
// calls on disjoint outputs.
#pragma once

#if !defined(PAGODA_ISA_BEGUN)
#error "a kernel helper header: include it after engine/kernels/isa_begin.h"
#endif

#include <cstdint>

#include "engine/kernels/attention/paged_attention.h"

namespace pagoda {
PAGODA_ISA_NAMESPACE_BEGIN

// Whether attend_blocks8 handles this head_dim in this build (AVX2 and
// head_dim a multiple of 8).
bool blocks8_kernel_supports(int head_dim);

// Query tokens [t0, t1) of `seq`, all group heads of `kv_head`, against the
// KV they may see (causal, sliding window): writes their rows of `out`.
// Arguments as for paged_attention; head_dim must be supported.
void attend_blocks8(const KvStorage& kv, int layer, const AttentionSeq& seq, int kv_head, int64_t t0, int64_t t1,
                    const float* q, int64_t q_stride, float* out, int64_t out_stride, const AttentionShape& shape);

PAGODA_ISA_NAMESPACE_END
}  // namespace pagoda
