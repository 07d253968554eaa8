#include "formats/safetensors.h"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/float16.h"
#include "engine/kernels/simd.h"

namespace pagoda {

using nlohmann::json;

namespace {

struct DtypeInfo {
  SafeDtype dtype;
  const char* name;
  int64_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {SafeDtype::kF64, "F64", 8},   {SafeDtype::kF32, "F32", 4},        {SafeDtype::kF16, "F16", 2},
    {SafeDtype::kBF16, "BF16", 2}, {SafeDtype::kI64, "I64", 8},        {SafeDtype::kI32, "I32", 4},
    {SafeDtype::kI16, "I16", 2},   {SafeDtype::kI8, "I8", 1},          {SafeDtype::kU8, "U8", 1},
    {SafeDtype::kBool, "BOOL", 1}, {SafeDtype::kF8E4M3, "F8_E4M3", 1}, {SafeDtype::kF8E5M2, "F8_E5M2", 1},
};

// Elements at which conversions split over threads.
constexpr int64_t kParallelConvert = 1 << 20;
// Limit on one dimension; keeps numel * 8 far from int64 overflow while
// checking dimension by dimension.
constexpr uint64_t kMaxDimSize = uint64_t(1) << 40;

Status header_error(const std::string& path, const std::string& what) {
  return Status::data_loss(path + ": bad safetensors header: " + what);
}

}  // namespace

const char* safe_dtype_name(SafeDtype dtype) {
  for (const DtypeInfo& d : kDtypes)
    if (d.dtype == dtype) return d.name;
  return "?";
}

Result<SafeDtype> parse_safe_dtype(const std::string& name) {
  std::string known;
  for (const DtypeInfo& d : kDtypes) {
    if (name == d.name) return d.dtype;
    if (!known.empty()) known += ", ";
    known += d.name;
  }
  return Status::invalid_argument("dtype '" + name + "' is not a safetensors dtype; known: " + known);
}

int64_t safe_dtype_size(SafeDtype dtype) {
  for (const DtypeInfo& d : kDtypes)
    if (d.dtype == dtype) return d.size;
  return 0;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.status();
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->file_ = std::move(mapped).value();
  const uint8_t* base = f->file_->data();
  const uint64_t size = f->file_->size();
  if (size < 8) {
    return Status::data_loss(path + ": truncated safetensors file: " + std::to_string(size) +
                             " bytes, shorter than the 8-byte header length");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];  // little-endian
  if (header_len > size - 8) {
    return Status::data_loss(path + ": safetensors header length " + std::to_string(header_len) +
                             " reaches beyond the end of the file (" + std::to_string(size) +
                             " bytes): truncated or not a safetensors file");
  }
  const char* hbegin = reinterpret_cast<const char*>(base + 8);
  json header;
  try {
    header = json::parse(hbegin, hbegin + header_len);
  } catch (const json::exception& e) {
    return header_error(path, std::string("not valid JSON: ") + e.what());
  }
  if (!header.is_object()) return header_error(path, "the JSON header is not an object");
  const uint8_t* data = base + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return header_error(path, "'__metadata__' is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) return header_error(path, "'__metadata__." + m.key() + "' is not a string");
        f->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string who = "tensor '" + name + "': ";
    if (!v.is_object()) return header_error(path, who + "entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string())
      return header_error(path, who + "'dtype' is missing or not a string");
    auto dtype = parse_safe_dtype(v["dtype"].get<std::string>());
    if (!dtype) return header_error(path, who + dtype.status().message());
    SafeTensor t;
    t.name = name;
    t.dtype = *dtype;
    if (!v.contains("shape") || !v["shape"].is_array())
      return header_error(path, who + "'shape' is missing or not an array");
    uint64_t numel = 1;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > kMaxDimSize)
        return header_error(path, who + "shape " + v["shape"].dump() + " must hold non-negative integers");
      const uint64_t dim = d.get<uint64_t>();
      t.shape.push_back(static_cast<int64_t>(dim));
      numel *= dim;
      if (numel > data_size) numel = data_size + 1;  // clamp: surely too big, no overflow
    }
    t.numel = static_cast<int64_t>(numel);
    const json* off = v.contains("data_offsets") ? &v["data_offsets"] : nullptr;
    if (off == nullptr || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      return header_error(path, who + "'data_offsets' must be [begin, end] (non-negative)");
    const uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
    if (begin > end) return header_error(path, who + "data_offsets " + off->dump() + " has begin > end");
    if (end > data_size) {
      return Status::data_loss(path + ": " + who + "data_offsets " + off->dump() + " reach beyond the data section (" +
                               std::to_string(data_size) + " bytes): truncated file");
    }
    const uint64_t want = numel * static_cast<uint64_t>(safe_dtype_size(t.dtype));
    if (end - begin != want) {
      return header_error(path, who + "data_offsets " + off->dump() + " span " + std::to_string(end - begin) +
                                    " bytes, but shape " + shape_to_string(t.shape) + " of " +
                                    safe_dtype_name(t.dtype) + " needs " + std::to_string(want));
    }
    t.data = data + begin;
    f->tensors_.emplace(name, std::move(t));
  }
  return f;
}

const SafeTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

SafetensorsWriter::~SafetensorsWriter() {
  if (f_ != nullptr) {
    std::fclose(f_);
    std::remove((path_ + ".part").c_str());
  }
}

void SafetensorsWriter::declare(const std::string& name, SafeDtype dtype, std::vector<int64_t> shape) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  const int64_t bytes = numel * safe_dtype_size(dtype);
  entries_.push_back(Entry{name, dtype, std::move(shape), offset_, offset_ + bytes});
  offset_ += bytes;
}

