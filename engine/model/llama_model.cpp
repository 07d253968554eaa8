#include "engine/model/llama_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/huge_pages.h"
#include "engine/kernels/q4_gemv.h"

namespace pagoda {

namespace {

// Higher is more precise: a fused matrix takes the most precise of its parts.
int precision_rank(WeightDtype d) {
  switch (d) {
    case WeightDtype::kInt4:
      return 0;
    case WeightDtype::kInt8:
      return 1;
    case WeightDtype::kBF16:
      return 2;
    case WeightDtype::kF32:
      return 3;
  }
  return 3;
}

// One matrix of a Linear: the address of its pointer in LoadedModel::weights
// (the key of LoadedModel::stored) and its rows.
struct Part {
  const float* const* field;
  int64_t rows;
};

// One Linear of `parts` (stacked rows, `in` columns) in `dtype`, or in its
// parts' stored precision when `dtype` is nullopt. Parts without f32 values
// (StoredMatrix::expand) go to int8 Linears as row sources (quantized a few
// rows at a time) and to int4 ones as their groups; for other dtypes they
// are expanded into `scratch` first, one Linear's worth at a time, so
// loading faults in the largest Linear's pages once instead of a copy of
// every matrix.
Result<Linear> make_linear(const LoadedModel& model, std::initializer_list<Part> parts, int64_t in,
                           std::optional<WeightDtype> dtype, ScratchBuffer& scratch) {
  std::vector<WeightBlock> blocks;
  std::vector<const StoredMatrix*> stored_parts;
  WeightDtype d = dtype.value_or(WeightDtype::kInt4);
  for (const Part& p : parts) {
    WeightBlock b{*p.field, p.rows};
    const auto it = model.stored.find(p.field);
    const StoredMatrix* stored = it == model.stored.end() ? nullptr : &it->second;
    if (!dtype) {
      const WeightDtype own = stored ? stored->precision : WeightDtype::kF32;
      if (precision_rank(own) > precision_rank(d)) d = own;
    }
    if (stored && stored->q4) b.q4 = &stored->q4;
    if (stored && stored->expand) b.f32_rows = &stored->expand;
    blocks.push_back(b);
    stored_parts.push_back(stored);
  }
  // Without a vector int4 kernel (the baseline level: no AVX2) auto runs
  // 4-bit matrices on the int8 kernels instead of the scalar int4 path.
  if (!dtype && d == WeightDtype::kInt4 && !q4::vector_kernel()) d = WeightDtype::kInt8;
  // bf16 matmuls need AVX-512 (Linear::dtype_supported): auto then keeps the f32 values.
  if (!dtype && d == WeightDtype::kBF16 && !Linear::dtype_supported(d)) d = WeightDtype::kF32;
  // int4 packs from the groups when every part has them; else every part
  // needs its f32 values.
  const bool from_groups =
      d == WeightDtype::kInt4 && std::all_of(blocks.begin(), blocks.end(), [](const WeightBlock& b) { return b.q4; });
  // int8 quantizes unexpanded parts from their rows (WeightBlock::f32_rows).
  if (!from_groups && d != WeightDtype::kInt8) {
    int64_t missing_rows = 0;
    for (size_t i = 0; i < blocks.size(); ++i) {
      if (blocks[i].data != nullptr) continue;
      if (stored_parts[i] == nullptr || !stored_parts[i]->expand)
        return Status::internal("a weight matrix was loaded without its values");
      missing_rows += blocks[i].rows;
    }
    if (missing_rows > 0) {
      const size_t bytes = static_cast<size_t>(missing_rows * in) * sizeof(float);
      auto* next = static_cast<float*>(scratch.get(bytes));
      if (next == nullptr)
        return Status::resource_exhausted("out of memory expanding a weight matrix (" + std::to_string(bytes >> 20) +
                                          " MiB)");
      for (size_t i = 0; i < blocks.size(); ++i) {
        if (blocks[i].data != nullptr) continue;
        stored_parts[i]->expand(0, blocks[i].rows, next);
        blocks[i].data = next;
        next += blocks[i].rows * in;
      }
    }
  }
  return Linear::create_fused(blocks, in, d);
}

}  // namespace

Result<std::optional<WeightDtype>> parse_weight_choice(const std::string& name) {
  if (name == "auto") return std::optional<WeightDtype>();
  auto d = parse_weight_dtype(name);
  if (!d)
    return Status::invalid_argument("weight dtype '" + name + "' is not known; allowed: auto, f32, bf16, int8, int4");
  return std::optional<WeightDtype>(*d);
}

Result<std::unique_ptr<LlamaModel>> LlamaModel::create(std::shared_ptr<const LoadedModel> model,
                                                       std::optional<WeightDtype> dtype, KvStorage* kv) {
  const ModelConfig& c = model->config;
  const KvLayout& lay = kv->layout();
  if (lay.num_layers != c.n_layers || lay.num_kv_heads != c.n_kv_heads || lay.head_dim != c.head_dim)
    return Status::invalid_argument("KV storage shape (layers " + std::to_string(lay.num_layers) + ", kv heads " +
                                    std::to_string(lay.num_kv_heads) + ", head_dim " + std::to_string(lay.head_dim) +
                                    ") does not match the model (" + c.summary() + ")");
  const LoadedModel& m = *model;
  const WeightBlock::RowSource* embedding_rows = nullptr;
  if (m.weights.token_embedding == nullptr) {
    const auto it = m.stored.find(&m.weights.token_embedding);
    if (it == m.stored.end() || !it->second.expand)
      return Status::internal(m.path + ": the token embedding has neither values nor a stored form");
    embedding_rows = &it->second.expand;
  }
  ScratchBuffer scratch;
  std::vector<Layer> layers;
  layers.reserve(static_cast<size_t>(c.n_layers));
  for (const LayerWeights& w : m.weights.layers) {
    auto qkv = make_linear(m, {{&w.wq, c.q_dim()}, {&w.wk, c.kv_dim()}, {&w.wv, c.kv_dim()}}, c.dim, dtype, scratch);
    if (!qkv) return qkv.status();
    auto wo = make_linear(m, {{&w.wo, c.dim}}, c.q_dim(), dtype, scratch);
    if (!wo) return wo.status();
    auto gate_up = make_linear(m, {{&w.w1, c.hidden_dim}, {&w.w3, c.hidden_dim}}, c.dim, dtype, scratch);
    if (!gate_up) return gate_up.status();
    auto down = make_linear(m, {{&w.w2, c.dim}}, c.hidden_dim, dtype, scratch);
    if (!down) return down.status();
    layers.push_back(
        Layer{std::move(qkv).value(), std::move(wo).value(), std::move(gate_up).value(), std::move(down).value()});
  }
  auto cls = make_linear(m, {{&m.weights.classifier, c.vocab_size}}, c.dim, dtype, scratch);
  if (!cls) return cls.status();
  return std::unique_ptr<LlamaModel>(
      new LlamaModel(std::move(model), kv, std::move(layers), std::move(cls).value(), embedding_rows));
}

LlamaModel::LlamaModel(std::shared_ptr<const LoadedModel> model, KvStorage* kv, std::vector<Layer> layers,
                       Linear classifier, const WeightBlock::RowSource* embedding_rows)
    : model_(std::move(model)), kv_(kv), layers_(std::move(layers)), classifier_(std::move(classifier)),
      embedding_rows_(embedding_rows), rope_(model_->config.max_seq_len, model_->config.head_dim,
                                             model_->config.rope_theta, model_->config.rope_scaling) {}

int64_t LlamaModel::weight_bytes() const {
  int64_t total = classifier_.weight_bytes();
  for (const Layer& l : layers_)
    total += l.qkv.weight_bytes() + l.wo.weight_bytes() + l.gate_up.weight_bytes() + l.down.weight_bytes();
  return total;
}

void LlamaModel::embed(const std::vector<int32_t>& tokens, float* x) const {
  const int64_t dim = model_->config.dim, T = static_cast<int64_t>(tokens.size());
  const float* table = model_->weights.token_embedding;
  if (table != nullptr) {
    for (int64_t t = 0; t < T; ++t)
      std::memcpy(x + t * dim, table + static_cast<int64_t>(tokens[static_cast<size_t>(t)]) * dim,
                  static_cast<size_t>(dim) * sizeof(float));
    return;
  }
  // Each token's row dequantized from the file's blocks (exact): a few
  // microseconds per row, against a table of vocab x dim floats in memory.
  const WeightBlock::RowSource& rows = *embedding_rows_;
#pragma omp parallel for schedule(static) if (T >= 16)
  for (int64_t t = 0; t < T; ++t) rows(tokens[static_cast<size_t>(t)], 1, x + t * dim);
}

Status LlamaModel::check_batch(const BatchInput& batch) const {
  const ModelConfig& c = model_->config;
  const int64_t P = kv_->layout().page_size;
  int64_t total = 0;
  for (size_t i = 0; i < batch.seqs.size(); ++i) {
    const BatchSequence& s = batch.seqs[i];
    const std::string who = "sequence " + std::to_string(i) + ": ";
    if (s.n_tokens <= 0) return Status::invalid_argument(who + "no tokens");
    if (s.first_pos < 0 || s.first_pos + s.n_tokens > c.max_seq_len)
      return Status::out_of_range(who + "positions " + std::to_string(s.first_pos) + ".." +
                                  std::to_string(s.first_pos + s.n_tokens - 1) + " exceed the model's " +
                                  std::to_string(c.max_seq_len));
    const int64_t pages_needed = (s.first_pos + s.n_tokens + P - 1) / P;
    if (static_cast<int64_t>(s.page_table.size()) < pages_needed)
      return Status::internal(who + "page table has " + std::to_string(s.page_table.size()) + " pages, needs " +
                              std::to_string(pages_needed));
    for (int64_t p = s.first_pos; p < s.first_pos + s.n_tokens; ++p) {
      const int32_t page = s.page_table[static_cast<size_t>(p / P)];
      if (page <= 0 || page >= kv_->num_pages())
        return Status::internal(who + "invalid page " + std::to_string(page) + " for position " + std::to_string(p));
    }
    total += s.n_tokens;
  }
  if (total != static_cast<int64_t>(batch.tokens.size()))
    return Status::internal("batch has " + std::to_string(batch.tokens.size()) +
                            " tokens but its sequences add up to " + std::to_string(total));
  for (int32_t t : batch.tokens)
    if (t < 0 || t >= c.vocab_size)
      return Status::invalid_argument("token id " + std::to_string(t) + " outside the vocabulary [0, " +
                                      std::to_string(c.vocab_size) + ")");
  return Status::ok();
}

Status LlamaModel::forward(const BatchInput& batch, std::vector<float>* logits, std::vector<float>* hidden) {
  PAGODA_RETURN_IF_ERROR(check_batch(batch));
  const ModelConfig& c = model_->config;
  const ModelWeights& w = model_->weights;
  int64_t T = static_cast<int64_t>(batch.tokens.size());  // rows; the last layer keeps n_out
  int64_t n_out = 0;                                      // rows kept through the last layer
  int64_t n_logits = 0;                                   // of which rows whose logits are taken
  for (const BatchSequence& s : batch.seqs) {
    n_out += s.kept_rows();
    n_logits += s.logit_rows();
  }
  const int64_t dim = c.dim, qd = c.q_dim(), kvd = c.kv_dim(), hid = c.hidden_dim;
  const int64_t qkv_w = qd + 2 * kvd;
  const int64_t P = kv_->layout().page_size;
  auto grow = [](std::vector<float>& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  };
  grow(x_, T * dim);
  grow(xn_, T * dim);
  grow(qkv_, T * qkv_w);
  grow(attn_, T * qd);
  grow(proj_, T * dim);
  grow(gate_up_, T * 2 * hid);
  grow(hidden_, T * hid);

  // Positions, slots and attention descriptors.
  positions_.resize(static_cast<size_t>(T));
  attn_seqs_.clear();
  int64_t row = 0;
  for (const BatchSequence& s : batch.seqs) {
    for (int64_t i = 0; i < s.n_tokens; ++i)
      positions_[static_cast<size_t>(row + i)] = static_cast<int32_t>(s.first_pos + i);
    attn_seqs_.push_back(AttentionSeq{s.page_table, s.first_pos, s.n_tokens, row});
    row += s.n_tokens;
  }

  embed(batch.tokens, x_.data());

  const AttentionShape shape{static_cast<int>(c.n_heads), static_cast<int>(c.n_kv_heads), static_cast<int>(c.head_dim),
                             c.sliding_window, 1.0f / std::sqrt(static_cast<float>(c.head_dim))};
  for (int64_t li = 0; li < c.n_layers; ++li) {
    const LayerWeights& lw = w.layers[static_cast<size_t>(li)];
    Layer& L = layers_[static_cast<size_t>(li)];
    rmsnorm(x_.data(), lw.rms_att, T, dim, c.rms_eps, xn_.data());
    L.qkv.forward(xn_.data(), T, qkv_.data());
    if (lw.bq != nullptr) {  // Q/K/V biases (Qwen2)
      for (int64_t t = 0; t < T; ++t) {
        float* rowp = qkv_.data() + t * qkv_w;
        add_inplace(rowp, lw.bq, qd);
        add_inplace(rowp + qd, lw.bk, kvd);
        add_inplace(rowp + qd + kvd, lw.bv, kvd);
      }
    }
    // RoPE on q (n_heads) and k (n_kv_heads) inside the fused rows.
    rope_inplace_rows(qkv_.data(), T, qkv_w, c.n_heads, c.head_dim, positions_.data(), rope_, c.rope_layout);
    rope_inplace_rows(qkv_.data() + qd, T, qkv_w, c.n_kv_heads, c.head_dim, positions_.data(), rope_, c.rope_layout);
    // Store this step's K/V, then attend.
    int64_t r = 0;
    for (const BatchSequence& s : batch.seqs) {
      for (int64_t i = 0; i < s.n_tokens; ++i, ++r) {
        const int64_t pos = s.first_pos + i;
        const int64_t slot = static_cast<int64_t>(s.page_table[static_cast<size_t>(pos / P)]) * P + pos % P;
        const float* rowp = qkv_.data() + r * qkv_w;
        kv_->write(static_cast<int>(li), slot, rowp + qd, rowp + qd + kvd);
      }
    }
    // The last layer's output matters only where logits are taken: past
    // its K/V (written above for every token), keep just those rows.
    if (li == c.n_layers - 1 && n_out < T) {
      keep_output_rows(batch, qkv_w, dim);
      T = n_out;
      if (T == 0) break;  // no sequence samples this step
    }
    paged_attention(*kv_, static_cast<int>(li), attn_seqs_, qkv_.data(), qkv_w, attn_.data(), qd, shape);
    L.wo.forward(attn_.data(), T, proj_.data());
    add_inplace(x_.data(), proj_.data(), T * dim);
    rmsnorm(x_.data(), lw.rms_ffn, T, dim, c.rms_eps, xn_.data());
    L.gate_up.forward(xn_.data(), T, gate_up_.data());
    swiglu_rows(gate_up_.data(), T, hid, hidden_.data());
    L.down.forward(hidden_.data(), T, proj_.data());
    add_inplace(x_.data(), proj_.data(), T * dim);
  }

  // Final norm for the rows kept, in batch order; the hidden states asked
  // for; the classifier for the logit rows (the last of each sequence's).
  logits->resize(static_cast<size_t>(n_logits * c.vocab_size));
  if (hidden) hidden->clear();
  if (n_out == 0) return Status::ok();
  grow(sel_, n_out * dim);
  rmsnorm(x_.data(), w.rms_final, n_out, dim, c.rms_eps, sel_.data());
  if (hidden != nullptr || n_logits < n_out) {
    int64_t k = 0, j = 0;  // kept row, logit row
    for (const BatchSequence& s : batch.seqs) {
      const int64_t kept = s.kept_rows(), lr = s.logit_rows();
      if (hidden != nullptr && s.want_hidden)
        hidden->insert(hidden->end(), sel_.data() + k * dim, sel_.data() + (k + kept) * dim);
      // Compact the logit rows to the front (j <= k + kept - lr: forward copies are safe).
      for (int64_t i = 0; i < lr; ++i, ++j)
        if (j != k + kept - lr + i)
          std::memmove(sel_.data() + j * dim, sel_.data() + (k + kept - lr + i) * dim,
                       static_cast<size_t>(dim) * sizeof(float));
      k += kept;
    }
  }
  if (n_logits > 0) classifier_.forward(sel_.data(), n_logits, logits->data());
  return Status::ok();
}

void LlamaModel::keep_output_rows(const BatchInput& batch, int64_t qkv_w, int64_t dim) {
  // Rows k.. take the last kept_rows() rows of each sequence (its logit
  // rows, or all its rows when it wants hidden states); k never exceeds
  // the row it copies, so copying forward in place, in order, is safe.
  attn_seqs_.clear();
  int64_t row = 0, k = 0;
  for (const BatchSequence& s : batch.seqs) {
    row += s.n_tokens;
    const int64_t m = s.kept_rows();
    if (m == 0) continue;
    const int64_t first = row - m;
    if (first != k) {
      for (int64_t i = 0; i < m; ++i) {
        std::memcpy(qkv_.data() + (k + i) * qkv_w, qkv_.data() + (first + i) * qkv_w,
                    static_cast<size_t>(qkv_w) * sizeof(float));
        std::memcpy(x_.data() + (k + i) * dim, x_.data() + (first + i) * dim, static_cast<size_t>(dim) * sizeof(float));
      }
    }
    attn_seqs_.push_back(AttentionSeq{s.page_table, s.first_pos + s.n_tokens - m, m, k});
    k += m;
  }
}

}  // namespace pagoda
