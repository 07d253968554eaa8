// Hugging Face model directories: the safetensors parser (against a
// hand-encoded file), the tensor-name mapping (against a hand-built
// directory), every kind of damage naming the tensor or key, the families
// make-model writes (llama2, llama3 with rope_scaling, qwen2 with biases and
// tied embeddings, Mistral's sliding window, head_dim != hidden / heads,
// shards, BF16, F16) run through LlamaModel and compared with a plain
// double-precision forward written here, llama3 RoPE frequencies against the
// published formula, and llama2.c vs converted HF weights giving the same
// logits.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/model/llama_model.h"
#include "formats/hf_config.h"
#include "formats/hf_reader.h"
#include "formats/hf_writer.h"
#include "formats/model_loader.h"
#include "formats/model_writer.h"
#include "formats/safetensors.h"

namespace fs = std::filesystem;
using namespace pagoda;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("pagoda_hf_test_" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string sub(const std::string& name) const { return (path / name).string(); }
};

// ---- A hand-written safetensors encoder (independent of engine code) ----

struct RawTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

std::string f32_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

// 8-byte little-endian length, JSON header, data in list order.
std::string encode(const std::vector<RawTensor>& ts, const std::string& metadata_json = "") {
  std::string h = "{";
  if (!metadata_json.empty()) h += "\"__metadata__\":" + metadata_json;
  size_t off = 0;
  for (const RawTensor& t : ts) {
    if (h.size() > 1) h += ",";
    h += "\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i > 0) h += ",";
      h += std::to_string(t.shape[i]);
    }
    h += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + t.bytes.size()) + "]}";
    off += t.bytes.size();
  }
  h += "}";
  while (h.size() % 8) h += ' ';
  std::string out;
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out.push_back(char((n >> (8 * i)) & 0xff));
  out += h;
  for (const RawTensor& t : ts) out += t.bytes;
  return out;
}

// IEEE half -> double by the textbook definition.
double f16_reference(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  const double sign = s ? -1.0 : 1.0;
  if (e == 0) return sign * std::ldexp(m / 1024.0, -14);
  if (e == 31) return m ? std::nan("") : sign * INFINITY;
  return sign * std::ldexp(1.0 + m / 1024.0, e - 15);
}

// bf16 -> double: sign, 8-bit exponent, 7-bit mantissa.
double bf16_reference(uint16_t b) {
  const int s = b >> 15, e = (b >> 7) & 255, m = b & 127;
  const double sign = s ? -1.0 : 1.0;
  if (e == 0) return sign * std::ldexp(m / 128.0, -126);
  if (e == 255) return m ? std::nan("") : sign * INFINITY;
  return sign * std::ldexp(1.0 + m / 128.0, e - 127);
}

// Nearest bf16 value of x (ties to even), by comparing the two neighbours.
float bf16_round_reference(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
  float flo, fhi;
  std::memcpy(&flo, &lo, 4);
  std::memcpy(&fhi, &hi, 4);
  const double dlo = std::fabs(double(x) - flo), dhi = std::fabs(double(fhi) - x);
  if (dlo < dhi) return flo;
  if (dhi < dlo) return fhi;
  return ((lo >> 16) & 1) ? fhi : flo;
}

// ---- A plain double-precision forward pass (one sequence, all positions) ----

// RoPE inverse frequencies: theta^(-2i/d), then Llama 3's rule as published
// with Llama 3.1 (wavelength 2 pi / f; above old_len / low_freq_factor:
// f / factor; below old_len / high_freq_factor: f; between: the smooth mix
// (1 - s) f / factor + s f with s = (old_len / wavelength - low) / (high - low)).
std::vector<double> reference_inv_freq(const ModelConfig& c) {
  std::vector<double> f;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) f.push_back(std::pow(double(c.rope_theta), -2.0 * i / c.head_dim));
  const RopeScaling& r = c.rope_scaling;
  for (double& v : f) {
    if (r.type == RopeScaling::Type::kLinear) v /= r.factor;
    if (r.type != RopeScaling::Type::kLlama3) continue;
    const double wl = 2 * std::numbers::pi / v, old_len = double(r.original_max_position);
    if (wl > old_len / r.low_freq_factor) {
      v = v / r.factor;
    } else if (wl >= old_len / r.high_freq_factor) {
      const double s = (old_len / wl - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
      v = (1 - s) * v / r.factor + s * v;
    }
  }
  return f;
}

void matvec(const float* w, int64_t rows, int64_t cols, const std::vector<double>& x, std::vector<double>& y) {
  y.assign(size_t(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t k = 0; k < cols; ++k) s += double(w[r * cols + k]) * x[size_t(k)];
    y[size_t(r)] = s;
  }
}

std::vector<double> rmsnorm_ref(const std::vector<double>& x, const float* g, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / double(x.size()) + eps);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] * inv * g[i];
  return out;
}

// Rotates head elements (i, i + d/2) by pos * f[i] (the halves layout).
void rope_halves_ref(std::vector<double>& v, int64_t heads, int64_t d, int64_t pos, const std::vector<double>& f) {
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < d / 2; ++i) {
      double& a = v[size_t(h * d + i)];
      double& b = v[size_t(h * d + d / 2 + i)];
      const double ang = double(pos) * f[size_t(i)], x0 = a, x1 = b;
      a = x0 * std::cos(ang) - x1 * std::sin(ang);
      b = x0 * std::sin(ang) + x1 * std::cos(ang);
    }
}

