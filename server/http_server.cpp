#include "server/http_server.h"

#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace pagoda {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

http::response<http::string_body> json_response(unsigned version, bool keep_alive,
                                                http::status status, const nlohmann::json& body) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::server, "pagoda/" PAGODA_VERSION);
  res.set(http::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = body.dump();
  res.prepare_payload();
  return res;
}

nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::string& code) {
  return {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code}}}};
}

}  // namespace

struct HttpServer::Impl {
  explicit Impl(const ServerConfig& c)
      : config(c), io(static_cast<int>(c.server.io_threads)), acceptor(io), signals(io) {}

  ServerConfig config;
  asio::io_context io;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  std::atomic<bool> stopping{false};

  http::response<http::string_body> route(const http::request<http::string_body>& req) {
    const unsigned v = req.version();
    const bool ka = req.keep_alive();
    std::string target(req.target());
    if (target == "/health") {
      if (req.method() != http::verb::get)
        return json_response(v, ka, http::status::method_not_allowed,
                             error_body("method not allowed on /health; use GET",
                                        "invalid_request_error", "method_not_allowed"));
      if (stopping) return json_response(v, ka, http::status::service_unavailable, {{"status", "draining"}});
      return json_response(v, ka, http::status::ok, {{"status", "ok"}});
    }
    return json_response(v, ka, http::status::not_found,
                         error_body("no route for " + std::string(req.method_string()) + " " +
                                        target,
                                    "invalid_request_error", "not_found"));
  }

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    const auto header_timeout = std::chrono::milliseconds(
        static_cast<int64_t>(config.server.header_timeout_s * 1000));
    const auto idle_timeout =
        std::chrono::milliseconds(static_cast<int64_t>(config.server.idle_timeout_s * 1000));
    for (bool first = true;; first = false) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(static_cast<uint64_t>(config.server.max_body_bytes));
      parser.header_limit(16 * 1024);
      beast::error_code ec;
      stream.expires_after(first ? header_timeout : idle_timeout);
      co_await http::async_read_header(stream, buffer, parser,
                                       asio::redirect_error(asio::use_awaitable, ec));
      if (!ec && !parser.is_done()) {
        stream.expires_after(idle_timeout);
        co_await http::async_read(stream, buffer, parser,
                                  asio::redirect_error(asio::use_awaitable, ec));
      }
      if (ec == http::error::body_limit) {
        auto res = json_response(11, false, http::status::payload_too_large,
                                 error_body("request body exceeds server.max_body_bytes (" +
                                                std::to_string(config.server.max_body_bytes) + ")",
                                            "invalid_request_error", "body_too_large"));
        co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
        break;
      }
      if (ec) break;  // timeout, EOF or a malformed request: drop the connection
      auto res = route(parser.get());
      stream.expires_after(idle_timeout);
      co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !res.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::awaitable<void> accept_loop() {
    while (!stopping) {
      beast::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (stopping) break;
        continue;
      }
      asio::co_spawn(io, session(std::move(socket)), asio::detached);
    }
  }
};

HttpServer::HttpServer(const ServerConfig& config) : impl_(std::make_unique<Impl>(config)) {}
HttpServer::~HttpServer() = default;

Status HttpServer::start() {
  const auto& s = impl_->config.server;
  beast::error_code ec;
  auto address = asio::ip::make_address(s.host, ec);
  if (ec)
    return Status::invalid_argument("config key 'server.host': '" + s.host +
                                    "' is not an IP address (" + ec.message() + ")");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(s.port));
  auto& acc = impl_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Status::unavailable("cannot listen on " + s.host + ":" + std::to_string(s.port) +
                               " (config keys 'server.host', 'server.port'): " + ec.message());
  impl_->signals.add(SIGINT);
  impl_->signals.add(SIGTERM);
  impl_->signals.async_wait([this](const beast::error_code& e, int sig) {
    if (e) return;
    spdlog::info("signal {} received: shutting down", sig);
    stop();
  });
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  return Status::ok();
}

int HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::run() {
  std::vector<std::thread> threads;
  for (int64_t i = 1; i < impl_->config.server.io_threads; ++i)
    threads.emplace_back([this] { impl_->io.run(); });
  impl_->io.run();
  for (auto& t : threads) t.join();
}

void HttpServer::stop() {
  impl_->stopping = true;
  asio::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
    impl_->signals.cancel(ec);
    impl_->io.stop();
  });
}

}  // namespace pagoda
