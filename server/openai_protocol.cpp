#include "server/openai_protocol.h"

#include "common/json_nesting.h"
#include "server/structured_request.h"
#include "server/tool_request.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

namespace pagoda {

using nlohmann::json;

json finish_reason_json(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    default:
      return nullptr;
  }
}

namespace {

constexpr size_t kMaxBodyNesting = 600;

// Collects the first error; every check returns false once one is set.
class Checker {
 public:
  Checker(const json& body, ApiError* err) : body_(body), err_(err) {}

  bool fail(const std::string& param, const std::string& message) {
    err_->status = 400;
    err_->param = param;
    err_->message = message;
    err_->code = "invalid_value";
    return false;
  }
  bool has(const char* key) const { return body_.contains(key) && !body_[key].is_null(); }

  bool number(const char* key, double lo, double hi, double* out) {
    if (!has(key)) return true;
    const json& v = body_[key];
    if (!v.is_number()) return fail(key, std::string("'") + key + "' must be a number");
    const double d = v.get<double>();
    if (!std::isfinite(d) || d < lo || d > hi)
      return fail(key,
                  std::string("'") + key + "' must be between " + fmt(lo) + " and " + fmt(hi) + ", got " + v.dump());
    *out = d;
    return true;
  }
  bool number(const char* key, double lo, double hi, float* out) {
    double d = *out;
    if (!number(key, lo, hi, &d)) return false;
    *out = static_cast<float>(d);
    return true;
  }
  bool integer(const char* key, int64_t lo, int64_t hi, int64_t* out) {
    if (!has(key)) return true;
    const json& v = body_[key];
    if (!v.is_number_integer() &&
        !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() && std::fabs(v.get<double>()) < 9e15))
      return fail(key, std::string("'") + key + "' must be an integer");
    const int64_t i = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)
                          ? INT64_MAX
                          : (v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>()));
    if (i < lo || i > hi)
      return fail(key, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " +
                           std::to_string(hi) + ", got " + v.dump());
    *out = i;
    return true;
  }
  bool boolean(const char* key, bool* out) {
    if (!has(key)) return true;
    if (!body_[key].is_boolean()) return fail(key, std::string("'") + key + "' must be true or false");
    *out = body_[key].get<bool>();
    return true;
  }
  bool string(const char* key, size_t max_len, std::string* out) {
    if (!has(key)) return true;
    if (!body_[key].is_string()) return fail(key, std::string("'") + key + "' must be a string");
    *out = body_[key].get<std::string>();
    if (out->size() > max_len)
      return fail(key, std::string("'") + key + "' is longer than " + std::to_string(max_len) + " bytes");
    return true;
  }

 private:
  static std::string fmt(double d) {
    std::ostringstream os;
    os << d;
    return os.str();
  }
  const json& body_;
  ApiError* err_;
};

const std::set<std::string>& completion_fields() {
  static const std::set<std::string> f = {"model",
                                          "prompt",
                                          "max_tokens",
                                          "temperature",
                                          "top_p",
                                          "top_k",
                                          "min_p",
                                          "seed",
                                          "stop",
                                          "stop_token_ids",
                                          "logprobs",
                                          "echo",
                                          "n",
                                          "best_of",
                                          "stream",
                                          "stream_options",
                                          "presence_penalty",
                                          "frequency_penalty",
                                          "repetition_penalty",
                                          "ignore_eos",
                                          "min_tokens",
                                          "priority",
                                          "cache_salt",
                                          "user",
                                          "logit_bias",
                                          "prompt_logprobs",
                                          "return_tokens_as_token_ids",
                                          "suffix"};
  return f;
}

