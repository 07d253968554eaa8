// Tests for ModelConfig, the llama2.c reader, load_model and the random
// checkpoint writer (make-model presets).
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "formats/llama2c_reader.h"
#include "formats/model_loader.h"
#include "formats/model_writer.h"

namespace fs = std::filesystem;
using namespace pagoda;

namespace {

std::string stories_path() {
  const std::string in_repo = PAGODA_SOURCE_DIR "/models/stories260K.bin";
  if (fs::exists(in_repo)) return in_repo;
  return PAGODA_SOURCE_DIR "/../shared/models/stories260K.bin";
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A fresh temporary directory removed at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("pagoda_loader_test_" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void set_header_field(std::vector<char>& bytes, int index, int32_t value) {
  std::memcpy(bytes.data() + 4 * index, &value, 4);
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("stories260K loads with the documented header", "[model_loader]") {
  const std::string path = stories_path();
  REQUIRE(fs::exists(path));
  auto loaded = load_model(path);
  REQUIRE(loaded.is_ok());
  const LoadedModel& m = **loaded;
  const ModelConfig& c = m.config;
  CHECK(c.dim == 64);
  CHECK(c.hidden_dim == 172);
  CHECK(c.n_layers == 5);
  CHECK(c.n_heads == 8);
  CHECK(c.n_kv_heads == 4);
  CHECK(c.head_dim == 8);
  CHECK(c.vocab_size == 512);
  CHECK(c.max_seq_len == 512);
  CHECK(c.tied_classifier);
  CHECK(c.rope_layout == RopeLayout::kAdjacentPairs);
  CHECK(c.rope_theta == 10000.0f);
  CHECK(c.kv_dim() == 32);
  CHECK(c.gqa_group() == 2);
  CHECK(m.weights.classifier == m.weights.token_embedding);
  REQUIRE(m.weights.layers.size() == 5);

  // Offsets computed here independently from the format description.
  const auto* base = reinterpret_cast<const float*>(m.file->data() + 28);
  const int64_t dim = 64, hid = 172, L = 5, kv = 32, vocab = 512;
  int64_t off = vocab * dim;
  CHECK(m.weights.layers[0].rms_att - base == off);
  CHECK(m.weights.layers[1].rms_att - base == off + dim);
  off += L * dim;
  CHECK(m.weights.layers[0].wq - base == off);
  off += L * dim * dim;
  CHECK(m.weights.layers[0].wk - base == off);
  off += L * kv * dim;
  CHECK(m.weights.layers[2].wv - base == off + 2 * kv * dim);
  off += L * kv * dim;
  CHECK(m.weights.layers[0].wo - base == off);
  off += L * dim * dim;
  CHECK(m.weights.layers[0].rms_ffn - base == off);
  off += L * dim;
  CHECK(m.weights.layers[0].w1 - base == off);
  off += L * hid * dim;
  CHECK(m.weights.layers[0].w2 - base == off);
  off += L * dim * hid;
  CHECK(m.weights.layers[4].w3 - base == off + 4 * hid * dim);
  off += L * hid * dim;
  CHECK(m.weights.rms_final - base == off);
  off += dim + 512 * 8;  // rms_final + the two legacy RoPE tables
  CHECK(static_cast<uint64_t>(28 + off * 4) == m.file->size());

  // A trained model: all finite; RMSNorm gains are not all zero.
  const auto n_floats = static_cast<int64_t>((m.file->size() - 28) / 4);
  bool finite = true;
  for (int64_t i = 0; i < n_floats; ++i) finite = finite && std::isfinite(base[i]);
  CHECK(finite);
  double gain = 0;
  for (int64_t i = 0; i < dim; ++i) gain += std::fabs(m.weights.rms_final[i]);
  CHECK(gain > 1.0);
}

TEST_CASE("damaged llama2.c files give errors naming the file and the problem", "[model_loader]") {
  const std::vector<char> good = read_bytes(stories_path());
  REQUIRE(good.size() > 28);
  TempDir tmp;

  SECTION("missing file") {
    auto r = load_model(tmp.file("nope.bin"));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == StatusCode::kNotFound);
    CHECK(contains(r.status().message(), "nope.bin"));
  }
  SECTION("truncated by one float") {
    auto bytes = good;
    bytes.resize(bytes.size() - 4);
    const std::string p = tmp.file("trunc.bin");
    write_bytes(p, bytes);
    auto r = load_model(p);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == StatusCode::kDataLoss);
    CHECK(contains(r.status().message(), "trunc.bin"));
    CHECK(contains(r.status().message(), "truncated"));
    CHECK(contains(r.status().message(), std::to_string(good.size())));
  }
  SECTION("shorter than the header") {
    std::vector<char> bytes(good.begin(), good.begin() + 10);
    const std::string p = tmp.file("short.bin");
    write_bytes(p, bytes);
    auto r = load_model(p);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == StatusCode::kDataLoss);
    CHECK(contains(r.status().message(), "header"));
  }
  SECTION("empty file") {
    const std::string p = tmp.file("empty.bin");
    write_bytes(p, {});
    auto r = load_model(p);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == StatusCode::kDataLoss);
  }
  SECTION("trailing garbage") {
    auto bytes = good;
    bytes.push_back('x');
    const std::string p = tmp.file("trail.bin");
    write_bytes(p, bytes);
    auto r = load_model(p);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == StatusCode::kDataLoss);
    CHECK(contains(r.status().message(), "trailing"));
  }
  SECTION("negative vocab (separate classifier) that is not in the file") {
    auto bytes = good;
    set_header_field(bytes, 5, -512);
    const std::string p = tmp.file("untied.bin");
    write_bytes(p, bytes);
    auto r = load_model(p);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == StatusCode::kDataLoss);
    CHECK(contains(r.status().message(), "truncated"));
  }
  struct BadHeader {
    int field;
    int32_t value;
    const char* mentions;
  };
  const BadHeader cases[] = {
      {0, -64, "dim"},
      {1, 0, "hidden_dim"},
      {2, -5, "n_layers"},
      {3, 0, "n_heads"},
      {4, 3, "n_kv_heads"},
      {4, 16, "n_kv_heads"},
      {3, 7, "n_heads"},
      {5, 0, "vocab_size"},
      {6, -1, "seq_len"},
      {0, 1 << 30, "dim"},
      {1, 2000000000, "hidden_dim"},
      {5, INT32_MIN, "vocab_size"},
      {6, 2000000000, "max_seq_len"},
      {2, 100000, "n_layers"},
  };
  for (const auto& bad : cases) {
    DYNAMIC_SECTION("bad header field " << bad.field << " = " << bad.value) {
      auto bytes = good;
      set_header_field(bytes, bad.field, bad.value);
      const std::string p = tmp.file("bad.bin");
      write_bytes(p, bytes);
      auto r = load_model(p);
      REQUIRE_FALSE(r.is_ok());
      CHECK(r.status().code() == StatusCode::kInvalidArgument);
      INFO(r.status().message());
      CHECK(contains(r.status().message(), "bad.bin"));
      CHECK(contains(r.status().message(), bad.mentions));
    }
  }
}

