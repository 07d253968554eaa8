// BpeModel: ranked-merge BPE as in Hugging Face tokenizers' BPE model.
// A word (one pre-tokenized piece) starts as one symbol per byte
// (byte-level vocabularies) or per UTF-8 character (SentencePiece-style
// ones); the adjacent pair with the lowest merge rank is merged, leftmost
// first on equal ranks, until no ranked pair is left. Characters missing
// from the vocabulary become their <0xXX> byte tokens (byte_fallback) or the
// unknown token (consecutive unknowns fused into one when fuse_unk).
// ignore_merges: a word that is itself in the vocabulary is one token.
//
// The merge loop is a linked list of symbols plus a binary heap of candidate
// pairs (stale entries are skipped on pop), O(n log n) per word.
//
// Owns its tables; immutable after build(), encode_word() is const and
// thread-safe (callers pass their own Scratch). Movable, not copyable.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "tokenizer/tokenizer_piece_table.h"

namespace pagoda {

class BpeModel {
 public:
  struct Options {
    bool byte_level = false;     // symbols start as bytes (else as UTF-8 characters)
    bool byte_fallback = false;  // unknown characters -> <0xXX> tokens
    bool ignore_merges = false;
    bool fuse_unk = false;
    int32_t unk_id = -1;  // -1: unknown characters are dropped
  };

  // Reusable per-call buffers.
  struct Scratch {
    struct Sym {
      int32_t id;
      int32_t prev, next;
    };
    struct Cand {
      int32_t rank, left, left_id, right_id;
    };
    std::vector<Sym> syms;
    std::vector<Cand> heap;
  };

  // `pieces[id]` is the piece of each id as it appears in text after
  // pre-tokenization (raw bytes for byte-level vocabularies; "" for ids
  // that BPE must never produce, such as added tokens). `merges` are
  // (left id, right id) pairs in rank order; a pair whose concatenation is
  // not a piece is skipped (it could only produce an id-less symbol).
  static Result<BpeModel> build(const std::vector<std::string>& pieces,
                                const std::vector<std::pair<int32_t, int32_t>>& merges, Options opts);

  BpeModel() = default;
  BpeModel(BpeModel&&) = default;
  BpeModel& operator=(BpeModel&&) = default;

  // Appends the ids of `word` to `out`.
  void encode_word(std::string_view word, Scratch& scratch, std::vector<int32_t>& out) const;

  // Id of the piece spelled `s`, or -1.
  int32_t lookup(std::string_view s) const { return table_.find(s); }
  int32_t byte_id(unsigned char b) const { return byte_ids_[b]; }
  size_t num_merges() const { return num_merges_; }

 private:
  struct MergeSlot {
    uint64_t key = ~uint64_t{0};  // (left << 32) | right; ~0: empty
    int32_t rank = 0;
    int32_t result = 0;
  };
  // The merge of (left, right): {rank, result id}, or {-1, -1}.
  std::pair<int32_t, int32_t> find_merge(int32_t left, int32_t right) const;
  void push_symbol(int32_t id, Scratch& s) const;

  Options opts_;
  PieceTable table_;
  std::array<int32_t, 256> byte_ids_{};  // byte-level: the 1-byte piece; else <0xXX>; -1 if absent
  std::vector<MergeSlot> merges_;        // open addressing, power-of-two size
  size_t num_merges_ = 0;
};

}  // namespace pagoda
