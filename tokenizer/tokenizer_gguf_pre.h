// The pre-tokenizers of llama.cpp's byte-level BPE vocabularies ("gpt2"
// GGUF model), chosen by the GGUF key tokenizer.ggml.pre: for each name,
// llama.cpp's list of regexes (llm_tokenizer_bpe) and the flags it sets with
// it (ignore_merges, add_bos). GgufPreTokenizer splits text as llama.cpp's
// unicode_regex_split does: each regex in turn splits every piece left by the
// previous one into its matches and the text between them (both kept).
//
// Patterns run on PCRE2 (text_regex.h), which has the Unicode properties
// llama.cpp's regexes use. Names whose pre-tokenizer needs code of its own in
// llama.cpp, or extra special tokens (SEP), are refused rather than guessed.
//
// Immutable after make(); split() is const and thread-safe. Copies share the
// compiled regexes.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tokenizer/text_regex.h"

namespace pagoda {

class GgufPreTokenizer {
 public:
  // The pre-tokenizer for tokenizer.ggml.pre = `pre` ("" = llama.cpp's
  // "default"). InvalidArgument naming the key and the value when pagoda
  // does not know it.
  static Result<GgufPreTokenizer> make(std::string_view pre);

  // Appends the pieces of `text` to `out` (views into `text`, none empty).
  void split(std::string_view text, std::vector<std::string_view>* out) const;

  // A word that is itself a token is that token, without merges (llama3).
  bool ignore_merges() const { return ignore_merges_; }
  // llama.cpp's default for add_bos (before tokenizer.ggml.add_bos_token).
  bool add_bos() const { return add_bos_; }

 private:
  std::vector<std::shared_ptr<const Regex>> regexes_;
  bool ignore_merges_ = false;
  bool add_bos_ = false;
};

}  // namespace pagoda
