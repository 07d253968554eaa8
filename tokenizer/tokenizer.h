// Tokenizer: the interface between text and token ids.
//
// One implementation per file format: Llama2cTokenizer (tokenizer_llama2c.h)
// reads llama2.c's tokenizer.bin, HfTokenizer (tokenizer_hf.h) a Hugging
// Face tokenizer.json, SentencePieceTokenizer (tokenizer_sentencepiece.h) a
// SentencePiece tokenizer.model, GgufTokenizer (tokenizer_gguf.h) the
// vocabulary in a GGUF file's metadata; load_tokenizer() picks one. A loaded
// tokenizer is immutable: every const method is thread-safe, so one instance
// serves all HTTP threads and the engine thread at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace pagoda {

struct EncodeOptions {
  bool add_bos = true;        // add the tokenizer's own leading/trailing special tokens (BOS)
  bool parse_special = true;  // special-token text such as "<|im_start|>" becomes its id
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids for `text` (any bytes: invalid UTF-8 is encoded through byte
  // fallback, never rejected), with the BOS id first when `add_bos`.
  // Special-token text in `text` becomes the special ids (formats that have
  // them), as Hugging Face's tokenizers do by default.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos) const = 0;

  // encode() with options; with parse_special false, special-token text is
  // encoded as ordinary text. Formats without special-token text ignore it.
  virtual std::vector<int32_t> encode_with(std::string_view text, const EncodeOptions& opts) const {
    return encode(text, opts.add_bos);
  }

  // The bytes token `id` stands for in output text: byte-fallback pieces
  // give their single byte, control tokens (BOS, EOS, unknown) and ids out
  // of range give "". No leading-space stripping here (see decode()).
  virtual std::string_view decode_piece(int32_t id) const = 0;

  // The piece as stored in the vocabulary ("<0x0A>", "\n<s>\n", " the"), or
  // "" for ids out of range. For debugging and the CLI.
  virtual std::string_view token_text(int32_t id) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;
  // Ids that end generation when the model emits them; the first is the
  // tokenizer's EOS proper.
  virtual const std::vector<int32_t>& eos_ids() const = 0;

  // True when encode() adds a leading space to the text (SentencePiece's
  // "dummy prefix"), so the first piece after BOS loses its leading space
  // when decoded.
  virtual bool adds_dummy_prefix() const = 0;

  // The model's own chat template (Jinja source, from tokenizer_config.json
  // or chat_template.jinja), or "" when the format carries none.
  virtual const std::string& chat_template() const;

  bool is_valid_id(int32_t id) const { return id >= 0 && id < vocab_size(); }

  // Concatenated bytes of `ids`, dropping the leading space of the first
  // piece and of a piece that follows BOS when adds_dummy_prefix() (as
  // llama2.c, SentencePiece and Hugging Face's Strip decoder do). The result is
  // raw bytes: it may be invalid UTF-8 if the ids are (use
  // StreamingDetokenizer for text to show to people).
  std::string decode(std::span<const int32_t> ids) const;
};

// Loads the tokenizer at `path`: a Hugging Face tokenizer.json, a
// SentencePiece tokenizer.model, a llama2.c tokenizer.bin, a GGUF file (its
// tokenizer.ggml.* metadata; told apart by content), or a model directory
// (its tokenizer.json, else tokenizer.model, else tokenizer.bin). Errors name the file and the problem (NotFound,
// DataLoss for truncated or corrupt, InvalidArgument for unsupported parts).
Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path);

}  // namespace pagoda
