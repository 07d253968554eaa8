#include "bench/client.h"

#include <cstdint>
#include <functional>
#include <limits>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bench/sse_parser.h"

namespace pagoda::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

namespace {

constexpr size_t kMaxErrorBody = 400;

using Exchange = HttpClient::Exchange;

void set_failure(Exchange* x, const beast::error_code& ec, const char* during) {
  x->failure = ec == beast::error::timeout ? FailureKind::kTimeout : FailureKind::kConnection;
  x->error = std::string(during) + ": " + ec.message();
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The output text of one streamed choice: completions put it in "text", chat
// in "delta.content". Empty when the event carries none.
std::string_view choice_text(const json& choice) {
  if (auto it = choice.find("text"); it != choice.end() && it->is_string()) return it->get_ref<const std::string&>();
  if (auto d = choice.find("delta"); d != choice.end() && d->is_object())
    if (auto c = d->find("content"); c != d->end() && c->is_string()) return c->get_ref<const std::string&>();
  return {};
}

}  // namespace

Result<Endpoint> parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind("https://", 0) == 0) return Status::invalid_argument("--url: https is not supported, use http://");
  if (url.rfind(scheme, 0) != 0) return Status::invalid_argument("--url must start with http://, got '" + url + "'");
  std::string rest = url.substr(scheme.size());
  Endpoint ep;
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    ep.prefix = rest.substr(slash);
    rest.resize(slash);
    while (!ep.prefix.empty() && ep.prefix.back() == '/') ep.prefix.pop_back();
  }
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']') == std::string::npos) {
    ep.port = rest.substr(colon + 1);
    rest.resize(colon);
    if (ep.port.empty() || ep.port.find_first_not_of("0123456789") != std::string::npos)
      return Status::invalid_argument("--url: bad port in '" + url + "'");
  }
  ep.host = rest;
  if (ep.host.empty()) return Status::invalid_argument("--url: no host in '" + url + "'");
  return ep;
}

HttpClient::HttpClient(asio::any_io_executor ex, Endpoint endpoint, std::string api_key)
    : ex_(std::move(ex)), endpoint_(std::move(endpoint)), api_key_(std::move(api_key)) {}

asio::awaitable<Status> HttpClient::resolve() {
  tcp::resolver resolver(ex_);
  beast::error_code ec;
  resolved_ =
      co_await resolver.async_resolve(endpoint_.host, endpoint_.port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec)
    co_return Status::unavailable("cannot resolve " + endpoint_.host + ":" + endpoint_.port + ": " + ec.message());
  co_return Status::ok();
}

asio::awaitable<std::unique_ptr<HttpClient::Stream>> HttpClient::take_connection(Clock::time_point deadline, bool fresh,
                                                                                 beast::error_code& ec) {
  if (!fresh && !idle_.empty()) {
    auto s = std::move(idle_.back());
    idle_.pop_back();
    co_return s;
  }
  auto s = std::make_unique<Stream>(ex_);
  s->expires_at(deadline);
  co_await s->async_connect(resolved_, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) {
    ++connections_opened_;
    beast::error_code ignored;
    s->socket().set_option(tcp::no_delay(true), ignored);
  }
  co_return s;
}

using HeaderFn = HttpClient::HeaderFn;
using BodyFn = HttpClient::BodyFn;

// One request/response; body bytes go to `on_body` as they arrive.
static asio::awaitable<Exchange> exchange_on(beast::tcp_stream& s, http::request<http::string_body>& req,
                                             Clock::time_point deadline, const HeaderFn& on_header,
                                             const BodyFn& on_body, bool* header_seen, bool* keep_alive) {
  Exchange x;
  beast::error_code ec;
  s.expires_at(deadline);
  co_await http::async_write(s, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    set_failure(&x, ec, "sending the request");
    co_return x;
  }
  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> p;
  // Not boost::none: Beast 1.74 compares `len > body_limit_` as optionals,
  // and any length exceeds an empty optional.
  p.body_limit(std::numeric_limits<std::uint64_t>::max());
  co_await http::async_read_header(s, buf, p, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    set_failure(&x, ec, "reading the response header");
    co_return x;
  }
  *header_seen = true;
  x.status = static_cast<int>(p.get().result_int());
  on_header(x.status);
  char tmp[16384];
  while (!p.is_done()) {
    p.get().body().data = tmp;
    p.get().body().size = sizeof tmp;
    co_await http::async_read_some(s, buf, p, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      set_failure(&x, ec, "reading the response body");
      co_return x;
    }
    const size_t n = sizeof tmp - p.get().body().size;
    if (n > 0) on_body(std::string_view(tmp, n), Clock::now());
  }
  *keep_alive = p.get().keep_alive();
  co_return x;
}

