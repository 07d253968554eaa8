#include "bench/bench_serve.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include "bench/arrivals.h"
#include "bench/client.h"
#include "bench/server_metrics.h"

namespace pagoda::bench {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

constexpr auto kControlTimeout = std::chrono::milliseconds(10000);

std::string now_string() {
  const std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&t));
  return buf;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::chrono::milliseconds to_ms(double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000.0)); }

// The request body for one prompt.
std::string make_body(const BenchConfig& cfg, const std::string& model, const PromptSpec& p) {
  json body = cfg.extra_body.is_object() ? cfg.extra_body : json::object();
  body["model"] = model;
  const bool chat = cfg.endpoint.find("chat") != std::string::npos;
  if (chat && !p.messages.empty()) {
    body["messages"] = json::array();
    for (const ChatTurn& m : p.messages) body["messages"].push_back({{"role", m.role}, {"content", m.content}});
  } else if (chat) {
    body["messages"] = json::array({{{"role", "user"}, {"content", p.text}}});
  } else if (p.use_ids) body["prompt"] = p.ids;
  else body["prompt"] = p.text;
  body[chat ? "max_completion_tokens" : "max_tokens"] = p.max_tokens;
  if (!body.contains("temperature")) body["temperature"] = cfg.temperature;
  if (cfg.ignore_eos) body["ignore_eos"] = true;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  return body.dump();
}

// One run: the dispatcher, the request coroutines and the /metrics poller,
// all on one single-threaded io_context.
class Run {
 public:
  Run(const BenchConfig& cfg, asio::io_context& io, HttpClient& client, const Workload& workload,
      ArrivalProcess arrivals, std::string model)
      : cfg_(cfg), io_(io), client_(client), workload_(workload), arrivals_(std::move(arrivals)),
        model_(std::move(model)), wake_(io) {}

