// Hostile clients at the protocol level, against the real server: each case
// is one way a client could crash, stall or outlive the server, or confuse
// the next request on its connection (RELIABILITY.md lists the promises).
// Every case ends by checking that the server still serves.
#include <poll.h>

#include "tests/server/server_process.h"

using namespace pagoda::testing;
using nlohmann::json;

namespace {

// A raw connection: send bytes, read what comes back.
class RawConnection {
 public:
  explicit RawConnection(int port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  }
  void send(const std::string& bytes) {
    beast::error_code ec;
    asio::write(socket_, asio::buffer(bytes), ec);
  }
  // Reads until `done(received)` holds, the server closes, or `timeout`.
  // Returns everything received so far on this connection.
  const std::string& read_until(const std::function<bool(const std::string&)>& done,
                                std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[8192];
    while (!done(received_) && !closed_) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{socket_.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      beast::error_code ec;
      const size_t n = socket_.read_some(asio::buffer(buf), ec);
      if (ec) {
        closed_ = true;
        break;
      }
      received_.append(buf, n);
    }
    return received_;
  }
  const std::string& read_to_close(std::chrono::milliseconds timeout) {
    return read_until([](const std::string&) { return false; }, timeout);
  }
  bool closed() const { return closed_; }
  void close() {
    beast::error_code ec;
    socket_.close(ec);
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  std::string received_;
  bool closed_ = false;
};

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string post_head(const std::string& target, size_t length, const std::string& extra = "") {
  return "POST " + target +
         " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(length) +
         "\r\n" + extra + "\r\n";
}

std::string chunked_head(const std::string& extra = "") {
  return "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: chunked\r\n" +
         extra + "\r\n";
}

std::string chunk(const std::string& data) {
  char size[16];
  std::snprintf(size, sizeof size, "%zx", data.size());
  return std::string(size) + "\r\n" + data + "\r\n";
}

const std::string kSmallBody = R"({"prompt": "Once", "max_tokens": 2})";

// The server still answers a normal request, and holds no KV pages.
void still_serving(ServerProcess& server, std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpResult ok = post(server.port(), "/v1/completions", kSmallBody, std::move(headers));
  CHECK(ok.status == 200);
  CHECK(server.metric("pagoda_kv_pages_in_use") == 0);
}

double finished(ServerProcess& server, const std::string& reason) {
  const std::string m = http_request(server.port(), http::verb::get, "/metrics").body;
  const std::string key = "pagoda_requests_finished_total{reason=\"" + reason + "\"} ";
  const size_t at = m.find(key);
  return at == std::string::npos ? -1 : std::stod(m.substr(at + key.size()));
}

}  // namespace

TEST_CASE("hostile: a trailer field over 64 KiB is refused, before auth, and the server lives") {
  // Defect 1: Beast threw std::length_error from inside the read, which
  // escaped the connection's coroutine and called std::terminate.
  ServerProcess server(18640, {"--set", "server.api_keys=[sekret]"});
  RawConnection c(server.port());
  c.send(chunked_head() + "0\r\nX: " + std::string(65540, 'a') + "\r\n\r\n");
  const std::string& got = c.read_to_close(std::chrono::seconds(5));
  CHECK(got.rfind("HTTP/1.1 431", 0) == 0);
  CHECK(server.running());
  still_serving(server, {{"Authorization", "Bearer sekret"}});
  CHECK(server.terminate() == 0);
}

TEST_CASE("hostile: trailers count against the header limits") {
  // Defect 2: trailer fields escaped the 16 KiB cap, server.max_header_fields
  // and server.max_body_bytes.
  ServerProcess server(18641, {"--set", "server.max_header_fields=20"});
  const std::string body_chunks = chunk(kSmallBody);
  SECTION("many large trailer fields: 431 (was answered 200)") {
    std::string trailers;
    for (int i = 0; i < 95; ++i) trailers += "X-T" + std::to_string(i) + ": " + std::string(1000, 'b') + "\r\n";
    RawConnection c(server.port());
    c.send(chunked_head() + body_chunks + "0\r\n" + trailers + "\r\n");
    CHECK(c.read_to_close(std::chrono::seconds(5)).rfind("HTTP/1.1 431", 0) == 0);
  }
  SECTION("more trailer fields than server.max_header_fields: 431") {
    std::string trailers;
    for (int i = 0; i < 30; ++i) trailers += "X-T" + std::to_string(i) + ": v\r\n";
    RawConnection c(server.port());
    c.send(chunked_head() + body_chunks + "0\r\n" + trailers + "\r\n");
    CHECK(c.read_to_close(std::chrono::seconds(5)).rfind("HTTP/1.1 431", 0) == 0);
  }
  SECTION("header and trailers together over 16 KiB: 431") {
    RawConnection c(server.port());
    c.send(chunked_head("X-H: " + std::string(10000, 'h') + "\r\n") + body_chunks +
           "0\r\nX-T: " + std::string(10000, 't') + "\r\n\r\n");
    CHECK(c.read_to_close(std::chrono::seconds(5)).rfind("HTTP/1.1 431", 0) == 0);
  }
  SECTION("an unfinished trailer section is refused once it outgrows the budget, not buffered") {
    RawConnection c(server.port());
    c.send(chunked_head() + body_chunks + "0\r\nX-T: " + std::string(40000, 't'));  // no end of line
    CHECK(c.read_until([](const std::string& s) { return !s.empty(); }, std::chrono::seconds(5))
              .rfind("HTTP/1.1 431", 0) == 0);
  }
  SECTION("a small trailer is fine") {
    RawConnection c(server.port());
    c.send(chunked_head() + body_chunks + "0\r\nX-Checksum: abc\r\n\r\n");
    CHECK(c.read_until([](const std::string& s) { return has(s, "\"usage\""); }, std::chrono::seconds(10))
              .rfind("HTTP/1.1 200", 0) == 0);
  }
  still_serving(server);
  CHECK(server.terminate() == 0);
}

TEST_CASE("hostile: past the descriptor limit, clients get 503 and accepting does not spin") {
  // Defect 6: with `ulimit -n` exhausted the acceptor busy-looped at 1.35
  // cores and new clients hung. The server lowers server.max_connections
  // under the limit and backs off on EMFILE.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizer runtimes need descriptors of their own while the server
  // runs out of them (UBSan's vptr check opens a pipe to probe memory, and
  // reports a false error when it cannot): this case runs in the Release
  // stage only.
  SUCCEED("skipped under a sanitizer");
  return;
#endif
  ServerProcess server(18642, {"--set", "logging.level=info", "--set", "server.max_connections_per_client=1000"},
                       {"/usr/bin/prlimit", "--nofile=128:128", "--"});
  CHECK(has(server.log(), "server.max_connections lowered from"));
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 160; ++i) idle.push_back(std::make_unique<RawConnection>(server.port()));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const double cpu0 = server.cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  // A new client is answered (503: over server.max_connections) in time.
  RawConnection late(server.port());
  late.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string& got =
      late.read_until([](const std::string& s) { return has(s, "\r\n\r\n"); }, std::chrono::seconds(10));
  CHECK(got.rfind("HTTP/1.1 503", 0) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const double cpu = server.cpu_seconds() - cpu0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO("server CPU " << cpu << " s over " << wall << " s");
  CHECK(cpu < 0.5 * wall);  // spinning took 1.35 cores
  idle.clear();
  for (int i = 0; i < 100 && server.http_request_safe("/health") != 200; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  still_serving(server);
  CHECK(server.terminate() == 0);
}

TEST_CASE("hostile: a client that sends one more byte and leaves has its request cancelled") {
  // Defect 7: the disconnect watcher saw the byte, stopped watching, and the
  // request ran to max_tokens holding its pages.
  // One sequence at a time: the requests are still running or waiting when
  // their clients send the byte (after the server has read the request,
  // so the byte sits unread in the socket) and leave.
  ServerProcess server(18643, {"--set", "scheduler.max_num_seqs=1"});
  std::vector<std::unique_ptr<RawConnection>> clients;
  const std::string body = R"({"prompt": "Once upon a time", "max_tokens": 450, "ignore_eos": true})";
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<RawConnection>(server.port()));
    clients.back()->send(post_head("/v1/completions", body.size()) + body);
  }
  for (int i = 0; i < 1000 && server.metric("pagoda_requests_running") + server.metric("pagoda_requests_waiting") < 3;
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  for (auto& c : clients) {
    c->send("X");
    c->close();
  }
  double aborted = 0, completed = 0;
  for (int i = 0; i < 250 && aborted + completed < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    aborted = finished(server, "abort");
    completed = finished(server, "length");
  }
  // The two that wait behind the first are cancelled for sure; the first
  // may just finish if this test is descheduled before it sends the byte.
  CHECK(aborted + completed == 3);
  CHECK(aborted >= 2);
  still_serving(server);
  CHECK(server.terminate() == 0);
}

TEST_CASE("hostile: HEAD answers like GET without a body, and every 405 carries Allow") {
  // Defect 9: HEAD got a 405 with a body, which desynchronised keep-alive
  // clients, and no 405 said which methods are allowed.
  ServerProcess server(18644);
  RawConnection c(server.port());
  // Three requests pipelined on one connection: each response must parse
  // where the previous one ended.
  c.send(
      "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n"
      "HEAD /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string& got =
      c.read_until([](const std::string& s) { return has(s, "{\"status\":\"ok\"}"); }, std::chrono::seconds(5));
  http::response_parser<http::string_body> head_ok, head_405;
  head_ok.skip(true);
  head_405.skip(true);
  beast::error_code ec;
  size_t at = head_ok.put(asio::buffer(got), ec);
  REQUIRE(!ec);
  REQUIRE(head_ok.is_done());
  CHECK(head_ok.get().result_int() == 200);
  CHECK(head_ok.get()[http::field::content_length] == std::to_string(std::string("{\"status\":\"ok\"}").size()));
  at += head_405.put(asio::buffer(got.substr(at)), ec);
  REQUIRE(!ec);
  REQUIRE(head_405.is_done());
  CHECK(head_405.get().result_int() == 405);
  CHECK(head_405.get()[http::field::allow] == "POST");
  // The GET starts exactly where the HEAD answers ended.
  CHECK(got.substr(at).rfind("HTTP/1.1 200", 0) == 0);
  CHECK(has(got.substr(at), "{\"status\":\"ok\"}"));

  RawConnection wrong(server.port());
  wrong.send("DELETE /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string& res = wrong.read_to_close(std::chrono::seconds(5));
  CHECK(res.rfind("HTTP/1.1 405", 0) == 0);
  CHECK(has(res, "Allow: GET, HEAD\r\n"));
  still_serving(server);
  CHECK(server.terminate() == 0);
}

TEST_CASE("hostile: an HTTP/1.0 client gets its stream close-delimited, not chunked") {
  // Defect 10: 1.0 clients saw raw chunk sizes in the stream.
  ServerProcess server(18645);
  RawConnection c(server.port());
  const std::string body = R"({"prompt": "Once upon a time", "max_tokens": 8, "stream": true})";
  c.send("POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body);
  const std::string& got = c.read_to_close(std::chrono::seconds(10));
  CHECK(c.closed());
  CHECK(got.rfind("HTTP/1.0 200", 0) == 0);
  CHECK(!has(got, "Transfer-Encoding"));
  const size_t body_at = got.find("\r\n\r\n");
  REQUIRE(body_at != std::string::npos);
  CHECK(got.substr(body_at + 4).rfind("data: {", 0) == 0);  // no chunk size before the event
  bool done = false;
  const auto events = sse_events(got.substr(body_at + 4), &done);
  CHECK(done);
  REQUIRE(events.size() == 8);  // one event per token, the last with the finish reason
  CHECK(events.back()["choices"][0]["finish_reason"] == "length");
  still_serving(server);
  CHECK(server.terminate() == 0);
}

TEST_CASE("hostile: Expect: 100-continue is answered, or refused with the final status") {
  // Defect 11: no 100 Continue (curl waited a second before sending).
  ServerProcess server(18646, {"--set", "server.api_keys=[sekret]", "--set", "server.max_body_bytes=65536"});
  auto headers_done = [](const std::string& s) { return has(s, "\r\n\r\n"); };
  SECTION("acceptable: 100 Continue at once, then the answer") {
    RawConnection c(server.port());
    c.send(post_head("/v1/completions", kSmallBody.size(), "Authorization: Bearer sekret\r\nExpect: 100-continue\r\n"));
    CHECK(c.read_until(headers_done, std::chrono::seconds(3)) == "HTTP/1.1 100 Continue\r\n\r\n");
    c.send(kSmallBody);
    CHECK(has(c.read_until([](const std::string& s) { return has(s, "\"usage\""); }, std::chrono::seconds(10)),
              "HTTP/1.1 200"));
  }
  SECTION("no key: 401 instead of 100") {
    RawConnection c(server.port());
    c.send(post_head("/v1/completions", kSmallBody.size(), "Expect: 100-continue\r\n"));
    CHECK(c.read_until(headers_done, std::chrono::seconds(3)).rfind("HTTP/1.1 401", 0) == 0);
  }
  SECTION("a declared body over the limit: 413 instead of 100") {
    RawConnection c(server.port());
    c.send(post_head("/v1/completions", 1 << 20, "Authorization: Bearer sekret\r\nExpect: 100-continue\r\n"));
    CHECK(c.read_until(headers_done, std::chrono::seconds(3)).rfind("HTTP/1.1 413", 0) == 0);
  }
  SECTION("an expectation other than 100-continue: 417") {
    RawConnection c(server.port());
    c.send(post_head("/v1/completions", kSmallBody.size(), "Authorization: Bearer sekret\r\nExpect: magic\r\n"));
    CHECK(c.read_until(headers_done, std::chrono::seconds(3)).rfind("HTTP/1.1 417", 0) == 0);
  }
  still_serving(server, {{"Authorization", "Bearer sekret"}});
  CHECK(server.terminate() == 0);
}

TEST_CASE("hostile: transfer codings other than exactly chunked are refused (RFC 9112)") {
  // Defect 12: `gzip, chunked` (gzip ignored) and `xchunked` + Content-Length
  // (the length used: the request-smuggling shape) were answered 200.
  ServerProcess server(18647);
  auto status_of = [&](const std::string& request) {
    RawConnection c(server.port());
    c.send(request);
    return c.read_to_close(std::chrono::seconds(5)).substr(0, 12);
  };
  const std::string te = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
  CHECK(status_of(te + "Transfer-Encoding: gzip, chunked\r\n\r\n" + chunk(kSmallBody) + "0\r\n\r\n") == "HTTP/1.1 501");
  CHECK(status_of(te + "Transfer-Encoding: xchunked\r\nContent-Length: " + std::to_string(kSmallBody.size()) +
                  "\r\n\r\n" + kSmallBody) == "HTTP/1.1 400");
  CHECK(status_of(te + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + chunk(kSmallBody) + "0\r\n\r\n") ==
        "HTTP/1.1 400");
  CHECK(status_of(te + "Transfer-Encoding: gzip\r\n\r\n" + kSmallBody) == "HTTP/1.1 400");
  CHECK(status_of("POST /v1/completions HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(kSmallBody) +
                  "0\r\n\r\n") == "HTTP/1.0 400");
  // Exactly chunked, any case, is served.
  RawConnection ok(server.port());
  ok.send(te + "Transfer-Encoding: Chunked\r\n\r\n" + chunk(kSmallBody) + "0\r\n\r\n");
  CHECK(ok.read_until([](const std::string& s) { return has(s, "\"usage\""); }, std::chrono::seconds(10))
            .rfind("HTTP/1.1 200", 0) == 0);
  still_serving(server);
  CHECK(server.terminate() == 0);
}

TEST_CASE("hostile: with API keys set, unknown routes answer 401 too (routes cannot be probed)") {
  // Defect 13: unknown routes answered 404 before the key was checked.
  ServerProcess server(18648, {"--set", "server.api_keys=[sekret]"});
  const int port = server.port();
  CHECK(http_request(port, http::verb::get, "/v1/engines").status == 401);
  CHECK(http_request(port, http::verb::get, "/admin").status == 401);
  CHECK(http_request(port, http::verb::get, "/v1/engines", "", {{"Authorization", "Bearer sekret"}}).status == 404);
  CHECK(http_request(port, http::verb::get, "/health").status == 200);   // open, documented
  CHECK(http_request(port, http::verb::get, "/metrics").status == 200);  // open, documented
  CHECK(http_request(port, http::verb::get, "/v1/models").status == 401);
  CHECK(server.terminate() == 0);
}

TEST_CASE("hostile: SIGTERM with an idle keep-alive connection exits at once") {
  // Defect 13: shutdown waited 1.1-1.3 s beyond the drain for idle
  // keep-alive connections to close themselves.
  ServerProcess server(18649);
  RawConnection c(server.port());
  c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  c.read_until([](const std::string& s) { return has(s, "{\"status\":\"ok\"}"); }, std::chrono::seconds(5));
  const auto t0 = std::chrono::steady_clock::now();
  server.signal(SIGTERM);
  CHECK(server.wait_exit(std::chrono::seconds(10)) == 0);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  CHECK(took < 0.9);  // was 1.1-1.3 s (a sanitizer's own exit can take longer than that)
#endif
  INFO("exit took " << took << " s");
  CHECK(c.read_to_close(std::chrono::seconds(1)).size() > 0);
  CHECK(c.closed());
}

TEST_CASE("hostile: /health answers 503 draining during a drain (the port stays open)") {
  // Defect 13: the listener closed at the start of a drain, so a health
  // check was refused instead of the documented 503.
  // One sequence at a time, so the queued requests keep the drain going.
  // The grace period is long so that a slow (sanitizer) build still finishes
  // every request inside it: this case is about the listener, not the grace.
  ServerProcess server(18650, {"--set", "scheduler.max_num_seqs=1", "--set", "server.shutdown_grace_s=600"});
  const int port = server.port();
  constexpr int kClients = 12;
  std::vector<std::thread> clients;
  std::vector<int> statuses(kClients, 0);
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back([&, i] {
      try {
        statuses[i] = post(port, "/v1/completions",
                           json{{"prompt", "Once upon a time"}, {"max_tokens", 480}, {"ignore_eos", true}}.dump())
                          .status;
      } catch (...) {
        statuses[i] = -1;
      }
    });
  // Every request is in before the drain starts (so each must finish 200).
  // Read the later states first, so a request that moves on between two reads
  // is missed (the loop reads again) rather than counted twice.
  const auto admitted = [&] {
    const double finished = server.metric_sum("pagoda_requests_finished_total");
    const double running = server.metric("pagoda_requests_running");
    return finished + running + server.metric("pagoda_requests_waiting");
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (admitted() < kClients && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  REQUIRE(admitted() == kClients);
  server.signal(SIGTERM);
  HttpResult health;
  for (int i = 0; i < 200 && health.status != 503; ++i) {  // until the signal is handled
    health = http_request(port, http::verb::get, "/health");
    if (health.status != 503) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(health.status == 503);
  CHECK(health.json()["status"] == "draining");
  CHECK(post(port, "/v1/completions", kSmallBody).status == 503);
  for (auto& t : clients) t.join();
  for (int s : statuses) CHECK(s == 200);
  CHECK(server.wait_exit(std::chrono::seconds(30)) == 0);
}
