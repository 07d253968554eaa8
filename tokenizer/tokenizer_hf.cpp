#include "tokenizer/tokenizer_hf.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tokenizer/piece_text.h"
#include "tokenizer/tokenizer_bytelevel.h"
#include "tokenizer/tokenizer_utf8.h"

namespace pagoda {

using nlohmann::json;

namespace {

constexpr std::string_view kMeta = "\xE2\x96\x81";  // U+2581

const json& at(const void* p) { return *static_cast<const json*>(p); }

bool ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

Result<std::unique_ptr<HfTokenizer>> HfTokenizer::load(const std::string& json_path) {
  std::ifstream in(json_path, std::ios::binary);
  if (!in) return Status::not_found("cannot open tokenizer file '" + json_path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::filesystem::path dir = std::filesystem::path(json_path).parent_path();
  auto cfg = read_hf_tokenizer_config(dir.empty() ? "." : dir.string());
  if (!cfg) return cfg.status();
  return parse(ss.str(), *cfg, json_path);
}

Result<std::unique_ptr<HfTokenizer>> HfTokenizer::parse(std::string_view text, const HfTokenizerConfig& cfg,
                                                        const std::string& name) {
  const json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object())
    return Status::data_loss(name + ": not valid tokenizer.json (JSON object expected)");
  std::unique_ptr<HfTokenizer> tok(new HfTokenizer());
  Status s = tok->build(&root, cfg);
  if (!s.is_ok()) return Status(s.code(), name + ": " + s.message());
  return tok;
}

Status HfTokenizer::parse_model(const void* model_json) {
  const json& m = at(model_json);
  if (!m.is_object()) return Status::data_loss("'model' must be an object");
  const std::string type = m.value("type", "BPE");
  if (type != "BPE") return Status::invalid_argument("model type '" + type + "' is not supported (only BPE)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(key) && m[key].is_string() && !m[key].get<std::string>().empty())
      return Status::invalid_argument(std::string("model.") + key + " is not supported");
  if (!m.contains("vocab") || !m["vocab"].is_object()) return Status::data_loss("model.vocab must be an object");
  const json& vocab = m["vocab"];
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > (1 << 24))
      return Status::data_loss("model.vocab['" + it.key() + "'] is not a valid id");
    max_id = std::max(max_id, it->get<int32_t>());
  }
  for (const AddedToken& a : added_) max_id = std::max(max_id, a.id);
  token_text_.assign(static_cast<size_t>(max_id + 1), std::string());
  std::vector<uint8_t> in_vocab(token_text_.size(), 0);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    token_text_[it->get<int32_t>()] = it.key();
    in_vocab[it->get<int32_t>()] = 1;
  }
  for (const AddedToken& a : added_)
    if (token_text_[a.id].empty()) token_text_[a.id] = a.content;

  // BPE pieces: raw bytes for byte-level vocabularies.
  const bool byte_level = pretok_.byte_level();
  std::vector<std::string> pieces(token_text_.size());
  for (size_t id = 0; id < pieces.size(); ++id) {
    if (!in_vocab[id]) continue;
    if (!byte_level) pieces[id] = token_text_[id];
    else if (!byte_level_decode(token_text_[id], &pieces[id])) pieces[id].clear();
  }
  PieceTable by_text;  // tokenizer.json spelling -> id, to resolve merges
  for (size_t id = 0; id < token_text_.size(); ++id)
    if (in_vocab[id]) by_text.insert(token_text_[id], static_cast<int32_t>(id));
  std::vector<std::pair<int32_t, int32_t>> merges;
  if (m.contains("merges")) {
    if (!m["merges"].is_array()) return Status::data_loss("model.merges must be an array");
    merges.reserve(m["merges"].size());
    for (const json& e : m["merges"]) {
      std::string a, b;
      if (e.is_string()) {
        const std::string& line = e.get_ref<const std::string&>();
        const size_t sp = line.find(' ');
        if (sp == std::string::npos) return Status::data_loss("merge '" + line + "' is not 'a b'");
        a = line.substr(0, sp);
        b = line.substr(sp + 1);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        a = e[0].get<std::string>();
        b = e[1].get<std::string>();
      } else {
        return Status::data_loss("model.merges entries must be \"a b\" strings or [\"a\", \"b\"] pairs");
      }
      const int32_t ia = by_text.find(a), ib = by_text.find(b);
      if (ia < 0 || ib < 0) return Status::data_loss("merge '" + a + " " + b + "' uses a piece not in the vocabulary");
      merges.emplace_back(ia, ib);
    }
  }
  BpeModel::Options o;
  o.byte_level = byte_level;
  o.byte_fallback = m.value("byte_fallback", false);
  o.ignore_merges = m.value("ignore_merges", false);
  o.fuse_unk = m.value("fuse_unk", false);
  if (m.contains("unk_token") && m["unk_token"].is_string()) o.unk_id = by_text.find(m["unk_token"].get<std::string>());
  auto bpe = BpeModel::build(pieces, merges, o);
  if (!bpe) return bpe.status();
  bpe_ = std::move(bpe).value();

