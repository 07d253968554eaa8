// The whole model: stories260K reproduces its reference text byte for byte;
// a sequence's logits in a mixed batch equal its logits alone; chunked
// prefill equals whole prefill; decode after a prefix hit equals decode
// without it; MHA / GQA / MQA models all batch correctly; the GGUF files
// llama.cpp made give its greedy output token for token.
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/kernels/kernels.h"
#include "engine/model/llama_model.h"
#include "formats/model_loader.h"
#include "formats/model_writer.h"
#include "tests/engine/isa_levels.h"
#include "tokenizer/tokenizer.h"

using namespace pagoda;

namespace {

std::string model_file(const std::string& name) {
  for (const std::string& dir :
       {std::string(PAGODA_SOURCE_DIR) + "/models/", std::string(PAGODA_SOURCE_DIR) + "/../shared/models/"})
    if (std::filesystem::exists(dir + name)) return dir + name;
  FAIL("test data " << name << " not found in models/ or ../shared/models/ (run tools/setup.sh)");
  return "";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A model with its own KV storage and a trivial page allocator.
struct Harness {
  std::shared_ptr<const LoadedModel> loaded;
  std::unique_ptr<KvStorage> kv;
  std::unique_ptr<LlamaModel> model;
  int32_t next_page = 1;

  Harness(const std::string& path, std::optional<WeightDtype> wdt = WeightDtype::kF32, KvDtype kdt = KvDtype::kF32,
          int page_size = 16, int64_t num_pages = 512) {
    auto m = load_model(path);
    REQUIRE(m.is_ok());
    loaded = std::shared_ptr<const LoadedModel>(std::move(m).value());
    const ModelConfig& c = loaded->config;
    KvLayout lay{int(c.n_layers), int(c.n_kv_heads), int(c.head_dim), page_size, kdt};
    auto s = KvStorage::create(lay, num_pages);
    REQUIRE(s.is_ok());
    kv = std::move(s).value();
    auto lm = LlamaModel::create(loaded, wdt, kv.get());
    REQUIRE(lm.is_ok());
    model = std::move(lm).value();
  }
  // Appends pages to `table` until it covers `len` positions.
  void cover(std::vector<int32_t>& table, int64_t len) {
    const int64_t P = kv->layout().page_size;
    while (int64_t(table.size()) * P < len) {
      REQUIRE(next_page < kv->num_pages());
      table.push_back(next_page++);
    }
  }
};

// Greedy generation, one sequence: prefill `prompt` in one step, then decode
// until `total` positions. Returns all tokens.
std::vector<int32_t> greedy(Harness& h, std::vector<int32_t> tokens, int64_t total) {
  std::vector<int32_t> table;
  std::vector<float> logits;
  int64_t pos = 0;
  while (int64_t(tokens.size()) < total) {
    const int64_t n = int64_t(tokens.size()) - pos;
    h.cover(table, pos + n);
    BatchInput in;
    in.tokens.assign(tokens.begin() + pos, tokens.end());
    in.seqs.push_back({pos, n, table, true});
    REQUIRE(h.model->forward(in, &logits).is_ok());
    pos += n;
    tokens.push_back(int32_t(argmax(logits.data(), h.model->config().vocab_size)));
  }
  return tokens;
}

double max_abs_diff(const float* a, const float* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

// Logits of the last token of `tokens`, computed alone: prefix of `split`
// tokens in one step, the rest in a second step.
std::vector<float> alone(Harness& h, const std::vector<int32_t>& tokens, int64_t split) {
  std::vector<int32_t> table;
  h.cover(table, int64_t(tokens.size()));
  std::vector<float> logits;
  if (split > 0) {
    BatchInput a;
    a.tokens.assign(tokens.begin(), tokens.begin() + split);
    a.seqs.push_back({0, split, table, false});
    REQUIRE(h.model->forward(a, &logits).is_ok());
    REQUIRE(logits.empty());
  }
  BatchInput b;
  b.tokens.assign(tokens.begin() + split, tokens.end());
  b.seqs.push_back({split, int64_t(tokens.size()) - split, table, true});
  REQUIRE(h.model->forward(b, &logits).is_ok());
  return logits;
}

// 32 sequences of random tokens with mixed shapes: in the second step some
// decode one token, others prefill a chunk; compare with each alone. Between
// them the second step also carries mid-prompt chunks that take no logits
// (the last layer keeps only the sampled rows, so these must not disturb the
// others' rows).
void check_batched_equals_alone(const std::string& path, uint32_t seed) {
  Harness batched(path), single(path);
  const int64_t V = batched.model->config().vocab_size;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(3, int32_t(V) - 1);
  std::uniform_int_distribution<int64_t> len(2, 60);
  const int N = 32;
  std::vector<std::vector<int32_t>> seqs(N);
  std::vector<int64_t> split(N);
  std::vector<std::vector<int32_t>> tables(N);
  for (int i = 0; i < N; ++i) {
    seqs[i].push_back(1);
    for (int64_t k = len(rng); k > 0; --k) seqs[i].push_back(tok(rng));
    const int64_t L = int64_t(seqs[i].size());
    split[i] = (i % 3 == 0) ? L - 1 : (i % 3 == 1 ? L / 2 : 0);  // decode / chunk / whole prompt
    batched.cover(tables[i], L);
  }
  std::vector<std::vector<int32_t>> quiet_tables(N);
  BatchInput first, second;
  for (int i = 0; i < N; ++i) {
    if (split[i] > 0) {
      first.tokens.insert(first.tokens.end(), seqs[i].begin(), seqs[i].begin() + split[i]);
      first.seqs.push_back({0, split[i], tables[i], false});
    }
    if (i % 4 == 1) {  // a prompt chunk of another sequence, no logits
      const int64_t n = len(rng) / 3 + 1;
      batched.cover(quiet_tables[i], n);
      for (int64_t k = 0; k < n; ++k) second.tokens.push_back(tok(rng));
      second.seqs.push_back({0, n, quiet_tables[i], false});
    }
    second.tokens.insert(second.tokens.end(), seqs[i].begin() + split[i], seqs[i].end());
    second.seqs.push_back({split[i], int64_t(seqs[i].size()) - split[i], tables[i], true});
  }
  std::vector<float> logits;
  REQUIRE(batched.model->forward(first, &logits).is_ok());
  REQUIRE(batched.model->forward(second, &logits).is_ok());
  REQUIRE(int64_t(logits.size()) == N * V);
  double worst = 0;
  for (int i = 0; i < N; ++i) {
    std::vector<float> ref = alone(single, seqs[i], split[i]);
    worst = std::max(worst, max_abs_diff(logits.data() + i * V, ref.data(), V));
  }
  INFO(path << ": worst max abs logit difference " << worst);
  CHECK(worst <= 1e-4);
}

}  // namespace

TEST_CASE("stories260K greedy output equals the reference text byte for byte") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  const std::string expected = read_file(model_file("stories260K.greedy.txt"));
  REQUIRE(!expected.empty());
  auto tok = load_tokenizer(model_file("tok512.bin"));
  REQUIRE(tok.is_ok());
  Harness h(model_file("stories260K.bin"));
  SECTION("from an empty prompt (BOS only)") {
    std::vector<int32_t> out = greedy(h, {(*tok)->bos_id()}, 201);
    CHECK((*tok)->decode(out) == expected);
  }
  SECTION("from the prompt 'Once upon a time'") {
    std::vector<int32_t> out = greedy(h, (*tok)->encode("Once upon a time", true), 201);
    CHECK((*tok)->decode(out) == expected);
  }
  SECTION("with page size 8 and 256") {
    Harness h8(model_file("stories260K.bin"), WeightDtype::kF32, KvDtype::kF32, 8);
    CHECK((*tok)->decode(greedy(h8, {1}, 201)) == expected);
    Harness h256(model_file("stories260K.bin"), WeightDtype::kF32, KvDtype::kF32, 256, 8);
    CHECK((*tok)->decode(greedy(h256, {1}, 201)) == expected);
  }
}

TEST_CASE("a sequence's logits in a batch of 32 mixed sequences equal its logits alone") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  check_batched_equals_alone(model_file("stories260K.bin"), 11);
}

