// ApiService: the OpenAI-compatible routes on top of the EngineLoop.
//   POST /v1/completions, POST /v1/chat/completions (plain or SSE streaming)
//   GET /v1/models, GET /health, GET /metrics, GET /load, POST /tokenize, POST /detokenize
// Checks the bearer key when keys are configured (constant-time compare,
// keys never logged; only /health, /metrics and /load answer without one, so not
// even the route table can be probed), validates every field, tokenizes,
// submits to the engine and turns deltas into responses. GET routes answer
// HEAD; a 405 names the allowed methods. A client that disconnects has its
// request cancelled.
//
// Borrows the EngineLoop and shares the Tokenizer; holds no per-request state
// (that lives in each connection's coroutine). Thread-safe: handle() runs
// concurrently on many strands.
#pragma once

#include <atomic>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "chat/tool_call_parser.h"
#include "scheduler/engine_loop.h"
#include "server/access_log.h"
#include "server/api_routes.h"
#include "server/grammar_compiler.h"
#include "server/http_server.h"
#include "server/openai_protocol.h"
#include "structured/grammar_cache.h"
#include "tokenizer/tokenizer.h"

namespace pagoda {

struct ServedModel {
  std::string name;           // the id clients use in "model"
  int64_t max_model_len = 0;  // prompt + output tokens
  int32_t vocab_size = 0;
  int64_t hidden_size = 0;  // floats per embedding (the model's dim)
};

// One prompt of a response, tokenized, and its text when echo asks for it.
struct ResponsePrompt {
  std::vector<int32_t> ids;
  std::string echo;
};

// What one choice of a non-streamed response gathered.
struct ChoiceResult {
  std::string text;  // echo first, when asked for
  std::vector<TokenLogprob> logprobs;
  std::vector<TokenLogprob> prompt_logprobs;  // prompt tokens 1.., when asked for
  RequestDelta last;                          // its final delta (finish reason, usage)
};

class ApiService final : public HttpHandler {
 public:
  ApiService(const ServerConfig& config, ServedModel model, EngineLoop* engine,
             std::shared_ptr<const Tokenizer> tokenizer, std::vector<std::string> api_keys);

  std::optional<HttpReply> check_header(const HttpRequest& req) const override;
  boost::asio::awaitable<bool> handle(HttpRequest& req, boost::beast::tcp_stream& stream) override;

  // Until set, /health answers 503 ("loading").
  void set_ready(bool ready) { ready_ = ready; }
  // Waits for the grammar compilations under way (GrammarCompiler::stop):
  // call after the I/O threads ended, before their io_context is destroyed.
  void stop();
  void set_connection_counter(std::function<int64_t()> fn) { connections_ = std::move(fn); }

 private:
  // The checks a header alone decides (key, route, method), in that order.
  std::optional<HttpReply> refuse_header(const HttpRequest& req, const RouteMatch& match) const;
  // Answers every route but generation synchronously; sets *generate for
  // the two generation routes. (Keeping the coroutines small also keeps
  // GCC 12 away from its coroutine bugs with temporaries.)
  HttpReply route(const HttpRequest& req, bool* generate, ApiKind* kind);
  HttpReply tokenize_route(const HttpRequest& req, bool tokenize) const;
  // Parses, checks the model name, builds the prompt and resolves max_tokens
  // (build_prompt); an exception on the way is a 500, never a dropped
  // connection.
  bool prepare(const HttpRequest& req, ApiKind kind, ApiRequest* api, std::vector<ResponsePrompt>* prompts,
               ApiError* err) const;
  bool build_prompt(const HttpRequest& req, ApiKind kind, ApiRequest* api, std::vector<ResponsePrompt>* prompts,
                    ApiError* err) const;
  // One warning line naming the unknown fields a request sent.
  void warn_ignored_fields(const HttpRequest& req, const std::vector<std::string>& fields) const;
  // POST /v1/embeddings: one prefill-only request per input, pooled.
  boost::asio::awaitable<bool> embed(HttpRequest& req, boost::beast::tcp_stream& stream, AccessRecord* access);
  // Both fill *access (status, id, tokens, finish reason) as they go.
  boost::asio::awaitable<bool> generate(HttpRequest& req, boost::beast::tcp_stream& stream, ApiKind kind,
                                        AccessRecord* access);
  boost::asio::awaitable<bool> stream_response(HttpRequest& req, boost::beast::tcp_stream& stream,
                                               const ApiRequest& api, const std::vector<ResponsePrompt>& prompts,
                                               class ChoiceFanout& fanout, std::shared_ptr<class DeltaChannel> channel,
                                               AccessRecord* access);
  // One element of a non-streamed response's "choices" (its text starts
  // with `prompt`'s echo, when asked for).
  nlohmann::json choice_json(const ApiRequest& api, int index, const ChoiceResult& result,
                             const ResponsePrompt& prompt) const;
  // The prompt logprobs asked for, in the fields of `choice`: completions'
  // echoed logprobs (the generated ones, when present, are appended after)
  // and vLLM's prompt_logprobs.
  void add_prompt_logprobs(const ApiRequest& api, const ResponsePrompt& prompt,
                           const std::vector<TokenLogprob>& prompt_logprobs, nlohmann::json& choice) const;
  bool authorized(const HttpRequest& req) const;
  // "ok", "draining" (after SIGTERM) or "loading": what /health and /load say.
  const char* serving_state() const;
  // Writes a whole reply to `req`, with X-Pagoda-Replica (server.replica_id)
  // and the idle timeout as its deadline; true when it was written.
  boost::asio::awaitable<bool> send(boost::beast::tcp_stream& stream, const HttpRequest& req, HttpReply reply) const;
  // Writes the error's reply; true when the connection may carry another request.
  boost::asio::awaitable<bool> send_error(boost::beast::tcp_stream& stream, const HttpRequest& req,
                                          const ApiError& e) const;
  std::string token_text(int32_t id) const;
  // A token as logprobs name it: its text, or "token_id:<id>" with vLLM's
  // return_tokens_as_token_ids.
  std::string logprob_token(const ApiRequest& api, int32_t id) const;
  std::string response_id(ApiKind kind, RequestId id) const;

  ServerConfig config_;
  ServedModel model_;
  EngineLoop* engine_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::vector<std::string> api_keys_;
  // Compiled structured-output grammars by spec, for this tokenizer (thread-safe).
  std::unique_ptr<structured::GrammarCache> grammars_;
  static constexpr size_t kGrammarCacheEntries = 64;
  // Compiles them off the I/O threads (declared after the cache it uses).
  std::unique_ptr<GrammarCompiler> grammar_compiler_;
  ChatTemplate chat_template_;
  // How a reply's tool calls are written: server.tool_call_parser, or for
  // auto the format the model's chat template names.
  ToolCallFormat tool_call_format_ = ToolCallFormat::kJson;
  Pooling pooling_ = Pooling::kLast;  // model.pooling, for /v1/embeddings
  ApiLimits limits_;
  const int64_t started_at_ = static_cast<int64_t>(std::time(nullptr));  // /v1/models' "created"
  std::atomic<bool> ready_{false};
  std::atomic<uint64_t> next_id_{1};
  std::function<int64_t()> connections_;
};

// Reads the keys of server.api_keys / server.api_key_file (one per line,
// blank lines and #comments skipped).
Result<std::vector<std::string>> load_api_keys(const ServerConfig& config);

}  // namespace pagoda
