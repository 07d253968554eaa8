// End-to-end over loopback with stories260K: completion, streaming, chat,
// 16 concurrent streams, cancellation by disconnect (pages freed), prefix
// cache hits, tokenize/detokenize, models, and shutdown while busy.
#include <sched.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <regex>
#include <set>
#include <sstream>

#include "tests/server/server_process.h"

using namespace pagoda::testing;
using nlohmann::json;

namespace {

std::string reference_text() {
  for (const std::string& dir :
       {std::string(PAGODA_SOURCE_DIR) + "/models/", std::string(PAGODA_SOURCE_DIR) + "/../shared/models/"}) {
    std::ifstream in(dir + "stories260K.greedy.txt", std::ios::binary);
    if (!in) continue;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  FAIL("stories260K.greedy.txt not found");
  return "";
}

// Directory holding stories260K.bin and tok512.bin.
std::string models_dir() {
  for (const std::string& dir :
       {std::string(PAGODA_SOURCE_DIR) + "/models/", std::string(PAGODA_SOURCE_DIR) + "/../shared/models/"})
    if (std::ifstream(dir + "stories260K.bin").good()) return dir;
  FAIL("stories260K.bin not found");
  return "";
}

std::string completion_text(int port, const std::string& prompt, int max_tokens) {
  HttpResult r =
      post(port, "/v1/completions", json{{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}}.dump());
  REQUIRE(r.status == 200);
  return r.json()["choices"][0]["text"].get<std::string>();
}

// No Catch assertions in here: it also runs on other threads. Returns
// "<error ...>" on any failure, which the caller's comparison reports.
std::string streamed_text(int port, const std::string& prompt, int max_tokens, json* usage = nullptr) {
  try {
    json body = {{"prompt", prompt},
                 {"max_tokens", max_tokens},
                 {"temperature", 0},
                 {"stream", true},
                 {"stream_options", {{"include_usage", true}}}};
    HttpResult r = post(port, "/v1/completions", body.dump());
    if (r.status != 200 || r.content_type != "text/event-stream")
      return "<error: status " + std::to_string(r.status) + " " + r.body + ">";
    bool done = false;
    std::string text;
    for (const json& e : sse_events(r.body, &done)) {
      if (!e.is_object()) return "<error: bad event>";
      if (!e["choices"].empty()) text += e["choices"][0]["text"].get<std::string>();
      else if (usage) *usage = e["usage"];
    }
    if (!done) return "<error: no [DONE]>";
    return text;
  } catch (const std::exception& e) {
    return std::string("<error: ") + e.what() + ">";
  }
}

}  // namespace

TEST_CASE("server e2e: completions, streaming, chat, tokenize, models") {
  ServerProcess server(18621);
  const int port = server.port();
  const std::string ref = reference_text();

  // Greedy completion continues the reference story exactly.
  const std::string text = completion_text(port, "Once upon a time", 60);
  CHECK(ref.rfind("Once upon a time" + text, 0) == 0);

  // Streaming gives the same text, a usage chunk and [DONE].
  json usage;
  CHECK(streamed_text(port, "Once upon a time", 60, &usage) == text);
  CHECK(usage["completion_tokens"] == 60);
  CHECK(usage["total_tokens"] == usage["prompt_tokens"].get<int>() + 60);
  // continuous_usage_stats: every chunk carries the usage so far.
  HttpResult continuous = post(port, "/v1/completions",
                               R"({"prompt": "Once upon a time", "max_tokens": 6, "stream": true,
               "stream_options": {"include_usage": true, "continuous_usage_stats": true}})");
  REQUIRE(continuous.status == 200);
  bool continuous_done = false;
  int64_t last_completion = 0;
  for (const json& e : sse_events(continuous.body, &continuous_done)) {
    REQUIRE(e["usage"].is_object());
    CHECK(e["usage"]["completion_tokens"].get<int64_t>() >= last_completion);
    last_completion = e["usage"]["completion_tokens"].get<int64_t>();
  }
  CHECK(continuous_done);
  CHECK(last_completion == 6);

  // Echo and logprobs.
  HttpResult echo =
      post(port, "/v1/completions",
           R"({"prompt": "Once upon a time", "max_tokens": 5, "temperature": 0, "echo": true, "logprobs": 2})");
  REQUIRE(echo.status == 200);
  const json ej = echo.json();
  CHECK(ej["choices"][0]["text"].get<std::string>().rfind("Once upon a time", 0) == 0);
  // The prompt's 5 tokens first (the first has no logprob), then the 5 generated.
  CHECK(ej["choices"][0]["logprobs"]["tokens"].size() == 10);
  CHECK(ej["choices"][0]["logprobs"]["token_logprobs"][0].is_null());
  CHECK(ej["choices"][0]["logprobs"]["top_logprobs"][1].size() == 2);
  CHECK(ej["choices"][0]["logprobs"]["token_logprobs"][1].get<double>() <= 0.0);
  CHECK(ej["choices"][0]["logprobs"]["top_logprobs"][5].size() == 2);
  // Offsets index the returned text: "Once" at 0 (BOS has no text, the
  // dummy-prefix space is dropped), " time" at 11, the first generated token
  // right after the echo.
  CHECK(ej["choices"][0]["logprobs"]["text_offset"][1] == 0);
  CHECK(ej["choices"][0]["logprobs"]["text_offset"][4] == 11);
  CHECK(ej["choices"][0]["logprobs"]["text_offset"][5] == 16);
  // logprobs 0: each chosen token's logprob, no alternatives.
  HttpResult zero = post(port, "/v1/completions", R"({"prompt": "Once upon a time", "max_tokens": 4, "logprobs": 0})");
  REQUIRE(zero.status == 200);
  const json zl = zero.json()["choices"][0]["logprobs"];
  REQUIRE(zl["token_logprobs"].size() == 4);
  CHECK(zl["token_logprobs"][3].get<double>() <= 0.0);
  CHECK(zl["top_logprobs"][3].empty());
  // Chat logprobs without top_logprobs: the chosen tokens' logprobs and empty top_logprobs lists.
  HttpResult chat_lp = post(port, "/v1/chat/completions",
                            R"({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "logprobs": true})");
  REQUIRE(chat_lp.status == 200);
  const json cl = chat_lp.json()["choices"][0]["logprobs"]["content"];
  REQUIRE(cl.size() == 3);
  CHECK(cl[0]["logprob"].get<double>() <= 0.0);
  CHECK(cl[0]["top_logprobs"].empty());

  // Chat: non-streaming and streaming (role first).
  HttpResult chat =
      post(port, "/v1/chat/completions",
           R"({"messages": [{"role": "user", "content": "Once upon a time"}], "max_tokens": 20, "temperature": 0})");
  REQUIRE(chat.status == 200);
  const json cj = chat.json();
  CHECK(cj["object"] == "chat.completion");
  CHECK(cj["choices"][0]["message"]["role"] == "assistant");
  const std::string chat_text = cj["choices"][0]["message"]["content"].get<std::string>();
  CHECK(chat_text == completion_text(port, "Once upon a time", 20));  // plain template = the same prompt
  HttpResult chat_stream = post(
      port, "/v1/chat/completions",
      R"({"messages": [{"role": "user", "content": "Once upon a time"}], "max_tokens": 20, "temperature": 0, "stream": true})");
  bool done = false;
  auto events = sse_events(chat_stream.body, &done);
  REQUIRE(events.size() >= 2);
  CHECK(events[0]["choices"][0]["delta"]["role"] == "assistant");
  std::string streamed_chat;
  for (const json& e : events)
    if (e["choices"][0]["delta"].contains("content"))
      streamed_chat += e["choices"][0]["delta"]["content"].get<std::string>();
  CHECK(streamed_chat == chat_text);
  CHECK(events.back()["choices"][0]["finish_reason"] == "length");
  CHECK(done);

