#include "tools/soak/load_client.h"

#include <boost/beast.hpp>
#include <nlohmann/json.hpp>

namespace pagoda::soak {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* outcome_name(Outcome::Kind k) {
  switch (k) {
    case Outcome::Kind::kCompleted:
      return "completed";
    case Outcome::Kind::kCancelled:
      return "cancelled";
    case Outcome::Kind::kRejected:
      return "rejected";
    case Outcome::Kind::kBadRequest:
      return "bad_request";
    case Outcome::Kind::kHungUp:
      return "hung_up";
    case Outcome::Kind::kProbed:
      return "probed";
    case Outcome::Kind::kFailed:
      return "failed";
  }
  return "?";
}

namespace {

std::string raw_post(const std::string& version, const std::string& body, const std::string& extra = "") {
  return "POST /v1/completions HTTP/" + version + "\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
         "Connection: close\r\n" + extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string chunked_post(const std::string& body, const std::string& trailer) {
  char size[16];
  std::snprintf(size, sizeof size, "%zx", body.size());
  return "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n" +
         std::string(size) + "\r\n" + body + "\r\n0\r\n" + trailer + "\r\n";
}

Shot make_probe(std::mt19937_64& rng, const json& body) {
  Shot s;
  s.kind = Shot::Kind::kProbe;
  s.probe = static_cast<Shot::Probe>(rng() % 5);
  json b = body;
  b.erase("messages");
  b.erase("stream_options");
  b["prompt"] = "Once upon a time";
  switch (s.probe) {
    case Shot::Probe::kExtraByteThenLeave:
      b["stream"] = false;
      s.body = raw_post("1.1", b.dump()) + "X";
      break;
    case Shot::Probe::kHeadPipelined:
      s.body =
          "HEAD /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
          "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
      break;
    case Shot::Probe::kHttp10Stream:
      b["stream"] = true;
      s.body = raw_post("1.0", b.dump());
      break;
    case Shot::Probe::kChunkedTrailer:
      b["stream"] = false;
      s.body = chunked_post(b.dump(), "X-Checksum: 1234\r\n");
      break;
    case Shot::Probe::kOversizedTrailer:
      b["stream"] = false;
      s.body = chunked_post(b.dump(), "X-Big: " + std::string(20000, 'z') + "\r\n");
      break;
  }
  s.stream = b["stream"].get<bool>();
  return s;
}

}  // namespace

Shot make_shot(std::mt19937_64& rng, double disconnect_p, double malformed_p, int lo, int hi, double probe_p) {
  static const char* prompts[] = {"Once upon a time",
                                  "The little dog",
                                  "Lily and Tom went to the park",
                                  "One day, a big bird",
                                  "There was a girl who loved to sing",
                                  "Sam had a red ball"};
  std::uniform_real_distribution<double> u(0, 1);
  std::uniform_int_distribution<int> tokens(lo, hi);
  Shot s;
  const double r = u(rng);
  const bool chat = u(rng) < 0.25;
  s.stream = u(rng) < 0.8;
  json body = {{"max_tokens", tokens(rng)}, {"temperature", 0.8}, {"ignore_eos", true}, {"stream", s.stream}};
  if (s.stream) body["stream_options"] = {{"include_usage", true}};
  if (chat) {
    s.target = "/v1/chat/completions";
    body["messages"] = json::array({{{"role", "user"}, {"content", prompts[rng() % 6]}}});
  } else {
    body["prompt"] = prompts[rng() % 6];
  }
  if (r < malformed_p) {
    if (u(rng) < 0.5) {
      s.kind = Shot::Kind::kMalformedJson;
      const int which = static_cast<int>(rng() % 4);
      if (which == 0) s.body = body.dump().substr(0, 10);  // truncated JSON
      else if (which == 1) s.body = json{{"prompt", "hi"}, {"max_tokens", -3}}.dump();
      else if (which == 2) s.body = json{{"prompt", "hi"}, {"temperature", "hot"}}.dump();  // a wrong type
      else s.body = "\xff\xfe not json";
      s.target = "/v1/completions";
    } else {
      s.kind = Shot::Kind::kMalformedHttp;
      s.body = rng() % 2 ? "GARBAGE / HTTP/1.1\r\nHost\r\n\r\n"
                         : "POST /v1/completions HTTP/1.1\r\nContent-Length: zz\r\n\r\n";
    }
    return s;
  }
  if (r >= malformed_p + disconnect_p && r < malformed_p + disconnect_p + probe_p) return make_probe(rng, body);
  if (r < malformed_p + disconnect_p) {
    s.kind = Shot::Kind::kDisconnect;
    s.stream = true;
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    s.disconnect_after = 1 + static_cast<int>(rng() % 8);
  }
  s.body = body.dump();
  return s;
}

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int count_events(const std::string& body) {
  int n = 0;
  for (size_t at = body.find("data: "); at != std::string::npos; at = body.find("data: ", at + 6)) ++n;
  return n;
}

// Classifies a finished 200 body (SSE or JSON).
void classify_ok(const std::string& body, bool stream, Outcome* out) {
  if (stream) {
    const bool done = body.find("data: [DONE]") != std::string::npos;
    const bool error = body.find("data: {\"error\"") != std::string::npos;
    const bool finished = body.find("\"finish_reason\":\"stop\"") != std::string::npos ||
                          body.find("\"finish_reason\":\"length\"") != std::string::npos;
    const size_t usage = body.rfind("\"usage\":{");
    if (usage != std::string::npos) {
      const size_t ct = body.find("\"completion_tokens\":", usage);
      if (ct != std::string::npos) out->completion_tokens = std::atoll(body.c_str() + ct + 20);
    }
    if (error && done) out->kind = Outcome::Kind::kCancelled;
    else if (finished && done) out->kind = Outcome::Kind::kCompleted;
    else {
      out->kind = Outcome::Kind::kFailed;
      out->detail = done ? "stream without finish_reason" : "stream ended without [DONE]";
    }
    return;
  }
  const json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("choices") && j["choices"].size() == 1 &&
      j["choices"][0]["finish_reason"].is_string()) {
    out->kind = Outcome::Kind::kCompleted;
    out->completion_tokens = j["usage"]["completion_tokens"].get<int64_t>();
  } else {
    out->kind = Outcome::Kind::kFailed;
    out->detail = "bad JSON response";
  }
}

int status_of(const std::string& response) {
  return response.size() >= 12 && response.compare(0, 5, "HTTP/") == 0 ? std::atoi(response.c_str() + 9) : 0;
}

// Sends a probe's raw bytes and reads to the close (or, for the client that
// leaves, only briefly), then checks the answer is what the protocol says.
asio::awaitable<Outcome> run_probe(beast::tcp_stream& stream, const Shot& shot, Clock::time_point t0) {
  Outcome out;
  beast::error_code ec;
  co_await asio::async_write(stream, asio::buffer(shot.body), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.detail = "write: " + ec.message();
    co_return out;
  }
  if (shot.probe == Shot::Probe::kExtraByteThenLeave) {
    // A refusal comes at once and a short request may finish quickly: read
    // for a moment, then leave (the server must cancel the request).
    stream.expires_after(std::chrono::milliseconds(50));
  }
  std::string got;
  char buf[8192];
  while (!ec) {
    const size_t n = co_await stream.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    got.append(buf, n);
  }
  out.latency_s = since(t0);
  out.status = status_of(got);
  const size_t header_end = got.find("\r\n\r\n");
  out.retry_after =
      header_end != std::string::npos && got.substr(0, header_end).find("Retry-After:") != std::string::npos;
  if (out.status == 429 || out.status == 503) {
    out.kind = out.retry_after ? Outcome::Kind::kRejected : Outcome::Kind::kFailed;
    if (!out.retry_after) out.detail = "429/503 without Retry-After";
    co_return out;
  }
  const std::string body = header_end == std::string::npos ? "" : got.substr(header_end + 4);
  switch (shot.probe) {
    case Shot::Probe::kExtraByteThenLeave:
      if (out.status == 200) classify_ok(body, false, &out);
      else if (got.empty()) out.kind = Outcome::Kind::kHungUp;
      else out.detail = "unexpected status " + std::to_string(out.status);
      break;
    case Shot::Probe::kHeadPipelined:
      // The GET's status line starts right where the HEAD's header ends.
      if (out.status == 200 && body.rfind("HTTP/1.1 200", 0) == 0 && body.find("\"status\"") != std::string::npos)
        out.kind = Outcome::Kind::kProbed;
      else out.detail = "HEAD answer ran into the next one: " + got.substr(0, 300);
      break;
    case Shot::Probe::kHttp10Stream:
      if (out.status == 200 && got.find("Transfer-Encoding") == std::string::npos && body.rfind("data: ", 0) == 0)
        classify_ok(body, true, &out);
      else out.detail = "HTTP/1.0 stream: " + got.substr(0, 300);
      break;
    case Shot::Probe::kChunkedTrailer:
      if (out.status == 200) classify_ok(body, false, &out);
      else out.detail = "chunked with trailer: status " + std::to_string(out.status);
      break;
    case Shot::Probe::kOversizedTrailer:
      if (out.status == 431) out.kind = Outcome::Kind::kBadRequest;
      else out.detail = "oversized trailer: status " + std::to_string(out.status);
      break;
  }
  co_return out;
}

}  // namespace