// Logits [T][vocab] for every position of `tokens`. Expects kHalves.
std::vector<std::vector<double>> reference_logits(const LoadedModel& m, const std::vector<int32_t>& tokens) {
  const ModelConfig& c = m.config;
  const ModelWeights& w = m.weights;
  REQUIRE(c.rope_layout == RopeLayout::kHalves);
  const int64_t T = int64_t(tokens.size()), D = c.dim, hd = c.head_dim, qd = c.q_dim(), kvd = c.kv_dim();
  const std::vector<double> freq = reference_inv_freq(c);
  std::vector<std::vector<double>> x(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t)
    x[size_t(t)].assign(w.token_embedding + tokens[size_t(t)] * D, w.token_embedding + (tokens[size_t(t)] + 1) * D);
  for (const LayerWeights& l : w.layers) {
    std::vector<std::vector<double>> q(static_cast<size_t>(T)), k(static_cast<size_t>(T)), v(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
      const auto xn = rmsnorm_ref(x[size_t(t)], l.rms_att, c.rms_eps);
      matvec(l.wq, qd, D, xn, q[size_t(t)]);
      matvec(l.wk, kvd, D, xn, k[size_t(t)]);
      matvec(l.wv, kvd, D, xn, v[size_t(t)]);
      if (l.bq) {
        for (int64_t i = 0; i < qd; ++i) q[size_t(t)][size_t(i)] += l.bq[i];
        for (int64_t i = 0; i < kvd; ++i) k[size_t(t)][size_t(i)] += l.bk[i], v[size_t(t)][size_t(i)] += l.bv[i];
      }
      rope_halves_ref(q[size_t(t)], c.n_heads, hd, t, freq);
      rope_halves_ref(k[size_t(t)], c.n_kv_heads, hd, t, freq);
    }
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> att(size_t(qd), 0.0);
      for (int64_t h = 0; h < c.n_heads; ++h) {
        const int64_t g = h / (c.n_heads / c.n_kv_heads);
        const int64_t first = c.sliding_window > 0 ? std::max<int64_t>(0, t - c.sliding_window + 1) : 0;
        std::vector<double> sc;
        double mx = -1e300;
        for (int64_t s = first; s <= t; ++s) {
          double d = 0;
          for (int64_t i = 0; i < hd; ++i) d += q[size_t(t)][size_t(h * hd + i)] * k[size_t(s)][size_t(g * hd + i)];
          sc.push_back(d / std::sqrt(double(hd)));
          mx = std::max(mx, sc.back());
        }
        double z = 0;
        for (double& e : sc) z += (e = std::exp(e - mx));
        for (int64_t s = first; s <= t; ++s)
          for (int64_t i = 0; i < hd; ++i)
            att[size_t(h * hd + i)] += sc[size_t(s - first)] / z * v[size_t(s)][size_t(g * hd + i)];
      }
      std::vector<double> o;
      matvec(l.wo, D, qd, att, o);
      for (int64_t i = 0; i < D; ++i) x[size_t(t)][size_t(i)] += o[size_t(i)];
      const auto xn = rmsnorm_ref(x[size_t(t)], l.rms_ffn, c.rms_eps);
      std::vector<double> gate, up, down;
      matvec(l.w1, c.hidden_dim, D, xn, gate);
      matvec(l.w3, c.hidden_dim, D, xn, up);
      for (size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
      matvec(l.w2, D, c.hidden_dim, gate, down);
      for (int64_t i = 0; i < D; ++i) x[size_t(t)][size_t(i)] += down[size_t(i)];
    }
  }
  std::vector<std::vector<double>> logits(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t)
    matvec(w.classifier, c.vocab_size, D, rmsnorm_ref(x[size_t(t)], w.rms_final, c.rms_eps), logits[size_t(t)]);
  return logits;
}

// ---- LlamaModel over f32 KV with a trivial page table ----

struct Harness {
  std::shared_ptr<const LoadedModel> loaded;
  std::unique_ptr<KvStorage> kv;
  std::unique_ptr<LlamaModel> model;
  std::vector<int32_t> table;

  explicit Harness(const std::string& path, ModelFormat format = ModelFormat::kAuto) {
    auto m = load_model(path, format);
    INFO((m ? "" : m.status().message()));
    REQUIRE(m.is_ok());
    loaded = std::shared_ptr<const LoadedModel>(std::move(m).value());
    const ModelConfig& c = loaded->config;
    KvLayout lay{int(c.n_layers), int(c.n_kv_heads), int(c.head_dim), 8, KvDtype::kF32};
    auto s = KvStorage::create(lay, 64);
    REQUIRE(s.is_ok());
    kv = std::move(s).value();
    auto lm = LlamaModel::create(loaded, WeightDtype::kF32, kv.get());
    REQUIRE(lm.is_ok());
    model = std::move(lm).value();
    for (int32_t p = 1; p < 64; ++p) table.push_back(p);
  }
  // Prefills tokens[0..prefill), then decodes the rest one at a time;
  // returns the logits after each step (position prefill - 1, prefill, ...).
  std::vector<std::vector<float>> run(const std::vector<int32_t>& tokens, int64_t prefill) {
    std::vector<std::vector<float>> out;
    int64_t pos = 0;
    while (pos < int64_t(tokens.size())) {
      const int64_t n = pos == 0 ? prefill : 1;
      BatchInput in;
      in.tokens.assign(tokens.begin() + pos, tokens.begin() + pos + n);
      in.seqs.push_back({pos, n, table, true});
      std::vector<float> logits;
      REQUIRE(model->forward(in, &logits).is_ok());
      out.push_back(logits);
      pos += n;
    }
    return out;
  }
};

std::vector<int32_t> some_tokens(int64_t vocab, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, int32_t(vocab) - 1);
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(d(rng));
  return t;
}