  asio::awaitable<void> dispatch() {
    origin_ = Clock::now();
    const auto timeout = to_ms(cfg_.timeout_s);
    double next_s = 0;
    for (size_t i = 0;; ++i) {
      if (cfg_.num_prompts > 0 && static_cast<int64_t>(i) >= cfg_.num_prompts) break;
      if (i > 0) next_s += arrivals_.next_gap_s();
      if (cfg_.duration_s > 0 && next_s >= cfg_.duration_s) break;
      if (next_s > seconds_since(origin_)) {
        asio::steady_timer t(io_);
        t.expires_at(origin_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(next_s)));
        co_await t.async_wait(asio::use_awaitable);
      }
      while (cfg_.max_concurrency > 0 && in_flight_ >= cfg_.max_concurrency) co_await wait_for_wake();
      if (cfg_.duration_s > 0 && seconds_since(origin_) >= cfg_.duration_s) break;
      ++in_flight_;
      ++sent_;
      asio::co_spawn(io_, one(i, timeout), asio::detached);
    }
    while (in_flight_ > 0) co_await wait_for_wake();
    duration_s_ = seconds_since(origin_);
    finished_ = true;
    ticker_.cancel();
  }

  // Starts the /metrics poller. It may be inside a request when dispatch()
  // ends, so whoever owns the Run (and the client) must co_await
  // poller_done() before destroying them.
  void start_polling() {
    polling_ = true;
    asio::co_spawn(io_, poll_loop(), asio::detached);
  }

  asio::awaitable<void> poller_done() {
    while (polling_) co_await wait_for_wake();
  }

  std::vector<RequestRecord>& records() { return records_; }
  ServerSide& server() { return server_; }
  double duration_s() const { return duration_s_; }

 private:
  asio::awaitable<void> poll_loop() {
    const double period = cfg_.metrics_interval_s > 0 ? cfg_.metrics_interval_s : 0.5;
    double last_print = -1;
    while (!finished_) {
      ticker_.expires_after(to_ms(period));
      boost::system::error_code ec;
      co_await ticker_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (finished_) break;
      if (cfg_.metrics_interval_s > 0 && server_.available) {
        HttpReply m = co_await client_.get("/metrics", kControlTimeout);
        if (m.status == 200) {
          const auto s = parse_prometheus(m.body);
          ++server_.polls;
          if (auto v = sample(s, "pagoda_kv_usage_ratio"))
            server_.kv_usage_peak = std::max(server_.kv_usage_peak.value_or(0.0), *v);
          if (auto v = sample(s, "pagoda_requests_running"))
            server_.running_peak = std::max(server_.running_peak.value_or(0.0), *v);
          const auto allocated = sample(s, "pagoda_kv_slots_allocated");
          const auto unused = sample(s, "pagoda_kv_slots_unused");
          if (allocated && unused) {
            server_.kv_slots_allocated_sum += *allocated;
            server_.kv_slots_unused_sum += *unused;
            if (server_.kv_slots_allocated_sum > 0)
              server_.kv_slot_waste = server_.kv_slots_unused_sum / server_.kv_slots_allocated_sum;
          }
        }
      }
      const double t = seconds_since(origin_);
      const bool terminal = cfg_.progress == BenchConfig::Progress::kTerminal;
      if (cfg_.progress != BenchConfig::Progress::kOff &&
          t - last_print >= (terminal ? 0.5 : kProgressLineInterval_s)) {
        last_print = t;
        print_progress(t, terminal);
      }
    }
    if (cfg_.progress == BenchConfig::Progress::kTerminal) {
      std::printf("\r%100s\r", "");
      std::fflush(stdout);
    }
    polling_ = false;
    wake_.cancel();
  }

  // "  45% (90 of 200 requests), ETA 15 s: 90 done, 0 failed, 8 in flight,
  // 12.3 s, 120.5 output tok/s". The share done is of --num-prompts, else of
  // --duration.
  void print_progress(double t, bool terminal) {
    const auto done = static_cast<long long>(records_.size());
    double share = -1;
    std::string of;
    // Whichever limit ends the run first is the one nearer its end.
    if (cfg_.num_prompts > 0) {
      share = static_cast<double>(done) / static_cast<double>(cfg_.num_prompts);
      of = " (" + std::to_string(done) + " of " + std::to_string(cfg_.num_prompts) + " requests)";
    }
    if (cfg_.duration_s > 0 && std::min(1.0, t / cfg_.duration_s) > share) {
      share = std::min(1.0, t / cfg_.duration_s);
      of = " (of " + std::to_string(static_cast<long long>(cfg_.duration_s)) + " s)";
    }
    std::string head;
    if (share >= 0) {
      char buf[96];
      if (share > 0) {
        std::snprintf(buf, sizeof(buf), "%3.0f%%%s, ETA %.0f s: ", 100 * share, of.c_str(), t * (1 - share) / share);
      } else {
        std::snprintf(buf, sizeof(buf), "%3.0f%%%s: ", 0.0, of.c_str());
      }
      head = buf;
    }
    std::printf("%s  %s%lld done, %lld failed, %lld in flight, %.1f s, %.1f output tok/s%s", terminal ? "\r" : "",
                head.c_str(), static_cast<long long>(records_.size() - failed_), static_cast<long long>(failed_),
                static_cast<long long>(in_flight_), t, t > 0 ? static_cast<double>(output_tokens_) / t : 0.0,
                terminal ? "   " : "\n");
    std::fflush(stdout);
  }

  asio::awaitable<void> one(size_t i, std::chrono::milliseconds timeout) {
    const PromptSpec p = workload_.at(i);
    HttpClient::Headers headers;
    if (!cfg_.session_header.empty() && !p.session.empty()) headers.emplace_back(cfg_.session_header, p.session);
    RequestRecord r =
        co_await client_.stream(cfg_.endpoint, make_body(cfg_, model_, p), origin_, timeout, std::move(headers));
    if (r.prompt_tokens == 0) r.prompt_tokens = p.input_len;
    if (!r.ok()) ++failed_;
    output_tokens_ += r.ok() ? r.output_tokens : 0;
    records_.push_back(std::move(r));
    --in_flight_;
    wake_.cancel();
  }

  asio::awaitable<void> wait_for_wake() {
    wake_.expires_at(Clock::time_point::max());
    boost::system::error_code ec;
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  const BenchConfig& cfg_;
  asio::io_context& io_;
  HttpClient& client_;
  const Workload& workload_;
  ArrivalProcess arrivals_;
  std::string model_;
  asio::steady_timer wake_;  // cancelled whenever a request finishes, and when the poller returns
  asio::steady_timer ticker_{io_};
  Clock::time_point origin_ = Clock::now();
  int64_t in_flight_ = 0, sent_ = 0, failed_ = 0, output_tokens_ = 0;
  bool finished_ = false;
  bool polling_ = false;  // poll_loop() has not returned yet
  double duration_s_ = 0;
  std::vector<RequestRecord> records_;
  ServerSide server_;
};

