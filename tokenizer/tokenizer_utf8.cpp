#include "tokenizer/tokenizer_utf8.h"

#include <cstdint>

namespace pagoda {

Utf8Scan utf8_scan(std::string_view s) {
  const auto b0 = static_cast<uint8_t>(s[0]);
  if (b0 < 0x80) return {Utf8Kind::kValid, 1};
  size_t need = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlongs
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlongs
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {Utf8Kind::kInvalid, 1};  // stray continuation byte, C0, C1, F5..FF
  }
  for (size_t k = 1; k < need; ++k) {
    if (k >= s.size()) return {Utf8Kind::kIncomplete, s.size()};
    const auto b = static_cast<uint8_t>(s[k]);
    const uint8_t l = (k == 1) ? lo : 0x80;
    const uint8_t h = (k == 1) ? hi : 0xBF;
    if (b < l || b > h) return {Utf8Kind::kInvalid, k};
  }
  return {Utf8Kind::kValid, need};
}

bool utf8_is_valid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const Utf8Scan sc = utf8_scan(s.substr(i));
    if (sc.kind != Utf8Kind::kValid) return false;
    i += sc.length;
  }
  return true;
}

}  // namespace pagoda
