// GgufTokenizer: the tokenizer a GGUF file carries in its metadata
// (tokenizer.ggml.*), encoding as llama.cpp does (src/llama-vocab.cpp):
//   - tokenizer.ggml.model "llama": SentencePiece-style BPE by piece score
//     (SpmModel) with byte fallback; spaces become U+2581, and a space is
//     put before each stretch of text that starts the input or follows a
//     special token when tokenizer.ggml.add_space_prefix (default true).
//   - "gpt2": byte-level BPE by merge rank (BpeModel, tokenizer.ggml.merges)
//     over the pieces of llama.cpp's pre-tokenizer for tokenizer.ggml.pre
//     (GgufPreTokenizer).
// Any other model, or a pre-tokenizer pagoda does not know, fails load()
// with an InvalidArgument naming the key and the value.
//
// Special tokens (tokenizer.ggml.token_type 3 control, 4 user-defined,
// 2 unknown) are cut out of the text before BPE, longest first as llama.cpp
// does; control and unknown ones only when parse_special, user-defined ones
// always. llama.cpp's Phi-3 rule (general.name holds "phi3"/"phi-3": the
// whitespace after most special tokens is dropped) is kept.
//
// Special ids: tokenizer.ggml.bos_token_id, eos_token_id, unknown_token_id,
// padding_token_id (llama.cpp's defaults when absent: 1/2/0 for llama, 11/11
// for gpt2; ids outside the vocabulary are ignored, as llama.cpp does).
// eos_ids() is EOS, then eot_token_id and eom_token_id, then the tokens
// llama.cpp also ends generation on by their text (<|eot_id|>, <|im_end|>,
// <|end|>, <end_of_turn>, <|endoftext|>, <|eom_id|>, <|end_of_text|>,
// <EOT>; marked control as llama.cpp does). encode()'s add_bos adds BOS when
// tokenizer.ggml.add_bos_token (default: true for llama and llama3-style
// pre-tokenizers) and EOS when add_eos_token (default false).
//
// decode_piece(): normal pieces with U+2581 as spaces (llama) or mapped
// back from GPT-2's byte alphabet (gpt2), byte pieces their byte,
// user-defined pieces their text, control/unknown/unused pieces "". Not
// done: llama.cpp's clean_up_tokenization_spaces on detokenize (decode()
// here is the plain concatenation).
//
// Owns all its tables (the GgufFile is read only during load); immutable
// after load, every const method is thread-safe. Not copyable.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_bpe.h"
#include "tokenizer/tokenizer_gguf_pre.h"
#include "tokenizer/tokenizer_spm.h"

namespace pagoda {

class GgufFile;

class GgufTokenizer final : public Tokenizer {
 public:
  // Token types, tokenizer.ggml.token_type (llama_token_type).
  enum TokenType : uint8_t {
    kUndefined = 0,
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,
    kUserDefined = 4,
    kUnused = 5,
    kByte = 6
  };

  // Opens the GGUF at `path` and reads its vocabulary. NotFound if it cannot
  // be opened; DataLoss for a damaged file or inconsistent arrays;
  // InvalidArgument for a file without a vocabulary or one pagoda cannot
  // tokenize exactly (the message names the key and the value).
  static Result<std::unique_ptr<GgufTokenizer>> load(const std::string& path);
  // The same from an opened GgufFile (which may be dropped afterwards).
  static Result<std::unique_ptr<GgufTokenizer>> from_gguf(const GgufFile& file);

  GgufTokenizer(const GgufTokenizer&) = delete;
  GgufTokenizer& operator=(const GgufTokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    return encode_with(text, {add_bos, true});
  }
  std::vector<int32_t> encode_with(std::string_view text, const EncodeOptions& opts) const override;
  std::string_view decode_piece(int32_t id) const override;
  std::string_view token_text(int32_t id) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(text_.size()); }
  int32_t bos_id() const override { return bos_id_; }
  const std::vector<int32_t>& eos_ids() const override { return eos_ids_; }
  bool adds_dummy_prefix() const override { return spm_kind_ && add_space_prefix_; }
  const std::string& chat_template() const override { return chat_template_; }

  int32_t unk_id() const { return unk_id_; }
  int32_t pad_id() const { return pad_id_; }
  bool add_bos() const { return add_bos_; }  // encode(text, true) starts with BOS
  bool add_eos() const { return add_eos_; }  // encode(text, true) ends with EOS
  TokenType token_type(int32_t id) const { return is_valid_id(id) ? type_[id] : kUndefined; }

 private:
  struct Segment {  // a stretch of input text (id < 0) or a special token
    std::string_view text;
    int32_t id;
  };
  GgufTokenizer() = default;
  Status read_vocab(const GgufFile& f);
  Status read_special_ids(const GgufFile& f, const std::string& model);
  void build_specials(const GgufFile& f);
  void build_decoded();
  Status build_bpe(const GgufFile& f);
  void split_special(std::string_view text, bool parse_special, std::vector<Segment>* out) const;
  void encode_text(std::string_view text, bool after_special, BpeModel::Scratch& scratch,
                   std::vector<int32_t>& out) const;

  bool spm_kind_ = true;              // "llama" (else "gpt2")
  std::vector<std::string> text_;     // tokenizer.ggml.tokens
  std::vector<float> scores_;         // tokenizer.ggml.scores (0 when absent)
  std::vector<TokenType> type_;       // tokenizer.ggml.token_type (normal when absent)
  std::vector<std::string> decoded_;  // decode_piece()
  std::vector<int32_t> specials_;     // control, user-defined, unknown ids; longest text first
  std::vector<uint8_t> rstrip_;       // per id: whitespace after the special token is dropped
  SpmModel spm_;
  BpeModel bpe_;
  GgufPreTokenizer pre_;
  int32_t bos_id_ = -1, unk_id_ = -1, pad_id_ = -1;
  std::vector<int32_t> eos_ids_;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
  std::string chat_template_;
};

}  // namespace pagoda
