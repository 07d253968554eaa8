#include "kvpool/prefix_index.h"

namespace pagoda {

bool PrefixIndex::erase(uint64_t hash, int32_t id) {
  auto [it, end] = map_.equal_range(hash);
  for (; it != end; ++it) {
    if (it->second == id) {
      map_.erase(it);
      return true;
    }
  }
  return false;
}

}  // namespace pagoda
