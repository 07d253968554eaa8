#include "formats/hf_writer.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "engine/kernels/quantize.h"
#include "formats/hf_reader.h"
#include "formats/model_writer.h"

namespace pagoda {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

// One tensor to write: its name, shape and a function that fills its floats.
struct TensorPlan {
  std::string name;
  std::vector<int64_t> shape;
  std::function<void(float*)> fill;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// f32 -> IEEE half, round to nearest even; overflow becomes inf.
uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) return sign | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0u);  // inf, NaN
  if (a >= 0x477ff000u) return sign | 0x7c00u;                                    // >= 65520 rounds to inf
  if (a < 0x38800000u) {  // below 2^-14: f16 subnormal (or zero)
    float v;
    std::memcpy(&v, &a, 4);
    return sign | static_cast<uint16_t>(std::nearbyint(v * 16777216.0f));  // exact * 2^24
  }
  const uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u);              // nearest even on 13 dropped bits
  return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);  // exponent 127 -> 15
}

// The shortest decimal that reads back as `f` (1e-06, not 9.99999997e-07).
double short_decimal(float f) {
  for (int digits = 1; digits < 10; ++digits) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(f));
    const double d = std::strtod(buf, nullptr);
    if (static_cast<float>(d) == f) return d;
  }
  return static_cast<double>(f);
}

const char* torch_dtype(SafeDtype d) {
  switch (d) {
    case SafeDtype::kBF16:
      return "bfloat16";
    case SafeDtype::kF16:
      return "float16";
    default:
      return "float32";
  }
}

