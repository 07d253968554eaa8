#include "server/api_error.h"

namespace pagoda {

using nlohmann::json;

ApiError api_error(int status, std::string message, std::string code, std::string param, std::string type) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.code = std::move(code);
  e.param = std::move(param);
  e.type = std::move(type);
  return e;
}

json error_json(const ApiError& e) {
  return {{"error",
           {{"message", e.message},
            {"type", e.type},
            {"param", e.param.empty() ? json(nullptr) : json(e.param)},
            {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
}

}  // namespace pagoda
