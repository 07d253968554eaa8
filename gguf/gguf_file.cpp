#include "gguf/gguf_file.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <new>

namespace pagoda {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read little-endian
constexpr int kMaxDims = 4;              // GGML_MAX_DIMS
constexpr uint64_t kMaxNameBytes = 4096;
// Metadata arrays are widened in memory (integers to 8 bytes, strings to
// std::string): a cap keeps a hostile file's arrays from asking for many
// times its size. Real files' largest arrays are vocabularies (< 1M entries).
constexpr uint64_t kMaxArrayElements = uint64_t{1} << 24;

// Reads little-endian values from a byte span, refusing to step past its end.
class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  uint64_t offset() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  Status truncated(const std::string& what) const {
    return Status(StatusCode::kDataLoss, name_ + ": truncated GGUF file: " + what + " at byte " + std::to_string(pos_) +
                                             " runs past the end (" + std::to_string(bytes_.size()) + " bytes)");
  }

  template <typename T>
  Status read(T* out, const std::string& what) {
    if (remaining() < sizeof(T)) return truncated(what);
    std::memcpy(out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::ok();
  }

  Status read_string(std::string* out, const std::string& what) {
    uint64_t n = 0;
    PAGODA_RETURN_IF_ERROR(read(&n, what + " (length)"));
    if (n > remaining()) return truncated(what + " of " + std::to_string(n) + " bytes");
    out->assign(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(n));
    pos_ += n;
    return Status::ok();
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

// Bytes one element of a scalar type takes, 0 for kString/kArray/unknown.
uint64_t scalar_bytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    default:
      return 0;
  }
}

bool is_integer(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool is_float(GgufValueType t) { return t == GgufValueType::kFloat32 || t == GgufValueType::kFloat64; }

// One scalar of type `t` (not string/array) into `out` (widened).
Status read_scalar(ByteReader& r, GgufValueType t, GgufValue* out, const std::string& what) {
  switch (t) {
    case GgufValueType::kUint8: {
      uint8_t v;
      PAGODA_RETURN_IF_ERROR(r.read(&v, what));
      out->scalar = static_cast<uint64_t>(v);
      return Status::ok();
    }
    case GgufValueType::kInt8: {
      int8_t v;
      PAGODA_RETURN_IF_ERROR(r.read(&v, what));
      out->scalar = static_cast<int64_t>(v);
      return Status::ok();
    }
    case GgufValueType::kUint16: {
      uint16_t v;
      PAGODA_RETURN_IF_ERROR(r.read(&v, what));
      out->scalar = static_cast<uint64_t>(v);
      return Status::ok();
    }
    case GgufValueType::kInt16: {
      int16_t v;
      PAGODA_RETURN_IF_ERROR(r.read(&v, what));
      out->scalar = static_cast<int64_t>(v);
      return Status::ok();
    }
    case GgufValueType::kUint32: {
      uint32_t v;
      PAGODA_RETURN_IF_ERROR(r.read(&v, what));
      out->scalar = static_cast<uint64_t>(v);
      return Status::ok();
    }
    case GgufValueType::kInt32: {
      int32_t v;
      PAGODA_RETURN_IF_ERROR(r.read(&v, what));
      out->scalar = static_cast<int64_t>(v);
      return Status::ok();
    }
    case GgufValueType::kUint64: {
      uint64_t v;
      PAGODA_RETURN_IF_ERROR(r.read(&v, what));
      out->scalar = v;
      return Status::ok();
    }
    case GgufValueType::kInt64: {
      int64_t v;
      PAGODA_RETURN_IF_ERROR(r.read(&v, what));
      out->scalar = v;
      return Status::ok();
    }
    case GgufValueType::kFloat32: {
      float v;
      PAGODA_RETURN_IF_ERROR(r.read(&v, what));
      out->scalar = static_cast<double>(v);
      return Status::ok();
    }
    case GgufValueType::kFloat64: {
      double v;
      PAGODA_RETURN_IF_ERROR(r.read(&v, what));
      out->scalar = v;
      return Status::ok();
    }
    case GgufValueType::kBool: {
      uint8_t v;
      PAGODA_RETURN_IF_ERROR(r.read(&v, what));
      out->scalar = v != 0;
      return Status::ok();
    }
    default:
      return Status::internal("read_scalar: not a scalar type");
  }
}

// An integer scalar as int64, or nullopt when it does not fit.
std::optional<int64_t> as_int64(const GgufValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v.scalar)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&v.scalar)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(*u);
  }
  return std::nullopt;
}