  // Stop strings are cut from the text.
  HttpResult stop = post(port, "/v1/completions",
                         R"({"prompt": "Once upon a time", "max_tokens": 60, "temperature": 0, "stop": ["Lily"]})");
  CHECK(stop.json()["choices"][0]["text"] == ", there was a little girl named ");
  CHECK(stop.json()["choices"][0]["finish_reason"] == "stop");

  // Token ids as the prompt.
  HttpResult tok = post(port, "/tokenize", R"({"prompt": "Once upon a time"})");
  REQUIRE(tok.status == 200);
  const json ids = tok.json()["tokens"];
  CHECK(ids[0] == 1);
  HttpResult by_ids =
      post(port, "/v1/completions", json{{"prompt", ids}, {"max_tokens", 60}, {"temperature", 0}}.dump());
  CHECK(by_ids.json()["choices"][0]["text"] == text);
  HttpResult detok = post(port, "/detokenize", json{{"tokens", ids}}.dump());
  CHECK(detok.json()["prompt"] == "Once upon a time");
  HttpResult other_model = post(port, "/tokenize", R"({"model": "gpt-4o", "prompt": "Once"})");
  CHECK(other_model.status == 404);
  CHECK(other_model.json()["error"]["code"] == "model_not_found");
  CHECK(post(port, "/tokenize", R"({"model": "stories260K", "prompt": "Once"})").status == 200);
  // max_tokens beyond the context is named as the field to lower.
  const int64_t context = http_request(port, http::verb::get, "/v1/models").json()["data"][0]["max_model_len"];
  HttpResult too_many = post(port, "/v1/completions", json{{"prompt", "Once"}, {"max_tokens", context}}.dump());
  CHECK(too_many.status == 400);
  CHECK(too_many.json()["error"]["param"] == "max_tokens");

  // Models: "created" is when this server started (a real time, not 0).
  HttpResult models = http_request(port, http::verb::get, "/v1/models");
  CHECK(models.json()["data"][0]["id"] == "stories260K");
  CHECK(models.json()["data"][0]["created"].get<int64_t>() > 1700000000);
  CHECK(models.json()["data"][0]["created"].get<int64_t>() <= static_cast<int64_t>(std::time(nullptr)));
  CHECK(http_request(port, http::verb::get, "/v1/models/stories260K").status == 200);
  CHECK(http_request(port, http::verb::get, "/v1/models/other").status == 404);
  CHECK(server.terminate() == 0);
}

// libgomp stops spinning at barriers and sleeps in the kernel at every one
// when it pools more threads than there are CPUs: a team left over from
// start-up (weight packing on the main thread) cost decode steps 30-50%.
// After start-up and a completion the process must hold only the main (I/O)
// thread, the engine thread, the stats logger's thread (sleeping), the
// grammar compiler's thread (which must start no OpenMP team of its own: a
// json_schema request compiles one) and the engine team's workers
// (engine.threads is
// left at 0: OMP_NUM_THREADS or every CPU the process may run on). Not
// counted in sanitizer builds, whose runtimes may add threads of their own
// (and whose stages run with one OpenMP thread or not for speed).
TEST_CASE("server e2e: serving keeps a single OpenMP team (none left from start-up)") {
  ServerProcess server(18627, {"--set", "server.io_threads=1"});
  CHECK(completion_text(server.port(), "Once upon a time", 8).size() > 0);
  const HttpResult constrained = post(
      server.port(), "/v1/completions",
      R"({"prompt": "Once", "max_tokens": 4, "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}})");
  CHECK(constrained.status == 200);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  cpu_set_t cpus;
  REQUIRE(sched_getaffinity(0, sizeof(cpus), &cpus) == 0);
  const char* env = std::getenv("OMP_NUM_THREADS");
  const int omp_threads = env != nullptr ? std::atoi(env) : CPU_COUNT(&cpus);
  // The engine's per-step mask thread (std::async) may take a moment to exit.
  const int expected = 4 + (omp_threads - 1);
  for (int i = 0; i < 100 && server.thread_count() != expected; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(server.thread_count() == expected);
#endif
}

// server.host accepts a host name (resolved when the server starts
// listening), not only an IP address: "localhost" used to pass the config
// check and then fail to listen.
TEST_CASE("server e2e: server.host may be a host name") {
  ServerProcess server(18628, {"--host", "localhost"});
  CHECK(http_request(server.port(), http::verb::get, "/health").status == 200);
  CHECK(server.terminate() == 0);
}

TEST_CASE("server e2e: 16 concurrent streams each equal their text alone") {
  ServerProcess server(18622);
  const int port = server.port();
  const std::vector<std::string> prompts = {
      "Once upon a time",   "The little dog",      "Lily and Tom",       "One day, a big bird",
      "Tim had a red ball", "The sun was hot",     "Mom said",           "There was a cat",
      "A boy found a box",  "The tree was tall",   "Sara liked to sing", "In the garden",
      "The car was fast",   "Ben wanted a cookie", "The fish swam",      "It was a rainy day"};
  std::vector<std::string> alone;
  for (const auto& p : prompts) alone.push_back(completion_text(port, p, 48));
  std::vector<std::string> got(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i)
    threads.emplace_back([&, i] { got[i] = streamed_text(port, prompts[i], 48); });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    INFO(prompts[i]);
    CHECK(got[i] == alone[i]);
  }
  CHECK(server.metric("pagoda_kv_pages_in_use") == 0);
  CHECK(server.terminate() == 0);
}

