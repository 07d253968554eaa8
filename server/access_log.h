// AccessRecord and log_access: one access-log record per HTTP request, written
// when its response has ended: request id (generation routes), method, path,
// status, client address, prompt and output tokens, time to first token,
// total time and finish reason. Never the output text, and the prompt only
// when logging.log_prompts is on (the caller fills `prompt`). At info
// for the API routes, at debug for /health and /metrics (probes and scrapes
// would drown the rest). A plain value filled by the request's own coroutine;
// log_access is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace pagoda {

struct AccessRecord {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::string method;
  std::string path;            // the target without its query
  std::string client;          // "address:port"
  int status = 0;              // 499: the client went away before its answer
  std::string request_id;      // generation routes: the response's id
  int64_t prompt_tokens = -1;  // -1: not known (not a generation, or refused before)
  int64_t completion_tokens = -1;
  double ttft_s = -1;         // time to first token; -1 if none was generated
  std::string finish_reason;  // generation routes: stop, length, abort, error, client_gone
  std::string prompt;         // only with logging.log_prompts: the prompt text, at most kMaxLoggedPrompt bytes
};

constexpr size_t kMaxLoggedPrompt = 4096;

void log_access(const AccessRecord& record);

}  // namespace pagoda