Status read_value(ByteReader& r, GgufValue* out, const std::string& key, const std::string& file) {
  uint32_t type = 0;
  PAGODA_RETURN_IF_ERROR(r.read(&type, "the type of key '" + key + "'"));
  if (type > static_cast<uint32_t>(GgufValueType::kFloat64))
    return Status(StatusCode::kDataLoss,
                  file + ": GGUF key '" + key + "' has value type " + std::to_string(type) + ", which is not one");
  out->type = static_cast<GgufValueType>(type);
  const std::string what = "the value of key '" + key + "'";
  if (out->type == GgufValueType::kString) {
    std::string s;
    PAGODA_RETURN_IF_ERROR(r.read_string(&s, what));
    out->scalar = std::move(s);
    return Status::ok();
  }
  if (out->type != GgufValueType::kArray) return read_scalar(r, out->type, out, what);

  uint32_t element_type = 0;
  uint64_t count = 0;
  PAGODA_RETURN_IF_ERROR(r.read(&element_type, what + " (array type)"));
  PAGODA_RETURN_IF_ERROR(r.read(&count, what + " (array length)"));
  if (element_type > static_cast<uint32_t>(GgufValueType::kFloat64))
    return Status(StatusCode::kDataLoss, file + ": GGUF key '" + key + "' is an array of type " +
                                             std::to_string(element_type) + ", which is not one");
  out->array_type = static_cast<GgufValueType>(element_type);
  out->array_size = count;
  if (out->array_type == GgufValueType::kArray)
    return Status::invalid_argument(file + ": GGUF key '" + key +
                                    "' is an array of arrays, which pagoda does not read");
  // Every element takes at least one byte (a string at least its 8-byte
  // length): a count beyond what is left is a damaged file, refused before
  // anything is allocated.
  const uint64_t min_bytes = out->array_type == GgufValueType::kString ? 8 : scalar_bytes(out->array_type);
  if (count > r.remaining() / min_bytes)
    return r.truncated(what + ": an array of " + std::to_string(count) + " elements");
  if (count > kMaxArrayElements)
    return Status::invalid_argument(file + ": GGUF key '" + key + "' is an array of " + std::to_string(count) +
                                    " elements, more than pagoda reads (" + std::to_string(kMaxArrayElements) + ")");
  const auto n = static_cast<size_t>(count);
  if (out->array_type == GgufValueType::kString) {
    out->strings.resize(n);
    for (size_t i = 0; i < n; ++i) PAGODA_RETURN_IF_ERROR(r.read_string(&out->strings[i], what));
    return Status::ok();
  }
  GgufValue element;
  for (size_t i = 0; i < n; ++i) {
    PAGODA_RETURN_IF_ERROR(read_scalar(r, out->array_type, &element, what));
    if (is_integer(out->array_type)) {
      const std::optional<int64_t> v = as_int64(element);
      if (!v)
        return Status::invalid_argument(file + ": GGUF key '" + key + "' holds an integer beyond 2^63 at index " +
                                        std::to_string(i));
      if (out->ints.empty()) out->ints.reserve(n);
      out->ints.push_back(*v);
    } else if (is_float(out->array_type)) {
      if (out->floats.empty()) out->floats.reserve(n);
      out->floats.push_back(std::get<double>(element.scalar));
    } else {
      if (out->bools.empty()) out->bools.reserve(n);
      out->bools.push_back(std::get<bool>(element.scalar) ? 1 : 0);
    }
  }
  return Status::ok();
}

Status wrong_type(const std::string& file, std::string_view key, const GgufValue& v, const char* wanted) {
  std::string got = gguf_value_type_name(v.type);
  if (v.type == GgufValueType::kArray) got += std::string(" of ") + gguf_value_type_name(v.array_type);
  return Status::invalid_argument(file + ": GGUF key '" + std::string(key) + "' is " + got + ", expected " + wanted);
}

}  // namespace

const char* gguf_value_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

bool is_gguf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.status();
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->name_ = path;
  file->file_ = std::move(*mapped);
  PAGODA_RETURN_IF_ERROR(file->parse_checked({file->file_->data(), file->file_->size()}));
  return file;
}

