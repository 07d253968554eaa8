// Llama2cTokenizer: the SentencePiece-style BPE of llama2.c's tokenizer.bin
// (int32 max_token_length, then per token: float32 score, int32 byte length,
// the bytes). Pieces use a real space where SentencePiece writes U+2581.
//
// Conventions of that format: id 0 is <unk>, 1 is BOS, 2 is EOS, and pieces
// spelled "<0xXX>" are byte-fallback tokens. Encoding adds a leading space,
// splits the text into UTF-8 characters and repeatedly merges the adjacent
// pair whose concatenation is the highest-scoring vocabulary piece (leftmost
// on ties), like SentencePiece's BPE; characters left without a piece become
// their bytes' <0xXX> tokens. The merge loop runs on a linked list with a
// binary heap, O(n log n); when the vocabulary allows (no piece holds a
// non-space byte followed by a space, true for Llama 2's) it runs word by
// word, which gives identical ids with small heaps.
//
// Owns the vocabulary; immutable after load, so thread-safe for all const
// use. Not copyable.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_piece_table.h"

namespace pagoda {

class Llama2cTokenizer final : public Tokenizer {
 public:
  // Reads the file at `path`. NotFound if it cannot be opened; DataLoss if
  // it is truncated, has absurd lengths or non-finite scores, or holds fewer
  // than the three control tokens.
  static Result<std::unique_ptr<Llama2cTokenizer>> load(const std::string& path);
  // Parses the file contents `bytes`; `name` is used in error messages.
  static Result<std::unique_ptr<Llama2cTokenizer>> parse(std::string_view bytes, const std::string& name);

  Llama2cTokenizer(const Llama2cTokenizer&) = delete;
  Llama2cTokenizer& operator=(const Llama2cTokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override;
  std::string_view decode_piece(int32_t id) const override;
  std::string_view token_text(int32_t id) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const override { return kBos; }
  const std::vector<int32_t>& eos_ids() const override { return eos_ids_; }
  bool adds_dummy_prefix() const override { return true; }

  float score(int32_t id) const { return is_valid_id(id) ? scores_[id] : 0.0f; }
  int32_t max_token_length() const { return max_token_length_; }

  static constexpr int32_t kUnk = 0;
  static constexpr int32_t kBos = 1;
  static constexpr int32_t kEos = 2;

 private:
  struct Scratch;
  Llama2cTokenizer() = default;
  void build_tables();
  // BPE over one segment `s`, appending its ids to `out`.
  void encode_segment(std::string_view s, Scratch& scratch, std::vector<int32_t>& out) const;
  // Id of a normal (mergeable) piece spelled `s`, or -1.
  int32_t lookup(std::string_view s) const;

  int32_t max_token_length_ = 0;
  std::vector<std::string> pieces_;   // as stored in the file
  std::vector<std::string> decoded_;  // output bytes per id
  std::vector<float> scores_;
  // Normal pieces only (no control or byte tokens), lowest id on duplicates.
  PieceTable piece_to_id_;
  std::array<int32_t, 256> byte_to_id_{};  // -1 when the vocab lacks <0xXX>
  std::vector<int32_t> eos_ids_;
  bool split_before_space_ = false;  // see encode()
};

}  // namespace pagoda
