#include "formats/gguf_reader.h"

#include <omp.h>

#include <cmath>
#include <initializer_list>
#include <set>
#include <vector>

#include "common/float16.h"
#include "gguf/gguf_file.h"

namespace pagoda {
namespace {

// Fills a ModelConfig from `{arch}.*` and `tokenizer.ggml.*` keys.
class GgufConfigReader {
 public:
  GgufConfigReader(const GgufFile& file, std::string arch) : file_(file), arch_(std::move(arch)) {}

  // `arch.suffix` as a positive integer into *out; `required` refuses a missing key.
  Status integer(const std::string& suffix, int64_t* out, bool required) const {
    const std::string key = arch_ + "." + suffix;
    auto v = file_.get_int(key);
    if (!v) return v.status();
    if (!v->has_value()) {
      if (required) return Status::invalid_argument(file_.path() + ": GGUF key '" + key + "' is missing");
      return Status::ok();
    }
    if (**v <= 0 || **v > (int64_t{1} << 32))
      return Status::invalid_argument(file_.path() + ": GGUF key '" + key + "' = " + std::to_string(**v) +
                                      " is out of range");
    *out = **v;
    return Status::ok();
  }

  Status real(const std::string& suffix, float* out) const {
    const std::string key = arch_ + "." + suffix;
    auto v = file_.get_float(key);
    if (!v) return v.status();
    if (!v->has_value()) return Status::ok();
    if (!std::isfinite(**v) || **v <= 0)
      return Status::invalid_argument(file_.path() + ": GGUF key '" + key + "' = " + std::to_string(**v) +
                                      " is not a positive number");
    *out = static_cast<float>(**v);
    return Status::ok();
  }

  Status token_id(const std::string& key, int32_t* out) const {
    auto v = file_.get_int(key);
    if (!v) return v.status();
    // llama.cpp writes -1 (as uint32 4294967295) for "none".
    if (v->has_value() && **v >= 0 && **v < (int64_t{1} << 31)) *out = static_cast<int32_t>(**v);
    return Status::ok();
  }

