// GPT-2's byte-level alphabet: every byte 0..255 is written in vocabularies
// as one printable Unicode character (printable Latin-1 bytes as themselves,
// the others as U+0100.. in byte order, so ' ' is 'Ġ' and '\n' is 'Ċ').
// Byte-level BPE vocabularies (GPT-2, Llama 3, Qwen2, SmolLM2) are stored in
// this alphabet; pagoda converts them back to raw bytes at load time.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace pagoda {

// The Unicode code point that stands for byte `b`.
char32_t byte_level_char(unsigned char b);

// Raw bytes of `mapped`, a string in the byte-level alphabet. False (and
// `*bytes` unspecified) when `mapped` holds a character outside it.
bool byte_level_decode(std::string_view mapped, std::string* bytes);

// `bytes` written in the byte-level alphabet (UTF-8).
std::string byte_level_encode(std::string_view bytes);

}  // namespace pagoda
