#include "server/api_service.h"

#include <ctime>
#include <fstream>
#include <functional>
#include <random>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "server/api_routes.h"
#include "server/choice_fanout.h"
#include "server/delta_channel.h"
#include "server/embedding_request.h"
#include "server/http_reply.h"
#include "server/metrics_text.h"
#include "server/tool_call_reply.h"
#include "tokenizer/detokenizer.h"

namespace pagoda {

namespace asio = boost::asio;
namespace beast = boost::beast;
using nlohmann::json;

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// How the response to `req` goes out: its version, keep-alive, HEAD, and the
// deadline of the write (server.idle_timeout_s: a client that does not read
// cannot hold its connection).
ReplyFraming framing_of(const HttpRequest& req, double write_timeout_s) {
  return ReplyFraming{req.version(), req.keep_alive(), req.method() == http::verb::head,
                      std::chrono::milliseconds(static_cast<int64_t>(write_timeout_s * 1000))};
}

ApiError from_status(const Status& st) {
  switch (st.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      return api_error(400, st.message(), "invalid_value", st.field());
    case StatusCode::kResourceExhausted: {
      ApiError e = api_error(429, st.message(), "queue_full", "", "rate_limit_error");
      e.retry_after_s = 1;
      return e;
    }
    case StatusCode::kUnavailable: {
      ApiError e = api_error(503, st.message(), "unavailable", "", "server_error");
      e.retry_after_s = 5;
      return e;
    }
    case StatusCode::kCancelled:
      return api_error(499, st.message(), "cancelled", "", "server_error");
    default:
      return api_error(500, st.message(), "internal_error", "", "server_error");
  }
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  // Compares every byte of the longer input whatever the mismatch position.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

// The usage of a response (its choices' last deltas in choice order, `n`
// per prompt): each prompt (and its cached part) once, the completion
// tokens of every choice.
json response_usage(const std::vector<const RequestDelta*>& lasts, int n) {
  int64_t prompt = 0, cached = 0, completion = 0;
  for (size_t i = 0; i < lasts.size(); ++i) {
    completion += lasts[i]->completion_tokens;
    if (i % static_cast<size_t>(n) != 0) continue;
    prompt += lasts[i]->prompt_tokens;
    cached += lasts[i]->cached_tokens;
  }
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion},
          {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

json usage_json(const RequestDelta& d) {
  return {{"prompt_tokens", d.prompt_tokens},
          {"completion_tokens", d.completion_tokens},
          {"total_tokens", d.prompt_tokens + d.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", d.cached_tokens}}}};
}

// server.tool_call_parser resolved: a named format, or for auto the one the
// chat template in use teaches (a built-in family's, or the model's own).
ToolCallFormat resolve_tool_call_format(const std::string& name, ChatTemplate tmpl, const Tokenizer& tokenizer) {
  if (auto format = parse_tool_call_format(name)) return format.value();
  switch (tmpl) {
    case ChatTemplate::kChatMl:
      return ToolCallFormat::kHermes;  // its tool calls are <tool_call> blocks
    case ChatTemplate::kLlama3:
      return ToolCallFormat::kLlama3Json;
    case ChatTemplate::kMistral:
      return ToolCallFormat::kMistral;
    case ChatTemplate::kAuto:
      return detect_tool_call_format(tokenizer.chat_template());
    default:
      return ToolCallFormat::kJson;
  }
}

// server.chat_template as parsed; the config check has already refused a
// bad name, so the fallback is never taken in practice.
ChatTemplate chat_template_or_plain(const std::string& name) {
  auto parsed = parse_chat_template(name);
  return parsed.is_ok() ? parsed.value() : ChatTemplate::kPlain;
}

}  // namespace

Result<std::vector<std::string>> load_api_keys(const ServerConfig& config) {
  std::vector<std::string> keys = config.server.api_keys;
  if (!config.server.api_key_file.empty()) {
    std::ifstream in(config.server.api_key_file);
    if (!in)
      return Status::not_found("config key 'server.api_key_file': cannot read '" + config.server.api_key_file + "'");
    std::string line;
    while (std::getline(in, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      keys.push_back(line);
    }
    if (keys.empty())
      return Status::invalid_argument("config key 'server.api_key_file': '" + config.server.api_key_file +
                                      "' holds no keys");
  }
  return keys;
}

ApiService::ApiService(const ServerConfig& config, ServedModel model, EngineLoop* engine,
                       std::shared_ptr<const Tokenizer> tokenizer, std::vector<std::string> api_keys)
    : config_(config), model_(std::move(model)), engine_(engine), tokenizer_(std::move(tokenizer)),
      api_keys_(std::move(api_keys)), chat_template_(chat_template_or_plain(config.server.chat_template)) {
  limits_.max_model_len = model_.max_model_len;
  tool_call_format_ = resolve_tool_call_format(config.server.tool_call_parser, chat_template_, *tokenizer_);
  pooling_ = config.model.pooling == "mean"  ? Pooling::kMean
             : config.model.pooling == "cls" ? Pooling::kCls
                                             : Pooling::kLast;
  grammars_ = std::make_unique<structured::GrammarCache>(
      structured::TokenTrie::build(*tokenizer_), kGrammarCacheEntries,
      std::make_shared<structured::GrammarMemoryBudget>(static_cast<size_t>(config.structured.memory_mib) << 20));
  grammar_compiler_ = std::make_unique<GrammarCompiler>(grammars_.get());
}

void ApiService::stop() { grammar_compiler_->stop(); }

bool ApiService::authorized(const HttpRequest& req) const {
  if (api_keys_.empty()) return true;
  auto it = req.find(http::field::authorization);
  if (it == req.end()) return false;
  const std::string value(it->value());
  const std::string prefix = "Bearer ";
  if (value.size() <= prefix.size() || value.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string key = value.substr(prefix.size());
  bool ok = false;
  for (const std::string& k : api_keys_) ok |= constant_time_equal(key, k);
  return ok;
}

std::string ApiService::logprob_token(const ApiRequest& api, int32_t id) const {
  return api.tokens_as_ids ? "token_id:" + std::to_string(id) : token_text(id);
}

std::string ApiService::token_text(int32_t id) const { return std::string(tokenizer_->decode_piece(id)); }

std::string ApiService::response_id(ApiKind kind, RequestId id) const {
  static const uint64_t boot = std::random_device{}();
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s-%08llx%08llx", kind == ApiKind::kChat ? "chatcmpl" : "cmpl",
                static_cast<unsigned long long>(boot & 0xffffffffu), static_cast<unsigned long long>(id));
  return buf;
}

std::optional<HttpReply> ApiService::refuse_header(const HttpRequest& req, const RouteMatch& match) const {
  // With keys set, only /health, /metrics and /load answer without one: not even
  // the route table can be probed.
  const bool open_route =
      match.route == ApiRoute::kHealth || match.route == ApiRoute::kMetrics || match.route == ApiRoute::kLoad;
  if (!open_route && !authorized(req))
    return error_reply(api_error(401, "missing or invalid API key: send 'Authorization: Bearer <key>'",
                                 "invalid_api_key", "", "authentication_error"));
  if (match.route == ApiRoute::kNotFound) return error_reply(api_error(404, "no route for " + match.path, "not_found"));
  if (!match.method_ok) {
    HttpReply r = error_reply(api_error(
        405,
        "method " + std::string(req.method_string()) + " is not allowed on " + match.path + "; use " + match.allowed,
        "method_not_allowed"));
    r.allow = match.allowed;
    return r;
  }
  return std::nullopt;
}

std::optional<HttpReply> ApiService::check_header(const HttpRequest& req) const {
  return refuse_header(req, match_route(req.method(), req.target()));
}

HttpReply ApiService::route(const HttpRequest& req, bool* generate, ApiKind* kind) {
  *generate = false;
  const RouteMatch match = match_route(req.method(), req.target());
  if (auto refusal = refuse_header(req, match)) return std::move(*refusal);
  switch (match.route) {
    case ApiRoute::kHealth: {
      const char* state = serving_state();
      return {std::string(state) == "ok" ? http::status::ok : http::status::service_unavailable,
              dump({{"status", state}})};
    }
    case ApiRoute::kLoad: {
      const EngineStats& st = engine_->stats();
      return {http::status::ok, dump({{"replica", config_.server.replica_id},
                                      {"status", serving_state()},
                                      {"running", static_cast<int64_t>(st.requests_running.value())},
                                      {"waiting", static_cast<int64_t>(st.requests_waiting.value())},
                                      {"kv_usage", st.kv_usage().usage_ratio}})};
    }
    case ApiRoute::kMetrics: {
      HttpReply r{http::status::ok,
                  render_metrics(engine_->stats(), connections_ ? connections_() : 0, config_.server.replica_id)};
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return r;
    }
    default:
      break;
  }
  if (!ready_) {
    ApiError e = api_error(503, "the model is still loading", "loading", "", "server_error");
    e.retry_after_s = 5;
    return error_reply(e);
  }
  if (engine_->draining()) {
    // Draining: no new work of any kind; /health and /metrics still answer.
    ApiError e = api_error(503, "the server is shutting down", "draining", "", "server_error");
    e.retry_after_s = 5;
    return error_reply(e);
  }
  const json card = {{"id", model_.name},
                     {"object", "model"},
                     {"created", started_at_},
                     {"owned_by", "pagoda"},
                     {"max_model_len", model_.max_model_len}};
  switch (match.route) {
    case ApiRoute::kModels:
      return {http::status::ok, dump({{"object", "list"}, {"data", json::array({card})}})};
    case ApiRoute::kModel:
      if (match.model_id != model_.name)
        return error_reply(api_error(404, "model '" + match.model_id + "' does not exist", "model_not_found", "model"));
      return {http::status::ok, dump(card)};
    case ApiRoute::kTokenize:
    case ApiRoute::kDetokenize:
      return tokenize_route(req, match.route == ApiRoute::kTokenize);
    default:
      break;
  }
  *generate = true;
  *kind = match.route == ApiRoute::kChatCompletions ? ApiKind::kChat
          : match.route == ApiRoute::kEmbeddings    ? ApiKind::kEmbedding
                                                    : ApiKind::kCompletion;
  return {};
}

HttpReply ApiService::tokenize_route(const HttpRequest& req, bool tokenize) const {
  json body = json::parse(req.body(), nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return error_reply(api_error(400, "the request body must be a JSON object", "invalid_json"));
  if (body.contains("model") && body["model"].is_string() && !body["model"].get<std::string>().empty() &&
      body["model"].get<std::string>() != model_.name) {
    const std::string asked = body["model"].get<std::string>().substr(0, 256);
    return error_reply(api_error(404, "model '" + asked + "' does not exist (this server serves '" + model_.name + "')",
                                 "model_not_found", "model"));
  }
  if (tokenize) {
    if (!body.contains("prompt") || !body["prompt"].is_string())
      return error_reply(api_error(400, "'prompt' must be a string", "invalid_value", "prompt"));
    bool add_special = true;
    if (body.contains("add_special_tokens")) {
      if (!body["add_special_tokens"].is_boolean())
        return error_reply(
            api_error(400, "'add_special_tokens' must be true or false", "invalid_value", "add_special_tokens"));
      add_special = body["add_special_tokens"].get<bool>();
    }
    const auto ids = tokenizer_->encode(body["prompt"].get<std::string>(), add_special);
    return {http::status::ok, dump({{"tokens", ids}, {"count", ids.size()}, {"max_model_len", model_.max_model_len}})};
  }
  if (!body.contains("tokens") || !body["tokens"].is_array())
    return error_reply(api_error(400, "'tokens' must be an array of token ids", "invalid_value", "tokens"));
  std::vector<int32_t> ids;
  for (const json& t : body["tokens"]) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= model_.vocab_size)
      return error_reply(api_error(400, "'tokens' must hold ids in [0, " + std::to_string(model_.vocab_size) + ")",
                                   "invalid_value", "tokens"));
    ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return {http::status::ok, dump({{"prompt", tokenizer_->decode(ids)}})};
}

namespace {

AccessRecord start_access(const HttpRequest& req, beast::tcp_stream& stream) {
  AccessRecord a;
  a.method = std::string(req.method_string());
  const std::string_view target(req.target().data(), req.target().size());
  a.path = std::string(target.substr(0, target.find('?')));
  boost::system::error_code ec;
  const auto peer = stream.socket().remote_endpoint(ec);
  if (!ec) a.client = peer.address().to_string() + ":" + std::to_string(peer.port());
  return a;
}

// What the finished request's last delta and times say.
void finish_access(const Request& request, const RequestDelta& last, AccessRecord* a) {
  a->prompt_tokens = last.prompt_tokens;
  a->completion_tokens = last.completion_tokens;
  a->finish_reason = finish_reason_name(last.finish);
  if (request.times.first_token != Clock::time_point{})
    a->ttft_s = std::chrono::duration<double>(request.times.first_token - request.times.arrival).count();
}

// Waits for the deltas of a fan-out's requests until all have finished,
// handing each to `on_delta` after the fan-out has seen it. False when the
// client went away first (marked in the access record). The channel stops
// watching the socket either way.
asio::awaitable<bool> gather_deltas(DeltaChannel& channel, ChoiceFanout& fanout,
                                    const std::function<void(int, RequestDelta&)>& on_delta, AccessRecord* access) {
  while (!fanout.done()) {
    co_await channel.wait();
    if (channel.client_gone()) break;
    while (!channel.empty()) {
      int index = 0;
      RequestDelta d = channel.pop(&index);
      fanout.on_delta(index, d);
      on_delta(index, d);
    }
  }
  channel.stop_watching();
  if (!channel.client_gone()) co_return true;
  access->status = 499;
  access->finish_reason = "client_gone";
  co_return false;
}

}  // namespace

const char* ApiService::serving_state() const {
  return !ready_ ? "loading" : (engine_->draining() ? "draining" : "ok");
}

asio::awaitable<bool> ApiService::send(beast::tcp_stream& stream, const HttpRequest& req, HttpReply reply) const {
  reply.replica = config_.server.replica_id;
  co_return co_await write_reply(stream, framing_of(req, config_.server.idle_timeout_s), reply);
}

asio::awaitable<bool> ApiService::send_error(beast::tcp_stream& stream, const HttpRequest& req,
                                             const ApiError& e) const {
  HttpReply reply = error_reply(e);  // named: see generate()
  const bool written = co_await send(stream, req, std::move(reply));
  co_return (written && req.keep_alive());
}

asio::awaitable<bool> ApiService::handle(HttpRequest& req, beast::tcp_stream& stream) {
  AccessRecord access = start_access(req, stream);
  bool gen = false;
  ApiKind kind = ApiKind::kCompletion;
  HttpReply reply;
  try {
    reply = route(req, &gen, &kind);
  } catch (const std::exception& e) {
    // Request data is validated before it is read, so this is a bug: answer
    // 500 rather than leave the client without a response.
    spdlog::error("{} {} failed: {}", std::string(req.method_string()), std::string(req.target()), e.what());
    reply = error_reply(api_error(500, "internal error", "internal_error", "", "server_error"));
  }
  bool keep = false;
  if (gen) {
    if (kind == ApiKind::kEmbedding) keep = co_await embed(req, stream, &access);
    else keep = co_await generate(req, stream, kind, &access);
  } else {
    access.status = static_cast<int>(reply.status);
    keep = co_await send(stream, req, std::move(reply)) && req.keep_alive();
  }
  log_access(access);
  co_return keep;
}

void ApiService::warn_ignored_fields(const HttpRequest& req, const std::vector<std::string>& fields) const {
  // At most 8 names, control characters replaced: one honest line per request.
  std::string names;
  for (size_t i = 0; i < std::min<size_t>(fields.size(), 8); ++i) {
    std::string name = fields[i];
    for (char& ch : name)
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
    names += (names.empty() ? "'" : ", '") + name + "'";
  }
  if (fields.size() > 8) names += " and " + std::to_string(fields.size() - 8) + " more";
  spdlog::warn("{} ignores unknown field(s) {}", std::string(req.target()), names);
}

bool ApiService::prepare(const HttpRequest& req, ApiKind kind, ApiRequest* api, std::vector<ResponsePrompt>* prompts,
                         ApiError* err) const {
  try {
    return build_prompt(req, kind, api, prompts, err);
  } catch (const std::exception& e) {
    spdlog::error("{} {} failed: {}", std::string(req.method_string()), std::string(req.target()), e.what());
    *err = api_error(500, "internal error", "internal_error", "", "server_error");
    return false;
  }
}

bool ApiService::build_prompt(const HttpRequest& req, ApiKind kind, ApiRequest* api,
                              std::vector<ResponsePrompt>* prompts, ApiError* err) const {
  if (!parse_api_request(req.body(), kind, limits_, api, err)) return false;
  if (!api->model.empty() && api->model != model_.name) {
    *err = api_error(404, "model '" + api->model + "' does not exist (this server serves '" + model_.name + "')",
                     "model_not_found", "model");
    return false;
  }
  if (!api->ignored_fields.empty()) warn_ignored_fields(req, api->ignored_fields);
  prompts->clear();
  if (kind == ApiKind::kChat && api->tools) {
    // tool_choice none: the tools are not shown to the model at all.
    static const nlohmann::ordered_json kNoTools;
    const bool offered = api->tools->choice != ToolChoice::kNone;
    prompts->push_back(
        {render_chat(api->messages, chat_template_, *tokenizer_, true, offered ? api->tools->tools : kNoTools), ""});
    if (auto forced = forced_tool_call_grammar(*api->tools)) {
      api->grammar = std::move(forced);
      api->grammar_field = "tool_choice";
    }
  } else if (kind == ApiKind::kChat) {
    prompts->push_back({render_chat(api->messages, chat_template_, *tokenizer_), ""});
  } else {
    for (const CompletionPrompt& p : api->prompts) {
      ResponsePrompt& out = prompts->emplace_back();
      if (p.text) {
        out.ids = tokenizer_->encode(*p.text, true);
        if (api->echo) out.echo = *p.text;
      } else {
        out.ids = p.ids;  // ids outside the vocabulary: refused by the engine's validate_request
        if (api->echo) out.echo = tokenizer_->decode(out.ids);
      }
    }
  }
  if (api->stop.max_tokens < 0) {  // chat: one prompt
    const std::vector<int32_t>& prompt = prompts->front().ids;
    api->stop.max_tokens = model_.max_model_len - static_cast<int64_t>(prompt.size());
    if (api->stop.max_tokens < 1) {
      *err = api_error(400,
                       "the prompt has " + std::to_string(prompt.size()) +
                           " tokens, which leaves no room in this model's maximum context length of " +
                           std::to_string(model_.max_model_len),
                       "context_length_exceeded", kind == ApiKind::kChat ? "messages" : "prompt");
      return false;
    }
  }
  return true;
}

asio::awaitable<bool> ApiService::generate(HttpRequest& req, beast::tcp_stream& stream, ApiKind kind,
                                           AccessRecord* access) {
  ApiRequest api;
  ApiError err;
  std::vector<ResponsePrompt> prompts;
  // Refuse before parsing and tokenizing when the queue is full or the
  // server drains: under overload a refusal must stay cheap.
  if (Status st = engine_->check_admission(); !st.is_ok()) {
    err = from_status(st);
    access->status = err.status;
    co_return co_await send_error(stream, req, err);
  }
  if (!prepare(req, kind, &api, &prompts, &err)) {
    access->status = err.status;
    co_return co_await send_error(stream, req, err);
  }
  if (config_.logging.log_prompts && spdlog::should_log(spdlog::level::info)) {  // access records log at info
    access->prompt = tokenizer_->decode(prompts.front().ids);
    if (access->prompt.size() > kMaxLoggedPrompt) access->prompt.resize(kMaxLoggedPrompt);  // may cut a character
  }
  std::shared_ptr<structured::CompiledGrammar> compiled;
  if (api.grammar) {
    // Compiled on the grammar compiler's thread: neither the engine thread
    // nor this I/O thread (with its other connections) waits for it; a
    // repeated spec is a cache lookup.
    auto got = co_await grammar_compiler_->get(*api.grammar);
    if (!got) {
      // A grammar the server cannot follow: 400; its grammar memory spent
      // or its compiler's queue full: 503; a failure of the compiler itself
      // (out of memory): 500.
      const StatusCode code = got.status().code();
      err = code == StatusCode::kUnavailable || code == StatusCode::kInternal
                ? from_status(got.status())
                : api_error(400, got.status().message(), "invalid_value", api.grammar_field);
      access->status = err.status;
      co_return co_await send_error(stream, req, err);
    }
    compiled = std::move(got).value();
  }
  // One request per choice: sample i of prompt p is choice p * n + i.
  auto channel = std::make_shared<DeltaChannel>(stream.get_executor());
  std::vector<std::shared_ptr<Request>> requests;
  for (const ResponsePrompt& prompt : prompts) {
    for (int i = 0; i < api.n; ++i) {
      SamplingParams sampling = api.sampling;
      if (sampling.seed) *sampling.seed += static_cast<uint64_t>(i);  // n different, reproducible samples
      const int index = static_cast<int>(requests.size());
      auto request = std::make_shared<Request>(next_id_++, prompt.ids, sampling, api.stop, channel->make_sink(index));
      request->priority = api.priority;
      request->cache_salt = api.cache_salt;
      request->prompt_logprobs = api.engine_prompt_logprobs;
      if (compiled) request->grammar = std::make_unique<structured::GrammarMatcher>(compiled);
      requests.push_back(std::move(request));
    }
  }
  ChoiceFanout fanout(
      requests, api.n, [this](std::shared_ptr<Request> r) { return engine_->submit(std::move(r)); },
      [this](std::shared_ptr<Request> r) { return engine_->submit_sibling(std::move(r)); });
  if (Status st = fanout.submit_first(); !st.is_ok()) {  // the prompts already submitted are cancelled
    err = from_status(st);
    access->status = err.status;
    co_return co_await send_error(stream, req, err);
  }
  access->request_id = response_id(kind, requests.front()->id);
  DisconnectWatch watch(*channel, stream.socket(), requests);
  if (api.stream) co_return co_await stream_response(req, stream, api, prompts, fanout, channel, access);

  // Non-streaming: gather everything, then answer once.
  std::vector<ChoiceResult> results(requests.size());
  for (size_t i = 0; i < results.size(); ++i)
    results[i].text = prompts[static_cast<size_t>(fanout.prompt_of(static_cast<int>(i)))].echo;
  const std::function<void(int, RequestDelta&)> collect = [&results](int index, RequestDelta& d) {
    ChoiceResult& r = results[static_cast<size_t>(index)];
    r.text += d.text;
    r.logprobs.insert(r.logprobs.end(), std::make_move_iterator(d.logprobs.begin()),
                      std::make_move_iterator(d.logprobs.end()));
    if (!d.prompt_logprobs.empty()) r.prompt_logprobs = std::move(d.prompt_logprobs);
    if (d.finish != FinishReason::kNone) r.last = std::move(d);
  };
  if (!co_await gather_deltas(*channel, fanout, collect, access)) co_return false;
  // Choice 0's request is read only once it finished (else the engine may still write it).
  if (fanout.first_finished()) finish_access(*requests.front(), results.front().last, access);
  if (!fanout.failure().is_ok()) {
    err = from_status(fanout.failure());
    access->status = err.status;
    co_return co_await send_error(stream, req, err);
  }
  json choices = json::array();
  std::vector<const RequestDelta*> lasts;
  for (size_t i = 0; i < results.size(); ++i) {
    const ResponsePrompt& prompt = prompts[static_cast<size_t>(fanout.prompt_of(static_cast<int>(i)))];
    choices.push_back(choice_json(api, static_cast<int>(i), results[i], prompt));
    lasts.push_back(&results[i].last);
  }
  json body = {{"id", response_id(kind, requests.front()->id)},
               {"object", kind == ApiKind::kChat ? "chat.completion" : "text_completion"},
               {"created", static_cast<int64_t>(std::time(nullptr))},
               {"model", model_.name},
               {"choices", std::move(choices)},
               {"usage", response_usage(lasts, api.n)}};
  if (kind == ApiKind::kChat && api.prompt_logprobs >= 0)  // vLLM: on the response, the prompt being shared
    body["prompt_logprobs"] = vllm_prompt_logprobs_json(
        results.front().prompt_logprobs, [&](int32_t id) { return logprob_token(api, id); }, api.prompt_logprobs);
  HttpReply reply{http::status::ok, dump(body)};  // named: GCC 12 miscompiles a braced temporary co_await argument
  const bool written = co_await send(stream, req, std::move(reply));
  access->status = written ? 200 : 499;
  co_return (written && req.keep_alive());
}

asio::awaitable<bool> ApiService::embed(HttpRequest& req, beast::tcp_stream& stream, AccessRecord* access) {
  ApiError err;
  EmbeddingRequest er;
  if (Status st = engine_->check_admission(); !st.is_ok()) {
    err = from_status(st);
    access->status = err.status;
    co_return co_await send_error(stream, req, err);
  }
  EmbeddingLimits lim;
  lim.max_ids = limits_.max_prompt_ids;
  lim.hidden_size = model_.hidden_size;
  lim.max_model_len = model_.max_model_len;
  std::vector<std::string> ignored;
  if (!parse_embedding_request(req.body(), lim, &er, &ignored, &err)) {
    access->status = err.status;
    co_return co_await send_error(stream, req, err);
  }
  if (!ignored.empty()) warn_ignored_fields(req, ignored);
  if (!er.model.empty() && er.model != model_.name) {
    err = api_error(404, "model '" + er.model + "' does not exist (this server serves '" + model_.name + "')",
                    "model_not_found", "model");
    access->status = err.status;
    co_return co_await send_error(stream, req, err);
  }
  // One request per input, all submitted at once (one batch of prefills),
  // each generating nothing: its pooled final hidden state is the answer.
  auto channel = std::make_shared<DeltaChannel>(stream.get_executor());
  std::vector<std::shared_ptr<Request>> requests;
  StopParams stop;
  stop.max_tokens = 0;
  for (const CompletionPrompt& in : er.inputs) {
    std::vector<int32_t> ids = in.text ? tokenizer_->encode(*in.text, true) : in.ids;
    const int index = static_cast<int>(requests.size());
    auto request =
        std::make_shared<Request>(next_id_++, std::move(ids), SamplingParams{}, stop, channel->make_sink(index));
    request->pooling = pooling_;
    requests.push_back(std::move(request));
  }
  ChoiceFanout fanout(
      requests, 1, [this](std::shared_ptr<Request> r) { return engine_->submit(std::move(r)); },
      [this](std::shared_ptr<Request> r) { return engine_->submit_sibling(std::move(r)); });
  if (Status st = fanout.submit_first(); !st.is_ok()) {
    err = from_status(st);
    if (err.param == "prompt") err.param = "input";
    access->status = err.status;
    co_return co_await send_error(stream, req, err);
  }
  DisconnectWatch watch(*channel, stream.socket(), requests);
  std::vector<RequestDelta> lasts(requests.size());
  const std::function<void(int, RequestDelta&)> keep_last = [&lasts](int index, RequestDelta& d) {
    if (d.finish != FinishReason::kNone) lasts[static_cast<size_t>(index)] = std::move(d);
  };
  if (!co_await gather_deltas(*channel, fanout, keep_last, access)) co_return false;
  if (!fanout.failure().is_ok()) {
    err = from_status(fanout.failure());
    access->status = err.status;
    co_return co_await send_error(stream, req, err);
  }
  json data = json::array();
  int64_t prompt_tokens = 0;
  for (size_t i = 0; i < lasts.size(); ++i) {
    prompt_tokens += lasts[i].prompt_tokens;
    data.push_back(embedding_item(static_cast<int>(i), std::move(lasts[i].embedding), er));
  }
  access->prompt_tokens = prompt_tokens;
  access->finish_reason = "stop";
  const json body = {{"object", "list"},
                     {"data", std::move(data)},
                     {"model", model_.name},
                     {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}};
  HttpReply reply{http::status::ok, dump(body)};  // named: see generate()
  const bool written = co_await send(stream, req, std::move(reply));
  access->status = written ? 200 : 499;
  co_return (written && req.keep_alive());
}

json ApiService::choice_json(const ApiRequest& api, int index, const ChoiceResult& r,
                             const ResponsePrompt& prompt) const {
  const bool chat = api.kind == ApiKind::kChat;
  json choice = {{"index", index}, {"finish_reason", finish_reason_json(r.last.finish)}};
  json logprobs = nullptr;
  if (api.sampling.logprobs >= 0)
    logprobs = chat ? chat_logprobs_json(r.logprobs, [&](int32_t id) { return logprob_token(api, id); })
                    : completion_logprobs_json(
                          r.logprobs, [&](int32_t id) { return logprob_token(api, id); }, prompt.echo.size());
  choice["logprobs"] = logprobs;
  add_prompt_logprobs(api, prompt, r.prompt_logprobs, choice);
  if (!chat) {
    choice["text"] = r.text;
    return choice;
  }
  json message = {{"role", "assistant"}, {"content", r.text}};
  if (api.tools && api.tools->choice != ToolChoice::kNone) {
    ToolCallReply reply(*api.tools, tool_call_format_);
    std::vector<json> ignored;
    std::string content = reply.feed(r.text, &ignored);
    content += reply.finish(&ignored);
    if (!reply.calls().empty()) {
      message["content"] = content.empty() ? json(nullptr) : json(content);
      message["tool_calls"] = reply.calls_json();
      if (reply.finished_with_calls() && r.last.finish == FinishReason::kStop) choice["finish_reason"] = "tool_calls";
    }
  }
  choice["message"] = std::move(message);
  return choice;
}

void ApiService::add_prompt_logprobs(const ApiRequest& api, const ResponsePrompt& prompt,
                                     const std::vector<TokenLogprob>& prompt_logprobs, json& choice) const {
  auto text_of = [&](int32_t id) { return logprob_token(api, id); };
  if (api.echo_logprobs && !prompt.ids.empty()) {
    // Each prompt token's offset in the echoed text, as the detokenizer
    // writes it (no BOS text, no dummy-prefix space); the generated tokens'
    // offsets follow the echo.
    std::vector<size_t> offsets;
    StreamingDetokenizer detok(*tokenizer_);
    size_t at = 0;
    for (int32_t id : prompt.ids) {
      offsets.push_back(std::min(at, prompt.echo.size()));
      at += detok.push(id).size();
    }
    json echoed =
        completion_prompt_logprobs_json(prompt.ids.front(), prompt_logprobs, text_of, api.sampling.logprobs, offsets);
    if (choice.contains("logprobs") && choice["logprobs"].is_object())
      for (const char* key : {"tokens", "token_logprobs", "top_logprobs", "text_offset"})
        for (json& v : choice["logprobs"][key]) echoed[key].push_back(std::move(v));
    choice["logprobs"] = std::move(echoed);
  }
  if (api.prompt_logprobs >= 0 && api.kind == ApiKind::kCompletion)  // chat: on the response (vLLM)
    choice["prompt_logprobs"] = vllm_prompt_logprobs_json(prompt_logprobs, text_of, api.prompt_logprobs);
}

asio::awaitable<bool> ApiService::stream_response(HttpRequest& req, beast::tcp_stream& stream, const ApiRequest& api,
                                                  const std::vector<ResponsePrompt>& prompts, ChoiceFanout& fanout,
                                                  std::shared_ptr<DeltaChannel> channel, AccessRecord* access) {
  const bool chat = api.kind == ApiKind::kChat;
  const auto& requests = fanout.requests();
  const std::string id = response_id(api.kind, requests.front()->id);
  const int64_t created = static_cast<int64_t>(std::time(nullptr));
  const auto write_timeout = std::chrono::milliseconds(static_cast<int64_t>(config_.server.idle_timeout_s * 1000));

  // HTTP/1.0 has no chunked coding: its stream is the rest of the
  // connection, ended by the close.
  const bool chunked = req.version() >= 11;
  http::response<http::empty_body> res{http::status::ok, req.version()};
  res.set(http::field::server, kServerHeader);
  res.set(http::field::content_type, "text/event-stream");
  res.set(http::field::cache_control, "no-cache");
  if (!config_.server.replica_id.empty()) res.set(kReplicaHeader, config_.server.replica_id);
  res.chunked(chunked);
  res.keep_alive(chunked && req.keep_alive());
  http::response_serializer<http::empty_body> sr{res};
  beast::error_code ec;
  stream.expires_after(write_timeout);
  co_await http::async_write_header(stream, sr, asio::redirect_error(asio::use_awaitable, ec));
  const bool header_sent = !ec;
  auto send = [&](const std::string& payload) -> asio::awaitable<bool> {
    const std::string event = "data: " + payload + "\n\n";
    stream.expires_after(write_timeout);
    if (chunked)
      co_await asio::async_write(stream, http::make_chunk(asio::buffer(event)),
                                 asio::redirect_error(asio::use_awaitable, ec));
    else co_await asio::async_write(stream, asio::buffer(event), asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
  };
  // With continuous_usage_stats, each chunk carries the usage so far (`usage`
  // is the delta it belongs to); else null until the final usage chunk.
  auto chunk = [&](json choice, const RequestDelta* usage = nullptr, json prompt_logprobs = nullptr) {
    json j = {{"id", id},
              {"object", chat ? "chat.completion.chunk" : "text_completion"},
              {"created", created},
              {"model", model_.name},
              {"choices", json::array({std::move(choice)})}};
    if (!prompt_logprobs.is_null()) j["prompt_logprobs"] = std::move(prompt_logprobs);
    if (api.include_usage) j["usage"] = api.continuous_usage && usage ? usage_json(*usage) : json(nullptr);
    return dump(j);
  };
  bool ok = !ec;
  for (int i = 0; ok && chat && i < static_cast<int>(requests.size()); ++i) {
    const std::string first = chunk({{"index", i},
                                     {"delta", {{"role", "assistant"}, {"content", ""}}},
                                     {"logprobs", nullptr},
                                     {"finish_reason", nullptr}});
    ok = co_await send(first);
  }
  // Per choice: the text offset of its logprobs (completions), its
  // tool-call reply, its last delta.
  struct StreamChoice {
    size_t text_offset = 0;
    std::unique_ptr<ToolCallReply> tools;
    RequestDelta last;
    bool prompt_chunk_due = false;  // the echo and prompt logprobs wait for its first delta
  };
  // With prompt logprobs asked for, the echo and the prompt's logprobs go in
  // one chunk when the choice's first delta brings them; else the echo goes
  // at once.
  const bool prompt_scored = api.engine_prompt_logprobs >= 0;
  std::vector<StreamChoice> choices(requests.size());
  for (size_t i = 0; i < choices.size(); ++i) {
    const std::string& echo_text = prompts[static_cast<size_t>(fanout.prompt_of(static_cast<int>(i)))].echo;
    choices[i].prompt_chunk_due = prompt_scored;
    if (ok && !echo_text.empty() && !prompt_scored) {
      const std::string echo_chunk = chunk(
          {{"index", static_cast<int>(i)}, {"text", echo_text}, {"logprobs", nullptr}, {"finish_reason", nullptr}});
      ok = co_await send(echo_chunk);
      choices[i].text_offset = echo_text.size();
    }
    if (chat && api.tools && api.tools->choice != ToolChoice::kNone)
      choices[i].tools = std::make_unique<ToolCallReply>(*api.tools, tool_call_format_);
  }
  while (ok && !fanout.done()) {
    co_await channel->wait();
    if (channel->client_gone()) {
      ok = false;
      break;
    }
    while (ok && !channel->empty() && fanout.failure().is_ok()) {
      int index = 0;
      RequestDelta d = channel->pop(&index);
      fanout.on_delta(index, d);
      StreamChoice& sc = choices[static_cast<size_t>(index)];
      const bool done = d.finish != FinishReason::kNone;
      const bool failed = d.finish == FinishReason::kError || d.finish == FinishReason::kAbort;
      if (sc.prompt_chunk_due && !failed) {
        sc.prompt_chunk_due = false;
        const ResponsePrompt& prompt = prompts[static_cast<size_t>(fanout.prompt_of(index))];
        json first = {{"index", index}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
        if (chat) first["delta"] = json::object();
        else first["text"] = prompt.echo;
        add_prompt_logprobs(api, prompt, d.prompt_logprobs, first);
        sc.text_offset = prompt.echo.size();
        json chat_prompt_logprobs = nullptr;  // chat: on the chunk, as on vLLM's response
        if (chat && api.prompt_logprobs >= 0)
          chat_prompt_logprobs = vllm_prompt_logprobs_json(
              d.prompt_logprobs, [&](int32_t t) { return logprob_token(api, t); }, api.prompt_logprobs);
        const std::string payload = chunk(std::move(first), nullptr, std::move(chat_prompt_logprobs));
        ok = co_await send(payload);
      }
      if (!d.text.empty() || !d.logprobs.empty() || (done && !failed)) {
        json lp = nullptr;
        if (api.sampling.logprobs >= 0)
          lp = chat ? chat_logprobs_json(d.logprobs, [&](int32_t t) { return logprob_token(api, t); })
                    : completion_logprobs_json(
                          d.logprobs, [&](int32_t t) { return logprob_token(api, t); }, sc.text_offset);
        json finish = failed ? json(nullptr) : finish_reason_json(d.finish);
        // A chat delta is its content and, with tools, the tool-call pieces
        // (one chunk each, as OpenAI streams them); the finish reason goes
        // on the last chunk.
        std::vector<json> deltas;
        if (chat && sc.tools) {
          std::vector<json> calls;
          std::string shown = sc.tools->feed(d.text, &calls);
          if (done && !failed) {
            shown += sc.tools->finish(&calls);
            if (sc.tools->finished_with_calls() && d.finish == FinishReason::kStop) finish = "tool_calls";
          }
          if (!shown.empty()) deltas.push_back({{"content", shown}});
          for (json& call : calls) deltas.push_back({{"tool_calls", json::array({std::move(call)})}});
        } else if (chat && !d.text.empty()) {
          deltas.push_back({{"content", d.text}});
        }
        // Text held back (a possible call) sends nothing until it is known.
        if (deltas.empty() && chat && lp.is_null() && !done) continue;
        if (deltas.empty()) deltas.push_back(json::object());
        for (size_t k = 0; ok && k < deltas.size(); ++k) {
          const bool last_chunk = k + 1 == deltas.size();
          json choice = {{"index", index},
                         {"logprobs", k == 0 ? lp : json(nullptr)},
                         {"finish_reason", last_chunk ? finish : json(nullptr)}};
          if (chat) choice["delta"] = std::move(deltas[k]);
          else choice["text"] = d.text;
          const std::string payload = chunk(std::move(choice), &d);
          ok = co_await send(payload);
        }
        sc.text_offset += d.text.size();
      }
      if (done) sc.last = std::move(d);
    }
  }
  channel->stop_watching();
  access->status = header_sent ? 200 : 499;  // 200 went out with the headers
  if (!ok) {
    access->finish_reason = "client_gone";
    for (const auto& request : requests) request->cancel();  // the client is gone: free the pages at the next step
    co_return false;
  }
  if (fanout.first_finished()) finish_access(*requests.front(), choices.front().last, access);
  if (!fanout.failure().is_ok()) {
    const std::string payload = dump(error_json(from_status(fanout.failure())));
    ok = co_await send(payload);
  } else if (api.include_usage) {
    std::vector<const RequestDelta*> lasts;
    for (const StreamChoice& sc : choices) lasts.push_back(&sc.last);
    const std::string payload = dump({{"id", id},
                                      {"object", chat ? "chat.completion.chunk" : "text_completion"},
                                      {"created", created},
                                      {"model", model_.name},
                                      {"choices", json::array()},
                                      {"usage", response_usage(lasts, api.n)}});
    ok = co_await send(payload);
  }
  const std::string done_marker = "[DONE]";
  if (ok) ok = co_await send(done_marker);
  if (ok && chunked) {
    stream.expires_after(write_timeout);
    co_await asio::async_write(stream, http::make_chunk_last(), asio::redirect_error(asio::use_awaitable, ec));
    ok = !ec;
  }
  stream.expires_never();
  co_return (ok && chunked && req.keep_alive());
}

}  // namespace pagoda