const std::set<std::string>& chat_fields() {
  static const std::set<std::string> f = {"model",
                                          "messages",
                                          "max_tokens",
                                          "max_completion_tokens",
                                          "temperature",
                                          "top_p",
                                          "top_k",
                                          "min_p",
                                          "seed",
                                          "stop",
                                          "stop_token_ids",
                                          "logprobs",
                                          "top_logprobs",
                                          "n",
                                          "stream",
                                          "stream_options",
                                          "presence_penalty",
                                          "frequency_penalty",
                                          "repetition_penalty",
                                          "ignore_eos",
                                          "min_tokens",
                                          "priority",
                                          "cache_salt",
                                          "user",
                                          "logit_bias",
                                          "prompt_logprobs",
                                          "return_tokens_as_token_ids"};
  return f;
}

constexpr const char* kPromptShapes =
    "'prompt' must be a string, an array of token ids, or an array of strings or of token-id arrays";

// One prompt of a batch (or the only one): a string or token ids. `name`
// says which in the errors ('prompt', or 'prompt[i]' in a batch).
bool parse_one_prompt(const json& p, Checker& c, const ApiLimits& lim, const std::string& name, CompletionPrompt* out) {
  if (p.is_string()) {
    out->text = p.get<std::string>();
    if (out->text->empty()) return c.fail("prompt", name + " must not be empty");
    return true;
  }
  if (!p.is_array()) return c.fail("prompt", kPromptShapes);
  if (p.empty()) return c.fail("prompt", name + " must not be empty");
  if (static_cast<int64_t>(p.size()) > lim.max_prompt_ids)
    return c.fail("prompt", name + " has more than " + std::to_string(lim.max_prompt_ids) + " token ids");
  for (const json& t : p) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
      return c.fail("prompt", name + " as an array must hold non-negative integer token ids");
    out->ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return true;
}

// `prompt`: a string, token ids, or a batch: an array of strings or of
// token-id arrays.
bool parse_prompt(const json& body, Checker& c, const ApiLimits& lim, ApiRequest* out) {
  if (!body.contains("prompt") || body["prompt"].is_null()) return c.fail("prompt", "'prompt' is required");
  const json& p = body["prompt"];
  const bool batch = p.is_array() && !p.empty() && (p[0].is_string() || p[0].is_array());
  if (!batch) {
    out->prompts.emplace_back();
    return parse_one_prompt(p, c, lim, "'prompt'", &out->prompts.back());
  }
  if (static_cast<int64_t>(p.size()) > lim.max_prompts)
    return c.fail("prompt", "a batch of " + std::to_string(p.size()) + " prompts is over the limit of " +
                                std::to_string(lim.max_prompts));
  int64_t total_ids = 0;
  for (const json& one : p) {
    out->prompts.emplace_back();
    const std::string name = "'prompt[" + std::to_string(out->prompts.size() - 1) + "]'";
    if (!parse_one_prompt(one, c, lim, name, &out->prompts.back())) return false;
    total_ids += static_cast<int64_t>(out->prompts.back().ids.size());
    if (total_ids > lim.max_prompt_ids)
      return c.fail("prompt", "the batch has more than " + std::to_string(lim.max_prompt_ids) + " token ids");
  }
  return true;
}

