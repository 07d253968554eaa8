#include "engine/tokenizer.h"

#include "engine/tokenizer_llama2c.h"

namespace pagoda {

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  int32_t prev = -1;
  for (int32_t id : ids) {
    std::string_view piece = decode_piece(id);
    if (prev == bos_id() && adds_dummy_prefix() && !piece.empty() && piece[0] == ' ') {
      piece.remove_prefix(1);
    }
    out.append(piece);
    prev = id;
  }
  return out;
}

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path) {
  // Only one format so far; a tokenizer.json reader would be chosen here by
  // file name or by a leading '{'.
  auto tok = Llama2cTokenizer::load(path);
  if (!tok) return tok.status();
  return std::unique_ptr<Tokenizer>(std::move(tok).value());
}

}  // namespace pagoda
