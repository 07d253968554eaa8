#include "tokenizer/detokenizer.h"

#include "tokenizer/tokenizer_utf8.h"

namespace pagoda {

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, int32_t prev_token)
    : tokenizer_(tokenizer), prev_(prev_token) {}

std::string StreamingDetokenizer::push(int32_t id) {
  std::string_view piece = tokenizer_.decode_piece(id);
  if (prev_ == tokenizer_.bos_id() && tokenizer_.adds_dummy_prefix() && !piece.empty() && piece[0] == ' ') {
    piece.remove_prefix(1);
  }
  prev_ = id;
  pending_.append(piece);

  std::string out;
  const std::string_view s(pending_);
  size_t i = 0;
  while (i < s.size()) {
    const Utf8Scan sc = utf8_scan(s.substr(i));
    if (sc.kind == Utf8Kind::kIncomplete) break;  // wait for more bytes
    if (sc.kind == Utf8Kind::kValid) {
      out.append(s.substr(i, sc.length));
    } else {
      out.append(kUtf8Replacement);
    }
    i += sc.length;
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamingDetokenizer::flush() {
  // What is left is one incomplete (never completed) character.
  std::string out = pending_.empty() ? std::string() : std::string(kUtf8Replacement);
  pending_.clear();
  return out;
}

}  // namespace pagoda
