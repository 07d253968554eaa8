// Fuzz target: the HTTP request path up to the route handler.
// Raw bytes go into Beast's request_parser with the server's limits
// (apply_request_limits, as HttpServer reads every request), fed in chunks
// whose sizes come from the input's first byte, for up to four pipelined
// requests; each complete request is checked against server.max_header_fields,
// routed with match_route, and a generation request's body goes through
// parse_api_request. Checks: a request the parser accepts respects the body
// and header byte limits, routes consistently (a matched route names an
// allowed method), and a body rejection is a 4xx with a message.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "server/api_routes.h"
#include "server/openai_protocol.h"
#include "server/request_limits.h"

using namespace pagoda;
namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t chunk = 1 + data[0] % 64;  // bytes handed to the parser per call (1 = trickle)
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  ServerConfig config;
  config.server.max_body_bytes = 4096;
  config.server.max_header_fields = 16;
  for (int request = 0; request < 4 && !in.empty(); ++request) {
    RequestParser parser;
    apply_request_limits(parser, config);
    parser.eager(true);
    boost::beast::error_code ec;
    std::string buffered;
    size_t used = 0;
    // Feed like a socket: append a chunk, let the parser consume what it can.
    while (!parser.is_done() && !ec) {
      if (used == in.size() && buffered.empty()) break;
      const size_t take = std::min(chunk, in.size() - used);
      buffered.append(in.substr(used, take));
      used += take;
      const size_t n = parser.put(boost::asio::buffer(buffered), ec);
      buffered.erase(0, n);
      if (ec == http::error::need_more) ec = {};
      if (take == 0 && n == 0) break;  // nothing more will come
    }
    if (ec || !parser.is_done()) return 0;  // the server answers 400/413/431 and closes
    const auto& req = parser.get();
    FUZZ_CHECK(req.body().size() <= static_cast<size_t>(config.server.max_body_bytes));
    if (too_many_header_fields(parser, config)) return 0;  // 431
    const RouteMatch m = match_route(req.method(), req.target());
    FUZZ_CHECK(m.path.size() <= req.target().size());
    FUZZ_CHECK(m.path.find('?') == std::string::npos);
    if (m.route == ApiRoute::kNotFound) {
      FUZZ_CHECK(!m.method_ok);
    } else {
      FUZZ_CHECK(std::string(m.allowed) == "GET" || std::string(m.allowed) == "POST");
      FUZZ_CHECK(m.method_ok == (req.method() == (std::string(m.allowed) == "GET" ? http::verb::get : http::verb::post)));
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
    in.remove_prefix(used - buffered.size());  // the next pipelined request starts after this one
  }
  return 0;
}