TEST_CASE("MHA, GQA and MQA models: batched equals alone") {
  const auto dir = std::filesystem::temp_directory_path() / "pagoda_model_test";
  std::filesystem::create_directories(dir);
  for (int kv_heads : {4, 2, 1}) {
    auto cfg = model_preset("tiny");
    REQUIRE(cfg.is_ok());
    cfg->n_kv_heads = kv_heads;
    const std::string path = (dir / ("tiny_kv" + std::to_string(kv_heads) + ".bin")).string();
    REQUIRE(write_random_llama2c(*cfg, path, 42, 0.1f).is_ok());
    check_batched_equals_alone(path, 20 + kv_heads);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("chunked prefill equals whole prefill and token-by-token steps") {
  Harness whole(model_file("stories260K.bin")), chunked(model_file("stories260K.bin"));
  const int64_t V = whole.model->config().vocab_size;
  std::mt19937 rng(5);
  std::vector<int32_t> prompt{1};
  for (int i = 0; i < 99; ++i) prompt.push_back(int32_t(3 + rng() % (V - 3)));
  std::vector<float> ref = alone(whole, prompt, 0);
  std::vector<int32_t> table;
  chunked.cover(table, 100);
  std::vector<float> logits;
  int64_t pos = 0;
  for (int64_t chunk : {37, 37, 26}) {
    BatchInput in;
    in.tokens.assign(prompt.begin() + pos, prompt.begin() + pos + chunk);
    in.seqs.push_back({pos, chunk, table, pos + chunk == 100});
    REQUIRE(chunked.model->forward(in, &logits).is_ok());
    pos += chunk;
  }
  CHECK(max_abs_diff(logits.data(), ref.data(), V) <= 1e-4);

  // One token per step: every step has a single row, so the attention is the
  // decode path and the last layer keeps that row where it is (or stops after
  // its K/V, in steps that take no logits): an independent reference for the
  // multi-row paths above (prefill attention, last-layer row selection).
  Harness stepwise(model_file("stories260K.bin"));
  std::vector<int32_t> table1;
  stepwise.cover(table1, 100);
  for (int64_t p = 0; p < 100; ++p) {
    BatchInput in;
    in.tokens = {prompt[static_cast<size_t>(p)]};
    in.seqs.push_back({p, 1, table1, p == 99});
    REQUIRE(stepwise.model->forward(in, &logits).is_ok());
  }
  CHECK(max_abs_diff(logits.data(), ref.data(), V) <= 1e-4);
}

TEST_CASE("decode after a prefix hit equals decode without it") {
  Harness h(model_file("stories260K.bin"));
  const int64_t V = h.model->config().vocab_size;
  std::mt19937 rng(9);
  std::vector<int32_t> shared{1};
  for (int i = 0; i < 31; ++i) shared.push_back(int32_t(3 + rng() % (V - 3)));  // 2 full pages
  std::vector<int32_t> a = shared, b = shared;
  for (int i = 0; i < 10; ++i) a.push_back(int32_t(3 + rng() % (V - 3)));
  for (int i = 0; i < 7; ++i) b.push_back(int32_t(3 + rng() % (V - 3)));
  // Request a computes its whole prompt; b reuses a's first two pages (the
  // prefix hit) and computes only its own suffix.
  std::vector<int32_t> ta;
  h.cover(ta, int64_t(a.size()));
  std::vector<float> logits;
  BatchInput in_a;
  in_a.tokens = a;
  in_a.seqs.push_back({0, int64_t(a.size()), ta, false});
  REQUIRE(h.model->forward(in_a, &logits).is_ok());
  std::vector<int32_t> tb(ta.begin(), ta.begin() + 2);
  h.cover(tb, int64_t(b.size()));
  BatchInput in_b;
  in_b.tokens.assign(b.begin() + 32, b.end());
  in_b.seqs.push_back({32, int64_t(b.size()) - 32, tb, true});
  REQUIRE(h.model->forward(in_b, &logits).is_ok());
  Harness fresh(model_file("stories260K.bin"));
  std::vector<float> ref = alone(fresh, b, 0);
  CHECK(max_abs_diff(logits.data(), ref.data(), V) <= 1e-4);
}

TEST_CASE("forward rejects bad batches without touching KV") {
  Harness h(model_file("stories260K.bin"));
  std::vector<int32_t> table{1};
  std::vector<float> logits;
  BatchInput bad_token;
  bad_token.tokens = {1, 100000};
  bad_token.seqs.push_back({0, 2, table, true});
  CHECK(h.model->forward(bad_token, &logits).code() == StatusCode::kInvalidArgument);
  BatchInput beyond;
  beyond.tokens = {5};
  beyond.seqs.push_back({600, 1, table, true});
  CHECK(h.model->forward(beyond, &logits).code() == StatusCode::kOutOfRange);
  BatchInput short_table;
  short_table.tokens.assign(20, 5);
  short_table.seqs.push_back({0, 20, table, true});
  CHECK_FALSE(h.model->forward(short_table, &logits).is_ok());
}

TEST_CASE("bf16 and int8 weights stay close to f32 and f16/int8 KV to f32 KV") {
  const std::string path = model_file("stories260K.bin");
  std::vector<int32_t> prompt{1, 403, 407, 261, 378, 29, 395, 1209 % 512};
  Harness ref(path);
  std::vector<float> base = alone(ref, prompt, 0);
  const float range = *std::max_element(base.begin(), base.end()) - *std::min_element(base.begin(), base.end());
  struct Variant {
    WeightDtype w;
    KvDtype k;
    double rel;
  };
  for (Variant v : {Variant{WeightDtype::kBF16, KvDtype::kF32, 0.03}, Variant{WeightDtype::kInt8, KvDtype::kF32, 0.06},
                    Variant{WeightDtype::kF32, KvDtype::kF16, 0.01}, Variant{WeightDtype::kF32, KvDtype::kInt8, 0.05},
                    Variant{WeightDtype::kF32, KvDtype::kInt4, 0.25}}) {
    if (!Linear::dtype_supported(v.w)) {  // bf16 without AVX-512 (tests/engine/linear_test.cpp: refused)
      WARN(weight_dtype_name(v.w) << " weights do not run on this CPU: not tested");
      continue;
    }
    Harness h(path, v.w, v.k);
    std::vector<float> got = alone(h, prompt, 0);
    const double diff = max_abs_diff(got.data(), base.data(), int64_t(base.size()));
    INFO("weights " << weight_dtype_name(v.w) << " kv " << kv_dtype_name(v.k) << " diff " << diff << " range "
                    << range);
    CHECK(diff <= v.rel * range);
  }
}

TEST_CASE("GGUF files made by llama.cpp: greedy output equals llama.cpp's, token for token") {
  // llama.cpp's own greedy continuations (../shared/gguf/README.md): for the
  // quantized files, after dequantizing them to F32, which is what loading
  // them into f32 weights computes.
  const std::string dir = std::string(PAGODA_SOURCE_DIR) + "/../shared/gguf/";
  const nlohmann::json ref = nlohmann::json::parse(read_file(dir + "llamacpp-greedy-once-upon-a-time.json"));
  auto tok = load_tokenizer(model_file("tok512.bin"));
  REQUIRE(tok.is_ok());
  const std::vector<int32_t> prompt = (*tok)->encode(ref["prompt"].get<std::string>(), true);
  const int64_t total = int64_t(prompt.size()) + ref["n_predict"].get<int64_t>();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"stories260K-f32.gguf", "stories260K-f32.gguf"},
      {"stories260K-q4_k_m.gguf",
       "stories260K-q4_k_m.gguf dequantized to f32 (llama-quantize --allow-requantize ... F32), then run"},
      {"stories260K-q6_k.gguf", "stories260K-q6_k.gguf dequantized to f32, then run"},
  };
  for (const auto& [file, key] : cases) {
    INFO(file);
    Harness h(dir + file);
    const std::vector<int32_t> out = greedy(h, prompt, total);
    const std::vector<int32_t> generated(out.begin() + int64_t(prompt.size()), out.end());
    CHECK((*tok)->decode(generated) == ref["outputs"][key].get<std::string>());
  }
  // The f32 file holds the llama2.c checkpoint's numbers: the same logits, bit for bit.
  Harness bin(model_file("stories260K.bin"));
  Harness gguf(dir + "stories260K-f32.gguf");
  const std::vector<int32_t> tokens = greedy(bin, prompt, int64_t(prompt.size()) + 8);
  const std::vector<float> a = alone(bin, tokens, 3), b = alone(gguf, tokens, 3);
  CHECK(max_abs_diff(a.data(), b.data(), int64_t(a.size())) == 0.0);
}

