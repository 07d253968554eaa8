#include "formats/gguf_model_writer.h"

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "gguf/gguf_writer.h"

namespace pagoda {
namespace {

// What a --quant name writes: the matrices' type (for q4_k_m, the type of
// those llama.cpp does not promote) and llama.cpp's general.file_type
// (llama_ftype). `k_mix`: llama.cpp's per-tensor rules apply (see
// matrix_type); otherwise every matrix is `base`.
struct Encoding {
  GgmlType base = GgmlType::kF32;
  uint32_t file_type = 0;
  bool k_mix = false;
};

bool find_encoding(const std::string& quant, Encoding* e) {
  if (quant == "f32") *e = {GgmlType::kF32, 0, false};
  else if (quant == "f16") *e = {GgmlType::kF16, 1, false};
  else if (quant == "q8_0") *e = {GgmlType::kQ8_0, 7, false};
  else if (quant == "q4_0") *e = {GgmlType::kQ4_0, 2, false};
  else if (quant == "q4_k_m") *e = {GgmlType::kQ4_K, 15, true};
  else if (quant == "q6_k") *e = {GgmlType::kQ6_K, 18, true};
  else return false;
  return true;
}

// The matrices a llama model has, as llama.cpp's quantizer tells them apart.
enum class Role { kOutput, kTokenEmbd, kAttnV, kFfnDown, kOther };

// llama.cpp's use_more_bits: the first and last eighth of the layers and
// every third one between them.
bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

int64_t block_of(GgmlType t) { return ggml_type_info(static_cast<uint32_t>(t))->block_elements; }

// The type llama.cpp's llama_tensor_get_type gives a matrix of a llama model
// (no experts, not Falcon) for Q4_K_M and Q6_K, rows of `cols` weights:
//  - output.weight (or token_embd.weight when the classifier is tied): q6_K,
//    or q8_0 when its rows are not a multiple of the base type's 256;
//  - Q4_K_M: attn_v and ffn_down of the layers where use_more_bits holds:
//    q6_K; the rest (token_embd included) q4_K;
//  - a K type whose block does not divide the rows falls back to q5_0 (for
//    q4_K) or q8_0 (q6_K); one whose 32 still does not, to f16.
// One difference: llama.cpp writes 70B (80-layer GQA) models' other attn_v
// as q5_K, which pagoda does not quantize; they stay q4_K here.
GgmlType matrix_type(const Encoding& e, Role role, int64_t layer, int64_t n_layers, int64_t cols) {
  if (!e.k_mix) return cols % block_of(e.base) == 0 || e.base == GgmlType::kF32 ? e.base : GgmlType::kF16;
  GgmlType t = e.base;
  if (role == Role::kOutput) {
    t = cols % block_of(e.base) != 0 ? GgmlType::kQ8_0 : GgmlType::kQ6_K;
  } else if ((role == Role::kAttnV || role == Role::kFfnDown) && e.base == GgmlType::kQ4_K &&
             use_more_bits(layer, n_layers)) {
    t = GgmlType::kQ6_K;
  }
  if (cols % block_of(t) != 0) {
    if (t == GgmlType::kQ4_K) t = GgmlType::kQ5_0;
    else if (t == GgmlType::kQ6_K) t = GgmlType::kQ8_0;
    if (cols % block_of(t) != 0) t = GgmlType::kF16;
  }
  return t;
}

// ggml_quantize of a [rows, cols] matrix, rows spread over OpenMP's threads
// (the K types' search makes one thread slow on large models).
std::vector<uint8_t> quantize_rows(GgmlType t, const float* x, int64_t rows, int64_t cols) {
  const uint64_t row_bytes = ggml_row_bytes(t, cols);
  std::vector<uint8_t> out(static_cast<size_t>(row_bytes) * static_cast<size_t>(rows));
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<uint8_t> row = ggml_quantize(t, x + r * cols, cols);
    std::memcpy(out.data() + static_cast<uint64_t>(r) * row_bytes, row.data(), row_bytes);
  }
  return out;
}

}  // namespace

const std::vector<std::string>& gguf_quant_names() {
  static const std::vector<std::string> names = {"f32", "f16", "q8_0", "q4_0", "q4_k_m", "q6_k"};
  return names;
}