TEST_CASE("server e2e: a client that disconnects mid-stream cancels its request and frees its pages") {
  ServerProcess server(18623);
  const int port = server.port();
  {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    const std::string body = R"({"prompt": "Once upon a time", "max_tokens": 450, "ignore_eos": true, "stream": true})";
    const std::string req =
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    asio::write(s, asio::buffer(req));
    std::string got;
    char buf[4096];
    while (got.find("data: ", got.find("data: ") + 1) == std::string::npos) {  // two events arrived
      size_t n = s.read_some(asio::buffer(buf));
      got.append(buf, n);
    }
    CHECK(server.metric("pagoda_kv_pages_in_use") > 0);
    // One request holds pages of 16 slots (page_size default): the slots it
    // holds cover its tokens, and fewer than one page of them is empty.
    const double allocated = server.metric("pagoda_kv_slots_allocated");
    const double unused = server.metric("pagoda_kv_slots_unused");
    CHECK(allocated >= 16);
    CHECK(unused >= 0);
    CHECK(unused < 16);
  }  // socket closed here, mid-stream
  double in_use = -1, aborted = 0;
  for (int i = 0; i < 100; ++i) {
    in_use = server.metric("pagoda_kv_pages_in_use");
    const std::string m = http_request(port, http::verb::get, "/metrics").body;
    const std::string key = "pagoda_requests_finished_total{reason=\"abort\"} ";
    const size_t at = m.find(key);
    REQUIRE(at != std::string::npos);
    aborted = std::stod(m.substr(at + key.size()));
    if (in_use == 0 && aborted >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(in_use == 0);
  CHECK(aborted == 1);
  CHECK(server.metric("pagoda_kv_slots_allocated") == 0);
  CHECK(server.terminate() == 0);
}

TEST_CASE("server e2e: a shared prefix is served from the prefix cache") {
  ServerProcess server(18624);
  const int port = server.port();
  const std::string prefix =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a "
      "big, red ball.";
  // a's 20 generated tokens fill the page where b's prompt leaves a's, so that page is cached too.
  HttpResult a = post(port, "/v1/completions", json{{"prompt", prefix + " She"}, {"max_tokens", 20}}.dump());
  HttpResult b = post(port, "/v1/completions", json{{"prompt", prefix + " Lily"}, {"max_tokens", 4}}.dump());
  REQUIRE(a.status == 200);
  REQUIRE(b.status == 200);
  const json ta = post(port, "/tokenize", json{{"prompt", prefix + " She"}}.dump()).json()["tokens"];
  const json tb = post(port, "/tokenize", json{{"prompt", prefix + " Lily"}}.dump()).json()["tokens"];
  size_t common = 0;
  while (common < ta.size() && common < tb.size() && ta[common] == tb[common]) ++common;
  INFO("common prompt tokens " << common);
  REQUIRE(common % 16 != 0);  // the hit ends mid-page: whole pages plus copied rows
  CHECK(a.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 0);
  CHECK(b.json()["usage"]["prompt_tokens_details"]["cached_tokens"].get<size_t>() == common);
  CHECK(server.metric("pagoda_prefix_cache_hits_tokens_total") == double(common));
  CHECK(server.metric("pagoda_prefix_cache_partial_hits_total") == 1);
  CHECK(server.terminate() == 0);
}

TEST_CASE("server e2e: SIGTERM while busy finishes in-flight requests and exits 0") {
  ServerProcess server(18625);
  const int port = server.port();
  std::vector<int> statuses(6, 0);
  std::vector<int64_t> tokens(6, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&, i] {
      try {  // no Catch assertions on this thread
        HttpResult r = post(port, "/v1/completions",
                            json{{"prompt", "Once upon a time"}, {"max_tokens", 300}, {"ignore_eos", true}}.dump());
        statuses[i] = r.status;
        if (r.status == 200) tokens[i] = r.json()["usage"]["completion_tokens"].get<int64_t>();
      } catch (...) {
        statuses[i] = -1;
      }
    });
  for (int i = 0; i < 100 && server.metric("pagoda_requests_running") < 6; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const int exit_code = server.terminate();
  for (auto& t : threads) t.join();
  CHECK(exit_code == 0);
  for (int i = 0; i < 6; ++i) {
    CHECK(statuses[i] == 200);  // finished within the grace period
    CHECK(tokens[i] == 300);
  }
}

TEST_CASE("server e2e: behind a balancer: /load, X-Pagoda-Replica, pagoda_replica_info, draining seen by /load") {
  ServerProcess server(18638, {"--set", "server.replica_id=replica-7", "--api-key", "k1"});
  const int port = server.port();
  const std::vector<std::pair<std::string, std::string>> key = {{"Authorization", "Bearer k1"}};
  HttpResult load = http_request(port, http::verb::get, "/load");  // no key needed, as /health
  REQUIRE(load.status == 200);
  const json l = load.json();
  CHECK(l["replica"] == "replica-7");
  CHECK(l["status"] == "ok");
  CHECK(l["running"] == 0);
  CHECK(l["waiting"] == 0);
  CHECK(l["kv_usage"].get<double>() == 0.0);
  CHECK(load.replica == "replica-7");

  HttpResult plain = post(port, "/v1/completions", json{{"prompt", "Once"}, {"max_tokens", 2}}.dump(), key);
  CHECK(plain.status == 200);
  CHECK(plain.replica == "replica-7");
  HttpResult streamed =
      post(port, "/v1/completions", json{{"prompt", "Once"}, {"max_tokens", 2}, {"stream", true}}.dump(), key);
  CHECK(streamed.status == 200);
  CHECK(streamed.replica == "replica-7");
  HttpResult refused = post(port, "/v1/completions", json{{"prompt", "Once"}, {"max_tokens", -1}}.dump(), key);
  CHECK(refused.status == 400);
  CHECK(refused.replica == "replica-7");
  HttpResult no_key = post(port, "/v1/completions", json{{"prompt", "Once"}}.dump());
  CHECK(no_key.status == 401);
  CHECK(no_key.replica == "replica-7");
  const std::string metrics = http_request(port, http::verb::get, "/metrics").body;
  CHECK(metrics.find("pagoda_replica_info{replica=\"replica-7\",version=\"") != std::string::npos);
  // The HTTP layer's own refusals name the replica too: 431 for too many header fields.
  std::vector<std::pair<std::string, std::string>> fields;
  for (int i = 0; i < 150; ++i) fields.emplace_back("X-Field-" + std::to_string(i), "v");
  HttpResult too_many = post(port, "/v1/completions", json{{"prompt", "Once"}}.dump(), fields);
  CHECK(too_many.status == 431);
  CHECK(too_many.replica == "replica-7");

  // A request running while SIGTERM drains: /load says "draining" with the
  // request still counted, and the request finishes.
  int status = 0;
  std::thread busy([&] {
    try {
      status =
          post(port, "/v1/completions", json{{"prompt", "Once"}, {"max_tokens", 300}, {"ignore_eos", true}}.dump(), key)
              .status;
    } catch (...) {
      status = -1;
    }
  });
  for (int i = 0; i < 100 && server.metric("pagoda_requests_running") < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(server.pid(), SIGTERM);
  json during;
  for (int i = 0; i < 100; ++i) {
    during = http_request(port, http::verb::get, "/load").json();
    if (during.is_object() && during["status"] == "draining") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(during["status"] == "draining");
  CHECK(during["running"] == 1);
  busy.join();
  CHECK(status == 200);
  // SIGTERMs repeated while it exits (as an impatient supervisor sends them)
  // do not turn the clean exit into death by signal, whenever they land.
  for (int i = 0; i < 30000 && server.running(); ++i) {
    server.signal(SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const int exit_code = server.wait_exit(std::chrono::seconds(1));
  const std::string log = server.log();
  INFO("the server's log ends with: " << log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
  CHECK(exit_code == 0);
}

TEST_CASE("server e2e: stories260K converted to a Hugging Face directory serves the reference text") {
  const char* bin = std::getenv("PAGODA_BIN");
  REQUIRE(bin != nullptr);
  const std::string dir = "/tmp/pagoda-e2e-hf-stories260K";
  const std::string models = models_dir();
  const std::string cmd = std::string(bin) + " make-model --from " + models +
                          "stories260K.bin --format hf --hf-dtype f32 --out " + dir + " > /dev/null";
  REQUIRE(std::system(("rm -rf " + dir).c_str()) == 0);
  REQUIRE(std::system(cmd.c_str()) == 0);
  ServerProcess server(18626, {"--model", dir, "--tokenizer", models + "tok512.bin"});
  const std::string text = completion_text(server.port(), "Once upon a time", 60);
  CHECK(reference_text().rfind("Once upon a time" + text, 0) == 0);
  HttpResult models_list = http_request(server.port(), http::verb::get, "/v1/models");
  CHECK(models_list.json()["data"][0]["id"] == "pagoda-e2e-hf-stories260K");
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("server e2e: KV memory follows use: 4 GiB of KV starts fast and stays out of memory until written") {
  // The arena's growth as pages are written is tested in tests/kvpool
  // (storage_test); here: the server does not touch it at start-up.
  const auto t0 = std::chrono::steady_clock::now();
  ServerProcess server(18629, {"--set", "kv.memory_gib=4"});
  const double startup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double idle = server.metric("pagoda_process_resident_memory_bytes");
  INFO("start-up " << startup_s << " s, idle resident " << idle / 1048576 << " MiB");
  CHECK(idle > 0);
  // Sanitizer builds carry much more of their own: their bounds are looser.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  CHECK(idle < 1024.0 * 1048576);
#else
  CHECK(idle < 150.0 * 1048576);
  CHECK(startup_s < 5.0);
#endif
  const HttpResult r = post(server.port(), "/v1/completions",
                            json{{"prompt", "Once upon a time"}, {"max_tokens", 16}, {"temperature", 0}}.dump());
  CHECK(r.status == 200);
}

TEST_CASE("server e2e: one access-log line per request, with its fields and never the prompt") {
  ServerProcess server(18630, {"--set", "logging.level=info"});
  const HttpResult ok = post(server.port(), "/v1/completions",
                             json{{"prompt", "a private prompt"}, {"max_tokens", 5}, {"temperature", 0}}.dump());
  REQUIRE(ok.status == 200);
  const HttpResult bad = post(server.port(), "/v1/completions", json{{"prompt", "x"}, {"temperature", -1}}.dump());
  REQUIRE(bad.status == 400);
  const std::string id = ok.json()["id"].get<std::string>();
  std::string log;
  for (int i = 0; i < 100 && log.find("status=400") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    log = server.log();
  }
  const size_t line_at = log.find("request id=" + id);
  REQUIRE(line_at != std::string::npos);
  const std::string line = log.substr(line_at, log.find('\n', line_at) - line_at);
  for (const char* field : {"method=POST", "path=/v1/completions", "status=200", "client=127.0.0.1:", "prompt_tokens=",
                            "completion_tokens=5", "ttft_ms=", "total_ms=", "finish_reason=length"}) {
    INFO(line);
    CHECK(line.find(field) != std::string::npos);
  }
  CHECK(log.find("path=/v1/completions status=400") != std::string::npos);
  const size_t first_id = log.find("id=" + id);
  CHECK(log.find("id=" + id, first_id + 1) == std::string::npos);  // one record per request
  CHECK(log.find("private prompt") == std::string::npos);
}

TEST_CASE("server e2e: in json log format an access record is one JSON object with its fields") {
  ServerProcess server(18633, {"--set", "logging.level=info", "--set", "logging.format=json"});
  const HttpResult ok = post(server.port(), "/v1/chat/completions",
                             json{{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 3}}.dump());
  REQUIRE(ok.status == 200);
  json record;
  for (int i = 0; i < 100 && record.is_null(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::istringstream lines(server.log());
    for (std::string l; std::getline(lines, l);) {
      const json j = json::parse(l, nullptr, false);
      if (j.is_object() && j.value("msg", "") == "request") record = j;
    }
  }
  REQUIRE(record.is_object());
  CHECK(record["id"] == ok.json()["id"]);
  CHECK(record["status"] == 200);
  CHECK(record["completion_tokens"] == 3);
  CHECK(record["path"] == "/v1/chat/completions");
  CHECK(record["finish_reason"] == "length");
  CHECK(record["ttft_ms"].is_number());
}

TEST_CASE("server e2e: a stats line every logging.stats_interval_s while there is traffic, none when idle") {
  ServerProcess server(18634, {"--set", "logging.level=info", "--set", "logging.stats_interval_s=0.3"});
  auto count_stats = [&] {
    const std::string log = server.log();
    size_t n = 0;
    for (size_t at = log.find("info  stats "); at != std::string::npos; at = log.find("info  stats ", at + 1)) ++n;
    return n;
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  CHECK(count_stats() == 0);  // no traffic yet: nothing logged
  for (int i = 0; i < 4; ++i)
    REQUIRE(post(server.port(), "/v1/completions", json{{"prompt", "Once upon"}, {"max_tokens", 32}}.dump()).status ==
            200);
  std::this_thread::sleep_for(std::chrono::milliseconds(900));
  const size_t after_traffic = count_stats();
  CHECK(after_traffic >= 1);
  const std::string log = server.log();
  const size_t at = log.find("info  stats ");
  REQUIRE(at != std::string::npos);
  const std::string line = log.substr(at, log.find('\n', at) - at);
  // (prefix_hit_pct appears only in intervals that looked prompts up.)
  for (const char* field : {"running=", "waiting=", "prompt_tok_s=", "gen_tok_s=", "kv_usage_pct="}) {
    INFO(line);
    CHECK(line.find(field) != std::string::npos);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  CHECK(count_stats() <= after_traffic + 1);  // at most the interval that saw the last tokens
}

TEST_CASE("server e2e: with logging.log_prompts the access record carries the prompt text") {
  ServerProcess server(18635, {"--set", "logging.level=info", "--set", "logging.log_prompts=true"});
  const HttpResult ok = post(server.port(), "/v1/completions",
                             json{{"prompt", "a logged prompt"}, {"max_tokens", 2}, {"temperature", 0}}.dump());
  REQUIRE(ok.status == 200);
  const std::string id = ok.json()["id"].get<std::string>();
  std::string log;
  for (int i = 0; i < 100 && log.find("request id=" + id) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    log = server.log();
  }
  const size_t at = log.find("request id=" + id);
  REQUIRE(at != std::string::npos);
  const std::string line = log.substr(at, log.find('\n', at) - at);
  INFO(line);
  CHECK(line.find("prompt=\"") != std::string::npos);
  CHECK(line.find("logged prompt") != std::string::npos);
}

TEST_CASE("server e2e: 429s for a full queue and preemptions are warned about") {
  // Requests of 480 tokens, all at once, from threads; returns how many got 429.
  auto burst = [](int port, int n) {
    std::atomic<int> refused{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i)
      threads.emplace_back([&, i] {
        const HttpResult r =
            post(port, "/v1/completions",
                 json{{"prompt", "Once upon a time " + std::to_string(i)}, {"max_tokens", 480}, {"ignore_eos", true}}
                     .dump());
        if (r.status == 429) ++refused;
      });
    for (auto& t : threads) t.join();
    return refused.load();
  };
  auto wait_for = [](ServerProcess& server, const std::string& text) {
    std::string log;
    for (int i = 0; i < 100 && log.find(text) == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      log = server.log();
    }
    return log;
  };
  {
    // Four sequences of 480 tokens at once outgrow a pool of 39 pages of 16.
    ServerProcess server(18636, {"--set", "logging.stats_interval_s=0.5", "--set", "kv.num_pages=40", "--set",
                                 "scheduler.max_num_seqs=4"});
    CHECK(burst(server.port(), 4) == 0);
    const std::string log = wait_for(server, "KV cache was full");
    INFO(log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
    INFO(http_request(server.port(), http::verb::get, "/metrics").body);
    CHECK(log.find(" warning ") != std::string::npos);
    CHECK(log.find("the KV cache was full, so running requests were paused") != std::string::npos);
  }
  {
    // A queue of one: a burst of twelve finds it full.
    ServerProcess server(18637, {"--set", "logging.stats_interval_s=0.5", "--set", "scheduler.max_queue=1", "--set",
                                 "scheduler.max_num_seqs=1"});
    REQUIRE(burst(server.port(), 12) > 0);
    const std::string log = wait_for(server, "refused with 429");
    INFO(log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
    CHECK(log.find("refused with 429 in the last") != std::string::npos);
    CHECK(log.find("the server is overloaded") != std::string::npos);
  }
}

TEST_CASE("server e2e: structured outputs in a batch with free requests follow their grammars") {
  ServerProcess server(18653);
  const int port = server.port();
  const std::string schema =
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":99}},"required":["name","age"],"additionalProperties":false})";
  // Constrained and unconstrained requests at once, so they share steps.
  std::vector<std::future<HttpResult>> results;
  for (int i = 0; i < 8; ++i) {
    std::string body;
    if (i % 4 == 0) {
      body = R"({"prompt":"Once upon a time","max_tokens":150,"seed":)" + std::to_string(i) +
             R"(,"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":)" + schema + "}}}";
    } else if (i % 4 == 1) {
      body = R"({"prompt":"Once","max_tokens":30,"seed":)" + std::to_string(i) +
             R"(,"guided_regex":"[0-9]{3}-[a-z]{2,4}"})";
    } else if (i % 4 == 2) {
      body = R"({"prompt":"Once","max_tokens":10,"guided_choice":["red","green","blue"],"seed":)" + std::to_string(i) +
             "}";
    } else {
      body = R"({"prompt":"Once upon a time","max_tokens":40,"temperature":0})";
    }
    results.push_back(std::async(std::launch::async, [port, body] { return post(port, "/v1/completions", body); }));
  }
  for (int i = 0; i < 8; ++i) {
    HttpResult r = results[static_cast<size_t>(i)].get();
    REQUIRE(r.status == 200);
    const json choice = r.json()["choices"][0];
    const std::string text = choice["text"].get<std::string>();
    INFO("request " << i << ": " << text);
    if (i % 4 == 0) {
      REQUIRE(choice["finish_reason"] == "stop");
      const json value = json::parse(text);
      CHECK(value.size() == 2);
      CHECK(value["name"].is_string());
      CHECK(value["age"].is_number_integer());
      CHECK(value["age"].get<int>() >= 0);
      CHECK(value["age"].get<int>() <= 99);
    } else if (i % 4 == 1) {
      CHECK(std::regex_match(text, std::regex("[0-9]{3}-[a-z]{2,4}")));
    } else if (i % 4 == 2) {
      CHECK((text == "red" || text == "green" || text == "blue"));
    } else {
      CHECK(text == completion_text(port, "Once upon a time", 40));  // unconstrained: as alone
    }
  }
  // A schema the engine cannot honour, and a grammar that cannot finish in max_tokens.
  HttpResult bad = post(
      port, "/v1/completions",
      R"({"prompt":"x","response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"array","uniqueItems":true}}}})");
  CHECK(bad.status == 400);
  CHECK(bad.json()["error"]["param"] == "response_format");
  HttpResult cut = post(port, "/v1/completions", R"({"prompt":"x","max_tokens":3,"guided_regex":"[a-z]{20}"})");
  REQUIRE(cut.status == 200);
  CHECK(cut.json()["choices"][0]["finish_reason"] == "length");
}

TEST_CASE("server e2e: tool calls forced by tool_choice follow the function's schema, whole and streamed") {
  ServerProcess server(18654);
  const int port = server.port();
  const json tools = json::parse(R"([
    {"type":"function","function":{"name":"get_weather","parameters":{"type":"object",
      "properties":{"city":{"type":"string","maxLength":10},"unit":{"enum":["c","f"]}},
      "required":["city","unit"],"additionalProperties":false}}},
    {"type":"function","function":{"name":"get_time","parameters":{"type":"object",
      "properties":{"zone":{"enum":["UTC","CET"]}},"required":["zone"],"additionalProperties":false}}}])");
  // A conversation with an earlier call and its result, and fields SDKs send that change nothing here.
  const json messages = json::parse(R"([
    {"role":"user","content":"Weather in Oslo?"},
    {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
      "function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\",\"unit\":\"c\"}"}}]},
    {"role":"tool","tool_call_id":"call_1","content":"4 degrees"},
    {"role":"user","content":[{"type":"text","text":"And the time?"}]}])");
  auto check_weather_args = [](const std::string& arguments) {
    INFO(arguments);
    const json args = json::parse(arguments);
    CHECK(args.size() == 2);
    CHECK(args["city"].is_string());
    CHECK(args["city"].get<std::string>().size() <= 10);
    CHECK((args["unit"] == "c" || args["unit"] == "f"));
  };
  SECTION("named function: the message holds one call, finish_reason stop") {
    json body = {{"messages", messages},
                 {"tools", tools},
                 {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}},
                 {"max_tokens", 200},
                 {"seed", 3},
                 {"store", true},
                 {"metadata", {{"k", "v"}}}};
    HttpResult r = post(port, "/v1/chat/completions", body.dump());
    REQUIRE(r.status == 200);
    const json choice = r.json()["choices"][0];
    CHECK(choice["finish_reason"] == "stop");
    CHECK(choice["message"]["content"].is_null());
    REQUIRE(choice["message"]["tool_calls"].size() == 1);
    const json call = choice["message"]["tool_calls"][0];
    CHECK(call["type"] == "function");
    CHECK(call["id"].get<std::string>().rfind("call_", 0) == 0);
    CHECK(call["function"]["name"] == "get_weather");
    check_weather_args(call["function"]["arguments"].get<std::string>());
  }
  SECTION("required: calls to the offered functions, finish_reason tool_calls") {
    for (int seed = 0; seed < 4; ++seed) {
      json body = {{"messages", messages}, {"tools", tools}, {"tool_choice", "required"},
                   {"max_tokens", 300},    {"seed", seed},   {"parallel_tool_calls", false}};
      HttpResult r = post(port, "/v1/chat/completions", body.dump());
      REQUIRE(r.status == 200);
      const json choice = r.json()["choices"][0];
      INFO(choice.dump());
      if (choice["finish_reason"] == "length") continue;  // a random model may ramble within the grammar
      CHECK(choice["finish_reason"] == "tool_calls");
      REQUIRE(choice["message"]["tool_calls"].size() == 1);
      const json call = choice["message"]["tool_calls"][0];
      if (call["function"]["name"] == "get_weather") {
        check_weather_args(call["function"]["arguments"].get<std::string>());
      } else {
        CHECK(call["function"]["name"] == "get_time");
        const json args = json::parse(call["function"]["arguments"].get<std::string>());
        CHECK((args["zone"] == "UTC" || args["zone"] == "CET"));
      }
    }
  }
  SECTION("streamed named call: id and name first, then the arguments in pieces") {
    json body = {{"messages", messages},
                 {"tools", tools},
                 {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}},
                 {"max_tokens", 200},
                 {"seed", 3},
                 {"stream", true}};
    HttpResult r = post(port, "/v1/chat/completions", body.dump());
    REQUIRE(r.status == 200);
    bool done = false;
    std::string arguments, name, id, finish;
    int pieces = 0;
    for (const json& e : sse_events(r.body, &done)) {
      const json& choice = e["choices"][0];
      if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"].get<std::string>();
      if (!choice["delta"].contains("tool_calls")) continue;
      for (const json& d : choice["delta"]["tool_calls"]) {
        CHECK(d["index"] == 0);
        if (d.contains("id")) {
          CHECK(id.empty());  // once, first
          CHECK(arguments.empty());
          id = d["id"].get<std::string>();
          name = d["function"]["name"].get<std::string>();
        }
        arguments += d["function"]["arguments"].get<std::string>();
        ++pieces;
      }
    }
    CHECK(done);
    CHECK(finish == "stop");
    CHECK(name == "get_weather");
    CHECK(id.rfind("call_", 0) == 0);
    CHECK(pieces > 2);
    check_weather_args(arguments);
  }
  SECTION("bad tool requests name the field") {
    HttpResult no_tools =
        post(port, "/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"required"})");
    CHECK(no_tools.status == 400);
    CHECK(no_tools.json()["error"]["param"] == "tool_choice");
    HttpResult no_id =
        post(port, "/v1/chat/completions", R"({"messages":[{"role":"tool","content":"4 degrees"}],"max_tokens":2})");
    CHECK(no_id.status == 400);
    CHECK(no_id.json()["error"]["param"] == "messages[0].tool_call_id");
    json both = {{"messages", messages},
                 {"tools", tools},
                 {"tool_choice", "required"},
                 {"response_format", {{"type", "json_object"}}}};
    HttpResult conflict = post(port, "/v1/chat/completions", both.dump());
    CHECK(conflict.status == 400);
    CHECK(conflict.json()["error"]["param"] == "tool_choice");
  }
}

TEST_CASE("server e2e: n choices share one prefill and equal their requests alone") {
  ServerProcess server(18656);
  const int port = server.port();
  std::string prompt = "Once upon a time, there was a little girl named Lily.";
  for (int i = 0; i < 4; ++i) prompt += " She loved to play outside in the park with her friends.";
  const json body = {{"prompt", prompt}, {"max_tokens", 12}, {"temperature", 1.0}, {"seed", 40}, {"n", 3}};
  HttpResult r = post(port, "/v1/completions", body.dump());
  REQUIRE(r.status == 200);
  const json j = r.json();
  REQUIRE(j["choices"].size() == 3);
  const int64_t prompt_tokens = j["usage"]["prompt_tokens"];
  CHECK(j["usage"]["completion_tokens"] == 36);  // every choice's tokens, the prompt once
  CHECK(j["usage"]["total_tokens"] == prompt_tokens + 36);
  // The first choice prefilled the prompt; the other two found it in the prefix cache.
  CHECK(server.metric("pagoda_prefix_cache_hits_tokens_total") >= 2.0 * double(prompt_tokens - 16));
  std::set<std::string> texts;
  for (int i = 0; i < 3; ++i) {
    const json& c = j["choices"][static_cast<size_t>(i)];
    CHECK(c["index"] == i);
    texts.insert(c["text"].get<std::string>());
    // Choice i is what seed + i gives alone.
    json alone = body;
    alone["n"] = 1;
    alone["seed"] = 40 + i;
    HttpResult a = post(port, "/v1/completions", alone.dump());
    CHECK(a.json()["choices"][0]["text"] == c["text"]);
  }
  CHECK(texts.size() == 3);  // different samples

  // Streamed chat: each choice gets its role chunk, its own text and its finish reason.
  json chat = {
      {"messages", {{{"role", "user"}, {"content", "Tell me a story"}}}}, {"max_tokens", 8}, {"seed", 5}, {"n", 2}};
  HttpResult whole = post(port, "/v1/chat/completions", chat.dump());
  REQUIRE(whole.status == 200);
  chat["stream"] = true;
  chat["stream_options"] = {{"include_usage", true}};
  HttpResult streamed = post(port, "/v1/chat/completions", chat.dump());
  REQUIRE(streamed.status == 200);
  bool done = false;
  std::vector<std::string> text(2), finish(2);
  std::vector<int> roles(2, 0);
  json usage;
  for (const json& e : sse_events(streamed.body, &done)) {
    if (e["choices"].empty()) {
      usage = e["usage"];
      continue;
    }
    const json& c = e["choices"][0];
    const size_t i = c["index"].get<size_t>();
    REQUIRE(i < 2);
    if (c["delta"].contains("role")) ++roles[i];
    if (c["delta"].contains("content")) text[i] += c["delta"]["content"].get<std::string>();
    if (!c["finish_reason"].is_null()) finish[i] = c["finish_reason"].get<std::string>();
  }
  CHECK(done);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(roles[i] == 1);
    CHECK(text[i] == whole.json()["choices"][i]["message"]["content"]);
    CHECK(finish[i] == whole.json()["choices"][i]["finish_reason"]);
  }
  CHECK(usage["completion_tokens"] == whole.json()["usage"]["completion_tokens"]);
  CHECK(server.terminate() == 0);
}

TEST_CASE("server e2e: a batch of prompts gets a choice per prompt and sample, each equal to its request alone") {
  ServerProcess server(18657);
  const int port = server.port();
  const std::vector<std::string> texts = {"Once upon a time", "The little dog", "Lily and Ben went to the park"};
  json body = {{"prompt", texts}, {"max_tokens", 10}, {"temperature", 1.0}, {"seed", 11}, {"n", 2}, {"echo", true}};
  HttpResult r = post(port, "/v1/completions", body.dump());
  REQUIRE(r.status == 200);
  const json j = r.json();
  REQUIRE(j["choices"].size() == 6);
  int64_t prompt_tokens = 0;
  for (size_t p = 0; p < texts.size(); ++p) {
    for (int i = 0; i < 2; ++i) {
      const json& c = j["choices"][p * 2 + static_cast<size_t>(i)];
      CHECK(c["index"] == p * 2 + static_cast<size_t>(i));
      const std::string text = c["text"];
      CHECK(text.rfind(texts[p], 0) == 0);  // echo: its own prompt first
      const json alone = {
          {"prompt", texts[p]}, {"max_tokens", 10}, {"temperature", 1.0}, {"seed", 11 + i}, {"echo", true}};
      const json a = post(port, "/v1/completions", alone.dump()).json();
      CHECK(a["choices"][0]["text"] == text);
      if (i == 0) prompt_tokens += a["usage"]["prompt_tokens"].get<int64_t>();
    }
  }
  CHECK(j["usage"]["prompt_tokens"] == prompt_tokens);  // each prompt once
  CHECK(j["usage"]["completion_tokens"] == 60);

  // Token-id prompts, streamed: the chunks of every choice, by index, give the same texts.
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& t : texts) {
    const json tok = post(port, "/tokenize", json{{"prompt", t}}.dump()).json();
    ids.push_back(tok["tokens"].get<std::vector<int32_t>>());
  }
  body = {{"prompt", ids}, {"max_tokens", 10}, {"temperature", 1.0}, {"seed", 11}, {"n", 2}, {"stream", true}};
  HttpResult streamed = post(port, "/v1/completions", body.dump());
  REQUIRE(streamed.status == 200);
  bool done = false;
  std::vector<std::string> got(6);
  for (const json& e : sse_events(streamed.body, &done)) {
    const size_t i = e["choices"][0]["index"].get<size_t>();
    REQUIRE(i < 6);
    got[i] += e["choices"][0]["text"].get<std::string>();
  }
  CHECK(done);
  for (size_t i = 0; i < 6; ++i) {
    const std::string whole = j["choices"][i]["text"];
    CHECK(whole.size() > texts[i / 2].size());
    CHECK(got[i] == whole.substr(texts[i / 2].size()));  // the same samples, without the echo
  }

  // The batch limits name their field.
  HttpResult too_many = post(port, "/v1/completions", json{{"prompt", std::vector<std::string>(65, "hi")}}.dump());
  CHECK(too_many.status == 400);
  CHECK(too_many.json()["error"]["param"] == "prompt");
  HttpResult too_many_choices =
      post(port, "/v1/completions", json{{"prompt", std::vector<std::string>(8, "hi")}, {"n", 9}}.dump());
  CHECK(too_many_choices.status == 400);
  CHECK(too_many_choices.json()["error"]["param"] == "n");
  HttpResult mixed = post(port, "/v1/completions", json{{"prompt", json::array({"hi", 5})}}.dump());
  CHECK(mixed.status == 400);
  CHECK(mixed.json()["error"]["param"] == "prompt");
  CHECK(server.terminate() == 0);
}

