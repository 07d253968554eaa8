// PAGODA_ISA_NAMESPACE_BEGIN / _END: the inline namespace that code compiled
// for one instruction-set level lives in, so the same function or inline
// helper compiled at two levels has two names (and the linker can never
// merge an AVX-512 copy into code that must run on an AVX2 CPU).
// engine/kernels/isa_begin.h sets PAGODA_ISA_NS for a kernel variant
// (isa_avx512, ...); code compiled without it (the rest of the program)
// uses isa_default. Headers whose inline code depends on the level
// (kvpool/kv_codec.h, engine/kernels/simd*.h, ...) wrap it in these; being
// inline namespaces, callers name the functions as before. No declarations.
#pragma once

#ifndef PAGODA_ISA_NS
#define PAGODA_ISA_NS isa_default
#endif
#define PAGODA_ISA_NAMESPACE_BEGIN inline namespace PAGODA_ISA_NS {
#define PAGODA_ISA_NAMESPACE_END }
