#include "server/http_server.h"

#include <fcntl.h>
#include <sys/resource.h>

#include <csignal>
#include <exception>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "server/client_limiter.h"
#include "server/connection_registry.h"
#include "server/signal_pipe.h"

namespace pagoda {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

// Descriptors kept free for everything that is not a connection: the
// listener, epoll and eventfds, logs, the model file, and the connections
// that are refused with a 503 (each held for up to a second).
constexpr int64_t kReservedDescriptors = 64;

std::chrono::milliseconds ms(double seconds) { return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)); }

// Raises the soft descriptor limit to the hard one; returns the soft limit
// now in force (-1: unlimited).
int64_t raise_descriptor_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  return rl.rlim_cur == RLIM_INFINITY ? -1 : static_cast<int64_t>(rl.rlim_cur);
}

// A co_spawn completion handler that logs what ended a coroutine by an
// exception (never rethrown: that would be std::terminate).
auto log_exception(const char* what) {
  return [what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      spdlog::error("{} ended by an exception: {}", what, x.what());
    } catch (...) {
      spdlog::error("{} ended by an unknown exception", what);
    }
  };
}

// What reading one request off a connection came to.
struct ReadOutcome {
  enum Kind { kRequest, kRefused, kClosed } kind = kClosed;
  HttpRequest request;
  HttpReply refusal;
  unsigned version = 11;
};

}  // namespace

struct HttpServer::Impl {
  Impl(const ServerConfig& c, HttpHandler* h)
      : config(c), handler(h), max_connections(c.server.max_connections),
        per_client(c.server.max_connections_per_client), io(static_cast<int>(c.server.io_threads)), acceptor(io),
        signal_reader(io) {}

  ServerConfig config;
  HttpHandler* handler;
  // Declared before io: destroying io destroys the coroutines of connections
  // still open at stop(), and their scope guards give back to these.
  std::atomic<bool> accepting{true};
  std::atomic<bool> draining{false};
  std::atomic<bool> signalled{false};
  std::atomic<int64_t> connections{0};
  std::atomic<int64_t> busy{0};
  int64_t max_connections;
  ClientLimiter per_client;  // server.max_connections_per_client
  ConnectionRegistry registry;
  std::function<void(int)> on_signal;
  asio::io_context io;
  tcp::acceptor acceptor;
  SignalPipe signal_pipe;
  asio::posix::stream_descriptor signal_reader;  // a duplicate of signal_pipe's read end
  unsigned char signal_bytes[16];

