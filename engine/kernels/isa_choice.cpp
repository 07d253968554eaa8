#include "engine/kernels/isa_choice.h"

#include <cstdlib>

#include <spdlog/spdlog.h>
#include <dnnl.hpp>

#include "engine/kernels/kernel_table.h"

namespace pagoda {
namespace {

// oneDNN's ISA for a level: the widest it may use there.
dnnl::cpu_isa onednn_isa(IsaLevel level) {
  switch (level) {
    case IsaLevel::kBaseline:
      return dnnl::cpu_isa::sse41;
    case IsaLevel::kAvx2:
      return dnnl::cpu_isa::avx2;
    case IsaLevel::kAvx512:
      return dnnl::cpu_isa::avx512_core;
    case IsaLevel::kAvx512Vnni:
      return dnnl::cpu_isa::avx512_core_bf16;
    case IsaLevel::kAmx:
      return dnnl::cpu_isa::all;
  }
  return dnnl::cpu_isa::all;
}

}  // namespace

Result<IsaChoice> choose_isa(const std::string& configured) {
  const char* env = std::getenv("PAGODA_ISA");
  const bool from_env = env != nullptr && *env != '\0';
  const std::string request = from_env ? std::string(env) : configured;
  const std::string source = (from_env ? "PAGODA_ISA=" : "engine.isa=") + request;
  Result<IsaLevel> level = resolve_isa_request(request);
  if (!level) {
    return Status::invalid_argument(
        (from_env ? std::string("environment variable 'PAGODA_ISA'") : std::string("config key 'engine.isa'")) + ": " +
        level.status().message());
  }
  return IsaChoice{*level, source};
}

Result<IsaChoice> apply_isa_choice(const std::string& configured) {
  Result<IsaChoice> choice = choose_isa(configured);
  if (!choice) return choice;
  if (Status st = select_kernel_isa(choice->level); !st) return st;
  if (choice->level != best_cpu_isa()) {
    try {
      dnnl::set_max_cpu_isa(onednn_isa(choice->level));
    } catch (const dnnl::error& e) {
      // oneDNN already made a primitive in this process: its kernels keep
      // the CPU's best, ours run the chosen level.
      spdlog::warn("oneDNN keeps the CPU's best ISA (it cannot be capped at {} now: {})", isa_level_name(choice->level),
                   e.what());
    }
  }
  return choice;
}

}  // namespace pagoda
