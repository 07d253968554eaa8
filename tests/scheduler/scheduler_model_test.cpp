// The scheduler with the real stories260K model: concurrent greedy requests
// give exactly the texts each gives alone, also when KV memory is so small
// that preemption must happen; a shared prefix is a cache hit with the same
// text; a long prefill does not stall running streams; stop strings.
#include <algorithm>
#include <random>

#include "engine/model/llama_model.h"
#include "formats/model_loader.h"
#include "scheduler/llama_runner.h"
#include "tests/scheduler/test_support.h"

using namespace pagoda;
using namespace pagoda::testing;

namespace {

// An EngineCore on stories260K with its own KV storage.
struct RealEngine {
  std::shared_ptr<const LoadedModel> loaded;
  std::unique_ptr<KvStorage> storage;
  std::unique_ptr<LlamaModel> model;
  std::shared_ptr<EngineStats> stats = std::make_shared<EngineStats>();
  std::unique_ptr<EngineCore> core;

  explicit RealEngine(int64_t num_pages, int64_t budget = 512, int64_t max_seqs = 32, int page_size = 16) {
    auto m = load_model(model_file("stories260K.bin"));
    REQUIRE(m.is_ok());
    loaded = std::shared_ptr<const LoadedModel>(std::move(m).value());
    const ModelConfig& c = loaded->config;
    auto s =
        KvStorage::create({int(c.n_layers), int(c.n_kv_heads), int(c.head_dim), page_size, KvDtype::kF32}, num_pages);
    REQUIRE(s.is_ok());
    storage = std::move(s).value();
    auto lm = LlamaModel::create(loaded, WeightDtype::kF32, storage.get());
    REQUIRE(lm.is_ok());
    model = std::move(lm).value();
    EngineCoreConfig cfg;
    cfg.scheduler.max_num_seqs = max_seqs;
    cfg.scheduler.prefill_join_tokens = 16;
    cfg.scheduler.chunked_prefill = true;
    cfg.scheduler.max_num_batched_tokens = budget;
    cfg.scheduler.max_model_len = c.max_seq_len;
    core = std::make_unique<EngineCore>(cfg, make_kv(page_size, num_pages, true, storage.get()),
                                        std::make_unique<LlamaRunner>(model.get()), tok512(), stats);
  }
  void run_to_end() {
    for (int i = 0; i < 100000 && core->has_work(); ++i) core->step();
    REQUIRE_FALSE(core->has_work());
  }
};

std::vector<std::string> prompts() {
  return {"Once upon a time",
          "The little dog",
          "Lily and Tom went to the park",
          "One day, a big bird",
          "Tim had a red ball",
          "The sun was hot",
          "Mom said",
          "There was a cat named Max",
          "A boy found a box",
          "The tree was tall and",
          "Sara liked to sing",
          "In the garden",
          "The car was fast",
          "Ben wanted a cookie",
          "The fish swam",
          "It was a rainy day"};
}

std::string alone_text(const std::string& prompt, int64_t max_tokens) {
  RealEngine e(64);
  auto sink = std::make_shared<CollectingSink>();
  auto req = make_request(1, tok512()->encode(prompt, true), max_tokens, sink);
  REQUIRE(e.core->validate(*req).is_ok());
  e.core->add(req);
  e.run_to_end();
  return sink->text;
}

}  // namespace

TEST_CASE("16 concurrent greedy requests give exactly the texts each gives alone") {
  const auto ps = prompts();
  std::vector<std::string> expected;
  for (const auto& p : ps) expected.push_back(alone_text(p, 60));

  for (int64_t pages : {int64_t{256}, int64_t{14}}) {  // ample, then so small that preemption must happen
    RealEngine e(pages);
    std::vector<std::shared_ptr<CollectingSink>> sinks;
    for (size_t i = 0; i < ps.size(); ++i) {
      sinks.push_back(std::make_shared<CollectingSink>());
      auto req = make_request(RequestId(i + 1), tok512()->encode(ps[i], true), 60, sinks.back());
      REQUIRE(e.core->validate(*req).is_ok());
      e.core->add(req);
    }
    e.run_to_end();
    INFO("pages " << pages << " preemptions " << e.core->scheduler().total_preemptions());
    if (pages < 20) CHECK(e.core->scheduler().total_preemptions() > 0);
    for (size_t i = 0; i < ps.size(); ++i) {
      INFO("prompt '" << ps[i] << "'");
      CHECK(sinks[i]->text == expected[i]);
      CHECK(sinks[i]->finals == 1);
    }
    CHECK(e.core->kv().usage().pages_in_use == 0);
  }
}

