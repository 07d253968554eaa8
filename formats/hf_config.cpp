#include "formats/hf_config.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace pagoda {

using nlohmann::json;

namespace {

struct ArchName {
  const char* architecture;
  const char* model_type;
  HfArch arch;
};
constexpr ArchName kArchs[] = {
    {"LlamaForCausalLM", "llama", HfArch::kLlama},
    {"MistralForCausalLM", "mistral", HfArch::kMistral},
    {"Qwen2ForCausalLM", "qwen2", HfArch::kQwen2},
};

// Typed access to config.json keys; every error names the file and key.
class Keys {
 public:
  Keys(const json& j, const std::string& source) : j_(j), source_(source) {}

  Status error(const std::string& key, const std::string& what) const {
    return Status::invalid_argument(source_ + ": key '" + key + "' " + what);
  }
  // Absent or null.
  bool missing(const std::string& key) const { return !j_.contains(key) || j_[key].is_null(); }

  Status integer(const std::string& key, int64_t* out, bool required) const {
    if (missing(key)) return required ? error(key, "is required (an integer)") : Status::ok();
    const json& v = j_[key];
    if (!v.is_number_integer()) return error(key, "must be an integer, got " + v.dump());
    *out = v.get<int64_t>();
    return Status::ok();
  }
  Status number(const std::string& key, float* out) const {
    if (missing(key)) return Status::ok();
    const json& v = j_[key];
    if (!v.is_number()) return error(key, "must be a number, got " + v.dump());
    *out = v.get<float>();
    return Status::ok();
  }
  Status boolean(const std::string& key, bool* out) const {
    if (missing(key)) return Status::ok();
    const json& v = j_[key];
    if (!v.is_boolean()) return error(key, "must be true or false, got " + v.dump());
    *out = v.get<bool>();
    return Status::ok();
  }

 private:
  const json& j_;
  const std::string& source_;
};

Status parse_rope_scaling(const json& j, const std::string& source, ModelConfig* c) {
  if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return Status::ok();
  const json& r = j["rope_scaling"];
  auto bad = [&](const std::string& what) { return Status::invalid_argument(source + ": key 'rope_scaling' " + what); };
  if (!r.is_object()) return bad("must be an object or null, got " + r.dump());
  // Transformers accepts both "rope_type" and the older "type".
  std::string type;
  for (const char* k : {"rope_type", "type"}) {
    if (r.contains(k) && r[k].is_string()) {
      type = r[k].get<std::string>();
      break;
    }
  }
  if (type.empty()) return bad("needs a string 'rope_type'");
  Keys keys(r, source);
  RopeScaling& s = c->rope_scaling;
  if (type == "default") return Status::ok();
  if (type == "linear") {
    s.type = RopeScaling::Type::kLinear;
  } else if (type == "llama3") {
    s.type = RopeScaling::Type::kLlama3;
    PAGODA_RETURN_IF_ERROR(keys.number("low_freq_factor", &s.low_freq_factor));
    PAGODA_RETURN_IF_ERROR(keys.number("high_freq_factor", &s.high_freq_factor));
    PAGODA_RETURN_IF_ERROR(keys.integer("original_max_position_embeddings", &s.original_max_position, true));
  } else {
    return bad("rope_type '" + type + "' is not supported; supported: default, linear, llama3");
  }
  if (keys.missing("factor")) return bad("needs 'factor'");
  PAGODA_RETURN_IF_ERROR(keys.number("factor", &s.factor));
  return Status::ok();
}

Status parse_eos(const json& j, const std::string& source, HfConfig* out) {
  out->eos_ids.clear();
  if (!j.contains("eos_token_id") || j["eos_token_id"].is_null()) {
    out->eos_ids.push_back(out->model.eos_id);
    return Status::ok();
  }
  const json& v = j["eos_token_id"];
  auto bad = Status::invalid_argument(source +
                                      ": key 'eos_token_id' must be an integer or a "
                                      "non-empty list of integers, got " +
                                      v.dump());
  if (v.is_number_integer()) {
    out->eos_ids.push_back(v.get<int32_t>());
  } else if (v.is_array() && !v.empty()) {
    for (const json& e : v) {
      if (!e.is_number_integer()) return bad;
      out->eos_ids.push_back(e.get<int32_t>());
    }
  } else {
    return bad;
  }
  for (int32_t id : out->eos_ids) {
    if (id < 0 || id >= out->model.vocab_size)
      return Status::invalid_argument(source + ": key 'eos_token_id': id " + std::to_string(id) +
                                      " is outside the vocabulary [0, " + std::to_string(out->model.vocab_size) + ")");
  }
  out->model.eos_id = out->eos_ids.front();
  return Status::ok();
}

}  // namespace

std::string hf_supported_architectures() {
  std::string s;
  for (const ArchName& a : kArchs) {
    if (!s.empty()) s += ", ";
    s += a.architecture;
  }
  return s;
}