TEST_CASE("server e2e: echoed prompt logprobs equal the logprobs the same tokens get when generated") {
  ServerProcess server(18658);
  const int port = server.port();
  // Generate 40 tokens greedily, with each token's logprob and top 3, the
  // tokens named by id (vLLM's return_tokens_as_token_ids).
  const json gen = post(port, "/v1/completions",
                        json{{"prompt", "Once upon a time"},
                             {"max_tokens", 40},
                             {"temperature", 0},
                             {"logprobs", 3},
                             {"return_tokens_as_token_ids", true}}
                            .dump())
                       .json();
  const json& glp = gen["choices"][0]["logprobs"];
  std::vector<int32_t> ids =
      post(port, "/tokenize", json{{"prompt", "Once upon a time"}}.dump()).json()["tokens"].get<std::vector<int32_t>>();
  const size_t prompt_len = ids.size();
  REQUIRE(glp["tokens"].size() == 40);
  for (const json& t : glp["tokens"]) {
    const std::string name = t;
    REQUIRE(name.rfind("token_id:", 0) == 0);
    ids.push_back(std::stoi(name.substr(9)));
  }

  // Score prompt + generated tokens: max_tokens 0 with echo and logprobs.
  const json body = {
      {"prompt", ids}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 3}, {"return_tokens_as_token_ids", true}};
  for (int pass = 0; pass < 2; ++pass) {  // the second pass is not served from the prefix cache
    HttpResult r = post(port, "/v1/completions", body.dump());
    REQUIRE(r.status == 200);
    const json j = r.json();
    const json& c = j["choices"][0];
    CHECK(c["finish_reason"] == "length");
    CHECK(j["usage"]["completion_tokens"] == 0);
    CHECK(j["usage"]["prompt_tokens_details"]["cached_tokens"] == 0);
    const json& lp = c["logprobs"];
    REQUIRE(lp["token_logprobs"].size() == ids.size());
    CHECK(lp["token_logprobs"][0].is_null());
    CHECK(lp["top_logprobs"][0].is_null());
    for (size_t i = 0; i < 40; ++i) {
      const size_t k = prompt_len + i;
      CHECK(lp["tokens"][k] == glp["tokens"][i]);
      CHECK(std::abs(lp["token_logprobs"][k].get<double>() - glp["token_logprobs"][i].get<double>()) < 2e-3);
      REQUIRE(lp["top_logprobs"][k].size() == 3);
      for (const auto& [text, v] : glp["top_logprobs"][i].items()) {
        REQUIRE(lp["top_logprobs"][k].contains(text));
        CHECK(std::abs(lp["top_logprobs"][k][text].get<double>() - v.get<double>()) < 2e-3);
      }
    }
  }

  // vLLM's prompt_logprobs, on a prompt of 400 tokens (two steps: at most
  // 256 logit rows each), then generation.
  std::vector<int32_t> long_ids = {ids[0]};  // BOS, then the sequence above repeated
  while (long_ids.size() < 400) long_ids.insert(long_ids.end(), ids.begin() + 1, ids.end());
  long_ids.resize(400);
  HttpResult scored =
      post(port, "/v1/completions",
           json{{"prompt", long_ids}, {"max_tokens", 2}, {"prompt_logprobs", 1}, {"temperature", 0}}.dump());
  REQUIRE(scored.status == 200);
  const json v = scored.json();
  const json& plp = v["choices"][0]["prompt_logprobs"];
  REQUIRE(plp.size() == 400);
  CHECK(plp[0].is_null());
  for (size_t k = 1; k < 400; ++k) {
    const json& entry = plp[k];
    REQUIRE(entry.contains(std::to_string(long_ids[k])));
    const json& mine = entry[std::to_string(long_ids[k])];
    CHECK(mine["logprob"].get<double>() <= 0.0);
    CHECK(mine["rank"].get<int>() >= 1);
    if (mine["rank"] == 1) CHECK(entry.size() == 1);  // the token is the top 1 itself
  }
  // Past the 256-row step boundary: the most likely token at position L
  // (rank 1 in prompt_logprobs) is the one greedy generation from the first
  // L tokens picks, with the same logprob.
  for (size_t L : {257, 300, 399}) {
    const json g = post(port, "/v1/completions",
                        json{{"prompt", std::vector<int32_t>(long_ids.begin(), long_ids.begin() + L)},
                             {"max_tokens", 1},
                             {"temperature", 0},
                             {"logprobs", 0},
                             {"return_tokens_as_token_ids", true}}
                            .dump())
                       .json();
    const std::string name = g["choices"][0]["logprobs"]["tokens"][0];
    const std::string top_id = name.substr(9);
    INFO("position " << L);
    REQUIRE(plp[L].contains(top_id));
    CHECK(plp[L][top_id]["rank"] == 1);
    CHECK(std::abs(plp[L][top_id]["logprob"].get<double>() -
                   g["choices"][0]["logprobs"]["token_logprobs"][0].get<double>()) < 2e-3);
  }
  // The first repetition is the sequence scored above: the same scores.
  for (size_t i = 0; i < 40; ++i)
    CHECK(std::abs(plp[prompt_len + i][std::to_string(long_ids[prompt_len + i])]["logprob"].get<double>() -
                   glp["token_logprobs"][i].get<double>()) < 2e-3);
  CHECK(v["choices"][0]["text"].get<std::string>().size() > 0);

  // Chat: vLLM puts prompt_logprobs on the response (the choices share the prompt).
  const json chat = post(port, "/v1/chat/completions",
                         json{{"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
                              {"max_tokens", 2},
                              {"n", 2},
                              {"prompt_logprobs", 0}}
                             .dump())
                        .json();
  REQUIRE(chat["prompt_logprobs"].is_array());
  CHECK(chat["prompt_logprobs"].size() == chat["usage"]["prompt_tokens"]);
  CHECK(chat["prompt_logprobs"][0].is_null());
  CHECK_FALSE(chat["choices"][0].contains("prompt_logprobs"));

  // max_tokens 0 without anything to score is refused, naming the field.
  HttpResult zero = post(port, "/v1/completions", json{{"prompt", "Once"}, {"max_tokens", 0}}.dump());
  CHECK(zero.status == 400);
  CHECK(zero.json()["error"]["param"] == "max_tokens");
  CHECK(server.terminate() == 0);
}

