// Fuzz target: the HTTP request path up to the route handler, as the server
// reads it. Raw bytes go through a RequestReader (every limit the server
// applies, see server/request_reader.h) in pieces whose sizes come from the
// input's first byte, holding unconsumed bytes the way a connection's buffer
// does, for up to four pipelined requests; each complete request is routed
// with match_route, and a generation request's body goes through
// parse_api_request. Checks: the reader never lets the held bytes grow past
// its max_pending; an accepted request respects the body limit and the field
// count (header and trailers together); a refusal is one of the statuses the
// server documents, with a message; routing is consistent (a matched route
// names its methods); a body rejection is a 4xx with a message.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "server/api_routes.h"
#include "server/openai_protocol.h"
#include "server/request_reader.h"

using namespace pagoda;
namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t chunk = 1 + data[0] % 64;  // bytes read off the "socket" at a time (1 = trickle)
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  ServerConfig config;
  config.server.max_body_bytes = 4096;
  config.server.max_header_fields = 16;
  std::string held;  // the connection's buffer: read but not yet consumed
  for (int request = 0; request < 4; ++request) {
    RequestReader reader(config);
    for (;;) {
      held.erase(0, reader.feed(held));
      if (reader.state() == RequestReader::State::kReadingHeader ||
          reader.state() == RequestReader::State::kReadingBody)
        reader.check_pending(held.size());
      if (reader.state() == RequestReader::State::kDone || reader.state() == RequestReader::State::kRefused) break;
      FUZZ_CHECK(held.size() <= reader.max_pending());
      if (in.empty()) return 0;  // the client stops sending: the server times out and closes
      const size_t take = std::min(chunk, in.size());
      held.append(in.substr(0, take));
      in.remove_prefix(take);
    }
    if (reader.state() == RequestReader::State::kRefused) {
      const ApiError& e = reader.refusal();
      FUZZ_CHECK(e.status == 400 || e.status == 413 || e.status == 417 || e.status == 431 || e.status == 501);
      FUZZ_CHECK(!e.message.empty());
      return 0;  // the server answers and closes
    }
    const HttpRequest& req = reader.request();
    FUZZ_CHECK(req.body().size() <= static_cast<size_t>(config.server.max_body_bytes));
    FUZZ_CHECK(std::distance(req.begin(), req.end()) <= config.server.max_header_fields);
    FUZZ_CHECK(req.count(http::field::transfer_encoding) == 0 || req.count(http::field::content_length) == 0);
    const RouteMatch m = match_route(req.method(), req.target());
    FUZZ_CHECK(m.path.size() <= req.target().size());
    FUZZ_CHECK(m.path.find('?') == std::string::npos);
    if (m.route == ApiRoute::kNotFound) {
      FUZZ_CHECK(!m.method_ok);
    } else {
      const std::string allowed = m.allowed;
      FUZZ_CHECK(allowed == "GET, HEAD" || allowed == "POST");
      const bool ok = allowed == "POST" ? req.method() == http::verb::post
                                        : (req.method() == http::verb::get || req.method() == http::verb::head);
      FUZZ_CHECK(m.method_ok == ok);
    }
    if (m.method_ok && (m.route == ApiRoute::kCompletions || m.route == ApiRoute::kChatCompletions)) {
      ApiRequest api;
      ApiError err;
      ApiLimits limits;
      limits.max_model_len = 512;
      if (!parse_api_request(req.body(), m.route == ApiRoute::kChatCompletions ? ApiKind::kChat : ApiKind::kCompletion,
                             limits, &api, &err))
        FUZZ_CHECK(err.status >= 400 && err.status < 500 && !err.message.empty());
    }
    if (!req.keep_alive()) return 0;
  }
  return 0;
}
