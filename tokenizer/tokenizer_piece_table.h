// PieceTable: an immutable string -> id hash table for tokenizer
// vocabularies, built once. Open addressing with linear probing over one
// flat array (entries hold the full 64-bit hash, so a miss rarely touches
// the strings), which is several times faster than std::unordered_map for
// the short lookups BPE does. Keeps a copy of the keys; after build(),
// find() is const and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pagoda {

class PieceTable {
 public:
  // Adds `key` -> `id` unless `key` is already present (the first wins).
  // Call before any find().
  void insert(std::string_view key, int32_t id);
  // Id of `key`, or -1.
  int32_t find(std::string_view key) const;
  size_t size() const { return count_; }

  static uint64_t hash(std::string_view s);

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0;  // into keys_
    uint32_t length = 0;
    int32_t id = -1;  // -1: empty
  };
  void grow();

  std::vector<Slot> slots_;  // size is a power of two, at most half full
  std::string keys_;         // all keys, back to back
  size_t count_ = 0;
};

}  // namespace pagoda
