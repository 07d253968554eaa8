// The GGUF model reader: a file make-model writes from stories260K reads back
// to the same weights (f32 exactly, f16/q8_0/q4_0 within their rounding);
// `model.format: auto` finds GGUF by its magic; each thing a model file can
// get wrong (architecture, a missing, mis-shaped, unreadable or unknown
// tensor, partial RoPE, Llama 3.1's rope_freqs) is an error naming it.
// make-model's q4_k_m and q6_k give each tensor llama.cpp's type and, for
// stories260K, the very bytes llama-quantize wrote; a q4_k_m model computes
// logits near its f32 model's.
// (llama.cpp's own files against its greedy output: tests/engine/model_test.)
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/kernels/q4_weights.h"
#include "engine/model/llama_model.h"
#include "formats/gguf_model_writer.h"
#include "formats/gguf_reader.h"
#include "formats/model_loader.h"
#include "formats/model_writer.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "kvpool/kv_storage.h"

using namespace pagoda;
namespace fs = std::filesystem;

namespace {

std::string stories_bin() { return std::string(PAGODA_SOURCE_DIR) + "/models/stories260K.bin"; }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Largest |a - b| over the n floats of two weight arrays.
double max_diff(const float* a, const float* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

// What a damaged tiny model changes: the metadata and tensors before writing.
struct TinyModel {
  std::string arch = "llama";
  uint32_t rope_dims = 8;
  std::vector<std::pair<std::string, std::vector<int64_t>>> tensors;
  std::vector<GgmlType> types;
};

// A 1-layer llama (dim 32, hidden 64, 4 heads of 8, 2 kv heads, vocab 16).
TinyModel tiny_model() {
  TinyModel m;
  auto add = [&](const std::string& name, std::vector<int64_t> dims) {
    m.tensors.emplace_back(name, std::move(dims));
    m.types.push_back(GgmlType::kF32);
  };
  add("token_embd.weight", {32, 16});
  add("output_norm.weight", {32});
  for (const char* n : {"attn_norm", "ffn_norm"}) add(std::string("blk.0.") + n + ".weight", {32});
  add("blk.0.attn_q.weight", {32, 32});
  add("blk.0.attn_k.weight", {32, 16});
  add("blk.0.attn_v.weight", {32, 16});
  add("blk.0.attn_output.weight", {32, 32});
  add("blk.0.ffn_gate.weight", {32, 64});
  add("blk.0.ffn_up.weight", {32, 64});
  add("blk.0.ffn_down.weight", {64, 32});
  return m;
}

Status read_tiny(const TinyModel& m) {
  GgufWriter w;
  w.add_string("general.architecture", m.arch);
  const std::string a = m.arch + ".";
  w.add_uint32(a + "embedding_length", 32);
  w.add_uint32(a + "feed_forward_length", 64);
  w.add_uint32(a + "block_count", 1);
  w.add_uint32(a + "attention.head_count", 4);
  w.add_uint32(a + "attention.head_count_kv", 2);
  w.add_uint32(a + "context_length", 64);
  w.add_uint32(a + "rope.dimension_count", m.rope_dims);
  w.add_uint32(a + "vocab_size", 16);
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    int64_t n = 1;
    for (int64_t d : m.tensors[i].second) n *= d;
    const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(m.types[i]));
    std::vector<uint8_t> bytes(static_cast<size_t>(n / info->block_elements * info->block_bytes));
    for (size_t k = 0; k < bytes.size(); ++k) bytes[k] = m.types[i] == GgmlType::kF32 ? (k % 4 == 3 ? 0x3C : 0) : 0x11;
    w.add_tensor(m.tensors[i].first, m.tensors[i].second, m.types[i], bytes);
  }
  const std::string path = (fs::temp_directory_path() / "pagoda_gguf_reader_tiny.gguf").string();
  REQUIRE(w.write(path).is_ok());
  auto model = load_model(path);
  fs::remove(path);
  return model ? Status::ok() : model.status();
}

}  // namespace

