// json_nesting_exceeds: whether a parsed JSON document (nlohmann::json or
// ordered_json) nests arrays and objects more than `limit` levels deep.
// Iterative, so it is safe on any document, and callers run it before
// anything that recurses over the document (copying, dumping, compiling).
// A pure function template; thread-safe.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace pagoda {

template <typename Json>
bool json_nesting_exceeds(const Json& value, size_t limit) {
  std::vector<std::pair<const Json*, size_t>> pending{{&value, 1}};
  while (!pending.empty()) {
    auto [node, depth] = pending.back();
    pending.pop_back();
    if (!node->is_structured()) continue;
    if (depth > limit) return true;
    for (const Json& child : *node) pending.emplace_back(&child, depth + 1);
  }
  return false;
}

}  // namespace pagoda
