// Runs a kernel test at every instruction-set level this CPU supports
// (baseline, avx2, avx512, ...: common/cpu_isa.h), so the AVX2 and scalar
// kernels are tested on an AVX-512 host too. In a TEST_CASE:
//   const IsaLevelScope isa(GENERATE(from_range(supported_isa_levels())));
// The scope selects the level, names it in the failure message and restores
// the level the test started with. Not thread-safe (tests are single-threaded).
#pragma once

#include <catch2/catch.hpp>

#include "common/cpu_isa.h"
#include "engine/kernels/kernel_table.h"

namespace pagoda::testing {

class IsaLevelScope {
 public:
  explicit IsaLevelScope(IsaLevel level)
      : previous_(active_kernel_isa()),
        message_(Catch::MessageBuilder("INFO", CATCH_INTERNAL_LINEINFO, Catch::ResultWas::Info)
                 << "kernel level " << isa_level_name(level)) {
    REQUIRE(select_kernel_isa(level).is_ok());
    REQUIRE(active_kernel_isa() == level);
  }
  ~IsaLevelScope() { (void)select_kernel_isa(previous_); }
  IsaLevelScope(const IsaLevelScope&) = delete;
  IsaLevelScope& operator=(const IsaLevelScope&) = delete;

 private:
  IsaLevel previous_;
  Catch::ScopedMessage message_;  // "kernel level <name>" beside every failure
};

}  // namespace pagoda::testing