asio::awaitable<Outcome> run_shot(int port, const Shot& shot, std::chrono::milliseconds timeout) {
  Outcome out;
  const auto t0 = Clock::now();
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  beast::error_code ec;
  stream.expires_after(timeout);
  co_await stream.async_connect(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
      asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.detail = "connect: " + ec.message();
    co_return out;
  }
  if (shot.kind == Shot::Kind::kProbe) co_return co_await run_probe(stream, shot, t0);
  if (shot.kind == Shot::Kind::kMalformedHttp) {
    co_await asio::async_write(stream, asio::buffer(shot.body), asio::redirect_error(asio::use_awaitable, ec));
  } else {
    http::request<http::string_body> req{http::verb::post, shot.target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.keep_alive(false);
    req.body() = shot.body;
    req.prepare_payload();
    co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) {
    out.detail = "write: " + ec.message();
    co_return out;
  }
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  co_await http::async_read_header(stream, buf, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.detail = "read header: " + ec.message();
    co_return out;
  }
  out.status = static_cast<int>(parser.get().result_int());
  out.retry_after = parser.get().count(http::field::retry_after) > 0;
  if (out.status == 429 || out.status == 503) {
    out.latency_s = since(t0);
    out.kind = out.retry_after ? Outcome::Kind::kRejected : Outcome::Kind::kFailed;
    if (!out.retry_after) out.detail = "429/503 without Retry-After";
    co_return out;
  }
  const bool malformed = shot.kind == Shot::Kind::kMalformedJson || shot.kind == Shot::Kind::kMalformedHttp;
  if (out.status != 200) {
    out.latency_s = since(t0);
    out.kind = malformed && out.status >= 400 && out.status < 500 ? Outcome::Kind::kBadRequest : Outcome::Kind::kFailed;
    if (out.kind == Outcome::Kind::kFailed) out.detail = "unexpected status " + std::to_string(out.status);
    co_return out;
  }
  if (malformed) {
    out.detail = "malformed request accepted";
    co_return out;
  }
  while (!parser.is_done()) {
    co_await http::async_read_some(stream, buf, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    if (shot.kind == Shot::Kind::kDisconnect && count_events(parser.get().body()) >= shot.disconnect_after) {
      beast::error_code ignored;
      stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      stream.socket().close(ignored);
      out.kind = Outcome::Kind::kHungUp;
      out.latency_s = since(t0);
      co_return out;
    }
  }
  out.latency_s = since(t0);
  if (ec && !(ec == http::error::end_of_stream && parser.is_done())) {
    // A short generation may finish before our hang-up point: that is a completion.
    classify_ok(parser.get().body(), shot.stream, &out);
    if (out.kind != Outcome::Kind::kCancelled) {
      out.kind = Outcome::Kind::kFailed;
      out.detail = "read body: " + ec.message();
    }
    co_return out;
  }
  classify_ok(parser.get().body(), shot.stream, &out);
  co_return out;
}

}  // namespace pagoda::soak