Status GgufFile::parse_checked(std::span<const uint8_t> bytes) {
  try {
    return parse_all(bytes);
  } catch (const std::bad_alloc&) {
    return Status::resource_exhausted(name_ + ": out of memory reading the GGUF metadata");
  }
}

Result<std::unique_ptr<GgufFile>> GgufFile::parse(std::span<const uint8_t> bytes, std::string name) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->name_ = std::move(name);
  PAGODA_RETURN_IF_ERROR(file->parse_checked(bytes));
  return file;
}

Status GgufFile::parse_all(std::span<const uint8_t> bytes) {
  ByteReader r(bytes, name_);
  uint32_t magic = 0;
  PAGODA_RETURN_IF_ERROR(r.read(&magic, "the magic"));
  if (magic != kMagic) return Status(StatusCode::kDataLoss, name_ + ": not a GGUF file (the magic is not 'GGUF')");
  PAGODA_RETURN_IF_ERROR(r.read(&version_, "the version"));
  if (version_ == 1)
    return Status::invalid_argument(name_ +
                                    ": GGUF version 1 (2023's first format) is not supported; versions 2 and 3 are");
  if (version_ != 2 && version_ != 3) {
    // A big-endian file reads its version byte-swapped (3 -> 0x03000000).
    if (version_ == 0x02000000u || version_ == 0x03000000u)
      return Status::invalid_argument(name_ + ": a big-endian GGUF file; pagoda reads little-endian ones");
    return Status(StatusCode::kDataLoss,
                  name_ + ": GGUF version " + std::to_string(version_) + " is not one pagoda knows (2 and 3 are)");
  }
  uint64_t tensor_count = 0, kv_count = 0;
  PAGODA_RETURN_IF_ERROR(r.read(&tensor_count, "the tensor count"));
  PAGODA_RETURN_IF_ERROR(r.read(&kv_count, "the metadata count"));
  // A key/value takes at least 8 (key length) + 4 (type) + 1 bytes, a tensor
  // info 8 + 4 + 4 + 8: counts beyond that are damage, refused before use.
  if (kv_count > r.remaining() / 13) return r.truncated(std::to_string(kv_count) + " metadata key/values");
  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key;
    PAGODA_RETURN_IF_ERROR(r.read_string(&key, "metadata key " + std::to_string(i)));
    GgufValue value;
    PAGODA_RETURN_IF_ERROR(read_value(r, &value, key, name_));
    if (!metadata_.emplace(key, std::move(value)).second)
      return Status(StatusCode::kDataLoss, name_ + ": GGUF key '" + key + "' appears twice");
  }
  if (const GgufValue* a = find("general.alignment")) {
    const std::optional<int64_t> v = is_integer(a->type) ? as_int64(*a) : std::nullopt;
    // The format asks for a multiple of 8; f32 tensors are used in place as floats.
    if (!v || *v < 8 || *v > (1 << 20) || (*v & (*v - 1)) != 0)
      return Status(StatusCode::kDataLoss,
                    name_ + ": GGUF key 'general.alignment' must be a power of two from 8 to 2^20");
    alignment_ = static_cast<uint64_t>(*v);
  }

  if (tensor_count > r.remaining() / 24) return r.truncated(std::to_string(tensor_count) + " tensor infos");
  tensors_.reserve(static_cast<size_t>(tensor_count));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo t;
    PAGODA_RETURN_IF_ERROR(r.read_string(&t.name, "the name of tensor " + std::to_string(i)));
    const std::string what = "tensor '" + t.name + "'";
    if (t.name.size() > kMaxNameBytes)
      return Status(StatusCode::kDataLoss, name_ + ": tensor " + std::to_string(i) + " has a name of " +
                                               std::to_string(t.name.size()) + " bytes");
    uint32_t n_dims = 0;
    PAGODA_RETURN_IF_ERROR(r.read(&n_dims, "the rank of " + what));
    if (n_dims == 0 || n_dims > kMaxDims)
      return Status(StatusCode::kDataLoss,
                    name_ + ": " + what + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    t.elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim = 0;
      PAGODA_RETURN_IF_ERROR(r.read(&dim, "a dimension of " + what));
      if (dim == 0 || dim > (uint64_t{1} << 40) || static_cast<uint64_t>(t.elements) > (uint64_t{1} << 50) / dim)
        return Status(StatusCode::kDataLoss, name_ + ": " + what + " has an absurd dimension " + std::to_string(dim));
      t.dims.push_back(static_cast<int64_t>(dim));
      t.elements *= static_cast<int64_t>(dim);
    }
    uint32_t type = 0;
    PAGODA_RETURN_IF_ERROR(r.read(&type, "the type of " + what));
    PAGODA_RETURN_IF_ERROR(r.read(&t.offset, "the offset of " + what));
    const GgmlTypeInfo* info = ggml_type_info(type);
    if (info == nullptr)
      return Status::invalid_argument(name_ + ": " + what + " has tensor type " + std::to_string(type) +
                                      ", which is not a ggml type pagoda knows");
    t.type = static_cast<GgmlType>(type);
    if (t.dims[0] % info->block_elements != 0)
      return Status(StatusCode::kDataLoss, name_ + ": " + what + " has rows of " + std::to_string(t.dims[0]) +
                                               " elements, not a multiple of " + info->name + "'s block of " +
                                               std::to_string(info->block_elements));
    t.bytes = static_cast<uint64_t>(t.elements / info->block_elements) * static_cast<uint64_t>(info->block_bytes);
    if (t.offset % alignment_ != 0)
      return Status(StatusCode::kDataLoss, name_ + ": " + what + " starts at offset " + std::to_string(t.offset) +
                                               ", not a multiple of the alignment " + std::to_string(alignment_));
    if (!tensor_index_.emplace(t.name, tensors_.size()).second)
      return Status(StatusCode::kDataLoss, name_ + ": tensor '" + t.name + "' appears twice");
    tensors_.push_back(std::move(t));
  }

  const uint64_t header_end = r.offset();
  const uint64_t data_start = (header_end + alignment_ - 1) / alignment_ * alignment_;
  if (tensors_.empty()) return Status::ok();
  if (data_start > bytes.size()) return r.truncated("the tensor data section");
  const uint64_t data_size = bytes.size() - data_start;
  for (GgufTensorInfo& t : tensors_) {
    if (t.offset > data_size || t.bytes > data_size - t.offset)
      return Status(StatusCode::kDataLoss, name_ + ": tensor '" + t.name + "' (" + std::to_string(t.bytes) +
                                               " bytes at data offset " + std::to_string(t.offset) +
                                               ") lies past the end of the file");
    t.data = bytes.data() + data_start + t.offset;
  }
  return Status::ok();
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Result<std::optional<std::string>> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::optional<std::string>();
  if (v->type != GgufValueType::kString) return wrong_type(name_, key, *v, "a string");
  return std::optional<std::string>(std::get<std::string>(v->scalar));
}

