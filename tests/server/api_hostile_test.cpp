// A table of malformed and hostile requests against the real server: each
// gets its expected status and names the offending field; afterwards the
// server still answers normally and holds no KV pages. Also: API keys, a
// full queue, and a huge grammar compiling without stalling other clients.
#include <algorithm>
#include <atomic>
#include <thread>

#include "tests/server/server_process.h"

using namespace pagoda::testing;
using nlohmann::json;

namespace {

// {"a":{"a":...1...}} nested `depth` levels.
std::string nested_object(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += R"({"a":)";
  s += "1";
  s += std::string(static_cast<size_t>(depth), '}');
  return s;
}

struct Hostile {
  const char* name;
  std::string target;
  std::string body;
  int status;
  const char* param;  // expected error.param ("" = not checked)
};

std::string many_stops(int n) {
  json stops = json::array();
  for (int i = 0; i < n; ++i) stops.push_back("s" + std::to_string(i));
  return json{{"prompt", "hi"}, {"stop", stops}}.dump();
}

std::string long_ids(int n) {
  json ids = json::array();
  for (int i = 0; i < n; ++i) ids.push_back(5);
  return json{{"prompt", ids}, {"max_tokens", 4}}.dump();
}

}  // namespace

TEST_CASE("server: malformed and hostile requests get named 4xx errors and the server keeps serving") {
  ServerProcess server(18611, {"--set", "server.max_body_bytes=65536"});
  const int port = server.port();
  const std::string C = "/v1/completions", CH = "/v1/chat/completions";
  const std::vector<Hostile> table = {
      {"bad JSON", C, "{\"prompt\": ", 400, ""},
      {"body not an object", C, "[1,2]", 400, ""},
      {"missing prompt", C, R"({"max_tokens": 5})", 400, "prompt"},
      {"prompt is a number", C, R"({"prompt": 42})", 400, "prompt"},
      {"empty prompt", C, R"({"prompt": ""})", 400, "prompt"},
      {"negative max_tokens", C, R"({"prompt": "hi", "max_tokens": -5})", 400, "max_tokens"},
      {"zero max_tokens", C, R"({"prompt": "hi", "max_tokens": 0})", 400, "max_tokens"},
      {"huge max_tokens", C, R"({"prompt": "hi", "max_tokens": 1000000000000})", 400, "max_tokens"},
      {"max_tokens as string", C, R"({"prompt": "hi", "max_tokens": "10"})", 400, "max_tokens"},
      {"negative temperature", C, R"({"prompt": "hi", "temperature": -1})", 400, "temperature"},
      {"temperature too high", C, R"({"prompt": "hi", "temperature": 7})", 400, "temperature"},
      {"top_p zero", C, R"({"prompt": "hi", "top_p": 0})", 400, "top_p"},
      {"top_p above one", C, R"({"prompt": "hi", "top_p": 1.5})", 400, "top_p"},
      {"top_k below -1", C, R"({"prompt": "hi", "top_k": -5})", 400, "top_k"},
      {"min_p above one", C, R"({"prompt": "hi", "min_p": 2})", 400, "min_p"},
      {"presence_penalty out of range", C, R"({"prompt": "hi", "presence_penalty": 5})", 400, "presence_penalty"},
      {"repetition_penalty zero", C, R"({"prompt": "hi", "repetition_penalty": 0})", 400, "repetition_penalty"},
      {"tools nested 5,000 deep", CH,
       R"({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": )" +
           nested_object(5000) + "}}]}",
       400, ""},
      {"deprecated functions", CH, R"({"messages": [{"role": "user", "content": "hi"}], "functions": [{"name": "f"}]})",
       400, "functions"},
      {"n = 17", C, R"({"prompt": "hi", "n": 17})", 400, "n"},
      {"stream not a bool", C, R"({"prompt": "hi", "stream": "yes"})", 400, "stream"},
      {"stream_options without stream", C, R"({"prompt": "hi", "stream_options": {"include_usage": true}})", 400,
       "stream_options"},
      {"thousands of stop strings", C, many_stops(5000), 400, "stop"},
      {"stop not a string", C, R"({"prompt": "hi", "stop": [1, 2]})", 400, "stop"},
      {"empty stop string", C, R"({"prompt": "hi", "stop": [""]})", 400, "stop"},
      {"logprobs too many", C, R"({"prompt": "hi", "logprobs": 50})", 400, "logprobs"},
      {"logit_bias bad key", C, R"({"prompt": "hi", "logit_bias": {"abc": 1}})", 400, "logit_bias"},
      {"logit_bias id outside vocab", C, R"({"prompt": "hi", "logit_bias": {"99999": 1}})", 400, "logit_bias"},
      {"seed as string", C, R"({"prompt": "hi", "seed": "x"})", 400, "seed"},
      {"min_tokens above max_tokens", C, R"({"prompt": "hi", "max_tokens": 3, "min_tokens": 9})", 400, "min_tokens"},
      {"prompt longer than the model", C, long_ids(600), 400, "prompt"},
      {"prompt plus max_tokens beyond the model", C, R"({"prompt": "hi", "max_tokens": 511})", 400, "max_tokens"},
      {"prompt token id outside vocab", C, R"({"prompt": [1, 99999]})", 400, "prompt"},
      {"stop_token_ids outside vocab", C, R"({"prompt": "hi", "stop_token_ids": [100000]})", 400, "stop_token_ids"},
      {"unknown model", C, R"({"prompt": "hi", "model": "gpt-4"})", 404, "model"},
      {"invalid UTF-8", C, std::string("{\"prompt\": \"a\xff\xfe b\"}"), 400, ""},
      {"suffix unsupported", C, R"({"prompt": "hi", "suffix": "x"})", 400, "suffix"},
      {"chat without messages", CH, R"({"max_tokens": 5})", 400, "messages"},
      {"chat empty messages", CH, R"({"messages": []})", 400, "messages"},
      {"chat bad role", CH, R"({"messages": [{"role": "wizard", "content": "hi"}]})", 400, "messages[0].role"},
      {"chat content a number", CH, R"({"messages": [{"role": "user", "content": 5}]})", 400, "messages[0].content"},
      {"chat content part type a number", CH,
       R"({"messages": [{"role": "user", "content": [{"type": 5, "text": "x"}]}]})", 400, "messages[0].content"},
      {"chat content part type null", CH,
       R"({"messages": [{"role": "user", "content": [{"type": null, "text": "x"}]}]})", 400, "messages[0].content"},
      {"chat content part text a number", CH,
       R"({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]})", 400, "messages[0].content"},
      {"chat content part not an object", CH, R"({"messages": [{"role": "user", "content": [5]}]})", 400,
       "messages[0].content"},
      {"chat bad max_tokens beside max_completion_tokens", CH,
       R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -5, "max_completion_tokens": 5})", 400,
       "max_tokens"},
      {"logit_bias key with a space", C, R"({"prompt": "hi", "logit_bias": {" 1": 1}})", 400, "logit_bias"},
      {"logit_bias key with a plus", C, R"({"prompt": "hi", "logit_bias": {"+3": 1}})", 400, "logit_bias"},
      {"chat top_logprobs without logprobs", CH,
       R"({"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2})", 400, "top_logprobs"},
      {"deeply nested JSON", C, std::string(20000, '[') + std::string(20000, ']'), 400, ""},
      {"oversized body", C, json{{"prompt", std::string(100000, 'a')}}.dump(), 413, ""},
      {"unknown route", "/v1/engines", "{}", 404, ""},
      {"tokenize without prompt", "/tokenize", "{}", 400, "prompt"},
      {"detokenize bad ids", "/detokenize", R"({"tokens": [-1]})", 400, "tokens"},
  };
  REQUIRE(table.size() >= 30);
  for (const Hostile& h : table) {
    INFO(h.name);
    HttpResult r = post(port, h.target, h.body);
    CHECK(r.status == h.status);
    const json j = r.json();
    if (h.status != 413) {
      REQUIRE(j.is_object());
      REQUIRE(j.contains("error"));
      CHECK(j["error"]["message"].is_string());
      CHECK(j["error"].contains("type"));
      CHECK(j["error"].contains("code"));
      if (std::string(h.param).size() > 0) CHECK(j["error"]["param"] == h.param);
    }
  }
  // The offending value is reported as sent, not rounded.
  const HttpResult t = post(port, C, R"({"prompt": "hi", "temperature": 2.0000001})");
  CHECK(t.status == 400);
  CHECK(t.json()["error"]["message"].get<std::string>().find("got 2.0000001") != std::string::npos);
  // Wrong methods.
  CHECK(http_request(port, http::verb::get, "/v1/completions").status == 405);
  CHECK(http_request(port, http::verb::post, "/health").status == 405);
  CHECK(http_request(port, http::verb::delete_, "/v1/models").status == 405);
  // Malformed HTTP and oversized headers at the transport level.
  const std::string bad_line = raw_exchange(port, "GARBAGE\r\n\r\n", std::chrono::milliseconds(2000));
  CHECK(bad_line.rfind("HTTP/1.1 400", 0) == 0);
  const std::string big_header =
      raw_exchange(port, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n",
                   std::chrono::milliseconds(2000));
  CHECK(big_header.rfind("HTTP/1.1 431", 0) == 0);

  // Still serving, and nothing leaked.
  HttpResult ok = post(port, C, R"({"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0})");
  CHECK(ok.status == 200);
  CHECK(ok.json()["usage"]["completion_tokens"] == 8);
  CHECK(server.metric("pagoda_kv_pages_in_use") == 0);
  CHECK(server.terminate() == 0);
}