// An assistant turn's `tool_calls` and a tool message's `tool_call_id`
// (and the optional `name` of either).
bool parse_tool_fields(const json& m, const std::string& where, Checker& c, ChatMessage* out) {
  if (m.contains("name") && !m["name"].is_null()) {
    if (!m["name"].is_string()) return c.fail(where + ".name", where + ".name must be a string");
    out->name = m["name"].get<std::string>();
  }
  if (out->role == "tool") {
    if (!m.contains("tool_call_id") || !m["tool_call_id"].is_string())
      return c.fail(where + ".tool_call_id",
                    where + ".tool_call_id is required in a tool message: the id of the call it answers");
    out->tool_call_id = m["tool_call_id"].get<std::string>();
  }
  if (!m.contains("tool_calls") || m["tool_calls"].is_null()) {
    if (out->content_null) return c.fail(where + ".content", where + ".content may be null only with 'tool_calls'");
    return true;
  }
  const std::string field = where + ".tool_calls";
  if (out->role != "assistant") return c.fail(field, "only assistant messages have 'tool_calls'");
  const json& calls = m["tool_calls"];
  if (!calls.is_array()) return c.fail(field, field + " must be an array");
  for (size_t k = 0; k < calls.size(); ++k) {
    const json& call = calls[k];
    const std::string at = field + "[" + std::to_string(k) + "]";
    if (!call.is_object() || !call.contains("function") || !call["function"].is_object())
      return c.fail(at, at + " must be {\"id\", \"type\": \"function\", \"function\": {\"name\", \"arguments\"}}");
    if (call.contains("type") && call["type"] != "function")
      return c.fail(at + ".type", at + ".type must be \"function\"");
    const json& f = call["function"];
    if (!f.contains("name") || !f["name"].is_string())
      return c.fail(at + ".function.name", at + ".function.name must be a string");
    ChatToolCall parsed;
    parsed.name = f["name"].get<std::string>();
    if (call.contains("id") && call["id"].is_string()) parsed.id = call["id"].get<std::string>();
    if (!f.contains("arguments") || f["arguments"].is_null()) parsed.arguments = "{}";
    else if (f["arguments"].is_string()) parsed.arguments = f["arguments"].get<std::string>();
    else if (f["arguments"].is_object()) parsed.arguments = f["arguments"].dump();
    else return c.fail(at + ".function.arguments", at + ".function.arguments must be a JSON string");
    out->tool_calls.push_back(std::move(parsed));
  }
  return true;
}

bool parse_messages(const json& body, Checker& c, const ApiLimits& lim, ApiRequest* out) {
  if (!body.contains("messages") || !body["messages"].is_array())
    return c.fail("messages", "'messages' is required: an array of {role, content} objects");
  const json& ms = body["messages"];
  if (ms.empty()) return c.fail("messages", "'messages' must not be empty");
  if (static_cast<int>(ms.size()) > lim.max_messages)
    return c.fail("messages", "'messages' has more than " + std::to_string(lim.max_messages) + " entries");
  for (size_t i = 0; i < ms.size(); ++i) {
    const json& m = ms[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return c.fail(where, where + " must be an object with 'role' and 'content'");
    if (!m.contains("role") || !m["role"].is_string())
      return c.fail(where + ".role", where + ".role must be one of system, developer, user, assistant, tool");
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "developer" && role != "tool")
      return c.fail(where + ".role",
                    where + ".role must be one of system, developer, user, assistant, tool (got '" + role + "')");
    ChatMessage message;
    message.role = role == "developer" ? "system" : role;
    if (m.contains("content") && m["content"].is_string()) {
      message.content = m["content"].get<std::string>();
    } else if (m.contains("content") && m["content"].is_array()) {
      // Content parts: only text parts are supported.
      for (const json& part : m["content"]) {
        const bool text_part = part.is_object() && part.contains("type") && part["type"].is_string() &&
                               part["type"].get<std::string>() == "text" && part.contains("text") &&
                               part["text"].is_string();
        if (!text_part)
          return c.fail(where + ".content", where + ".content parts must be {\"type\": \"text\", \"text\": ...}");
        message.content += part["text"].get<std::string>();
      }
    } else if (role == "assistant" && (!m.contains("content") || m["content"].is_null())) {
      message.content_null = true;  // an assistant turn that only calls tools
    } else {
      return c.fail(where + ".content", where + ".content must be a string");
    }
    if (!parse_tool_fields(m, where, c, &message)) return false;
    out->messages.push_back(std::move(message));
  }
  return true;
}

