// GgufFile: a GGUF file (llama.cpp's model container, versions 2 and 3,
// little-endian) memory-mapped and parsed: its metadata key/values, its
// tensor infos and where each tensor's bytes lie. Every count, length,
// dimension and offset is checked against the file before use, so a damaged
// or hostile file gives a DataLoss/InvalidArgument naming the key or tensor,
// never a read out of bounds.
//
// Immutable after open(): concurrent reads from any thread are safe. Tensor
// data stays in the mapping (no copies); the GgufFile must outlive the views.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/mapped_file.h"
#include "common/status.h"
#include "gguf/ggml_types.h"

namespace pagoda {

// The value types of GGUF metadata (gguf_type in llama.cpp).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

const char* gguf_value_type_name(GgufValueType t);

// One metadata value. Scalars are kept widened (integers as int64/uint64,
// floats as double); arrays keep their element type and hold scalars or
// strings (GGUF allows arrays of arrays; they are read and skipped, kept empty).
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  GgufValueType array_type = GgufValueType::kUint8;  // element type when type == kArray
  std::variant<int64_t, uint64_t, double, bool, std::string> scalar;
  std::vector<std::string> strings;  // kArray of kString
  std::vector<int64_t> ints;         // kArray of integer types (uint64 above INT64_MAX refused)
  std::vector<double> floats;        // kArray of float types
  std::vector<uint8_t> bools;        // kArray of kBool
  uint64_t array_size = 0;           // elements, whatever the type
};

// One tensor: name, shape in ggml order (dims[0] is the innermost, the
// length of a row), type, and its bytes in the mapping.
struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // ggml "ne": dims[0] = columns
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // from the start of the data section
  int64_t elements = 0;
  uint64_t bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping
};

// True when `path` is a readable file that starts with the GGUF magic.
bool is_gguf_file(const std::string& path);

class GgufFile {
 public:
  // Maps and parses `path`. NotFound if missing; DataLoss for a truncated or
  // inconsistent file (the message names the key or tensor and the offset);
  // InvalidArgument for a valid file pagoda cannot read (big-endian, version
  // 1, a tensor type it does not know).
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path);
  // Parses a GGUF held in memory (the fuzz target and tests); `bytes` must
  // outlive the result.
  static Result<std::unique_ptr<GgufFile>> parse(std::span<const uint8_t> bytes, std::string name);

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }

  const std::map<std::string, GgufValue, std::less<>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;

  // Typed lookups. A missing key gives nullopt; a key of the wrong type (or an
  // integer out of range) gives InvalidArgument naming the key.
  Result<std::optional<std::string>> get_string(std::string_view key) const;
  Result<std::optional<int64_t>> get_int(std::string_view key) const;   // any integer type
  Result<std::optional<double>> get_float(std::string_view key) const;  // float types (and integers)
  Result<std::optional<bool>> get_bool(std::string_view key) const;
  // An array of strings / integers / floats; nullptr when missing, an error
  // when the key holds something else.
  Result<const std::vector<std::string>*> get_strings(std::string_view key) const;
  Result<const std::vector<int64_t>*> get_ints(std::string_view key) const;
  Result<const std::vector<double>*> get_floats(std::string_view key) const;

  // Hands over the mapping that tensors' `data` point into (so a model can
  // keep its views after the GgufFile is gone); nullptr for parse()d bytes.
  std::unique_ptr<MappedFile> release_mapping() { return std::move(file_); }

 private:
  GgufFile() = default;
  Status parse_all(std::span<const uint8_t> bytes);
  Status parse_checked(std::span<const uint8_t> bytes);  // parse_all, out of memory as an error

  std::unique_ptr<MappedFile> file_;
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::map<std::string, GgufValue, std::less<>> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace pagoda
