// pagoda_soak: soak and overload tests of a real `pagoda serve` (stories260K
// on a loopback port). See RELIABILITY.md for the recorded runs.
//
//   soak:     measure capacity (closed loop, 16 clients), then offer
//             --load-factor (2) x capacity as an open-loop Poisson stream for
//             --duration seconds, with ~20% of clients hanging up mid-stream,
//             a few per cent malformed requests and 5% protocol probes (a
//             request plus one byte then gone, HEAD pipelined, HTTP/1.0
//             streams, chunked bodies with small and oversized trailers);
//             then SIGTERM while requests are in flight.
//   overload: the same at 10 x capacity with a small scheduler.max_queue.
//
// Every check prints PASS/FAIL; the exit status is 0 only if all pass. A JSON
// report goes to stdout (and --json FILE).
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <nlohmann/json.hpp>

#include "tools/soak/load_client.h"
#include "tools/soak/load_stats.h"
#include "tools/soak/server_child.h"

namespace asio = boost::asio;
using namespace pagoda::soak;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string mode = "soak";
  std::string binary;
  int port = 18790;
  double duration_s = 60;
  double capacity_s = 10;
  int capacity_clients = 16;
  double load_factor = -1;   // default: 2 (soak) or 10 (overload)
  double disconnect_p = -1;  // default: 0.2 (soak) or 0 (overload)
  double malformed_p = 0.03;
  double probe_p = -1;     // default: 0.05 (soak) or 0 (overload)
  int64_t max_queue = -1;  // default: 256 (soak) or 32 (overload)
  double warmup_s = -1;    // soak: default max(10, 20% of duration)
  double rss_growth = 0.05;
  double reject_p99_ms = 100;
  double throughput_floor = 0.7;
  double grace_s = 30;
  int shutdown_streams = 8;
  int tokens_lo = 16, tokens_hi = 96;
  uint64_t seed = 1;
  std::string json_out;
  std::vector<std::string> extra_sets;
};

class Checks {
 public:
  void check(bool ok, const std::string& what, const json& value) {
    std::printf("%s  %s  (%s)\n", ok ? "PASS" : "FAIL", what.c_str(), value.dump().c_str());
    std::fflush(stdout);
    report_.push_back({{"check", what}, {"ok", ok}, {"value", value}});
    all_ok_ = all_ok_ && ok;
  }
  bool all_ok() const { return all_ok_; }
  const json& report() const { return report_; }

 private:
  bool all_ok_ = true;
  json report_ = json::array();
};

