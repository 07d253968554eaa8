// The text stages of a Hugging Face tokenizer.json pipeline, before the BPE
// model: HfNormalizer ("normalizer") and HfPreTokenizer ("pre_tokenizer").
//
// Supported normalizers: Sequence, Prepend, Replace (String or Regex
// pattern), NFC, NFD, NFKC, NFKD (through ICU), Lowercase, Strip.
// Supported pre-tokenizers: Sequence, Split (Regex or String pattern; all
// five behaviors; invert), ByteLevel (add_prefix_space, use_regex with
// GPT-2's pattern), Digits, Metaspace (replacement, prepend_scheme, split),
// Whitespace, WhitespaceSplit. Anything else fails parse() with an error
// naming the type, rather than tokenizing differently from the reference.
//
// Both are immutable after parse(); apply()/split() are const and
// thread-safe. Regexes are shared (shared_ptr), so copies are cheap.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "tokenizer/text_regex.h"

namespace pagoda {

class HfNormalizer {
 public:
  // `j` is the "normalizer" value (null: identity).
  static Result<HfNormalizer> parse(const nlohmann::json& j);
  std::string apply(std::string_view s) const;
  bool is_identity() const { return steps_.empty(); }
  // True when the first step prepends U+2581 (SentencePiece's dummy prefix).
  bool prepends_metaspace() const;

 private:
  enum class Kind { kPrepend, kReplace, kReplaceRegex, kNfc, kNfd, kNfkc, kNfkd, kLowercase, kStrip };
  struct Step {
    Kind kind;
    std::string a, b;  // Prepend: a; Replace: a -> b
    std::shared_ptr<const Regex> re;
    bool left = false, right = false;  // Strip
  };
  static Status parse_into(const nlohmann::json& j, std::vector<Step>* steps);
  std::vector<Step> steps_;
};

class HfPreTokenizer {
 public:
  // `j` is the "pre_tokenizer" value (null: the whole text is one piece).
  static Result<HfPreTokenizer> parse(const nlohmann::json& j);

  // Appends the pieces of `s` to `out` (empty pieces are dropped).
  // `first_segment` is false for text that follows an added token in the
  // input (Metaspace's prepend_scheme "first" only prepends to the first).
  void split(std::string_view s, bool first_segment, std::vector<std::string>* out) const;

  bool is_identity() const { return steps_.empty(); }
  // A ByteLevel step is present: BPE works on the bytes of each piece.
  bool byte_level() const { return byte_level_; }
  // A Metaspace step prepends U+2581 (to the first segment at least).
  bool metaspace_prepends() const { return metaspace_prepends_; }

 private:
  enum class Kind { kSplit, kByteLevel, kMetaspace };
  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
  struct Step {
    Kind kind;
    std::shared_ptr<const Regex> re;  // kSplit, and kByteLevel with use_regex
    Behavior behavior = Behavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;  // kByteLevel
    std::string replacement;        // kMetaspace
    int prepend = 0;                // kMetaspace: 0 never, 1 first, 2 always
    bool meta_split = true;         // kMetaspace
  };
  static Status parse_into(const nlohmann::json& j, std::vector<Step>* steps);
  static void apply_split(const Step& st, std::string_view s, std::vector<std::string>* out);
  std::vector<Step> steps_;
  bool byte_level_ = false;
  bool metaspace_prepends_ = false;
};

}  // namespace pagoda
