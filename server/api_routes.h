// The route table of the API: which route a request target names and which
// HTTP method it takes, before any authentication or body parsing. ApiService
// answers from it; the fuzz target fuzz_http_request drives it with parsed
// requests. Pure functions: thread-safe.
#pragma once

#include <ostream>  // boost/beast/http/verb.hpp prints with operator<< without including it
#include <string>
#include <string_view>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/verb.hpp>

namespace pagoda {

enum class ApiRoute {
  kNotFound,         // 404
  kHealth,           // GET /health          (GET routes also answer HEAD)
  kMetrics,          // GET /metrics
  kLoad,             // GET /load            (a balancer's cheap view of this replica's load)
  kModels,           // GET /v1/models
  kModel,            // GET /v1/models/{id}
  kCompletions,      // POST /v1/completions
  kChatCompletions,  // POST /v1/chat/completions
  kEmbeddings,       // POST /v1/embeddings
  kTokenize,         // POST /tokenize
  kDetokenize,       // POST /detokenize
};

struct RouteMatch {
  ApiRoute route = ApiRoute::kNotFound;
  std::string path;          // the target without its query string
  bool method_ok = false;    // the request's method is the route's (HEAD on a GET route too)
  const char* allowed = "";  // the route's methods ("GET, HEAD" or "POST"): a 405's Allow header
  std::string model_id;      // kModel: the {id} part
};

RouteMatch match_route(boost::beast::http::verb method, boost::beast::string_view target);

}  // namespace pagoda