ojson config_json(const ModelConfig& c, HfFamily family, SafeDtype dtype) {
  ojson j;
  const bool qwen = family == HfFamily::kQwen2;
  j["architectures"] = {qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
  j["model_type"] = qwen ? "qwen2" : "llama";
  j["hidden_size"] = c.dim;
  j["intermediate_size"] = c.hidden_dim;
  j["num_hidden_layers"] = c.n_layers;
  j["num_attention_heads"] = c.n_heads;
  j["num_key_value_heads"] = c.n_kv_heads;
  if (c.head_dim * c.n_heads != c.dim) j["head_dim"] = c.head_dim;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = c.max_seq_len;
  j["rms_norm_eps"] = short_decimal(c.rms_eps);
  j["rope_theta"] = short_decimal(c.rope_theta);
  if (c.rope_scaling.type == RopeScaling::Type::kLlama3) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", c.rope_scaling.factor},
                         {"low_freq_factor", c.rope_scaling.low_freq_factor},
                         {"high_freq_factor", c.rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", c.rope_scaling.original_max_position}};
  } else if (c.rope_scaling.type == RopeScaling::Type::kLinear) {
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  if (qwen) {
    j["use_sliding_window"] = c.sliding_window > 0;
    j["sliding_window"] = c.sliding_window > 0 ? c.sliding_window : c.max_seq_len;
    j["max_window_layers"] = c.sliding_window > 0 ? 0 : c.n_layers;
  } else {
    j["attention_bias"] = false;
    j["mlp_bias"] = false;
  }
  j["vocab_size"] = c.vocab_size;
  j["bos_token_id"] = c.bos_id;
  if (family == HfFamily::kLlama3) {
    j["eos_token_id"] = {c.eos_id};
  } else {
    j["eos_token_id"] = c.eos_id;
  }
  j["tie_word_embeddings"] = c.tied_classifier;
  j["torch_dtype"] = torch_dtype(dtype);
  return j;
}

Status write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::invalid_argument(path.string() + ": cannot write");
  return Status::ok();
}

std::string shard_name(int k, int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", k + 1, n);
  return buf;
}

// Shard of each tensor: contiguous, balanced by bytes, none empty.
std::vector<int> assign_shards(const std::vector<int64_t>& bytes, int n) {
  int64_t total = 0;
  for (int64_t b : bytes) total += b;
  std::vector<int> shard(bytes.size());
  const int T = static_cast<int>(bytes.size());
  int s = 0, in_s = 0;
  int64_t cum = 0;
  for (int i = 0; i < T; ++i) {
    const bool must = T - i == n - 1 - s;  // one tensor left per remaining shard
    if (in_s > 0 && s < n - 1 && (must || cum * n >= (s + 1) * total)) ++s, in_s = 0;
    shard[static_cast<size_t>(i)] = s;
    ++in_s;
    cum += bytes[static_cast<size_t>(i)];
  }
  return shard;
}

Status write_plan(const ModelConfig& c, const std::vector<TensorPlan>& plan, const HfWriteOptions& o,
                  const std::string& dir) {
  if (o.dtype != SafeDtype::kF32 && o.dtype != SafeDtype::kBF16 && o.dtype != SafeDtype::kF16)
    return Status::invalid_argument(std::string("hf writer: dtype ") + safe_dtype_name(o.dtype) +
                                    " is not supported; allowed: F32, BF16, F16");
  if (o.shards < 1 || o.shards > static_cast<int>(plan.size()))
    return Status::invalid_argument("hf writer: shards = " + std::to_string(o.shards) + " must be in 1.." +
                                    std::to_string(plan.size()) + " (one tensor at least per shard)");
  if (c.sliding_window > 0 && o.family != HfFamily::kQwen2)
    return Status::invalid_argument("hf writer: a sliding window cannot be written for family " +
                                    hf_family_names()[static_cast<size_t>(o.family)]);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::invalid_argument(dir + ": cannot create directory: " + ec.message());

  const int64_t esize = safe_dtype_size(o.dtype);
  std::vector<int64_t> bytes;
  for (const TensorPlan& t : plan) bytes.push_back(t.numel() * esize);
  const std::vector<int> shard = assign_shards(bytes, o.shards);
  ojson weight_map = ojson::object();
  int64_t total = 0;
  std::vector<float> buf;
  std::vector<uint16_t> half;
  for (int s = 0; s < o.shards; ++s) {
    const std::string name = o.shards == 1 ? kHfWeightsFile : shard_name(s, o.shards);
    SafetensorsWriter w((fs::path(dir) / name).string());
    w.add_metadata("format", "pt");
    for (size_t i = 0; i < plan.size(); ++i) {
      if (shard[i] != s) continue;
      w.declare(plan[i].name, o.dtype, plan[i].shape);
      weight_map[plan[i].name] = name;
    }
    total += w.data_bytes();
    PAGODA_RETURN_IF_ERROR(w.begin());
    for (size_t i = 0; i < plan.size(); ++i) {
      if (shard[i] != s) continue;
      const int64_t n = plan[i].numel();
      buf.resize(static_cast<size_t>(n));
      plan[i].fill(buf.data());
      if (o.dtype == SafeDtype::kF32) {
        PAGODA_RETURN_IF_ERROR(w.append(buf.data(), static_cast<size_t>(n) * 4));
        continue;
      }
      half.resize(static_cast<size_t>(n));
      if (o.dtype == SafeDtype::kBF16) {
        f32_to_bf16_n(buf.data(), n, half.data());
      } else {
        for (int64_t k = 0; k < n; ++k) half[static_cast<size_t>(k)] = f32_to_f16(buf[static_cast<size_t>(k)]);
      }
      PAGODA_RETURN_IF_ERROR(w.append(half.data(), static_cast<size_t>(n) * 2));
    }
    PAGODA_RETURN_IF_ERROR(w.finish());
  }
  if (o.shards > 1) {
    ojson index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    PAGODA_RETURN_IF_ERROR(write_text(fs::path(dir) / kHfIndexFile, index.dump(2) + "\n"));
  }
  ojson gen = {{"_from_model_config", true}, {"bos_token_id", c.bos_id}, {"eos_token_id", c.eos_id}};
  PAGODA_RETURN_IF_ERROR(write_text(fs::path(dir) / "generation_config.json", gen.dump(2) + "\n"));
  // config.json last: a directory without it is not mistaken for a model.
  return write_text(fs::path(dir) / kHfConfigFile, config_json(c, o.family, o.dtype).dump(2) + "\n");
}

// The tensors of `c` in transformers' order; `source(kind, layer, out)`
// fills each one. Kinds: embed, rms_att, wq, wk, wv, bq, bk, bv, wo,
// rms_ffn, w1 (gate), w3 (up), w2 (down), rms_final, classifier.
using Source = std::function<void(const char* kind, int64_t layer, float* out)>;

std::vector<TensorPlan> make_plan(const ModelConfig& c, bool bias, const Source& src) {
  std::vector<TensorPlan> plan;
  auto add = [&](std::string name, std::vector<int64_t> shape, const char* kind, int64_t layer) {
    plan.push_back({std::move(name), std::move(shape), [src, kind, layer](float* out) { src(kind, layer, out); }});
  };
  const int64_t dim = c.dim, hid = c.hidden_dim, q = c.q_dim(), kv = c.kv_dim();
  add("model.embed_tokens.weight", {c.vocab_size, dim}, "embed", -1);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", {dim}, "rms_att", i);
    add(p + "self_attn.q_proj.weight", {q, dim}, "wq", i);
    add(p + "self_attn.k_proj.weight", {kv, dim}, "wk", i);
    add(p + "self_attn.v_proj.weight", {kv, dim}, "wv", i);
    if (bias) {
      add(p + "self_attn.q_proj.bias", {q}, "bq", i);
      add(p + "self_attn.k_proj.bias", {kv}, "bk", i);
      add(p + "self_attn.v_proj.bias", {kv}, "bv", i);
    }
    add(p + "self_attn.o_proj.weight", {dim, q}, "wo", i);
    add(p + "post_attention_layernorm.weight", {dim}, "rms_ffn", i);
    add(p + "mlp.gate_proj.weight", {hid, dim}, "w1", i);
    add(p + "mlp.up_proj.weight", {hid, dim}, "w3", i);
    add(p + "mlp.down_proj.weight", {dim, hid}, "w2", i);
  }
  add("model.norm.weight", {dim}, "rms_final", -1);
  if (!c.tied_classifier) add("lm_head.weight", {c.vocab_size, dim}, "classifier", -1);
  return plan;
}

}  // namespace

