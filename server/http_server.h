// HttpServer: the HTTP/1.1 front door on Boost.Asio/Beast.
//
// Owns the io_context, its I/O threads, the listening socket and the signal
// set (SIGINT/SIGTERM begin a graceful stop). Each connection is one C++20
// coroutine that reads a request (with header timeout and body limit),
// hands it to the router and writes the response, keeping the connection
// alive while the client wants. Routes today: GET /health; everything else
// answers an OpenAI-style 404/405 error.
// Thread-safety: start() and run() from one thread; stop() from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "common/status.h"
#include "config/server_config.h"

namespace pagoda {

class HttpServer {
 public:
  explicit HttpServer(const ServerConfig& config);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; fails with a message naming server.host / server.port.
  Status start();
  // The port actually bound (useful with server.port 0).
  int port() const;
  // Serves until stop() or a signal; returns after the I/O threads end.
  void run();
  // Stops accepting and ends run(). Safe from any thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pagoda
