// Runs a kernel test at every instruction-set level this CPU supports
// (baseline, avx2, avx512, ...: common/cpu_isa.h), so the AVX2 and scalar
// kernels are tested on an AVX-512 host too. In a TEST_CASE:
//   const IsaLevelScope isa(GENERATE(from_range(test_isa_levels())));
// The scope selects the level, names it in the failure message and restores
// the level the test started with. Not thread-safe (tests are single-threaded).
#pragma once

#include <catch2/catch.hpp>
#include <vector>

#include "common/cpu_isa.h"
#include "engine/kernels/kernel_table.h"

namespace pagoda::testing {

// Every level the CPU supports; under a sanitizer only the baseline and the
// best (the scalar and the widest vector code: the sanitizer stages must
// stay within CI's time; on an AVX-512 host the avx2 level's own kernels
// are checked against the references in the Release stage only).
inline std::vector<IsaLevel> test_isa_levels() {
  std::vector<IsaLevel> levels = supported_isa_levels();
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  if (levels.size() > 2) levels = {levels.front(), levels.back()};
#endif
  return levels;
}

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