 private:
  const GgufFile& file_;
  std::string arch_;
};

Result<ModelConfig> read_config(const GgufFile& file, const std::string& arch) {
  const GgufConfigReader keys(file, arch);
  ModelConfig c;
  PAGODA_RETURN_IF_ERROR(keys.integer("embedding_length", &c.dim, true));
  PAGODA_RETURN_IF_ERROR(keys.integer("feed_forward_length", &c.hidden_dim, true));
  PAGODA_RETURN_IF_ERROR(keys.integer("block_count", &c.n_layers, true));
  PAGODA_RETURN_IF_ERROR(keys.integer("attention.head_count", &c.n_heads, true));
  c.n_kv_heads = c.n_heads;
  PAGODA_RETURN_IF_ERROR(keys.integer("attention.head_count_kv", &c.n_kv_heads, false));
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  PAGODA_RETURN_IF_ERROR(keys.integer("attention.key_length", &c.head_dim, false));
  int64_t value_length = c.head_dim;
  PAGODA_RETURN_IF_ERROR(keys.integer("attention.value_length", &value_length, false));
  if (value_length != c.head_dim)
    return Status::invalid_argument(file.path() + ": GGUF keys '" + arch + ".attention.key_length' and '" + arch +
                                    ".attention.value_length' differ; pagoda runs models whose keys and values "
                                    "have one head width");
  int64_t rope_dims = c.head_dim;
  PAGODA_RETURN_IF_ERROR(keys.integer("rope.dimension_count", &rope_dims, false));
  if (rope_dims != c.head_dim)
    return Status::invalid_argument(
        file.path() + ": GGUF key '" + arch + ".rope.dimension_count' = " + std::to_string(rope_dims) +
        " rotates part of each head (" + std::to_string(c.head_dim) + " wide); pagoda rotates whole heads only");
  c.max_seq_len = 2048;
  PAGODA_RETURN_IF_ERROR(keys.integer("context_length", &c.max_seq_len, false));
  PAGODA_RETURN_IF_ERROR(keys.real("attention.layer_norm_rms_epsilon", &c.rms_eps));
  PAGODA_RETURN_IF_ERROR(keys.real("rope.freq_base", &c.rope_theta));
  c.rope_layout = arch == "qwen2" ? RopeLayout::kHalves : RopeLayout::kAdjacentPairs;

  auto scaling = file.get_string(arch + ".rope.scaling.type");
  if (!scaling) return scaling.status();
  if (scaling->has_value() && **scaling != "none") {
    if (**scaling != "linear")
      return Status::invalid_argument(file.path() + ": GGUF key '" + arch + ".rope.scaling.type' = '" + **scaling +
                                      "' is not supported (none and linear are)");
    float factor = 1.0f;
    PAGODA_RETURN_IF_ERROR(keys.real("rope.scaling.factor", &factor));
    if (factor != 1.0f) {
      c.rope_scaling.type = RopeScaling::Type::kLinear;
      c.rope_scaling.factor = factor;
    }
  }
  // The vocabulary: the embedding's rows are checked against it later.
  auto tokens = file.get_strings("tokenizer.ggml.tokens");
  if (!tokens) return tokens.status();
  if (*tokens != nullptr) c.vocab_size = static_cast<int64_t>((*tokens)->size());
  PAGODA_RETURN_IF_ERROR(keys.integer("vocab_size", &c.vocab_size, false));
  if (const GgufTensorInfo* emb = file.find_tensor("token_embd.weight"); emb != nullptr && emb->dims.size() == 2)
    if (c.vocab_size == 0) c.vocab_size = emb->dims[1];
  PAGODA_RETURN_IF_ERROR(keys.token_id("tokenizer.ggml.bos_token_id", &c.bos_id));
  PAGODA_RETURN_IF_ERROR(keys.token_id("tokenizer.ggml.eos_token_id", &c.eos_id));
  c.tied_classifier = file.find_tensor("output.weight") == nullptr;
  Status st = c.validate(/*require_dim_equals_heads=*/false);
  if (!st) return Status::invalid_argument(file.path() + ": " + st.message());
  return c;
}

// The weight dtype of the precision class a ggml type belongs to (for
// model.weight_dtype auto).
WeightDtype precision_class(GgmlType t) {
  switch (t) {
    case GgmlType::kF32:
      return WeightDtype::kF32;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      return WeightDtype::kBF16;
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ4_K:
    case GgmlType::kQ2_K:
      return WeightDtype::kInt4;
    default:
      return WeightDtype::kInt8;  // q8_0, q5_0, q5_1, q5_K, q6_K
  }
}

bool is_q4(GgmlType t) { return t == GgmlType::kQ4_0 || t == GgmlType::kQ4_1 || t == GgmlType::kQ4_K; }

// The exact f32 values of a tensor of `type` at `data` (`elements` values in
// rows of `row`) into `out`, rows on all threads (one row: on the caller's).
void dequantize(GgmlType type, const uint8_t* data, int64_t row, int64_t elements, float* out) {
  const int64_t n_rows = elements / row;
  const uint64_t row_bytes = ggml_row_bytes(type, row);
#pragma omp parallel for schedule(static) if (n_rows > 1)
  for (int64_t r = 0; r < n_rows; ++r) ggml_dequantize(type, data + r * row_bytes, row, out + r * row);
}

// Turns the file's tensors into float32 views, checking each one's shape,
// and records how each matrix is stored (LoadedModel::stored).
class TensorLoader {
 public:
  TensorLoader(const GgufFile& file, LoadedModel* model, bool expand_matrices)
      : file_(file), model_(model), expand_matrices_(expand_matrices) {}

