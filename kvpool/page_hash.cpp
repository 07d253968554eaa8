#include "kvpool/page_hash.h"

#include <cstring>

namespace pagoda {

namespace {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

uint64_t default_page_hash(uint64_t parent_hash, std::span<const int32_t> tokens, std::string_view cache_salt) {
  uint64_t h = mix64(parent_hash ^ 0x9e3779b97f4a7c15ULL);
  h = mix64(h ^ (cache_salt.size() * 0x100000001b3ULL));
  size_t i = 0;
  for (; i + 8 <= cache_salt.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, cache_salt.data() + i, 8);
    h = mix64(h ^ w);
  }
  if (i < cache_salt.size()) {
    uint64_t w = 0;
    std::memcpy(&w, cache_salt.data() + i, cache_salt.size() - i);
    h = mix64(h ^ w);
  }
  h = mix64(h ^ tokens.size());
  size_t t = 0;
  for (; t + 2 <= tokens.size(); t += 2) {
    const uint64_t w =
        static_cast<uint32_t>(tokens[t]) | (static_cast<uint64_t>(static_cast<uint32_t>(tokens[t + 1])) << 32);
    h = mix64(h ^ w);
  }
  if (t < tokens.size()) h = mix64(h ^ static_cast<uint32_t>(tokens[t]));
  return h;
}

}  // namespace pagoda