TEST_CASE("server: API keys are required when configured") {
  ServerProcess server(18612, {"--set", "server.api_keys=[sekret-1, sekret-2]"});
  const int port = server.port();
  const std::string body = R"({"prompt": "Once", "max_tokens": 2})";
  HttpResult none = post(port, "/v1/completions", body);
  CHECK(none.status == 401);
  CHECK(none.json()["error"]["type"] == "authentication_error");
  CHECK(post(port, "/v1/completions", body, {{"Authorization", "Bearer wrong"}}).status == 401);
  CHECK(post(port, "/v1/completions", body, {{"Authorization", "Bearer sekret-1x"}}).status == 401);
  CHECK(post(port, "/v1/completions", body, {{"Authorization", "sekret-1"}}).status == 401);
  CHECK(post(port, "/v1/completions", body, {{"Authorization", "Bearer sekret-2"}}).status == 200);
  CHECK(http_request(port, http::verb::get, "/health").status == 200);  // health stays open
  CHECK(server.terminate() == 0);
}

TEST_CASE("server: a full queue answers 429 with Retry-After") {
  ServerProcess server(18613, {"--set", "scheduler.max_queue=0"});
  HttpResult r = post(server.port(), "/v1/completions", R"({"prompt": "Once", "max_tokens": 2})");
  CHECK(r.status == 429);
  CHECK(r.retry_after == "1");
  CHECK(r.json()["error"]["code"] == "queue_full");
  CHECK(server.terminate() == 0);
}