  // Word-by-word BPE is exact when no piece holds a non-U+2581 character
  // followed by U+2581: then no merge can cross such a boundary.
  split_words_ = false;
  if (!byte_level && pretok_.is_identity()) {
    split_words_ = true;
    for (size_t id = 0; id < pieces.size() && split_words_; ++id) {
      const std::string& p = pieces[id];
      for (size_t pos = p.find(kMeta, 1); pos != std::string::npos; pos = p.find(kMeta, pos + 1)) {
        if (pos < kMeta.size() || p.compare(pos - kMeta.size(), kMeta.size(), kMeta) != 0) {
          split_words_ = false;
          break;
        }
      }
    }
  }
  return Status::ok();
}

Status HfTokenizer::parse_decoder(const void* decoder_json) {
  const json& d = at(decoder_json);
  std::vector<const json*> steps;
  if (d.is_object() && d.value("type", "") == "Sequence" && d.contains("decoders") && d["decoders"].is_array()) {
    for (const json& s : d["decoders"]) steps.push_back(&s);
  } else if (d.is_object()) {
    steps.push_back(&d);
  }
  bool byte_level = false, byte_fallback = false;
  std::vector<std::pair<std::string, std::string>> replaces;
  for (const json* s : steps) {
    const std::string type = s->value("type", "");
    if (type == "ByteLevel") {
      byte_level = true;
    } else if (type == "ByteFallback") {
      byte_fallback = true;
    } else if (type == "Fuse") {
    } else if (type == "Replace") {
      const json p = s->value("pattern", json::object());
      if (!p.contains("String") || !p["String"].is_string())
        return Status::invalid_argument("decoder Replace: only String patterns are supported");
      replaces.emplace_back(p["String"].get<std::string>(), s->value("content", ""));
    } else if (type == "Strip") {
      if (s->value("content", " ") == " " && s->value("start", 0) > 0) strip_leading_space_ = true;
    } else if (type == "Metaspace") {
      replaces.emplace_back(s->value("replacement", std::string(kMeta)), " ");
      const std::string scheme = s->value("prepend_scheme", s->value("add_prefix_space", true) ? "always" : "never");
      if (scheme != "never") strip_leading_space_ = true;
    } else {
      return Status::invalid_argument("decoder type '" + type +
                                      "' is not supported (supported: Sequence, ByteLevel, ByteFallback, Fuse, "
                                      "Replace, Strip, Metaspace)");
    }
  }
  decoded_.assign(token_text_.size(), std::string());
  std::vector<uint8_t> is_added(token_text_.size(), 0);
  for (const AddedToken& a : added_) is_added[a.id] = 1;
  for (size_t id = 0; id < token_text_.size(); ++id) {
    if (special_[id]) continue;
    const std::string& t = token_text_[id];
    if (is_added[id]) {
      decoded_[id] = t;
      continue;
    }
    if (byte_level) {
      if (!byte_level_decode(t, &decoded_[id])) decoded_[id] = t;
      continue;
    }
    const int b = byte_fallback ? byte_piece_value(t) : -1;
    if (b >= 0) {
      decoded_[id] = std::string(1, static_cast<char>(b));
      continue;
    }
    std::string s = t;
    for (const auto& [from, to] : replaces) s = replace_all(std::move(s), from, to);
    decoded_[id] = std::move(s);
  }
  return Status::ok();
}

