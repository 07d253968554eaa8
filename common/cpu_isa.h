// The x86-64 instruction-set levels the engine's kernels are compiled for
// (each kernel source once per level, engine/kernels/isa_begin.h), whether
// the running CPU and OS support each one, the CPU's model name, and the
// level names users write (PAGODA_ISA, engine.isa).
//
//   baseline     x86-64 (SSE2): the scalar kernels; any x86-64 CPU
//   avx2         x86-64-v3: AVX2, FMA, F16C, BMI1/2 (Haswell, Zen 1 on)
//   avx512       + AVX-512 F/BW/VL/DQ/CD (Skylake-SP, Zen 4 on)
//   avx512_vnni  + AVX512_VNNI and AVX512_BF16 (Cooper Lake, Sapphire Rapids, Zen 4 on)
//   amx          + AMX-TILE/INT8/BF16 with Linux's permission for the tile
//                  state (Sapphire Rapids on)
// Each level includes the ones before it. Detection reads CPUID and XCR0
// (the OS must save the wider registers) once; for amx it also asks Linux
// for the tile state (arch_prctl). Pure functions over cached facts;
// thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace pagoda {

enum class IsaLevel { kBaseline = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Vnni = 3, kAmx = 4 };
inline constexpr IsaLevel kAllIsaLevels[] = {IsaLevel::kBaseline, IsaLevel::kAvx2, IsaLevel::kAvx512,
                                             IsaLevel::kAvx512Vnni, IsaLevel::kAmx};

// "baseline", "avx2", "avx512", "avx512_vnni", "amx".
const char* isa_level_name(IsaLevel level);

// A level name as above; the error lists the accepted names. "auto" is not a
// level: callers that accept it check for it first.
Result<IsaLevel> parse_isa_level(const std::string& name);

// Whether this CPU and OS can run code of `level`.
bool cpu_supports(IsaLevel level);
// The highest level this CPU supports, and every level it supports (lowest first).
IsaLevel best_cpu_isa();
std::vector<IsaLevel> supported_isa_levels();

// The CPU's brand string (CPUID leaf 0x80000002-4), e.g. "AMD EPYC 9R45
// 64-Core Processor"; "unknown CPU" when the CPU does not report one.
std::string cpu_model_name();

}  // namespace pagoda
