// Fuzz target: GGUF files (issue 29). The input is a whole file, so llama.cpp's
// own files seed it directly (tools/fuzz_smoke.sh adds ../shared/gguf).
// Each input goes through:
//   1. GgufFile::parse: an accepted file's tensors lie inside the input with
//      the byte size their shape and type imply, at aligned offsets; every
//      dequantizable tensor's first and last rows are dequantized (any bytes
//      are valid quants: this checks the kernels' indexing under ASan/UBSan);
//   2. GgufReader through an in-memory file: an accepted model's config
//      validates and its weight views are non-null; the lean read (no f32
//      copies, as engines load) accepts exactly the same files, and each of
//      its matrices expands (StoredMatrix::expand) to the full read's values
//      bit for bit, whole and as a range of rows, and its 4-bit group
//      sources give quants in range;
//   3. load_tokenizer on the same file: an accepted vocabulary encodes and
//      decodes a fixed text with ids in range.
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "formats/gguf_reader.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/memory_file.h"
#include "gguf/gguf_file.h"
#include "tokenizer/tokenizer.h"

using namespace pagoda;

namespace {

void check_container(const uint8_t* data, size_t size) {
  auto file = GgufFile::parse(std::span<const uint8_t>(data, size), "<fuzz>");
  if (!file) {
    FUZZ_CHECK(!file.status().message().empty());
    return;
  }
  const GgufFile& g = **file;
  FUZZ_CHECK(g.version() == 2 || g.version() == 3);
  std::vector<float> row;
  for (const GgufTensorInfo& t : g.tensors()) {
    const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(t.type));
    FUZZ_CHECK(info != nullptr);
    FUZZ_CHECK(!t.dims.empty() && t.dims[0] % info->block_elements == 0);
    unsigned __int128 elements = 1;
    for (int64_t d : t.dims) elements *= static_cast<unsigned __int128>(d);
    FUZZ_CHECK(elements == static_cast<unsigned __int128>(t.elements));
    FUZZ_CHECK(static_cast<unsigned __int128>(t.bytes) ==
               elements / info->block_elements * static_cast<unsigned __int128>(info->block_bytes));
    FUZZ_CHECK(t.offset % g.alignment() == 0);
    FUZZ_CHECK(t.data >= data && t.data + t.bytes <= data + size);
    if (!info->dequantizable || t.dims[0] > (1 << 20)) continue;
    const int64_t rows = t.elements / t.dims[0];
    const uint64_t row_bytes = ggml_row_bytes(t.type, t.dims[0]);
    row.resize(static_cast<size_t>(t.dims[0]));
    ggml_dequantize(t.type, t.data, t.dims[0], row.data());
    ggml_dequantize(t.type, t.data + static_cast<uint64_t>(rows - 1) * row_bytes, t.dims[0], row.data());
  }
}

// The matrix fields of `w` in a fixed order (the keys of LoadedModel::stored).
std::vector<const float* const*> matrix_fields(const ModelWeights& w) {
  std::vector<const float* const*> fields = {&w.token_embedding, &w.classifier};
  for (const LayerWeights& l : w.layers)
    for (const float* const* f : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w1, &l.w2, &l.w3}) fields.push_back(f);
  return fields;
}

void check_model(const std::string& path) {
  auto full = GgufReader(true).read(path);
  auto lean = GgufReader(false).read(path);
  FUZZ_CHECK(full.is_ok() == lean.is_ok());
  if (!full || !lean) {
    FUZZ_CHECK(!full.status().message().empty() && !lean.status().message().empty());
    return;
  }
  const LoadedModel& f = **full;
  FUZZ_CHECK(f.config.validate(false).is_ok());
  FUZZ_CHECK(f.weights.token_embedding != nullptr && f.weights.classifier != nullptr);
  FUZZ_CHECK(static_cast<int64_t>(f.weights.layers.size()) == f.config.n_layers);
  const LoadedModel& l = **lean;
  const auto full_fields = matrix_fields(f.weights);
  const auto lean_fields = matrix_fields(l.weights);
  FUZZ_CHECK(full_fields.size() == lean_fields.size());
  std::vector<float> values;
  std::vector<uint8_t> quants(32);
  for (size_t i = 0; i < lean_fields.size(); ++i) {
    const float* want = *full_fields[i];
    const auto it = l.stored.find(lean_fields[i]);
    FUZZ_CHECK(want != nullptr);
    if (it == l.stored.end()) {
      FUZZ_CHECK(*lean_fields[i] != nullptr);  // an f32 view, as stored
      continue;
    }
    const StoredMatrix& s = it->second;
    FUZZ_CHECK(s.rows > 0 && s.cols > 0);
    const size_t n = static_cast<size_t>(s.rows * s.cols);
    if (*lean_fields[i] != nullptr) {
      FUZZ_CHECK(std::memcmp(*lean_fields[i], want, n * sizeof(float)) == 0);
    } else {
      FUZZ_CHECK(static_cast<bool>(s.expand));
      if (n > (size_t{1} << 23)) continue;
      values.assign(n, 0.0f);
      s.expand(0, s.rows, values.data());
      FUZZ_CHECK(std::memcmp(values.data(), want, n * sizeof(float)) == 0);
      // A range of rows alone (how int8 Linears read it): the last row.
      const auto cols = static_cast<size_t>(s.cols);
      s.expand(s.rows - 1, 1, values.data());
      FUZZ_CHECK(std::memcmp(values.data(), want + n - cols, cols * sizeof(float)) == 0);
    }
    if (!s.q4) continue;
    quants.assign(static_cast<size_t>(s.cols), 0);
    std::vector<uint16_t> scales(static_cast<size_t>(s.cols / 32)), mins(scales.size());
    for (int64_t row : {int64_t{0}, s.rows - 1}) {
      s.q4(row, quants.data(), scales.data(), mins.data());
      for (uint8_t q : quants) FUZZ_CHECK(q <= 15);
    }
  }
}

void check_tokenizer(const std::string& path) {
  auto tok = load_tokenizer(path);
  if (!tok) {
    FUZZ_CHECK(!tok.status().message().empty());
    return;
  }
  const Tokenizer& t = **tok;
  const auto ids = t.encode("Once upon a time, \xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80 \xff!", true);
  for (int32_t id : ids) FUZZ_CHECK(t.is_valid_id(id));
  (void)t.decode(ids);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_container(data, size);
  const int fd = fuzz::memory_file(data, size);
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  check_model(path);
  check_tokenizer(path);
  ::close(fd);
  return 0;
}
