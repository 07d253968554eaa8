#include "server/http_server.h"

#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "server/client_limiter.h"
#include "server/request_limits.h"

namespace pagoda {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

asio::awaitable<void> write_json(beast::tcp_stream& stream, unsigned version, bool keep_alive, http::status status,
                                 const std::string& body, int retry_after_s) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::server, "pagoda/" PAGODA_VERSION);
  res.set(http::field::content_type, "application/json");
  if (retry_after_s > 0) res.set(http::field::retry_after, std::to_string(retry_after_s));
  res.keep_alive(keep_alive);
  res.body() = body;
  res.prepare_payload();
  beast::error_code ec;
  co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
}

namespace {

std::string error_body(const std::string& message, const std::string& code) {
  return R"({"error":{"message":")" + message + R"(","type":"invalid_request_error","param":null,"code":")" + code +
         R"("}})";
}

}  // namespace

struct HttpServer::Impl {
  Impl(const ServerConfig& c, HttpHandler* h)
      : config(c),
        handler(h),
        io(static_cast<int>(c.server.io_threads)),
        acceptor(io),
        signals(io),
        per_client(c.server.max_connections_per_client) {}

  ServerConfig config;
  HttpHandler* handler;
  asio::io_context io;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  std::function<void(int)> on_signal;
  std::atomic<bool> accepting{true};
  std::atomic<int64_t> connections{0};
  ClientLimiter per_client;  // server.max_connections_per_client

  std::chrono::milliseconds ms(double seconds) const {
    return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  }

  // Closes after a refusal: stop sending, then read and drop what the client
  // still sends (for up to a second), so the close does not reset the
  // connection before the client has read the answer.
  asio::awaitable<void> linger_close(beast::tcp_stream& stream) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    char drain[4096];
    stream.expires_after(std::chrono::seconds(1));
    for (size_t total = 0; !ec && total < 64 * 1024;)
      total += co_await stream.async_read_some(asio::buffer(drain), asio::redirect_error(asio::use_awaitable, ec));
    stream.socket().close(ec);
  }

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    // Streamed tokens are small writes: without TCP_NODELAY, Nagle's
    // algorithm holds each one until the previous is acknowledged, and a
    // client's delayed ACK makes that up to 40 ms per token.
    beast::error_code nodelay_ec;
    stream.socket().set_option(tcp::no_delay(true), nodelay_ec);
    beast::flat_buffer buffer;
    if (connections.fetch_add(1) >= config.server.max_connections) {
      // Over the limit: answer and close.
      co_await write_json(stream, 11, false, http::status::service_unavailable,
                          error_body("too many connections (server.max_connections)", "too_many_connections"), 1);
      co_await linger_close(stream);
      connections--;
      co_return;
    }
    beast::error_code addr_ec;
    const std::string client = stream.socket().remote_endpoint(addr_ec).address().to_string();
    if (!per_client.try_acquire(client)) {
      // One address holds too many connections: answer and close.
      stream.expires_after(ms(config.server.header_timeout_s));
      co_await write_json(stream, 11, false, http::status::too_many_requests,
                          error_body("too many connections from this address (server.max_connections_per_client)",
                                     "too_many_connections"),
                          1);
      co_await linger_close(stream);
      connections--;
      co_return;
    }
    for (;;) {
      http::request_parser<http::string_body> parser;
      apply_request_limits(parser, config);
      beast::error_code ec;
      // The whole request (headers, then body) must arrive in time: a client
      // that trickles bytes is cut off.
      // Up to idle_timeout_s for the first byte of a request, then
      // header_timeout_s for the rest of the header. (Beast's
      // http::async_read_some only returns once the parser makes progress,
      // i.e. with the whole header, so a raw read waits for the first byte.)
      if (buffer.size() == 0) {
        stream.expires_after(ms(config.server.idle_timeout_s));
        const size_t n = co_await stream.async_read_some(buffer.prepare(4096),
                                                         asio::redirect_error(asio::use_awaitable, ec));
        buffer.commit(n);
      }
      if (!ec && !parser.is_header_done()) {
        stream.expires_after(ms(config.server.header_timeout_s));
        co_await http::async_read_header(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      }
      if (!ec && !parser.is_done()) {
        stream.expires_after(ms(config.server.header_timeout_s + config.server.idle_timeout_s));
        co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      }
      if (ec == http::error::body_limit) {
        co_await write_json(stream, 11, false, http::status::payload_too_large,
                            error_body("request body exceeds server.max_body_bytes (" +
                                           std::to_string(config.server.max_body_bytes) + " bytes)",
                                       "body_too_large"));
        break;
      }
      if (ec == http::error::header_limit) {
        co_await write_json(stream, 11, false, http::status::request_header_fields_too_large,
                            error_body("request headers are too large", "headers_too_large"));
        break;
      }
      if (ec && ec != beast::error::timeout && ec != http::error::end_of_stream && ec != asio::error::eof &&
          ec != asio::error::connection_reset && ec != asio::error::operation_aborted) {
        // A malformed request: say so, then close.
        co_await write_json(stream, 11, false, http::status::bad_request,
                            error_body("malformed HTTP request", "bad_request"));
        break;
      }
      if (ec) break;  // timeout or the client closed
      if (too_many_header_fields(parser, config)) {
        co_await write_json(stream, 11, false, http::status::request_header_fields_too_large,
                            error_body("too many header fields (server.max_header_fields)", "too_many_headers"));
        break;
      }
      stream.expires_never();
      HttpRequest req = parser.release();
      bool keep = false;
      try {
        keep = co_await handler->handle(req, stream);
      } catch (const std::exception& e) {
        spdlog::error("handler failed on {} {}: {}", std::string(req.method_string()), std::string(req.target()),
                      e.what());
        keep = false;
      }
      if (!keep || !req.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    per_client.release(client);
    connections--;
  }

  asio::awaitable<void> accept_loop() {
    while (accepting) {
      beast::error_code ec;
      tcp::socket socket =
          co_await acceptor.async_accept(asio::make_strand(io), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (!accepting || ec == asio::error::operation_aborted) break;
        continue;
      }
      auto executor = socket.get_executor();
      asio::co_spawn(executor, session(std::move(socket)), asio::detached);
    }
  }
};

HttpServer::HttpServer(const ServerConfig& config, HttpHandler* handler)
    : impl_(std::make_unique<Impl>(config, handler)) {}
HttpServer::~HttpServer() = default;

Result<tcp::endpoint> listen_endpoint(const std::string& host, int port) {
  const auto p = static_cast<unsigned short>(port);
  beast::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (!ec) return tcp::endpoint(address, p);
  asio::io_context io;
  tcp::resolver resolver(io);
  const auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || results.empty())
    return Status::invalid_argument("config key 'server.host': '" + host +
                                    "' is neither an IP address nor a host name that resolves (" +
                                    (ec ? ec.message() : std::string("no address")) + ")");
  for (const auto& r : results)
    if (r.endpoint().address().is_v4()) return r.endpoint();
  return results.begin()->endpoint();
}

