// The OpenAI-compatible wire format: parsing and validating request bodies
// of /v1/completions and /v1/chat/completions into ApiRequest, and building
// the response, stream-chunk and error JSON.
//
// Validation is strict and every rejection names the offending field (`param`)
// and what is allowed; top-level fields a route does not know are accepted
// and listed in ApiRequest::ignored_fields. Limits that protect the server (stop strings, logit
// bias size, logprobs, message count) are in ApiLimits. Free functions, no
// shared state: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/chat_message.h"
#include "engine/sampler/sampler.h"
#include "scheduler/request.h"
#include "server/api_error.h"
#include "server/tool_request.h"
#include "structured/grammar_spec.h"

namespace pagoda {

// The work routes: the two generation routes, and /v1/embeddings (its own
// parser, server/embedding_request.h).
enum class ApiKind { kCompletion, kChat, kEmbedding };

struct ApiLimits {
  int64_t max_model_len = 0;  // the engine's (set by the server; no default here)
  int max_stop_strings = 16;
  int max_stop_string_bytes = 256;
  int max_logit_bias = 1024;
  int max_messages = 1024;
  int max_prompt_ids = 1 << 20;
  int max_choices = 16;  // n
  int max_prompts = 64;  // completions: prompts in one batch; prompts x n too
};

// One prompt of a completions request: text, or token ids.
struct CompletionPrompt {
  std::optional<std::string> text;
  std::vector<int32_t> ids;  // when there is no text
};

struct ApiRequest {
  ApiKind kind = ApiKind::kCompletion;
  std::string model;  // "" = the served model
  // completions: one prompt, or a batch (a choice per prompt, times n)
  std::vector<CompletionPrompt> prompts;
  std::vector<ChatMessage> messages;  // chat
  SamplingParams sampling;
  StopParams stop;
  int n = 1;  // choices per prompt, each its own request sharing the prompt
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage
  bool continuous_usage = false;        // and continuous_usage_stats (vLLM's): usage so far on every chunk
  bool echo = false;                    // completions: prepend the prompt to the text
  int32_t prompt_logprobs = -1;         // vLLM's prompt_logprobs: top-k of each prompt token (-1: not asked)
  bool echo_logprobs = false;           // completions: echo with logprobs, so the prompt tokens' come first
  int32_t engine_prompt_logprobs = -1;  // what the engine computes for both (Request::prompt_logprobs)
  bool tokens_as_ids = false;           // vLLM's return_tokens_as_token_ids: logprobs name "token_id:<id>"
  int priority = 0;
  std::string cache_salt;
  std::string user;
  // Structured output (response_format, guided_*, ...): the grammar the
  // output must follow, and the request field that asked for it.
  std::optional<structured::GrammarSpec> grammar;
  std::string grammar_field;
  // Chat tool calling: the tools offered and tool_choice; nullopt when none.
  std::optional<ToolRequest> tools;
  // Top-level fields the route does not know, accepted and ignored (the
  // service logs them once per request).
  std::vector<std::string> ignored_fields;
};

// Parses a request body; on failure fills `error` (status 400, named param).
bool parse_api_request(const std::string& body, ApiKind kind, const ApiLimits& limits, ApiRequest* out,
                       ApiError* error);

// "stop" | "length" | null for the finish reasons a client may see.
nlohmann::json finish_reason_json(FinishReason reason);

// Logprobs objects: completions' legacy format and chat's "content" list.
// `token_text(id)` gives each token's text.
template <typename TokenText>
nlohmann::json completion_logprobs_json(const std::vector<TokenLogprob>& lps, TokenText token_text,
                                        size_t text_offset) {
  nlohmann::json tokens = nlohmann::json::array(), token_lps = nlohmann::json::array(), tops = nlohmann::json::array(),
                 offsets = nlohmann::json::array();
  for (const TokenLogprob& lp : lps) {
    const std::string t = token_text(lp.token);
    tokens.push_back(t);
    token_lps.push_back(lp.logprob);
    nlohmann::json top = nlohmann::json::object();
    for (const auto& [id, v] : lp.top) top[token_text(id)] = v;
    tops.push_back(top);
    offsets.push_back(text_offset);
    text_offset += t.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

// Completions' legacy logprobs of an echoed prompt (echo with logprobs):
// the first token has null for its logprob and its top; the top lists keep
// `top_n` entries. `lps` scores prompt tokens 1.. (Request::prompt_logprobs);
// `offsets` holds each prompt token's text_offset in the echoed text.
template <typename TokenText>
nlohmann::json completion_prompt_logprobs_json(int32_t first_token, const std::vector<TokenLogprob>& lps,
                                               TokenText token_text, int32_t top_n,
                                               const std::vector<size_t>& offsets) {
  nlohmann::json tokens = nlohmann::json::array(), token_lps = nlohmann::json::array(), tops = nlohmann::json::array(),
                 text_offsets = nlohmann::json::array();
  auto add = [&](int32_t token, nlohmann::json lp, nlohmann::json top) {
    const size_t k = tokens.size();
    tokens.push_back(token_text(token));
    token_lps.push_back(std::move(lp));
    tops.push_back(std::move(top));
    text_offsets.push_back(k < offsets.size() ? offsets[k] : (offsets.empty() ? 0 : offsets.back()));
  };
  add(first_token, nullptr, nullptr);
  for (const TokenLogprob& lp : lps) {
    nlohmann::json top = nlohmann::json::object();
    for (size_t i = 0; i < lp.top.size() && i < static_cast<size_t>(top_n); ++i)
      top[token_text(lp.top[i].first)] = lp.top[i].second;
    add(lp.token, lp.logprob, std::move(top));
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", text_offsets}};
}

// vLLM's prompt_logprobs: null for the first prompt token, then per token
// {"<id>": {"logprob", "rank", "decoded_token"}} for the token itself and
// the top `top_n` (rank 1 = most likely).
template <typename TokenText>
nlohmann::json vllm_prompt_logprobs_json(const std::vector<TokenLogprob>& lps, TokenText token_text, int32_t top_n) {
  nlohmann::json out = nlohmann::json::array({nullptr});
  for (const TokenLogprob& lp : lps) {
    nlohmann::json entry = nlohmann::json::object();
    entry[std::to_string(lp.token)] = {
        {"logprob", lp.logprob}, {"rank", lp.rank}, {"decoded_token", token_text(lp.token)}};
    for (size_t i = 0; i < lp.top.size() && i < static_cast<size_t>(top_n); ++i) {
      const int32_t id = lp.top[i].first;
      if (id == lp.token) continue;
      entry[std::to_string(id)] = {
          {"logprob", lp.top[i].second}, {"rank", static_cast<int64_t>(i) + 1}, {"decoded_token", token_text(id)}};
    }
    out.push_back(std::move(entry));
  }
  return out;
}

template <typename TokenText>
nlohmann::json chat_logprobs_json(const std::vector<TokenLogprob>& lps, TokenText token_text) {
  nlohmann::json content = nlohmann::json::array();
  for (const TokenLogprob& lp : lps) {
    const std::string t = token_text(lp.token);
    nlohmann::json top = nlohmann::json::array();
    for (const auto& [id, v] : lp.top) {
      const std::string tt = token_text(id);
      top.push_back({{"token", tt}, {"logprob", v}, {"bytes", std::vector<uint8_t>(tt.begin(), tt.end())}});
    }
    content.push_back({{"token", t},
                       {"logprob", lp.logprob},
                       {"bytes", std::vector<uint8_t>(t.begin(), t.end())},
                       {"top_logprobs", top}});
  }
  return {{"content", content}};
}

}  // namespace pagoda