bool parse_stop(const json& body, Checker& c, const ApiLimits& lim, ApiRequest* out) {
  if (c.has("stop")) {
    const json& s = body["stop"];
    std::vector<std::string> stops;
    if (s.is_string()) {
      stops.push_back(s.get<std::string>());
    } else if (s.is_array()) {
      if (static_cast<int>(s.size()) > lim.max_stop_strings)
        return c.fail("stop", "'stop' may hold at most " + std::to_string(lim.max_stop_strings) + " strings");
      for (const json& x : s) {
        if (!x.is_string()) return c.fail("stop", "'stop' must be a string or an array of strings");
        stops.push_back(x.get<std::string>());
      }
    } else {
      return c.fail("stop", "'stop' must be a string or an array of strings");
    }
    for (const std::string& x : stops) {
      if (x.empty()) return c.fail("stop", "'stop' strings must not be empty");
      if (static_cast<int>(x.size()) > lim.max_stop_string_bytes)
        return c.fail("stop", "'stop' strings may be at most " + std::to_string(lim.max_stop_string_bytes) + " bytes");
    }
    out->stop.stop = std::move(stops);
  }
  if (c.has("stop_token_ids")) {
    const json& s = body["stop_token_ids"];
    if (!s.is_array() || static_cast<int>(s.size()) > lim.max_stop_strings)
      return c.fail("stop_token_ids", "'stop_token_ids' must be an array of at most " +
                                          std::to_string(lim.max_stop_strings) + " token ids");
    for (const json& t : s) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
        return c.fail("stop_token_ids", "'stop_token_ids' must hold non-negative integer token ids");
      out->stop.stop_token_ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
  }
  return true;
}

bool parse_logit_bias(const json& body, Checker& c, const ApiLimits& lim, ApiRequest* out) {
  if (!c.has("logit_bias")) return true;
  const json& b = body["logit_bias"];
  if (!b.is_object()) return c.fail("logit_bias", "'logit_bias' must be an object mapping token ids to numbers");
  if (static_cast<int>(b.size()) > lim.max_logit_bias)
    return c.fail("logit_bias", "'logit_bias' may hold at most " + std::to_string(lim.max_logit_bias) + " entries");
  for (const auto& [k, v] : b.items()) {
    // Digits only: strtol alone would also take " 1" and "+3".
    const bool digits =
        !k.empty() && k.size() <= 10 && std::all_of(k.begin(), k.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    const long long id = digits ? std::stoll(k) : -1;
    if (!digits || id > INT32_MAX)
      return c.fail("logit_bias", "'logit_bias' keys must be token ids (decimal digits), got '" + k + "'");
    if (!v.is_number() || v.get<double>() < -100 || v.get<double>() > 100)
      return c.fail("logit_bias", "'logit_bias' values must be numbers between -100 and 100");
    out->sampling.logit_bias[static_cast<int32_t>(id)] = v.get<float>();
  }
  return true;
}

}  // namespace

