#include "formats/hf_reader.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "formats/hf_config.h"
#include "formats/safetensors.h"

namespace pagoda {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The safetensors files of a directory and which one holds each tensor.
// Owns the files until their mappings move into the LoadedModel.
struct TensorSet {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, size_t> where;  // tensor name -> index into files
  std::string listing;                  // the file that lists names (index or single file)

  // The tensor `name`, or an error naming the file it should be in.
  Result<const SafeTensor*> find(const std::string& name, std::string* file) const {
    auto it = where.find(name);
    if (it == where.end()) return Status::not_found(listing + ": missing tensor '" + name + "'");
    const SafetensorsFile& f = *files[it->second];
    *file = f.path();
    const SafeTensor* t = f.find(name);
    if (t == nullptr) {
      return Status::not_found(f.path() + ": missing tensor '" + name + "' (" + listing + " places it in this file)");
    }
    return t;
  }
};

Result<TensorSet> open_tensors(const std::string& dir) {
  TensorSet set;
  const fs::path index = fs::path(dir) / kHfIndexFile;
  const fs::path single = fs::path(dir) / kHfWeightsFile;
  std::error_code ec;
  if (!fs::exists(index, ec)) {
    if (!fs::exists(single, ec)) {
      return Status::not_found(dir + ": no " + std::string(kHfWeightsFile) + " or " + kHfIndexFile +
                               " (only safetensors weights are supported)");
    }
    auto f = SafetensorsFile::open(single.string());
    if (!f) return f.status();
    for (const auto& [name, t] : (*f)->tensors()) set.where[name] = 0;
    set.listing = single.string();
    set.files.push_back(std::move(f).value());
    return set;
  }
  set.listing = index.string();
  std::ifstream in(index, std::ios::binary);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    return Status::data_loss(set.listing + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    return Status::data_loss(set.listing + ": key 'weight_map' is missing or not an object");
  std::map<std::string, size_t> file_index;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string())
      return Status::data_loss(set.listing + ": key 'weight_map." + it.key() + "' is not a string");
    const std::string shard = it.value().get<std::string>();
    if (shard.empty() || fs::path(shard).is_absolute() || shard.find("..") != std::string::npos)
      return Status::data_loss(set.listing + ": key 'weight_map." + it.key() + "': shard '" + shard +
                               "' must be a file name inside the model directory");
    auto [pos, added] = file_index.emplace(shard, set.files.size());
    if (added) {
      auto f = SafetensorsFile::open((fs::path(dir) / shard).string());
      if (!f) return f.status();
      set.files.push_back(std::move(f).value());
    }
    set.where[it.key()] = pos->second;
  }
  if (set.files.empty()) return Status::data_loss(set.listing + ": 'weight_map' lists no tensors");
  return set;
}

// Turns tensors into float32 arrays owned by (or mapped into) one model.
class WeightLoader {
 public:
  WeightLoader(const TensorSet& set, LoadedModel* model) : set_(set), model_(model) {}

  Result<const float*> load(const std::string& name, const std::vector<int64_t>& shape) {
    std::string file;
    auto found = set_.find(name, &file);
    if (!found) return found.status();
    const SafeTensor& t = **found;
    if (t.shape != shape) {
      return Status::invalid_argument(file + ": tensor '" + name + "' has shape " + shape_to_string(t.shape) +
                                      ", but config.json implies " + shape_to_string(shape));
    }
    const auto addr = reinterpret_cast<uintptr_t>(t.data);
    switch (t.dtype) {
      case SafeDtype::kF32:
        if (addr % alignof(float) == 0) return reinterpret_cast<const float*>(t.data);
        return own(t.numel,
                   [&](float* out) { std::memcpy(out, t.data, static_cast<size_t>(t.numel) * sizeof(float)); });
      case SafeDtype::kBF16:
      case SafeDtype::kF16: {
        std::vector<uint16_t> aligned;
        const uint16_t* in = reinterpret_cast<const uint16_t*>(t.data);
        if (addr % alignof(uint16_t) != 0) {
          aligned.resize(static_cast<size_t>(t.numel));
          std::memcpy(aligned.data(), t.data, aligned.size() * 2);
          in = aligned.data();
        }
        const bool bf16 = t.dtype == SafeDtype::kBF16;
        return own(t.numel, [&](float* out) {
          if (bf16) {
            bf16_to_f32_n(in, t.numel, out);
          } else {
            f16_to_f32_n(in, t.numel, out);
          }
        });
      }
      default:
        return Status::invalid_argument(file + ": tensor '" + name + "' has dtype " + safe_dtype_name(t.dtype) +
                                        "; supported: F32, BF16, F16");
    }
  }