Status SafetensorsWriter::begin() {
  json header = json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  for (const Entry& e : entries_) {
    header[e.name] = {{"dtype", safe_dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned (as the
  // reference writer does), which keeps F32 tensors alignable for views.
  while ((text.size() + 8) % 8 != 0) text.push_back(' ');
  const std::string tmp = path_ + ".part";
  f_ = std::fopen(tmp.c_str(), "wb");
  if (f_ == nullptr) return Status::invalid_argument(tmp + ": cannot create: " + std::strerror(errno));
  uint8_t len[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  PAGODA_RETURN_IF_ERROR(append(len, 8));
  PAGODA_RETURN_IF_ERROR(append(text.data(), text.size()));
  written_ = 0;
  return Status::ok();
}

Status SafetensorsWriter::append(const void* bytes, size_t n) {
  if (f_ == nullptr) return Status::internal(path_ + ": SafetensorsWriter::append before begin()");
  if (ok_ && std::fwrite(bytes, 1, n, f_) != n) ok_ = false;
  written_ += static_cast<int64_t>(n);
  if (!ok_) return Status::resource_exhausted(path_ + ".part: write failed (disk full?)");
  return Status::ok();
}

Status SafetensorsWriter::finish() {
  if (f_ == nullptr) return Status::internal(path_ + ": SafetensorsWriter::finish before begin()");
  const std::string tmp = path_ + ".part";
  const bool closed = std::fclose(f_) == 0;
  f_ = nullptr;
  if (written_ != offset_) {
    std::remove(tmp.c_str());
    return Status::internal(path_ + ": wrote " + std::to_string(written_) + " tensor bytes, declared " +
                            std::to_string(offset_));
  }
  if (!ok_ || !closed) {
    std::remove(tmp.c_str());
    return Status::resource_exhausted(tmp + ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    return Status::invalid_argument(path_ + ": cannot rename from " + tmp + ": " + err);
  }
  return Status::ok();
}

namespace {

void bf16_chunk(const uint16_t* in, int64_t n, float* out) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i)));
    _mm512_storeu_ps(out + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
#endif
  for (; i < n; ++i) {
    const uint32_t bits = static_cast<uint32_t>(in[i]) << 16;
    std::memcpy(out + i, &bits, 4);
  }
}

void f16_chunk(const uint16_t* in, int64_t n, float* out) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i))));
#endif
  for (; i < n; ++i) out[i] = f16_to_f32(in[i]);
}

template <typename Chunk>
void convert_parallel(const uint16_t* in, int64_t n, float* out, Chunk chunk) {
  if (n < kParallelConvert) {
    chunk(in, n, out);
    return;
  }
  const int64_t pieces = (n + kParallelConvert - 1) / kParallelConvert;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < pieces; ++p) {
    const int64_t b = p * kParallelConvert;
    chunk(in + b, std::min(kParallelConvert, n - b), out + b);
  }
}

}  // namespace

void bf16_to_f32_n(const uint16_t* in, int64_t n, float* out) { convert_parallel(in, n, out, bf16_chunk); }

void f16_to_f32_n(const uint16_t* in, int64_t n, float* out) { convert_parallel(in, n, out, f16_chunk); }

}  // namespace pagoda