Result<GgufModelWriteResult> write_gguf_model(const ModelConfig& c, const ModelWeights& w, const std::string& quant,
                                              const std::string& path) {
  Encoding enc;
  if (!find_encoding(quant, &enc))
    return Status::invalid_argument("GGUF encoding '" + quant +
                                    "' is not one make-model writes (f32, f16, q8_0, q4_0, q4_k_m, q6_k)");
  if (c.rope_layout != RopeLayout::kAdjacentPairs)
    return Status::invalid_argument(
        "write_gguf_model: the weights use RoPE on halves; GGUF's llama architecture "
        "rotates adjacent pairs");
  if (c.rope_scaling.type != RopeScaling::Type::kNone || w.layers.empty() || w.layers[0].bq != nullptr)
    return Status::invalid_argument("write_gguf_model: rope scaling and attention biases are not written");

  GgufModelWriteResult result;
  GgufWriter g;
  g.add_string("general.architecture", "llama");
  g.add_string("general.name", std::filesystem::path(path).stem().string());
  g.add_uint32("general.file_type", enc.file_type);
  g.add_uint32("llama.context_length", static_cast<uint32_t>(c.max_seq_len));
  g.add_uint32("llama.embedding_length", static_cast<uint32_t>(c.dim));
  g.add_uint32("llama.block_count", static_cast<uint32_t>(c.n_layers));
  g.add_uint32("llama.feed_forward_length", static_cast<uint32_t>(c.hidden_dim));
  g.add_uint32("llama.attention.head_count", static_cast<uint32_t>(c.n_heads));
  g.add_uint32("llama.attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  if (c.head_dim * c.n_heads != c.dim) {
    g.add_uint32("llama.attention.key_length", static_cast<uint32_t>(c.head_dim));
    g.add_uint32("llama.attention.value_length", static_cast<uint32_t>(c.head_dim));
  }
  g.add_float32("llama.attention.layer_norm_rms_epsilon", c.rms_eps);
  g.add_uint32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  g.add_float32("llama.rope.freq_base", c.rope_theta);
  g.add_uint32("llama.vocab_size", static_cast<uint32_t>(c.vocab_size));
  g.add_uint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(c.bos_id));
  g.add_uint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(c.eos_id));

  auto matrix = [&](const std::string& name, const float* x, int64_t rows, int64_t cols, Role role = Role::kOther,
                    int64_t layer = 0) {
    const GgmlType t = matrix_type(enc, role, layer, c.n_layers, cols);
    // What the rule wanted had the rows fit: the same call with rows of 256.
    const GgmlType wanted = matrix_type(enc, role, layer, c.n_layers, 256);
    if (t != wanted)
      result.fallbacks.push_back(
          {name, ggml_type_name(static_cast<uint32_t>(wanted)), ggml_type_name(static_cast<uint32_t>(t))});
    g.add_tensor(name, {cols, rows}, t, quantize_rows(t, x, rows, cols));
  };
  auto vector = [&](const std::string& name, const float* x, int64_t n) {
    g.add_tensor(name, {n}, GgmlType::kF32, ggml_quantize(GgmlType::kF32, x, n));
  };
  const int64_t dim = c.dim, hidden = c.hidden_dim, q = c.q_dim(), kv = c.kv_dim();
  matrix("token_embd.weight", w.token_embedding, c.vocab_size, dim,
         c.tied_classifier ? Role::kOutput : Role::kTokenEmbd);
  vector("output_norm.weight", w.rms_final, dim);
  if (!c.tied_classifier) matrix("output.weight", w.classifier, c.vocab_size, dim, Role::kOutput);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const LayerWeights& l = w.layers[static_cast<size_t>(i)];
    const std::string p = "blk." + std::to_string(i) + ".";
    vector(p + "attn_norm.weight", l.rms_att, dim);
    matrix(p + "attn_q.weight", l.wq, q, dim);
    matrix(p + "attn_k.weight", l.wk, kv, dim);
    matrix(p + "attn_v.weight", l.wv, kv, dim, Role::kAttnV, i);
    matrix(p + "attn_output.weight", l.wo, dim, q);
    vector(p + "ffn_norm.weight", l.rms_ffn, dim);
    matrix(p + "ffn_gate.weight", l.w1, hidden, dim);
    matrix(p + "ffn_down.weight", l.w2, dim, hidden, Role::kFfnDown, i);
    matrix(p + "ffn_up.weight", l.w3, hidden, dim);
  }
  const std::string part = path + ".part";
  PAGODA_RETURN_IF_ERROR(g.write(part));
  std::error_code ec;
  std::filesystem::rename(part, path, ec);
  if (ec) return Status::invalid_argument("cannot rename " + part + " to " + path + ": " + ec.message());
  result.bytes = std::filesystem::file_size(path, ec);
  return result;
}

}  // namespace pagoda
