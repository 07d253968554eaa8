// Hugging Face tokenizer.json tokenizers (HfTokenizer) against reference ids
// from an independent implementation (../shared/tokenizers/, see its
// README), SentencePiece tokenizer.model via load_tokenizer, the BPE merge
// loop against a plain O(n^2) BPE written here, and small synthetic
// tokenizer.json files for pipeline parts the real files do not use.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_bytelevel.h"
#include "tokenizer/tokenizer_hf.h"
#include "tokenizer/tokenizer_sentencepiece.h"

using namespace pagoda;
using nlohmann::json;

namespace {

const std::string kSharedDir = std::string(PAGODA_SOURCE_DIR) + "/../shared/tokenizers/";

bool have_shared() {
  static const bool ok = std::filesystem::exists(kSharedDir + "gpt2/tokenizer.json");
  if (!ok) WARN("skipped: " << kSharedDir << " is missing (reference tokenizers)");
  return ok;
}

std::string model_path(const std::string& file) {
  const std::string local = std::string(PAGODA_SOURCE_DIR) + "/models/" + file;
  if (std::ifstream(local).good()) return local;
  return std::string(PAGODA_SOURCE_DIR) + "/../shared/models/" + file;
}

const Tokenizer& shared_tok(const std::string& dir) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(dir);
  if (it == cache.end()) {
    auto tok = load_tokenizer(kSharedDir + dir);
    INFO(tok.status().message());
    REQUIRE(tok.is_ok());
    it = cache.emplace(dir, std::move(tok).value()).first;
  }
  return *it->second;
}

std::vector<json> reference_lines(const std::string& dir) {
  std::ifstream in(kSharedDir + dir + "/reference_tokens.jsonl");
  std::vector<json> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s + "]";
}

void check_reference(const std::string& dir) {
  const Tokenizer& tok = shared_tok(dir);
  const auto lines = reference_lines(dir);
  REQUIRE(lines.size() >= 40);
  for (const json& l : lines) {
    const std::string text = l["text"];
    const bool add_special = l["add_special_tokens"];
    const auto expected = l["ids"].get<std::vector<int32_t>>();
    INFO(dir << " text: " << json(text).dump() << " add_special_tokens=" << add_special);
    const auto ids = tok.encode_with(text, {add_special, true});
    INFO("expected " << show(expected) << "\n     got " << show(ids));
    CHECK(ids == expected);
    // Token spellings as in tokenizer.json.
    const auto tokens = l["tokens"].get<std::vector<std::string>>();
    for (size_t i = 0; i < tokens.size() && i < ids.size(); ++i) CHECK(tok.token_text(ids[i]) == tokens[i]);
    // Decoding drops special tokens, like skip_special_tokens.
    CHECK(tok.decode(expected) == l["decoded_skip_special"].get<std::string>());
    // The streaming detokenizer gives the same text (it drops the dummy
    // prefix only after BOS: without one it is continuing a sequence).
    StreamingDetokenizer detok(tok);
    std::string streamed;
    for (int32_t id : expected) streamed += detok.push(id);
    streamed += detok.flush();
    if (!tok.adds_dummy_prefix() || (!expected.empty() && expected[0] == tok.bos_id()))
      CHECK(streamed == tok.decode(expected));
  }
}

}  // namespace

TEST_CASE("hf: GPT-2 tokenizer.json matches the reference ids") {
  if (!have_shared()) return;
  check_reference("gpt2");
}

TEST_CASE("hf: SmolLM2 tokenizer.json (Digits + ByteLevel) matches the reference ids") {
  if (!have_shared()) return;
  check_reference("SmolLM2-135M-Instruct");
}

TEST_CASE("hf: TinyLlama tokenizer.json (SentencePiece-style BPE) matches the reference ids") {
  if (!have_shared()) return;
  check_reference("TinyLlama-1.1B-Chat-v1.0");
}

