// Limits on one HTTP request as it is read off a connection: body size
// (server.max_body_bytes -> 413), header bytes (16 KiB -> 431) and header
// field count (server.max_header_fields -> 431). HttpServer applies them to
// every request; the fuzz target fuzz_http_request applies the same ones.
// Free functions, no state: thread-safe.
#pragma once

#include <cstdint>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/beast/http.hpp>

#include "config/server_config.h"

namespace pagoda {

inline constexpr uint32_t kMaxHeaderBytes = 16 * 1024;

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Sets the body and header byte limits on a fresh parser.
void apply_request_limits(RequestParser& parser, const ServerConfig& config);

// True when the parsed header holds more fields than server.max_header_fields.
// (Beast has no field-count limit of its own; the byte limit bounds the work
// done before this check.)
bool too_many_header_fields(const RequestParser& parser, const ServerConfig& config);

}  // namespace pagoda
