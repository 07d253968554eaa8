#include "tokenizer/tokenizer_sentencepiece.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <sentencepiece_processor.h>

#include "tokenizer/tokenizer_hf_config.h"

namespace pagoda {

namespace {
constexpr std::string_view kMeta = "\xE2\x96\x81";  // U+2581
}

SentencePieceTokenizer::SentencePieceTokenizer() : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

Result<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::load(const std::string& path) {
  if (!std::ifstream(path, std::ios::binary)) return Status::not_found("cannot open tokenizer file '" + path + "'");
  std::unique_ptr<SentencePieceTokenizer> tok(new SentencePieceTokenizer());
  const auto st = tok->sp_->Load(path);
  if (!st.ok()) return Status::data_loss(path + ": not a SentencePiece model (" + st.ToString() + ")");
  const int n = tok->sp_->GetPieceSize();
  tok->pieces_.resize(n);
  tok->decoded_.resize(n);
  for (int id = 0; id < n; ++id) {
    tok->pieces_[id] = tok->sp_->IdToPiece(id);
    if (tok->sp_->IsControl(id) || tok->sp_->IsUnknown(id)) continue;
    if (tok->sp_->IsByte(id)) {
      tok->decoded_[id] = std::string(1, static_cast<char>(std::stoi(tok->pieces_[id].substr(3, 2), nullptr, 16)));
      continue;
    }
    const std::string& piece = tok->pieces_[id];
    std::string s;
    for (size_t pos = 0; pos < piece.size();) {
      if (piece.compare(pos, kMeta.size(), kMeta) == 0) {
        s += ' ';
        pos += kMeta.size();
      } else {
        s += piece[pos++];
      }
    }
    tok->decoded_[id] = std::move(s);
  }
  tok->bos_id_ = tok->sp_->bos_id();
  if (tok->sp_->eos_id() >= 0) tok->eos_ids_.push_back(tok->sp_->eos_id());
  std::vector<std::string> first;
  tok->sp_->Encode("a", &first).IgnoreError();
  tok->dummy_prefix_ = !first.empty() && first[0].compare(0, kMeta.size(), kMeta) == 0;

  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  auto cfg = read_hf_tokenizer_config(dir.empty() ? "." : dir.string());
  if (!cfg) return cfg.status();
  for (int32_t id : cfg->eos_token_ids)
    if (tok->is_valid_id(id) && std::find(tok->eos_ids_.begin(), tok->eos_ids_.end(), id) == tok->eos_ids_.end())
      tok->eos_ids_.push_back(id);
  tok->chat_template_ = cfg->chat_template;
  return tok;
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int> ids;
  sp_->Encode(absl::string_view(text.data(), text.size()), &ids).IgnoreError();
  std::vector<int32_t> out;
  out.reserve(ids.size() + 1);
  if (add_bos && bos_id_ >= 0) out.push_back(bos_id_);
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

std::string_view SentencePieceTokenizer::decode_piece(int32_t id) const {
  return is_valid_id(id) ? std::string_view(decoded_[id]) : std::string_view();
}

std::string_view SentencePieceTokenizer::token_text(int32_t id) const {
  return is_valid_id(id) ? std::string_view(pieces_[id]) : std::string_view();
}

}  // namespace pagoda
