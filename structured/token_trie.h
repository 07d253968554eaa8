// TokenTrie: a tokenizer's vocabulary as a byte trie, for token masks.
//
// Every token that stands for text (Tokenizer::decode_piece not empty; BOS,
// EOS and special tokens such as <|im_start|> excluded) is a path of bytes;
// the nodes are stored flat in depth-first order with, per node, its byte,
// its depth and where its subtree ends, so a mask walk is one forward pass
// that skips a rejected subtree in one jump. Immutable once built:
// thread-safe, shared by every grammar compiled for the tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "structured/grammar.h"
#include "tokenizer/tokenizer.h"

namespace pagoda::structured {

class TokenTrie {
 public:
  struct Node {
    uint8_t byte;
    // Bytes on the longest path of this node's subtree, its own included
    // (1 for a leaf; 255 means 255 or more).
    uint8_t height;
    uint16_t depth;         // 1 for a child of the root
    uint32_t subtree_end;   // index of the first node after this one's subtree
    uint32_t tokens_begin;  // this node's tokens: token_ids()[tokens_begin, tokens_end)
    uint32_t tokens_end;
    // The tokens of this node's whole subtree: token_ids()[subtree_tokens_begin, subtree_tokens_end).
    uint32_t subtree_tokens_begin;
    uint32_t subtree_tokens_end;
  };

  static std::shared_ptr<const TokenTrie> build(const Tokenizer& tokenizer);

  const std::vector<Node>& nodes() const { return nodes_; }
  // Per node: every byte on the paths of its subtree, its own byte included.
  const std::vector<ByteSet>& subtree_bytes() const { return subtree_bytes_; }
  // Per node: how many bytes its subtree_bytes() holds.
  const std::vector<uint16_t>& subtree_byte_counts() const { return subtree_byte_counts_; }
  const std::vector<int32_t>& token_ids() const { return token_ids_; }
  int32_t vocab_size() const { return vocab_size_; }
  // The bytes token `id` writes ("" for special and out-of-range ids).
  std::string_view token_bytes(int32_t id) const {
    return id >= 0 && id < vocab_size_ ? std::string_view(token_bytes_[static_cast<size_t>(id)]) : std::string_view();
  }
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  bool is_eos(int32_t id) const;
  size_t max_depth() const { return max_depth_; }

 private:
  std::vector<Node> nodes_;
  std::vector<ByteSet> subtree_bytes_;
  std::vector<uint16_t> subtree_byte_counts_;
  std::vector<int32_t> token_ids_;
  std::vector<std::string> token_bytes_;
  std::vector<int32_t> eos_ids_;
  int32_t vocab_size_ = 0;
  size_t max_depth_ = 0;
};

// Token ids for `text` as a model continues writing it (no BOS, special-token
// text as ordinary text, and no SentencePiece dummy space in front).
std::vector<int32_t> encode_continuation(const Tokenizer& tokenizer, std::string_view text);

}  // namespace pagoda::structured
