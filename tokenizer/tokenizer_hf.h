// HfTokenizer: a Hugging Face tokenizer.json tokenizer with a BPE model,
// in both common flavours:
//   - SentencePiece-style (Llama 2, TinyLlama, Mistral): normalizer
//     Prepend(U+2581) + Replace(' ' -> U+2581), or a Metaspace
//     pre-tokenizer; byte_fallback; decoder Replace/ByteFallback/Fuse/Strip.
//   - byte-level (GPT-2, Llama 3, Qwen2, SmolLM2): Split regex and/or
//     ByteLevel pre-tokenizer, byte-level decoder. The vocabulary is
//     converted to raw bytes at load, so decode_piece() gives raw bytes.
//
// encode(): the input is first split on added tokens (leftmost, longest
// first; lstrip/rstrip honoured; special ones only when parse_special),
// then each remaining segment is normalized, pre-tokenized and BPE-encoded
// (see tokenizer_hf_text.h and tokenizer_bpe.h for the stages supported).
// With add_bos the post-processor's tokens are added (TemplateProcessing,
// Roberta/Bert processors), adjusted by tokenizer_config.json's
// add_bos_token / add_eos_token when given.
//
// Special ids come from the files beside tokenizer.json
// (HfTokenizerConfig): bos_id() is tokenizer_config's bos_token, else
// bos_token_id; eos_ids() is tokenizer_config's eos_token followed by every
// generation_config.json / config.json eos_token_id.
//
// Known differences from the reference library: added tokens marked
// "normalized" are matched on the raw text (the same unless the normalizer
// changes them); single_word is ignored; dropout is ignored.
//
// Owns all its tables; immutable after load, every const method is
// thread-safe. Not copyable.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_bpe.h"
#include "tokenizer/tokenizer_hf_config.h"
#include "tokenizer/tokenizer_hf_text.h"

namespace pagoda {

class HfTokenizer final : public Tokenizer {
 public:
  // Reads `json_path` and the configuration files in its directory.
  // NotFound if it cannot be opened; DataLoss for invalid JSON or an
  // inconsistent vocabulary; InvalidArgument for unsupported pipeline parts.
  static Result<std::unique_ptr<HfTokenizer>> load(const std::string& json_path);
  // Parses tokenizer.json contents `text` with side configuration `cfg`;
  // `name` is used in error messages.
  static Result<std::unique_ptr<HfTokenizer>> parse(std::string_view text, const HfTokenizerConfig& cfg,
                                                    const std::string& name);

  HfTokenizer(const HfTokenizer&) = delete;
  HfTokenizer& operator=(const HfTokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    return encode_with(text, {add_bos, true});
  }
  std::vector<int32_t> encode_with(std::string_view text, const EncodeOptions& opts) const override;
  std::string_view decode_piece(int32_t id) const override;
  std::string_view token_text(int32_t id) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(token_text_.size()); }
  int32_t bos_id() const override { return bos_id_; }
  const std::vector<int32_t>& eos_ids() const override { return eos_ids_; }
  bool adds_dummy_prefix() const override { return strip_leading_space_; }
  const std::string& chat_template() const override { return chat_template_; }

  bool is_special(int32_t id) const;
  bool byte_level() const { return pretok_.byte_level(); }

 private:
  struct AddedToken {
    std::string content;
    int32_t id;
    bool special, lstrip, rstrip;
  };
  struct Segment {  // a piece of the input: text (id < 0) or an added token
    std::string_view text;
    int32_t id;
  };
  HfTokenizer() = default;
  Status build(const void* json_root, const HfTokenizerConfig& cfg);
  Status parse_model(const void* model_json);
  Status parse_decoder(const void* decoder_json);
  Status parse_post_processor(const void* pp_json);
  int32_t id_of(std::string_view token) const;  // added tokens first, then the vocabulary; -1
  void split_added(std::string_view text, bool parse_special, std::vector<Segment>* out) const;
  void encode_segment(std::string_view text, bool first, BpeModel::Scratch& scratch, std::vector<int32_t>& out) const;

  HfNormalizer normalizer_;
  HfPreTokenizer pretok_;
  BpeModel bpe_;
  std::vector<std::string> token_text_;  // as in tokenizer.json
  std::vector<std::string> decoded_;     // decode_piece() bytes
  std::vector<AddedToken> added_;
  std::array<std::vector<int32_t>, 256> added_by_byte_;  // indices into added_ by first byte, longest first
  std::vector<uint8_t> special_;                         // per id
  std::vector<int32_t> prefix_ids_, suffix_ids_;         // post-processor, for add_bos
  int32_t bos_id_ = -1;
  std::vector<int32_t> eos_ids_;
  bool strip_leading_space_ = false;
  bool split_words_ = false;  // SentencePiece-style with no pre-tokenizer: BPE word by word (see encode_segment)
  std::string chat_template_;
};

}  // namespace pagoda
