// HttpServer: the HTTP/1.1 transport on Boost.Asio/Beast.
//
// Owns the io_context, its I/O threads, the listening socket, the signal pipe
// and the registry of open connections. Each connection is one C++20
// coroutine on its own strand: read a request through a RequestReader
// (every limit on every byte, see request_reader.h; `100 Continue` once the
// handler accepts the header), hand it to the HttpHandler, which writes the
// response itself (plain or streamed), and keep the connection alive while
// both sides want. Every way a connection can end is handled in session():
// a refusal is answered (4xx/5xx) and the connection closed; an exception
// anywhere in a connection's life is logged and ends that connection only.
//
// Connections beyond server.max_connections (lowered below the process's
// descriptor limit at start) get a 503 and are closed; when the process runs
// out of descriptors anyway, accepting backs off instead of spinning.
// SIGINT/SIGTERM call the on_signal callback once (the owner drains);
// SIGHUP is logged and ignored. During a drain the server keeps accepting
// (so /health can answer 503), closes idle keep-alive connections and
// answers every request with `Connection: close`.
//
// Thread-safety: start() and run() from the owning thread; begin_drain(),
// stop(), active_connections() and busy_connections() from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include "common/status.h"
#include "config/server_config.h"
#include "server/http_reply.h"
#include "server/request_reader.h"

namespace pagoda {

// Serves one request. Runs on the connection's strand.
class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Decides from the header alone whether a request may go on (route,
  // method, API key): a refusal, or nothing. Asked before `100 Continue` is
  // sent; handle() must apply the same checks.
  virtual std::optional<HttpReply> check_header(const HttpRequest& req) const = 0;
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

  // Raises the descriptor limit, binds and listens; fails with a message
  // naming server.host / server.port.
  Status start();
  // The port actually bound (useful with server.port 0).
  int port() const;
  // Called (on an I/O thread) at the first SIGINT or SIGTERM.
  void set_on_signal(std::function<void(int)> fn);
  // Serves until stop(); returns after the I/O threads end.
  void run();
  // Starts a drain: idle keep-alive connections are closed, every later
  // response closes its connection. New connections are still accepted.
  void begin_drain();
  // Ends run(): closes the listener and stops the io_context. Any thread.
  void stop();
  // Open connections, and those in the middle of a request.
  int64_t active_connections() const;
  int64_t busy_connections() const;
  // server.max_connections as applied (lowered under the descriptor limit).
  int64_t max_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// server.host as the address to listen on: an IP address as given, or a host
// name resolved (its first IPv4 address, else its first address).
// InvalidArgument naming server.host if it is neither. Blocking (DNS).
Result<boost::asio::ip::tcp::endpoint> listen_endpoint(const std::string& host, int port);

// Whether the server could listen on host:port now (resolves, binds and
// listens on a probe socket, then closes it), so "address in use" is reported
// before the model loads. Unavailable naming server.host / server.port if
// not; a later start() can still lose a race for the port. Blocking.
Status check_listen_address(const std::string& host, int port);

}  // namespace pagoda
