// HfTokenizerConfig: what a Hugging Face model directory says about special
// tokens and chat formatting outside tokenizer.json, read from
// tokenizer_config.json (bos_token, eos_token, add_bos_token, add_eos_token,
// chat_template), chat_template.jinja, generation_config.json and
// config.json (bos_token_id, eos_token_id: an int or a list). Every file is
// optional; a file that exists but is not valid JSON is an error.
// Plain data; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace pagoda {

struct HfTokenizerConfig {
  std::optional<std::string> bos_token;  // token text, e.g. "<s>"
  std::optional<std::string> eos_token;
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
  std::string chat_template;            // Jinja source; "" when the directory has none
  std::optional<int32_t> bos_token_id;  // generation_config.json, else config.json
  std::vector<int32_t> eos_token_ids;   // generation_config.json, then config.json (deduplicated)
};

// Reads the files in directory `dir` (missing files are skipped).
Result<HfTokenizerConfig> read_hf_tokenizer_config(const std::string& dir);

}  // namespace pagoda
