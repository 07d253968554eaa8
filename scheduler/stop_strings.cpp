#include "scheduler/stop_strings.h"

#include <algorithm>

namespace pagoda {

size_t find_stop_string(std::string_view text, size_t new_from, const std::vector<std::string>& stops) {
  size_t best = std::string::npos;
  for (const std::string& s : stops) {
    if (s.empty() || s.size() > text.size()) continue;
    // A match ending at or after new_from starts at or after new_from - len + 1.
    const size_t start = new_from + 1 > s.size() ? new_from + 1 - s.size() : 0;
    const size_t pos = text.find(s, start);
    if (pos != std::string::npos) best = std::min(best, pos);
  }
  return best;
}

size_t stop_holdback(std::string_view text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& s : stops) {
    const size_t max_len = std::min(text.size(), s.size() - (s.empty() ? 0 : 1));
    for (size_t len = max_len; len > hold; --len)
      if (text.substr(text.size() - len) == std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
  }
  return hold;
}

}  // namespace pagoda
