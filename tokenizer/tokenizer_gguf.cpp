#include "tokenizer/tokenizer_gguf.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include "gguf/gguf_file.h"
#include "tokenizer/piece_text.h"
#include "tokenizer/tokenizer_bytelevel.h"

namespace pagoda {

namespace {

constexpr std::string_view kMeta = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// Texts llama.cpp adds to the end-of-generation set wherever they occur.
constexpr std::string_view kEndOfTurn[] = {"<|eot_id|>",    "<|im_end|>", "<|end|>",         "<end_of_turn>",
                                           "<|endoftext|>", "<|eom_id|>", "<|end_of_text|>", "<EOT>"};

// isspace() in the C locale, as llama.cpp strips around special tokens.
bool c_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

Result<std::unique_ptr<GgufTokenizer>> GgufTokenizer::load(const std::string& path) {
  auto file = GgufFile::open(path);
  if (!file) return file.status();
  return from_gguf(**file);
}

Result<std::unique_ptr<GgufTokenizer>> GgufTokenizer::from_gguf(const GgufFile& f) {
  auto fail = [&f](const Status& s) {
    if (s.message().rfind(f.path(), 0) == 0) return s;  // GgufFile's errors name the file already
    return Status(s.code(), f.path() + ": " + s.message());
  };
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model) return model.status();
  if (!model->has_value())
    return Status::invalid_argument(
        f.path() +
        ": no tokenizer.ggml.model (the file carries no vocabulary, as make-model's GGUF files do: give a tokenizer, "
        "model.tokenizer or --tokenizer)");
  std::unique_ptr<GgufTokenizer> tok(new GgufTokenizer());
  if (**model == "gpt2") {
    tok->spm_kind_ = false;
    auto pre = f.get_string("tokenizer.ggml.pre");
    if (!pre) return pre.status();
    auto p = GgufPreTokenizer::make(pre->value_or(""));
    if (!p) return fail(p.status());
    tok->pre_ = std::move(p).value();
  } else if (**model != "llama") {
    return Status::invalid_argument(f.path() + ": tokenizer.ggml.model '" + **model +
                                    "' is not supported (supported: llama, gpt2)");
  }
  Status s = tok->read_vocab(f);
  if (s.is_ok()) s = tok->read_special_ids(f, **model);
  if (!s.is_ok()) return fail(s);
  tok->build_specials(f);
  tok->build_decoded();
  if (tok->spm_kind_) {
    tok->spm_ = SpmModel::build(tok->text_, tok->scores_, tok->unk_id_);
  } else {
    s = tok->build_bpe(f);
    if (!s.is_ok()) return fail(s);
  }
  auto tmpl = f.get_string("tokenizer.chat_template");
  if (!tmpl) return tmpl.status();
  tok->chat_template_ = tmpl->value_or("");
  return tok;
}

Status GgufTokenizer::read_vocab(const GgufFile& f) {
  auto tokens = f.get_strings("tokenizer.ggml.tokens");
  if (!tokens) return tokens.status();
  if (*tokens == nullptr || (*tokens)->empty())
    return Status::invalid_argument("no tokenizer.ggml.tokens (the file carries no vocabulary)");
  if ((*tokens)->size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    return Status::data_loss("tokenizer.ggml.tokens holds too many tokens");
  text_ = **tokens;
  const size_t n = text_.size();
  scores_.assign(n, 0.0f);
  if (const GgufValue* v = f.find("tokenizer.ggml.scores")) {
    auto floats = f.get_floats("tokenizer.ggml.scores");
    auto ints = f.get_ints("tokenizer.ggml.scores");  // llama.cpp also reads int32 scores
    if (!floats && !ints) return floats.status();
    const size_t have = v->array_size;
    if (have < n)
      return Status::data_loss("tokenizer.ggml.scores has " + std::to_string(have) + " entries for " +
                               std::to_string(n) + " tokens");
    for (size_t i = 0; i < n; ++i)
      scores_[i] = floats ? static_cast<float>((**floats)[i]) : static_cast<float>((**ints)[i]);
  }
  type_.assign(n, kNormal);
  auto types = f.get_ints("tokenizer.ggml.token_type");
  if (!types) return types.status();
  if (*types != nullptr) {
    if ((*types)->size() < n)
      return Status::data_loss("tokenizer.ggml.token_type has " + std::to_string((*types)->size()) + " entries for " +
                               std::to_string(n) + " tokens");
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = (**types)[i];
      type_[i] = t >= kNormal && t <= kByte ? static_cast<TokenType>(t) : kUndefined;
    }
  }
  return Status::ok();
}

Status GgufTokenizer::read_special_ids(const GgufFile& f, const std::string& model) {
  const bool llama = model == "llama";
  auto in_vocab = [&](int64_t id) { return id >= 0 && id < vocab_size() ? static_cast<int32_t>(id) : -1; };
  // A key's id when it holds one inside the vocabulary, else `dflt`.
  auto id_key = [&](const char* key, int32_t dflt, int32_t* out) -> Status {
    auto v = f.get_int(key);
    if (!v) return v.status();
    *out = in_vocab(v->has_value() && in_vocab(**v) >= 0 ? **v : dflt);
    return Status::ok();
  };
  int32_t eos = -1, eot = -1, eom = -1;
  PAGODA_RETURN_IF_ERROR(id_key("tokenizer.ggml.bos_token_id", llama ? 1 : 11, &bos_id_));
  PAGODA_RETURN_IF_ERROR(id_key("tokenizer.ggml.eos_token_id", llama ? 2 : 11, &eos));
  PAGODA_RETURN_IF_ERROR(id_key("tokenizer.ggml.unknown_token_id", llama ? 0 : -1, &unk_id_));
  PAGODA_RETURN_IF_ERROR(id_key("tokenizer.ggml.padding_token_id", -1, &pad_id_));
  PAGODA_RETURN_IF_ERROR(id_key("tokenizer.ggml.eot_token_id", -1, &eot));
  PAGODA_RETURN_IF_ERROR(id_key("tokenizer.ggml.eom_token_id", -1, &eom));
  auto add_eos_id = [&](int32_t id) {
    if (id >= 0 && std::find(eos_ids_.begin(), eos_ids_.end(), id) == eos_ids_.end()) eos_ids_.push_back(id);
  };
  add_eos_id(eos);
  add_eos_id(eot);
  add_eos_id(eom);
  for (size_t id = 0; id < text_.size(); ++id) {
    if (std::find(std::begin(kEndOfTurn), std::end(kEndOfTurn), text_[id]) == std::end(kEndOfTurn)) continue;
    add_eos_id(static_cast<int32_t>(id));
    type_[id] = kControl;
  }

  auto flag = [&](const char* key, bool dflt, bool* out) -> Status {
    auto v = f.get_bool(key);
    if (!v) return v.status();
    *out = v->value_or(dflt);
    return Status::ok();
  };
  PAGODA_RETURN_IF_ERROR(flag("tokenizer.ggml.add_bos_token", llama || pre_.add_bos(), &add_bos_));
  PAGODA_RETURN_IF_ERROR(flag("tokenizer.ggml.add_eos_token", false, &add_eos_));
  PAGODA_RETURN_IF_ERROR(flag("tokenizer.ggml.add_space_prefix", llama, &add_space_prefix_));
  if (add_bos_ && bos_id_ < 0)
    return Status::invalid_argument("tokenizer.ggml.add_bos_token is true but there is no valid bos_token_id");
  if (add_eos_ && eos < 0)
    return Status::invalid_argument("tokenizer.ggml.add_eos_token is true but there is no valid eos_token_id");
  return Status::ok();
}

void GgufTokenizer::build_specials(const GgufFile& f) {
  for (size_t id = 0; id < text_.size(); ++id) {
    const TokenType t = type_[id];
    if ((t == kControl || t == kUserDefined || t == kUnknown) && !text_[id].empty())
      specials_.push_back(static_cast<int32_t>(id));
  }
  std::stable_sort(specials_.begin(), specials_.end(),
                   [&](int32_t a, int32_t b) { return text_[a].size() > text_[b].size(); });
  rstrip_.assign(text_.size(), 0);
  // llama.cpp's rule for Phi-3 (by model name): whitespace after special
  // tokens is dropped, except after <unk>, <s> and <|endoftext|>.
  auto name = f.get_string("general.name");
  std::string lower = name && name->has_value() ? **name : "";
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("phi3") == std::string::npos && lower.find("phi-3") == std::string::npos) return;
  for (int32_t id : specials_) rstrip_[id] = 1;
  for (size_t id = 0; id < text_.size(); ++id) {
    if (text_[id] == "</s>") rstrip_[id] = 1;
    if (text_[id] == "<unk>" || text_[id] == "<s>" || text_[id] == "<|endoftext|>") rstrip_[id] = 0;
  }
}

