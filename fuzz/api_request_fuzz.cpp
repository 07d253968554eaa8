// Fuzz target: an OpenAI request body -> validated parameters.
// Input: byte 0 picks the route (bit 1: embeddings, else bit 0: chat, else
// completions), the rest is the JSON body. parse_api_request must either reject with a 4xx naming a
// message, or accept a request whose every field is within the limits; an
// accepted request's SamplingParams::validate must not crash, and the error
// JSON must serialize. A rejection must come from a field check, not from
// the safety net that catches a JSON type error (a check that was missed).
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "server/embedding_request.h"
#include "server/openai_protocol.h"

using namespace pagoda;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const ApiKind kind = (data[0] & 1) ? ApiKind::kChat : ApiKind::kCompletion;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 2) {  // /v1/embeddings
    EmbeddingLimits lim;
    lim.max_ids = 4096;
    lim.hidden_size = 64;
    lim.max_model_len = 512;
    EmbeddingRequest er;
    std::vector<std::string> ignored;
    ApiError e;
    if (!parse_embedding_request(body, lim, &er, &ignored, &e)) {
      FUZZ_CHECK(e.status >= 400 && e.status < 500 && !e.message.empty());
      return 0;
    }
    FUZZ_CHECK(!er.inputs.empty() && static_cast<int>(er.inputs.size()) <= lim.max_inputs);
    for (const CompletionPrompt& p : er.inputs) {
      FUZZ_CHECK(p.text.has_value() != !p.ids.empty());
      FUZZ_CHECK(static_cast<int64_t>(p.ids.size()) <= lim.max_model_len);
    }
    FUZZ_CHECK(!er.dimensions || (*er.dimensions >= 1 && *er.dimensions <= lim.hidden_size));
    std::vector<float> v(64, 0.125f);
    (void)embedding_item(0, v, er).dump();
    return 0;
  }
  ApiLimits limits;
  limits.max_model_len = 512;
  limits.max_prompt_ids = 4096;
  ApiRequest req;
  ApiError err;
  if (!parse_api_request(body, kind, limits, &req, &err)) {
    FUZZ_CHECK(err.status >= 400 && err.status < 500);
    FUZZ_CHECK(!err.message.empty());
    // The JSON library's exception reached parse_api_request's safety net:
    // a field was read before its type was checked (a 400 in production,
    // but without the field's name).
    FUZZ_CHECK(err.message.rfind("the request body holds a value of the wrong type", 0) != 0);
    (void)error_json(err).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return 0;
  }
  FUZZ_CHECK(req.kind == kind);
  if (kind == ApiKind::kCompletion) {
    FUZZ_CHECK(!req.prompts.empty() && static_cast<int64_t>(req.prompts.size()) * req.n <= limits.max_prompts);
    int64_t ids = 0;
    for (const CompletionPrompt& p : req.prompts) {
      FUZZ_CHECK(p.text.has_value() != !p.ids.empty());
      for (int32_t id : p.ids) FUZZ_CHECK(id >= 0);
      ids += static_cast<int64_t>(p.ids.size());
    }
    FUZZ_CHECK(ids <= limits.max_prompt_ids);
    FUZZ_CHECK(req.stop.max_tokens >= (req.engine_prompt_logprobs >= 0 ? 0 : 1) &&
               req.stop.max_tokens <= limits.max_model_len);
  } else {
    FUZZ_CHECK(!req.messages.empty() && static_cast<int>(req.messages.size()) <= limits.max_messages);
    FUZZ_CHECK(req.stop.max_tokens == -1 || (req.stop.max_tokens >= (req.engine_prompt_logprobs >= 0 ? 0 : 1) &&
                                             req.stop.max_tokens <= limits.max_model_len));
  }
  FUZZ_CHECK(req.stop.min_tokens >= 0 && req.stop.min_tokens <= limits.max_model_len);
  FUZZ_CHECK(req.stop.max_tokens < 0 || req.stop.min_tokens <= req.stop.max_tokens);
  FUZZ_CHECK(static_cast<int>(req.stop.stop.size()) <= limits.max_stop_strings);
  for (const std::string& s : req.stop.stop)
    FUZZ_CHECK(!s.empty() && static_cast<int>(s.size()) <= limits.max_stop_string_bytes);
  FUZZ_CHECK(static_cast<int>(req.stop.stop_token_ids.size()) <= limits.max_stop_strings);
  FUZZ_CHECK(static_cast<int>(req.sampling.logit_bias.size()) <= limits.max_logit_bias);
  FUZZ_CHECK(req.sampling.logprobs >= -1 && req.sampling.logprobs <= SamplingParams::kMaxLogprobs);
  FUZZ_CHECK(!req.include_usage || req.stream);
  // What the engine checks next; any answer is fine, a crash is not.
  (void)req.sampling.validate(512);
  (void)req.sampling.validate(32000);
  return 0;
}
