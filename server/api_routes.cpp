#include "server/api_routes.h"

namespace pagoda {

RouteMatch match_route(boost::beast::http::verb method, boost::beast::string_view target) {
  using boost::beast::http::verb;
  RouteMatch m;
  const size_t q = target.find('?');
  m.path = std::string(q == boost::beast::string_view::npos ? target : target.substr(0, q));
  const std::string& p = m.path;
  verb want = verb::get;
  if (p == "/health") m.route = ApiRoute::kHealth;
  else if (p == "/metrics") m.route = ApiRoute::kMetrics;
  else if (p == "/load") m.route = ApiRoute::kLoad;
  else if (p == "/v1/models") m.route = ApiRoute::kModels;
  else if (p.rfind("/v1/models/", 0) == 0) {
    m.route = ApiRoute::kModel;
    m.model_id = p.substr(11);
  } else {
    want = verb::post;
    if (p == "/v1/completions") m.route = ApiRoute::kCompletions;
    else if (p == "/v1/chat/completions") m.route = ApiRoute::kChatCompletions;
    else if (p == "/v1/embeddings") m.route = ApiRoute::kEmbeddings;
    else if (p == "/tokenize") m.route = ApiRoute::kTokenize;
    else if (p == "/detokenize") m.route = ApiRoute::kDetokenize;
  }
  if (m.route == ApiRoute::kNotFound) return m;
  m.method_ok = method == want || (want == verb::get && method == verb::head);
  m.allowed = want == verb::get ? "GET, HEAD" : "POST";
  return m;
}

}  // namespace pagoda
