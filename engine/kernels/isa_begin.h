// Opens the instruction-set level a kernel source is being compiled for.
// engine/kernels/CMakeLists.txt compiles every source of PAGODA_ISA_SOURCES
// once per level with -DPAGODA_ISA_LEVEL=<0..4> (common/cpu_isa.h: baseline,
// avx2, avx512, avx512_vnni, amx); kernel_dispatch.cpp picks one set at
// start-up. A kernel source includes its standard and public headers first,
// then this file, then the level-dependent helper headers (simd.h,
// simd_exp.h, kvpool/kv_codec.h, attention_*.h) and wraps its code in
// PAGODA_ISA_NAMESPACE_BEGIN / _END.
//
// For a level this:
//  - makes PAGODA_ISA_NAMESPACE_BEGIN / _END apply `#pragma GCC
//    target(<the level's instructions>)` to the functions defined between
//    them (push_options / pop_options). Not -m flags on the command line:
//    with those, templates and inline functions of headers (std::vector's
//    code, KvStorage's accessors, ...) would be compiled with AVX-512 too and
//    the linker could keep that copy for callers that must run on an AVX2
//    CPU. Everything outside the level's namespace stays baseline code;
//  - defines PAGODA_AVX2, PAGODA_FMA, PAGODA_F16C, PAGODA_AVX512F,
//    PAGODA_AVX512BW, PAGODA_AVX512VL, PAGODA_AVX512DQ, PAGODA_AVX512VNNI,
//    PAGODA_AVX512BF16 and PAGODA_AMX for the instructions it has: kernels
//    test these, never __AVX512F__ (which says what the whole program was
//    compiled for);
//  - names the level's namespace (PAGODA_ISA_NS = isa_<level>, see
//    common/isa_namespace.h) and its table (PAGODA_ISA_TABLE).
// Under clang (the fuzz build) no target is applied and no feature macro is
// defined: every level compiles the scalar kernels.
// Included once per source; no #pragma once on purpose.
#if !defined(PAGODA_ISA_LEVEL)
#error "kernel sources are compiled once per level by engine/kernels/CMakeLists.txt (PAGODA_ISA_LEVEL)"
#endif
#if defined(PAGODA_ISA_BEGUN)
#error "isa_begin.h included twice"
#endif
#define PAGODA_ISA_BEGUN 1

// GCC 12's AVX-512 headers trip -Wuninitialized (GCC PR 105593); the
// intrinsics carry their own target attributes, so they are declared here,
// before the level's target applies.
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "common/isa_namespace.h"

#undef PAGODA_ISA_NS
#if PAGODA_ISA_LEVEL == 0
#define PAGODA_ISA_NS isa_baseline
#elif PAGODA_ISA_LEVEL == 1
#define PAGODA_ISA_NS isa_avx2
#elif PAGODA_ISA_LEVEL == 2
#define PAGODA_ISA_NS isa_avx512
#elif PAGODA_ISA_LEVEL == 3
#define PAGODA_ISA_NS isa_avx512_vnni
#elif PAGODA_ISA_LEVEL == 4
#define PAGODA_ISA_NS isa_amx
#else
#error "PAGODA_ISA_LEVEL must be 0..4"
#endif
#define PAGODA_ISA_CAT2(a, b) a##b
#define PAGODA_ISA_CAT(a, b) PAGODA_ISA_CAT2(a, b)
#define PAGODA_ISA_TABLE PAGODA_ISA_CAT(kernel_table_, PAGODA_ISA_NS)

// The level's target applies only between PAGODA_ISA_NAMESPACE_BEGIN and
// _END (push_options / pop_options in the macros), so headers included after
// this file, standard or ours, stay baseline code wherever they are first
// included; only the code inside the level's namespace uses its instructions.
#if !defined(__clang__) && PAGODA_ISA_LEVEL >= 1
// _Pragma takes one string literal, so clang-format must not split these lines.
// clang-format off
#if PAGODA_ISA_LEVEL == 1
#define PAGODA_ISA_TARGET_PRAGMA _Pragma("GCC target(\"avx2,fma,f16c,bmi,bmi2,lzcnt,movbe,popcnt\")")
#elif PAGODA_ISA_LEVEL == 2
#define PAGODA_ISA_TARGET_PRAGMA \
  _Pragma("GCC target(\"avx2,fma,f16c,bmi,bmi2,lzcnt,movbe,popcnt,avx512f,avx512bw,avx512vl,avx512dq,avx512cd\")")
#elif PAGODA_ISA_LEVEL == 3
#define PAGODA_ISA_TARGET_PRAGMA _Pragma("GCC target(\"avx2,fma,f16c,bmi,bmi2,lzcnt,movbe,popcnt,avx512f,avx512bw,avx512vl,avx512dq,avx512cd,avx512vnni,avx512bf16\")")
#else
#define PAGODA_ISA_TARGET_PRAGMA _Pragma("GCC target(\"avx2,fma,f16c,bmi,bmi2,lzcnt,movbe,popcnt,avx512f,avx512bw,avx512vl,avx512dq,avx512cd,avx512vnni,avx512bf16,amx-tile,amx-int8,amx-bf16\")")
#endif
#undef PAGODA_ISA_NAMESPACE_BEGIN
#undef PAGODA_ISA_NAMESPACE_END
#define PAGODA_ISA_NAMESPACE_BEGIN \
  _Pragma("GCC push_options") PAGODA_ISA_TARGET_PRAGMA inline namespace PAGODA_ISA_NS {
#define PAGODA_ISA_NAMESPACE_END } _Pragma("GCC pop_options")
// clang-format on
#define PAGODA_AVX2 1
#define PAGODA_FMA 1
#define PAGODA_F16C 1
#if PAGODA_ISA_LEVEL >= 2
#define PAGODA_AVX512F 1
#define PAGODA_AVX512BW 1
#define PAGODA_AVX512VL 1
#define PAGODA_AVX512DQ 1
#endif
#if PAGODA_ISA_LEVEL >= 3
#define PAGODA_AVX512VNNI 1
#define PAGODA_AVX512BF16 1
#endif
#if PAGODA_ISA_LEVEL >= 4
#define PAGODA_AMX 1
#endif
#endif