// LlamaModel's logits (prefill 7, then decode) vs the reference at the same
// positions; returns the worst absolute difference.
double check_against_reference(const std::string& dir, int n_tokens = 14) {
  Harness h(dir);
  const auto tokens = some_tokens(h.loaded->config.vocab_size, n_tokens, 3);
  const auto ref = reference_logits(*h.loaded, tokens);
  const auto got = h.run(tokens, 7);
  double worst = 0, scale = 0;
  for (size_t step = 0; step < got.size(); ++step) {
    const auto& r = ref[size_t(6 + step)];
    for (size_t i = 0; i < r.size(); ++i) {
      worst = std::max(worst, std::fabs(got[step][i] - r[i]));
      scale = std::max(scale, std::fabs(r[i]));
    }
  }
  INFO(dir << ": worst |logit - reference| " << worst << ", largest logit " << scale);
  CHECK(scale > 0.05);  // the comparison is not between near-zero vectors
  return worst;
}

ModelConfig tiny(HfFamily family) {
  auto c = model_preset("tiny");
  REQUIRE(c.is_ok());
  return hf_family_config(*c, family);
}

std::string write_random(const TempDir& tmp, const std::string& name, const ModelConfig& c, HfFamily family,
                         SafeDtype dtype = SafeDtype::kF32, int shards = 1) {
  HfWriteOptions o;
  o.family = family;
  o.dtype = dtype;
  o.shards = shards;
  const std::string dir = tmp.sub(name);
  Status st = write_random_hf(c, o, dir, 7, 0.08f);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return dir;
}

std::string load_error(const std::string& dir) {
  auto m = load_model(dir);
  REQUIRE_FALSE(m.is_ok());
  return m.status().message();
}

// ---- A hand-built directory: 2 layers, hidden 8, heads 2, kv heads 1 ----

const char* kTinyConfig = R"({
  "architectures": ["LlamaForCausalLM"], "hidden_size": 8, "intermediate_size": 12,
  "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
  "vocab_size": 16, "max_position_embeddings": 32, "rms_norm_eps": 1e-5,
  "rope_theta": 10000.0, "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": false
})";

// Tensor k holds 100 * (k + 1) + index / 1000, so each view is identifiable.
std::vector<RawTensor> tiny_tensors() {
  std::vector<std::pair<std::string, std::vector<int64_t>>> spec = {{"model.embed_tokens.weight", {16, 8}}};
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    spec.push_back({p + "input_layernorm.weight", {8}});
    spec.push_back({p + "self_attn.q_proj.weight", {8, 8}});
    spec.push_back({p + "self_attn.k_proj.weight", {4, 8}});
    spec.push_back({p + "self_attn.v_proj.weight", {4, 8}});
    spec.push_back({p + "self_attn.o_proj.weight", {8, 8}});
    spec.push_back({p + "post_attention_layernorm.weight", {8}});
    spec.push_back({p + "mlp.gate_proj.weight", {12, 8}});
    spec.push_back({p + "mlp.up_proj.weight", {12, 8}});
    spec.push_back({p + "mlp.down_proj.weight", {8, 12}});
  }
  spec.push_back({"model.norm.weight", {8}});
  spec.push_back({"lm_head.weight", {16, 8}});
  std::vector<RawTensor> out;
  for (size_t k = 0; k < spec.size(); ++k) {
    int64_t n = 1;
    for (int64_t d : spec[k].second) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float(100 * (k + 1)) + float(i) / 1000.0f;
    out.push_back({spec[k].first, "F32", spec[k].second, f32_bytes(v)});
  }
  return out;
}

float tag_of(const std::vector<RawTensor>& ts, const std::string& name) {
  for (size_t k = 0; k < ts.size(); ++k)
    if (ts[k].name == name) return float(100 * (k + 1));
  FAIL("no tensor " << name);
  return 0;
}

std::string make_tiny_dir(const TempDir& tmp, const std::string& name, const std::vector<RawTensor>& ts,
                          const std::string& config = kTinyConfig) {
  const fs::path dir = tmp.path / name;
  fs::create_directories(dir);
  write_text(dir / "config.json", config);
  write_text(dir / "model.safetensors", encode(ts));
  return dir.string();
}

std::vector<RawTensor> with(std::vector<RawTensor> ts, const std::string& name, RawTensor replacement) {
  for (auto& t : ts)
    if (t.name == name) t = replacement;
  return ts;
}

std::vector<RawTensor> without(std::vector<RawTensor> ts, const std::string& name) {
  std::erase_if(ts, [&](const RawTensor& t) { return t.name == name; });
  return ts;
}

}  // namespace

