#include "server/request_limits.h"

namespace pagoda {

void apply_request_limits(RequestParser& parser, const ServerConfig& config) {
  parser.body_limit(static_cast<uint64_t>(config.server.max_body_bytes));
  parser.header_limit(kMaxHeaderBytes);
}

bool too_many_header_fields(const RequestParser& parser, const ServerConfig& config) {
  int64_t n = 0;
  for (auto it = parser.get().begin(); it != parser.get().end(); ++it)
    if (++n > config.server.max_header_fields) return true;
  return false;
}

}  // namespace pagoda
