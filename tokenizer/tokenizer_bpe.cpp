#include "tokenizer/tokenizer_bpe.h"

#include <algorithm>
#include <cstdio>

#include "tokenizer/tokenizer_utf8.h"

namespace pagoda {

namespace {

uint64_t mix(uint64_t k) {  // splitmix64 finalizer
  k ^= k >> 30;
  k *= 0xbf58476d1ce4e5b9ULL;
  k ^= k >> 27;
  k *= 0x94d049bb133111ebULL;
  return k ^ (k >> 31);
}

uint64_t pair_key(int32_t l, int32_t r) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
}

// Min-heap order on (rank, left position).
bool after(const BpeModel::Scratch::Cand& a, const BpeModel::Scratch::Cand& b) {
  return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
}

}  // namespace

Result<BpeModel> BpeModel::build(const std::vector<std::string>& pieces,
                                 const std::vector<std::pair<int32_t, int32_t>>& merges, Options opts) {
  BpeModel m;
  m.opts_ = opts;
  for (size_t id = 0; id < pieces.size(); ++id)
    if (!pieces[id].empty()) m.table_.insert(pieces[id], static_cast<int32_t>(id));
  for (int b = 0; b < 256; ++b) {
    if (opts.byte_level) {
      m.byte_ids_[b] = m.table_.find(std::string(1, static_cast<char>(b)));
    } else {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      m.byte_ids_[b] = m.table_.find(name);
    }
  }
  size_t cap = 16;
  while (cap < merges.size() * 2) cap *= 2;
  m.merges_.assign(cap, MergeSlot{});
  const int32_t n = static_cast<int32_t>(pieces.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto [l, r] = merges[rank];
    if (l < 0 || r < 0 || l >= n || r >= n)
      return Status::data_loss("merge " + std::to_string(rank) + " refers to an id outside the vocabulary");
    const int32_t result = m.table_.find(pieces[l] + pieces[r]);
    if (result < 0) continue;  // GPT-2's file has one ("ĠCla ude"): a merge nothing can produce is skipped
    const uint64_t key = pair_key(l, r);
    size_t i = mix(key) & (cap - 1);
    while (m.merges_[i].key != ~uint64_t{0} && m.merges_[i].key != key) i = (i + 1) & (cap - 1);
    if (m.merges_[i].key == key) continue;  // a repeated merge keeps its first (best) rank
    m.merges_[i] = {key, static_cast<int32_t>(rank), result};
    ++m.num_merges_;
  }
  return m;
}

std::pair<int32_t, int32_t> BpeModel::find_merge(int32_t left, int32_t right) const {
  const uint64_t key = pair_key(left, right);
  const size_t mask = merges_.size() - 1;
  for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
    const MergeSlot& s = merges_[i];
    if (s.key == key) return {s.rank, s.result};
    if (s.key == ~uint64_t{0}) return {-1, -1};
  }
}

void BpeModel::push_symbol(int32_t id, Scratch& s) const {
  const int32_t n = static_cast<int32_t>(s.syms.size());
  s.syms.push_back({id, n - 1, -1});
  if (n > 0) s.syms[n - 1].next = n;
}

void BpeModel::encode_word(std::string_view word, Scratch& s, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (opts_.ignore_merges) {
    const int32_t id = table_.find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  s.syms.clear();
  s.heap.clear();
  bool last_unk = false;
  for (size_t i = 0; i < word.size();) {
    size_t len = 1;
    int32_t id;
    if (opts_.byte_level) {
      id = byte_ids_[static_cast<unsigned char>(word[i])];
    } else {
      const Utf8Scan sc = utf8_scan(word.substr(i));
      len = std::max<size_t>(1, sc.length);
      id = table_.find(word.substr(i, len));
      if (id < 0 && opts_.byte_fallback) {
        bool all = true;
        for (size_t k = 0; k < len; ++k) all = all && byte_ids_[static_cast<unsigned char>(word[i + k])] >= 0;
        if (all) {
          for (size_t k = 0; k < len; ++k) push_symbol(byte_ids_[static_cast<unsigned char>(word[i + k])], s);
          last_unk = false;
          i += len;
          continue;
        }
      }
    }
    i += len;
    if (id < 0) {
      if (opts_.unk_id >= 0 && !(opts_.fuse_unk && last_unk)) push_symbol(opts_.unk_id, s);
      last_unk = opts_.unk_id >= 0;
      continue;
    }
    last_unk = false;
    push_symbol(id, s);
  }
  const int32_t n = static_cast<int32_t>(s.syms.size());
  auto consider = [&](int32_t left) {
    const int32_t right = s.syms[left].next;
    if (right < 0) return;
    const auto [rank, result] = find_merge(s.syms[left].id, s.syms[right].id);
    (void)result;
    if (rank < 0) return;
    s.heap.push_back({rank, left, s.syms[left].id, s.syms[right].id});
    std::push_heap(s.heap.begin(), s.heap.end(), after);
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end(), after);
    const Scratch::Cand c = s.heap.back();
    s.heap.pop_back();
    Scratch::Sym& l = s.syms[c.left];
    if (l.id != c.left_id || l.next < 0 || s.syms[l.next].id != c.right_id) continue;  // stale
    const int32_t r = l.next;
    l.id = find_merge(c.left_id, c.right_id).second;
    l.next = s.syms[r].next;
    if (l.next >= 0) s.syms[l.next].prev = c.left;
    s.syms[r].id = -1;
    if (l.prev >= 0) consider(l.prev);
    consider(c.left);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = s.syms[i].next) out.push_back(s.syms[i].id);
}

}  // namespace pagoda
