// The tokenizer a GGUF file carries (GgufTokenizer) against llama.cpp's own
// tokenizer test cases (../shared/gguf/vocab: ggml-vocab-*.gguf with .inp
// strings and .out ids, see ../shared/gguf/README.md), stories260K's GGUF
// against the llama2.c tokenizer.bin its vocabulary came from, and small GGUF
// files built here for special tokens and for the errors.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "gguf/gguf_file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_bytelevel.h"
#include "tokenizer/tokenizer_gguf.h"
#include "tokenizer/tokenizer_llama2c.h"

using namespace pagoda;

namespace {

const std::string kGgufDir = std::string(PAGODA_SOURCE_DIR) + "/../shared/gguf/";

bool have_gguf() {
  static const bool ok = std::filesystem::exists(kGgufDir + "vocab/ggml-vocab-gpt-2.gguf");
  if (!ok) WARN("skipped: " << kGgufDir << " is missing (GGUF test files)");
  return ok;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(ids[i]);
  }
  return s + "]";
}

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

// As llama.cpp's tests/test-tokenizer-0.cpp reads them: each string of .inp
// ends with "\n__ggml_vocab_test__\n"; .out holds one line of ids per string.
std::vector<VocabCase> read_cases(const std::string& vocab) {
  const std::string inp = read_file(vocab + ".inp");
  const std::string out = read_file(vocab + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<VocabCase> cases;
  for (size_t pos = 0, hit; (hit = inp.find(sep, pos)) != std::string::npos; pos = hit + sep.size())
    cases.push_back({inp.substr(pos, hit - pos), {}});
  std::istringstream lines(out);
  std::string line;
  for (VocabCase& c : cases) {
    REQUIRE(std::getline(lines, line));
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
  }
  CHECK_FALSE(std::getline(lines, line));  // as many id lines as strings
  return cases;
}

std::unique_ptr<GgufTokenizer> load_vocab(const std::string& name) {
  auto tok = GgufTokenizer::load(kGgufDir + "vocab/ggml-vocab-" + name + ".gguf");
  INFO(tok.status().message());
  REQUIRE(tok.is_ok());
  return std::move(tok).value();
}

// Every .inp string encodes (no BOS, special text as plain text) to its
// .out ids and decodes back to itself.
void check_vocab(const std::string& name) {
  const auto tok = load_vocab(name);
  const auto cases = read_cases(kGgufDir + "vocab/ggml-vocab-" + name + ".gguf");
  REQUIRE(cases.size() >= 40);
  size_t encoded = 0, decoded = 0;
  for (const VocabCase& c : cases) {
    const std::vector<int32_t> ids = tok->encode_with(c.text, {false, false});
    INFO(name << ": text '" << c.text << "' gives " << show(ids) << ", llama.cpp " << show(c.ids));
    CHECK(ids == c.ids);
    encoded += ids == c.ids;
    CHECK(tok->decode(c.ids) == c.text);
    decoded += tok->decode(c.ids) == c.text;
  }
  WARN(name << ": " << encoded << "/" << cases.size() << " encoded as llama.cpp, " << decoded << "/" << cases.size()
            << " decoded back");
}

// A GGUF (version 3, no tensors) holding the key/values added, for tests.
class TinyGguf {
 public:
  void str(const std::string& key, const std::string& v) {
    head(key, 8);
    put_str(v);
  }
  void u32(const std::string& key, uint32_t v) {
    head(key, 4);
    put(v);
  }
  void boolean(const std::string& key, bool v) {
    head(key, 7);
    bytes_.push_back(v ? 1 : 0);
  }
  void strs(const std::string& key, const std::vector<std::string>& v) {
    head(key, 9);
    put(uint32_t{8});
    put(uint64_t{v.size()});
    for (const auto& s : v) put_str(s);
  }
  void i32s(const std::string& key, const std::vector<int32_t>& v) {
    head(key, 9);
    put(uint32_t{5});
    put(uint64_t{v.size()});
    for (int32_t x : v) put(x);
  }
  void f32s(const std::string& key, const std::vector<float>& v) {
    head(key, 9);
    put(uint32_t{6});
    put(uint64_t{v.size()});
    for (float x : v) put(x);
  }
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
    auto put64 = [&](uint64_t v) {
      for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    };
    put64(0);  // tensors
    put64(count_);
    out.insert(out.end(), bytes_.begin(), bytes_.end());
    return out;
  }
  Result<std::unique_ptr<GgufTokenizer>> tokenizer() {
    data_ = bytes();
    auto file = GgufFile::parse(data_, "tiny.gguf");
    if (!file) return file.status();
    return GgufTokenizer::from_gguf(**file);
  }

 private:
  template <typename T>
  void put(T v) {
    uint8_t b[sizeof v];
    std::memcpy(b, &v, sizeof v);
    bytes_.insert(bytes_.end(), b, b + sizeof v);
  }
  void put_str(const std::string& s) {
    put(uint64_t{s.size()});
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  void head(const std::string& key, uint32_t type) {
    ++count_;
    put_str(key);
    put(type);
  }
  std::vector<uint8_t> bytes_, data_;
  uint64_t count_ = 0;
};

// A byte-level vocabulary: the 256 byte tokens, "ab", "Ġab", "<|x|>"
// (control), "<u>" (user-defined).
TinyGguf tiny_gpt2(const std::string& pre) {
  TinyGguf g;
  g.str("tokenizer.ggml.model", "gpt2");
  if (!pre.empty()) g.str("tokenizer.ggml.pre", pre);
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_level_encode(std::string(1, static_cast<char>(b))));
  std::vector<int32_t> types(256, 1);
  for (const char* t : {"ab",
                        "\xC4\xA0"
                        "ab",
                        "<|x|>", "<u>"})
    tokens.push_back(t);
  types.insert(types.end(), {1, 1, 3, 4});
  g.strs("tokenizer.ggml.tokens", tokens);
  g.i32s("tokenizer.ggml.token_type", types);
  g.strs("tokenizer.ggml.merges", {"a b", "\xC4\xA0 ab"});
  g.u32("tokenizer.ggml.bos_token_id", 258);
  g.u32("tokenizer.ggml.eos_token_id", 258);
  return g;
}

}  // namespace