Status HttpServer::start() {
  const auto& s = impl_->config.server;
  auto resolved = listen_endpoint(s.host, s.port);
  if (!resolved) return resolved.status();
  const tcp::endpoint endpoint = resolved.value();
  beast::error_code ec;
  auto& acc = impl_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  const std::string where = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  if (ec)
    return Status::unavailable("cannot listen on " + where + " (config keys 'server.host' = '" + s.host +
                               "', 'server.port'): " + ec.message());
  if (where != s.host + ":" + std::to_string(s.port)) spdlog::info("server.host '{}' resolved to {}", s.host, where);
  impl_->signals.add(SIGINT);
  impl_->signals.add(SIGTERM);
  impl_->signals.async_wait([this](const beast::error_code& e, int sig) {
    if (e) return;
    spdlog::info("signal {} received: shutting down gracefully", sig);
    if (impl_->on_signal) impl_->on_signal(sig);
    else stop();
  });
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  return Status::ok();
}

int HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::set_on_signal(std::function<void(int)> fn) { impl_->on_signal = std::move(fn); }

void HttpServer::run() {
  std::vector<std::thread> threads;
  for (int64_t i = 1; i < impl_->config.server.io_threads; ++i) threads.emplace_back([this] { impl_->io.run(); });
  impl_->io.run();
  for (auto& t : threads) t.join();
}

void HttpServer::stop_accepting() {
  impl_->accepting = false;
  asio::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
}

void HttpServer::stop() {
  stop_accepting();
  asio::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->signals.cancel(ec);
    impl_->io.stop();
  });
}

int64_t HttpServer::active_connections() const { return impl_->connections.load(); }

}  // namespace pagoda