  // Sets *field to the tensor `name` of shape [rows, cols] (ggml: dims
  // {cols, rows}), a vector when rows == 0; optional tensors leave nullptr
  // when absent. With expand_matrices off, a matrix stored in any type but
  // f32 keeps a null view (LoadedModel::stored says how to expand it).
  Status take(const float** field, const std::string& name, int64_t rows, int64_t cols, bool optional = false) {
    const GgufTensorInfo* t = file_.find_tensor(name);
    if (t == nullptr) {
      if (optional) return Status::ok();
      return Status::invalid_argument(file_.path() + ": tensor '" + name + "' is missing");
    }
    const std::vector<int64_t> want = rows == 0 ? std::vector<int64_t>{cols} : std::vector<int64_t>{cols, rows};
    if (t->dims != want) {
      std::string got, expected;
      for (int64_t d : t->dims) got += (got.empty() ? "" : ", ") + std::to_string(d);
      for (int64_t d : want) expected += (expected.empty() ? "" : ", ") + std::to_string(d);
      return Status::invalid_argument(file_.path() + ": tensor '" + name + "' has shape [" + got + "] (ggml order), " +
                                      "the model's config needs [" + expected + "]");
    }
    const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(t->type));
    if (!info->dequantizable)
      return Status::invalid_argument(file_.path() + ": tensor '" + name + "' has type " + info->name +
                                      ", which pagoda does not read (it reads f32, f16, bf16, q4_0, q4_1, q5_0, "
                                      "q5_1, q8_0, q2_K, q4_K, q5_K, q6_K)");
    used_.insert(name);
    if (rows > 0) remember(field, *t);
    // The data section is aligned to >= 32 bytes and the mapping to a page,
    // so an F32 tensor is a float array in place.
    if (t->type == GgmlType::kF32) {
      *field = reinterpret_cast<const float*>(t->data);
      return Status::ok();
    }
    if (!expand_matrices_ && rows > 0) return Status::ok();  // expanded when packed or, the embedding, row by row
    auto v = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(t->elements));
    dequantize(t->type, t->data, t->dims[0], t->elements, v.get());
    *field = v.get();
    model_->owned_arrays.push_back(std::move(v));
    return Status::ok();
  }

  bool used(const std::string& name) const { return used_.count(name) > 0; }

 private:
  // Records how the matrix at *field is stored: its precision class, and for
  // 4-bit types its groups (read from the mapping, which the model keeps).
  void remember(const float** field, const GgufTensorInfo& t) {
    StoredMatrix& s = model_->stored[field];
    s.precision = precision_class(t.type);
    s.rows = t.elements / t.dims[0];
    s.cols = t.dims[0];
    // `data` points into the mapping, which the model keeps.
    const uint8_t* data = t.data;
    const uint64_t row_bytes = ggml_row_bytes(t.type, t.dims[0]);
    const GgmlType type = t.type;
    if (type != GgmlType::kF32) {
      s.expand = [type, data, row = t.dims[0], row_bytes](int64_t first, int64_t count, float* out) {
        dequantize(type, data + static_cast<uint64_t>(first) * row_bytes, row, count * row, out);
      };
    }
    if (!is_q4(type)) return;
    // q4_0 and q4_1 scales and mins are f16 values already (exact); q4_K's
    // d * sc and dmin * m round to f16 here.
    const int64_t groups = t.dims[0] / 32;
    s.q4 = [data, row_bytes, type, groups](int64_t n, uint8_t* q, uint16_t* scale, uint16_t* min) {
      const uint8_t* row = data + static_cast<uint64_t>(n) * row_bytes;
      for (int64_t g = 0; g < groups; ++g) {
        float sc = 0, mn = 0;
        ggml_q4_group(type, row, g, q + 32 * g, &sc, &mn);
        scale[g] = f32_to_f16(sc);
        min[g] = f32_to_f16(mn);
      }
    };
  }

  const GgufFile& file_;
  LoadedModel* model_;
  bool expand_matrices_;
  std::set<std::string> used_;
};

}  // namespace

