// UTF-8 scanning helpers shared by the tokenizers and the streaming
// detokenizer: classify the bytes at the start of a string as one valid
// character, the incomplete beginning of one, or invalid bytes.
// Validity follows RFC 3629 (no overlongs, no surrogates, nothing above
// U+10FFFF). Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

namespace pagoda {

enum class Utf8Kind {
  kValid,       // `length` bytes form one valid character
  kIncomplete,  // all of the (short) input is a valid prefix of a character
  kInvalid,     // the first `length` bytes (>= 1) are the maximal invalid subpart
};

struct Utf8Scan {
  Utf8Kind kind;
  size_t length;
};

// Classifies the bytes at the start of `s` (which must not be empty).
Utf8Scan utf8_scan(std::string_view s);

// True when all of `s` is valid UTF-8.
bool utf8_is_valid(std::string_view s);

// The UTF-8 encoding of U+FFFD, the replacement character.
inline constexpr std::string_view kUtf8Replacement = "\xEF\xBF\xBD";

}  // namespace pagoda
