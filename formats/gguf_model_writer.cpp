#include "formats/gguf_model_writer.h"

#include <cstdio>
#include <filesystem>

#include "gguf/gguf_writer.h"

namespace pagoda {
namespace {

// llama.cpp's general.file_type (llama_ftype) of each encoding.
uint32_t file_type(GgmlType t) {
  switch (t) {
    case GgmlType::kF16:
      return 1;
    case GgmlType::kQ4_0:
      return 2;
    case GgmlType::kQ8_0:
      return 7;
    default:
      return 0;
  }
}

}  // namespace

const std::vector<std::string>& gguf_quant_names() {
  static const std::vector<std::string> names = {"f32", "f16", "q8_0", "q4_0"};
  return names;
}

Result<GgufModelWriteResult> write_gguf_model(const ModelConfig& c, const ModelWeights& w, const std::string& quant,
                                              const std::string& path) {
  GgmlType type;
  if (quant == "f32") type = GgmlType::kF32;
  else if (quant == "f16") type = GgmlType::kF16;
  else if (quant == "q8_0") type = GgmlType::kQ8_0;
  else if (quant == "q4_0") type = GgmlType::kQ4_0;
  else
    return Status::invalid_argument("GGUF encoding '" + quant +
                                    "' is not one make-model writes (f32, f16, q8_0, q4_0)");
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
  g.add_uint32("general.file_type", file_type(type));
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

  auto matrix = [&](const std::string& name, const float* x, int64_t rows, int64_t cols) {
    GgmlType t = type;
    if (cols % 32 != 0 && t != GgmlType::kF32 && t != GgmlType::kF16) {
      t = GgmlType::kF16;
      result.fallbacks.push_back(name);
    }
    g.add_tensor(name, {cols, rows}, t, ggml_quantize(t, x, rows * cols));
  };
  auto vector = [&](const std::string& name, const float* x, int64_t n) {
    g.add_tensor(name, {n}, GgmlType::kF32, ggml_quantize(GgmlType::kF32, x, n));
  };
  const int64_t dim = c.dim, hidden = c.hidden_dim, q = c.q_dim(), kv = c.kv_dim();
  matrix("token_embd.weight", w.token_embedding, c.vocab_size, dim);
  vector("output_norm.weight", w.rms_final, dim);
  if (!c.tied_classifier) matrix("output.weight", w.classifier, c.vocab_size, dim);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const LayerWeights& l = w.layers[static_cast<size_t>(i)];
    const std::string p = "blk." + std::to_string(i) + ".";
    vector(p + "attn_norm.weight", l.rms_att, dim);
    matrix(p + "attn_q.weight", l.wq, q, dim);
    matrix(p + "attn_k.weight", l.wk, kv, dim);
    matrix(p + "attn_v.weight", l.wv, kv, dim);
    matrix(p + "attn_output.weight", l.wo, dim, q);
    vector(p + "ffn_norm.weight", l.rms_ffn, dim);
    matrix(p + "ffn_gate.weight", l.w1, hidden, dim);
    matrix(p + "ffn_down.weight", l.w2, dim, hidden);
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
