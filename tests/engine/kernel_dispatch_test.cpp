// Runtime kernel dispatch: every level the CPU supports has a complete table
// of its own code, the chosen level is the one calls run, and levels the CPU
// lacks or names that do not exist are refused.
#include <catch2/catch.hpp>
#include <set>
#include <vector>

#include "common/cpu_isa.h"
#include "engine/kernels/amx_gemm.h"
#include "engine/kernels/gemv.h"
#include "engine/kernels/kernel_table.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/q4_gemv.h"
#include "tests/engine/isa_levels.h"

using namespace pagoda;

TEST_CASE("every supported level has a complete kernel table of its own") {
  std::set<const void*> rmsnorms, panels, attentions;
  const std::vector<IsaLevel> levels = supported_isa_levels();
  REQUIRE(levels.front() == IsaLevel::kBaseline);
  REQUIRE(levels.back() == best_cpu_isa());
  for (IsaLevel level : levels) {
    const testing::IsaLevelScope isa(level);
    const KernelTable& t = active_kernels();
    CHECK(t.level == level);
    CHECK(t.rmsnorm_fn != nullptr);
    CHECK(t.rope_table_fn != nullptr);
    CHECK(t.rope_theta_fn != nullptr);
    CHECK(t.rope_rows_fn != nullptr);
    CHECK(t.swiglu_fn != nullptr);
    CHECK(t.swiglu_rows_fn != nullptr);
    CHECK(t.add_inplace_fn != nullptr);
    CHECK(t.argmax_fn != nullptr);
    CHECK(t.softmax_fn != nullptr);
    CHECK(t.f32_to_bf16_n_fn != nullptr);
    CHECK(t.round_to_bf16_n_fn != nullptr);
    CHECK(t.quantize_rows_s8_fn != nullptr);
    CHECK(t.quantize_rows_u8_fn != nullptr);
    CHECK(t.gemv_f32_fn != nullptr);
    CHECK(t.gemv_bf16_fn != nullptr);
    CHECK(t.gemv_bf16_f32x_fn != nullptr);
    CHECK(t.gemv_s8_fn != nullptr);
    CHECK(t.paged_attention_fn != nullptr);
    // AMX kernels exist only at the amx level; the public query follows.
    CHECK((t.amx_s8_fn != nullptr) == (level == IsaLevel::kAmx));
    CHECK((t.amx_bf16_fn != nullptr) == (level == IsaLevel::kAmx));
    CHECK(amx::available() == (level == IsaLevel::kAmx));
#if !defined(__clang__)  // clang builds compile every level's scalar kernels only
    // The vector int8 and 4-bit kernels come with avx2 (gemv_s8_avx2.cpp,
    // q4_gemv.cpp), the bf16 panel kernels with avx512_vnni.
    CHECK(gemv::vector_s8() == (level >= IsaLevel::kAvx2));
    CHECK(q4::vector_kernel() == (level >= IsaLevel::kAvx2));
    CHECK(gemv::vector_bf16() == (level >= IsaLevel::kAvx512Vnni));
#endif
    rmsnorms.insert(reinterpret_cast<const void*>(t.rmsnorm_fn));
    panels.insert(reinterpret_cast<const void*>(t.gemv_f32_fn));
    attentions.insert(reinterpret_cast<const void*>(t.paged_attention_fn));
  }
  // Each level runs its own compiled copy, not a shared one.
  CHECK(rmsnorms.size() == levels.size());
  CHECK(panels.size() == levels.size());
  CHECK(attentions.size() == levels.size());
}

TEST_CASE("the public kernels run the chosen level's code") {
  for (IsaLevel level : supported_isa_levels()) {
    const testing::IsaLevelScope isa(level);
    CHECK(active_kernel_isa() == level);
    // A call through the public function gives what the level's own entry gives.
    std::vector<float> x(100), y(100);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
    CHECK(argmax(x.data(), 100) == active_kernels().argmax_fn(x.data(), 100));
    std::vector<float> w(100, 1.0f);
    rmsnorm(x.data(), w.data(), 1, 100, 1e-5f, y.data());
    std::vector<float> z(100);
    active_kernels().rmsnorm_fn(x.data(), w.data(), 1, 100, 1e-5f, z.data());
    CHECK(y == z);
  }
}

TEST_CASE("level requests: auto, names, and levels this CPU lacks") {
  const IsaLevel before = active_kernel_isa();  // the best, or PAGODA_ISA's level
  CHECK(*resolve_isa_request("auto") == best_cpu_isa());
  CHECK(*resolve_isa_request("baseline") == IsaLevel::kBaseline);
  const Result<IsaLevel> bad = resolve_isa_request("avx9");
  REQUIRE_FALSE(bad.is_ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("avx512_vnni") && Catch::Contains("auto"));
  for (IsaLevel level : kAllIsaLevels) {
    INFO(isa_level_name(level));
    CHECK(parse_isa_level(isa_level_name(level)).is_ok());
    if (cpu_supports(level)) continue;
    const Result<IsaLevel> above = resolve_isa_request(isa_level_name(level));
    REQUIRE_FALSE(above.is_ok());
    CHECK_THAT(above.status().message(), Catch::Contains("best level is"));
    CHECK_FALSE(select_kernel_isa(level).is_ok());
    CHECK(active_kernel_isa() == before);  // a refused request changes nothing
  }
  CHECK_FALSE(cpu_model_name().empty());
}