// Samples the server's gauges and memory while load runs (own thread).
class Sampler {
 public:
  explicit Sampler(ServerChild* server) : server_(server) {}
  void start() {
    stop_ = false;
    thread_ = std::thread([this] {
      while (!stop_) {
        auto m = server_->metrics();
        const int64_t rss = server_->rss_kib();
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (!m.empty()) {
            max_waiting_ = std::max(max_waiting_, m["pagoda_requests_waiting"]);
            max_running_ = std::max(max_running_, m["pagoda_requests_running"]);
          }
          max_rss_kib_ = std::max(max_rss_kib_, rss);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void reset() {
    std::lock_guard<std::mutex> lock(mu_);
    max_waiting_ = max_running_ = 0;
    max_rss_kib_ = 0;
  }
  double max_waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_waiting_;
  }
  int64_t max_rss_kib() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_rss_kib_;
  }

 private:
  ServerChild* server_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  double max_waiting_ = 0, max_running_ = 0;
  int64_t max_rss_kib_ = 0;
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double finished_total(const std::map<std::string, double>& m) {
  double n = 0;
  for (const auto& [k, v] : m)
    if (k.rfind("pagoda_requests_finished_total{", 0) == 0) n += v;
  return n;
}

// One request, its outcome added to `stats`. A plain coroutine function (not
// a lambda capturing the Shot): its by-value parameter lives in its own frame.
asio::awaitable<void> record_shot(LoadStats* stats, int port, Shot shot, std::chrono::milliseconds timeout) {
  const Outcome out = co_await run_shot(port, shot, timeout);
  stats->add(out);
}

// Closed loop: `clients` coroutines, each sending normal requests back to back.
LoadStats closed_loop(int port, int clients, double seconds, const Options& o, std::mt19937_64& rng) {
  asio::io_context io;
  LoadStats stats;
  const auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  for (int c = 0; c < clients; ++c) {
    asio::co_spawn(
        io,
        [&, seed = rng()]() -> asio::awaitable<void> {
          std::mt19937_64 r(seed);
          while (Clock::now() < deadline) {
            const Shot s = make_shot(r, 0, 0, o.tokens_lo, o.tokens_hi);
            const Outcome out = co_await run_shot(port, s, std::chrono::seconds(120));
            stats.add(out);
          }
        },
        asio::detached);
  }
  io.run();
  return stats;
}

// Open loop: Poisson arrivals at `rate` per second for `seconds`, then waits
// for every request to end.
LoadStats open_loop(int port, double rate, double seconds, double disconnect_p, double malformed_p, const Options& o,
                    std::mt19937_64& rng) {
  asio::io_context io;
  LoadStats stats;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::exponential_distribution<double> gap(rate);
        auto next = Clock::now();
        const auto end = next + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
        const auto executor = co_await asio::this_coro::executor;
        asio::steady_timer timer(executor);
        while (true) {
          next += std::chrono::microseconds(static_cast<int64_t>(gap(rng) * 1e6));
          if (next >= end) break;
          timer.expires_at(next);
          co_await timer.async_wait(asio::use_awaitable);
          asio::co_spawn(
              executor,
              record_shot(&stats, port, make_shot(rng, disconnect_p, malformed_p, o.tokens_lo, o.tokens_hi, o.probe_p),
                          std::chrono::seconds(300)),
              asio::detached);
        }
      },
      asio::detached);
  io.run();
  return stats;
}

// Waits until the server holds no request and no KV page; returns the seconds it took (-1: never).
double wait_idle(ServerChild& server, double timeout_s, std::map<std::string, double>* last) {
  const auto t0 = Clock::now();
  while (seconds_since(t0) < timeout_s) {
    auto m = server.metrics();
    if (!m.empty() && m["pagoda_kv_pages_in_use"] == 0 && m["pagoda_requests_running"] == 0 &&
        m["pagoda_requests_waiting"] == 0) {
      *last = m;
      return seconds_since(t0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  *last = server.metrics();
  return -1;
}

// SIGTERM with `n` streams in flight: they must finish and the server exit 0 within the grace period.
void shutdown_phase(ServerChild& server, const Options& o, std::mt19937_64& rng, Checks& checks, json& report) {
  asio::io_context io;
  LoadStats stats;
  for (int i = 0; i < o.shutdown_streams; ++i) {
    Shot s = make_shot(rng, 0, 0, 200, 300);
    s.stream = true;
    json body = json::parse(s.body);
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    s.body = body.dump();
    asio::co_spawn(io, record_shot(&stats, server.port(), std::move(s), std::chrono::seconds(120)), asio::detached);
  }
  std::thread client([&] { io.run(); });
  for (int i = 0; i < 100; ++i) {  // until the streams run
    auto m = server.metrics();
    if (m["pagoda_requests_running"] + m["pagoda_requests_waiting"] >= o.shutdown_streams) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto t0 = Clock::now();
  server.terminate();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int late = http_get(server.port(), "/v1/models", nullptr, std::chrono::milliseconds(2000));
  const int code = server.wait_exit(std::chrono::milliseconds(static_cast<int64_t>((o.grace_s + 15) * 1000)));
  const double exit_s = seconds_since(t0);
  client.join();
  report["shutdown"] = stats.summary(exit_s);
  report["shutdown"]["exit_code"] = code;
  report["shutdown"]["exit_s"] = exit_s;
  checks.check(code == 0, "SIGTERM: the server exits with status 0", code);
  checks.check(exit_s < o.grace_s, "SIGTERM: exit within the grace period (s)", exit_s);
  checks.check(stats.count(Outcome::Kind::kCompleted) == o.shutdown_streams,
               "SIGTERM: every in-flight stream completes", stats.count(Outcome::Kind::kCompleted));
  checks.check(late == 0 || late == 503, "SIGTERM: new requests are refused (503 or no connection)", late);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"pagoda_soak: soak and overload tests of `pagoda serve`"};
  app.add_option("--mode", o.mode, "soak | overload")->check(CLI::IsMember({"soak", "overload"}));
  app.add_option("--pagoda", o.binary, "the pagoda binary")->required();
  app.add_option("--port", o.port, "loopback port for the server");
  app.add_option("--duration", o.duration_s, "seconds of offered load");
  app.add_option("--capacity-seconds", o.capacity_s, "seconds of the closed-loop capacity measurement");
  app.add_option("--capacity-clients", o.capacity_clients, "concurrency of the capacity measurement");
  app.add_option("--load-factor", o.load_factor, "offered load / capacity (default 2 soak, 10 overload)");
  app.add_option("--disconnect", o.disconnect_p, "fraction of clients hanging up mid-stream (default 0.2 / 0)");
  app.add_option("--malformed", o.malformed_p, "fraction of malformed requests");
  app.add_option("--probes", o.probe_p,
                 "fraction of protocol probes: a request plus one byte then gone, HEAD pipelined, HTTP/1.0 "
                 "streams, chunked bodies with small and oversized trailers (default 0.05 / 0)");
  app.add_option("--max-queue", o.max_queue, "scheduler.max_queue (default 256 soak, 32 overload)");
  app.add_option("--warmup", o.warmup_s, "soak: warm-up seconds before the memory baseline");
  app.add_option("--rss-growth", o.rss_growth, "soak: allowed idle RSS growth after warm-up (fraction)");
  app.add_option("--reject-p99-ms", o.reject_p99_ms, "overload: p99 latency bound of 429/503 answers (ms)");
  app.add_option("--throughput-floor", o.throughput_floor,
                 "overload: output tokens/s must stay above this fraction of capacity");
  app.add_option("--grace", o.grace_s, "server.shutdown_grace_s");
  app.add_option("--seed", o.seed, "random seed");
  app.add_option("--json", o.json_out, "also write the report here");
  app.add_option("--set", o.extra_sets, "extra server config (key=value), repeatable");
  CLI11_PARSE(app, argc, argv);
  const bool overload = o.mode == "overload";
  if (o.load_factor < 0) o.load_factor = overload ? 10 : 2;
  if (o.disconnect_p < 0) o.disconnect_p = overload ? 0 : 0.2;
  if (o.probe_p < 0) o.probe_p = overload ? 0 : 0.05;
  if (o.max_queue < 0) o.max_queue = overload ? 32 : 256;
  if (o.warmup_s < 0) o.warmup_s = std::max(10.0, 0.2 * o.duration_s);

  std::vector<std::string> args = {"--set", "logging.level=warn",
                                   "--set", "server.max_connections_per_client=100000",
                                   "--set", "server.max_connections=8192",
                                   "--set", "kv.num_pages=2048",
                                   "--set", "scheduler.max_queue=" + std::to_string(o.max_queue),
                                   "--set", "server.shutdown_grace_s=" + std::to_string(o.grace_s)};
  for (const auto& s : o.extra_sets) {
    args.push_back("--set");
    args.push_back(s);
  }
  ServerChild server;
  std::string error;
  if (!server.start(o.binary, o.port, args, &error)) {
    std::fprintf(stderr, "pagoda_soak: %s\n", error.c_str());
    return 2;
  }
  std::mt19937_64 rng(o.seed);
  Checks checks;
  json report = {{"mode", o.mode},
                 {"load_factor", o.load_factor},
                 {"max_queue", o.max_queue},
                 {"disconnect_p", o.disconnect_p},
                 {"malformed_p", o.malformed_p},
                 {"probe_p", o.probe_p}};
  Sampler sampler(&server);
  std::map<std::string, double> idle;

  // 1. Capacity: closed loop.
  auto m0 = server.metrics();
  auto t0 = Clock::now();
  LoadStats cap = closed_loop(o.port, o.capacity_clients, o.capacity_s, o, rng);
  double cap_s = seconds_since(t0);
  auto m1 = server.metrics();
  const double cap_rps = static_cast<double>(cap.count(Outcome::Kind::kCompleted)) / cap_s;
  const double cap_tok_s = (m1["pagoda_generation_tokens_total"] - m0["pagoda_generation_tokens_total"]) / cap_s;
  report["capacity"] = cap.summary(cap_s);
  report["capacity"]["server_tokens_per_s"] = cap_tok_s;
  std::printf("capacity: %.1f requests/s, %.0f output tokens/s (closed loop, %d clients, %.1f s)\n", cap_rps, cap_tok_s,
              o.capacity_clients, cap_s);
  checks.check(cap.count(Outcome::Kind::kFailed) == 0 && cap_rps > 0, "capacity run: no failures", cap.failures());
  wait_idle(server, 30, &idle);
  const double rate = o.load_factor * cap_rps;

  int64_t rss_base = server.rss_kib();
  LoadStats main_stats;
  double main_s = 0;
  double main_tok_s = 0;
  double accepted_client = 0;
  double finished_server = 0;
  if (!overload) {
    // 2. Warm-up at the soak rate, then the memory baseline at idle.
    LoadStats warm = open_loop(o.port, rate, o.warmup_s, o.disconnect_p, o.malformed_p, o, rng);
    report["warmup"] = warm.summary(o.warmup_s);
    checks.check(wait_idle(server, 60, &idle) >= 0, "warm-up: the server goes idle (no KV pages in use)",
                 idle["pagoda_kv_pages_in_use"]);
    rss_base = server.rss_kib();
  }
  // 3. The measured phase.
  {
    auto before = server.metrics();
    sampler.reset();
    sampler.start();
    t0 = Clock::now();
    const double seconds = overload ? o.duration_s : std::max(1.0, o.duration_s - o.warmup_s);
    main_stats = open_loop(o.port, rate, seconds, o.disconnect_p, o.malformed_p, o, rng);
    main_s = seconds_since(t0);
    sampler.stop();
    auto after = server.metrics();
    main_tok_s = (after["pagoda_generation_tokens_total"] - before["pagoda_generation_tokens_total"]) / main_s;
    finished_server = finished_total(after) - finished_total(before);
    accepted_client =
        static_cast<double>(main_stats.count(Outcome::Kind::kCompleted) + main_stats.count(Outcome::Kind::kCancelled) +
                            main_stats.count(Outcome::Kind::kHungUp));
    report["main"] = main_stats.summary(main_s);
    report["main"]["offered_per_s"] = rate;
    report["main"]["server_tokens_per_s"] = main_tok_s;
    report["main"]["max_waiting"] = sampler.max_waiting();
    report["main"]["max_rss_kib"] = sampler.max_rss_kib();
  }
  const double idle_after = wait_idle(server, 60, &idle);
  const int64_t rss_end = server.rss_kib();
  report["rss_kib"] = {{"baseline", rss_base}, {"end", rss_end}, {"max_under_load", sampler.max_rss_kib()}};
  std::printf("offered %.1f requests/s for %.0f s: %s\n", rate, main_s, report["main"].dump().c_str());

  checks.check(main_stats.count(Outcome::Kind::kFailed) == 0,
               "every request ended as completed, cancelled (seen by the client), rejected with Retry-After, "
               "a 4xx for a malformed request, or our own hang-up",
               main_stats.failures());
  checks.check(std::abs(finished_server - accepted_client) < 0.5,
               "every accepted request finished on the server (server finished == client accepted)",
               json{{"server", finished_server}, {"client", accepted_client}});
  checks.check(idle_after >= 0, "idle: KV pages in use, running and waiting return to 0",
               json{{"kv_pages_in_use", idle["pagoda_kv_pages_in_use"]}, {"seconds", idle_after}});
  if (!overload) {
    const double growth = rss_base > 0 ? static_cast<double>(rss_end - rss_base) / static_cast<double>(rss_base) : 1;
    checks.check(growth < o.rss_growth, "soak: idle RSS grows < 5% after warm-up",
                 json{{"baseline_kib", rss_base}, {"end_kib", rss_end}, {"growth", growth}});
    checks.check(main_stats.count(Outcome::Kind::kHungUp) > 0 || o.disconnect_p == 0, "soak: clients did hang up",
                 main_stats.count(Outcome::Kind::kHungUp));
  } else {
    const auto& rej = main_stats.latencies(Outcome::Kind::kRejected);
    const double rej_p99_ms = quantile(rej, 0.99) * 1000;
    const auto& done = main_stats.latencies(Outcome::Kind::kCompleted);
    const double cap_p99 = quantile(cap.latencies(Outcome::Kind::kCompleted), 0.99);
    const double adm_p99 = quantile(done, 0.99);
    // Admitted work waits behind at most max_queue + max_num_seqs requests.
    const double adm_bound = 10 * cap_p99 + 5;
    checks.check(sampler.max_waiting() <= static_cast<double>(o.max_queue),
                 "overload: the waiting queue stays <= scheduler.max_queue",
                 json{{"max_waiting", sampler.max_waiting()}, {"max_queue", o.max_queue}});
    checks.check(!rej.empty() && rej_p99_ms < o.reject_p99_ms,
                 "overload: excess requests get fast 429/503 with Retry-After (p99 ms)",
                 json{{"rejected", rej.size()}, {"p99_ms", rej_p99_ms}, {"p50_ms", quantile(rej, 0.5) * 1000}});
    checks.check(!done.empty() && adm_p99 < adm_bound, "overload: admitted requests keep a bounded latency (p99 s)",
                 json{{"p99_s", adm_p99}, {"bound_s", adm_bound}, {"capacity_p99_s", cap_p99}});
    checks.check(sampler.max_rss_kib() < static_cast<int64_t>(1.25 * static_cast<double>(rss_base)) + 32 * 1024,
                 "overload: memory stays bounded (max RSS under load vs before)",
                 json{{"before_kib", rss_base}, {"max_kib", sampler.max_rss_kib()}});
    checks.check(main_tok_s >= o.throughput_floor * cap_tok_s,
                 "overload: output tokens/s >= " + std::to_string(static_cast<int>(o.throughput_floor * 100 + 0.5)) +
                     "% of capacity",
                 json{{"overload_tok_s", main_tok_s},
                      {"capacity_tok_s", cap_tok_s},
                      {"ratio", main_tok_s / cap_tok_s},
                      {"floor", o.throughput_floor}});
  }
  // 4. SIGTERM with streams in flight.
  shutdown_phase(server, o, rng, checks, report);

  report["checks"] = checks.report();
  report["ok"] = checks.all_ok();
  std::cout << report.dump(2) << "\n";
  if (!o.json_out.empty()) std::ofstream(o.json_out) << report.dump(2) << "\n";
  std::printf("%s\n", checks.all_ok() ? "pagoda_soak: all checks passed" : "pagoda_soak: FAILED");
  return checks.all_ok() ? 0 : 1;
}