namespace {

bool parse_request_fields(const std::string& body_text, ApiKind kind, const ApiLimits& lim, ApiRequest* out,
                          ApiError* err) {
  *out = ApiRequest{};
  out->kind = kind;
  json body = json::parse(body_text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    err->status = 400;
    err->message = "the request body is not valid JSON (or not valid UTF-8)";
    err->code = "invalid_json";
    return false;
  }
  if (!body.is_object()) {
    err->status = 400;
    err->message = "the request body must be a JSON object";
    err->code = "invalid_json";
    return false;
  }
  Checker c(body, err);
  // Copying, dumping and rendering recurse over the body: bound its depth
  // (a schema may nest 512 levels below response_format's 3).
  if (json_nesting_exceeds(body, kMaxBodyNesting))
    return c.fail("", "the request body is nested more than " + std::to_string(kMaxBodyNesting) + " levels deep");
  const auto& known = kind == ApiKind::kChat ? chat_fields() : completion_fields();
  bool structured = false;
  bool tools = false;
  for (const auto& item : body.items()) {
    if (structured_request_fields().count(item.key())) {
      structured = true;
    } else if (kind == ApiKind::kChat && tool_request_fields().count(item.key())) {
      tools = true;
    } else if (!known.count(item.key())) {
      // Accepted and ignored, as vLLM does: SDKs send fields such as
      // `store` or `metadata` that change nothing here.
      out->ignored_fields.push_back(item.key().substr(0, 64));
    }
  }
  if (structured || tools) {
    // Parsed again keeping key order: a schema's property order is the
    // output's, and a template prints tools as they were sent.
    const auto ordered = nlohmann::ordered_json::parse(body_text);
    if (structured) {
      auto spec = parse_structured_request(ordered, &out->grammar_field);
      if (!spec) return c.fail(spec.status().field(), spec.status().message());
      out->grammar = std::move(spec).value();
    }
    if (tools) {
      auto request = parse_tool_request(ordered);
      if (!request) return c.fail(request.status().field(), request.status().message());
      out->tools = std::move(request).value();
      const bool forced =
          out->tools && (out->tools->choice == ToolChoice::kRequired || out->tools->choice == ToolChoice::kNamed);
      if (forced && out->grammar)
        return c.fail("tool_choice", "a required or named 'tool_choice' cannot be combined with '" +
                                         out->grammar_field + "': the call's arguments follow the function's schema");
    }
  }

  if (!c.string("model", 256, &out->model)) return false;
  if (kind == ApiKind::kCompletion ? !parse_prompt(body, c, lim, out) : !parse_messages(body, c, lim, out))
    return false;

  // Lengths. Completions default to 16 tokens (as OpenAI); chat to the rest
  // of the context (-1, resolved once the prompt length is known).
  out->stop.max_tokens = kind == ApiKind::kCompletion ? 16 : -1;
  // Chat takes max_completion_tokens (OpenAI's newer name) over max_tokens;
  // both are validated when both are sent.
  // 0 only scores the prompt: checked below, once echo and logprobs are known.
  if (!c.integer("max_tokens", 0, lim.max_model_len, &out->stop.max_tokens)) return false;
  if (kind == ApiKind::kChat && !c.integer("max_completion_tokens", 0, lim.max_model_len, &out->stop.max_tokens))
    return false;
  if (!c.integer("min_tokens", 0, lim.max_model_len, &out->stop.min_tokens)) return false;
  if (out->stop.max_tokens > 0 && out->stop.min_tokens > out->stop.max_tokens)
    return c.fail("min_tokens", "'min_tokens' must not exceed 'max_tokens'");
  if (!c.boolean("ignore_eos", &out->stop.ignore_eos)) return false;
  if (!parse_stop(body, c, lim, out)) return false;

  SamplingParams& s = out->sampling;
  if (!c.number("temperature", 0, 2, &s.temperature)) return false;
  if (!c.number("top_p", 1e-9, 1, &s.top_p)) return false;
  int64_t top_k = 0;
  if (!c.integer("top_k", -1, 1 << 20, &top_k)) return false;
  s.top_k = static_cast<int32_t>(top_k);
  if (!c.number("min_p", 0, 1, &s.min_p)) return false;
  if (!c.number("presence_penalty", -2, 2, &s.presence_penalty)) return false;
  if (!c.number("frequency_penalty", -2, 2, &s.frequency_penalty)) return false;
  if (!c.number("repetition_penalty", 0.01, 10, &s.repetition_penalty)) return false;
  if (c.has("seed")) {
    int64_t seed = 0;
    if (!c.integer("seed", INT64_MIN, INT64_MAX, &seed)) return false;
    s.seed = static_cast<uint64_t>(seed);
  }
  if (!parse_logit_bias(body, c, lim, out)) return false;

  if (kind == ApiKind::kCompletion) {
    // logprobs: 0 still returns each chosen token's logprob.
    int64_t lp = -1;
    if (!c.integer("logprobs", 0, SamplingParams::kMaxLogprobs, &lp)) return false;
    s.logprobs = static_cast<int32_t>(lp);
    if (!c.boolean("echo", &out->echo)) return false;
    int64_t best_of = 1;
    if (!c.integer("best_of", 1, 1, &best_of)) return false;
    if (c.has("suffix")) return c.fail("suffix", "'suffix' is not supported");
  } else {
    bool want = false;
    int64_t top = 0;
    if (!c.boolean("logprobs", &want)) return false;
    if (!c.integer("top_logprobs", 0, SamplingParams::kMaxLogprobs, &top)) return false;
    if (top > 0 && !want) return c.fail("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    // Chat asks for logprobs as a flag; without top_logprobs each token's
    // top_logprobs list is empty, as OpenAI's is.
    s.logprobs = want ? static_cast<int32_t>(top) : -1;
  }
  int64_t n = 1;
  if (!c.integer("n", 1, lim.max_choices, &n)) return false;
  out->n = static_cast<int>(n);
  if (static_cast<int64_t>(out->prompts.size()) * n > lim.max_prompts)
    return c.fail("n", "a batch of " + std::to_string(out->prompts.size()) + " prompts with n = " + std::to_string(n) +
                           " asks for " + std::to_string(static_cast<int64_t>(out->prompts.size()) * n) +
                           " choices, over the limit of " + std::to_string(lim.max_prompts));
  if (!c.boolean("stream", &out->stream)) return false;
  if (c.has("stream_options")) {
    const json& so = body["stream_options"];
    if (!so.is_object()) return c.fail("stream_options", "'stream_options' must be an object");
    for (const auto& item : so.items())
      if (item.key() != "include_usage" && item.key() != "continuous_usage_stats")
        return c.fail("stream_options." + item.key(), "unknown field 'stream_options." + item.key() + "'");
    if (so.contains("include_usage")) {
      if (!so["include_usage"].is_boolean())
        return c.fail("stream_options.include_usage", "'stream_options.include_usage' must be true or false");
      out->include_usage = so["include_usage"].get<bool>();
    }
    if (so.contains("continuous_usage_stats")) {
      if (!so["continuous_usage_stats"].is_boolean())
        return c.fail("stream_options.continuous_usage_stats",
                      "'stream_options.continuous_usage_stats' must be true or false");
      out->continuous_usage = so["continuous_usage_stats"].get<bool>() && out->include_usage;
    }
    if (!out->stream) return c.fail("stream_options", "'stream_options' is only allowed with 'stream': true");
  }
  // Prompt logprobs: vLLM's prompt_logprobs (both routes), or the legacy
  // echo with logprobs (completions); the larger top-k serves both.
  int64_t plp = -1;
  if (!c.integer("prompt_logprobs", 0, SamplingParams::kMaxLogprobs, &plp)) return false;
  out->prompt_logprobs = static_cast<int32_t>(plp);
  if (!c.boolean("return_tokens_as_token_ids", &out->tokens_as_ids)) return false;
  out->echo_logprobs = kind == ApiKind::kCompletion && out->echo && s.logprobs >= 0;
  if (out->echo_logprobs) out->engine_prompt_logprobs = std::max<int32_t>(out->prompt_logprobs, s.logprobs);
  else out->engine_prompt_logprobs = out->prompt_logprobs;
  if (out->stop.max_tokens == 0 && out->engine_prompt_logprobs < 0) {
    const char* field =
        kind == ApiKind::kChat && c.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    return c.fail(field, std::string("'") + field +
                             "' must be at least 1 (0 only scores the prompt: with 'echo' and 'logprobs', or "
                             "'prompt_logprobs')");
  }
  int64_t prio = 0;
  if (!c.integer("priority", -1000000, 1000000, &prio)) return false;
  out->priority = static_cast<int>(prio);
  if (!c.string("cache_salt", 1024, &out->cache_salt)) return false;
  if (!c.string("user", 1024, &out->user)) return false;
  return true;
}

}  // namespace

bool parse_api_request(const std::string& body_text, ApiKind kind, const ApiLimits& lim, ApiRequest* out,
                       ApiError* err) {
  // Every field is type-checked before it is read; should a check be missed,
  // the JSON library's exception still ends here as a 400, never as a
  // dropped connection.
  try {
    return parse_request_fields(body_text, kind, lim, out, err);
  } catch (const nlohmann::json::exception& e) {
    *err = api_error(400, std::string("the request body holds a value of the wrong type (") + e.what() + ")",
                     "invalid_value");
    return false;
  }
}

}  // namespace pagoda