TEST_CASE("hf: special ids and configuration come from the model directory") {
  if (!have_shared()) return;
  const Tokenizer& tiny = shared_tok("TinyLlama-1.1B-Chat-v1.0");
  CHECK(tiny.vocab_size() == 32000);
  CHECK(tiny.bos_id() == 1);
  CHECK(tiny.eos_ids() == std::vector<int32_t>{2});
  CHECK(tiny.adds_dummy_prefix());
  CHECK(tiny.chat_template().find("<|user|>") != std::string::npos);
  CHECK(tiny.decode_piece(1).empty());   // control tokens decode to nothing
  CHECK(tiny.decode_piece(13) == "\n");  // <0x0A>
  CHECK(tiny.decode_piece(15043) == " Hello");

  const Tokenizer& smol = shared_tok("SmolLM2-135M-Instruct");
  CHECK(smol.vocab_size() == 49152);
  CHECK(smol.bos_id() == 1);                         // bos_token <|im_start|>
  CHECK(smol.eos_ids() == std::vector<int32_t>{2});  // eos_token <|im_end|> = generation_config's 2
  CHECK(!smol.adds_dummy_prefix());
  CHECK(smol.encode("Hi", true) == smol.encode("Hi", false));  // no BOS added by its post-processor
  CHECK(smol.decode_piece(216) == " ");                        // "Ġ" is a raw space
  CHECK(smol.chat_template().find("<|im_start|>") != std::string::npos);

  const Tokenizer& gpt2 = shared_tok("gpt2");
  CHECK(gpt2.vocab_size() == 50257);
  CHECK(gpt2.eos_ids() == std::vector<int32_t>{50256});
  CHECK(gpt2.chat_template().empty());
  CHECK(gpt2.decode_piece(198) == "\n");
}

TEST_CASE("hf: special-token text is plain text when parse_special is off") {
  if (!have_shared()) return;
  const Tokenizer& smol = shared_tok("SmolLM2-135M-Instruct");
  const std::string text = "<|im_start|>user\nHi<|im_end|>";
  const auto parsed = smol.encode_with(text, {false, true});
  CHECK(parsed.front() == 1);
  CHECK(parsed.back() == 2);
  const auto plain = smol.encode_with(text, {false, false});
  for (int32_t id : plain) CHECK(id > 16);  // no added token at all
  CHECK(smol.decode(plain) == text);
  // GPT-2's "<|endoftext|>" likewise.
  const Tokenizer& gpt2 = shared_tok("gpt2");
  CHECK(gpt2.encode_with("<|endoftext|>", {false, true}) == std::vector<int32_t>{50256});
  CHECK(gpt2.encode_with("<|endoftext|>", {false, false}).size() > 1);
}

TEST_CASE("hf: byte-level tokens decode to raw bytes, streamed into whole characters") {
  if (!have_shared()) return;
  const Tokenizer& gpt2 = shared_tok("gpt2");
  const std::string text = "🦙 and 中文";
  const auto ids = gpt2.encode(text, false);
  std::string raw;
  for (int32_t id : ids) raw += gpt2.decode_piece(id);
  CHECK(raw == text);
  StreamingDetokenizer detok(gpt2);
  std::string out;
  for (int32_t id : ids) {
    const std::string d = detok.push(id);
    // Every delta is whole characters: valid UTF-8 on its own.
    CHECK(d.find("\xEF\xBF\xBD") == std::string::npos);
    out += d;
  }
  CHECK(out + detok.flush() == text);
}

TEST_CASE("hf: TinyLlama tokenizer.json agrees with SentencePiece tokenizer.model and tokenizer.bin") {
  if (!have_shared()) return;
  auto sp = load_tokenizer(model_path("tokenizer.model"));
  auto bin = load_tokenizer(model_path("tokenizer.bin"));
  if (!sp.is_ok() || !bin.is_ok()) {
    WARN("skipped: models/tokenizer.model or tokenizer.bin missing");
    return;
  }
  CHECK(dynamic_cast<const SentencePieceTokenizer*>(sp->get()) != nullptr);
  const Tokenizer& hf = shared_tok("TinyLlama-1.1B-Chat-v1.0");
  int compared = 0;
  for (const json& l : reference_lines("TinyLlama-1.1B-Chat-v1.0")) {
    const std::string text = l["text"];
    if (text.find("<s>") != std::string::npos || text.find("</s>") != std::string::npos) continue;  // README
    INFO(json(text).dump());
    const auto ids = hf.encode(text, true);
    CHECK((*sp)->encode(text, true) == ids);
    CHECK((*bin)->encode(text, true) == ids);
    CHECK((*sp)->decode(ids) == hf.decode(ids));
    ++compared;
  }
  CHECK(compared > 30);
  CHECK((*sp)->eos_ids().front() == 2);
  CHECK((*sp)->adds_dummy_prefix());
}

// ---- the merge loop against a plain BPE ----------------------------------------

