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

// ggml's quantize_row_q5_0_ref: q4_0 with a fifth bit (qh) per weight.
void quantize_q5_0(const float* x, std::vector<uint8_t>& out) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -16.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(out, d);
  uint32_t qh = 0;
  uint8_t qs[16];
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
    const int q1 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 16.5f)));
    qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
    qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + 16);
  }
  put<uint32_t>(out, qh);
  out.insert(out.end(), qs, qs + 16);
}

// The K types' 256-weight super-block.
constexpr int kSuper = 256;

// ggml's nearest_int: v rounded to the nearest integer, ties to even, for
// |v| < 2^22. Adding 1.5 * 2^23 makes the float adder do the rounding and
// leaves the integer in the low mantissa bits.
int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

// ggml's make_qkx2_quants (squared error, not absolute): fits the n weights
// x as scale * L - min with L in [0, nmax] and min >= 0, minimizing the error
// weighted by w. Starts from the range [min(x, 0), max(x)] mapped onto
// [0, nmax], then tries nstep + 1 other steps (nmax + rmin + rdelta * k over
// the range), each with the least-squares scale and offset for its levels,
// keeping the best. Returns the scale; *min_out gets the min. A range of
// width 0 gives scale 0, L = 0 and min = -x.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* min_out, float rmin,
                    float rdelta, int nstep) {
  float lo = x[0], hi = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    std::fill(L, L + n, 0);
    *min_out = -lo;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (hi - lo);
  float scale = 1 / iscale;
  float best = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::clamp(nearest_int(iscale * (x[i] - lo)), 0, nmax));
    const float diff = scale * L[i] + lo - x[i];
    best += w[i] * (diff * diff);
  }
  uint8_t trial[32];
  for (int step = 0; step <= nstep; ++step) {
    iscale = (rmin + rdelta * static_cast<float>(step) + static_cast<float>(nmax)) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - lo)), 0, nmax);
      trial[i] = static_cast<uint8_t>(l);
      const float fl = static_cast<float>(l);
      sum_l += w[i] * fl;
      sum_l2 += w[i] * fl * fl;
      sum_xl += w[i] * fl * x[i];
    }
    // Weighted least squares of x ~ s * l + m over this trial's levels.
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    float s = (sum_w * sum_xl - sum_x * sum_l) / det;
    float m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (m > 0) {  // the offset must not be positive: refit the scale alone
      m = 0;
      s = sum_xl / sum_l2;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = s * trial[i] + m - x[i];
      err += w[i] * (diff * diff);
    }
    if (err < best) {
      std::copy(trial, trial + n, L);
      best = err;
      scale = s;
      lo = m;
    }
  }
  *min_out = -lo;
  return scale;
}

// ggml's make_qx_quants with rmse_type 1 (weights x^2, no importance
// matrix): fits the n weights x as scale * (L - nmax) with L in [0, 2 nmax),
// starting from the step that maps the largest-magnitude weight to -nmax and
// trying 18 nearby steps (nmax +- 0.1 k), keeping the one with the least
// x^2-weighted squared error. Returns the scale (0 when x is all zeros).
float fit_symmetric_scale(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < 1e-15f) {  // GROUP_MAX_EPS
    std::fill(L, L + n, 0);
    return 0.0f;
  }
  auto level = [nmax](float v) { return std::clamp(nearest_int(v), -nmax, nmax - 1); };
  float iscale = static_cast<float>(-nmax) / max;
  float sum_lx = 0, sum_l2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = level(iscale * x[i]);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sum_lx += w * x[i] * static_cast<float>(l);
    sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.0f;
  // The weighted error is sum(w x^2) - sum_lx^2 / sum_l2: the larger
  // sum_lx^2 / sum_l2 (= scale * sum_lx), the better.
  float best = scale * sum_lx;
  for (int k = -9; k <= 9; ++k) {
    if (k == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(k)) / max;
    sum_lx = sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = level(iscale * x[i]);
      const float w = x[i] * x[i];
      sum_lx += w * x[i] * static_cast<float>(l);
      sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(level(iscale * x[i]) + nmax);
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

// ggml's quantize_row_q4_K_ref for one super-block: 8 sub-blocks of 32, each
// weight d * sc * q - dmin * m with q in [0, 15] and the sub-block's sc and m
// 6-bit multiples of the f16 super-block scales d and dmin. Layout: d, dmin,
// scales[12] (sc and m of sub-blocks 0-3 in the low 6 bits of bytes 0-3 and
// 4-7; those of 4-7 as nibbles of bytes 8-11 with their top 2 bits in the
// high bits of bytes 0-7), qs[128] (bytes 32c..32c+31: sub-block 2c in the
// low nibbles, 2c+1 in the high).
void quantize_q4_k(const float* x, std::vector<uint8_t>& out) {
  uint8_t L[kSuper];
  float scales[8], mins[8];
  float max_scale = 0, max_min = 0;  // scales and mins come out >= 0
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    float w[32];
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_min(32, 15, xs, w, L + 32 * j, &mins[j], -1.0f, 0.1f, 20);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  uint8_t sc[8], m[8], packed[12];
  for (int j = 0; j < 8; ++j) {
    // As ggml: the rounded value is narrowed to a byte, then capped at 63.
    sc[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
    m[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
  }
  for (int j = 0; j < 4; ++j) {
    packed[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    packed[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    packed[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0x0F) | ((m[j + 4] & 0x0F) << 4));
  }
  const uint16_t d16 = f32_to_f16(max_scale / 63.0f);
  const uint16_t dmin16 = f32_to_f16(max_min / 63.0f);
  const float d = f16_to_f32(d16), dmin = f16_to_f32(dmin16);
  // Requantize against the scales as stored. A sub-block whose scale rounded
  // to 0 keeps its levels from the fit (they multiply 0), as in ggml.
  for (int j = 0; j < 8; ++j) {
    const float dj = d * static_cast<float>(sc[j]);
    if (dj == 0) continue;
    const float mj = dmin * static_cast<float>(m[j]);
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + l] + mj) / dj), 0, 15));
  }
  put<uint16_t>(out, d16);
  put<uint16_t>(out, dmin16);
  out.insert(out.end(), packed, packed + 12);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) out.push_back(static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4)));
}