TEST_CASE("gguf tokenizer: llama-spm vocabulary matches llama.cpp's test ids") {
  if (!have_gguf()) return;
  check_vocab("llama-spm");
}

TEST_CASE("gguf tokenizer: phi-3 vocabulary matches llama.cpp's test ids") {
  if (!have_gguf()) return;
  check_vocab("phi-3");
}

TEST_CASE("gguf tokenizer: gpt-2 vocabulary matches llama.cpp's test ids") {
  if (!have_gguf()) return;
  check_vocab("gpt-2");
}

TEST_CASE("gguf tokenizer: starcoder vocabulary matches llama.cpp's test ids") {
  if (!have_gguf()) return;
  check_vocab("starcoder");
}

TEST_CASE("gguf tokenizer: special ids, add_bos and the chat template come from the file") {
  if (!have_gguf()) return;
  const auto spm = load_vocab("llama-spm");
  CHECK(spm->vocab_size() == 32000);
  CHECK(spm->bos_id() == 1);
  CHECK(spm->eos_ids() == std::vector<int32_t>{2});
  CHECK(spm->unk_id() == 0);
  CHECK(spm->add_bos());
  CHECK_FALSE(spm->add_eos());
  CHECK(spm->adds_dummy_prefix());
  CHECK(spm->encode("Hello", true) == std::vector<int32_t>{1, 15043});
  CHECK(spm->encode("Hello", false) == std::vector<int32_t>{15043});
  CHECK(spm->encode("", true) == std::vector<int32_t>{1});
  CHECK(spm->chat_template().empty());
  CHECK(spm->decode_piece(1).empty());   // control
  CHECK(spm->decode_piece(13) == "\n");  // <0x0A>
  CHECK(spm->token_text(13) == "<0x0A>");

  const auto gpt2 = load_vocab("gpt-2");
  CHECK(gpt2->bos_id() == 50256);
  CHECK(gpt2->eos_ids() == std::vector<int32_t>{50256});
  CHECK_FALSE(gpt2->add_bos());
  CHECK_FALSE(gpt2->adds_dummy_prefix());
  CHECK(gpt2->encode("Hello", true) == gpt2->encode("Hello", false));
  CHECK(gpt2->decode_piece(gpt2->encode(" world", false)[0]) == " world");

  const auto phi3 = load_vocab("phi-3");
  CHECK(phi3->bos_id() == 1);
  CHECK(phi3->eos_ids().front() == 32000);                                                           // <|endoftext|>
  CHECK(std::find(phi3->eos_ids().begin(), phi3->eos_ids().end(), 32007) != phi3->eos_ids().end());  // <|end|>
  CHECK(phi3->pad_id() == 32000);
  CHECK(phi3->add_bos());
  CHECK(phi3->chat_template().rfind("{{ bos_token }}", 0) == 0);

  const auto star = load_vocab("starcoder");
  CHECK(star->bos_id() == 0);
  CHECK(star->eos_ids().front() == 0);
  CHECK_FALSE(star->add_bos());
}

