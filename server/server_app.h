// ServerApp: assembles a serving process from a validated ServerConfig:
// loads the model and tokenizer, plans and allocates KV memory, builds the
// engine (LlamaModel, KvCacheManager, EngineCore, EngineLoop), the API
// service and the HTTP server; then serves until SIGTERM/SIGINT and shuts
// down gracefully: stop accepting, /health says 503, in-flight requests get
// server.shutdown_grace_s to finish, the rest are cancelled, exit 0.
//
// Owns every long-lived object of the process. create() and run() are
// called from the main thread; create() assembles everything on a short-lived
// thread of its own (see assemble()).
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
  // create()'s work. It runs on a thread that exits before serving starts, so
  // the OpenMP team that weight packing starts goes with it: libgomp counts
  // every pooled thread, and with more of them than CPUs (the engine
  // thread's team plus a leftover one) it stops spinning at barriers and
  // sleeps in the kernel at every one, which cost decode steps 30-50%.
  static Result<std::unique_ptr<ServerApp>> assemble(const ServerConfig& config);
  explicit ServerApp(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pagoda
