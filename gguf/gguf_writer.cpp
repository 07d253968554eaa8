#include "gguf/gguf_writer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "common/float16.h"
#include "gguf/gguf_file.h"

namespace pagoda {
namespace {

constexpr uint64_t kAlignment = 32;

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &v, sizeof(T));
}

void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

void pad(std::vector<uint8_t>& out) {
  while (out.size() % kAlignment != 0) out.push_back(0);
}

void put_f16(std::vector<uint8_t>& out, float v) { put<uint16_t>(out, f32_to_f16(v)); }

// ggml's quantize_row_q8_0_ref.
void quantize_q8_0(const float* x, std::vector<uint8_t>& out) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(out, d);
  for (int j = 0; j < 32; ++j) out.push_back(static_cast<uint8_t>(static_cast<int8_t>(std::roundf(x[j] * id))));
}

// ggml's quantize_row_q4_0_ref.
void quantize_q4_0(const float* x, std::vector<uint8_t>& out) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(out, d);
  for (int j = 0; j < 16; ++j) {
    const auto q0 = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f))));
    const auto q1 = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f))));
    out.push_back(static_cast<uint8_t>(q0 | (q1 << 4)));
  }
}

}  // namespace

void GgufWriter::put_key(const std::string& key, uint32_t type) {
  put_string(kv_, key);
  put<uint32_t>(kv_, type);
  ++kv_count_;
}

void GgufWriter::add_string(const std::string& key, const std::string& value) {
  put_key(key, static_cast<uint32_t>(GgufValueType::kString));
  put_string(kv_, value);
}

void GgufWriter::add_uint32(const std::string& key, uint32_t value) {
  put_key(key, static_cast<uint32_t>(GgufValueType::kUint32));
  put<uint32_t>(kv_, value);
}

void GgufWriter::add_int32(const std::string& key, int32_t value) {
  put_key(key, static_cast<uint32_t>(GgufValueType::kInt32));
  put<int32_t>(kv_, value);
}

void GgufWriter::add_float32(const std::string& key, float value) {
  put_key(key, static_cast<uint32_t>(GgufValueType::kFloat32));
  put<float>(kv_, value);
}

void GgufWriter::add_bool(const std::string& key, bool value) {
  put_key(key, static_cast<uint32_t>(GgufValueType::kBool));
  kv_.push_back(value ? 1 : 0);
}

void GgufWriter::add_strings(const std::string& key, const std::vector<std::string>& values) {
  put_key(key, static_cast<uint32_t>(GgufValueType::kArray));
  put<uint32_t>(kv_, static_cast<uint32_t>(GgufValueType::kString));
  put<uint64_t>(kv_, values.size());
  for (const std::string& v : values) put_string(kv_, v);
}

void GgufWriter::add_float32s(const std::string& key, const std::vector<float>& values) {
  put_key(key, static_cast<uint32_t>(GgufValueType::kArray));
  put<uint32_t>(kv_, static_cast<uint32_t>(GgufValueType::kFloat32));
  put<uint64_t>(kv_, values.size());
  for (float v : values) put<float>(kv_, v);
}

void GgufWriter::add_int32s(const std::string& key, const std::vector<int32_t>& values) {
  put_key(key, static_cast<uint32_t>(GgufValueType::kArray));
  put<uint32_t>(kv_, static_cast<uint32_t>(GgufValueType::kInt32));
  put<uint64_t>(kv_, values.size());
  for (int32_t v : values) put<int32_t>(kv_, v);
}

void GgufWriter::add_tensor(const std::string& name, const std::vector<int64_t>& dims, GgmlType type,
                            std::vector<uint8_t> data) {
  tensors_.push_back({name, dims, type, std::move(data)});
}

std::vector<uint8_t> GgufWriter::header() const {
  std::vector<uint8_t> out;
  put<uint32_t>(out, 0x46554747);  // "GGUF"
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, kv_count_);
  out.insert(out.end(), kv_.begin(), kv_.end());
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) put<uint64_t>(out, static_cast<uint64_t>(d));
    put<uint32_t>(out, static_cast<uint32_t>(t.type));
    put<uint64_t>(out, offset);
    offset += (t.data.size() + kAlignment - 1) / kAlignment * kAlignment;
  }
  pad(out);
  return out;
}

std::vector<uint8_t> GgufWriter::bytes() const {
  std::vector<uint8_t> out = header();
  for (const Tensor& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    pad(out);
  }
  return out;
}

Status GgufWriter::write(const std::string& path) const {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  const std::vector<uint8_t> head = header();
  f.write(reinterpret_cast<const char*>(head.data()), static_cast<std::streamsize>(head.size()));
  const char zeros[kAlignment] = {};
  for (const Tensor& t : tensors_) {  // streamed: the file is never whole in memory
    f.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size()));
    f.write(zeros, static_cast<std::streamsize>((kAlignment - t.data.size() % kAlignment) % kAlignment));
  }
  if (!f) return Status::invalid_argument("cannot write " + path);
  return Status::ok();
}

std::vector<uint8_t> ggml_quantize(GgmlType type, const float* x, int64_t n) {
  std::vector<uint8_t> out;
  switch (type) {
    case GgmlType::kF32:
      out.resize(static_cast<size_t>(n) * 4);
      std::memcpy(out.data(), x, out.size());
      break;
    case GgmlType::kF16:
      out.reserve(static_cast<size_t>(n) * 2);
      for (int64_t i = 0; i < n; ++i) put_f16(out, x[i]);
      break;
    case GgmlType::kQ8_0:
      out.reserve(static_cast<size_t>(n / 32 * 34));
      for (int64_t i = 0; i < n; i += 32) quantize_q8_0(x + i, out);
      break;
    case GgmlType::kQ4_0:
      out.reserve(static_cast<size_t>(n / 32 * 18));
      for (int64_t i = 0; i < n; i += 32) quantize_q4_0(x + i, out);
      break;
    default:
      break;
  }
  return out;
}

}  // namespace pagoda
