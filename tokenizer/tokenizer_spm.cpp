#include "tokenizer/tokenizer_spm.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "tokenizer/tokenizer_utf8.h"

namespace pagoda {

namespace {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
constexpr std::string_view kMeta = "\xE2\x96\x81";  // U+2581

// A symbol: bytes [start, start + len) of the text; merged-away ones have
// len 0. Symbols form a doubly linked list.
struct Symbol {
  uint32_t start, len, prev, next;
};

// A candidate merge, stale once either symbol has changed length.
struct Pair {
  float score;
  uint32_t left, right, size;
};

// Heap order: highest score on top, leftmost first on ties.
bool lower_priority(const Pair& a, const Pair& b) {
  return a.score < b.score || (a.score == b.score && a.left > b.left);
}

// Bytes in the UTF-8 character led by `b` (1 for a stray continuation byte).
size_t utf8_lead_length(unsigned char b) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[b >> 4];
}

}  // namespace

SpmModel SpmModel::build(const std::vector<std::string>& pieces, const std::vector<float>& scores, int32_t unk_id) {
  SpmModel m;
  for (size_t id = 0; id < pieces.size(); ++id)
    if (!pieces[id].empty()) m.table_.insert(pieces[id], static_cast<int32_t>(id));
  // Encoding may run word by word (a word starts at a U+2581 that follows
  // another character) when no piece holds another character followed by
  // U+2581: then no merge can cross such a boundary.
  m.split_words_ = true;
  for (const std::string& p : pieces) {
    if (!utf8_is_valid(p)) m.split_words_ = false;
    for (size_t pos = p.find(kMeta, 1); pos != std::string::npos && m.split_words_; pos = p.find(kMeta, pos + 1))
      if (pos < kMeta.size() || p.compare(pos - kMeta.size(), kMeta.size(), kMeta) != 0) m.split_words_ = false;
  }
  m.scores_ = scores;
  m.scores_.resize(pieces.size(), 0.0f);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    int32_t id = m.table_.find(name);
    if (id < 0) id = m.table_.find(std::string(1, static_cast<char>(b)));
    m.byte_ids_[b] = id >= 0 ? id : unk_id;
  }
  return m;
}

void SpmModel::encode(std::string_view text, std::vector<int32_t>& out) const {
  if (!split_words_) {
    encode_word(text, out);
    return;
  }
  // Cut at symbol starts (as encode_word() walks them) that begin U+2581
  // after a symbol that is not U+2581.
  size_t start = 0;
  bool prev_meta = true;
  for (size_t i = 0; i < text.size();) {
    const size_t len = std::min(utf8_lead_length(static_cast<unsigned char>(text[i])), text.size() - i);
    const bool meta = text.substr(i, len) == kMeta;
    if (meta && !prev_meta) {
      encode_word(text.substr(start, i - start), out);
      start = i;
    }
    prev_meta = meta;
    i += len;
  }
  encode_word(text.substr(start), out);
}

void SpmModel::encode_word(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::vector<Symbol> sym;
  for (size_t i = 0; i < text.size();) {
    const size_t len = std::min(utf8_lead_length(static_cast<unsigned char>(text[i])), text.size() - i);
    const auto n = static_cast<uint32_t>(sym.size());
    sym.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(len), n == 0 ? kNone : n - 1, kNone});
    if (n > 0) sym[n - 1].next = n;
    i += len;
  }
  std::vector<Pair> heap;
  auto try_push = [&](uint32_t l, uint32_t r) {
    if (l == kNone || r == kNone) return;
    const uint32_t size = sym[l].len + sym[r].len;
    const int32_t id = table_.find(text.substr(sym[l].start, size));
    if (id < 0) return;
    heap.push_back({scores_[static_cast<size_t>(id)], l, r, size});
    std::push_heap(heap.begin(), heap.end(), lower_priority);
  };
  for (uint32_t i = 0; i + 1 < sym.size(); ++i) try_push(i, i + 1);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), lower_priority);
    const Pair p = heap.back();
    heap.pop_back();
    Symbol& l = sym[p.left];
    Symbol& r = sym[p.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != p.size) continue;  // stale
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next != kNone) sym[r.next].prev = p.left;
    try_push(l.prev, p.left);
    try_push(p.left, l.next);
  }

  for (uint32_t i = 0; i != kNone; i = sym[i].next) {
    const std::string_view s = text.substr(sym[i].start, sym[i].len);
    const int32_t id = table_.find(s);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char c : s) {
      const int32_t b = byte_ids_[static_cast<unsigned char>(c)];
      if (b >= 0) out.push_back(b);
    }
  }
}

}  // namespace pagoda