// Asks /v1/models for the served model's name.
asio::awaitable<Result<std::string>> discover_model(HttpClient& client) {
  HttpReply r = co_await client.get("/v1/models", kControlTimeout);
  if (r.status == 0)  // no answer at all: nothing listens there, or the network is in the way
    co_return Status::unavailable("cannot reach the server (" + r.error + ")").with_field("connection");
  if (r.status == 401) co_return Status::unavailable("GET /v1/models answered 401").with_field("http_401");
  if (r.status != 200)
    co_return Status::unavailable("GET /v1/models answered HTTP " + std::to_string(r.status) + "; pass --model");
  json j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty() && j["data"][0].is_object() &&
      j["data"][0].contains("id") && j["data"][0]["id"].is_string())
    co_return j["data"][0]["id"].get<std::string>();
  co_return Status::unavailable("GET /v1/models listed no model; pass --model");
}

// Learns the vocabulary size from POST /detokenize (a pagoda and vLLM
// extension) by binary search on the largest accepted token id.
asio::awaitable<int> detokenize_status(HttpClient& client, int64_t id) {
  json body = json::object();
  body["tokens"] = json::array({id});
  HttpReply r = co_await client.post("/detokenize", body.dump(), kControlTimeout);
  co_return r.status;
}

asio::awaitable<Result<int64_t>> discover_vocab(HttpClient& client) {
  const int first = co_await detokenize_status(client, 0);
  if (first == 0)
    co_return Status::unavailable("cannot reach the server (POST /detokenize got no answer)").with_field("connection");
  if (first == 401) co_return Status::unavailable("POST /detokenize answered 401").with_field("http_401");
  if (first != 200)
    co_return Status::unavailable("cannot learn the vocabulary size (POST /detokenize answered " +
                                  std::to_string(first) + "); pass --vocab-size or use --prompt-form words");
  int64_t lo = 0, hi = int64_t{1} << 22;  // lo valid, hi invalid
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (co_await detokenize_status(client, mid) == 200) lo = mid;
    else hi = mid;
  }
  co_return lo + 1;
}

// 256 random words (one word per token assumed).
std::string sample_words(uint64_t seed) {
  WorkloadSpec sample;
  sample.form = PromptForm::kWords;
  sample.input_len = {256, 256};
  sample.seed = seed;
  auto w = Workload::create(sample);
  return w ? w->at(0).text : std::string();
}

// --input-len counts tokens: for word prompts, what the server's tokenizer
// makes of a word, measured on a sample through POST /tokenize (pagoda's and
// vLLM's route). 1 when the server has no such route.
asio::awaitable<double> measure_tokens_per_word(HttpClient& client, uint64_t seed) {
  const std::string text = sample_words(seed);
  if (text.empty()) co_return 1.0;
  const auto words = static_cast<double>(std::count(text.begin(), text.end(), ' ') + 1);
  json request = json::object();
  request["prompt"] = text;
  HttpReply r = co_await client.post("/tokenize", request.dump(), kControlTimeout);
  if (r.status != 200) co_return 1.0;
  const json body = json::parse(r.body, nullptr, false);
  if (!body.is_object() || !body.contains("tokens") || !body["tokens"].is_array()) co_return 1.0;
  // The tokenizer may add a BOS token; one token more or less in 256 words
  // is within the rounding anyway.
  const auto tokens = static_cast<double>(body["tokens"].size());
  co_return tokens > 0 ? tokens / words : 1.0;
}