namespace {
double l2(const json& v) {
  double s = 0;
  for (const json& x : v) s += x.get<double>() * x.get<double>();
  return std::sqrt(s);
}
}  // namespace

TEST_CASE("server e2e: embeddings are normalized pooled states, equal alone and in a batch, as floats or base64") {
  ServerProcess server(18659);
  const int port = server.port();
  const std::vector<std::string> texts = {"Once upon a time", "The little dog ran to the park", "Lily"};
  HttpResult r = post(port, "/v1/embeddings", json{{"input", texts}, {"model", "stories260K"}}.dump());
  REQUIRE(r.status == 200);
  const json j = r.json();
  CHECK(j["object"] == "list");
  CHECK(j["model"] == "stories260K");
  REQUIRE(j["data"].size() == 3);
  int64_t tokens = 0;
  for (size_t i = 0; i < 3; ++i) {
    const json& item = j["data"][i];
    CHECK(item["object"] == "embedding");
    CHECK(item["index"] == i);
    REQUIRE(item["embedding"].size() == 64);  // stories260K's dim
    CHECK(std::abs(l2(item["embedding"]) - 1.0) < 1e-4);
    // The same input alone, as text and as token ids: the same vector.
    const json alone = post(port, "/v1/embeddings", json{{"input", texts[i]}}.dump()).json();
    const json ids = post(port, "/tokenize", json{{"prompt", texts[i]}}.dump()).json()["tokens"];
    tokens += static_cast<int64_t>(ids.size());
    const json by_ids = post(port, "/v1/embeddings", json{{"input", ids}}.dump()).json();
    for (size_t k = 0; k < 64; ++k) {
      CHECK(std::abs(alone["data"][0]["embedding"][k].get<double>() - item["embedding"][k].get<double>()) < 1e-5);
      CHECK(by_ids["data"][0]["embedding"][k] == alone["data"][0]["embedding"][k]);
    }
  }
  CHECK(j["usage"]["prompt_tokens"] == tokens);
  CHECK(j["usage"]["total_tokens"] == tokens);
  CHECK(j["data"][0]["embedding"] != j["data"][1]["embedding"]);

  // dimensions: the first d values, renormalized; base64: the same float32s.
  const json d16 = post(port, "/v1/embeddings", json{{"input", texts[0]}, {"dimensions", 16}}.dump()).json();
  const json& full = j["data"][0]["embedding"];
  double n16 = 0;
  for (size_t k = 0; k < 16; ++k) n16 += full[k].get<double>() * full[k].get<double>();
  REQUIRE(d16["data"][0]["embedding"].size() == 16);
  for (size_t k = 0; k < 16; ++k)
    CHECK(std::abs(d16["data"][0]["embedding"][k].get<double>() - full[k].get<double>() / std::sqrt(n16)) < 1e-5);
  const json b64 = post(port, "/v1/embeddings", json{{"input", texts[0]}, {"encoding_format", "base64"}}.dump()).json();
  const std::string enc = b64["data"][0]["embedding"];
  CHECK(enc.size() == (64 * 4 + 2) / 3 * 4);
  // Decode and compare (standard alphabet, padding).
  std::string bytes;
  int bits = 0;
  uint32_t acc = 0;
  for (char ch : enc) {
    const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char* at = std::strchr(table, ch);
    if (ch == '=' || at == nullptr) break;
    acc = (acc << 6) | static_cast<uint32_t>(at - table);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  REQUIRE(bytes.size() == 64 * 4);
  for (size_t k = 0; k < 64; ++k) {
    float f = 0;
    std::memcpy(&f, bytes.data() + 4 * k, 4);
    CHECK(static_cast<double>(f) == Approx(full[k].get<double>()).margin(1e-5));
  }

  // Errors name their field; the server keeps serving.
  CHECK(post(port, "/v1/embeddings", json{{"input", ""}}.dump()).json()["error"]["param"] == "input");
  CHECK(post(port, "/v1/embeddings", json{{"input", json::array({"a", 5})}}.dump()).json()["error"]["param"] ==
        "input");
  CHECK(post(port, "/v1/embeddings", json{{"input", "a"}, {"dimensions", 65}}.dump()).json()["error"]["param"] ==
        "dimensions");
  CHECK(
      post(port, "/v1/embeddings", json{{"input", "a"}, {"encoding_format", "hex"}}.dump()).json()["error"]["param"] ==
      "encoding_format");
  HttpResult other = post(port, "/v1/embeddings", json{{"input", "a"}, {"model", "gpt-4"}}.dump());
  CHECK(other.status == 404);
  HttpResult too_long = post(port, "/v1/embeddings", json{{"input", std::vector<int32_t>(600, 5)}}.dump());
  CHECK(too_long.status == 400);
  CHECK(too_long.json()["error"]["param"] == "input");
  CHECK(server.metric("pagoda_kv_usage_ratio") == 0.0);  // every request gave its pages back
  CHECK(server.terminate() == 0);
}

TEST_CASE("server e2e: embeddings pooled by mean and by cls differ from last and stay normalized") {
  const std::vector<std::string> poolings = {"last", "mean", "cls"};
  std::vector<json> got;
  int port_offset = 0;
  for (const std::string& pooling : poolings) {
    ServerProcess server(18660 + port_offset++, {"--set", "model.pooling=" + pooling});
    const json j =
        post(server.port(), "/v1/embeddings", json{{"input", {"Once upon a time", "Once upon a time"}}}.dump()).json();
    REQUIRE(j["data"].size() == 2);
    CHECK(std::abs(l2(j["data"][0]["embedding"]) - 1.0) < 1e-4);
    CHECK(j["data"][0]["embedding"] == j["data"][1]["embedding"]);  // the second may hit the prefix cache (last)
    got.push_back(j["data"][0]["embedding"]);
    CHECK(server.terminate() == 0);
  }
  CHECK(got[0] != got[1]);
  CHECK(got[0] != got[2]);
  CHECK(got[1] != got[2]);
}
