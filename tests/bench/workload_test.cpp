// Workload: length parsing, exact and ranged lengths, shared prefixes,
// determinism and the JSONL reader.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>

#include "bench/workload.h"

using namespace pagoda::bench;

TEST_CASE("bench: length ranges parse N and LO:HI", "[bench][workload]") {
  auto a = parse_length_range("155", "--input-len");
  REQUIRE(a.is_ok());
  CHECK(a->lo == 155);
  CHECK(a->hi == 155);
  auto b = parse_length_range("100:200", "--input-len");
  REQUIRE(b.is_ok());
  CHECK(b->lo == 100);
  CHECK(b->hi == 200);
  CHECK(b->str() == "100:200");
  for (const char* bad : {"", "0", "-3", "200:100", "12x", "1:", ":5", "a:b"}) {
    auto r = parse_length_range(bad, "--input-len");
    INFO(bad);
    CHECK_FALSE(r.is_ok());
    CHECK(r.status().message().find("--input-len") != std::string::npos);
  }
}

TEST_CASE("bench: random token-id prompts have exact lengths and valid ids", "[bench][workload]") {
  WorkloadSpec spec;
  spec.input_len = {155, 155};
  spec.output_len = {128, 128};
  spec.vocab_size = 512;
  auto w = Workload::create(spec);
  REQUIRE(w.is_ok());
  std::set<std::vector<int32_t>> distinct;
  for (size_t i = 0; i < 50; ++i) {
    const PromptSpec p = w->at(i);
    REQUIRE(p.use_ids);
    CHECK(p.ids.size() == 155);
    CHECK(p.input_len == 155);
    CHECK(p.max_tokens == 128);
    for (int32_t t : p.ids) {
      CHECK(t >= Workload::id_lo(512));
      CHECK(t < 512);
    }
    distinct.insert(p.ids);
  }
  CHECK(distinct.size() == 50);
  // Request i does not depend on which requests were made before.
  CHECK(w->at(17).ids == Workload::create(spec)->at(17).ids);
  spec.seed = 1;
  CHECK(w->at(17).ids != Workload::create(spec)->at(17).ids);
}

TEST_CASE("bench: ranged lengths cover the range and stay inside it", "[bench][workload]") {
  WorkloadSpec spec;
  spec.input_len = {10, 13};
  spec.output_len = {1, 3};
  spec.form = PromptForm::kWords;
  auto w = Workload::create(spec);
  REQUIRE(w.is_ok());
  std::set<int64_t> ins, outs;
  for (size_t i = 0; i < 400; ++i) {
    const PromptSpec p = w->at(i);
    CHECK_FALSE(p.use_ids);
    // Words are separated by single spaces.
    CHECK(static_cast<int64_t>(std::count(p.text.begin(), p.text.end(), ' ')) + 1 == p.input_len);
    ins.insert(p.input_len);
    outs.insert(p.max_tokens);
  }
  CHECK(ins == std::set<int64_t>{10, 11, 12, 13});
  CHECK(outs == std::set<int64_t>{1, 2, 3});
}

TEST_CASE("bench: shared-prefix requests share their group's prefix only", "[bench][workload]") {
  WorkloadSpec spec;
  spec.kind = WorkloadKind::kSharedPrefix;
  spec.prefix_len = 64;
  spec.num_groups = 3;
  spec.input_len = {16, 16};
  spec.vocab_size = 32000;
  auto w = Workload::create(spec);
  REQUIRE(w.is_ok());
  std::vector<std::vector<int32_t>> prefix(3);
  for (size_t i = 0; i < 12; ++i) {
    const PromptSpec p = w->at(i);
    REQUIRE(p.ids.size() == 80);
    CHECK(p.input_len == 80);
    CHECK(p.group == static_cast<int64_t>(i % 3));
    const std::vector<int32_t> pre(p.ids.begin(), p.ids.begin() + 64);
    auto& g = prefix[static_cast<size_t>(p.group)];
    if (g.empty()) g = pre;
    CHECK(pre == g);
  }
  CHECK(prefix[0] != prefix[1]);
  CHECK(prefix[1] != prefix[2]);
  // Suffixes differ within a group.
  // at() returns by value: keep each prompt alive while its ids are sliced.
  const PromptSpec first = w->at(0);
  const PromptSpec fourth = w->at(3);
  CHECK(std::vector<int32_t>(first.ids.begin() + 64, first.ids.end()) !=
        std::vector<int32_t>(fourth.ids.begin() + 64, fourth.ids.end()));
  spec.prefix_len = 0;
  CHECK_FALSE(Workload::create(spec).is_ok());
}

