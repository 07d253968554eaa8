// RequestReader on its own (no sockets): the limits it applies to every byte
// a client sends, fed whole and byte by byte the way a slow client sends.
#include <catch2/catch.hpp>

#include "server/request_reader.h"

using namespace pagoda;
using State = RequestReader::State;

namespace {

// Feeds `bytes` in pieces of `step`, holding what the reader leaves
// unconsumed as a connection's buffer does; stops at Done or Refused.
// Returns the final state and the largest buffer held on the way.
struct Fed {
  State state;
  size_t max_held = 0;
};
Fed feed_all(RequestReader& reader, const std::string& bytes, size_t step) {
  std::string held;
  Fed out{State::kReadingHeader};
  for (size_t at = 0;;) {
    held.erase(0, reader.feed(held));
    if (reader.state() == State::kReadingHeader || reader.state() == State::kReadingBody)
      reader.check_pending(held.size());
    out.state = reader.state();
    if (out.state == State::kDone || out.state == State::kRefused || at >= bytes.size()) return out;
    held.append(bytes.substr(at, step));
    at += step;
    out.max_held = std::max(out.max_held, held.size());
  }
}

ServerConfig small_limits() {
  ServerConfig c;
  c.server.max_body_bytes = 4096;
  c.server.max_header_fields = 10;
  return c;
}

const std::string kChunkedHead = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

}  // namespace

TEST_CASE("RequestReader: a chunked request with a small trailer reads whole, at any piece size") {
  const ServerConfig config = small_limits();
  for (size_t step : {size_t(1), size_t(7), size_t(64), size_t(100000)}) {
    INFO("step " << step);
    RequestReader reader(config);
    const Fed f = feed_all(reader, kChunkedHead + "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n", step);
    REQUIRE(f.state == State::kDone);
    CHECK(reader.request().body() == "hello world");
    CHECK(reader.request().count("X-Sum") == 0);  // trailers are checked, then dropped
    CHECK(reader.request().count("Host") == 1);
  }
}

TEST_CASE("RequestReader: the bytes held for a trailer never exceed the header budget") {
  const ServerConfig config = small_limits();
  RequestReader reader(config);
  const Fed f = feed_all(reader, kChunkedHead + "5\r\nhello\r\n0\r\nX: " + std::string(100000, 'a'), 512);
  CHECK(f.state == State::kRefused);
  CHECK(reader.refusal().status == 431);
  CHECK(f.max_held <= kMaxHeaderBytes + kMaxChunkLineBytes + 512);
}

TEST_CASE("RequestReader: trailer fields count against the field limit and the 16 KiB") {
  const ServerConfig config = small_limits();
  std::string many;
  for (int i = 0; i < 12; ++i) many += "T" + std::to_string(i) + ": v\r\n";
  RequestReader a(config);
  CHECK(feed_all(a, kChunkedHead + "0\r\n" + many + "\r\n", 64).state == State::kRefused);
  CHECK(a.refusal().status == 431);
  RequestReader b(config);
  const std::string big_header =
      "POST / HTTP/1.1\r\nX-H: " + std::string(9000, 'h') + "\r\nTransfer-Encoding: chunked\r\n\r\n";
  CHECK(feed_all(b, big_header + "0\r\nX-T: " + std::string(8000, 't') + "\r\n\r\n", 64).state == State::kRefused);
  CHECK(b.refusal().status == 431);
}

TEST_CASE("RequestReader: framing rules of RFC 9112") {
  const ServerConfig config = small_limits();
  auto refusal_of = [&](const std::string& bytes) {
    RequestReader r(config);
    return feed_all(r, bytes, 1000).state == State::kRefused ? r.refusal().status : 0;
  };
  const std::string post = "POST /v1/completions HTTP/1.1\r\nHost: x\r\n";
  CHECK(refusal_of(post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n") == 501);
  CHECK(refusal_of(post + "Transfer-Encoding: xchunked\r\nContent-Length: 2\r\n\r\n{}") == 400);
  CHECK(refusal_of(post + "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n0\r\n\r\n") == 400);
  CHECK(refusal_of(post + "Transfer-Encoding: identity\r\n\r\n{}") == 400);
  CHECK(refusal_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") == 400);
  CHECK(refusal_of(post + "Expect: 200-ok\r\nContent-Length: 2\r\n\r\n{}") == 417);
  CHECK(refusal_of(post + "Content-Length: 5000\r\n\r\n") == 413);
  CHECK(refusal_of(post + "Transfer-Encoding: chunked\r\n\r\n2000\r\n") == 413);
  CHECK(refusal_of("GARBAGE\r\n\r\n") == 400);
  CHECK(refusal_of(post + "Transfer-Encoding: CHUNKED\r\n\r\n2\r\n{}\r\n0\r\n\r\n") == 0);
  RequestReader expect(config);
  feed_all(expect, post + "Expect: 100-continue\r\nContent-Length: 2\r\n\r\n", 1000);
  CHECK(expect.state() == State::kReadingBody);
  CHECK(expect.expects_continue());
}

TEST_CASE("RequestReader: pipelined requests are left for the next reader") {
  const ServerConfig config = small_limits();
  const std::string two = "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  RequestReader first(config);
  const size_t used = first.feed(two);
  REQUIRE(first.state() == State::kDone);
  CHECK(first.request().target() == "/health");
  RequestReader second(config);
  second.feed(std::string_view(two).substr(used));
  REQUIRE(second.state() == State::kDone);
  CHECK(second.request().target() == "/metrics");
}
