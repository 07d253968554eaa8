#include "kvpool/kv_dtype.h"

#include <string>

namespace pagoda {

Result<KvDtype> parse_kv_dtype(std::string_view name) {
  if (name == "f32") return KvDtype::kF32;
  if (name == "bf16") return KvDtype::kBF16;
  if (name == "f16") return KvDtype::kF16;
  if (name == "int8") return KvDtype::kInt8;
  if (name == "int4") return KvDtype::kInt4;
  return Status::invalid_argument("kv dtype: got '" + std::string(name) + "', allowed: f32, bf16, f16, int8, int4");
}

const char* kv_dtype_name(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::kF32:
      return "f32";
    case KvDtype::kBF16:
      return "bf16";
    case KvDtype::kF16:
      return "f16";
    case KvDtype::kInt8:
      return "int8";
    case KvDtype::kInt4:
      return "int4";
  }
  return "unknown";
}

}  // namespace pagoda