TEST_CASE("safetensors: parses a hand-encoded file, converts BF16 and F16 exactly", "[hf]") {
  TempDir tmp;
  std::vector<uint16_t> halves;
  for (uint32_t b = 0; b < 65536; ++b) halves.push_back(uint16_t(b));
  const std::string hbytes(reinterpret_cast<const char*>(halves.data()), halves.size() * 2);
  const std::string path = tmp.sub("a.safetensors");
  write_text(path, encode({{"f32", "F32", {2, 3}, f32_bytes({1, 2, 3, 4, 5, 6})},
                           {"bf16", "BF16", {65536}, hbytes},
                           {"f16", "F16", {256, 256}, hbytes},
                           {"i8", "I8", {3}, "abc"},
                           {"empty", "F32", {0, 4}, ""}},
                          R"({"format":"pt","note":"x"})"));
  auto f = SafetensorsFile::open(path);
  INFO((f ? "" : f.status().message()));
  REQUIRE(f.is_ok());
  CHECK((*f)->tensors().size() == 5);
  CHECK((*f)->metadata().at("format") == "pt");
  CHECK((*f)->metadata().at("note") == "x");
  const SafeTensor* t = (*f)->find("f32");
  REQUIRE(t != nullptr);
  CHECK(t->shape == std::vector<int64_t>{2, 3});
  CHECK(t->numel == 6);
  CHECK(reinterpret_cast<const float*>(t->data)[5] == 6.0f);
  CHECK((*f)->find("i8")->dtype == SafeDtype::kI8);
  CHECK((*f)->find("empty")->numel == 0);
  CHECK((*f)->find("nope") == nullptr);

  std::vector<float> out(65536);
  bf16_to_f32_n(reinterpret_cast<const uint16_t*>((*f)->find("bf16")->data), 65536, out.data());
  int bad_bf16 = 0, bad_f16 = 0;
  for (uint32_t b = 0; b < 65536; ++b) {
    const double r = bf16_reference(uint16_t(b));
    if (std::isnan(r) ? !std::isnan(out[b]) : (double(out[b]) != r || std::signbit(out[b]) != bool(b >> 15)))
      ++bad_bf16;
  }
  f16_to_f32_n(reinterpret_cast<const uint16_t*>((*f)->find("f16")->data), 65536, out.data());
  for (uint32_t b = 0; b < 65536; ++b) {
    const double r = f16_reference(uint16_t(b));
    if (std::isnan(r) ? !std::isnan(out[b]) : (double(out[b]) != r || std::signbit(out[b]) != bool(b >> 15))) ++bad_f16;
  }
  CHECK(bad_bf16 == 0);
  CHECK(bad_f16 == 0);
  // The odd tail (not a multiple of 16) goes through the scalar path.
  std::vector<float> tail(37);
  f16_to_f32_n(halves.data() + 15360, 37, tail.data());
  for (int i = 0; i < 37; ++i) CHECK(double(tail[size_t(i)]) == f16_reference(uint16_t(15360 + i)));
}

TEST_CASE("safetensors: damaged files are rejected naming the file and tensor", "[hf]") {
  TempDir tmp;
  const std::string good =
      encode({{"a.weight", "F32", {2}, f32_bytes({1, 2})}, {"b.weight", "F32", {4}, f32_bytes({1, 2, 3, 4})}});
  auto open_bytes = [&](const std::string& bytes) {
    const std::string p = tmp.sub("damaged.safetensors");
    write_text(p, bytes);
    auto f = SafetensorsFile::open(p);
    REQUIRE_FALSE(f.is_ok());
    INFO(f.status().message());
    CHECK(contains(f.status().message(), "damaged.safetensors"));
    return f.status();
  };
  SECTION("truncated: the last tensor reaches beyond the end") {
    Status st = open_bytes(good.substr(0, good.size() - 4));
    CHECK(st.code() == StatusCode::kDataLoss);
    CHECK(contains(st.message(), "'b.weight'"));
    CHECK(contains(st.message(), "truncated"));
  }
  SECTION("shorter than the length field") { CHECK(contains(open_bytes("abc").message(), "truncated")); }
  SECTION("header length beyond the file") {
    std::string b = good;
    b[5] = 1;  // 2^40 + ...
    CHECK(contains(open_bytes(b).message(), "header length"));
  }
  SECTION("header is not JSON") {
    std::string b = good;
    b.replace(8, 9, "{not json");
    CHECK(contains(open_bytes(b).message(), "not valid JSON"));
  }
  SECTION("header is JSON but not an object") {
    std::string h = "[1, 2, 3]";
    std::string b(8, '\0');
    b[0] = char(h.size());
    CHECK(contains(open_bytes(b + h).message(), "not an object"));
  }
  SECTION("unknown dtype string") {
    Status st = open_bytes(encode({{"q.weight", "Q4_K", {2}, "ab"}}));
    CHECK(contains(st.message(), "'q.weight'"));
    CHECK(contains(st.message(), "Q4_K"));
  }
  SECTION("byte range disagrees with the shape") {
    Status st = open_bytes(encode({{"c.weight", "F32", {3}, f32_bytes({1, 2})}}));
    CHECK(contains(st.message(), "'c.weight'"));
    CHECK(contains(st.message(), "[3]"));
  }
  SECTION("negative dimension") {
    Status st = open_bytes(encode({{"d.weight", "F32", {-1}, ""}}));
    CHECK(contains(st.message(), "'d.weight'"));
  }
  SECTION("metadata value that is not a string") {
    Status st = open_bytes(encode({{"a", "F32", {1}, f32_bytes({1})}}, R"({"n": 3})"));
    CHECK(contains(st.message(), "__metadata__.n"));
  }
}