Status HfTokenizer::parse_post_processor(const void* pp_json) {
  const json& p = at(pp_json);
  if (!p.is_object()) return Status::ok();
  const std::string type = p.value("type", "");
  if (type == "Sequence" && p.contains("processors") && p["processors"].is_array()) {
    for (const json& sub : p["processors"]) {
      Status s = parse_post_processor(&sub);
      if (!s.is_ok()) return s;
    }
  } else if (type == "TemplateProcessing") {
    if (!p.contains("single") || !p["single"].is_array())
      return Status::data_loss("post_processor: 'single' must be an array");
    const json specials = p.value("special_tokens", json::object());
    bool after_sequence = false;
    for (const json& item : p["single"]) {
      if (item.contains("Sequence")) {
        after_sequence = true;
        continue;
      }
      if (!item.contains("SpecialToken")) continue;
      const std::string name = item["SpecialToken"].value("id", "");
      std::vector<int32_t> ids;
      if (specials.contains(name) && specials[name].contains("ids") && specials[name]["ids"].is_array()) {
        for (const json& v : specials[name]["ids"])
          if (v.is_number_integer()) ids.push_back(v.get<int32_t>());
      } else if (id_of(name) >= 0) {
        ids.push_back(id_of(name));
      } else {
        return Status::data_loss("post_processor: unknown special token '" + name + "'");
      }
      auto& dst = after_sequence ? suffix_ids_ : prefix_ids_;
      dst.insert(dst.end(), ids.begin(), ids.end());
    }
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    for (const char* key : {"cls", "sep"}) {
      const json v = p.value(key, json());
      if (v.is_array() && v.size() == 2 && v[1].is_number_integer())
        (std::string(key) == "cls" ? prefix_ids_ : suffix_ids_).push_back(v[1].get<int32_t>());
    }
  } else if (type != "ByteLevel") {
    return Status::invalid_argument("post_processor type '" + type +
                                    "' is not supported (supported: Sequence, TemplateProcessing, ByteLevel, "
                                    "RobertaProcessing, BertProcessing)");
  }
  return Status::ok();
}

Status HfTokenizer::build(const void* json_root, const HfTokenizerConfig& cfg) {
  const json& root = at(json_root);
  if (root.contains("added_tokens")) {
    if (!root["added_tokens"].is_array()) return Status::data_loss("'added_tokens' must be an array");
    for (const json& a : root["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 ||
          a["id"].get<int64_t>() > (1 << 24) || !a.contains("content") || !a["content"].is_string() ||
          a["content"].get<std::string>().empty())
        return Status::data_loss("'added_tokens' entries need an id and a non-empty content");
      added_.push_back({a["content"].get<std::string>(), a["id"].get<int32_t>(), a.value("special", false),
                        a.value("lstrip", false), a.value("rstrip", false)});
    }
  }
  auto norm = HfNormalizer::parse(root.value("normalizer", json()));
  if (!norm) return norm.status();
  normalizer_ = std::move(norm).value();
  auto pre = HfPreTokenizer::parse(root.value("pre_tokenizer", json()));
  if (!pre) return pre.status();
  pretok_ = std::move(pre).value();
  if (!root.contains("model")) return Status::data_loss("no 'model'");
  Status s = parse_model(&root["model"]);
  if (!s.is_ok()) return s;

  special_.assign(token_text_.size(), 0);
  for (const AddedToken& a : added_) special_[a.id] = a.special ? 1 : 0;
  for (size_t i = 0; i < added_.size(); ++i)
    added_by_byte_[static_cast<unsigned char>(added_[i].content[0])].push_back(static_cast<int32_t>(i));
  for (auto& v : added_by_byte_)
    std::stable_sort(v.begin(), v.end(),
                     [&](int32_t x, int32_t y) { return added_[x].content.size() > added_[y].content.size(); });

  const json dec = root.value("decoder", json());
  s = parse_decoder(&dec);
  if (!s.is_ok()) return s;
  const json pp = root.value("post_processor", json());
  s = parse_post_processor(&pp);
  if (!s.is_ok()) return s;

  // Special ids.
  if (cfg.bos_token) bos_id_ = id_of(*cfg.bos_token);
  if (bos_id_ < 0 && cfg.bos_token_id && is_valid_id(*cfg.bos_token_id)) bos_id_ = *cfg.bos_token_id;
  if (bos_id_ < 0 && !prefix_ids_.empty()) bos_id_ = prefix_ids_.front();
  auto add_eos = [&](int32_t id) {
    if (is_valid_id(id) && std::find(eos_ids_.begin(), eos_ids_.end(), id) == eos_ids_.end()) eos_ids_.push_back(id);
  };
  if (cfg.eos_token) add_eos(id_of(*cfg.eos_token));
  for (int32_t id : cfg.eos_token_ids) add_eos(id);
  if (cfg.add_bos_token && bos_id_ >= 0) {
    std::erase(prefix_ids_, bos_id_);
    if (*cfg.add_bos_token) prefix_ids_.insert(prefix_ids_.begin(), bos_id_);
  }
  if (cfg.add_eos_token && !eos_ids_.empty()) {
    std::erase(suffix_ids_, eos_ids_.front());
    if (*cfg.add_eos_token) suffix_ids_.push_back(eos_ids_.front());
  }
  for (int32_t id : prefix_ids_)
    if (!is_valid_id(id))
      return Status::data_loss("post_processor adds id " + std::to_string(id) + ", outside the vocabulary");
  for (int32_t id : suffix_ids_)
    if (!is_valid_id(id))
      return Status::data_loss("post_processor adds id " + std::to_string(id) + ", outside the vocabulary");
  chat_template_ = cfg.chat_template;
  return Status::ok();
}