Result<std::unique_ptr<LoadedModel>> GgufReader::read(const std::string& path) const {
  auto opened = GgufFile::open(path);
  if (!opened) return opened.status();
  std::unique_ptr<GgufFile> file = std::move(opened).value();
  auto arch = file->get_string("general.architecture");
  if (!arch) return arch.status();
  if (!arch->has_value()) return Status::invalid_argument(path + ": GGUF key 'general.architecture' is missing");
  if (**arch != "llama" && **arch != "qwen2")
    return Status::invalid_argument(path + ": GGUF architecture '" + **arch +
                                    "' is not one pagoda runs (llama, qwen2)");
  if (file->find_tensor("rope_freqs.weight") != nullptr)
    return Status::invalid_argument(path +
                                    ": tensor 'rope_freqs.weight' (per-frequency RoPE factors, Llama 3.1 and "
                                    "later) is not supported yet");
  auto config = read_config(*file, **arch);
  if (!config) return config.status();
  const ModelConfig& c = *config;

  auto model = std::make_unique<LoadedModel>();
  model->path = path;
  model->config = c;
  const int64_t dim = c.dim, hidden = c.hidden_dim, kv = c.kv_dim();
  TensorLoader tensors(*file, model.get(), expand_matrices_);
  ModelWeights& w = model->weights;
  // With expand_matrices off the embedding keeps no f32 copy either: the
  // forward pass expands the rows of a step's tokens (StoredMatrix::expand).
  PAGODA_RETURN_IF_ERROR(tensors.take(&w.token_embedding, "token_embd.weight", c.vocab_size, dim));
  PAGODA_RETURN_IF_ERROR(tensors.take(&w.rms_final, "output_norm.weight", 0, dim));
  if (c.tied_classifier) {
    w.classifier = w.token_embedding;
    model->stored[&w.classifier] = model->stored.at(&w.token_embedding);
  } else {
    PAGODA_RETURN_IF_ERROR(tensors.take(&w.classifier, "output.weight", c.vocab_size, dim));
  }
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = w.layers[static_cast<size_t>(i)];
    const std::string p = "blk." + std::to_string(i) + ".";
    const std::string q = p + "attn_q.weight", k = p + "attn_k.weight", v = p + "attn_v.weight";
    const std::string gate = p + "ffn_gate.weight", up = p + "ffn_up.weight";
    PAGODA_RETURN_IF_ERROR(tensors.take(&l.rms_att, p + "attn_norm.weight", 0, dim));
    PAGODA_RETURN_IF_ERROR(tensors.take(&l.wq, q, c.q_dim(), dim));
    PAGODA_RETURN_IF_ERROR(tensors.take(&l.wk, k, kv, dim));
    PAGODA_RETURN_IF_ERROR(tensors.take(&l.wv, v, kv, dim));
    PAGODA_RETURN_IF_ERROR(tensors.take(&l.wo, p + "attn_output.weight", dim, c.q_dim()));
    PAGODA_RETURN_IF_ERROR(tensors.take(&l.rms_ffn, p + "ffn_norm.weight", 0, dim));
    PAGODA_RETURN_IF_ERROR(tensors.take(&l.w1, gate, hidden, dim));
    PAGODA_RETURN_IF_ERROR(tensors.take(&l.w2, p + "ffn_down.weight", dim, hidden));
    PAGODA_RETURN_IF_ERROR(tensors.take(&l.w3, up, hidden, dim));
    PAGODA_RETURN_IF_ERROR(tensors.take(&l.bq, p + "attn_q.bias", 0, c.q_dim(), true));
    PAGODA_RETURN_IF_ERROR(tensors.take(&l.bk, p + "attn_k.bias", 0, kv, true));
    PAGODA_RETURN_IF_ERROR(tensors.take(&l.bv, p + "attn_v.bias", 0, kv, true));
    const int biases = (l.bq != nullptr) + (l.bk != nullptr) + (l.bv != nullptr);
    if (biases != 0 && biases != 3)
      return Status::invalid_argument(path + ": layer " + std::to_string(i) +
                                      " has some of attn_q/k/v.bias but not all three");
  }
  // A tensor the model does not use (Qwen3's q/k norms, a layer beyond
  // block_count) means a different computation: refused, never ignored.
  for (const GgufTensorInfo& t : file->tensors())
    if (!tensors.used(t.name))
      return Status::invalid_argument(path + ": tensor '" + t.name + "' is not one a " + **arch +
                                      " model uses: this file holds another kind of model");
  model->file = file->release_mapping();
  return model;
}

}  // namespace pagoda