TEST_CASE("hf: a hand-built directory maps every tensor name to its field", "[hf]") {
  TempDir tmp;
  const auto ts = tiny_tensors();
  const std::string dir = make_tiny_dir(tmp, "m", ts);
  auto m = load_model(dir);  // auto: a directory with config.json
  INFO((m ? "" : m.status().message()));
  REQUIRE(m.is_ok());
  const LoadedModel& lm = **m;
  const ModelConfig& c = lm.config;
  CHECK(c.dim == 8);
  CHECK(c.hidden_dim == 12);
  CHECK(c.n_layers == 2);
  CHECK(c.n_heads == 2);
  CHECK(c.n_kv_heads == 1);
  CHECK(c.head_dim == 4);
  CHECK(c.vocab_size == 16);
  CHECK(c.max_seq_len == 32);
  CHECK(c.rope_layout == RopeLayout::kHalves);
  CHECK_FALSE(c.tied_classifier);
  CHECK(c.sliding_window == 0);
  const ModelWeights& w = lm.weights;
  auto is = [&](const float* p, const std::string& name, int64_t n) {
    INFO(name);
    REQUIRE(p != nullptr);
    CHECK(p[0] == tag_of(ts, name));
    CHECK(p[n - 1] == float(tag_of(ts, name)) + float(n - 1) / 1000.0f);
  };
  is(w.token_embedding, "model.embed_tokens.weight", 128);
  is(w.rms_final, "model.norm.weight", 8);
  is(w.classifier, "lm_head.weight", 128);
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const LayerWeights& L = w.layers[size_t(l)];
    is(L.rms_att, p + "input_layernorm.weight", 8);
    is(L.wq, p + "self_attn.q_proj.weight", 64);
    is(L.wk, p + "self_attn.k_proj.weight", 32);
    is(L.wv, p + "self_attn.v_proj.weight", 32);
    is(L.wo, p + "self_attn.o_proj.weight", 64);
    is(L.rms_ffn, p + "post_attention_layernorm.weight", 8);
    is(L.w1, p + "mlp.gate_proj.weight", 96);
    is(L.w3, p + "mlp.up_proj.weight", 96);
    is(L.w2, p + "mlp.down_proj.weight", 96);
    CHECK(L.bq == nullptr);
  }
  // F32 tensors are views into the mapping, not copies.
  CHECK(lm.owned_arrays.empty());
  const uint8_t* base = lm.file->data();
  CHECK(reinterpret_cast<const uint8_t*>(w.token_embedding) > base);
  CHECK(reinterpret_cast<const uint8_t*>(w.token_embedding) < base + lm.file->size());
}

TEST_CASE("hf: each kind of damage is a start-up error naming the file and tensor or key", "[hf]") {
  TempDir tmp;
  const auto ts = tiny_tensors();
  const std::string up = "model.layers.1.mlp.up_proj.weight";
  SECTION("missing config.json") {
    const std::string dir = make_tiny_dir(tmp, "m", ts);
    fs::remove(fs::path(dir) / "config.json");
    CHECK(contains(load_error(dir), "config.json"));
    auto m = load_model(dir, ModelFormat::kHf);
    REQUIRE_FALSE(m.is_ok());
    CHECK(contains(m.status().message(), "config.json"));
  }
  SECTION("unknown architecture") {
    std::string cfg = kTinyConfig;
    cfg.replace(cfg.find("LlamaForCausalLM"), 16, "GPT2LMHeadModel");
    const std::string msg = load_error(make_tiny_dir(tmp, "m", ts, cfg));
    CHECK(contains(msg, "GPT2LMHeadModel"));
    CHECK(contains(msg, "'architectures'"));
    CHECK(contains(msg, "Qwen2ForCausalLM"));  // lists what is supported
  }
  SECTION("config key of the wrong type") {
    std::string cfg = kTinyConfig;
    cfg.replace(cfg.find("\"hidden_size\": 8"), 16, "\"hidden_size\": \"8\"");
    const std::string msg = load_error(make_tiny_dir(tmp, "m", ts, cfg));
    CHECK(contains(msg, "'hidden_size'"));
    CHECK(contains(msg, "config.json"));
  }
  SECTION("config.json is not JSON") {
    CHECK(contains(load_error(make_tiny_dir(tmp, "m", ts, "{oops")), "config.json"));
  }
  SECTION("unsupported rope_scaling type") {
    std::string cfg = kTinyConfig;
    cfg.insert(cfg.find("\"vocab_size\""), R"("rope_scaling": {"rope_type": "yarn", "factor": 4}, )");
    const std::string msg = load_error(make_tiny_dir(tmp, "m", ts, cfg));
    CHECK(contains(msg, "rope_scaling"));
    CHECK(contains(msg, "yarn"));
  }
  SECTION("missing tensor") {
    const std::string msg = load_error(make_tiny_dir(tmp, "m", without(ts, up)));
    CHECK(contains(msg, up));
    CHECK(contains(msg, "model.safetensors"));
  }
  SECTION("missing lm_head when embeddings are not tied") {
    CHECK(contains(load_error(make_tiny_dir(tmp, "m", without(ts, "lm_head.weight"))), "lm_head.weight"));
  }
  SECTION("wrong shape") {
    const std::string q = "model.layers.0.self_attn.q_proj.weight";
    std::vector<float> v(56, 0.5f);
    const std::string msg = load_error(make_tiny_dir(tmp, "m", with(ts, q, {q, "F32", {7, 8}, f32_bytes(v)})));
    CHECK(contains(msg, q));
    CHECK(contains(msg, "[7, 8]"));
    CHECK(contains(msg, "[8, 8]"));
  }
  SECTION("dtype not supported (I8)") {
    const std::string n = "model.norm.weight";
    const std::string msg = load_error(make_tiny_dir(tmp, "m", with(ts, n, {n, "I8", {8}, "12345678"})));
    CHECK(contains(msg, n));
    CHECK(contains(msg, "I8"));
  }
  SECTION("truncated weights file") {
    const std::string dir = make_tiny_dir(tmp, "m", ts);
    const fs::path f = fs::path(dir) / "model.safetensors";
    fs::resize_file(f, fs::file_size(f) - 10);
    const std::string msg = load_error(dir);
    CHECK(contains(msg, "lm_head.weight"));  // the last tensor in the file
    CHECK(contains(msg, "truncated"));
    CHECK(contains(msg, "model.safetensors"));
  }
  SECTION("header length beyond the file") {
    const std::string dir = make_tiny_dir(tmp, "m", ts);
    std::string b = read_text(fs::path(dir) / "model.safetensors");
    b[4] = char(0x7f);
    write_text(fs::path(dir) / "model.safetensors", b);
    const std::string msg = load_error(dir);
    CHECK(contains(msg, "header length"));
    CHECK(contains(msg, "model.safetensors"));
  }
  SECTION("bad JSON header") {
    const std::string dir = make_tiny_dir(tmp, "m", ts);
    std::string b = read_text(fs::path(dir) / "model.safetensors");
    b[8] = 'x';
    write_text(fs::path(dir) / "model.safetensors", b);
    const std::string msg = load_error(dir);
    CHECK(contains(msg, "not valid JSON"));
    CHECK(contains(msg, "model.safetensors"));
  }
  SECTION("no weights file at all") {
    const std::string dir = make_tiny_dir(tmp, "m", ts);
    fs::remove(fs::path(dir) / "model.safetensors");
    CHECK(contains(load_error(dir), "model.safetensors"));
  }
  SECTION("index names a shard that does not exist, or one that lacks the tensor") {
    const std::string dir = make_tiny_dir(tmp, "m", ts);
    fs::rename(fs::path(dir) / "model.safetensors", fs::path(dir) / "part-1.safetensors");
    std::string map;
    for (const auto& t : ts) map += std::string(map.empty() ? "" : ",") + "\"" + t.name + "\":\"part-1.safetensors\"";
    write_text(fs::path(dir) / "model.safetensors.index.json",
               "{\"weight_map\":{" + map + ",\"x.weight\":\"part-2.safetensors\"}}");
    CHECK(contains(load_error(dir), "part-2.safetensors"));
    write_text(fs::path(dir) / "part-2.safetensors", encode({{"y", "F32", {1}, f32_bytes({1})}}));
    std::string idx = read_text(fs::path(dir) / "model.safetensors.index.json");
    idx.replace(idx.find("\"" + up + "\":\"part-1"), up.size() + 10, "\"" + up + "\":\"part-2");
    write_text(fs::path(dir) / "model.safetensors.index.json", idx);
    const std::string msg = load_error(dir);
    CHECK(contains(msg, up));
    CHECK(contains(msg, "part-2.safetensors"));
  }
}