const std::vector<std::string>& hf_family_names() {
  static const std::vector<std::string> names = {"llama2", "llama3", "qwen2"};
  return names;
}

Result<HfFamily> parse_hf_family(const std::string& name) {
  const auto& names = hf_family_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<HfFamily>(i);
  return Status::invalid_argument("model family '" + name + "' is not known; allowed: llama2, llama3, qwen2");
}

ModelConfig hf_family_config(const ModelConfig& shape, HfFamily family) {
  ModelConfig c = shape;
  c.rope_layout = RopeLayout::kHalves;
  c.rope_scaling = RopeScaling{};
  switch (family) {
    case HfFamily::kLlama2:
      c.rope_theta = 10000.0f;
      c.rms_eps = 1e-5f;
      c.tied_classifier = false;
      break;
    case HfFamily::kLlama3:
      c.rope_theta = 500000.0f;
      c.rms_eps = 1e-5f;
      c.tied_classifier = false;
      c.rope_scaling.type = RopeScaling::Type::kLlama3;
      c.rope_scaling.factor = 8.0f;
      c.rope_scaling.low_freq_factor = 1.0f;
      c.rope_scaling.high_freq_factor = 4.0f;
      c.rope_scaling.original_max_position = 8192;
      break;
    case HfFamily::kQwen2:
      c.rope_theta = 1000000.0f;
      c.rms_eps = 1e-6f;
      c.tied_classifier = true;
      break;
  }
  return c;
}

void permute_rows_adjacent_to_halves(const float* in, int64_t n_heads, int64_t head_dim, int64_t cols, float* out) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const float* src = in + (h * head_dim + 2 * i + j) * cols;
        float* dst = out + (h * head_dim + j * half + i) * cols;
        std::memcpy(dst, src, static_cast<size_t>(cols) * sizeof(float));
      }
    }
  }
}

