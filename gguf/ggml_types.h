// The tensor types of ggml (llama.cpp's tensor library) as GGUF files store
// them: ids, names, block geometry, and exact dequantization to float32 of
// the types pagoda reads (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K,
// Q4_K, Q5_K, Q6_K). Dequantization follows ggml's reference code bit for
// bit: each weight is computed in float32 with the same operations in the
// same order, so a model dequantized here equals the file dequantized by
// llama.cpp (llama-quantize ... F32).
//
// Free functions over plain bytes; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pagoda {

// ggml_type ids (ggml.h). Ids not listed are unknown to pagoda.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
};

// Geometry of a type: `block_elements` weights are stored in `block_bytes`.
struct GgmlTypeInfo {
  const char* name = nullptr;  // ggml's name: "f32", "q4_K", ...
  int64_t block_elements = 0;
  int64_t block_bytes = 0;
  bool dequantizable = false;  // dequantize_row() handles it
};

// The info of a known type id, or nullptr for an id ggml does not define.
const GgmlTypeInfo* ggml_type_info(uint32_t id);
// ggml's name for a type ("q4_K"), or "type N" for unknown ids.
std::string ggml_type_name(uint32_t id);

// Bytes that `elements` weights of `type` take (elements must be a multiple
// of the block size; callers check with ggml_type_info first).
uint64_t ggml_row_bytes(GgmlType type, int64_t elements);

// float32 of an IEEE half / a bfloat16 (exact, subnormals included).
float ggml_f16_to_f32(uint16_t h);
float ggml_bf16_to_f32(uint16_t h);

// Group g (32 consecutive weights) of a row stored as q4_0, q4_1 or q4_K, as
// 4-bit quants q[0..32) in [0, 15] with the float scale and min that give
// each weight as scale * q + min, in the float operations ggml's
// dequantization performs (q4_0: min = -8 d; q4_K: scale = d * sc,
// min = -(dmin * m) of the group's sub-block). False for other types.
bool ggml_q4_group(GgmlType type, const uint8_t* row, int64_t g, uint8_t* q, float* scale, float* min);

// Dequantizes `elements` weights (a multiple of the type's block size) of a
// dequantizable `type` from `src` into `dst`.
void ggml_dequantize(GgmlType type, const uint8_t* src, int64_t elements, float* dst);

}  // namespace pagoda