TEST_CASE("gguf reader: stories260K written by make-model reads back to its weights", "[gguf]") {
  auto bin = load_model(stories_bin());
  REQUIRE(bin.is_ok());
  const ModelConfig& c = (*bin)->config;
  const std::string path = (fs::temp_directory_path() / "pagoda_gguf_reader_stories.gguf").string();
  // quant -> the largest weight error allowed.
  for (const auto& [quant, bound] :
       std::vector<std::pair<std::string, double>>{{"f32", 0.0}, {"f16", 1e-3}, {"q8_0", 2e-2}, {"q4_0", 0.25}}) {
    INFO(quant);
    auto written = write_gguf_model(c, (*bin)->weights, quant, path);
    REQUIRE(written.is_ok());
    // ffn_down's rows are 172 wide: not a multiple of 32, so f16 for the block types.
    CHECK(written->fallbacks.size() == (quant == "q8_0" || quant == "q4_0" ? 5u : 0u));
    auto g = load_model(path);  // format auto: found by the magic
    REQUIRE(g.is_ok());
    const ModelConfig& gc = (*g)->config;
    CHECK(gc.summary() == c.summary());
    const ModelWeights& a = (*bin)->weights;
    const ModelWeights& b = (*g)->weights;
    CHECK(max_diff(a.token_embedding, b.token_embedding, c.vocab_size * c.dim) <= bound);
    CHECK(max_diff(a.rms_final, b.rms_final, c.dim) == 0.0);
    for (size_t l = 0; l < a.layers.size(); ++l) {
      CHECK(max_diff(a.layers[l].wq, b.layers[l].wq, c.q_dim() * c.dim) <= bound);
      CHECK(max_diff(a.layers[l].wk, b.layers[l].wk, c.kv_dim() * c.dim) <= bound);
      CHECK(max_diff(a.layers[l].w1, b.layers[l].w1, c.hidden_dim * c.dim) <= bound);
      CHECK(max_diff(a.layers[l].w2, b.layers[l].w2, c.hidden_dim * c.dim) <= std::min(bound, 1e-3));
      CHECK(max_diff(a.layers[l].rms_att, b.layers[l].rms_att, c.dim) == 0.0);
    }
    auto explicit_format = load_model(path, ModelFormat::kGguf);
    CHECK(explicit_format.is_ok());
  }
  fs::remove(path);
  // The llama2.c reader refuses a GGUF it is forced onto (it is not one).
  CHECK(!load_model(std::string(PAGODA_SOURCE_DIR) + "/../shared/gguf/stories260K-f32.gguf", ModelFormat::kLlama2c)
             .is_ok());
}

TEST_CASE("gguf reader: each kind of wrong model is an error naming the key or tensor", "[gguf]") {
  REQUIRE(read_tiny(tiny_model()).is_ok());
  auto fails_with = [](const std::function<void(TinyModel&)>& damage, const std::string& part) {
    TinyModel m = tiny_model();
    damage(m);
    const Status st = read_tiny(m);
    INFO(st.message());
    CHECK(!st.is_ok());
    CHECK(contains(st.message(), part));
  };
  fails_with([](TinyModel& m) { m.arch = "phi3"; }, "GGUF architecture 'phi3' is not one pagoda runs (llama, qwen2)");
  fails_with([](TinyModel& m) { m.tensors.erase(m.tensors.begin() + 4), m.types.pop_back(); },
             "tensor 'blk.0.attn_q.weight' is missing");
  fails_with(
      [](TinyModel& m) {
        m.tensors[5].second = {32, 8};
      },
      "tensor 'blk.0.attn_k.weight' has shape [32, 8] (ggml order), the model's config needs [32, 16]");
  fails_with(
      [](TinyModel& m) {
        m.tensors.emplace_back("blk.0.attn_q_norm.weight", std::vector<int64_t>{8});
        m.types.push_back(GgmlType::kF32);
      },
      "tensor 'blk.0.attn_q_norm.weight' is not one a llama model uses");
  fails_with(
      [](TinyModel& m) {
        m.tensors.emplace_back("rope_freqs.weight", std::vector<int64_t>{4});
        m.types.push_back(GgmlType::kF32);
      },
      "'rope_freqs.weight'");
  fails_with([](TinyModel& m) { m.rope_dims = 4; }, "'llama.rope.dimension_count' = 4 rotates part of each head");
}

TEST_CASE("gguf reader: a tensor type pagoda cannot dequantize is named with the tensor", "[gguf]") {
  // A model whose rows are 256 wide, so a K type fits: its q3_K embedding.
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  for (const auto& [k, v] : std::vector<std::pair<std::string, uint32_t>>{{"llama.embedding_length", 256},
                                                                          {"llama.feed_forward_length", 256},
                                                                          {"llama.block_count", 1},
                                                                          {"llama.attention.head_count", 32},
                                                                          {"llama.vocab_size", 4}})
    w.add_uint32(k, v);
  w.add_tensor("token_embd.weight", {256, 4}, GgmlType::kQ3_K, std::vector<uint8_t>(4 * 110));
  const std::string path = (fs::temp_directory_path() / "pagoda_gguf_reader_q3.gguf").string();
  REQUIRE(w.write(path).is_ok());
  auto model = load_model(path);
  fs::remove(path);
  REQUIRE(!model.is_ok());
  CHECK(contains(model.status().message(), "tensor 'token_embd.weight' has type q3_K, which pagoda does not read"));
}

