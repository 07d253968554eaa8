// GgufWriter: builds a GGUF file (version 3, little-endian, llama.cpp's
// layout): metadata key/values in the order added, tensor infos, then the
// tensor data, each tensor aligned to general.alignment (32).
//
// One writer builds one file; not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "gguf/ggml_types.h"

namespace pagoda {

class GgufWriter {
 public:
  void add_string(const std::string& key, const std::string& value);
  void add_uint32(const std::string& key, uint32_t value);
  void add_int32(const std::string& key, int32_t value);
  void add_float32(const std::string& key, float value);
  void add_bool(const std::string& key, bool value);
  void add_strings(const std::string& key, const std::vector<std::string>& values);
  void add_float32s(const std::string& key, const std::vector<float>& values);
  void add_int32s(const std::string& key, const std::vector<int32_t>& values);

  // A tensor of ggml shape `dims` (dims[0] = row length) whose encoded bytes
  // (already in `type`'s layout) are `data`.
  void add_tensor(const std::string& name, const std::vector<int64_t>& dims, GgmlType type, std::vector<uint8_t> data);

  // The whole file.
  std::vector<uint8_t> bytes() const;
  // Writes bytes() to `path`, streaming the tensors; the error names the path.
  Status write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;
    GgmlType type;
    std::vector<uint8_t> data;
  };
  void put_key(const std::string& key, uint32_t type);
  std::vector<uint8_t> header() const;  // up to the data section

  std::vector<uint8_t> kv_;  // encoded key/values
  uint64_t kv_count_ = 0;
  std::vector<Tensor> tensors_;
};

// Encodes `n` floats (a multiple of the type's block) as `type`: f32, f16,
// q8_0, q5_0, q4_0, q4_K or q6_K, as ggml's reference quantizers do
// (quantize_row_*_ref: no importance matrix). Other types: empty.
std::vector<uint8_t> ggml_quantize(GgmlType type, const float* x, int64_t n);

}  // namespace pagoda
