#include "structured/token_trie.h"

#include <algorithm>
#include <limits>

namespace pagoda::structured {

std::shared_ptr<const TokenTrie> TokenTrie::build(const Tokenizer& tokenizer) {
  auto trie = std::make_shared<TokenTrie>();
  const int32_t n = tokenizer.vocab_size();
  trie->vocab_size_ = n;
  trie->eos_ids_ = tokenizer.eos_ids();
  trie->token_bytes_.resize(static_cast<size_t>(n));
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < n; ++id) {
    if (id == tokenizer.bos_id() || trie->is_eos(id)) continue;
    const std::string_view piece = tokenizer.decode_piece(id);
    if (piece.empty() || piece.size() > std::numeric_limits<uint16_t>::max()) continue;
    // A special token (its vocabulary text is its decoded text and it is not
    // what encoding that text as ordinary text gives) is never written as text.
    if (piece.size() > 2 && piece == tokenizer.token_text(id) && piece.front() == '<' && piece.back() == '>') {
      const std::vector<int32_t> plain = tokenizer.encode_with(piece, {.add_bos = false, .parse_special = false});
      if (plain.size() != 1 || plain[0] != id) continue;
    }
    trie->token_bytes_[static_cast<size_t>(id)] = std::string(piece);
    ids.push_back(id);
  }
  const auto& bytes = trie->token_bytes_;
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    const int c = bytes[static_cast<size_t>(a)].compare(bytes[static_cast<size_t>(b)]);
    return c != 0 ? c < 0 : a < b;
  });

  std::vector<uint32_t> path;    // node index per depth - 1
  std::vector<int32_t> parents;  // per node, -1 for the root's children
  std::string_view previous;
  auto& nodes = trie->nodes_;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string_view text = bytes[static_cast<size_t>(ids[i])];
    size_t common = 0;
    while (common < previous.size() && common < text.size() && previous[common] == text[common]) ++common;
    while (path.size() > common) {
      nodes[path.back()].subtree_end = static_cast<uint32_t>(nodes.size());
      nodes[path.back()].subtree_tokens_end = static_cast<uint32_t>(i);
      path.pop_back();
    }
    for (size_t d = common; d < text.size(); ++d) {
      parents.push_back(path.empty() ? -1 : static_cast<int32_t>(path.back()));
      path.push_back(static_cast<uint32_t>(nodes.size()));
      const auto first = static_cast<uint32_t>(i);
      nodes.push_back({static_cast<uint8_t>(text[d]), 1, static_cast<uint16_t>(d + 1), 0, first, first, first, first});
    }
    nodes[path.back()].tokens_end = static_cast<uint32_t>(i + 1);
    if (text.size() == previous.size() && common == text.size()) {
      // The same bytes as the previous token: its node holds both.
    } else {
      nodes[path.back()].tokens_begin = static_cast<uint32_t>(i);
    }
    trie->max_depth_ = std::max(trie->max_depth_, text.size());
    previous = text;
  }
  while (!path.empty()) {
    nodes[path.back()].subtree_end = static_cast<uint32_t>(nodes.size());
    nodes[path.back()].subtree_tokens_end = static_cast<uint32_t>(ids.size());
    path.pop_back();
  }
  // Bytes and height of each subtree: children come after their parent, so
  // one pass from the end adds each finished subtree into its parent's.
  trie->subtree_bytes_.assign(nodes.size(), ByteSet());
  for (size_t k = nodes.size(); k-- > 0;) {
    trie->subtree_bytes_[k].add(nodes[k].byte);
    if (parents[k] < 0) continue;
    const auto parent = static_cast<size_t>(parents[k]);
    trie->subtree_bytes_[parent].add_all(trie->subtree_bytes_[k]);
    const int height = std::min(255, nodes[k].height + 1);
    if (height > nodes[parent].height) nodes[parent].height = static_cast<uint8_t>(height);
  }
  trie->subtree_byte_counts_.resize(nodes.size());
  for (size_t k = 0; k < nodes.size(); ++k)
    trie->subtree_byte_counts_[k] = static_cast<uint16_t>(trie->subtree_bytes_[k].count());
  trie->token_ids_ = std::move(ids);
  return trie;
}

bool TokenTrie::is_eos(int32_t id) const { return std::find(eos_ids_.begin(), eos_ids_.end(), id) != eos_ids_.end(); }

std::vector<int32_t> encode_continuation(const Tokenizer& tokenizer, std::string_view text) {
  const EncodeOptions options{.add_bos = false, .parse_special = false};
  if (!tokenizer.adds_dummy_prefix() || text.empty()) return tokenizer.encode_with(text, options);
  // Encode behind a newline and drop the tokens that wrote it (and the dummy
  // space), when they end exactly where the text begins.
  const std::string marker = "\n";
  const std::vector<int32_t> ids = tokenizer.encode_with(marker + std::string(text), options);
  std::string written;
  for (size_t i = 0; i < ids.size(); ++i) {
    written += tokenizer.decode_piece(ids[i]);
    if (written == marker || written == " " + marker) {
      return std::vector<int32_t>(ids.begin() + static_cast<std::ptrdiff_t>(i) + 1, ids.end());
    }
    if (written.size() > marker.size() + 1) break;
  }
  return tokenizer.encode_with(text, options);
}

}  // namespace pagoda::structured
