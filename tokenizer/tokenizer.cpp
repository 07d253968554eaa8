#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <fstream>

#include "tokenizer/tokenizer_gguf.h"
#include "tokenizer/tokenizer_hf.h"
#include "tokenizer/tokenizer_llama2c.h"
#include "tokenizer/tokenizer_sentencepiece.h"

namespace pagoda {

const std::string& Tokenizer::chat_template() const {
  static const std::string kNone;
  return kNone;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  int32_t prev = -1;
  bool first = true;
  for (int32_t id : ids) {
    std::string_view piece = decode_piece(id);
    if ((first || prev == bos_id()) && adds_dummy_prefix() && !piece.empty() && piece[0] == ' ') {
      piece.remove_prefix(1);
    }
    out.append(piece);
    prev = id;
    first = false;
  }
  return out;
}

namespace {

template <typename T>
Result<std::unique_ptr<Tokenizer>> upcast(Result<std::unique_ptr<T>> r) {
  if (!r) return r.status();
  return std::unique_ptr<Tokenizer>(std::move(r).value());
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer.bin"}) {
      const fs::path p = fs::path(path) / name;
      if (fs::is_regular_file(p, ec)) return load_tokenizer(p.string());
    }
    return Status::not_found("directory '" + path + "' has no tokenizer.json, tokenizer.model or tokenizer.bin");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("cannot open tokenizer file '" + path + "'");
  char head[64] = {};
  in.read(head, sizeof head);
  const std::streamsize n = in.gcount();
  // A GGUF file (llama.cpp's model container): the vocabulary in its metadata.
  if ((n >= 4 && std::string_view(head, 4) == "GGUF") || fs::path(path).extension() == ".gguf")
    return upcast(GgufTokenizer::load(path));
  // tokenizer.json: a JSON object.
  for (std::streamsize i = 0; i < n; ++i) {
    const char c = head[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '{') return upcast(HfTokenizer::load(path));
    break;
  }
  // tokenizer.model: a protobuf whose first field (1, length-delimited) is a
  // piece; llama2.c's tokenizer.bin starts with a small little-endian int32.
  const bool proto = n >= 4 && head[0] == 0x0A && (head[1] != 0 || head[2] != 0 || head[3] != 0);
  if (proto || fs::path(path).extension() == ".model") return upcast(SentencePieceTokenizer::load(path));
  return upcast(Llama2cTokenizer::load(path));
}

}  // namespace pagoda
