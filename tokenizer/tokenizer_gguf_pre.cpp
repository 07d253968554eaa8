#include "tokenizer/tokenizer_gguf_pre.h"

#include <array>

namespace pagoda {

namespace {

// llama.cpp's regexes (src/llama-vocab.cpp, llm_tokenizer_bpe), written for
// PCRE2: literal CR/LF as \r \n, non-ASCII characters as \x{...}.
constexpr const char* kGpt2 = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";
constexpr const char* kLlama3 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr const char* kQwen2 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// " ?[^(\s|.,!?…。，、।۔،)]+"
constexpr const char* kPoro = R"re( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{0964}\x{06D4}\x{060C})]+)re";
// "[一-龥ࠀ-一가-퟿]+"
constexpr const char* kCjk = R"re([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re";

// One row: the tokenizer.ggml.pre names (space-separated), their regexes
// (unused slots null) and llama.cpp's flags for them.
struct Entry {
  const char* names;
  std::array<const char*, 5> regexes;
  bool ignore_merges = false;
  bool add_bos = false;
};

constexpr Entry kTable[] = {
    {"default", {R"re([\p{P}\$\+<=>\^~\|]+)re", kGpt2, R"re(\p{N}+)re", "[0-9][0-9][0-9]"}},
    {"llama3 llama-v3 llama-bpe falcon3", {kLlama3}, true, true},
    {"dbrx smaug-bpe", {kLlama3}},
    {"deepseek-coder", {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", kCjk, R"re(\p{N})re"}},
    {"deepseek-v3",
     {R"re(\p{N}{1,3})re", R"re([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re",
      R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
    {"falcon", {R"re([\p{P}\$\+<=>\^~\|`]+)re", kGpt2, "[0-9][0-9][0-9]"}},
    {"starcoder refact command-r smollm codeshell exaone minerva-7b", {R"re(\p{N})re", kGpt2}},
    {"gpt-2 phi-2 gigachat mpt olmo jais", {kGpt2}},
    {"stablelm2 qwen2 deepseek-r1-qwen megrez", {kQwen2}},
    {"poro-chat bloom gpt3-finnish", {kPoro}},
    {"viking", {kPoro, R"re(\p{N})re"}},
};

// True when `name` is one of the space-separated `names`.
bool has_name(std::string_view names, std::string_view name) {
  while (!names.empty()) {
    const size_t sp = names.find(' ');
    if (names.substr(0, sp) == name) return true;
    if (sp == std::string_view::npos) break;
    names.remove_prefix(sp + 1);
  }
  return false;
}

}  // namespace

Result<GgufPreTokenizer> GgufPreTokenizer::make(std::string_view pre) {
  if (pre.empty()) pre = "default";  // llama.cpp: a missing key means "default"
  for (const Entry& e : kTable) {
    if (!has_name(e.names, pre)) continue;
    GgufPreTokenizer p;
    p.ignore_merges_ = e.ignore_merges;
    p.add_bos_ = e.add_bos;
    for (const char* pattern : e.regexes) {
      if (pattern == nullptr) break;
      auto re = Regex::compile(pattern);
      if (!re) return re.status();
      p.regexes_.push_back(std::move(re).value());
    }
    return p;
  }
  std::string known;
  for (const Entry& e : kTable) known += std::string(known.empty() ? "" : " ") + e.names;
  return Status::invalid_argument("tokenizer.ggml.pre '" + std::string(pre) +
                                  "' is not a pre-tokenizer pagoda knows (known: " + known + ")");
}

void GgufPreTokenizer::split(std::string_view text, std::vector<std::string_view>* out) const {
  std::vector<std::string_view> cur{text}, next;
  for (const auto& re : regexes_) {
    next.clear();
    for (std::string_view piece : cur) {
      size_t pos = 0;
      for (auto [b, e] : re->matches(piece)) {
        if (b > pos) next.push_back(piece.substr(pos, b - pos));
        next.push_back(piece.substr(b, e - b));
        pos = e;
      }
      if (pos < piece.size()) next.push_back(piece.substr(pos));
    }
    cur.swap(next);
  }
  for (std::string_view p : cur)
    if (!p.empty()) out->push_back(p);
}

}  // namespace pagoda
