// PrefixIndex: page hash -> cached pages carrying that hash. Several pages may
// share a hash (a collision, or the same content cached twice); callers check
// the candidates' content. Holds page ids only; PagePool owns the pages.
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>

namespace pagoda {

class PrefixIndex {
 public:
  using Map = std::unordered_multimap<uint64_t, int32_t>;

  void insert(uint64_t hash, int32_t id) { map_.emplace(hash, id); }
  // Removes the (hash, id) entry; false if it was not there.
  bool erase(uint64_t hash, int32_t id);
  // Calls visit(id) for each page under `hash` until it returns true; returns
  // that page, or -1.
  template <typename Visit>
  int32_t find_if(uint64_t hash, Visit&& visit) const {
    auto [it, end] = map_.equal_range(hash);
    for (; it != end; ++it) {
      if (visit(it->second)) return it->second;
    }
    return -1;
  }
  size_t size() const { return map_.size(); }
  const Map& entries() const { return map_; }

 private:
  Map map_;
};

}  // namespace pagoda
