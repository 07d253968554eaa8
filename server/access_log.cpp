#include "server/access_log.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "common/logging.h"

namespace pagoda {

void log_access(const AccessRecord& r) {
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - r.start).count();
  nlohmann::ordered_json f = nlohmann::ordered_json::object();
  if (!r.request_id.empty()) f["id"] = r.request_id;
  f["method"] = r.method;
  f["path"] = r.path;
  f["status"] = r.status;
  f["client"] = r.client;
  if (r.prompt_tokens >= 0) f["prompt_tokens"] = r.prompt_tokens;
  if (r.completion_tokens >= 0) f["completion_tokens"] = r.completion_tokens;
  if (r.ttft_s >= 0) f["ttft_ms"] = std::round(r.ttft_s * 1e4) / 10;
  f["total_ms"] = std::round(total_s * 1e4) / 10;
  if (!r.finish_reason.empty()) f["finish_reason"] = r.finish_reason;
  if (!r.prompt.empty()) f["prompt"] = r.prompt;
  const bool probe = r.path == "/health" || r.path == "/metrics";
  log_event(probe ? spdlog::level::debug : spdlog::level::info, "request", f);
}

}  // namespace pagoda
