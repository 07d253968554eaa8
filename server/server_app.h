// ServerApp: assembles a serving process from a validated ServerConfig:
// loads the model and tokenizer, plans and allocates KV memory, builds the
// engine (LlamaModel, KvCacheManager, EngineCore, EngineLoop), the API
// service and the HTTP server; then serves until SIGTERM/SIGINT and shuts
// down gracefully: stop accepting, /health says 503, in-flight requests get
// server.shutdown_grace_s to finish, the rest are cancelled, exit 0.
//
// Owns every long-lived object of the process. create() and run() are
// called from the main thread.
#pragma once

#include <memory>

#include "common/status.h"
#include "config/server_config.h"

namespace pagoda {

class ServerApp {
 public:
  // Errors name the config key at fault (model.path, kv.memory_gib, ...).
  static Result<std::unique_ptr<ServerApp>> create(const ServerConfig& config);
  ~ServerApp();

  // Serves until a signal; returns the process exit code.
  int run();

 private:
  struct Impl;
  explicit ServerApp(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pagoda