namespace {

// Obviously-correct BPE: repeatedly merge the leftmost pair of lowest rank.
std::vector<std::string> plain_bpe(const std::string& word,
                                   const std::map<std::pair<std::string, std::string>, int>& ranks) {
  std::vector<std::string> syms;
  for (char c : word) syms.emplace_back(1, c);
  for (;;) {
    int best = -1;
    size_t at = 0;
    for (size_t i = 0; i + 1 < syms.size(); ++i) {
      auto it = ranks.find({syms[i], syms[i + 1]});
      if (it != ranks.end() && (best < 0 || it->second < best)) {
        best = it->second;
        at = i;
      }
    }
    if (best < 0) return syms;
    syms[at] += syms[at + 1];
    syms.erase(syms.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
}

}  // namespace

TEST_CASE("hf: the heap BPE equals a plain BPE on random byte strings (GPT-2 merges)") {
  if (!have_shared()) return;
  std::ifstream in(kSharedDir + "gpt2/tokenizer.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const json j = json::parse(ss.str());
  std::map<std::pair<std::string, std::string>, int> ranks;
  int r = 0;
  for (const json& m : j["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    const size_t sp = s.find(' ');
    std::string a, b;
    REQUIRE(byte_level_decode(s.substr(0, sp), &a));
    REQUIRE(byte_level_decode(s.substr(sp + 1), &b));
    ranks.emplace(std::make_pair(a, b), r++);
  }
  std::vector<std::string> vocab_bytes(50257);
  for (auto it = j["model"]["vocab"].begin(); it != j["model"]["vocab"].end(); ++it)
    REQUIRE(byte_level_decode(it.key(), &vocab_bytes[it->get<int>()]));
  std::vector<std::pair<int32_t, int32_t>> merges;
  // Build the model directly from the pairs (bypassing pre-tokenization).
  std::map<std::string, int32_t> id_of;
  for (size_t i = 0; i < vocab_bytes.size(); ++i) id_of.emplace(vocab_bytes[i], static_cast<int32_t>(i));
  std::vector<std::pair<std::pair<std::string, std::string>, int>> by_rank(ranks.begin(), ranks.end());
  std::sort(by_rank.begin(), by_rank.end(), [](auto& x, auto& y) { return x.second < y.second; });
  for (auto& [p, rank] : by_rank) merges.emplace_back(id_of.at(p.first), id_of.at(p.second));
  BpeModel::Options o;
  o.byte_level = true;
  auto bpe = BpeModel::build(vocab_bytes, merges, o);
  REQUIRE(bpe.is_ok());
  std::mt19937 rng(7);
  const std::string alphabet = "aaeeiinnssttrrll  \n..,,the ing ion";
  BpeModel::Scratch scratch;
  for (int t = 0; t < 300; ++t) {
    std::string w;
    const int len = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < len; ++i)
      w += (rng() % 8 == 0) ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    std::vector<int32_t> ids;
    bpe->encode_word(w, scratch, ids);
    std::vector<std::string> got;
    for (int32_t id : ids) got.push_back(vocab_bytes[id]);
    INFO(json(byte_level_encode(w)).dump());
    CHECK(got == plain_bpe(w, ranks));
  }
}

TEST_CASE("hf: byte-level alphabet round trip") {
  for (int b = 0; b < 256; ++b) {
    std::string one(1, static_cast<char>(b)), back;
    REQUIRE(byte_level_decode(byte_level_encode(one), &back));
    CHECK(back == one);
  }
  CHECK(byte_level_encode(" \n") == "\xC4\xA0\xC4\x8A");  // "ĠĊ"
  std::string out;
  CHECK(!byte_level_decode("\xE4\xB8\xAD", &out));  // 中 is not in the alphabet
}

// ---- synthetic tokenizer.json files ----------------------------------------------

namespace {

std::unique_ptr<HfTokenizer> synth(const json& j, const HfTokenizerConfig& cfg = {}) {
  auto tok = HfTokenizer::parse(j.dump(), cfg, "synthetic");
  INFO(tok.status().message());
  REQUIRE(tok.is_ok());
  return std::move(tok).value();
}

// A tiny SentencePiece-style vocabulary with Metaspace pre-tokenization,
// array-form merges and an lstrip/rstrip added token.
json metaspace_json() {
  const std::string m = "\xE2\x96\x81";
  json vocab = {{"<unk>", 0}, {"<s>", 1},    {"</s>", 2}, {m, 3},        {"a", 4}, {"b", 5},
                {m + "a", 6}, {m + "ab", 7}, {"ab", 8},   {"<0x21>", 9}, {"c", 10}};
  return {{"added_tokens",
           json::array({{{"id", 1}, {"content", "<s>"}, {"special", true}},
                        {{"id", 2}, {"content", "</s>"}, {"special", true}},
                        {{"id", 11}, {"content", "<mask>"}, {"special", true}, {"lstrip", true}, {"rstrip", true}}})},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", m}, {"prepend_scheme", "first"}, {"split", true}}},
          {"post_processor",
           {{"type", "TemplateProcessing"},
            {"single", json::array({{{"SpecialToken", {{"id", "<s>"}}}}, {{"Sequence", {{"id", "A"}}}}})},
            {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}}}}}}},
          {"decoder", {{"type", "Metaspace"}, {"replacement", m}, {"prepend_scheme", "first"}}},
          {"model",
           {{"type", "BPE"},
            {"vocab", vocab},
            {"merges", json::array({json::array({m, "a"}), json::array({"a", "b"}), json::array({m + "a", "b"})})},
            {"byte_fallback", true},
            {"unk_token", "<unk>"},
            {"fuse_unk", true}}}};
}

}  // namespace

