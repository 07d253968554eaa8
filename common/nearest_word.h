// "Did you mean ...?" for a mistyped name: the candidate nearest to a word by
// edit distance, if it is near enough to be a typo of it. Used for config
// keys, subcommands and flags. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pagoda {

// Levenshtein distance (insertions, deletions, substitutions).
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest to `word` when its distance is at most
// max(2, word.size() / 4); else "".
std::string nearest_word(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace pagoda