  // Closes after a refusal: stop sending, then read and drop what the client
  // still sends (for up to a second), so the close does not reset the
  // connection before the client has read the answer.
  static asio::awaitable<void> linger_close(beast::tcp_stream& stream) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    char drain[4096];
    stream.expires_after(std::chrono::seconds(1));
    for (size_t total = 0; !ec && total < 64 * 1024;)
      total += co_await stream.async_read_some(asio::buffer(drain), asio::redirect_error(asio::use_awaitable, ec));
    stream.socket().close(ec);
  }

  // Every refusal names the replica (X-Pagoda-Replica), as the API's answers do.
  asio::awaitable<void> refuse(beast::tcp_stream& stream, HttpReply reply, unsigned version = 11) {
    reply.replica = config.server.replica_id;
    co_await write_reply(stream, ReplyFraming{version, false, false, ms(config.server.header_timeout_s)}, reply);
    co_await linger_close(stream);
  }

  // Reads one request: bytes go through a RequestReader, which applies every
  // limit; the timeouts are idle_timeout_s for the first byte, then
  // header_timeout_s for the header, then header_timeout_s + idle_timeout_s
  // from the header's end for the body.
  // `first`: the connection's first request (read even during a drain, so
  // /health can say "draining"); later ones are not waited for then.
  asio::awaitable<ReadOutcome> read_request(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                            RegisteredConnection& conn, bool first) {
    ReadOutcome out;
    RequestReader reader(config);
    bool started = false, body_phase = false, continued = false;
    for (;;) {
      if (buffer.size() > 0) {
        if (!started) stream.expires_after(ms(config.server.header_timeout_s));
        started = true;
        const auto data = buffer.data();
        buffer.consume(reader.feed(std::string_view(static_cast<const char*>(data.data()), data.size())));
      }
      RequestReader::State state = reader.state();
      if (state == RequestReader::State::kReadingBody && !body_phase) {
        body_phase = true;
        stream.expires_after(ms(config.server.header_timeout_s + config.server.idle_timeout_s));
        if (reader.expects_continue() && !continued) {
          continued = true;
          // The client waits for our word before sending its body: refuse
          // now (route, method, key) or let it go on.
          if (auto refusal = handler->check_header(reader.request())) {
            out.kind = ReadOutcome::kRefused;
            out.refusal = std::move(*refusal);
            out.version = reader.version();
            co_return out;
          }
          static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
          beast::error_code ec;
          co_await asio::async_write(stream, asio::buffer(kContinue, sizeof kContinue - 1),
                                     asio::redirect_error(asio::use_awaitable, ec));
          if (ec) co_return out;  // closed
        }
      }
      if (state == RequestReader::State::kReadingHeader || state == RequestReader::State::kReadingBody)
        state = reader.check_pending(buffer.size());
      if (state == RequestReader::State::kDone) {
        out.kind = ReadOutcome::kRequest;
        out.request = reader.release();
        co_return out;
      }
      if (state == RequestReader::State::kRefused) {
        out.kind = ReadOutcome::kRefused;
        out.refusal = error_reply(reader.refusal());
        out.version = reader.version();
        co_return out;
      }
      if (!started) {
        stream.expires_after(ms(config.server.idle_timeout_s));
        // Between requests: a drain ends the connection here (and
        // close_idle cancels this read); a connection's first request is
        // still read, so a client that connected just before the drain
        // gets its answer.
        if (draining && !first) co_return out;
        conn.set_idle(!first);
      }
      beast::error_code ec;
      // Read into the room the buffer has (4 KiB to start, grown only as a
      // request needs it), as Beast's own reads do: a connection's buffer
      // stays small however many connections are open.
      const size_t n = co_await stream.async_read_some(buffer.prepare(beast::read_size(buffer, 64 * 1024)),
                                                       asio::redirect_error(asio::use_awaitable, ec));
      conn.set_idle(false);
      buffer.commit(n);
      if (ec) co_return out;  // timeout, or the client closed / reset
    }
  }

  asio::awaitable<void> serve_connection(beast::tcp_stream& stream) {
    RegisteredConnection conn(registry, stream.get_executor(), &stream);
    beast::flat_buffer buffer;
    buffer.reserve(4096);
    for (bool first = true;; first = false) {
      ReadOutcome in = co_await read_request(stream, buffer, conn, first);
      if (in.kind == ReadOutcome::kClosed) break;
      if (in.kind == ReadOutcome::kRefused) {
        co_await refuse(stream, in.refusal, in.version);
        co_return;
      }
      stream.expires_never();
      HttpRequest& req = in.request;
      if (draining) req.keep_alive(false);
      bool keep = false;
      {
        struct Busy {
          std::atomic<int64_t>& n;
          explicit Busy(std::atomic<int64_t>& c) : n(c) { n++; }
          ~Busy() { n--; }
        } busy_scope(busy);
        try {
          keep = co_await handler->handle(req, stream);
        } catch (const std::exception& e) {
          spdlog::error("handler failed on {} {}: {}", std::string(req.method_string()), std::string(req.target()),
                        e.what());
        } catch (...) {
          spdlog::error("handler failed on {} {}: unknown exception", std::string(req.method_string()),
                        std::string(req.target()));
        }
      }
      if (!keep || !req.keep_alive() || draining) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  // One connection, from accept to close. Counted for max_connections and
  // per client; the counts are given back however it ends.
  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    // Streamed tokens are small writes: without TCP_NODELAY, Nagle's
    // algorithm holds each one until the previous is acknowledged, and a
    // client's delayed ACK makes that up to 40 ms per token.
    beast::error_code nodelay_ec;
    stream.socket().set_option(tcp::no_delay(true), nodelay_ec);
    struct Counted {
      std::atomic<int64_t>& n;
      ~Counted() { n--; }
    } counted{connections};
    if (connections.fetch_add(1) >= max_connections) {
      co_await refuse(stream, error_reply(api_error(503, "too many connections (server.max_connections)",
                                                    "too_many_connections", "", "server_error")));
      co_return;
    }
    beast::error_code addr_ec;
    const std::string client = stream.socket().remote_endpoint(addr_ec).address().to_string();
    if (!per_client.try_acquire(client)) {
      ApiError e = api_error(429, "too many connections from this address (server.max_connections_per_client)",
                             "too_many_connections", "", "rate_limit_error");
      e.retry_after_s = 1;
      co_await refuse(stream, error_reply(e));
      co_return;
    }
    struct Slot {
      ClientLimiter& limiter;
      const std::string& client;
      ~Slot() { limiter.release(client); }
    } slot{per_client, client};
    co_await serve_connection(stream);
  }

  asio::awaitable<void> accept_loop() {
    asio::steady_timer backoff(io);
    std::chrono::steady_clock::time_point last_warning{};
    while (accepting) {
      beast::error_code ec;
      tcp::socket socket =
          co_await acceptor.async_accept(asio::make_strand(io), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (!accepting || ec == asio::error::operation_aborted) break;
        // Out of descriptors (EMFILE/ENFILE) or another accept error: the
        // listener stays readable, so retrying at once would spin. Back off
        // as nginx does and say so, at most every 10 s.
        const bool no_fds =
            ec == asio::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_warning > std::chrono::seconds(10)) {
          last_warning = now;
          spdlog::warn("accept failed: {}{}", ec.message(),
                       no_fds ? " (out of file descriptors: pausing accepts 100 ms at a time; raise `ulimit -n` or "
                                "lower server.max_connections)"
                              : "");
        }
        backoff.expires_after(std::chrono::milliseconds(no_fds ? 100 : 10));
        co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      auto executor = socket.get_executor();
      // The last line of defence: nothing a connection does may take the
      // process down.
      asio::co_spawn(executor, session(std::move(socket)), log_exception("connection"));
    }
  }

  void wait_for_signal() {
    signal_reader.async_read_some(asio::buffer(signal_bytes), [this](const beast::error_code& e, size_t n) {
      if (e) return;
      for (size_t i = 0; i < n; ++i) on_signal_received(signal_bytes[i]);
      wait_for_signal();
    });
  }

  void on_signal_received(int sig) {
    if (sig == SIGHUP) {
      spdlog::warn("signal {} (SIGHUP) received: ignored, pagoda keeps serving (SIGTERM drains and stops it)", sig);
    } else if (signalled.exchange(true)) {
      spdlog::info("signal {} received again: already shutting down", sig);
    } else {
      spdlog::info("signal {} received: shutting down gracefully", sig);
      if (on_signal) on_signal(sig);
      else {
        draining = true;
        accepting = false;
        io.stop();
      }
    }
  }
};

