// KvDtype: the element formats KV pages can be stored in (`kv.dtype`).
// Plain enum plus name <-> value helpers; stateless, thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace pagoda {

enum class KvDtype : uint8_t { kF32, kBF16, kF16, kInt8, kInt4 };

// "f32", "bf16", "f16", "int8", "int4"; anything else is InvalidArgument
// naming the allowed values.
Result<KvDtype> parse_kv_dtype(std::string_view name);
const char* kv_dtype_name(KvDtype dtype);

// True for int8 / int4, which keep one float scale per row (token and head).
inline bool kv_dtype_has_scales(KvDtype dtype) { return dtype == KvDtype::kInt8 || dtype == KvDtype::kInt4; }

}  // namespace pagoda