TEST_CASE("GGUF quantized files with weight_dtype auto stay as close to the file's numbers as llama.cpp's kernels") {
  // The measure: how many characters of greedy output agree with the file's
  // exact meaning (llama.cpp's run of the file dequantized to F32). auto runs
  // these files' q5_0 / q8_0 tensors on the int8 kernels and f16 on bf16 (f32
  // without AVX-512); llama.cpp's own quantized run is the bar.
  const std::string dir = std::string(PAGODA_SOURCE_DIR) + "/../shared/gguf/";
  const nlohmann::json ref = nlohmann::json::parse(read_file(dir + "llamacpp-greedy-once-upon-a-time.json"));
  auto tok = load_tokenizer(dir + "stories260K-f32.gguf");
  REQUIRE(tok.is_ok());
  const std::vector<int32_t> prompt = (*tok)->encode(ref["prompt"].get<std::string>(), true);
  const int64_t total = int64_t(prompt.size()) + ref["n_predict"].get<int64_t>();
  auto agree = [](const std::string& a, const std::string& b) {
    size_t n = 0;
    while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
    return n;
  };
  const std::vector<std::array<std::string, 3>> cases = {
      {"stories260K-q4_k_m.gguf",
       "stories260K-q4_k_m.gguf dequantized to f32 (llama-quantize --allow-requantize ... F32), then run",
       "stories260K-q4_k_m.gguf (llama.cpp computing in its quantized kernels)"},
      {"stories260K-q6_k.gguf", "stories260K-q6_k.gguf dequantized to f32, then run",
       "stories260K-q6_k.gguf (llama.cpp computing in its quantized kernels)"},
  };
  for (const auto& [file, exact_key, llamacpp_key] : cases) {
    INFO(file);
    Harness h(dir + file, std::nullopt);
    const std::vector<int32_t> out = greedy(h, prompt, total);
    const std::string ours = (*tok)->decode(std::vector<int32_t>(out.begin() + int64_t(prompt.size()), out.end()));
    const std::string exact = ref["outputs"][exact_key].get<std::string>();
    const std::string llamacpp = ref["outputs"][llamacpp_key].get<std::string>();
    INFO("ours agree with exact for " << agree(ours, exact) << " chars, llama.cpp's quantized run for "
                                      << agree(llamacpp, exact));
    CHECK(agree(ours, exact) >= agree(llamacpp, exact));
  }
}