asio::awaitable<std::optional<std::map<std::string, double>>> scrape(HttpClient& client) {
  HttpReply r = co_await client.get("/metrics", kControlTimeout);
  if (r.status != 200) co_return std::nullopt;
  co_return parse_prometheus(r.body);
}

void fill_deltas(const std::map<std::string, double>& a, const std::map<std::string, double>& b, ServerSide* s) {
  s->prefix_query_tokens = delta(a, b, "pagoda_prefix_cache_queries_tokens_total");
  s->prefix_hit_tokens = delta(a, b, "pagoda_prefix_cache_hits_tokens_total");
  if (s->prefix_query_tokens && s->prefix_hit_tokens && *s->prefix_query_tokens > 0)
    s->prefix_hit_rate = *s->prefix_hit_tokens / *s->prefix_query_tokens;
  s->generation_tokens = delta(a, b, "pagoda_generation_tokens_total");
  s->prompt_tokens = delta(a, b, "pagoda_prompt_tokens_total");
  s->preemptions = delta(a, b, "pagoda_preemptions_total");
  if (auto v = sample(b, "pagoda_kv_usage_ratio")) s->kv_usage_peak = std::max(s->kv_usage_peak.value_or(0.0), *v);
}

asio::awaitable<Result<BenchResult>> run_async(const BenchConfig& cfg, asio::io_context& io) {
  // (Result<T> has no default constructor, which co_spawn's completion needs:
  // run_bench wraps this coroutine.)
  auto ep = parse_url(cfg.url);
  if (!ep) co_return ep.status();
  HttpClient client(io.get_executor(), *ep, cfg.api_key);
  if (Status st = co_await client.resolve(); !st.is_ok()) co_return st;

  BenchResult res;
  res.config = cfg;
  res.started_at = now_string();
  if (cfg.model.empty()) {
    auto m = co_await discover_model(client);
    if (!m) co_return m.status();
    res.model = *m;
  } else {
    res.model = cfg.model;
  }
  WorkloadSpec spec = cfg.workload;
  const bool chat = cfg.endpoint.find("chat") != std::string::npos;
  if (chat && spec.kind != WorkloadKind::kFile) spec.form = PromptForm::kWords;
  if (spec.form == PromptForm::kTokenIds && spec.kind != WorkloadKind::kFile && spec.vocab_size == 0) {
    auto v = co_await discover_vocab(client);
    if (!v) co_return v.status();
    spec.vocab_size = *v;
  }
  if (spec.form == PromptForm::kWords && spec.kind != WorkloadKind::kFile)
    spec.tokens_per_word = co_await measure_tokens_per_word(client, spec.seed);
  res.vocab_size = spec.vocab_size;
  auto workload = Workload::create(spec);
  if (!workload) co_return workload.status();
  res.workload = workload->describe();
  BenchConfig run_cfg = cfg;
  if (run_cfg.num_prompts == 0 && run_cfg.duration_s <= 0) {
    if (workload->natural_size() == 0)
      co_return Status::invalid_argument("give --num-prompts or --duration (or a --dataset-file)");
    run_cfg.num_prompts = static_cast<int64_t>(workload->natural_size());
  }
  if (chat) {
    for (size_t i = 0; i < std::max<size_t>(workload->natural_size(), 1); ++i)
      if (workload->at(i).use_ids)
        co_return Status::invalid_argument("the chat endpoint needs text prompts; the dataset holds token ids");
  }
  auto arrivals = ArrivalProcess::create(cfg.request_rate, cfg.burstiness, cfg.workload.seed + 7);
  if (!arrivals) co_return arrivals.status();

  // One small request first: fail fast with the server's own message.
  {
    PromptSpec probe;
    probe.use_ids = spec.form == PromptForm::kTokenIds && spec.kind != WorkloadKind::kFile;
    if (probe.use_ids) probe.ids = {Workload::id_lo(spec.vocab_size), Workload::id_lo(spec.vocab_size) + 1};
    probe.text = "Hello";
    probe.max_tokens = 1;
    RequestRecord r =
        co_await client.stream(cfg.endpoint, make_body(cfg, res.model, probe), Clock::now(), to_ms(cfg.timeout_s));
    if (!r.ok())
      co_return Status::unavailable("the probe request failed (" + std::string(failure_kind_name(r.failure)) +
                                    (r.http_status ? " " + std::to_string(r.http_status) : std::string()) +
                                    "): " + r.error)
          .with_field(failure_key(r));
  }

  auto before = co_await scrape(client);
  Run run(run_cfg, io, client, *workload, std::move(*arrivals), res.model);
  run.server().available = before.has_value();
  run.start_polling();
  co_await run.dispatch();
  co_await run.poller_done();
  if (before) {
    if (auto after = co_await scrape(client)) fill_deltas(*before, *after, &run.server());
  }
  res.config = run_cfg;
  res.server = run.server();
  res.records = std::move(run.records());
  res.metrics = compute_metrics(res.records, run.duration_s(), cfg.slo);
  co_return res;
}

}  // namespace