TEST_CASE("gguf reader: q4_0 tensors pack into the q4 kernels' layout exactly as stored", "[gguf]") {
  auto bin = load_model(stories_bin());
  REQUIRE(bin.is_ok());
  const ModelConfig& c = (*bin)->config;
  const std::string path = (fs::temp_directory_path() / "pagoda_gguf_reader_q4.gguf").string();
  REQUIRE(write_gguf_model(c, (*bin)->weights, "q4_0", path).is_ok());
  auto g = load_model(path);
  REQUIRE(g.is_ok());
  const LoadedModel& m = **g;
  const LayerWeights& l = m.weights.layers[0];
  // wq [q_dim, dim] is q4_0; ffn_down (rows of 172) fell back to f16.
  REQUIRE(m.stored.count(&l.wq) == 1);
  CHECK(m.stored.at(&l.wq).precision == WeightDtype::kInt4);
  REQUIRE(m.stored.at(&l.wq).q4);
  CHECK(m.stored.at(&l.w2).precision == WeightDtype::kBF16);
  CHECK(!m.stored.at(&l.w2).q4);
  // Every value the q4 kernels will use equals the dequantized weight: the
  // embedding (the tied classifier) and wq.
  const auto same = [&](const float* const* field, int64_t rows, int64_t cols) {
    const float* view = *field;
    auto packed = Q4Weights::build(rows, cols, m.stored.at(field).q4);
    REQUIRE(packed.is_ok());
    for (int64_t n = 0; n < rows; ++n)
      for (int64_t k = 0; k < cols; ++k) REQUIRE(packed->value(n, k) == view[n * cols + k]);
  };
  same(&m.weights.token_embedding, c.vocab_size, c.dim);
  same(&l.wq, c.q_dim(), c.dim);

  // Loaded for an engine (no f32 copies of matrices): wq, wk, wv, wo,
  // ffn_gate/up (q4_0), ffn_down (f16) and the embedding have no view, and
  // the model computes the same logits as from the expanded load (the
  // embedding's rows expanded per token, one thread or, from 16 tokens,
  // all), with weight_dtype auto (4-bit packed from the groups, ffn_down
  // expanded when packed) and with int8 and f32 forced (every matrix
  // expanded when packed).
  LoadOptions packed_only;
  packed_only.expand_matrices = false;
  auto lean = load_model(path, ModelFormat::kAuto, packed_only);
  REQUIRE(lean.is_ok());
  const LayerWeights& ll = (*lean)->weights.layers[0];
  CHECK(ll.wq == nullptr);
  CHECK(ll.wo == nullptr);
  CHECK(ll.w1 == nullptr);
  CHECK(ll.w2 == nullptr);
  CHECK((*lean)->weights.token_embedding == nullptr);
  CHECK((*lean)->owned_arrays.empty());
  auto logits = [](std::shared_ptr<const LoadedModel> model, std::optional<WeightDtype> dtype,
                   std::vector<int32_t> tokens) {
    const ModelConfig& mc = model->config;
    auto kv = KvStorage::create({int(mc.n_layers), int(mc.n_kv_heads), int(mc.head_dim), 16, KvDtype::kF32}, 4);
    REQUIRE(kv.is_ok());
    auto lm = LlamaModel::create(model, dtype, kv->get());
    REQUIRE(lm.is_ok());
    const std::vector<int32_t> table = {1, 2};
    BatchInput in;
    const auto n = static_cast<int64_t>(tokens.size());
    in.tokens = std::move(tokens);
    in.seqs.push_back({0, n, table, false, /*all_logits=*/true});
    std::vector<float> out;
    REQUIRE((*lm)->forward(in, &out).is_ok());
    return out;
  };
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  std::vector<int32_t> long_prompt;
  for (int i = 0; i < 24; ++i) long_prompt.push_back((i * 97 + 5) % c.vocab_size);
  const std::shared_ptr<const LoadedModel> full_model(std::move(g).value());
  const std::vector<float> expected = logits(full_model, std::nullopt, prompt);
  const std::shared_ptr<const LoadedModel> lean_model(std::move(lean).value());
  CHECK(logits(lean_model, std::nullopt, prompt) == expected);
  CHECK(logits(lean_model, std::nullopt, long_prompt) == logits(full_model, std::nullopt, long_prompt));
  CHECK(logits(lean_model, WeightDtype::kInt8, prompt) == logits(full_model, WeightDtype::kInt8, prompt));
  CHECK(logits(lean_model, WeightDtype::kF32, long_prompt) == logits(full_model, WeightDtype::kF32, long_prompt));
  fs::remove(path);
}