TEST_CASE("server: compiling a huge grammar does not stall other connections") {
  // One I/O thread, and a json_schema that takes a while to compile (an
  // object of 6,000 optional properties with patterns, 0.3 MB: about a
  // second on a Zen 3 class EPYC). Grammars compile on a thread of their
  // own, so while it compiles /health keeps answering at once, and so does a
  // request whose (small) grammar is already cached: compiled on the I/O
  // thread, every probe would wait for it.
  ServerProcess server(18717, {"--set", "server.io_threads=1"});
  const int port = server.port();
  const std::string small =
      R"({"prompt": "Once", "max_tokens": 2, "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}})";
  REQUIRE(post(port, "/v1/completions", small).status == 200);  // compiled and cached
  json properties = json::object();
  for (int i = 0; i < 6000; ++i)  // (not "p" + to_string: GCC 12 warns a false -Wrestrict on it)
    properties[std::string(1, 'p').append(std::to_string(i))] = json{{"type", "string"}, {"pattern", "^[a-z]{3,9}x$"}};
  json format = {{"type", "json_schema"},
                 {"json_schema", {{"name", "wide"}, {"schema", {{"type", "object"}, {"properties", properties}}}}}};
  const std::string body = json{{"prompt", "Once"}, {"max_tokens", 1}, {"response_format", format}}.dump();
  std::atomic<bool> done{false};
  HttpResult slow;
  double slow_ms = 0;
  std::thread client([&] {
    const auto t0 = std::chrono::steady_clock::now();
    slow = post(port, "/v1/completions", body);
    slow_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    done = true;
  });
  double worst_ms = 0;
  int probes = 0;
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // the body sent and parsed
  while (!done && probes < 50) {
    const auto t0 = std::chrono::steady_clock::now();
    if (probes % 2 == 0) {
      CHECK(http_request(port, http::verb::get, "/health").status == 200);
    } else {
      CHECK(post(port, "/v1/completions", small).status == 200);
    }
    worst_ms =
        std::max(worst_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    ++probes;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  client.join();
  INFO("the huge grammar's request took " << slow_ms << " ms; " << probes
                                          << " probes (/health, a cached grammar), the slowest " << worst_ms << " ms");
  INFO(slow.body.substr(0, 300));
  CHECK(slow.status == 200);
  if (slow_ms < 800) WARN("the compile was too quick here to show a stall (" << slow_ms << " ms)");
  CHECK(worst_ms < std::max(200.0, slow_ms / 4));
  CHECK(server.terminate() == 0);
}
