// SentencePieceTokenizer: a SentencePiece tokenizer.model (Llama 2,
// TinyLlama, Mistral, Gemma), encoded and decoded by libsentencepiece.
// decode_piece() is computed once per id at load: U+2581 becomes a space,
// byte pieces become their byte, control and unknown pieces give "".
// BOS/EOS are the model's own, with eos_ids() extended by
// generation_config.json / config.json beside the file. Special-token text
// in the input is ordinary text (SentencePiece has no special-token
// parsing), so encode_with()'s parse_special has no effect.
//
// Owns the processor; immutable after load (SentencePieceProcessor's const
// methods are thread-safe), so every const method is thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace pagoda {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // NotFound if `path` cannot be opened; DataLoss if it is not a model.
  static Result<std::unique_ptr<SentencePieceTokenizer>> load(const std::string& path);
  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override;
  std::string_view decode_piece(int32_t id) const override;
  std::string_view token_text(int32_t id) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const override { return bos_id_; }
  const std::vector<int32_t>& eos_ids() const override { return eos_ids_; }
  bool adds_dummy_prefix() const override { return dummy_prefix_; }
  const std::string& chat_template() const override { return chat_template_; }

 private:
  SentencePieceTokenizer();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::vector<std::string> pieces_, decoded_;
  int32_t bos_id_ = -1;
  std::vector<int32_t> eos_ids_;
  bool dummy_prefix_ = true;
  std::string chat_template_;
};

}  // namespace pagoda
