// pagoda bench against a live `pagoda serve` on loopback: the client's token
// counts match the server's own counters, and failures are classified.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>

#include "bench/bench_serve.h"
#include "bench/report.h"
#include "bench/server_metrics.h"
#include "tests/server/server_process.h"

using namespace pagoda::bench;
using pagoda::testing::http_request;
using pagoda::testing::ServerProcess;
namespace http = pagoda::testing::http;

namespace {

double generation_tokens(int port) {
  const auto m = parse_prometheus(http_request(port, http::verb::get, "/metrics").body);
  auto v = sample(m, "pagoda_generation_tokens_total");
  REQUIRE(v.has_value());
  return *v;
}

BenchConfig small_config(const ServerProcess& server) {
  BenchConfig c;
  c.url = "http://127.0.0.1:" + std::to_string(server.port());
  c.workload.input_len = {12, 20};
  c.workload.output_len = {4, 9};
  c.num_prompts = 12;
  c.max_concurrency = 4;
  c.ignore_eos = true;
  c.metrics_interval_s = 0.05;
  c.timeout_s = 30;
  return c;
}

}  // namespace

TEST_CASE("bench: closed-loop run against pagoda serve matches the server's token counters", "[bench][e2e]") {
  ServerProcess server(28417, {});
  const double before = generation_tokens(server.port());
  BenchConfig c = small_config(server);
  auto r = run_bench(c);
  REQUIRE(r.is_ok());
  const double after = generation_tokens(server.port());
  const BenchMetrics& m = r->metrics;
  CHECK(m.completed == 12);
  CHECK(m.failed == 0);
  int64_t sum_out = 0;
  for (const RequestRecord& q : r->records) {
    REQUIRE(q.ok());
    // ignore_eos: exactly max_tokens, within --output-len; prompt length exact (token ids).
    CHECK(q.output_tokens >= 4);
    CHECK(q.output_tokens <= 9);
    CHECK(q.prompt_tokens >= 12);
    CHECK(q.prompt_tokens <= 20);
    CHECK(q.ttft_s > 0);
    CHECK(q.ttft_s <= q.e2e_s);
    CHECK(static_cast<int64_t>(q.itl_s.size()) == q.output_events - 1);
    CHECK(q.output_events <= q.output_tokens);
    sum_out += q.output_tokens;
  }
  CHECK(m.total_output_tokens == sum_out);
  // The server counted what the client counted: the bench's own scrape
  // (taken after its 1-token probe request), and ours (which includes the probe).
  REQUIRE(r->server.available);
  REQUIRE(r->server.generation_tokens.has_value());
  CHECK(*r->server.generation_tokens == Approx(static_cast<double>(sum_out)));
  CHECK(after - before == Approx(static_cast<double>(sum_out + 1)));
  CHECK(r->vocab_size == 512);  // learned from /detokenize (stories260K, tok512)
  CHECK(m.max_concurrency_seen <= 4);
  CHECK(r->server.kv_usage_peak.has_value());
  if (r->server.kv_slot_waste) {  // only when a poll saw pages held
    CHECK(*r->server.kv_slot_waste >= 0.0);
    CHECK(*r->server.kv_slot_waste < 1.0);
  }
  CHECK(r->server.polls >= 0);
  CHECK(m.ttft.count == 12);
  CHECK(m.e2el.p99_ms >= m.e2el.median_ms);

  // The JSON result holds the config, the workload and the figures.
  const auto j = result_json(*r, true);
  CHECK(j["config"]["max_concurrency"] == 4);
  CHECK(j["workload"]["kind"] == "random");
  CHECK(j["metrics"]["total_output_tokens"] == sum_out);
  CHECK(j["requests"].size() == 12);
}

