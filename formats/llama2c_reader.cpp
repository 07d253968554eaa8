#include "formats/llama2c_reader.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "common/mapped_file.h"

namespace pagoda {

Result<ModelConfig> llama2c_config_from_header(const Llama2cHeader& h, const std::string& source) {
  // Sign checks first, so the message speaks about the header field.
  const struct {
    const char* name;
    int32_t value;
  } fields[] = {{"dim", h.dim},         {"hidden_dim", h.hidden_dim}, {"n_layers", h.n_layers},
                {"n_heads", h.n_heads}, {"n_kv_heads", h.n_kv_heads}, {"seq_len", h.seq_len}};
  for (const auto& f : fields) {
    if (f.value <= 0) {
      std::ostringstream os;
      os << source << ": bad llama2.c header: " << f.name << " = " << f.value << " must be positive";
      return Status::invalid_argument(os.str());
    }
  }
  if (h.vocab_size == 0 || h.vocab_size == INT32_MIN) {
    std::ostringstream os;
    os << source << ": bad llama2.c header: vocab_size = " << h.vocab_size
       << " must be non-zero (negative means a separate classifier)";
    return Status::invalid_argument(os.str());
  }
  if (h.dim % h.n_heads != 0) {
    std::ostringstream os;
    os << source << ": bad llama2.c header: dim = " << h.dim << " is not a multiple of n_heads = " << h.n_heads;
    return Status::invalid_argument(os.str());
  }
  ModelConfig c;
  c.dim = h.dim;
  c.hidden_dim = h.hidden_dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.vocab_size = std::abs(h.vocab_size);
  c.tied_classifier = h.vocab_size > 0;
  c.max_seq_len = h.seq_len;
  c.rope_theta = 10000.0f;
  c.rope_layout = RopeLayout::kAdjacentPairs;
  c.rms_eps = 1e-5f;
  c.bos_id = 1;
  c.eos_id = 2;
  Status st = c.validate(/*require_dim_equals_heads=*/true);
  if (!st) return Status::invalid_argument(source + ": bad llama2.c header: " + st.message());
  return c;
}

Llama2cHeader llama2c_header_from_config(const ModelConfig& c) {
  Llama2cHeader h;
  h.dim = static_cast<int32_t>(c.dim);
  h.hidden_dim = static_cast<int32_t>(c.hidden_dim);
  h.n_layers = static_cast<int32_t>(c.n_layers);
  h.n_heads = static_cast<int32_t>(c.n_heads);
  h.n_kv_heads = static_cast<int32_t>(c.n_kv_heads);
  h.vocab_size = static_cast<int32_t>(c.tied_classifier ? c.vocab_size : -c.vocab_size);
  h.seq_len = static_cast<int32_t>(c.max_seq_len);
  return h;
}

uint64_t llama2c_file_size(const ModelConfig& c) {
  // validate() bounds every factor, so none of these products can overflow.
  const uint64_t dim = c.dim, hidden = c.hidden_dim, layers = c.n_layers;
  const uint64_t kv = c.kv_dim(), q = c.q_dim();
  uint64_t floats = uint64_t(c.vocab_size) * dim;                  // token_embedding
  floats += layers * dim;                                          // rms_att
  floats += layers * q * dim;                                      // wq
  floats += 2 * layers * kv * dim;                                 // wk, wv
  floats += layers * dim * q;                                      // wo
  floats += layers * dim;                                          // rms_ffn
  floats += 3 * layers * hidden * dim;                             // w1, w2, w3
  floats += dim;                                                   // rms_final
  floats += uint64_t(c.max_seq_len) * uint64_t(c.head_dim);        // 2 legacy RoPE tables
  if (!c.tied_classifier) floats += uint64_t(c.vocab_size) * dim;  // classifier
  return sizeof(Llama2cHeader) + floats * sizeof(float);
}

Result<std::unique_ptr<LoadedModel>> Llama2cReader::read(const std::string& path) const {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.status();
  std::unique_ptr<MappedFile> file = std::move(mapped).value();
  if (file->size() < sizeof(Llama2cHeader)) {
    std::ostringstream os;
    os << path << ": truncated llama2.c file: " << file->size() << " bytes, shorter than the 28-byte header";
    return Status::data_loss(os.str());
  }
  Llama2cHeader header;
  std::memcpy(&header, file->data(), sizeof(header));
  auto config = llama2c_config_from_header(header, path);
  if (!config) return config.status();
  const ModelConfig& c = *config;
  const uint64_t expected = llama2c_file_size(c);
  if (file->size() != expected) {
    std::ostringstream os;
    os << path << ": " << (file->size() < expected ? "truncated" : "trailing bytes in")
       << " llama2.c file: the header (" << c.summary() << ") needs exactly " << expected << " bytes, the file has "
       << file->size();
    return Status::data_loss(os.str());
  }

  auto model = std::make_unique<LoadedModel>();
  model->path = path;
  model->config = c;
  // The header is 28 bytes, so every array is 4-byte aligned in the mapping.
  const float* p = reinterpret_cast<const float*>(file->data() + sizeof(Llama2cHeader));
  auto take = [&p](uint64_t n) {
    const float* at = p;
    p += n;
    return at;
  };
  const int64_t L = c.n_layers, dim = c.dim, hidden = c.hidden_dim;
  const int64_t q = c.q_dim(), kv = c.kv_dim();
  ModelWeights& w = model->weights;
  w.layers.resize(static_cast<size_t>(L));
  w.token_embedding = take(c.vocab_size * dim);
  // Each kind of array is stored for all layers together.
  for (auto& l : w.layers) l.rms_att = take(dim);
  for (auto& l : w.layers) l.wq = take(q * dim);
  for (auto& l : w.layers) l.wk = take(kv * dim);
  for (auto& l : w.layers) l.wv = take(kv * dim);
  for (auto& l : w.layers) l.wo = take(dim * q);
  for (auto& l : w.layers) l.rms_ffn = take(dim);
  for (auto& l : w.layers) l.w1 = take(hidden * dim);
  for (auto& l : w.layers) l.w2 = take(dim * hidden);
  for (auto& l : w.layers) l.w3 = take(hidden * dim);
  w.rms_final = take(dim);
  take(c.max_seq_len * c.head_dim);  // legacy freq_cis_real + freq_cis_imag
  w.classifier = c.tied_classifier ? w.token_embedding : take(c.vocab_size * dim);
  model->file = std::move(file);
  return model;
}

}  // namespace pagoda