TEST_CASE("hf: llama3 rope_scaling frequencies follow the published formula", "[hf]") {
  ModelConfig c = tiny(HfFamily::kLlama3);
  c.head_dim = 16;
  const std::vector<float> got = rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling);
  const std::vector<double> ref = reference_inv_freq(c);
  REQUIRE(got.size() == 8);
  // theta 5e5, head_dim 16, original 8192, low 1, high 4: wavelengths
  // 2 pi * 5e5^(i/8): pairs 0..3 are under 2048 (kept), pair 4 (~4443) lies
  // in the smooth band, pairs 5..7 exceed 8192 (divided by 8).
  for (int i = 0; i < 8; ++i) {
    const double plain = std::pow(500000.0, -2.0 * i / 16);
    INFO("pair " << i);
    CHECK(std::fabs(got[size_t(i)] - ref[size_t(i)]) <= 1e-6 * ref[size_t(i)]);
    if (i <= 3) CHECK(std::fabs(got[size_t(i)] - plain) <= 1e-6 * plain);
    if (i >= 5) CHECK(std::fabs(got[size_t(i)] - plain / 8) <= 1e-6 * plain);
  }
  // Pair 4 by hand: s = (8192 / wl - 1) / 3, f = (1 - s) f0 / 8 + s f0.
  const double f0 = std::pow(500000.0, -0.5), wl = 2 * std::numbers::pi / f0, s = (8192 / wl - 1) / 3;
  CHECK(s > 0);
  CHECK(s < 1);
  CHECK(std::fabs(got[4] - ((1 - s) * f0 / 8 + s * f0)) <= 1e-6 * f0);
  // The table uses them, and no scaling keeps llama2.c's table bit for bit.
  RopeTable scaled(64, 16, c.rope_theta, c.rope_scaling);
  CHECK(std::fabs(scaled.cos(50)[6] - std::cos(50.0 * ref[6])) <= 1e-5);
  RopeTable plain(64, 16, 10000.0f), plain2(64, 16, 10000.0f, RopeScaling{});
  CHECK(std::memcmp(plain.cos(63), plain2.cos(63), 8 * sizeof(float)) == 0);
  CHECK(std::memcmp(plain.sin(63), plain2.sin(63), 8 * sizeof(float)) == 0);
  // Linear scaling divides every frequency.
  RopeScaling lin;
  lin.type = RopeScaling::Type::kLinear;
  lin.factor = 4;
  const auto l4 = rope_inv_freq(16, 10000.0f, lin);
  CHECK(l4[3] == rope_inv_freq(16, 10000.0f, RopeScaling{})[3] / 4);
}