Result<HfConfig> parse_hf_config(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return Status::invalid_argument(source + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) return Status::invalid_argument(source + ": not a JSON object");
  HfConfig out;
  // The architecture: "architectures"[0], else "model_type".
  bool found = false;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    out.architecture = j["architectures"][0].get<std::string>();
    for (const ArchName& a : kArchs)
      if (out.architecture == a.architecture) out.arch = a.arch, found = true;
    if (!found)
      return Status::invalid_argument(source + ": key 'architectures': '" + out.architecture +
                                      "' is not supported; supported: " + hf_supported_architectures());
  } else if (j.contains("model_type") && j["model_type"].is_string()) {
    out.architecture = j["model_type"].get<std::string>();
    for (const ArchName& a : kArchs)
      if (out.architecture == a.model_type) out.arch = a.arch, found = true;
    if (!found)
      return Status::invalid_argument(source + ": key 'model_type': '" + out.architecture +
                                      "' is not supported; supported: llama, mistral, qwen2");
  } else {
    return Status::invalid_argument(source + ": key 'architectures' is missing (need one of " +
                                    hf_supported_architectures() + ")");
  }

  Keys keys(j, source);
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    return keys.error("hidden_act", "is " + j["hidden_act"].dump() + "; only \"silu\" is supported");
  ModelConfig& c = out.model;
  PAGODA_RETURN_IF_ERROR(keys.integer("hidden_size", &c.dim, true));
  PAGODA_RETURN_IF_ERROR(keys.integer("intermediate_size", &c.hidden_dim, true));
  PAGODA_RETURN_IF_ERROR(keys.integer("num_hidden_layers", &c.n_layers, true));
  PAGODA_RETURN_IF_ERROR(keys.integer("num_attention_heads", &c.n_heads, true));
  PAGODA_RETURN_IF_ERROR(keys.integer("vocab_size", &c.vocab_size, true));
  if (c.n_heads <= 0) return keys.error("num_attention_heads", "must be positive");
  c.n_kv_heads = c.n_heads;
  PAGODA_RETURN_IF_ERROR(keys.integer("num_key_value_heads", &c.n_kv_heads, false));
  c.head_dim = c.dim / c.n_heads;
  PAGODA_RETURN_IF_ERROR(keys.integer("head_dim", &c.head_dim, false));
  c.max_seq_len = 2048;
  PAGODA_RETURN_IF_ERROR(keys.integer("max_position_embeddings", &c.max_seq_len, false));
  c.rope_theta = 10000.0f;
  PAGODA_RETURN_IF_ERROR(keys.number("rope_theta", &c.rope_theta));
  c.rms_eps = 1e-6f;
  PAGODA_RETURN_IF_ERROR(keys.number("rms_norm_eps", &c.rms_eps));
  c.rope_layout = RopeLayout::kHalves;  // HF q/k rows are stored for rotate_half
  c.tied_classifier = false;
  PAGODA_RETURN_IF_ERROR(keys.boolean("tie_word_embeddings", &c.tied_classifier));
  int64_t bos = 1;
  PAGODA_RETURN_IF_ERROR(keys.integer("bos_token_id", &bos, false));
  c.bos_id = static_cast<int32_t>(bos);
  c.eos_id = 2;
  PAGODA_RETURN_IF_ERROR(parse_rope_scaling(j, source, &c));

  // Sliding window: Mistral uses "sliding_window" (a number or null); Qwen2
  // applies it only with use_sliding_window, to layers >= max_window_layers.
  int64_t window = 0;
  PAGODA_RETURN_IF_ERROR(keys.integer("sliding_window", &window, false));
  if (out.arch == HfArch::kQwen2) {
    bool use = false;
    PAGODA_RETURN_IF_ERROR(keys.boolean("use_sliding_window", &use));
    int64_t from_layer = 0;
    PAGODA_RETURN_IF_ERROR(keys.integer("max_window_layers", &from_layer, false));
    if (!use || from_layer >= c.n_layers) {
      window = 0;
    } else if (from_layer > 0) {
      return keys.error("max_window_layers",
                        "= " + std::to_string(from_layer) +
                            " with use_sliding_window: a window "
                            "on only some layers is not supported (need 0 or >= num_hidden_layers)");
    }
  }
  if (window < 0) return keys.error("sliding_window", "must be null or a positive integer");
  c.sliding_window = window >= c.max_seq_len ? 0 : window;  // a window that covers all is none

  // Attention biases: Qwen2 always has q/k/v biases; Llama/Mistral never
  // (attention_bias: true would also add an o_proj bias, not supported).
  out.qkv_bias = out.arch == HfArch::kQwen2;
  bool attention_bias = false;
  PAGODA_RETURN_IF_ERROR(keys.boolean("attention_bias", &attention_bias));
  if (attention_bias && out.arch != HfArch::kQwen2)
    return keys.error("attention_bias", "is true; biased attention is not supported for " + out.architecture);
  bool mlp_bias = false;
  PAGODA_RETURN_IF_ERROR(keys.boolean("mlp_bias", &mlp_bias));
  if (mlp_bias) return keys.error("mlp_bias", "is true; MLP biases are not supported");

  PAGODA_RETURN_IF_ERROR(parse_eos(j, source, &out));
  Status st = c.validate(/*require_dim_equals_heads=*/false);
  if (!st) return Status::invalid_argument(source + ": " + st.message());
  return out;
}

Result<HfConfig> read_hf_config(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::not_found(path + ": missing (a Hugging Face model directory needs config.json)");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_hf_config(ss.str(), path);
}

}  // namespace pagoda
