#include "common/cpu_isa.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace pagoda {
namespace {

#if defined(__x86_64__)
struct Cpuid {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Cpuid cpuid(unsigned leaf, unsigned sub) {
  Cpuid r;
  if (!__get_cpuid_count(leaf, sub, &r.a, &r.b, &r.c, &r.d)) return Cpuid{};
  return r;
}

uint64_t xcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

bool bit(unsigned reg, int n) { return (reg >> n) & 1u; }

// Linux keeps the 8 KB AMX tile state off until a process asks for it.
bool request_amx_tile_state() {
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

// The highest supported level, worked out once.
IsaLevel detect() {
  const Cpuid l1 = cpuid(1, 0), l7 = cpuid(7, 0), l71 = cpuid(7, 1), ext = cpuid(0x80000001, 0);
  const bool osxsave = bit(l1.c, 27);
  const uint64_t xcr = osxsave ? xcr0() : 0;
  const bool os_ymm = (xcr & 0x6) == 0x6;           // SSE and AVX state
  const bool os_zmm = (xcr & 0xe6) == 0xe6;         // + opmask, ZMM0-15 upper, ZMM16-31
  const bool os_tile = (xcr & 0x60000) == 0x60000;  // XTILECFG, XTILEDATA
  const bool avx2 = os_ymm && bit(l1.c, 28) /*AVX*/ && bit(l1.c, 12) /*FMA*/ && bit(l1.c, 29) /*F16C*/ &&
                    bit(l7.b, 5) /*AVX2*/ && bit(l7.b, 3) /*BMI1*/ && bit(l7.b, 8) /*BMI2*/ &&
                    bit(ext.c, 5) /*LZCNT*/ && bit(l1.c, 22) /*MOVBE*/ && bit(l1.c, 23) /*POPCNT*/ &&
                    bit(l1.c, 20) /*SSE4.2*/ && bit(l1.c, 9) /*SSSE3*/;
  if (!avx2) return IsaLevel::kBaseline;
  const bool avx512 = os_zmm && bit(l7.b, 16) /*F*/ && bit(l7.b, 17) /*DQ*/ && bit(l7.b, 28) /*CD*/ &&
                      bit(l7.b, 30) /*BW*/ && bit(l7.b, 31) /*VL*/;
  if (!avx512) return IsaLevel::kAvx2;
  const bool vnni = bit(l7.c, 11) /*AVX512_VNNI*/ && bit(l71.a, 5) /*AVX512_BF16*/;
  if (!vnni) return IsaLevel::kAvx512;
  const bool amx = os_tile && bit(l7.d, 24) /*AMX-TILE*/ && bit(l7.d, 25) /*AMX-INT8*/ && bit(l7.d, 22) /*AMX-BF16*/ &&
                   request_amx_tile_state();
  return amx ? IsaLevel::kAmx : IsaLevel::kAvx512Vnni;
}
#else
IsaLevel detect() { return IsaLevel::kBaseline; }
#endif

}  // namespace

const char* isa_level_name(IsaLevel level) {
  switch (level) {
    case IsaLevel::kBaseline:
      return "baseline";
    case IsaLevel::kAvx2:
      return "avx2";
    case IsaLevel::kAvx512:
      return "avx512";
    case IsaLevel::kAvx512Vnni:
      return "avx512_vnni";
    case IsaLevel::kAmx:
      return "amx";
  }
  return "?";
}

Result<IsaLevel> parse_isa_level(const std::string& name) {
  for (IsaLevel level : kAllIsaLevels) {
    if (name == isa_level_name(level)) return level;
  }
  std::string names = "auto";
  for (IsaLevel level : kAllIsaLevels)
    names += std::string(level == std::end(kAllIsaLevels)[-1] ? " or " : ", ") + isa_level_name(level);
  return Status::invalid_argument("unknown instruction-set level '" + name + "' (expected " + names + ")");
}

IsaLevel best_cpu_isa() {
  static const IsaLevel best = detect();
  return best;
}

bool cpu_supports(IsaLevel level) { return static_cast<int>(level) <= static_cast<int>(best_cpu_isa()); }

std::vector<IsaLevel> supported_isa_levels() {
  std::vector<IsaLevel> out;
  for (IsaLevel level : kAllIsaLevels) {
    if (cpu_supports(level)) out.push_back(level);
  }
  return out;
}

std::string cpu_model_name() {
#if defined(__x86_64__)
  if (cpuid(0x80000000, 0).a >= 0x80000004) {
    std::array<char, 49> brand{};
    for (unsigned i = 0; i < 3; ++i) {
      const Cpuid r = cpuid(0x80000002 + i, 0);
      std::memcpy(brand.data() + 16 * i, &r, 16);
    }
    std::string s(brand.data());
    const size_t b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
    if (b != std::string::npos) return s.substr(b, e - b + 1);
  }
#endif
  return "unknown CPU";
}

}  // namespace pagoda