static http::request<http::string_body> make_request(http::verb verb, const Endpoint& ep, const std::string& api_key,
                                                     const std::string& path, std::string body,
                                                     const HttpClient::Headers& headers) {
  http::request<http::string_body> req{verb, ep.prefix + path, 11};
  req.set(http::field::host, ep.host + ":" + ep.port);
  req.set(http::field::user_agent, "pagoda-bench/" PAGODA_VERSION);
  if (!api_key.empty()) req.set(http::field::authorization, "Bearer " + api_key);
  if (verb == http::verb::post) {
    req.set(http::field::content_type, "application/json");
    req.set(http::field::accept, "text/event-stream, application/json");
  }
  for (const auto& [name, value] : headers) req.set(name, value);
  req.keep_alive(true);
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

asio::awaitable<HttpClient::Exchange> HttpClient::exchange(http::verb verb, const std::string& path,
                                                           const std::string& body, const Headers& headers,
                                                           Clock::time_point deadline, const HeaderFn& on_header,
                                                           const BodyFn& on_body) {
  Exchange result;
  for (int attempt = 0;; ++attempt) {
    const bool reusing = attempt == 0 && !idle_.empty();
    beast::error_code ec;
    auto conn = co_await take_connection(deadline, attempt > 0, ec);
    if (ec) {
      set_failure(&result, ec, "connecting");
      co_return result;
    }
    auto req = make_request(verb, endpoint_, api_key_, path, body, headers);
    bool header_seen = false, keep_alive = false;
    result = co_await exchange_on(*conn, req, deadline, on_header, on_body, &header_seen, &keep_alive);
    // A reused idle connection the server already closed fails before any
    // header: retry once on a fresh one.
    if (result.failure == FailureKind::kConnection && reusing && !header_seen) continue;
    if (result.failure == FailureKind::kNone && keep_alive) {
      conn->expires_never();
      idle_.push_back(std::move(conn));
    }
    co_return result;
  }
}

asio::awaitable<HttpReply> HttpClient::whole(http::verb verb, std::string path, std::string body,
                                             std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  HttpReply reply;
  Exchange x;
  auto on_header = [&](int) { reply.body.clear(); };
  auto on_body = [&](std::string_view b, Clock::time_point) { reply.body.append(b); };
  x = co_await exchange(verb, path, body, {}, deadline, on_header, on_body);
  reply.status = x.status;
  reply.failure = x.failure;
  reply.error = x.error;
  co_return reply;
}

asio::awaitable<HttpReply> HttpClient::get(std::string path, std::chrono::milliseconds timeout) {
  return whole(http::verb::get, std::move(path), "", timeout);
}

asio::awaitable<HttpReply> HttpClient::post(std::string path, std::string body, std::chrono::milliseconds timeout) {
  return whole(http::verb::post, std::move(path), std::move(body), timeout);
}

asio::awaitable<RequestRecord> HttpClient::stream(std::string path, std::string body, Clock::time_point origin,
                                                  std::chrono::milliseconds timeout, Headers headers) {
  RequestRecord r;
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + timeout;
  r.start_s = seconds(start - origin);
  int status = 0;
  std::string error_body;
  SseParser sse;
  bool saw_done = false, saw_usage = false, stream_error = false, bad_json = false;
  Clock::time_point last_output{};
  Clock::time_point first_choice{};
  auto on_header = [&](int st) {
    status = st;
    // A retry starts over.
    error_body.clear();
    sse = SseParser();
    r.itl_s.clear();
    r.output_events = 0;
  };
  auto on_body = [&](std::string_view bytes, Clock::time_point now) {
    if (status != 200) {
      if (error_body.size() < kMaxErrorBody) error_body.append(bytes.substr(0, kMaxErrorBody - error_body.size()));
      return;
    }
    for (const std::string& payload : sse.feed(bytes)) {
      if (payload == "[DONE]") {
        saw_done = true;
        continue;
      }
      json j = json::parse(payload, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        bad_json = true;
        continue;
      }
      if (j.contains("error")) {
        stream_error = true;
        const json& e = j["error"];
        r.error = e.is_object() && e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>()
                                                                                     : e.dump();
        continue;
      }
      if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
        saw_usage = true;
        r.prompt_tokens = u->value("prompt_tokens", int64_t{0});
        r.output_tokens = u->value("completion_tokens", int64_t{0});
        if (auto d = u->find("prompt_tokens_details"); d != u->end() && d->is_object())
          r.cached_tokens = d->value("cached_tokens", int64_t{0});
      }
      auto c = j.find("choices");
      if (c == j.end() || !c->is_array() || c->empty()) continue;
      if (first_choice == Clock::time_point{}) first_choice = now;
      // The text and finish_reason recorded are choice 0's (with "n" > 1 the
      // choices' chunks interleave).
      const json& choice = (*c)[0];
      const auto index = choice.find("index");
      const bool first = index == choice.end() || !index->is_number_integer() || index->get<int64_t>() == 0;
      if (auto f = choice.find("finish_reason"); first && f != choice.end() && f->is_string())
        r.finish_reason = f->get<std::string>();
      const std::string_view text = choice_text(choice);
      if (text.empty()) continue;
      if (first) r.text += text;
      if (r.output_events == 0) r.ttft_s = seconds(now - start);
      else r.itl_s.push_back(seconds(now - last_output));
      last_output = now;
      ++r.output_events;
    }
  };
  Exchange x;
  x = co_await exchange(http::verb::post, path, body, headers, deadline, on_header, on_body);
  r.e2e_s = seconds(Clock::now() - start);
  if (x.failure != FailureKind::kNone) {
    r.failure = x.failure;
    r.error = x.error;
  } else if (status != 200) {
    r.failure = FailureKind::kHttpStatus;
    r.http_status = status;
    r.error = error_body;
  } else if (stream_error) {
    r.failure = FailureKind::kStreamError;
  } else if (!saw_done || bad_json) {
    r.failure = FailureKind::kProtocol;
    r.error = bad_json ? "an SSE event was not JSON" : "the stream ended without [DONE]";
  }
  if (!saw_usage) r.output_tokens = r.output_events;
  if (r.output_events == 0 && r.ok())
    r.ttft_s = first_choice == Clock::time_point{} ? r.e2e_s : seconds(first_choice - start);
  co_return r;
}

}  // namespace pagoda::bench