TEST_CASE("load_model format selection", "[model_loader]") {
  TempDir tmp;
  auto dir = load_model(tmp.path.string());
  REQUIRE_FALSE(dir.is_ok());
  CHECK(contains(dir.status().message(), "config.json"));

  write_bytes(tmp.file("config.json"), {'{', '}'});
  auto hf = load_model(tmp.path.string());
  REQUIRE_FALSE(hf.is_ok());
  CHECK(contains(hf.status().message(), "architectures"));  // went to the HF reader

  auto hf_explicit = load_model(stories_path(), ModelFormat::kHf);
  REQUIRE_FALSE(hf_explicit.is_ok());
  CHECK(contains(hf_explicit.status().message(), "needs a model directory"));

  CHECK(load_model(stories_path(), ModelFormat::kLlama2c).is_ok());
  CHECK(*parse_model_format("hf") == ModelFormat::kHf);
  CHECK(*parse_model_format("auto") == ModelFormat::kAuto);
  CHECK(*parse_model_format("gguf") == ModelFormat::kGguf);
  auto bad = parse_model_format("ggml");
  REQUIRE_FALSE(bad.is_ok());
  CHECK(contains(bad.status().message(), "llama2c, hf, gguf"));
  // A GGUF file forced through the GGUF reader needs to be one.
  auto not_gguf = load_model(stories_path(), ModelFormat::kGguf);
  REQUIRE_FALSE(not_gguf.is_ok());
  CHECK(contains(not_gguf.status().message(), "not a GGUF file"));
}

TEST_CASE("ModelConfig validation names the field", "[model_config]") {
  ModelConfig c = *model_preset("tiny");
  CHECK(c.validate().is_ok());
  auto with = [&](auto change) {
    ModelConfig d = c;
    change(d);
    return d.validate().message();
  };
  CHECK(contains(with([](ModelConfig& d) { d.n_kv_heads = 3; }), "n_kv_heads"));
  CHECK(contains(with([](ModelConfig& d) { d.head_dim = 15; }), "head_dim"));
  CHECK(contains(with([](ModelConfig& d) { d.head_dim = 32; }), "dim"));
  CHECK(contains(with([](ModelConfig& d) { d.rope_theta = -1; }), "rope_theta"));
  CHECK(contains(with([](ModelConfig& d) { d.rms_eps = 0; }), "rms_eps"));
  CHECK(contains(with([](ModelConfig& d) { d.eos_id = 512; }), "eos_id"));
  CHECK(contains(with([](ModelConfig& d) { d.sliding_window = -1; }), "sliding_window"));
  ModelConfig hf = c;
  hf.head_dim = 32;  // dim != n_heads * head_dim is allowed for some HF models
  CHECK(hf.validate(/*require_dim_equals_heads=*/false).is_ok());
}