Result<std::optional<int64_t>> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::optional<int64_t>();
  if (!is_integer(v->type)) return wrong_type(name_, key, *v, "an integer");
  const std::optional<int64_t> i = as_int64(*v);
  if (!i) return Status::invalid_argument(name_ + ": GGUF key '" + std::string(key) + "' is beyond 2^63");
  return i;
}

Result<std::optional<double>> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::optional<double>();
  if (is_float(v->type)) return std::optional<double>(std::get<double>(v->scalar));
  if (is_integer(v->type)) {
    if (const auto i = as_int64(*v)) return std::optional<double>(static_cast<double>(*i));
  }
  return wrong_type(name_, key, *v, "a number");
}

Result<std::optional<bool>> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::optional<bool>();
  if (v->type != GgufValueType::kBool) return wrong_type(name_, key, *v, "a bool");
  return std::optional<bool>(std::get<bool>(v->scalar));
}

Result<const std::vector<std::string>*> GgufFile::get_strings(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return static_cast<const std::vector<std::string>*>(nullptr);
  if (v->type != GgufValueType::kArray || v->array_type != GgufValueType::kString)
    return wrong_type(name_, key, *v, "an array of strings");
  return &v->strings;
}

Result<const std::vector<int64_t>*> GgufFile::get_ints(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return static_cast<const std::vector<int64_t>*>(nullptr);
  if (v->type != GgufValueType::kArray || !is_integer(v->array_type))
    return wrong_type(name_, key, *v, "an array of integers");
  return &v->ints;
}

Result<const std::vector<double>*> GgufFile::get_floats(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return static_cast<const std::vector<double>*>(nullptr);
  if (v->type != GgufValueType::kArray || !is_float(v->array_type))
    return wrong_type(name_, key, *v, "an array of floats");
  return &v->floats;
}

}  // namespace pagoda