void GgufTokenizer::build_decoded() {
  decoded_.assign(text_.size(), std::string());
  for (size_t id = 0; id < text_.size(); ++id) {
    const std::string& t = text_[id];
    switch (type_[id]) {
      case kUserDefined:
        decoded_[id] = t;
        break;
      case kByte: {
        const int b = byte_piece_value(t);
        decoded_[id] = b >= 0 ? std::string(1, static_cast<char>(b)) : t;
        break;
      }
      case kNormal:
        if (spm_kind_) decoded_[id] = replace_all(t, kMeta, " ");
        else if (!byte_level_decode(t, &decoded_[id])) decoded_[id] = t;
        break;
      default:  // control, unknown, unused, undefined: nothing in output text
        break;
    }
  }
}

Status GgufTokenizer::build_bpe(const GgufFile& f) {
  auto merges = f.get_strings("tokenizer.ggml.merges");
  if (!merges) return merges.status();
  if (*merges == nullptr) return Status::invalid_argument("tokenizer.ggml.model is gpt2 but there are no merges");
  PieceTable by_text;                             // the vocabulary as spelled in the file
  std::vector<std::string> pieces(text_.size());  // raw bytes; "" if not in GPT-2's byte alphabet
  for (size_t id = 0; id < text_.size(); ++id) {
    by_text.insert(text_[id], static_cast<int32_t>(id));
    if (!byte_level_decode(text_[id], &pieces[id])) pieces[id].clear();
  }
  std::vector<std::pair<int32_t, int32_t>> pairs;
  pairs.reserve((*merges)->size());
  for (const std::string& m : **merges) {
    const size_t sp = m.find(' ', 1);  // as llama.cpp: the first space after the first byte
    if (sp == std::string::npos) continue;
    const int32_t a = by_text.find(std::string_view(m).substr(0, sp));
    const int32_t b = by_text.find(std::string_view(m).substr(sp + 1));
    if (a >= 0 && b >= 0) pairs.emplace_back(a, b);  // else it can never apply
  }
  BpeModel::Options o;
  o.byte_level = true;
  o.ignore_merges = pre_.ignore_merges();
  auto bpe = BpeModel::build(pieces, pairs, o);
  if (!bpe) return bpe.status();
  bpe_ = std::move(bpe).value();
  return Status::ok();
}

