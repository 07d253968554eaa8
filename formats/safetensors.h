// The safetensors file format (Hugging Face): an 8-byte little-endian header
// length N, N bytes of JSON mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
// data section that follows the header) plus an optional "__metadata__"
// object of strings, then the tensor bytes.
//
// SafetensorsFile parses and checks a memory-mapped file; SafetensorsWriter
// writes one. Both in namespace pagoda.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mapped_file.h"
#include "common/status.h"

namespace pagoda {

// Element types of the format. pagoda computes with kF32, kBF16 and kF16;
// the others are parsed (so their files open) but cannot be loaded as weights.
enum class SafeDtype { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool, kF8E4M3, kF8E5M2 };

// "F32", "BF16", ... as spelled in headers.
const char* safe_dtype_name(SafeDtype dtype);
// Parses a header dtype string; InvalidArgument listing the known ones.
Result<SafeDtype> parse_safe_dtype(const std::string& name);
// Bytes per element.
int64_t safe_dtype_size(SafeDtype dtype);

// One tensor of a parsed file; `data` points into the mapping.
struct SafeTensor {
  std::string name;
  SafeDtype dtype = SafeDtype::kF32;
  std::vector<int64_t> shape;
  int64_t numel = 1;
  const uint8_t* data = nullptr;  // numel * dtype size bytes
};

// "[2, 3]".
std::string shape_to_string(const std::vector<int64_t>& shape);

// A parsed, checked safetensors file over its read-only mapping. Owns the
// mapping (release_mapping() hands it to whoever keeps tensor views alive).
// Immutable after open(); concurrent reads are safe.
class SafetensorsFile {
 public:
  // Maps and checks `path`: the header length fits the file, the header is
  // a JSON object, each tensor's dtype is known, shape non-negative and its
  // byte range lies inside the data section with the size shape * dtype
  // implies. Errors name the file and the tensor or key at fault.
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);

  const std::string& path() const { return path_; }
  // nullptr if absent.
  const SafeTensor* find(const std::string& name) const;
  const std::map<std::string, SafeTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Gives up the mapping; the tensors' data pointers stay valid while the
  // returned object lives. The SafetensorsFile must not be used afterwards.
  std::unique_ptr<MappedFile> release_mapping() { return std::move(file_); }

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::unique_ptr<MappedFile> file_;
  std::map<std::string, SafeTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes a safetensors file in two phases: declare every tensor (the header
// needs all shapes), then begin() and append each tensor's bytes in
// declaration order. Writes `path`.part and renames it on finish(), so a
// failure never leaves a truncated `path`. Not thread-safe.
class SafetensorsWriter {
 public:
  explicit SafetensorsWriter(std::string path) : path_(std::move(path)) {}
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  void add_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  void declare(const std::string& name, SafeDtype dtype, std::vector<int64_t> shape);
  // Total bytes of declared tensor data.
  int64_t data_bytes() const { return offset_; }
  // Opens `path`.part and writes the header (padded to 8 bytes).
  Status begin();
  // Appends raw bytes of the next tensor(s); may be called in pieces.
  Status append(const void* bytes, size_t n);
  // Checks that exactly the declared bytes were appended, closes, renames.
  Status finish();

 private:
  struct Entry {
    std::string name;
    SafeDtype dtype;
    std::vector<int64_t> shape;
    int64_t begin, end;
  };
  std::string path_;
  std::map<std::string, std::string> metadata_;
  std::vector<Entry> entries_;
  int64_t offset_ = 0;
  int64_t written_ = 0;
  std::FILE* f_ = nullptr;
  bool ok_ = true;
};

// Converts n elements of bf16 / f16 (raw little-endian 16-bit) to float32.
// Exact (every bf16 and f16 value is a float). Splits large n over OpenMP.
// (float -> bf16 rounding lives in engine/kernels/quantize.h.)
void bf16_to_f32_n(const uint16_t* in, int64_t n, float* out);
void f16_to_f32_n(const uint16_t* in, int64_t n, float* out);

}  // namespace pagoda