TEST_CASE("gguf tokenizer: control tokens are parsed only with parse_special, user-defined ones always") {
  if (!have_gguf()) return;
  const auto phi3 = load_vocab("phi-3");
  const std::string chat = "<|user|>\nHi<|end|>\n<|assistant|>";
  const auto special = phi3->encode_with(chat, {false, true});
  // Phi-3 (by llama.cpp's rule for it) drops the newline after <|user|> and <|end|>.
  CHECK(special == std::vector<int32_t>{32010, 6324, 32007, 32001});
  const auto plain = phi3->encode_with(chat, {false, false});
  CHECK(std::find(plain.begin(), plain.end(), 32010) == plain.end());
  CHECK(phi3->decode(special) == " Hi");  // control tokens print nothing
  CHECK(phi3->decode(plain) == chat);
  // "</s>" is user-defined in this file: always one token, even as plain text.
  const auto eos_text = phi3->encode_with("a</s>b", {false, false});
  CHECK(std::find(eos_text.begin(), eos_text.end(), 2) != eos_text.end());
  CHECK(phi3->decode_piece(2) == "</s>");

  const auto gpt2 = load_vocab("gpt-2");
  CHECK(gpt2->encode_with("a<|endoftext|>", {false, true}).back() == 50256);
  CHECK(gpt2->encode_with("a<|endoftext|>", {false, false}).size() > 2);
}

TEST_CASE("gguf tokenizer: stories260K's vocabulary tokenizes as llama2.c's tok512.bin") {
  if (!have_gguf()) return;
  auto gguf = load_tokenizer(kGgufDir + "stories260K-f32.gguf");
  INFO(gguf.status().message());
  REQUIRE(gguf.is_ok());
  std::string bin_path = std::string(PAGODA_SOURCE_DIR) + "/models/tok512.bin";
  if (!std::filesystem::exists(bin_path)) bin_path = std::string(PAGODA_SOURCE_DIR) + "/../shared/models/tok512.bin";
  auto bin = Llama2cTokenizer::load(bin_path);
  REQUIRE(bin.is_ok());
  const Tokenizer& g = **gguf;
  const Tokenizer& b = **bin;
  REQUIRE(g.vocab_size() == b.vocab_size());
  CHECK(g.bos_id() == b.bos_id());
  CHECK(g.eos_ids().front() == b.eos_ids().front());
  for (int32_t id = 0; id < g.vocab_size(); ++id) CHECK(g.decode_piece(id) == b.decode_piece(id));

  std::vector<std::string> texts = {"Once upon a time",
                                    "Once upon a time, there was a little girl named Lily.",
                                    "She liked to play outside.\nOne day, she saw a big, red ball!",
                                    "  two leading spaces",
                                    "Tim said, \"Let's go to the park.\" Mom smiled.",
                                    "numbers 123 4567 and symbols #@$%",
                                    "caf\xC3\xA9 na\xC3\xAFve \xE4\xB8\xAD\xE6\x96\x87",
                                    ""};
  std::mt19937 rng(29);
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?'\"\n-";
  for (int k = 0; k < 300; ++k) {
    std::string s;
    const size_t len = rng() % 60;
    for (size_t i = 0; i < len; ++i) s += alphabet[rng() % alphabet.size()];
    texts.push_back(s);
  }
  for (const std::string& t : texts) {
    INFO("text '" << t << "'");
    CHECK(g.encode(t, true) == b.encode(t, true));
    CHECK(g.decode(g.encode(t, false)) == t);
  }
  CHECK(g.encode("Once upon a time", true) == b.encode("Once upon a time", true));
}

