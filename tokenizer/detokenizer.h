// StreamingDetokenizer: turns one request's generated token ids, one at a
// time, into text deltas that are always valid UTF-8.
//
// Bytes of a character split over several tokens (byte-fallback <0xXX>
// pieces, or a multi-byte character cut by a piece boundary) are held back
// until the character is complete; bytes that can never form a valid
// character become U+FFFD. Like llama2.c, the leading space of a piece that
// directly follows BOS is dropped (the tokenizer's dummy prefix).
//
// One per request; refers to (does not own) the Tokenizer, which must outlive
// it. Not thread-safe (one request's tokens arrive in order on one thread).
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace pagoda {

class StreamingDetokenizer {
 public:
  // `prev_token` is the last prompt token (BOS for an empty prompt, so the
  // first generated piece loses its leading space), or -1 for none.
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, int32_t prev_token = -1);

  // Adds `id`; returns the text that became complete (possibly "").
  std::string push(int32_t id);
  // Returns whatever is still held back, incomplete bytes as U+FFFD, and
  // leaves the detokenizer empty.
  std::string flush();

  // Bytes held back waiting for the rest of a character (at most 3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  int32_t prev_;
  std::string pending_;
};

}  // namespace pagoda