 private:
  template <typename Fill>
  const float* own(int64_t n, Fill fill) {
    auto v = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(n));
    fill(v.get());
    model_->owned_arrays.push_back(std::move(v));
    return model_->owned_arrays.back().get();
  }

  const TensorSet& set_;
  LoadedModel* model_;
};

}  // namespace

Result<std::unique_ptr<LoadedModel>> HfReader::read(const std::string& dir) const {
  auto cfg = read_hf_config(dir);
  if (!cfg) return cfg.status();
  auto set = open_tensors(dir);
  if (!set) return set.status();
  const ModelConfig& c = cfg->model;

  auto model = std::make_unique<LoadedModel>();
  model->path = dir;
  model->config = c;
  WeightLoader loader(*set, model.get());
  const int64_t dim = c.dim, hid = c.hidden_dim, q = c.q_dim(), kv = c.kv_dim();
  ModelWeights& w = model->weights;
#define PAGODA_LOAD(dst, name, ...)                                \
  do {                                                             \
    auto r = loader.load(name, std::vector<int64_t>{__VA_ARGS__}); \
    if (!r) return r.status();                                     \
    (dst) = *r;                                                    \
  } while (0)
  PAGODA_LOAD(w.token_embedding, "model.embed_tokens.weight", c.vocab_size, dim);
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = w.layers[static_cast<size_t>(i)];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    PAGODA_LOAD(l.rms_att, p + "input_layernorm.weight", dim);
    PAGODA_LOAD(l.wq, p + "self_attn.q_proj.weight", q, dim);
    PAGODA_LOAD(l.wk, p + "self_attn.k_proj.weight", kv, dim);
    PAGODA_LOAD(l.wv, p + "self_attn.v_proj.weight", kv, dim);
    PAGODA_LOAD(l.wo, p + "self_attn.o_proj.weight", dim, q);
    if (cfg->qkv_bias) {
      PAGODA_LOAD(l.bq, p + "self_attn.q_proj.bias", q);
      PAGODA_LOAD(l.bk, p + "self_attn.k_proj.bias", kv);
      PAGODA_LOAD(l.bv, p + "self_attn.v_proj.bias", kv);
    }
    PAGODA_LOAD(l.rms_ffn, p + "post_attention_layernorm.weight", dim);
    PAGODA_LOAD(l.w1, p + "mlp.gate_proj.weight", hid, dim);
    PAGODA_LOAD(l.w3, p + "mlp.up_proj.weight", hid, dim);
    PAGODA_LOAD(l.w2, p + "mlp.down_proj.weight", dim, hid);
  }
  PAGODA_LOAD(w.rms_final, "model.norm.weight", dim);
  if (c.tied_classifier) {
    w.classifier = w.token_embedding;
  } else {
    PAGODA_LOAD(w.classifier, "lm_head.weight", c.vocab_size, dim);
  }
#undef PAGODA_LOAD
  for (auto& f : set->files) {
    if (!model->file) {
      model->file = f->release_mapping();
    } else {
      model->more_files.push_back(f->release_mapping());
    }
  }
  return model;
}

}  // namespace pagoda
