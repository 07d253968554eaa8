// Small text helpers the tokenizer formats share: the byte a byte-fallback
// piece ("<0x0A>") stands for, and replacing every occurrence of a string.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace pagoda {

// "<0xAB>" (hex digits in either case) -> 0xAB; anything else -> -1.
int byte_piece_value(std::string_view piece);

// `s` with every occurrence of `from` replaced by `to`, left to right
// without overlaps; `s` unchanged when `from` is empty.
std::string replace_all(std::string_view s, std::string_view from, std::string_view to);

}  // namespace pagoda
