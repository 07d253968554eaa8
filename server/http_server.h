// HttpServer: the HTTP/1.1 transport on Boost.Asio/Beast.
//
// Owns the io_context, its I/O threads, the listening socket and the signal
// set. Each connection is one C++20 coroutine on its own strand: read a
// request (header timeout, body limit, header size limit), hand it to the
// HttpHandler, which writes the response itself (plain or streamed), and keep
// the connection alive while both sides want. Connections beyond
// server.max_connections get a 503 and are closed. SIGINT/SIGTERM call the
// on_signal callback once (the owner runs the graceful shutdown).
//
// Thread-safety: start() and run() from the owning thread; stop_accepting(),
// stop() and active_connections() from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include "common/status.h"
#include "config/server_config.h"

namespace pagoda {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;

// Serves one request. Runs on the connection's strand.
class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Writes the response for `req` on `stream`. Returns false to close the
  // connection afterwards.
  virtual boost::asio::awaitable<bool> handle(HttpRequest& req, boost::beast::tcp_stream& stream) = 0;
};

class HttpServer {
 public:
  HttpServer(const ServerConfig& config, HttpHandler* handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; fails with a message naming server.host / server.port.
  Status start();
  // The port actually bound (useful with server.port 0).
  int port() const;
  // Called (on an I/O thread) at the first SIGINT or SIGTERM.
  void set_on_signal(std::function<void(int)> fn);
  // Serves until stop(); returns after the I/O threads end.
  void run();
  // Closes the listening socket; open connections go on.
  void stop_accepting();
  // Ends run(): stops the io_context. Safe from any thread.
  void stop();
  int64_t active_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// server.host as the address to listen on: an IP address as given, or a host
// name resolved (its first IPv4 address, else its first address).
// InvalidArgument naming server.host if it is neither. Blocking (DNS).
Result<boost::asio::ip::tcp::endpoint> listen_endpoint(const std::string& host, int port);

// Writes a complete JSON response.
boost::asio::awaitable<void> write_json(boost::beast::tcp_stream& stream, unsigned version, bool keep_alive,
                                        http::status status, const std::string& body,
                                        int retry_after_s = 0);

}  // namespace pagoda