int32_t HfTokenizer::id_of(std::string_view token) const {
  for (const AddedToken& a : added_)
    if (a.content == token) return a.id;
  for (size_t id = 0; id < token_text_.size(); ++id)
    if (token_text_[id] == token) return static_cast<int32_t>(id);
  return -1;
}

bool HfTokenizer::is_special(int32_t id) const { return is_valid_id(id) && special_[id] != 0; }

void HfTokenizer::split_added(std::string_view text, bool parse_special, std::vector<Segment>* out) const {
  size_t seg_start = 0;  // start of the pending text segment
  size_t i = 0;
  while (i < text.size()) {
    const AddedToken* hit = nullptr;
    for (int32_t k : added_by_byte_[static_cast<unsigned char>(text[i])]) {
      const AddedToken& a = added_[k];
      if ((parse_special || !a.special) && text.compare(i, a.content.size(), a.content) == 0) {
        hit = &a;
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    size_t text_end = i;
    if (hit->lstrip)
      while (text_end > seg_start && ascii_space(text[text_end - 1])) --text_end;
    if (text_end > seg_start) out->push_back({text.substr(seg_start, text_end - seg_start), -1});
    out->push_back({{}, hit->id});
    i += hit->content.size();
    if (hit->rstrip)
      while (i < text.size() && ascii_space(text[i])) ++i;
    seg_start = i;
  }
  if (seg_start < text.size()) out->push_back({text.substr(seg_start), -1});
}

void HfTokenizer::encode_segment(std::string_view text, bool first, BpeModel::Scratch& scratch,
                                 std::vector<int32_t>& out) const {
  std::string normalized;
  if (!normalizer_.is_identity()) {
    normalized = normalizer_.apply(text);
    text = normalized;
  }
  if (!pretok_.is_identity()) {
    std::vector<std::string> pieces;
    pretok_.split(text, first, &pieces);
    for (const std::string& p : pieces) bpe_.encode_word(p, scratch, out);
    return;
  }
  if (!split_words_) {
    bpe_.encode_word(text, scratch, out);
    return;
  }
  // Words start at each U+2581 that follows another character.
  size_t start = 0;
  for (size_t pos = text.find(kMeta, 1); pos != std::string_view::npos; pos = text.find(kMeta, pos + kMeta.size())) {
    if (pos >= kMeta.size() && text.compare(pos - kMeta.size(), kMeta.size(), kMeta) == 0) continue;
    bpe_.encode_word(text.substr(start, pos - start), scratch, out);
    start = pos;
  }
  bpe_.encode_word(text.substr(start), scratch, out);
}

std::vector<int32_t> HfTokenizer::encode_with(std::string_view text, const EncodeOptions& opts) const {
  std::vector<int32_t> out;
  if (opts.add_bos) out = prefix_ids_;
  std::vector<Segment> segs;
  split_added(text, opts.parse_special, &segs);
  BpeModel::Scratch scratch;
  for (size_t k = 0; k < segs.size(); ++k) {
    if (segs[k].id >= 0) out.push_back(segs[k].id);
    else encode_segment(segs[k].text, segs[k].text.data() == text.data(), scratch, out);
  }
  if (opts.add_bos) out.insert(out.end(), suffix_ids_.begin(), suffix_ids_.end());
  return out;
}

std::string_view HfTokenizer::decode_piece(int32_t id) const {
  return is_valid_id(id) ? std::string_view(decoded_[id]) : std::string_view();
}

std::string_view HfTokenizer::token_text(int32_t id) const {
  return is_valid_id(id) ? std::string_view(token_text_[id]) : std::string_view();
}

}  // namespace pagoda