namespace {

// The logits of every token of `tokens` (one sequence), with weights of `dtype`.
std::vector<float> logits_of(std::shared_ptr<const LoadedModel> model, std::optional<WeightDtype> dtype,
                             const std::vector<int32_t>& tokens) {
  const ModelConfig& mc = model->config;
  auto kv = KvStorage::create({int(mc.n_layers), int(mc.n_kv_heads), int(mc.head_dim), 16, KvDtype::kF32}, 4);
  REQUIRE(kv.is_ok());
  auto lm = LlamaModel::create(model, dtype, kv->get());
  REQUIRE(lm.is_ok());
  const std::vector<int32_t> table = {1};
  BatchInput in;
  in.tokens = tokens;
  in.seqs.push_back({0, int64_t(tokens.size()), table, false, /*all_logits=*/true});
  std::vector<float> out;
  REQUIRE((*lm)->forward(in, &out).is_ok());
  return out;
}

std::string shared_gguf(const std::string& name) { return std::string(PAGODA_SOURCE_DIR) + "/../shared/gguf/" + name; }

}  // namespace

TEST_CASE("gguf writer: q4_k_m and q6_k of stories260K equal llama-quantize's files tensor for tensor", "[gguf]") {
  // ../shared/gguf's q4_k_m and q6_k files are llama-quantize's of its f32
  // file. Their rows (64 and 172) fit no K type, so this checks the
  // per-tensor choice and fallbacks (q5_0, q8_0, f16) byte for byte.
  auto f32 = load_model(shared_gguf("stories260K-f32.gguf"));
  REQUIRE(f32.is_ok());
  const std::string path = (fs::temp_directory_path() / "pagoda_gguf_writer_kquant.gguf").string();
  for (const auto& [quant, file] : std::vector<std::pair<std::string, std::string>>{
           {"q4_k_m", "stories260K-q4_k_m.gguf"}, {"q6_k", "stories260K-q6_k.gguf"}}) {
    INFO(quant);
    auto written = write_gguf_model((*f32)->config, (*f32)->weights, quant, path);
    REQUIRE(written.is_ok());
    // Every matrix fell back: none has rows of a multiple of 256.
    CHECK(written->fallbacks.size() == 2 + 7 * 5u);
    auto ours = GgufFile::open(path);
    auto theirs = GgufFile::open(shared_gguf(file));
    REQUIRE(ours.is_ok());
    REQUIRE(theirs.is_ok());
    CHECK(*(*ours)->get_int("general.file_type").value() == *(*theirs)->get_int("general.file_type").value());
    CHECK((*ours)->tensors().size() == (*theirs)->tensors().size());
    for (const GgufTensorInfo& t : (*theirs)->tensors()) {
      INFO(t.name);
      const GgufTensorInfo* o = (*ours)->find_tensor(t.name);
      REQUIRE(o != nullptr);
      CHECK(ggml_type_name(uint32_t(o->type)) == ggml_type_name(uint32_t(t.type)));
      CHECK(o->dims == t.dims);
      REQUIRE(o->bytes == t.bytes);
      CHECK(std::equal(o->data, o->data + o->bytes, t.data));
    }
  }
  fs::remove(path);
}

