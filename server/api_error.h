// ApiError: an error as OpenAI reports it ({"error": {message, type, param,
// code}}), with its HTTP status. Every 4xx/5xx the server sends, from the
// transport (431, 501, 503 ...) or from the API (400 naming a field), is one
// of these rendered by error_json. Plain data and a free function:
// thread-safe.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace pagoda {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the offending field, "" if none
  std::string code;
  int retry_after_s = 0;  // > 0: send Retry-After
};

ApiError api_error(int status, std::string message, std::string code, std::string param = "",
                   std::string type = "invalid_request_error");

nlohmann::json error_json(const ApiError& e);

}  // namespace pagoda