// ggml's quantize_row_q6_K_ref for one super-block: 16 sub-blocks of 16,
// each weight d * sc * (q - 32) with q in [0, 63], sc an int8 multiple of the
// f16 super-block scale d. Layout: ql[128] (low 4 bits), qh[64] (high 2
// bits), scales[16] (int8), d. Within each half of 128 weights (ql 64 bytes,
// qh 32): weight l (< 32) and l + 64 share ql[l] (low, high nibble), l + 32
// and l + 96 share ql[l + 32], and qh[l] holds the high bits of l, l + 32,
// l + 64, l + 96 in bit pairs 0, 2, 4, 6.
void quantize_q6_k(const float* x, std::vector<uint8_t>& out) {
  int8_t L[kSuper];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int j = 0; j < 16; ++j) {
    scales[j] = fit_symmetric_scale(16, 32, x + 16 * j, L + 16 * j);
    if (std::fabs(scales[j]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[j]);
      max_scale = scales[j];
    }
  }
  const size_t at = out.size();
  out.resize(at + 210, 0);
  uint8_t* ql = out.data() + at;
  uint8_t* qh = ql + 128;
  auto* sc = reinterpret_cast<int8_t*>(ql + 192);
  if (max_abs_scale < 1e-15f) return;  // all zeros (d = 0 too)
  const float iscale = -128.0f / max_scale;
  const uint16_t d16 = f32_to_f16(1 / iscale);
  std::memcpy(ql + 208, &d16, 2);
  for (int j = 0; j < 16; ++j) sc[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[j])));
  const float d = f16_to_f32(d16);
  for (int j = 0; j < 16; ++j) {
    const float dj = d * static_cast<float>(sc[j]);
    if (dj == 0) continue;  // keeps the fit's levels, as ggml does
    for (int l = 0; l < 16; ++l)
      L[16 * j + l] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + l] / dj), -32, 31) + 32);
  }
  for (int half = 0; half < 2; ++half) {
    const int8_t* q = L + 128 * half;
    uint8_t* lo = ql + 64 * half;
    uint8_t* hi = qh + 32 * half;
    for (int l = 0; l < 32; ++l) {
      lo[l] = static_cast<uint8_t>((q[l] & 0x0F) | ((q[l + 64] & 0x0F) << 4));
      lo[l + 32] = static_cast<uint8_t>((q[l + 32] & 0x0F) | ((q[l + 96] & 0x0F) << 4));
      hi[l] = static_cast<uint8_t>((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) |
                                   ((q[l + 96] >> 4) << 6));
    }
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
    case GgmlType::kQ5_0:
      out.reserve(static_cast<size_t>(n / 32 * 22));
      for (int64_t i = 0; i < n; i += 32) quantize_q5_0(x + i, out);
      break;
    case GgmlType::kQ4_K:
      out.reserve(static_cast<size_t>(n / kSuper * 144));
      for (int64_t i = 0; i < n; i += kSuper) quantize_q4_k(x + i, out);
      break;
    case GgmlType::kQ6_K:
      out.reserve(static_cast<size_t>(n / kSuper * 210));
      for (int64_t i = 0; i < n; i += kSuper) quantize_q6_k(x + i, out);
      break;
    default:
      break;
  }
  return out;
}

}  // namespace pagoda