TEST_CASE("hf: Metaspace pre-tokenizer, array merges, byte fallback, unk fusing, lstrip/rstrip") {
  auto tok = synth(metaspace_json());
  // "ab ab": "▁ab" "▁ab" -> 7 7 (merge ▁a first, then ▁a+b).
  CHECK(tok->encode("ab ab", false) == std::vector<int32_t>{7, 7});
  CHECK(tok->encode("ab ab", true) == std::vector<int32_t>{1, 7, 7});
  // "b!": "▁" can't merge with b ("▁b" not a piece): ▁ b, then '!' by byte fallback.
  CHECK(tok->encode("b!", false) == std::vector<int32_t>{3, 5, 9});
  // "éé" has no piece and no <0xC3>: one fused <unk>.
  CHECK(tok->encode("aéé", false) == std::vector<int32_t>{6, 0});
  // <mask> swallows the spaces around it; prepend_scheme "first" adds no
  // U+2581 to the text after it.
  CHECK(tok->encode("ab  <mask>  ab", false) == std::vector<int32_t>{7, 11, 8});
  CHECK(tok->adds_dummy_prefix());
  CHECK(tok->decode(std::vector<int32_t>{1, 7, 7}) == "ab ab");
  CHECK(tok->decode_piece(9) == "<0x21>");  // no ByteFallback decoder here
}

TEST_CASE("hf: tokenizer_config add_bos_token / add_eos_token override the post-processor") {
  HfTokenizerConfig cfg;
  cfg.add_bos_token = false;
  cfg.add_eos_token = true;
  cfg.eos_token = "</s>";
  cfg.bos_token = "<s>";
  auto tok = synth(metaspace_json(), cfg);
  CHECK(tok->encode("ab", true) == std::vector<int32_t>{7, 2});
  CHECK(tok->bos_id() == 1);
  CHECK(tok->eos_ids() == std::vector<int32_t>{2});
}

TEST_CASE("hf: Split behaviors, NFC, ignore_merges, Sequence post-processor") {
  // Byte-level vocabulary over "a", "b", "c", " " with a Split on spaces.
  auto make = [](const std::string& behavior, bool invert, bool ignore_merges) {
    json vocab = {
        {"a", 0},    {"b", 1}, {"c", 2}, {"\xC4\xA0", 3}, {"ab", 4}, {"abc", 5}, {byte_level_encode("\xC3\xA9"), 6},
        {"<bos>", 7}};
    return json{
        {"added_tokens", json::array({{{"id", 7}, {"content", "<bos>"}, {"special", true}}})},
        {"normalizer", {{"type", "NFC"}}},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           json::array({{{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", behavior}, {"invert", invert}},
                        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
        {"post_processor",
         {{"type", "Sequence"},
          {"processors", json::array({{{"type", "ByteLevel"}},
                                      {{"type", "TemplateProcessing"},
                                       {"single", json::array({{{"SpecialToken", {{"id", "<bos>"}}}},
                                                               {{"Sequence", {{"id", "A"}}}}})},
                                       {"special_tokens", {{"<bos>", {{"id", "<bos>"}, {"ids", {7}}}}}}}})}}},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model",
         {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"a b"})}, {"ignore_merges", ignore_merges}}}};
  };
  const std::vector<int32_t> a_b_c = {0, 1, 2};
  CHECK(synth(make("Removed", false, false))->encode("ab c", false) == std::vector<int32_t>{4, 2});
  CHECK(synth(make("Isolated", false, false))->encode("ab c", false) == std::vector<int32_t>{4, 3, 2});
  CHECK(synth(make("MergedWithPrevious", false, false))->encode("ab c", false) == std::vector<int32_t>{4, 3, 2});
  CHECK(synth(make("MergedWithNext", false, false))->encode("c ab", false) == std::vector<int32_t>{2, 3, 4});
  CHECK(synth(make("Removed", true, false))->encode("ab c", false) == std::vector<int32_t>{3});  // keeps the spaces
  // ignore_merges: "abc" is a piece, so it is one token although no merge makes it.
  CHECK(synth(make("Removed", false, false))->encode("abc", false) == std::vector<int32_t>{4, 2});
  CHECK(synth(make("Removed", false, true))->encode("abc", false) == std::vector<int32_t>{5});
  // NFC: "e" + U+0301 composes to é (C3 A9) = id 6 (BPE over its two bytes
  // needs no merge: it is a single piece only with ignore_merges).
  CHECK(synth(make("Removed", false, true))->encode("e\xCC\x81", false) == std::vector<int32_t>{6});
  // Sequence post-processor adds <bos>.
  CHECK(synth(make("Removed", false, false))->encode("c", true) == std::vector<int32_t>{7, 2});
}

