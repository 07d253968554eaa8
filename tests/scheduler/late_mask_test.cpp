// Structured output does not stall the batch: a request whose token mask is
// not ready when its step's forward pass ends sits out of the batch (its row
// of logits kept) and samples once the mask is ready, while the other
// requests keep stepping. The grammar is real and slow at first: a JSON
// object whose one property is an enum of 20,000 random words, whose masks
// inside the string take tens of milliseconds each on their first visit with
// the Llama 2 vocabulary (30 and 43 ms on a Zen 3 class EPYC).
#include <chrono>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "structured/grammar_cache.h"
#include "tests/scheduler/test_support.h"

using namespace pagoda;
using namespace pagoda::testing;

namespace {

std::shared_ptr<const Tokenizer> llama_tokenizer() {
  static std::shared_ptr<const Tokenizer> tok = [] {
    auto t = load_tokenizer(model_file("tokenizer.bin"));
    REQUIRE(t.is_ok());
    return std::shared_ptr<const Tokenizer>(std::move(t).value());
  }();
  return tok;
}

struct EnumGrammar {
  std::set<std::string> words;
  structured::GrammarSpec spec;
};

const EnumGrammar& enum_grammar() {
  static const EnumGrammar g = [] {
    EnumGrammar e;
    std::mt19937 rng(1);
    nlohmann::ordered_json values = nlohmann::ordered_json::array();
    while (e.words.size() < 20000) {
      std::string w(4 + rng() % 9, 'a');
      for (char& c : w) c = static_cast<char>('a' + rng() % 26);
      if (e.words.insert(w).second) values.push_back(w);
    }
    e.spec.kind = structured::GrammarSpec::Kind::kJsonSchema;
    e.spec.schema = {{"type", "object"},
                     {"properties", {{"w", {{"enum", values}}}}},
                     {"required", {"w"}},
                     {"additionalProperties", false}};
    return e;
  }();
  return g;
}

// A fresh compile of the enum grammar (its own cache: no masks computed yet).
std::shared_ptr<structured::CompiledGrammar> compile_fresh() {
  structured::GrammarCache cache(structured::TokenTrie::build(*llama_tokenizer()), 4);
  auto compiled = cache.get(enum_grammar().spec);
  REQUIRE(compiled.is_ok());
  return *compiled;
}

// FakeRunner's tokens, each forward pass taking `pace` of wall time.
class PacedRunner final : public ModelRunner {
 public:
  PacedRunner(int32_t vocab, std::chrono::microseconds pace) : inner_(vocab), pace_(pace) {}
  int32_t vocab_size() const override { return inner_.vocab_size(); }
  Status run(const SchedulerOutput& step, const KvCacheManager& kv, std::vector<float>* logits,
             std::vector<float>* hidden) override {
    std::this_thread::sleep_for(pace_);
    return inner_.run(step, kv, logits, hidden);
  }

 private:
  FakeRunner inner_;
  std::chrono::microseconds pace_;
};

std::unique_ptr<EngineCore> make_core(std::shared_ptr<EngineStats> stats) {
  EngineCoreConfig cfg;
  cfg.scheduler.max_num_seqs = 8;
  cfg.scheduler.max_num_batched_tokens = 256;
  cfg.scheduler.max_model_len = 512;
  cfg.scheduler.chunked_prefill = true;
  return std::make_unique<EngineCore>(
      cfg, make_kv(16, 64),
      std::make_unique<PacedRunner>(llama_tokenizer()->vocab_size(), std::chrono::microseconds(2000)),
      llama_tokenizer(), std::move(stats));
}

// An engine (forward passes of 2 ms) running two requests: one free, with
// `free_tokens` to generate, and one constrained by the enum grammar.
struct TwoRequests {
  std::shared_ptr<EngineStats> stats = std::make_shared<EngineStats>();
  std::unique_ptr<EngineCore> core = make_core(stats);
  std::shared_ptr<CollectingSink> free_sink = std::make_shared<CollectingSink>();
  std::shared_ptr<CollectingSink> json_sink = std::make_shared<CollectingSink>();
  std::shared_ptr<Request> json_req;
  std::shared_ptr<structured::CompiledGrammar> grammar = compile_fresh();