TEST_CASE("gguf tokenizer: the llama-spm vocabulary agrees with SentencePiece on Llama 2's tokenizer.model") {
  if (!have_gguf()) return;
  std::string model = std::string(PAGODA_SOURCE_DIR) + "/models/tokenizer.model";
  if (!std::filesystem::exists(model)) model = std::string(PAGODA_SOURCE_DIR) + "/../shared/models/tokenizer.model";
  auto sp = load_tokenizer(model);
  REQUIRE(sp.is_ok());
  const auto gguf = load_vocab("llama-spm");
  REQUIRE((*sp)->vocab_size() == gguf->vocab_size());
  for (int32_t id = 0; id < gguf->vocab_size(); ++id) REQUIRE((*sp)->token_text(id) == gguf->token_text(id));
  // Random text over letters, digits, punctuation, whitespace runs, accents,
  // CJK and emoji (characters outside the vocabulary go through byte fallback).
  const std::vector<std::string> alphabet = {"a",
                                             "e",
                                             "t",
                                             "o",
                                             "n",
                                             "s",
                                             "h",
                                             "r",
                                             "T",
                                             "Q",
                                             "z",
                                             "0",
                                             "7",
                                             " ",
                                             " ",
                                             "  ",
                                             "\n",
                                             "\t",
                                             ".",
                                             ",",
                                             "'",
                                             "-",
                                             "(",
                                             "\xC3\xA9",
                                             "\xC3\xBC",
                                             "\xD0\xB4",
                                             "\xE4\xB8\xAD",
                                             "\xE6\x96\x87",
                                             "\xF0\x9F\x98\x80"};
  std::mt19937 rng(2029);
  int same = 0;
  const int n = 500;
  for (int k = 0; k < n; ++k) {
    std::string s;
    const size_t len = 1 + rng() % 40;
    for (size_t i = 0; i < len; ++i) s += alphabet[rng() % alphabet.size()];
    INFO("text '" << s << "'");
    const auto want = (*sp)->encode(s, true);
    CHECK(gguf->encode_with(s, {true, false}) == want);
    same += gguf->encode_with(s, {true, false}) == want;
  }
  WARN("llama-spm: " << same << "/" << n << " random strings as SentencePiece");
}

// The reference ids of ../shared/tokenizers (Hugging Face's tokenizer run by
// transformers.js on the same vocabulary) for a GGUF vocabulary.
void check_hf_reference(const std::string& vocab, const std::string& hf_dir) {
  const std::string ref =
      std::string(PAGODA_SOURCE_DIR) + "/../shared/tokenizers/" + hf_dir + "/reference_tokens.jsonl";
  if (!std::filesystem::exists(ref)) {
    WARN("skipped: " << ref << " is missing");
    return;
  }
  const auto tok = load_vocab(vocab);
  std::ifstream in(ref);
  int lines = 0, same = 0;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("chat")) continue;
    const std::string text = j["text"];
    const std::vector<int32_t> want = j["ids"];
    const auto ids = tok->encode_with(text, {j["add_special_tokens"].get<bool>(), true});
    INFO(vocab << ": text '" << text << "' gives " << show(ids) << ", reference " << show(want));
    CHECK(ids == want);
    ++lines;
    same += ids == want;
  }
  CHECK(lines >= 40);
  WARN(vocab << ": " << same << "/" << lines << " reference lines of " << hf_dir);
}

