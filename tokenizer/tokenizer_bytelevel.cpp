#include "tokenizer/tokenizer_bytelevel.h"

#include <array>

#include "tokenizer/tokenizer_utf8.h"

namespace pagoda {

namespace {

bool printable(unsigned b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<int, 512> to_byte{};  // code point -> byte, -1 if none (all mapped chars are < 512)
  Tables() {
    to_byte.fill(-1);
    unsigned next = 256;
    for (unsigned b = 0; b < 256; ++b) {
      to_char[b] = printable(b) ? b : next++;
      to_byte[to_char[b]] = static_cast<int>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

void append_utf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else {  // all byte-level characters are below U+0800
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

}  // namespace

char32_t byte_level_char(unsigned char b) { return tables().to_char[b]; }

bool byte_level_decode(std::string_view mapped, std::string* bytes) {
  const Tables& t = tables();
  bytes->clear();
  size_t i = 0;
  while (i < mapped.size()) {
    const Utf8Scan s = utf8_scan(mapped.substr(i));
    if (s.kind != Utf8Kind::kValid || s.length > 2) return false;
    char32_t c = static_cast<unsigned char>(mapped[i]);
    if (s.length == 2) c = ((c & 0x1F) << 6) | (static_cast<unsigned char>(mapped[i + 1]) & 0x3F);
    if (c >= t.to_byte.size() || t.to_byte[c] < 0) return false;
    bytes->push_back(static_cast<char>(t.to_byte[c]));
    i += s.length;
  }
  return true;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char b : bytes) append_utf8(byte_level_char(static_cast<unsigned char>(b)), &out);
  return out;
}

}  // namespace pagoda
