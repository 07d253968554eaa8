// SpmModel: the SentencePiece-style BPE that llama.cpp runs for "llama"
// GGUF vocabularies (its llm_tokenizer_spm). The input is text whose spaces
// are already written as U+2581. It starts as one symbol per UTF-8
// character (the length read off the lead byte, as llama.cpp does, so
// invalid UTF-8 never stops it); the adjacent pair whose concatenation is a
// vocabulary piece with the highest score is merged, leftmost first on equal
// scores, until no pair forms a piece. A symbol left that is not a piece
// becomes the ids of its bytes: "<0xXX>" pieces, else the one-byte piece,
// else the unknown id.
//
// When no piece holds a character followed by U+2581 (Llama 2's vocabulary),
// the same merges run word by word (a word starts at each U+2581 that follows
// another character), which gives identical ids with small heaps.
//
// Like llama.cpp, every piece of the vocabulary takes part in merges
// (control and byte pieces too); Llama2cTokenizer, which runs the same merge
// loop on llama2.c files, leaves those out.
//
// Owns its tables; immutable after build(), encode() is const and
// thread-safe. Movable, not copyable.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_piece_table.h"

namespace pagoda {

class SpmModel {
 public:
  // `pieces[id]` as stored in the vocabulary (U+2581 for spaces; "" never
  // matches), `scores[id]` their merge priority (same length), `unk_id` the
  // id for bytes without a byte piece (-1: dropped).
  static SpmModel build(const std::vector<std::string>& pieces, const std::vector<float>& scores, int32_t unk_id);

  SpmModel() = default;
  SpmModel(SpmModel&&) = default;
  SpmModel& operator=(SpmModel&&) = default;

  // Appends the ids of `text` to `out`.
  void encode(std::string_view text, std::vector<int32_t>& out) const;

 private:
  // The merge loop over `text` as one unit.
  void encode_word(std::string_view text, std::vector<int32_t>& out) const;

  PieceTable table_;
  std::vector<float> scores_;
  std::array<int32_t, 256> byte_ids_{};  // <0xXX>, else the 1-byte piece, else unk_id
  bool split_words_ = false;
};

}  // namespace pagoda