TEST_CASE("a request sharing a prefix with an earlier one gets a prefix hit (partial page too) and the same text") {
  const std::string shared =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the big park.";
  const std::string prompt = shared + " One day";
  const std::string expected = alone_text(prompt, 40);
  RealEngine e(128);
  auto first = std::make_shared<CollectingSink>();
  e.core->add(make_request(1, tok512()->encode(shared + " She saw", true), 20, first));
  e.run_to_end();
  auto second = std::make_shared<CollectingSink>();
  e.core->add(make_request(2, tok512()->encode(prompt, true), 40, second));
  e.run_to_end();
  // The hit covers every common token: whole pages and the copied first rows of the next one.
  const auto a = tok512()->encode(shared + " She saw", true), b = tok512()->encode(prompt, true);
  const int64_t common = std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin();
  INFO("common tokens " << common);
  REQUIRE(common % 16 != 0);
  CHECK(second->cached_tokens == common);
  CHECK(e.core->kv().usage().prefix_hit_tokens == common);
  CHECK(e.core->kv().usage().prefix_partial_hits == 1);
  CHECK(second->text == expected);
}

TEST_CASE("while a long prompt is prefilled, a running stream gets a token every step") {
  RealEngine e(128, /*budget=*/64);
  auto stream = std::make_shared<CollectingSink>();
  e.core->add(make_request(1, tok512()->encode("Once upon a time", true), 100, stream));
  for (int i = 0; i < 3; ++i) e.core->step();  // the stream is decoding
  std::vector<int32_t> long_prompt = tok512()->encode("Once upon a time", true);
  std::mt19937 rng(3);
  while (long_prompt.size() < 400) long_prompt.push_back(int32_t(3 + rng() % 509));
  auto big = std::make_shared<CollectingSink>();
  e.core->add(make_request(2, long_prompt, 10, big));
  int prefill_steps = 0;
  while (big->tokens.empty()) {
    const size_t before = stream->tokens.size();
    e.core->step();
    ++prefill_steps;
    CHECK(stream->tokens.size() == before + 1);  // the stream never stalls
  }
  CHECK(prefill_steps >= 400 / 64);  // the prompt really was chunked
  e.run_to_end();
}

TEST_CASE("stop strings end generation and are not part of the text") {
  const std::string full = alone_text("Once upon a time", 80);
  // Pick a stop string from the middle of the known output.
  const size_t at = full.find("park");
  REQUIRE(at != std::string::npos);
  RealEngine e(64);
  auto sink = std::make_shared<CollectingSink>();
  auto req = make_request(1, tok512()->encode("Once upon a time", true), 80, sink);
  req->stop.stop = {"ark", "zzz-never"};
  e.core->add(req);
  e.run_to_end();
  CHECK(sink->finish == FinishReason::kStop);
  CHECK(sink->text == full.substr(0, at + 1));  // "p" is kept, "ark" is cut
}

TEST_CASE("max_tokens, min_tokens and the model length") {
  RealEngine e(64);
  auto sink = std::make_shared<CollectingSink>();
  e.core->add(make_request(1, tok512()->encode("Once upon a time", true), 7, sink));
  e.run_to_end();
  CHECK(sink->finish == FinishReason::kLength);
  CHECK(sink->completion_tokens == 7);
  CHECK(sink->tokens.size() == 7);

  auto too_long = make_request(2, std::vector<int32_t>(500, 5), 100, sink);
  Status st = e.core->validate(*too_long);
  REQUIRE_FALSE(st.is_ok());
  CHECK_THAT(st.message(), Catch::Contains("maximum context length is 512") && Catch::Contains("500 prompt tokens") &&
                               Catch::Contains("100 more"));
  CHECK(st.field() == "max_tokens");  // the prompt fits: max_tokens is what to lower
  auto prompt_too_long = make_request(3, std::vector<int32_t>(600, 5), 10, sink);
  CHECK(e.core->validate(*prompt_too_long).field() == "prompt");
}

TEST_CASE("a cancelled request is ended at the next step and its pages are freed") {
  RealEngine e(64);
  auto sink = std::make_shared<CollectingSink>();
  auto req = make_request(1, tok512()->encode("Once upon a time", true), 200, sink);
  e.core->add(req);
  for (int i = 0; i < 5; ++i) e.core->step();
  CHECK(e.core->kv().usage().pages_in_use > 0);
  req->cancel();
  e.core->step();
  CHECK(sink->finish == FinishReason::kAbort);
  CHECK(e.core->kv().usage().pages_in_use == 0);
  CHECK_FALSE(e.core->has_work());
}