TEST_CASE("gguf tokenizer: gpt-2 vocabulary matches the Hugging Face reference ids") {
  if (!have_gguf()) return;
  check_hf_reference("gpt-2", "gpt2");
}

TEST_CASE("gguf tokenizer: llama-spm vocabulary matches TinyLlama's reference ids") {
  if (!have_gguf()) return;
  check_hf_reference("llama-spm", "TinyLlama-1.1B-Chat-v1.0");
}

TEST_CASE("gguf tokenizer: a small byte-level vocabulary: merges, special tokens, load_tokenizer by magic") {
  auto tok = tiny_gpt2("gpt-2").tokenizer();
  INFO(tok.status().message());
  REQUIRE(tok.is_ok());
  const GgufTokenizer& t = **tok;
  CHECK(t.vocab_size() == 260);
  CHECK(t.encode_with("ab ab", {false, false}) == std::vector<int32_t>{256, 257});
  CHECK(t.encode_with("ab<|x|>", {false, true}) == std::vector<int32_t>{256, 258});
  CHECK(t.encode_with("ab<|x|>", {false, false}).size() == 6);  // "ab" then 5 byte tokens
  CHECK(t.encode_with("<u>ab", {false, false}) == std::vector<int32_t>{259, 256});
  CHECK(t.decode(std::vector<int32_t>{256, 258, 259, 257}) == "ab<u> ab");

  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("pagoda_gguf_tok_" + std::to_string(::getpid()) + ".bin");
  {
    const auto bytes = tiny_gpt2("").bytes();  // no tokenizer.ggml.pre: llama.cpp's "default"
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  auto loaded = load_tokenizer(path.string());  // no .gguf extension: found by its magic
  std::filesystem::remove(path);
  INFO(loaded.status().message());
  REQUIRE(loaded.is_ok());
  CHECK((*loaded)->encode("ab ab", false) == std::vector<int32_t>{256, 257});
}

TEST_CASE("gguf tokenizer: a small SentencePiece-style vocabulary: merges by score, across words") {
  // "a\u2581" then "a\u2581b" outscore "\u2581a": the merge crosses a word boundary, so
  // the tokenizer must not cut the text into words.
  auto make = [](bool space_prefix) {
    TinyGguf g;
    g.str("tokenizer.ggml.model", "llama");
    g.strs("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "a\xE2\x96\x81",
                                     "a\xE2\x96\x81"
                                     "b",
                                     "\xE2\x96\x81"
                                     "a",
                                     "<0x63>"});
    g.f32s("tokenizer.ggml.scores", {0, 0, 0, -1, -1, -1, -0.5f, -0.1f, -2, 0});
    g.i32s("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1, 1, 1, 6});
    if (!space_prefix) g.boolean("tokenizer.ggml.add_space_prefix", false);
    return g;
  };
  auto with = make(true).tokenizer();
  INFO(with.status().message());
  REQUIRE(with.is_ok());
  const GgufTokenizer& t = **with;
  CHECK(t.adds_dummy_prefix());
  CHECK(t.encode("a b", true) == std::vector<int32_t>{1, 3, 7});      // "\u2581" "a\u2581b"
  CHECK(t.encode("a c", false) == std::vector<int32_t>{3, 6, 9});     // c through its byte piece
  CHECK(t.encode("a d", false) == std::vector<int32_t>{3, 6, 0});     // d has no piece: unknown
  CHECK(t.encode("a</s>a", false) == std::vector<int32_t>{8, 2, 8});  // a space again after </s>
  CHECK(t.decode(std::vector<int32_t>{1, 3, 7}) == "a b");
  auto without = make(false).tokenizer();
  REQUIRE(without.is_ok());
  CHECK_FALSE((*without)->adds_dummy_prefix());
  CHECK((*without)->encode("a b", false) == std::vector<int32_t>{7});
}

TEST_CASE("gguf tokenizer: unknown models and pre-tokenizers are errors naming the key") {
  auto pre = tiny_gpt2("no-such-pre").tokenizer();
  REQUIRE_FALSE(pre.is_ok());
  CHECK(pre.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(pre.status().message(), Catch::Contains("tokenizer.ggml.pre") && Catch::Contains("no-such-pre"));

  TinyGguf bert;
  bert.str("tokenizer.ggml.model", "bert");
  bert.strs("tokenizer.ggml.tokens", {"[PAD]", "a"});
  auto model = bert.tokenizer();
  REQUIRE_FALSE(model.is_ok());
  CHECK(model.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(model.status().message(), Catch::Contains("tokenizer.ggml.model") && Catch::Contains("bert"));

  TinyGguf none;
  none.str("general.name", "no vocabulary");
  auto missing = none.tokenizer();
  REQUIRE_FALSE(missing.is_ok());
  CHECK_THAT(missing.status().message(), Catch::Contains("tokenizer.ggml.model"));

  TinyGguf short_scores;
  short_scores.str("tokenizer.ggml.model", "llama");
  short_scores.strs("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  short_scores.f32s("tokenizer.ggml.scores", {0, 0});
  auto scores = short_scores.tokenizer();
  REQUIRE_FALSE(scores.is_ok());
  CHECK(scores.status().code() == StatusCode::kDataLoss);
  CHECK_THAT(scores.status().message(), Catch::Contains("tokenizer.ggml.scores"));

  TinyGguf no_merges;
  no_merges.str("tokenizer.ggml.model", "gpt2");
  no_merges.strs("tokenizer.ggml.tokens", {"a", "b"});
  auto merges = no_merges.tokenizer();
  REQUIRE_FALSE(merges.is_ok());
  CHECK_THAT(merges.status().message(), Catch::Contains("merges"));

  TinyGguf bos;
  bos.str("tokenizer.ggml.model", "llama");
  bos.strs("tokenizer.ggml.tokens", {"a"});  // the default BOS (1) is outside the vocabulary
  bos.boolean("tokenizer.ggml.add_bos_token", true);
  auto no_bos = bos.tokenizer();
  REQUIRE_FALSE(no_bos.is_ok());
  CHECK_THAT(no_bos.status().message(), Catch::Contains("add_bos_token"));
}

TEST_CASE("gguf tokenizer: pagoda tokenize reads a GGUF file", "[cli]") {
  const char* bin = std::getenv("PAGODA_BIN");
  if (bin == nullptr || !std::ifstream(bin).good()) {
    WARN("PAGODA_BIN not set or missing; skipping the CLI check");
    return;
  }
  if (!have_gguf()) return;
  auto run = [](const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    return std::make_pair(pclose(p), out);
  };
  const std::string path = kGgufDir + "vocab/ggml-vocab-llama-spm.gguf";
  const auto tok = load_vocab("llama-spm");
  auto [rc, out] = run(std::string(bin) + " tokenize --tokenizer '" + path + "' 'Hello world'");
  CHECK(rc == 0);
  CHECK(out == show(tok->encode("Hello world", true)) + "\n");
  auto [rc2, out2] =
      run(std::string(bin) + " tokenize --tokenizer '" + kGgufDir + "stories260K-f32.gguf' " + "'Once upon a time'");
  CHECK(rc2 == 0);
  auto stories = load_tokenizer(kGgufDir + "stories260K-f32.gguf");
  REQUIRE(stories.is_ok());
  CHECK(out2 == show((*stories)->encode("Once upon a time", true)) + "\n");
}
