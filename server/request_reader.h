// RequestReader: turns the bytes a client sends on a connection into one
// HTTP request, applying every limit to every byte on the way. It does no
// I/O: HttpServer feeds it what it reads off the socket, and the fuzz target
// fuzz_http_request feeds it the same way, so both see the same rules.
//
// The limits, each ending the request with a refusal (and the connection
// with a close):
// - request line + header fields: 16 KiB (431), at most
//   server.max_header_fields fields (431);
// - framing (RFC 9112): Transfer-Encoding with Content-Length (400, the
//   request-smuggling shape), a transfer coding other than exactly
//   `chunked` (501; 400 when chunked is not the last one), Transfer-Encoding
//   on HTTP/1.0 (400), an Expect other than 100-continue (417);
// - body: server.max_body_bytes, declared or chunked (413);
// - chunked framing: a chunk line or the trailer section waits unparsed in
//   the buffer for at most the header budget left (431); trailer fields
//   count against the same 16 KiB and field count as the header (431),
//   then are dropped (a trailer never stands in for a header field);
// - anything the parser rejects, or any exception while parsing: 400.
// The reader never buffers: `feed` consumes what it can from the caller's
// buffer and says how much the caller may hold unconsumed (`max_pending`).
//
// One reader per request; not thread-safe (a connection's strand owns it).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/beast/http.hpp>

#include "config/server_config.h"
#include "server/api_error.h"

namespace pagoda {

inline constexpr uint32_t kMaxHeaderBytes = 16 * 1024;
// Room for one chunk-size line (size, extensions) while a chunked body is read.
inline constexpr uint32_t kMaxChunkLineBytes = 1024;

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

class RequestReader {
 public:
  enum class State {
    kReadingHeader,  // more bytes needed for the header
    kReadingBody,    // header accepted; more bytes needed for the body
    kDone,           // release() the request
    kRefused,        // refusal() says why; close after answering
  };

  explicit RequestReader(const ServerConfig& config);

  // Consumes what it can of `bytes` (the caller drops that many from the
  // front of its buffer and keeps the rest for the next call) and advances
  // the state. What Beast throws while parsing becomes a 400 refusal.
  size_t feed(std::string_view bytes);
  State state() const { return state_; }
  // The most unconsumed bytes the caller may hold for this request before
  // reading more; beyond it the request is refused (check_pending).
  size_t max_pending() const;
  // Refuses the request when the caller holds more than max_pending() bytes
  // that feed() could not consume. Returns the new state.
  State check_pending(size_t pending);
  // With the header accepted: the client sent `Expect: 100-continue` on
  // HTTP/1.1 and waits for a 100 before sending the body.
  bool expects_continue() const { return expects_continue_; }
  const HttpRequest& request() const { return parser_.get(); }
  // The request's HTTP version once its header is parsed (11 before).
  unsigned version() const { return parser_.is_header_done() ? parser_.get().version() : 11; }
  HttpRequest release() { return parser_.release(); }
  const ApiError& refusal() const { return refusal_; }

 private:
  void refuse(int status, std::string message, std::string code);
  void on_header();
  void on_done();
  size_t field_bytes_from(size_t first_field) const;

  const ServerConfig& config_;
  boost::beast::http::request_parser<boost::beast::http::string_body> parser_;
  State state_ = State::kReadingHeader;
  ApiError refusal_;
  size_t header_bytes_ = 0;   // request line + header fields, as sent
  size_t header_fields_ = 0;  // fields of the header (trailers come after them)
  bool expects_continue_ = false;
};

}  // namespace pagoda
