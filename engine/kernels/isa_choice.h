// The kernel level `pagoda serve` runs: PAGODA_ISA from the environment when
// set, else the configured value (engine.isa): "auto" (the CPU's best) or a
// level name (common/cpu_isa.h). (Every other program, benchmarks and tests
// included, starts at PAGODA_ISA's level when it names one this CPU supports,
// else at the CPU's best: kernel_dispatch.cpp.) Not thread-safe: call once,
// before serving.
#pragma once

#include <string>

#include "common/cpu_isa.h"
#include "common/status.h"

namespace pagoda {

struct IsaChoice {
  IsaLevel level = IsaLevel::kBaseline;
  std::string source;  // "PAGODA_ISA=avx2", "engine.isa=auto", ...
};

// Works out the level without applying it. The error names where the bad
// value came from (the environment variable or config key 'engine.isa') and
// the accepted names, or the CPU's best level.
Result<IsaChoice> choose_isa(const std::string& configured);

// choose_isa, then selects the level for the kernels (kernel_table.h) and,
// below the CPU's best, caps oneDNN's own kernels at the matching ISA
// (oneDNN honours this only before its first primitive is made).
Result<IsaChoice> apply_isa_choice(const std::string& configured);

}  // namespace pagoda