HttpServer::HttpServer(const ServerConfig& config, HttpHandler* handler)
    : impl_(std::make_unique<Impl>(config, handler)) {}
HttpServer::~HttpServer() {
  // Once shutting down, the signals stay ignored (one sigaction each, no gap
  // with the default action): a SIGTERM repeated during the rest of the exit
  // (an impatient supervisor) must not turn a clean exit into death by signal.
  impl_->signal_pipe.release(impl_->signalled.load());
}

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

namespace {

// Opens, binds and starts listening; the error names the config keys.
Status open_listener(tcp::acceptor& acceptor, const tcp::endpoint& endpoint, const std::string& host) {
  beast::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Status::unavailable("cannot listen on " + endpoint.address().to_string() + ":" +
                               std::to_string(endpoint.port()) + " (config keys 'server.host' = '" + host +
                               "', 'server.port'): " + ec.message());
  return Status::ok();
}

}  // namespace

Status check_listen_address(const std::string& host, int port) {
  auto endpoint = listen_endpoint(host, port);
  if (!endpoint) return endpoint.status();
  if (port == 0) return Status::ok();  // any free port will do
  asio::io_context io;
  tcp::acceptor probe(io);
  return open_listener(probe, *endpoint, host);  // closed again when `probe` goes
}

Status HttpServer::start() {
  const auto& s = impl_->config.server;
  const int64_t fd_limit = raise_descriptor_limit();
  if (fd_limit > 0 && impl_->max_connections > fd_limit - kReservedDescriptors) {
    impl_->max_connections = std::max<int64_t>(1, fd_limit - kReservedDescriptors);
    spdlog::warn(
        "server.max_connections lowered from {} to {}: the process may open {} file descriptors "
        "(RLIMIT_NOFILE; {} kept for the listener, logs and refusals)",
        s.max_connections, impl_->max_connections, fd_limit, kReservedDescriptors);
  }
  auto resolved = listen_endpoint(s.host, s.port);
  if (!resolved) return resolved.status();
  PAGODA_RETURN_IF_ERROR(open_listener(impl_->acceptor, *resolved, s.host));
  const std::string where = resolved->address().to_string() + ":" + std::to_string(resolved->port());
  if (where != s.host + ":" + std::to_string(s.port)) spdlog::info("server.host '{}' resolved to {}", s.host, where);
  PAGODA_RETURN_IF_ERROR(impl_->signal_pipe.open({SIGINT, SIGTERM, SIGHUP}));
  const int reader = ::fcntl(impl_->signal_pipe.read_fd(), F_DUPFD_CLOEXEC, 0);
  if (reader < 0) return Status::unavailable("cannot duplicate the signal pipe's descriptor");
  impl_->signal_reader.assign(reader);
  impl_->wait_for_signal();
  asio::co_spawn(impl_->io, impl_->accept_loop(), log_exception("the accept loop"));
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

void HttpServer::begin_drain() {
  impl_->draining = true;
  impl_->registry.close_idle();
}

void HttpServer::stop() {
  impl_->draining = true;
  impl_->accepting = false;
  asio::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
    impl_->signal_reader.cancel(ec);
    impl_->io.stop();
  });
}

int64_t HttpServer::active_connections() const { return impl_->connections.load(); }
int64_t HttpServer::busy_connections() const { return impl_->busy.load(); }
int64_t HttpServer::max_connections() const { return impl_->max_connections; }

}  // namespace pagoda