Status write_random_hf(const ModelConfig& config, const HfWriteOptions& options, const std::string& dir, uint64_t seed,
                       float stddev) {
  PAGODA_RETURN_IF_ERROR(config.validate(/*require_dim_equals_heads=*/false));
  if (!(stddev >= 0.0f) || !std::isfinite(stddev))
    return Status::invalid_argument("write_random_hf: stddev must be finite and >= 0");
  const ModelConfig& c = config;
  // Each tensor gets its own RNG stream: (kind, layer) -> a stable id.
  const std::vector<std::string> kinds = {"embed", "rms_att", "wq", "wk", "wv", "bq",        "bk",        "bv",
                                          "wo",    "rms_ffn", "w1", "w3", "w2", "rms_final", "classifier"};
  auto src = [&c, kinds, seed, stddev](const char* kind, int64_t layer, float* out) {
    const int64_t n = [&]() -> int64_t {
      const std::string k = kind;
      if (k == "embed" || k == "classifier") return c.vocab_size * c.dim;
      if (k == "rms_att" || k == "rms_ffn" || k == "rms_final") return c.dim;
      if (k == "wq" || k == "wo") return c.q_dim() * c.dim;
      if (k == "wk" || k == "wv") return c.kv_dim() * c.dim;
      if (k == "bq") return c.q_dim();
      if (k == "bk" || k == "bv") return c.kv_dim();
      return c.hidden_dim * c.dim;  // w1, w2, w3
    }();
    if (std::strncmp(kind, "rms", 3) == 0) {
      std::fill(out, out + n, 1.0f);
      return;
    }
    uint64_t id = 0;
    while (kinds[id] != kind) ++id;
    const uint64_t stream = (static_cast<uint64_t>(layer + 1) << 8) | id;
    fill_normal(seed, stream, stddev, out, n);
  };
  return write_plan(c, make_plan(c, options.family == HfFamily::kQwen2, src), options, dir);
}

Status write_hf_model(const ModelConfig& config, const ModelWeights& w, const HfWriteOptions& options,
                      const std::string& dir) {
  const ModelConfig& c = config;
  PAGODA_RETURN_IF_ERROR(c.validate(/*require_dim_equals_heads=*/false));
  if (static_cast<int64_t>(w.layers.size()) != c.n_layers)
    return Status::invalid_argument("write_hf_model: weights have " + std::to_string(w.layers.size()) +
                                    " layers, config " + std::to_string(c.n_layers));
  const bool bias = !w.layers.empty() && w.layers[0].bq != nullptr;
  if (bias != (options.family == HfFamily::kQwen2))
    return Status::invalid_argument("write_hf_model: q/k/v biases are written exactly for family qwen2");
  const bool permute = c.rope_layout == RopeLayout::kAdjacentPairs;
  auto src = [&c, &w, permute](const char* kind, int64_t layer, float* out) {
    const std::string k = kind;
    const LayerWeights* l = layer >= 0 ? &w.layers[static_cast<size_t>(layer)] : nullptr;
    auto copy = [out](const float* p, int64_t n) { std::memcpy(out, p, static_cast<size_t>(n) * sizeof(float)); };
    auto rows = [&](const float* p, int64_t heads, int64_t cols) {
      if (permute) {
        permute_rows_adjacent_to_halves(p, heads, c.head_dim, cols, out);
      } else {
        copy(p, heads * c.head_dim * cols);
      }
    };
    if (k == "embed") return copy(w.token_embedding, c.vocab_size * c.dim);
    if (k == "classifier") return copy(w.classifier, c.vocab_size * c.dim);
    if (k == "rms_final") return copy(w.rms_final, c.dim);
    if (k == "rms_att") return copy(l->rms_att, c.dim);
    if (k == "rms_ffn") return copy(l->rms_ffn, c.dim);
    if (k == "wq") return rows(l->wq, c.n_heads, c.dim);
    if (k == "wk") return rows(l->wk, c.n_kv_heads, c.dim);
    if (k == "bq") return rows(l->bq, c.n_heads, 1);
    if (k == "bk") return rows(l->bk, c.n_kv_heads, 1);
    if (k == "wv") return copy(l->wv, c.kv_dim() * c.dim);
    if (k == "bv") return copy(l->bv, c.kv_dim());
    if (k == "wo") return copy(l->wo, c.dim * c.q_dim());
    if (k == "w1") return copy(l->w1, c.hidden_dim * c.dim);
    if (k == "w3") return copy(l->w3, c.hidden_dim * c.dim);
    if (k == "w2") return copy(l->w2, c.dim * c.hidden_dim);
  };
  ModelConfig out = c;
  out.rope_layout = RopeLayout::kHalves;
  return write_plan(out, make_plan(out, bias, src), options, dir);
}

}  // namespace pagoda
