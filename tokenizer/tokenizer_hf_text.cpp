#include "tokenizer/tokenizer_hf_text.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>
#include <nlohmann/json.hpp>

#include "tokenizer/piece_text.h"

namespace pagoda {

using nlohmann::json;

namespace {

constexpr std::string_view kMeta = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// GPT-2's pre-tokenizer pattern, used by ByteLevel with use_regex.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

std::string icu_normalize(std::string_view s, int form) {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* n = form == 0   ? icu::Normalizer2::getNFCInstance(err)
                              : form == 1 ? icu::Normalizer2::getNFDInstance(err)
                              : form == 2 ? icu::Normalizer2::getNFKCInstance(err)
                                          : icu::Normalizer2::getNFKDInstance(err);
  if (U_FAILURE(err)) return std::string(s);
  const icu::UnicodeString in =
      icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  icu::UnicodeString out = n->normalize(in, err);
  if (U_FAILURE(err)) return std::string(s);
  std::string r;
  out.toUTF8String(r);
  return r;
}

std::string json_string(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool json_bool(const json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : dflt;
}

// A Split/Replace "pattern": {"String": s} (literal) or {"Regex": r}.
Result<std::shared_ptr<const Regex>> pattern_regex(const json& p, const std::string& where) {
  if (p.is_object() && p.contains("Regex") && p["Regex"].is_string())
    return Regex::compile(p["Regex"].get<std::string>());
  if (p.is_object() && p.contains("String") && p["String"].is_string()) {
    std::string quoted = "\\Q" + p["String"].get<std::string>() + "\\E";
    return Regex::compile(quoted);
  }
  return Status::invalid_argument(where + ": 'pattern' must be {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace

// ---- HfNormalizer ------------------------------------------------------------

Status HfNormalizer::parse_into(const json& j, std::vector<Step>* steps) {
  if (j.is_null()) return Status::ok();
  if (!j.is_object()) return Status::invalid_argument("normalizer: expected an object");
  const std::string type = json_string(j, "type");
  if (type == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array())
      return Status::invalid_argument("normalizer Sequence: 'normalizers' must be an array");
    for (const json& sub : j["normalizers"]) {
      Status s = parse_into(sub, steps);
      if (!s.is_ok()) return s;
    }
    return Status::ok();
  }
  Step st{};
  if (type == "Prepend") {
    st.kind = Kind::kPrepend;
    st.a = json_string(j, "prepend");
  } else if (type == "Replace") {
    const json& p = j.contains("pattern") ? j["pattern"] : json();
    st.b = json_string(j, "content");
    if (p.is_object() && p.contains("String") && p["String"].is_string()) {
      st.kind = Kind::kReplace;
      st.a = p["String"].get<std::string>();
    } else {
      auto re = pattern_regex(p, "normalizer Replace");
      if (!re) return re.status();
      st.kind = Kind::kReplaceRegex;
      st.re = *re;
    }
  } else if (type == "NFC") {
    st.kind = Kind::kNfc;
  } else if (type == "NFD") {
    st.kind = Kind::kNfd;
  } else if (type == "NFKC") {
    st.kind = Kind::kNfkc;
  } else if (type == "NFKD") {
    st.kind = Kind::kNfkd;
  } else if (type == "Lowercase") {
    st.kind = Kind::kLowercase;
  } else if (type == "Strip") {
    st.kind = Kind::kStrip;
    st.left = json_bool(j, "strip_left", true);
    st.right = json_bool(j, "strip_right", true);
  } else {
    return Status::invalid_argument("normalizer type '" + type +
                                    "' is not supported (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, "
                                    "NFKD, Lowercase, Strip)");
  }
  steps->push_back(std::move(st));
  return Status::ok();
}

Result<HfNormalizer> HfNormalizer::parse(const json& j) {
  HfNormalizer n;
  Status s = parse_into(j, &n.steps_);
  if (!s.is_ok()) return s;
  return n;
}

bool HfNormalizer::prepends_metaspace() const {
  return !steps_.empty() && steps_.front().kind == Kind::kPrepend && steps_.front().a == kMeta;
}

std::string HfNormalizer::apply(std::string_view in) const {
  std::string s(in);
  for (const Step& st : steps_) {
    switch (st.kind) {
      case Kind::kPrepend:
        if (!s.empty()) s.insert(0, st.a);
        break;
      case Kind::kReplace:
        s = replace_all(s, st.a, st.b);
        break;
      case Kind::kReplaceRegex: {
        std::string out;
        size_t pos = 0;
        for (auto [b, e] : st.re->matches(s)) {
          out.append(s, pos, b - pos);
          out.append(st.b);
          pos = e;
        }
        out.append(s, pos, std::string::npos);
        s = std::move(out);
        break;
      }
      case Kind::kNfc:
      case Kind::kNfd:
      case Kind::kNfkc:
      case Kind::kNfkd:
        if (!is_ascii(s)) s = icu_normalize(s, static_cast<int>(st.kind) - static_cast<int>(Kind::kNfc));
        break;
      case Kind::kLowercase: {
        icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
        std::string out;
        u.toLower().toUTF8String(out);
        s = std::move(out);
        break;
      }
      case Kind::kStrip: {
        auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
        size_t b = 0, e = s.size();
        if (st.left)
          while (b < e && ws(s[b])) ++b;
        if (st.right)
          while (e > b && ws(s[e - 1])) --e;
        s = s.substr(b, e - b);
        break;
      }
    }
  }
  return s;
}

// ---- HfPreTokenizer ----------------------------------------------------------

Status HfPreTokenizer::parse_into(const json& j, std::vector<Step>* steps) {
  if (j.is_null()) return Status::ok();
  if (!j.is_object()) return Status::invalid_argument("pre_tokenizer: expected an object");
  const std::string type = json_string(j, "type");
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      return Status::invalid_argument("pre_tokenizer Sequence: 'pretokenizers' must be an array");
    for (const json& sub : j["pretokenizers"]) {
      Status s = parse_into(sub, steps);
      if (!s.is_ok()) return s;
    }
    return Status::ok();
  }
  Step st{};
  if (type == "Split") {
    auto re = pattern_regex(j.contains("pattern") ? j["pattern"] : json(), "pre_tokenizer Split");
    if (!re) return re.status();
    st.kind = Kind::kSplit;
    st.re = *re;
    st.invert = json_bool(j, "invert", false);
    const std::string b = json_string(j, "behavior");
    if (b == "Removed") st.behavior = Behavior::kRemoved;
    else if (b == "Isolated") st.behavior = Behavior::kIsolated;
    else if (b == "MergedWithPrevious") st.behavior = Behavior::kMergedWithPrevious;
    else if (b == "MergedWithNext") st.behavior = Behavior::kMergedWithNext;
    else if (b == "Contiguous") st.behavior = Behavior::kContiguous;
    else return Status::invalid_argument("pre_tokenizer Split: unknown behavior '" + b + "'");
  } else if (type == "ByteLevel") {
    st.kind = Kind::kByteLevel;
    st.add_prefix_space = json_bool(j, "add_prefix_space", false);
    if (json_bool(j, "use_regex", true)) {
      auto re = Regex::compile(kGpt2Pattern);
      if (!re) return re.status();
      st.re = *re;
    }
  } else if (type == "Digits") {
    auto re = Regex::compile(json_bool(j, "individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
    if (!re) return re.status();
    st.kind = Kind::kSplit;
    st.re = *re;
  } else if (type == "Whitespace") {  // keep runs of \w and of other non-space characters
    auto re = Regex::compile(R"(\w+|[^\w\s]+)");
    if (!re) return re.status();
    st.kind = Kind::kSplit;
    st.re = *re;
    st.invert = true;
    st.behavior = Behavior::kRemoved;
  } else if (type == "WhitespaceSplit") {
    auto re = Regex::compile(R"(\s+)");
    if (!re) return re.status();
    st.kind = Kind::kSplit;
    st.re = *re;
    st.behavior = Behavior::kRemoved;
  } else if (type == "Metaspace") {
    st.kind = Kind::kMetaspace;
    st.replacement = j.contains("replacement") && j["replacement"].is_string() ? j["replacement"].get<std::string>()
                                                                               : std::string(kMeta);
    std::string scheme = json_string(j, "prepend_scheme");
    if (scheme.empty()) scheme = json_bool(j, "add_prefix_space", true) ? "always" : "never";
    st.prepend = scheme == "always" ? 2 : scheme == "first" ? 1 : 0;
    st.meta_split = json_bool(j, "split", true);
  } else {
    return Status::invalid_argument("pre_tokenizer type '" + type +
                                    "' is not supported (supported: Sequence, Split, ByteLevel, Digits, "
                                    "Metaspace, Whitespace, WhitespaceSplit)");
  }
  steps->push_back(std::move(st));
  return Status::ok();
}

Result<HfPreTokenizer> HfPreTokenizer::parse(const json& j) {
  HfPreTokenizer p;
  Status s = parse_into(j, &p.steps_);
  if (!s.is_ok()) return s;
  for (const Step& st : p.steps_) {
    if (st.kind == Kind::kByteLevel) p.byte_level_ = true;
    if (st.kind == Kind::kMetaspace && st.prepend > 0) p.metaspace_prepends_ = true;
  }
  return p;
}

// Splits `s` by st.re according to st.behavior / st.invert.
void HfPreTokenizer::apply_split(const Step& st, std::string_view s, std::vector<std::string>* out) {
  struct Span {
    size_t b, e;
    bool delim;  // the part Split's behavior acts on
  };
  std::vector<Span> spans;
  size_t pos = 0;
  for (auto [b, e] : st.re->matches(s)) {
    if (b > pos) spans.push_back({pos, b, st.invert});
    spans.push_back({b, e, !st.invert});
    pos = e;
  }
  if (pos < s.size()) spans.push_back({pos, s.size(), st.invert});
  std::string pending;  // MergedWithNext: delimiters waiting for the next piece
  for (size_t i = 0; i < spans.size(); ++i) {
    const Span& sp = spans[i];
    std::string_view text = s.substr(sp.b, sp.e - sp.b);
    if (!sp.delim) {
      out->push_back(pending + std::string(text));
      pending.clear();
      continue;
    }
    switch (st.behavior) {
      case Behavior::kRemoved:
        break;
      case Behavior::kIsolated:
        out->emplace_back(text);
        break;
      case Behavior::kContiguous:
        if (i > 0 && spans[i - 1].delim && !out->empty()) out->back().append(text);
        else out->emplace_back(text);
        break;
      case Behavior::kMergedWithPrevious:
        if (i > 0 && !spans[i - 1].delim && !out->empty()) out->back().append(text);
        else out->emplace_back(text);
        break;
      case Behavior::kMergedWithNext:
        pending.append(text);
        break;
    }
  }
  if (!pending.empty()) out->push_back(std::move(pending));
}

void HfPreTokenizer::split(std::string_view s, bool first_segment, std::vector<std::string>* out) const {
  std::vector<std::string> cur{std::string(s)}, next;
  for (const Step& st : steps_) {
    next.clear();
    for (size_t i = 0; i < cur.size(); ++i) {
      std::string& piece = cur[i];
      switch (st.kind) {
        case Kind::kSplit:
          apply_split(st, piece, &next);
          break;
        case Kind::kByteLevel:
          if (st.add_prefix_space && (piece.empty() || piece[0] != ' ')) {
            std::string spaced(1, ' ');
            spaced += piece;
            piece = std::move(spaced);
          }
          if (st.re) apply_split(st, piece, &next);
          else next.push_back(std::move(piece));
          break;
        case Kind::kMetaspace: {
          std::string m = replace_all(piece, " ", st.replacement);
          const bool prepend = st.prepend == 2 || (st.prepend == 1 && first_segment && i == 0);
          if (prepend && m.compare(0, st.replacement.size(), st.replacement) != 0) m.insert(0, st.replacement);
          if (!st.meta_split) {
            next.push_back(std::move(m));
            break;
          }
          size_t start = 0;  // split before each replacement character (MergedWithNext)
          for (size_t hit; (hit = m.find(st.replacement, start + 1)) != std::string::npos; start = hit)
            next.push_back(m.substr(start, hit - start));
          next.push_back(m.substr(start));
          break;
        }
      }
    }
    cur.swap(next);
  }
  for (std::string& p : cur)
    if (!p.empty()) out->push_back(std::move(p));
}

}  // namespace pagoda