TEST_CASE("presets have the documented shapes", "[make_model]") {
  const ModelConfig b = *model_preset("bench-200m");
  CHECK(b.dim == 1024);
  CHECK(b.hidden_dim == 2816);
  CHECK(b.n_layers == 12);
  CHECK(b.n_heads == 16);
  CHECK(b.n_kv_heads == 4);
  CHECK(b.vocab_size == 32000);
  CHECK(b.max_seq_len == 2048);
  CHECK_FALSE(b.tied_classifier);
  CHECK(b.num_parameters() > 190'000'000);
  CHECK(b.num_parameters() < 230'000'000);
  const ModelConfig t = *model_preset("tinyllama-1.1b");
  CHECK(t.dim == 2048);
  CHECK(t.hidden_dim == 5632);
  CHECK(t.n_layers == 22);
  CHECK(t.n_heads == 32);
  CHECK(t.n_kv_heads == 4);
  CHECK(t.head_dim == 64);
  CHECK(t.num_parameters() > 1'000'000'000);
  auto bad = model_preset("huge");
  REQUIRE_FALSE(bad.is_ok());
  CHECK(contains(bad.status().message(), "bench-200m"));
}

TEST_CASE("make-model tiny writes a loadable, reproducible checkpoint", "[make_model]") {
  TempDir tmp;
  const ModelConfig cfg = *model_preset("tiny");
  const std::string a = tmp.file("a.bin"), b = tmp.file("b.bin"), c = tmp.file("c.bin");
  REQUIRE(write_random_llama2c(cfg, a, 42).is_ok());
  REQUIRE(write_random_llama2c(cfg, b, 42).is_ok());
  REQUIRE(write_random_llama2c(cfg, c, 43).is_ok());
  CHECK_FALSE(fs::exists(a + ".part"));
  const auto bytes_a = read_bytes(a);
  CHECK(bytes_a == read_bytes(b));
  CHECK(bytes_a != read_bytes(c));
  CHECK(bytes_a.size() == llama2c_file_size(cfg));

  auto loaded = load_model(a);
  REQUIRE(loaded.is_ok());
  const LoadedModel& m = **loaded;
  CHECK(m.config.dim == 64);
  CHECK(m.config.hidden_dim == 192);
  CHECK(m.config.n_layers == 2);
  CHECK(m.config.n_heads == 4);
  CHECK(m.config.n_kv_heads == 2);
  CHECK(m.config.vocab_size == 512);
  CHECK(m.config.max_seq_len == 256);
  CHECK_FALSE(m.config.tied_classifier);
  CHECK(m.weights.classifier != m.weights.token_embedding);

  // Norm weights are exactly 1; random matrices look like N(0, 0.02^2).
  for (int64_t i = 0; i < 64; ++i) {
    CHECK(m.weights.layers[1].rms_att[i] == 1.0f);
    CHECK(m.weights.layers[0].rms_ffn[i] == 1.0f);
    CHECK(m.weights.rms_final[i] == 1.0f);
  }
  auto check_stats = [](const float* w, int64_t n) {
    double sum = 0, sq = 0, maxabs = 0;
    for (int64_t i = 0; i < n; ++i) {
      sum += w[i];
      sq += double(w[i]) * w[i];
      maxabs = std::max(maxabs, double(std::fabs(w[i])));
    }
    const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
    INFO("n=" << n << " mean=" << mean << " sd=" << sd);
    CHECK(std::fabs(mean) < 4 * 0.02 / std::sqrt(double(n)));
    CHECK(sd == Approx(0.02).epsilon(0.05));
    CHECK(maxabs < 0.02 * 7);
  };
  check_stats(m.weights.token_embedding, 512 * 64);
  check_stats(m.weights.layers[1].w2, 192 * 64);
  check_stats(m.weights.classifier, 512 * 64);
  // Different tensors get different streams.
  CHECK(std::memcmp(m.weights.layers[0].w1, m.weights.layers[0].w3, 64 * 4) != 0);
}

TEST_CASE("fill_normal is deterministic across thread counts and normal", "[make_model]") {
  const int64_t n = 3 * (1 << 16) + 17;  // several RNG chunks and a ragged tail
  std::vector<float> one(n), two(n);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  fill_normal(7, 3, 1.0f, one.data(), n);
  omp_set_num_threads(2);
  fill_normal(7, 3, 1.0f, two.data(), n);
  omp_set_num_threads(threads);
  CHECK(one == two);
  // Fraction within 1 and 2 sigma vs the normal distribution (68.27%, 95.45%).
  int64_t in1 = 0, in2 = 0;
  for (float v : one) {
    in1 += std::fabs(v) < 1.0f;
    in2 += std::fabs(v) < 2.0f;
  }
  CHECK(double(in1) / n == Approx(0.6827).margin(0.005));
  CHECK(double(in2) / n == Approx(0.9545).margin(0.003));
}
