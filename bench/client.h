// HTTP/1.1 client of an OpenAI-compatible server for the load generator:
// plain GETs (/v1/models, /metrics) and streaming (SSE) completion POSTs that
// time every output-carrying event as its bytes arrive. Keeps idle keep-alive
// connections for reuse and retries once on a fresh connection when a reused
// one turns out to be closed before any response byte.
// Runs on the caller's executor; owns its connections. Not thread-safe: use it
// from one thread (the io_context's single runner).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include "bench/latency_stats.h"
#include "common/status.h"

namespace pagoda::bench {

using Clock = std::chrono::steady_clock;

// http://HOST[:PORT][/PREFIX]; https is not supported.
struct Endpoint {
  std::string host;
  std::string port = "80";
  std::string prefix;  // prepended to every request path, without a trailing '/'
};
Result<Endpoint> parse_url(const std::string& url);

struct HttpReply {
  int status = 0;  // 0 when no response arrived
  std::string body;
  FailureKind failure = FailureKind::kNone;
  std::string error;
};

class HttpClient {
 public:
  HttpClient(boost::asio::any_io_executor ex, Endpoint endpoint, std::string api_key);

  // Resolves the host once; call before any request.
  boost::asio::awaitable<Status> resolve();

  // GET `path`; the whole body.
  boost::asio::awaitable<HttpReply> get(std::string path, std::chrono::milliseconds timeout);
  // POST `body` as JSON to `path`; the whole body (no streaming).
  boost::asio::awaitable<HttpReply> post(std::string path, std::string body, std::chrono::milliseconds timeout);

  // POST a streaming completion and time it. `origin` is the start of the run
  // (RequestRecord::start_s is measured from it); `timeout` bounds the whole
  // request. Never throws; failures are recorded in the returned record.
  // `headers` are added to the request (e.g. a session id for a balancer).
  using Headers = std::vector<std::pair<std::string, std::string>>;
  boost::asio::awaitable<RequestRecord> stream(std::string path, std::string body, Clock::time_point origin,
                                               std::chrono::milliseconds timeout, Headers headers = {});

  int64_t connections_opened() const { return connections_opened_; }

  // One request/response exchange (internal, public for the helpers in client.cpp).
  struct Exchange {
    int status = 0;
    FailureKind failure = FailureKind::kNone;
    std::string error;
  };
  using HeaderFn = std::function<void(int)>;
  using BodyFn = std::function<void(std::string_view, Clock::time_point)>;

 private:
  // Runs one request; body bytes go to `on_body` as they arrive. Retries once
  // on a fresh connection when a reused one fails before the response header.
  boost::asio::awaitable<Exchange> exchange(boost::beast::http::verb verb, const std::string& path,
                                            const std::string& body, const Headers& headers, Clock::time_point deadline,
                                            const HeaderFn& on_header, const BodyFn& on_body);
  using Stream = boost::beast::tcp_stream;
  boost::asio::awaitable<std::unique_ptr<Stream>> take_connection(Clock::time_point deadline, bool fresh,
                                                                  boost::beast::error_code& ec);
  boost::asio::awaitable<HttpReply> whole(boost::beast::http::verb verb, std::string path, std::string body,
                                          std::chrono::milliseconds timeout);

  boost::asio::any_io_executor ex_;
  Endpoint endpoint_;
  std::string api_key_;
  boost::asio::ip::tcp::resolver::results_type resolved_;
  std::vector<std::unique_ptr<Stream>> idle_;
  int64_t connections_opened_ = 0;
};

}  // namespace pagoda::bench