  explicit TwoRequests(int64_t free_tokens) {
    json_req = make_request(2, {1, 500, 600}, 40, json_sink);
    json_req->grammar = std::make_unique<structured::GrammarMatcher>(grammar);
    core->add(make_request(1, {1, 700, 800}, free_tokens, free_sink));
    core->add(json_req);
  }
  bool done() const { return free_sink->done() && json_sink->done(); }
};

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("a late token mask makes only its own request wait: the batch keeps stepping") {
  // How long the slowest first mask of the grammar takes here, measured on a
  // compile of its own: the masks after {"w":" (inside the enum's string).
  double slowest_mask_ms = 0;
  {
    structured::GrammarMatcher m(compile_fresh());
    structured::TokenMask mask;
    const std::vector<int32_t> ids = structured::encode_continuation(*llama_tokenizer(), R"({"w":")");
    for (int32_t id : ids) {
      REQUIRE(m.fill_mask(mask).is_ok());
      REQUIRE(m.accept(id));
    }
    for (int i = 0; i < 2; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      REQUIRE(m.fill_mask(mask).is_ok());
      slowest_mask_ms = std::max(slowest_mask_ms, ms_since(t0));
      int32_t next = -1;  // any allowed letter token, to reach the next state
      for (int32_t id = 3; id < llama_tokenizer()->vocab_size() && next < 0; ++id)
        if (structured::mask_allows(mask, id) &&
            llama_tokenizer()->decode_piece(id).find('"') == std::string_view::npos)
          next = id;
      REQUIRE(next >= 0);
      REQUIRE(m.accept(next));
    }
  }

  TwoRequests run(60);
  auto& [stats, core, free_sink, json_sink, json_req, grammar] = run;
  double slowest_step_ms = 0;
  int steps = 0;
  while (!run.done() && steps < 5000) {
    const auto t0 = std::chrono::steady_clock::now();
    core->step();
    slowest_step_ms = std::max(slowest_step_ms, ms_since(t0));
    ++steps;
  }
  INFO("first masks up to " << slowest_mask_ms << " ms; slowest engine step " << slowest_step_ms << " ms; " << steps
                            << " steps; " << stats->late_grammar_masks.value() << " late masks; text "
                            << json_sink->text);
  REQUIRE(free_sink->done());
  REQUIRE(json_sink->done());
  CHECK(free_sink->finish == FinishReason::kLength);
  CHECK(free_sink->tokens.size() == 60);
  // The constrained output is complete and valid: one of the enum's words.
  CHECK(json_sink->finish == FinishReason::kStop);
  const auto parsed = nlohmann::json::parse(json_sink->text, nullptr, false);
  REQUIRE(parsed.is_object());
  CHECK(enum_grammar().words.count(parsed.value("w", std::string())) == 1);
  // Its masks were late (a forward pass here takes 2 ms), and no step waited
  // for one of them: the unconstrained request kept getting a token a step.
  CHECK(stats->late_grammar_masks.value() > 0);
  if (slowest_mask_ms < 10) {
    WARN("the grammar's first masks took only " << slowest_mask_ms << " ms here: too quick to show a stall");
  } else {
    CHECK(slowest_step_ms < slowest_mask_ms / 2);
  }
  CHECK(core->kv().usage().pages_in_use == 0);
}

TEST_CASE("requests sharing a grammar wait for each other's masks and not the batch") {
  // Two requests on one compiled grammar (the same schema), the second a few
  // steps behind: the one behind finds its masks cached while the one ahead
  // walks new states, under the grammar's lock. Sampling the one behind
  // needs that lock too, so it sits out with the one ahead instead of
  // making the step wait for the walk; the free request keeps stepping.
  double slowest_mask_ms = 0;
  {
    structured::GrammarMatcher m(compile_fresh());
    structured::TokenMask mask;
    for (int32_t id : structured::encode_continuation(*llama_tokenizer(), R"({"w":")")) {
      REQUIRE(m.fill_mask(mask).is_ok());
      REQUIRE(m.accept(id));
    }
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(m.fill_mask(mask).is_ok());
    slowest_mask_ms = ms_since(t0);
  }
  TwoRequests run(60);
  auto& [stats, core, free_sink, json_sink, json_req, grammar] = run;
  auto behind_sink = std::make_shared<CollectingSink>();
  auto behind = make_request(3, {1, 900, 901}, 40, behind_sink);
  behind->grammar = std::make_unique<structured::GrammarMatcher>(grammar);
  double slowest_step_ms = 0;
  int steps = 0;
  while ((!run.done() || !behind_sink->done()) && steps < 5000) {
    if (steps == 3) core->add(behind);
    const auto t0 = std::chrono::steady_clock::now();
    core->step();
    slowest_step_ms = std::max(slowest_step_ms, ms_since(t0));
    ++steps;
  }
  INFO("first mask " << slowest_mask_ms << " ms; slowest engine step " << slowest_step_ms << " ms; " << steps
                     << " steps; " << stats->late_grammar_masks.value() << " late masks; texts " << json_sink->text
                     << " and " << behind_sink->text);
  REQUIRE(run.done());
  REQUIRE(behind_sink->done());
  for (const auto& sink : {json_sink, behind_sink}) {
    CHECK(sink->finish == FinishReason::kStop);
    const auto parsed = nlohmann::json::parse(sink->text, nullptr, false);
    REQUIRE(parsed.is_object());
    CHECK(enum_grammar().words.count(parsed.value("w", std::string())) == 1);
  }
  CHECK(free_sink->tokens.size() == 60);
  if (slowest_mask_ms < 10) {
    WARN("the grammar's first masks took only " << slowest_mask_ms << " ms here: too quick to show a stall");
  } else {
    CHECK(slowest_step_ms < slowest_mask_ms / 2);
  }
  CHECK(core->kv().usage().pages_in_use == 0);
}

// Steps `run` until the constrained request's mask is late; the steps taken.
static int step_until_late(TwoRequests& run) {
  int steps = 0;
  while (run.stats->late_grammar_masks.value() == 0 && !run.json_sink->done() && steps < 5000) {
    run.core->step();
    ++steps;
  }
  REQUIRE(run.stats->late_grammar_masks.value() > 0);
  return steps;
}

TEST_CASE("a request cancelled while its token mask is late ends and frees its pages") {
  TwoRequests run(30);
  auto& [stats, core, free_sink, json_sink, json_req, grammar] = run;
  int steps = step_until_late(run);
  json_req->cancel();
  while (!run.done() && steps < 10000) {
    core->step();
    ++steps;
  }
  CHECK(json_sink->finish == FinishReason::kAbort);
  CHECK(free_sink->finish == FinishReason::kLength);
  CHECK(core->kv().usage().pages_in_use == 0);
  CHECK(core->num_running() == 0);
}

TEST_CASE("shutting down while a token mask is late lets go of every request") {
  // At shutdown the engine goes after the HTTP server, and a request's
  // output sink refers to that server's executor: no request may stay held
  // by a mask task or the late list once the engine has aborted them all.
  TwoRequests run(30);
  auto& [stats, core, free_sink, json_sink, json_req, grammar] = run;
  step_until_late(run);
  core->abort_all(FinishReason::kAbort, Status::unavailable("shutting down"));
  CHECK(json_sink->finish == FinishReason::kAbort);
  CHECK(json_req.use_count() == 1);  // this test's handle only
  CHECK(core->kv().usage().pages_in_use == 0);
}