TEST_CASE("gguf writer: q4_k_m gives llama.cpp's type per tensor and logits near the f32 model's", "[gguf]") {
  // tiny (rows of 64 and 192) only meets the fallbacks; `wide` (rows of 256
  // and 768, 8 layers) the K types themselves.
  // `wide tied`: its classifier is the embedding, which takes output.weight's
  // q6_K.
  ModelConfig wide = *model_preset("tiny");
  wide.dim = 256, wide.hidden_dim = 768, wide.n_layers = 8, wide.head_dim = 64;
  REQUIRE(wide.validate().is_ok());
  ModelConfig tied = wide;
  tied.tied_classifier = true;
  struct Case {
    std::string name;
    ModelConfig config;
    std::set<int64_t> more_bits;  // llama.cpp's use_more_bits(i, n_layers)
    double tolerance;             // RMS logit error over the logits' RMS
  };
  // Random models amplify weight noise (q8_0's ~0.5% per weight gives 1-2%
  // logit error here), more with depth: the bounds are per model.
  const std::vector<Case> cases = {{"tiny", *model_preset("tiny"), {1}, 0.1},
                                   {"wide", wide, {0, 3, 6, 7}, 0.3},
                                   {"wide tied", tied, {0, 3, 6, 7}, 0.3}};
  const std::string bin = (fs::temp_directory_path() / "pagoda_gguf_q4km.bin").string();
  const std::string path = (fs::temp_directory_path() / "pagoda_gguf_q4km.gguf").string();
  for (const Case& k : cases) {
    INFO(k.name);
    const ModelConfig& c = k.config;
    // What make-model --preset does: a random llama2.c file, loaded, written.
    REQUIRE(write_random_llama2c(c, bin, 1).is_ok());
    auto loaded = load_model(bin);
    REQUIRE(loaded.is_ok());
    const std::shared_ptr<const LoadedModel> source(std::move(loaded).value());
    auto written = write_gguf_model(c, source->weights, "q4_k_m", path);
    REQUIRE(written.is_ok());
    auto file = GgufFile::open(path);
    REQUIRE(file.is_ok());
    CHECK(*(*file)->get_int("general.file_type").value() == 15);  // LLAMA_FTYPE_MOSTLY_Q4_K_M
    const bool fits = c.dim % 256 == 0 && c.hidden_dim % 256 == 0;
    CHECK(written->fallbacks.empty() == fits);
    // The K type each tensor gets, or what rows of 64 or 192 make of it.
    const std::string q4 = fits ? "q4_K" : "q5_0", q6 = fits ? "q6_K" : "q8_0";
    std::map<std::string, int> counts;
    for (const GgufTensorInfo& t : (*file)->tensors()) {
      INFO(t.name);
      const std::string type = ggml_type_name(uint32_t(t.type));
      ++counts[type];
      std::string want = q4;
      if (t.dims.size() == 1) want = "f32";
      else if (t.name == "output.weight" || (c.tied_classifier && t.name == "token_embd.weight")) want = q6;
      else if (t.name.find("attn_v") != std::string::npos || t.name.find("ffn_down") != std::string::npos)
        want = k.more_bits.count(std::stoll(t.name.substr(4))) ? q6 : q4;
      CHECK(type == want);
    }
    CHECK(counts[q6] == 1 + 2 * int(k.more_bits.size()));
    CHECK(counts[q4] == 7 * int(c.n_layers) + (c.tied_classifier ? 0 : 1) - 2 * int(k.more_bits.size()));
    file->reset();
    const std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 17, 99, 2};

    // Loaded as engines load it (no f32 copies of matrices; fused parts of
    // mixed types, such as q4_K attn_q/k with a q6_K attn_v, expanded while
    // packing): the same logits as the full load, with auto, int8 and int4.
    {
      auto full = load_model(path);
      REQUIRE(full.is_ok());
      LoadOptions engine_load;
      engine_load.expand_matrices = false;
      auto lean = load_model(path, ModelFormat::kAuto, engine_load);
      REQUIRE(lean.is_ok());
      const std::shared_ptr<const LoadedModel> full_model(std::move(full).value());
      const std::shared_ptr<const LoadedModel> lean_model(std::move(lean).value());
      CHECK(lean_model->weights.layers[0].wv == nullptr);
      for (const std::optional<WeightDtype> d :
           {std::optional<WeightDtype>(), std::optional(WeightDtype::kInt8), std::optional(WeightDtype::kInt4)})
        CHECK(logits_of(lean_model, d, tokens) == logits_of(full_model, d, tokens));
    }

    // Loaded the normal way and computed in f32: near the f32 model, and
    // nearer than q4_0 (4.5 bits per weight, like q4_K) of the same weights.
    const std::vector<float> want = logits_of(source, WeightDtype::kF32, tokens);
    double sum2 = 0;
    for (float v : want) sum2 += double(v) * v;
    const double scale = std::sqrt(sum2 / double(want.size()));
    auto error_of = [&](const std::string& quant) {
      REQUIRE(write_gguf_model(c, source->weights, quant, path).is_ok());
      auto g = load_model(path);
      REQUIRE(g.is_ok());
      const std::vector<float> got = logits_of(std::move(g).value(), WeightDtype::kF32, tokens);
      REQUIRE(got.size() == want.size());
      double e2 = 0;
      for (size_t i = 0; i < want.size(); ++i) e2 += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
      return std::sqrt(e2 / double(want.size())) / scale;
    };
    const double k_m = error_of("q4_k_m"), q4_0 = error_of("q4_0");
    INFO("relative RMS logit error: q4_k_m " << k_m << ", q4_0 " << q4_0);
    CHECK(k_m <= k.tolerance);
    CHECK(k_m <= 0.8 * q4_0);
  }
  fs::remove(bin);
  fs::remove(path);
}
