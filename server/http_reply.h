// HttpReply: a complete (not streamed) HTTP response, and the one function
// that writes it. Every plain response of the server goes through
// write_reply, so the headers every response carries (Server, Content-Type,
// Content-Length, Connection, Allow on a 405, Retry-After) and the rules of
// HEAD (the GET headers without the body) are in one place.
// Plain data and free functions: thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include "server/api_error.h"

namespace pagoda {

namespace http = boost::beast::http;

struct HttpReply {
  http::status status = http::status::ok;
  std::string body;
  std::string content_type = "application/json";
  int retry_after_s = 0;  // > 0: Retry-After
  std::string allow;      // the Allow header of a 405 ("GET, HEAD", "POST")
  std::string replica;    // X-Pagoda-Replica: which replica answered (server.replica_id); "" = none
};

// The reply for an API error (OpenAI's error JSON, its status, Retry-After).
HttpReply error_reply(const ApiError& e);

// How a reply goes out on one connection.
struct ReplyFraming {
  unsigned version = 11;    // the request's HTTP version (10 or 11)
  bool keep_alive = false;  // keep the connection open afterwards
  bool head = false;        // a HEAD request: headers only
  // The write must end within this (a client that does not read cannot hold
  // the connection); 0 = no deadline.
  std::chrono::milliseconds timeout{0};
};

// Writes `reply`; true when it was written completely.
boost::asio::awaitable<bool> write_reply(boost::beast::tcp_stream& stream, const ReplyFraming& framing,
                                         const HttpReply& reply);

// The header naming the replica that answered (API routes only).
inline constexpr const char* kReplicaHeader = "X-Pagoda-Replica";

// The value of the Server header.
inline constexpr const char* kServerHeader = "pagoda/" PAGODA_VERSION;

}  // namespace pagoda