TEST_CASE("bench: JSONL prompts are read, cycled and validated", "[bench][workload]") {
  const std::string path = "/tmp/pagoda_bench_workload_test.jsonl";
  {
    std::ofstream out(path);
    out << R"({"prompt": "Once upon a time", "max_tokens": 5})"
        << "\n\n"
        << R"({"prompt": [1, 2, 3]})"
        << "\n";
  }
  WorkloadSpec spec;
  spec.kind = WorkloadKind::kFile;
  spec.file = path;
  spec.output_len = {9, 9};
  auto w = Workload::create(spec);
  REQUIRE(w.is_ok());
  CHECK(w->natural_size() == 2);
  CHECK(w->at(0).text == "Once upon a time");
  CHECK(w->at(0).max_tokens == 5);
  CHECK(w->at(1).ids == std::vector<int32_t>{1, 2, 3});
  CHECK(w->at(1).max_tokens == 9);  // from --output-len
  CHECK(w->at(2).text == "Once upon a time");
  {
    std::ofstream out(path);
    out << R"({"prompt": "ok"})"
        << "\n"
        << R"({"text": "no prompt"})"
        << "\n";
  }
  auto bad = Workload::create(spec);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find(":2:") != std::string::npos);
  std::remove(path.c_str());
  spec.file = "/nonexistent/prompts.jsonl";
  CHECK_FALSE(Workload::create(spec).is_ok());
}

TEST_CASE("bench: a conversation's turns extend each other, and conversations and system prompts differ",
          "[bench][workload]") {
  WorkloadSpec spec;
  spec.kind = WorkloadKind::kConversation;
  spec.prefix_len = 20;
  spec.num_groups = 2;
  spec.num_conversations = 3;
  spec.turns = 4;
  spec.input_len = {8, 8};
  spec.output_len = {5, 5};
  spec.vocab_size = 32000;
  auto w = Workload::create(spec);
  REQUIRE(w.is_ok());
  // Request i is turn (i / 3) % 4 of slot i % 3; after 12 requests the slots
  // start new conversations.
  for (size_t slot = 0; slot < 3; ++slot) {
    std::vector<int32_t> previous;
    for (size_t turn = 0; turn < 4; ++turn) {
      const PromptSpec p = w->at(turn * 3 + slot);
      CHECK(p.turn == static_cast<int64_t>(turn));
      CHECK(p.session == "conversation-0-" + std::to_string(slot));
      CHECK(p.group == static_cast<int64_t>(slot % 2));
      CHECK(p.max_tokens == 5);
      // system prompt + (question + answer) per earlier turn + this question
      const size_t expected = 20 + turn * (8 + 5) + 8;
      REQUIRE(p.ids.size() == expected);
      CHECK(p.input_len == static_cast<int64_t>(expected));
      if (turn > 0) CHECK(std::equal(previous.begin(), previous.end(), p.ids.begin()));  // extends the last turn
      previous = p.ids;
    }
  }
  const PromptSpec a = w->at(0), b = w->at(1), c = w->at(2), next = w->at(12);
  CHECK(std::equal(a.ids.begin(), a.ids.begin() + 20, c.ids.begin()));   // same system prompt (group 0)
  CHECK(!std::equal(a.ids.begin(), a.ids.begin() + 20, b.ids.begin()));  // another one
  CHECK(!std::equal(a.ids.begin() + 20, a.ids.end(), c.ids.begin() + 20));
  CHECK(next.session == "conversation-0-3");  // slot 0's second conversation
  CHECK(next.turn == 0);
  CHECK(next.ids != a.ids);
  // A pure function of i: another Workload asked in another order agrees.
  auto again = Workload::create(spec);
  REQUIRE(again.is_ok());
  for (size_t i : {23, 7, 0, 12, 5}) CHECK(again->at(i).ids == w->at(i).ids);

  // Words: chat messages (system, then user/assistant turns ending with a
  // user turn), and the same text one message per line for completions.
  spec.form = PromptForm::kWords;
  spec.tokens_per_word = 1.0;
  auto words = Workload::create(spec);
  REQUIRE(words.is_ok());
  const PromptSpec t0 = words->at(1), t2 = words->at(7);
  REQUIRE(t2.messages.size() == 1 + 2 * 2 + 1);
  const std::vector<std::string> roles = {"system", "user", "assistant", "user", "assistant", "user"};
  for (size_t k = 0; k < roles.size(); ++k) CHECK(t2.messages[k].role == roles[k]);
  CHECK(t2.messages[0].content == t0.messages[0].content);
  CHECK(t2.messages[1].content == t0.messages[1].content);
  CHECK(t2.text.rfind(t0.text + "\n", 0) == 0);  // the completions prompt extends the first turn's

  // A first turn of its own length (a document), later turns --input-len.
  WorkloadSpec doc = spec;
  doc.form = PromptForm::kTokenIds;
  doc.first_input_len = {100, 100};
  auto docs = Workload::create(doc);
  REQUIRE(docs.is_ok());
  CHECK(docs->at(0).ids.size() == 20 + 100);
  CHECK(docs->at(3).ids.size() == 20 + 100 + 5 + 8);
  CHECK(docs->describe()["first_input_len"] == "100");

  spec.prefix_len = 0;  // no system prompt
  auto bare = Workload::create(spec);
  REQUIRE(bare.is_ok());
  CHECK(bare->at(0).messages.front().role == "user");
  CHECK(bare->at(0).group == -1);
  spec.turns = 0;
  CHECK_FALSE(Workload::create(spec).is_ok());
  spec.turns = 2;
  spec.num_conversations = 0;
  CHECK_FALSE(Workload::create(spec).is_ok());
}