TEST_CASE("bench: shared-prefix open-loop run sees prefix-cache hits and a sweep runs every point", "[bench][e2e]") {
  ServerProcess server(28418, {"--set", "kv.page_size=16"});
  BenchConfig c = small_config(server);
  c.workload.kind = WorkloadKind::kSharedPrefix;
  c.workload.prefix_len = 64;
  c.workload.num_groups = 2;
  c.workload.input_len = {8, 8};
  c.max_concurrency = 0;
  c.request_rate = 50;  // Poisson, open loop
  c.num_prompts = 10;
  auto r = run_bench(c);
  REQUIRE(r.is_ok());
  CHECK(r->metrics.completed == 10);
  REQUIRE(r->server.prefix_hit_rate.has_value());
  // 10 prompts of 72 tokens in 2 groups: all but the first of each group can reuse 64 tokens.
  CHECK(*r->server.prefix_hit_rate > 0.3);

  Sweep sweep;
  sweep.values = {1, 2};
  BenchConfig s = small_config(server);
  s.num_prompts = 3;
  s.workload.input_len = {40, 40};  // two full pages each: a repeated prompt would hit the prefix cache
  auto points = run_sweep(s, sweep);
  REQUIRE(points.is_ok());
  REQUIRE(points->size() == 2);
  // The second point draws its own prompts, so none is served from the cache
  // the first point filled.
  REQUIRE((*points)[1].server.prefix_hit_tokens.has_value());
  CHECK(*(*points)[1].server.prefix_hit_tokens == 0);
  CHECK((*points)[0].config.max_concurrency == 1);
  CHECK((*points)[0].metrics.max_concurrency_seen == 1);
  CHECK((*points)[1].config.max_concurrency == 2);
  std::vector<std::string> written;
  const pagoda::Status st = write_sweep_plots(*points, sweep.param, "/tmp/pagoda_bench_e2e_test", &written);
  REQUIRE_FALSE(written.empty());
  CHECK(std::ifstream(written[0]).good());  // the .dat file, with or without gnuplot
  if (st.is_ok()) {
    CHECK(written.size() == 4);  // .dat, .gp and two PNGs
    for (const auto& w : written) CHECK(std::ifstream(w).good());
  } else {
    CHECK(st.message().find("gnuplot") != std::string::npos);  // degrades with a clear message
  }
  for (const auto& w : written) std::remove(w.c_str());
}

TEST_CASE("bench: a conversation run, as chat and as completions, is served mostly from the prefix cache",
          "[bench][e2e]") {
  ServerProcess server(28421, {"--set", "kv.page_size=16"});
  for (const char* endpoint : {"/v1/chat/completions", "/v1/completions"}) {
    INFO(endpoint);
    BenchConfig c = small_config(server);
    c.endpoint = endpoint;
    c.workload.kind = WorkloadKind::kConversation;
    c.workload.form = PromptForm::kWords;
    c.workload.prefix_len = 0;  // no system prompt: every hit is a turn finding the one before it
    c.workload.num_conversations = 4;
    c.workload.turns = 4;
    c.workload.input_len = {32, 32};
    c.workload.output_len = {16, 16};
    c.session_header = "X-Session-Id";
    c.max_concurrency = 2;
    c.num_prompts = 16;
    auto r = run_bench(c);
    REQUIRE(r.is_ok());
    CHECK(r->metrics.completed == 16);
    CHECK(r->workload["kind"] == "conversation");
    REQUIRE(r->server.prefix_hit_rate.has_value());
    // Turns 2-4 find the turn before them cached: prompts of about 32, 80,
    // 128 and 176 tokens reuse 0, 32, 80 and 128 of them (57%); prompts that
    // did not extend each other would share nothing.
    CHECK(*r->server.prefix_hit_rate > 0.4);
  }
}

TEST_CASE("bench: failures are reported, not thrown", "[bench][e2e]") {
  ServerProcess server(28419, {});
  BenchConfig c = small_config(server);
  c.model = "no-such-model";
  auto r = run_bench(c);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("404") != std::string::npos);

  // Requests for more tokens than the context allows fail with HTTP 400, counted by kind.
  BenchConfig big = small_config(server);
  big.workload.output_len = {100000, 100000};
  big.num_prompts = 3;
  auto rb = run_bench(big);
  REQUIRE(rb.is_ok());  // the probe asks for one token and succeeds
  CHECK(rb->metrics.completed == 0);
  CHECK(rb->metrics.failed == 3);
  CHECK(rb->metrics.failures.count("http_400") == 1);

  BenchConfig closed = small_config(server);
  closed.url = "http://127.0.0.1:1";  // nothing listens there
  auto rc = run_bench(closed);
  REQUIRE_FALSE(rc.is_ok());
}

TEST_CASE("bench: a run ends cleanly while a /metrics poll is in flight", "[bench][e2e]") {
  // The poller may be inside a /metrics request when the last request ends;
  // the run must wait for it before its state goes away (a pass of the serving
  // matrix once died with "double free" here). Polling back to back makes that
  // overlap likely in every run; the ASan build turns it into a failure.
  ServerProcess server(28420, {});
  for (int i = 0; i < 8; ++i) {
    BenchConfig c = small_config(server);
    c.num_prompts = 3;
    c.metrics_interval_s = 1e-6;
    auto r = run_bench(c);
    REQUIRE(r.is_ok());
    CHECK(r->metrics.completed == 3);
    CHECK(r->server.polls > 0);
  }
}