TEST_CASE("hf: unsupported pipeline parts and broken files are errors, not guesses") {
  json j = metaspace_json();
  j["normalizer"] = {{"type", "BertNormalizer"}};
  auto r = HfTokenizer::parse(j.dump(), {}, "x.json");
  REQUIRE(!r.is_ok());
  CHECK(r.status().message().find("BertNormalizer") != std::string::npos);
  j = metaspace_json();
  j["model"]["type"] = "Unigram";
  CHECK(!HfTokenizer::parse(j.dump(), {}, "x.json").is_ok());
  j = metaspace_json();
  j["model"]["merges"].push_back(json::array({"c", "zz"}));  // "zz" is not a piece
  CHECK(HfTokenizer::parse(j.dump(), {}, "x.json").status().code() == StatusCode::kDataLoss);
  j = metaspace_json();
  j["model"]["merges"].push_back(json::array({"c", "c"}));  // "cc" is not a piece: the merge is skipped
  CHECK(synth(j)->encode("cc", false) == std::vector<int32_t>{3, 10, 10});
  CHECK(HfTokenizer::parse("{not json", {}, "x.json").status().code() == StatusCode::kDataLoss);
  CHECK(load_tokenizer("/nonexistent/dir/tokenizer.json").status().code() == StatusCode::kNotFound);
  const std::string empty_dir = (std::filesystem::temp_directory_path() / "pagoda_hf_tok_empty").string();
  std::filesystem::create_directories(empty_dir);
  CHECK(load_tokenizer(empty_dir).status().code() == StatusCode::kNotFound);
}

TEST_CASE("hf: pagoda tokenize reads tokenizer.json, tokenizer.model and model directories", "[cli]") {
  const char* bin = std::getenv("PAGODA_BIN");
  if (bin == nullptr || !std::ifstream(bin).good()) {
    WARN("PAGODA_BIN not set or missing; skipping the CLI check");
    return;
  }
  if (!have_shared()) return;
  auto run = [](const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    return std::make_pair(pclose(p), out);
  };
  const Tokenizer& smol = shared_tok("SmolLM2-135M-Instruct");
  const std::string dir = kSharedDir + "SmolLM2-135M-Instruct";
  const std::string text = "<|im_start|>user 12 héllo";
  auto [rc, out] = run(std::string(bin) + " tokenize --tokenizer '" + dir + "' '" + text + "'");
  CHECK(rc == 0);
  CHECK(out == show(smol.encode_with(text, {true, true})) + "\n");
  auto [rc2, out2] =
      run(std::string(bin) + " tokenize --no-special --tokenizer '" + dir + "/tokenizer.json' '" + text + "'");
  CHECK(rc2 == 0);
  CHECK(out2 == show(smol.encode_with(text, {false, false})) + "\n");
  CHECK(out2 != out);
  const Tokenizer& tiny = shared_tok("TinyLlama-1.1B-Chat-v1.0");
  auto [rc3, out3] = run("printf '\"a b\"\\n\"\"\\n' | " + std::string(bin) + " tokenize --jsonl --tokenizer '" +
                         kSharedDir + "TinyLlama-1.1B-Chat-v1.0'");
  CHECK(rc3 == 0);
  CHECK(out3 == show(tiny.encode("a b", true)) + "\n" + show(tiny.encode("", true)) + "\n");
  if (std::filesystem::exists(model_path("tokenizer.model"))) {
    auto [rc4, out4] = run(std::string(bin) + " tokenize --tokenizer '" + model_path("tokenizer.model") + "' 'a b'");
    CHECK(rc4 == 0);
    CHECK(out4 == show(tiny.encode("a b", true)) + "\n");
  }
}
