// The chained hash that names a full page for prefix sharing:
//   hash(page i) = fn(hash(page i-1), tokens of page i, cache_salt),
// with kRootPageHash standing in for the parent of the first page.
// A hash only finds candidates: PagePool checks the tokens, the parent page
// and the salt on every hit, so a collision costs a miss, never wrong KV.
// Stateless, thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace pagoda {

constexpr uint64_t kRootPageHash = 0x243f6a8885a308d3ULL;

using PageHashFn = uint64_t (*)(uint64_t parent_hash, std::span<const int32_t> tokens, std::string_view cache_salt);

// 64-bit mix of the parent hash, the salt bytes and the token ids
// (splitmix64 finalizer over 64-bit words).
uint64_t default_page_hash(uint64_t parent_hash, std::span<const int32_t> tokens, std::string_view cache_salt);

}  // namespace pagoda
