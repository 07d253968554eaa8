#include "gguf/ggml_types.h"

#include <cstring>

#include "common/float16.h"

namespace pagoda {
namespace {

constexpr int64_t kQK = 32;    // block of the legacy types (Q4_0 ... Q8_1)
constexpr int64_t kQKK = 256;  // super-block of the K types

// Indexed by ggml_type id; unnamed entries are ids ggml does not define
// (4 and 5 were Q4_2 and Q4_3, 31-33 the removed Q4_0_4_4 ... repacks).
constexpr GgmlTypeInfo kTypes[] = {
    {"f32", 1, 4, true},           // 0
    {"f16", 1, 2, true},           // 1
    {"q4_0", kQK, 18, true},       // 2
    {"q4_1", kQK, 20, true},       // 3
    {},                            // 4
    {},                            // 5
    {"q5_0", kQK, 22, true},       // 6
    {"q5_1", kQK, 24, true},       // 7
    {"q8_0", kQK, 34, true},       // 8
    {"q8_1", kQK, 36, false},      // 9
    {"q2_K", kQKK, 84, true},      // 10
    {"q3_K", kQKK, 110, false},    // 11
    {"q4_K", kQKK, 144, true},     // 12
    {"q5_K", kQKK, 176, true},     // 13
    {"q6_K", kQKK, 210, true},     // 14
    {"q8_K", kQKK, 292, false},    // 15
    {"iq2_xxs", kQKK, 66, false},  // 16
    {"iq2_xs", kQKK, 74, false},   // 17
    {"iq3_xxs", kQKK, 98, false},  // 18
    {"iq1_s", kQKK, 50, false},    // 19
    {"iq4_nl", kQK, 18, false},    // 20
    {"iq3_s", kQKK, 110, false},   // 21
    {"iq2_s", kQKK, 82, false},    // 22
    {"iq4_xs", kQKK, 136, false},  // 23
    {"i8", 1, 1, false},           // 24
    {"i16", 1, 2, false},          // 25
    {"i32", 1, 4, false},          // 26
    {"i64", 1, 8, false},          // 27
    {"f64", 1, 8, false},          // 28
    {"iq1_m", kQKK, 56, false},    // 29
    {"bf16", 1, 2, true},          // 30
    {},                            // 31
    {},                            // 32
    {},                            // 33
    {"tq1_0", kQKK, 54, false},    // 34
    {"tq2_0", kQKK, 66, false},    // 35
};

uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

void dequantize_q4_0(const uint8_t* b, float* y) {
  const float d = ggml_f16_to_f32(load_u16(b));
  const uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = (qs[j] & 0x0F) - 8;
    const int x1 = (qs[j] >> 4) - 8;
    y[j] = static_cast<float>(x0) * d;
    y[j + kQK / 2] = static_cast<float>(x1) * d;
  }
}

void dequantize_q4_1(const uint8_t* b, float* y) {
  const float d = ggml_f16_to_f32(load_u16(b));
  const float m = ggml_f16_to_f32(load_u16(b + 2));
  const uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = qs[j] & 0x0F;
    const int x1 = qs[j] >> 4;
    y[j] = static_cast<float>(x0) * d + m;
    y[j + kQK / 2] = static_cast<float>(x1) * d + m;
  }
}

void dequantize_q5_0(const uint8_t* b, float* y) {
  const float d = ggml_f16_to_f32(load_u16(b));
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < kQK / 2; ++j) {
    const uint8_t xh0 = static_cast<uint8_t>(((qh >> j) << 4) & 0x10);
    const uint8_t xh1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
    const int x0 = ((qs[j] & 0x0F) | xh0) - 16;
    const int x1 = ((qs[j] >> 4) | xh1) - 16;
    y[j] = static_cast<float>(x0) * d;
    y[j + kQK / 2] = static_cast<float>(x1) * d;
  }
}

void dequantize_q5_1(const uint8_t* b, float* y) {
  const float d = ggml_f16_to_f32(load_u16(b));
  const float m = ggml_f16_to_f32(load_u16(b + 2));
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < kQK / 2; ++j) {
    const uint8_t xh0 = static_cast<uint8_t>(((qh >> j) << 4) & 0x10);
    const uint8_t xh1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
    const int x0 = (qs[j] & 0x0F) | xh0;
    const int x1 = (qs[j] >> 4) | xh1;
    y[j] = static_cast<float>(x0) * d + m;
    y[j + kQK / 2] = static_cast<float>(x1) * d + m;
  }
}

void dequantize_q8_0(const uint8_t* b, float* y) {
  const float d = ggml_f16_to_f32(load_u16(b));
  const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// block_q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
void dequantize_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* q = b + 16;
  const float d = ggml_f16_to_f32(load_u16(b + 80));
  const float min = ggml_f16_to_f32(load_u16(b + 82));
  int is = 0;
  for (int n = 0; n < kQKK; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      uint8_t sc = scales[is++];
      float dl = d * static_cast<float>(sc & 0x0F);
      float ml = min * static_cast<float>(sc >> 4);
      for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l] >> shift) & 3) - ml;
      sc = scales[is++];
      dl = d * static_cast<float>(sc & 0x0F);
      ml = min * static_cast<float>(sc >> 4);
      for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16] >> shift) & 3) - ml;
      shift += 2;
    }
    q += 32;
  }
}

// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block.
void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// block_q4_K: d, dmin, scales[12], qs[128].
void dequantize_q4_k(const uint8_t* b, float* y) {
  const float d = ggml_f16_to_f32(load_u16(b));
  const float min = ggml_f16_to_f32(load_u16(b + 2));
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  int is = 0;
  for (int j = 0; j < kQKK; j += 64) {
    uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * sc, m1 = min * m;
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    q += 32;
    is += 2;
  }
}

// block_q5_K: d, dmin, scales[12], qh[32], qs[128].
void dequantize_q5_k(const uint8_t* b, float* y) {
  const float d = ggml_f16_to_f32(load_u16(b));
  const float min = ggml_f16_to_f32(load_u16(b + 2));
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  int is = 0;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < kQKK; j += 64) {
    uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * sc, m1 = min * m;
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0x0F) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    ql += 32;
    is += 2;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}

// block_q6_K: ql[128], qh[64], scales[16] (int8), d.
void dequantize_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = ggml_f16_to_f32(load_u16(b + 208));
  for (int n = 0; n < kQKK; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = static_cast<int8_t>((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = static_cast<int8_t>((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = static_cast<int8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t id) {
  if (id >= std::size(kTypes) || kTypes[id].name == nullptr) return nullptr;
  return &kTypes[id];
}

std::string ggml_type_name(uint32_t id) {
  const GgmlTypeInfo* info = ggml_type_info(id);
  return info ? info->name : "type " + std::to_string(id);
}

uint64_t ggml_row_bytes(GgmlType type, int64_t elements) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  return static_cast<uint64_t>(elements / info->block_elements) * static_cast<uint64_t>(info->block_bytes);
}

float ggml_f16_to_f32(uint16_t h) { return f16_to_f32(h); }

float ggml_bf16_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

bool ggml_q4_group(GgmlType type, const uint8_t* row, int64_t g, uint8_t* q, float* scale, float* min) {
  switch (type) {
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1: {
      const bool has_min = type == GgmlType::kQ4_1;
      const uint8_t* b = row + g * (has_min ? 20 : 18);
      const float d = ggml_f16_to_f32(load_u16(b));
      *scale = d;
      *min = has_min ? ggml_f16_to_f32(load_u16(b + 2)) : -8.0f * d;
      const uint8_t* qs = b + (has_min ? 4 : 2);
      for (int j = 0; j < kQK / 2; ++j) {
        q[j] = qs[j] & 0x0F;
        q[j + kQK / 2] = qs[j] >> 4;
      }
      return true;
    }
    case GgmlType::kQ4_K: {
      const uint8_t* b = row + (g / 8) * 144;
      const int sub = static_cast<int>(g % 8);
      uint8_t sc, m;
      scale_min_k4(sub, b + 4, &sc, &m);
      *scale = ggml_f16_to_f32(load_u16(b)) * sc;
      *min = -(ggml_f16_to_f32(load_u16(b + 2)) * m);
      // Sub-blocks 2c and 2c+1 share the 32 bytes of chunk c: low and high nibbles.
      const uint8_t* qs = b + 16 + 32 * (sub / 2);
      for (int l = 0; l < 32; ++l) q[l] = sub % 2 == 0 ? (qs[l] & 0x0F) : (qs[l] >> 4);
      return true;
    }
    default:
      return false;
  }
}

void ggml_dequantize(GgmlType type, const uint8_t* src, int64_t elements, float* dst) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  const int64_t blocks = elements / info->block_elements;
  const int64_t step = info->block_bytes;
  const int64_t n = info->block_elements;
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(elements) * 4);
      return;
    case GgmlType::kF16:
      for (int64_t i = 0; i < elements; ++i) dst[i] = ggml_f16_to_f32(load_u16(src + 2 * i));
      return;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < elements; ++i) dst[i] = ggml_bf16_to_f32(load_u16(src + 2 * i));
      return;
    default:
      break;
  }
  void (*block_fn)(const uint8_t*, float*) = nullptr;
  switch (type) {
    case GgmlType::kQ4_0:
      block_fn = dequantize_q4_0;
      break;
    case GgmlType::kQ4_1:
      block_fn = dequantize_q4_1;
      break;
    case GgmlType::kQ5_0:
      block_fn = dequantize_q5_0;
      break;
    case GgmlType::kQ5_1:
      block_fn = dequantize_q5_1;
      break;
    case GgmlType::kQ8_0:
      block_fn = dequantize_q8_0;
      break;
    case GgmlType::kQ2_K:
      block_fn = dequantize_q2_k;
      break;
    case GgmlType::kQ4_K:
      block_fn = dequantize_q4_k;
      break;
    case GgmlType::kQ5_K:
      block_fn = dequantize_q5_k;
      break;
    case GgmlType::kQ6_K:
      block_fn = dequantize_q6_k;
      break;
    default:
      return;  // not dequantizable: callers check GgmlTypeInfo::dequantizable
  }
  for (int64_t b = 0; b < blocks; ++b) block_fn(src + b * step, dst + b * n);
}

}  // namespace pagoda
