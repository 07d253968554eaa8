// Regex: one compiled PCRE2 pattern with Unicode semantics (PCRE2_UTF |
// PCRE2_UCP, so \p{L}, \s and \w follow Unicode properties), the dialect
// Hugging Face tokenizer.json patterns are written in. Invalid UTF-8 in the
// subject never matches and never fails (PCRE2_MATCH_INVALID_UTF). Patterns
// are JIT-compiled when the platform allows.
//
// Owns the compiled code; immutable after compile(), and matches() is
// thread-safe (each call uses its own match data). Not copyable.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace pagoda {

class Regex {
 public:
  // InvalidArgument naming the pattern and PCRE2's message when it does not
  // compile.
  static Result<std::shared_ptr<const Regex>> compile(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // [begin, end) byte ranges of the non-overlapping matches in `s`, left to
  // right. An empty match advances one character and is not reported.
  std::vector<std::pair<size_t, size_t>> matches(std::string_view s) const;

  const std::string& pattern() const { return pattern_; }

 private:
  Regex() = default;
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
};

}  // namespace pagoda
