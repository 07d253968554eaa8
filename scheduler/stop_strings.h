// Stop-string matching over generated text, for streaming: finds a stop
// string that may span token boundaries, and tells how much of the text's
// tail must be held back because it could still become a stop string.
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pagoda {

// The earliest position in `text` where any stop string starts, looking only
// at matches that end at or after `new_from` (the text before it was checked
// already); std::string::npos if none.
size_t find_stop_string(std::string_view text, size_t new_from, const std::vector<std::string>& stops);

// Length of the longest suffix of `text` that is a proper prefix of some stop
// string (those bytes may not be sent yet).
size_t stop_holdback(std::string_view text, const std::vector<std::string>& stops);

}  // namespace pagoda