void GgufTokenizer::split_special(std::string_view text, bool parse_special, std::vector<Segment>* out) const {
  std::array<bool, 256> present{};  // bytes in `text`: a token whose first byte is absent cannot match
  for (char c : text) present[static_cast<unsigned char>(c)] = true;
  std::vector<Segment> cur{{text, -1}}, next;
  for (int32_t id : specials_) {
    const std::string& tok = text_[id];
    if (!parse_special && type_[id] != kUserDefined) continue;
    if (!present[static_cast<unsigned char>(tok[0])]) continue;
    next.clear();
    for (const Segment& seg : cur) {
      if (seg.id >= 0) {
        next.push_back(seg);
        continue;
      }
      std::string_view s = seg.text;
      for (size_t hit; (hit = s.find(tok)) != std::string_view::npos;) {
        if (hit > 0) next.push_back({s.substr(0, hit), -1});
        next.push_back({{}, id});
        s.remove_prefix(hit + tok.size());
        if (rstrip_[id])
          while (!s.empty() && c_space(s[0])) s.remove_prefix(1);
      }
      if (!s.empty()) next.push_back({s, -1});
    }
    cur.swap(next);
  }
  out->insert(out->end(), cur.begin(), cur.end());
}

void GgufTokenizer::encode_text(std::string_view text, bool after_special, BpeModel::Scratch& scratch,
                                std::vector<int32_t>& out) const {
  if (spm_kind_) {
    std::string s;
    if (add_space_prefix_ && after_special) s = " ";
    s.append(text);
    spm_.encode(replace_all(s, " ", kMeta), out);
    return;
  }
  std::vector<std::string_view> words;
  pre_.split(text, &words);
  for (std::string_view w : words) bpe_.encode_word(w, scratch, out);
}

std::vector<int32_t> GgufTokenizer::encode_with(std::string_view text, const EncodeOptions& opts) const {
  std::vector<int32_t> out;
  if (opts.add_bos && add_bos_) out.push_back(bos_id_);
  if (!text.empty()) {
    std::vector<Segment> segs;
    split_special(text, opts.parse_special, &segs);
    BpeModel::Scratch scratch;
    bool after_special = true;  // the input's start counts as one (llama.cpp)
    for (const Segment& seg : segs) {
      if (seg.id >= 0) out.push_back(seg.id);
      else encode_text(seg.text, after_special, scratch, out);
      after_special = seg.id >= 0;
    }
  }
  if (opts.add_bos && add_eos_) out.push_back(eos_ids_.front());
  return out;
}

std::string_view GgufTokenizer::decode_piece(int32_t id) const {
  return is_valid_id(id) ? std::string_view(decoded_[id]) : std::string_view();
}

std::string_view GgufTokenizer::token_text(int32_t id) const {
  return is_valid_id(id) ? std::string_view(text_[id]) : std::string_view();
}

}  // namespace pagoda