Result<BenchResult> run_bench(const BenchConfig& config) {
  asio::io_context io(1);
  std::optional<Result<BenchResult>> out;
  std::exception_ptr failure;
  auto wrapper = [&]() -> asio::awaitable<void> { out.emplace(co_await run_async(config, io)); };
  asio::co_spawn(io, wrapper(), [&](std::exception_ptr e) { failure = e; });
  try {
    io.run();
    if (failure) std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    return Status::internal(std::string("bench run failed: ") + e.what());
  }
  if (!out) return Status::internal("bench run ended without a result");
  return std::move(*out);
}

const char* sweep_param_name(SweepParam p) {
  return p == SweepParam::kMaxConcurrency ? "max-concurrency" : "request-rate";
}

Result<Sweep> parse_sweep(const std::string& text) {
  Sweep s;
  const size_t eq = text.find('=');
  const std::string name = text.substr(0, eq);
  if (name == "max-concurrency" || name == "concurrency") s.param = SweepParam::kMaxConcurrency;
  else if (name == "request-rate" || name == "rate") s.param = SweepParam::kRequestRate;
  else
    return Status::invalid_argument("--sweep must be max-concurrency=V1,V2,... or request-rate=V1,V2,..., got '" +
                                    text + "'");
  if (eq == std::string::npos) return Status::invalid_argument("--sweep needs values after '='");
  std::stringstream in(text.substr(eq + 1));
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const double v = item == "inf" ? std::numeric_limits<double>::infinity() : std::strtod(item.c_str(), &end);
    const bool bad = item.empty() || (item != "inf" && *end != '\0') || !(v > 0) ||
                     (s.param == SweepParam::kMaxConcurrency && (std::isinf(v) || v != std::floor(v)));
    if (bad) return Status::invalid_argument("--sweep: bad value '" + item + "' for " + sweep_param_name(s.param));
    s.values.push_back(v);
  }
  if (s.values.empty()) return Status::invalid_argument("--sweep needs at least one value");
  return s;
}

Result<std::vector<BenchResult>> run_sweep(const BenchConfig& config, const Sweep& sweep) {
  std::vector<BenchResult> out;
  for (size_t i = 0; i < sweep.values.size(); ++i) {
    const double v = sweep.values[i];
    BenchConfig c = config;
    // Each point draws its own prompts: the same prompts again would be
    // served from the server's prefix cache and look faster.
    c.workload.seed = config.workload.seed + 100 * static_cast<uint64_t>(i);
    if (sweep.param == SweepParam::kMaxConcurrency) c.max_concurrency = static_cast<int64_t>(v);
    else c.request_rate = v;
    auto r = run_bench(c);
    if (!r)
      return Status(r.status().code(),
                    std::string(sweep_param_name(sweep.param)) + "=" + std::to_string(v) + ": " + r.status().message());
    out.push_back(std::move(*r));
  }
  return out;
}

}  // namespace pagoda::bench
