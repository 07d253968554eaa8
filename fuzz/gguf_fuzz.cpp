// Fuzz target: GGUF files (issue 29). The input is a whole file, so llama.cpp's
// own files seed it directly (tools/fuzz_smoke.sh adds ../shared/gguf).
// Each input goes through:
//   1. GgufFile::parse: an accepted file's tensors lie inside the input with
//      the byte size their shape and type imply, at aligned offsets; every
//      dequantizable tensor's first and last rows are dequantized (any bytes
//      are valid quants: this checks the kernels' indexing under ASan/UBSan);
//   2. GgufReader through an in-memory file: an accepted model's config
//      validates and its weight views are non-null;
//   3. load_tokenizer on the same file: an accepted vocabulary encodes and
//      decodes a fixed text with ids in range.
#include <unistd.h>

#include <cstdint>
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

void check_model(const std::string& path) {
  auto model = GgufReader().read(path);
  if (!model) {
    FUZZ_CHECK(!model.status().message().empty());
    return;
  }
  const LoadedModel& m = **model;
  FUZZ_CHECK(m.config.validate(false).is_ok());
  FUZZ_CHECK(m.weights.token_embedding != nullptr && m.weights.classifier != nullptr);
  FUZZ_CHECK(static_cast<int64_t>(m.weights.layers.size()) == m.config.n_layers);
  for (const LayerWeights& l : m.weights.layers) FUZZ_CHECK(l.wq != nullptr && l.w2 != nullptr);
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