TEST_CASE("hf: generated llama2, llama3 and qwen2 models match the reference forward", "[hf]") {
  TempDir tmp;
  SECTION("llama2") {
    const std::string dir = write_random(tmp, "llama2", tiny(HfFamily::kLlama2), HfFamily::kLlama2);
    CHECK(fs::exists(fs::path(dir) / "generation_config.json"));
    CHECK(check_against_reference(dir) <= 1e-4);
  }
  SECTION("llama3 with rope_scaling and an eos list") {
    const std::string dir = write_random(tmp, "llama3", tiny(HfFamily::kLlama3), HfFamily::kLlama3);
    auto cfg = read_hf_config(dir);
    REQUIRE(cfg.is_ok());
    CHECK(cfg->model.rope_scaling.type == RopeScaling::Type::kLlama3);
    CHECK(cfg->model.rope_scaling.factor == 8.0f);
    CHECK(cfg->model.rope_scaling.original_max_position == 8192);
    CHECK(cfg->model.rope_theta == 500000.0f);
    CHECK(cfg->eos_ids == std::vector<int32_t>{2});
    CHECK(check_against_reference(dir) <= 1e-4);
  }
  SECTION("qwen2 with q/k/v biases and tied embeddings") {
    const std::string dir = write_random(tmp, "qwen2", tiny(HfFamily::kQwen2), HfFamily::kQwen2);
    Harness h(dir);
    const LoadedModel& m = *h.loaded;
    CHECK(m.config.tied_classifier);
    CHECK(m.weights.classifier == m.weights.token_embedding);
    CHECK(m.config.sliding_window == 0);  // use_sliding_window: false
    CHECK(m.config.rms_eps == 1e-6f);
    REQUIRE(m.weights.layers[0].bq != nullptr);
    REQUIRE(m.weights.layers[1].bv != nullptr);
    CHECK(m.weights.layers[0].bq[0] != 0.0f);
    CHECK(check_against_reference(dir) <= 1e-4);
    // The biases matter: zeroing them changes the logits.
    auto ref = reference_logits(m, {5, 6, 7});
    LoadedModel copy;
    copy.config = m.config;
    copy.weights = m.weights;
    std::vector<float> zeros(1024, 0.0f);
    for (auto& l : copy.weights.layers) l.bq = l.bk = l.bv = zeros.data();
    auto ref0 = reference_logits(copy, {5, 6, 7});
    CHECK(std::fabs(ref[2][0] - ref0[2][0]) + std::fabs(ref[2][1] - ref0[2][1]) > 1e-4);
  }
  SECTION("qwen2 with use_sliding_window and max_window_layers") {
    const std::string dir = write_random(tmp, "q", tiny(HfFamily::kQwen2), HfFamily::kQwen2);
    std::string cfg = read_text(fs::path(dir) / "config.json");
    cfg.replace(cfg.find("\"use_sliding_window\": false"), 27, "\"use_sliding_window\": true");
    write_text(fs::path(dir) / "config.json", cfg);
    CHECK(load_model(dir).is_ok());  // max_window_layers = layers: no layer slides
    cfg.replace(cfg.find("\"max_window_layers\": 2"), 22, "\"max_window_layers\": 1");
    write_text(fs::path(dir) / "config.json", cfg);
    CHECK(contains(load_error(dir), "max_window_layers"));
  }
}

TEST_CASE("hf: Mistral's sliding window and head_dim != hidden / heads", "[hf]") {
  TempDir tmp;
  SECTION("MistralForCausalLM with sliding_window 5") {
    const std::string dir = write_random(tmp, "mistral", tiny(HfFamily::kLlama2), HfFamily::kLlama2);
    std::string cfg = read_text(fs::path(dir) / "config.json");
    cfg.replace(cfg.find("LlamaForCausalLM"), 16, "MistralForCausalLM");
    cfg.insert(cfg.find("\"vocab_size\""), "\"sliding_window\": 5,\n  ");
    write_text(fs::path(dir) / "config.json", cfg);
    auto hc = read_hf_config(dir);
    REQUIRE(hc.is_ok());
    CHECK(hc->arch == HfArch::kMistral);
    CHECK(hc->model.sliding_window == 5);
    CHECK(check_against_reference(dir, 16) <= 1e-4);
  }
  SECTION("head_dim 32 with hidden 64 and 4 heads (q_dim 128)") {
    ModelConfig c = tiny(HfFamily::kLlama2);
    c.head_dim = 32;
    const std::string dir = write_random(tmp, "hd", c, HfFamily::kLlama2);
    CHECK(contains(read_text(fs::path(dir) / "config.json"), "\"head_dim\": 32"));
    auto hc = read_hf_config(dir);
    REQUIRE(hc.is_ok());
    CHECK(hc->model.head_dim == 32);
    CHECK(hc->model.q_dim() == 128);
    CHECK(check_against_reference(dir) <= 1e-4);
  }
}

TEST_CASE("hf: shards, BF16 and F16 load the same weights", "[hf]") {
  TempDir tmp;
  const ModelConfig c = tiny(HfFamily::kLlama3);
  const std::string one = write_random(tmp, "one", c, HfFamily::kLlama3);
  const std::string three = write_random(tmp, "three", c, HfFamily::kLlama3, SafeDtype::kF32, 3);
  const std::string bf16 = write_random(tmp, "bf16", c, HfFamily::kLlama3, SafeDtype::kBF16, 2);
  const std::string f16 = write_random(tmp, "f16", c, HfFamily::kLlama3, SafeDtype::kF16);
  CHECK(fs::exists(fs::path(three) / "model.safetensors.index.json"));
  CHECK(fs::exists(fs::path(three) / "model-00003-of-00003.safetensors"));
  CHECK_FALSE(fs::exists(fs::path(three) / "model.safetensors"));
  auto a = load_model(one), b = load_model(three), h = load_model(bf16), g = load_model(f16);
  REQUIRE(a.is_ok());
  REQUIRE(b.is_ok());
  REQUIRE(h.is_ok());
  REQUIRE(g.is_ok());
  CHECK((*b)->more_files.size() == 2);
  CHECK((*h)->owned_arrays.size() > 0);
  // Every tensor, pairwise: sharded == single; bf16 == nearest bf16 of f32;
  // f16 within half an f16 ulp.
  auto each = [&](auto fn) {
    const ModelWeights &x = (*a)->weights, &y = (*b)->weights, &z = (*h)->weights, &u = (*g)->weights;
    const int64_t D = c.dim, V = c.vocab_size, H = c.hidden_dim, Q = c.q_dim(), K = c.kv_dim();
    fn(x.token_embedding, y.token_embedding, z.token_embedding, u.token_embedding, V * D);
    fn(x.classifier, y.classifier, z.classifier, u.classifier, V * D);
    fn(x.rms_final, y.rms_final, z.rms_final, u.rms_final, D);
    for (size_t l = 0; l < x.layers.size(); ++l) {
      const auto &p = x.layers[l], &q = y.layers[l], &r = z.layers[l], &s = u.layers[l];
      fn(p.wq, q.wq, r.wq, s.wq, Q * D);
      fn(p.wk, q.wk, r.wk, s.wk, K * D);
      fn(p.wv, q.wv, r.wv, s.wv, K * D);
      fn(p.wo, q.wo, r.wo, s.wo, D * Q);
      fn(p.w1, q.w1, r.w1, s.w1, H * D);
      fn(p.w2, q.w2, r.w2, s.w2, D * H);
      fn(p.w3, q.w3, r.w3, s.w3, H * D);
      fn(p.rms_att, q.rms_att, r.rms_att, s.rms_att, D);
      fn(p.rms_ffn, q.rms_ffn, r.rms_ffn, s.rms_ffn, D);
    }
  };
  int64_t diff_shard = 0, diff_bf16 = 0, diff_f16 = 0, total = 0;
  each([&](const float* x, const float* y, const float* z, const float* u, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      ++total;
      diff_shard += x[i] != y[i];
      diff_bf16 += z[i] != bf16_round_reference(x[i]);
      diff_f16 +=
          std::fabs(double(u[i]) - x[i]) > std::max(std::ldexp(std::fabs(double(x[i])), -11), std::ldexp(1.0, -25));
    }
  });
  CHECK(total == c.num_parameters());
  CHECK(diff_shard == 0);
  CHECK(diff_bf16 == 0);
  CHECK(diff_f16 == 0);
  CHECK(check_against_reference(bf16) <= 1e-4);
}

TEST_CASE("hf: a llama2.c model converted to HF gives the same logits", "[hf]") {
  TempDir tmp;
  auto c = model_preset("tiny");
  REQUIRE(c.is_ok());
  const std::string bin = tmp.sub("tiny.bin");
  REQUIRE(write_random_llama2c(*c, bin, 11, 0.08f).is_ok());
  auto src = load_model(bin);
  REQUIRE(src.is_ok());
  for (SafeDtype dt : {SafeDtype::kF32, SafeDtype::kBF16}) {
    const std::string dir = tmp.sub(std::string("hf_") + safe_dtype_name(dt));
    HfWriteOptions o;
    o.dtype = dt;
    Status st = write_hf_model((*src)->config, (*src)->weights, o, dir);
    INFO(st.message());
    REQUIRE(st.is_ok());
    if (dt == SafeDtype::kBF16) {
      // Rounding changes the function; only the F32 conversion must agree.
      CHECK(load_model(dir).is_ok());
      continue;
    }
    Harness l2c(bin), hf(dir);
    CHECK(l2c.loaded->config.rope_layout == RopeLayout::kAdjacentPairs);
    CHECK(hf.loaded->config.rope_layout == RopeLayout::kHalves);
    const auto tokens = some_tokens(c->vocab_size, 40, 9);
    const auto a = l2c.run(tokens, 17), b = hf.run(tokens, 17);
    REQUIRE(a.size() == b.size());
    double worst = 0, scale = 0;
    for (size_t s = 0; s < a.size(); ++s)
      for (size_t i = 0; i < a[s].size(); ++i) {
        worst = std::max(worst, double(std::fabs(a[s][i] - b[s][i])));
        scale = std::max(scale, double(std::fabs(a[s][i])));
      }
    INFO("worst " << worst << " scale " << scale);
    CHECK(scale > 0.05);
    CHECK(worst <= 1e-4);
    // Without the permutation the logits would differ: the q rows moved.
    CHECK(std::memcmp(l2c.loaded->weights.layers[0].wq, hf.loaded->weights.layers[0].wq,
                      size_t(c->q_dim() * c->dim) * 4) != 0);
  }
}

TEST_CASE("hf: permute_rows_adjacent_to_halves moves rows as transformers' converter does", "[hf]") {
  // 2 heads of head_dim 6, 1 column: row values are their input index.
  std::vector<float> in(12), out(12);
  for (int i = 0; i < 12; ++i) in[size_t(i)] = float(i);
  permute_rows_adjacent_to_halves(in.data(), 2, 6, 1, out.data());
  // view(heads, 3, 2).transpose(1, 2): per head [0, 2, 4, 1, 3, 5].
  CHECK(out == std::vector<float>{0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11});
}

TEST_CASE("hf: the writer rejects what it cannot write", "[hf]") {
  TempDir tmp;
  HfWriteOptions o;
  o.shards = 100000;
  CHECK(contains(write_random_hf(tiny(HfFamily::kLlama2), o, tmp.sub("x"), 1).message(), "shards"));
  o.shards = 1;
  o.dtype = SafeDtype::kI8;
  CHECK(contains(write_random_hf(tiny(HfFamily::kLlama2), o, tmp.sub("y"), 1).message(), "I8"));
  CHECK_FALSE(parse_hf_family("gpt2").is_ok());
  CHECK(*parse_hf_family("qwen2") == HfFamily::kQwen2);
}
