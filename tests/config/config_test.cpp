// Config loading: bad configs fail with a message naming the key, overrides
// beat the file which beats the defaults, and config/default.yaml is exactly
// the defaults.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "config/config_env.h"
#include "config/config_loader.h"
#include "config/config_schema.h"

using namespace pagoda;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct BadCase {
  const char* yaml;
  std::vector<std::string> overrides;
  const char* fragment;  // must appear in the error message
};

}  // namespace

TEST_CASE("bad configs fail with a message naming the key and what is allowed") {
  const std::vector<BadCase> cases = {
      {"kv:\n  page_size: 12\n", {}, "'kv.page_size': got '12', expected one of 8, 16, 32, 64, 128, 256"},
      {"kv:\n  page_size: sixteen\n", {}, "'kv.page_size': got 'sixteen'"},
      {"kv:\n  pagesize: 16\n", {}, "unknown config key 'kv.pagesize' (did you mean 'kv.page_size'?)"},
      {"kv:\n  dtype: fp8\n", {}, "'kv.dtype': got 'fp8', expected one of f32, bf16, f16, int8, int4"},
      {"kv:\n  memory_gib: -1\n", {}, "'kv.memory_gib': got '-1', expected a number greater than 0"},
      {"kv:\n  memory_gib: 0\n", {}, "'kv.memory_gib': got '0'"},
      {"kv:\n  num_pages: -3\n", {}, "'kv.num_pages': got '-3'"},
      {"kv:\n  num_pages: 100\n  memory_gib: 2\n", {}, "'kv.memory_gib' and 'kv.num_pages' contradict"},
      {"kv:\n  prefix_caching: maybe\n", {}, "'kv.prefix_caching': got 'maybe', expected true or false"},
      {"kv: [1, 2]\n", {}, "config section 'kv' must be a mapping"},
      {"kvcache:\n  page_size: 16\n", {}, "unknown config section 'kvcache'"},
      {"modle:\n  path: x\n", {}, "unknown config section 'modle' (did you mean 'model'?)"},
      {"model:\n  weight_dtype: fp16\n",
       {},
       "'model.weight_dtype': got 'fp16', expected one of auto, f32, bf16, int8, int4"},
      {"model:\n  format: ggml\n", {}, "'model.format': got 'ggml', expected one of auto, llama2c, hf, gguf"},
      {"model:\n  max_model_len: 1.5\n", {}, "'model.max_model_len': got '1.5', expected an integer"},
      {"model:\n  path: [a, b]\n", {}, "'model.path': got [a, b]"},
      {"model:\n  path: \"\"\n", {}, "'model.path': got ''"},
      {"scheduler:\n  max_num_seqs: 0\n", {}, "'scheduler.max_num_seqs': got '0', expected an integer from 1 to 4096"},
      {"scheduler:\n  max_num_seqs: 128\n  max_num_batched_tokens: 64\n",
       {},
       "'scheduler.max_num_batched_tokens' (64) must be at least 'scheduler.max_num_seqs' (128)"},
      {"scheduler:\n  policy: lifo\n", {}, "'scheduler.policy': got 'lifo', expected one of fcfs, priority"},
      {"scheduler:\n  chunked_prefill: false\n  max_num_batched_tokens: 512\nmodel:\n  max_model_len: 2048\n",
       {},
       "when 'scheduler.chunked_prefill' is false"},
      {"scheduler:\n  max_num_seq: 8\n", {}, "did you mean 'scheduler.max_num_seqs'?"},
      {"kv:\n  max_num_seqs: 8\n", {}, "unknown config key 'kv.max_num_seqs' (did you mean 'scheduler.max_num_seqs'?)"},
      {"server:\n  port: 70000\n", {}, "'server.port': got '70000', expected an integer from 0 to 65535"},
      {"structured:\n  memory_mib: 8\n",
       {},
       "'structured.memory_mib': got '8', expected an integer from 16 to 1048576"},
      {"structured:\n  memory_mib: [1, 2]\n", {}, "'structured.memory_mib': got [1, 2], expected an integer"},
      {"server:\n  port: http\n", {}, "'server.port': got 'http'"},
      {"server:\n  io_threads: 0\n", {}, "'server.io_threads': got '0'"},
      {"server:\n  api_keys: secret\n", {}, "'server.api_keys'"},
      {"server:\n  api_keys: [a]\n  api_key_file: keys.txt\n",
       {},
       "'server.api_keys' and 'server.api_key_file' contradict"},
      {"server:\n  max_body_bytes: 10\n", {}, "'server.max_body_bytes': got '10', expected an integer from 1024"},
      {"server:\n  header_timeout_s: 0\n", {}, "'server.header_timeout_s': got '0'"},
      {"server:\n  chat_template: jinja\n",
       {},
       "'server.chat_template': got 'jinja', expected one of auto, llama2, chatml, plain"},
      {"server:\n  replica_id: \"a b\"\n", {}, "'server.replica_id': got 'a b', expected a name of up to 128"},
      {"", {"server.replica_id=r\n1"}, "'server.replica_id'"},
      {"logging:\n  level: verbose\n", {}, "'logging.level': got 'verbose', expected one of trace, debug"},
      {"logging:\n  format: xml\n", {}, "'logging.format': got 'xml', expected one of text, json"},
      {"engine:\n  threads: -1\n", {}, "'engine.threads': got '-1'"},
      {"kv:\n  num_pages: 4\n  page_size: 16\nmodel:\n  max_model_len: 1000\n",
       {},
       "cannot hold one sequence of 'model.max_model_len' (1000)"},
      {"kv:\n  page_size: [16\n", {}, "YAML syntax error at line"},
      {"- 1\n- 2\n", {}, "the top level must be a mapping"},
      {"", {"kv.page_size=7"}, "'kv.page_size': got '7'"},
      {"", {"kv.page_sise=16"}, "unknown config key 'kv.page_sise' (did you mean 'kv.page_size'?)"},
      {"", {"page_size"}, "must look like section.key=value"},
  };
  REQUIRE(cases.size() >= 20);
  for (const auto& c : cases) {
    INFO("yaml: " << c.yaml);
    auto r = parse_config(c.yaml, c.overrides);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::Contains(c.fragment));
  }
}

TEST_CASE("no file at all gives the defaults") {
  auto r = load_config("", {});
  REQUIRE(r.is_ok());
  CHECK(r->config == ServerConfig{});
  CHECK(r->explicit_keys.empty());
}

TEST_CASE("config/default.yaml parses to exactly the defaults and shows every key") {
  const std::string text = read_file(std::string(PAGODA_SOURCE_DIR) + "/config/default.yaml");
  REQUIRE_FALSE(text.empty());
  // Its paths are relative to its folder, config/, and name the defaults'
  // models/ files (relative to the repository root).
  auto r = parse_config(text, {}, "config/default.yaml", "config");
  REQUIRE(r.is_ok());
  CHECK(r->config == ServerConfig{});
  for (const auto& f : config_fields()) {
    INFO("key " << f.path);
    CHECK(r->explicit_keys.count(f.path) == 1);
  }
}

TEST_CASE("overrides beat the file, which beats the defaults") {
  const std::string yaml = "kv:\n  page_size: 32\n  dtype: bf16\nserver:\n  port: 9000\n";
  auto file_only = parse_config(yaml, {});
  REQUIRE(file_only.is_ok());
  CHECK(file_only->config.kv.page_size == 32);
  CHECK(file_only->config.kv.dtype == "bf16");
  CHECK(file_only->config.server.port == 9000);
  CHECK(file_only->config.kv.memory_gib == ServerConfig{}.kv.memory_gib);  // untouched default

  auto overridden =
      parse_config(yaml, {"kv.page_size=64", "server.port=9100", "server.port=9200", "server.api_keys=[k1, k2]"});
  REQUIRE(overridden.is_ok());
  CHECK(overridden->config.kv.page_size == 64);
  CHECK(overridden->config.kv.dtype == "bf16");   // from the file
  CHECK(overridden->config.server.port == 9200);  // the last override wins
  CHECK(overridden->config.server.api_keys == std::vector<std::string>{"k1", "k2"});
}

TEST_CASE("the effective config round-trips through its YAML and masks API keys") {
  auto r = parse_config("kv:\n  dtype: int4\nserver:\n  api_keys: [topsecret]\n", {});
  REQUIRE(r.is_ok());
  const std::string yaml = config_to_yaml(r->config);
  CHECK(yaml.find("topsecret") == std::string::npos);
  CHECK(yaml.find("***") != std::string::npos);
  auto back = parse_config(yaml, {});
  REQUIRE(back.is_ok());
  CHECK(back->config.kv.dtype == "int4");
  CHECK(back->config.kv.page_size == r->config.kv.page_size);
}

TEST_CASE("check_config_paths names the missing file's key") {
  ServerConfig cfg;
  cfg.model.path = "/nonexistent/model.bin";
  Status st = check_config_paths(cfg);
  REQUIRE_FALSE(st.is_ok());
  CHECK_THAT(st.message(), Catch::Contains("'model.path'"));
}

TEST_CASE("PAGODA_<SECTION>_<KEY> environment variables become overrides, and typos are errors") {
  const auto env = config_overrides_from_environment(
      {"PATH=/usr/bin", "PAGODA_KV_PAGE_SIZE=64", "PAGODA_MODEL_WEIGHT_DTYPE=int8", "PAGODA_ISA=avx2",
       "PAGODA_HUGE_PAGES=0", "PAGODA_BIN=/x/pagoda", "PAGODA_SERVER_API_KEYS=[a, b]", "NOT_PAGODA_KV_PAGE_SIZE=8"});
  REQUIRE(env.is_ok());
  // Sorted by variable name; PAGODA_ISA and the other non-config variables are left alone.
  CHECK(*env == std::vector<std::string>{"kv.page_size=64", "model.weight_dtype=int8", "server.api_keys=[a, b]"});
  auto loaded = parse_config("kv:\n  page_size: 32\n", *env, "test");
  REQUIRE(loaded.is_ok());
  CHECK(loaded->config.kv.page_size == 64);  // the environment beats the file
  CHECK(loaded->config.model.weight_dtype == "int8");
  CHECK(loaded->config.server.api_keys == std::vector<std::string>{"a", "b"});
  std::vector<std::string> then_flags = *env;
  then_flags.push_back("kv.page_size=16");
  CHECK(parse_config("", then_flags, "test")->config.kv.page_size == 16);  // flags beat the environment

  const auto typo = config_overrides_from_environment({"PAGODA_KV_PAGESIZE=64"});
  REQUIRE_FALSE(typo.is_ok());
  CHECK_THAT(typo.status().message(), Catch::Contains("PAGODA_KV_PAGESIZE") && Catch::Contains("kv.pagesize"));
}

TEST_CASE("relative paths in a config file are relative to its folder, flags to the working directory") {
  const std::string yaml =
      "model:\n  path: m/model.bin\n  tokenizer: /abs/tok.bin\nserver:\n  api_key_file: ../keys.txt\n";
  auto r = parse_config(yaml, {}, "etc/pagoda/c.yaml", "etc/pagoda");
  REQUIRE(r.is_ok());
  CHECK(r->config.model.path == "etc/pagoda/m/model.bin");
  CHECK(r->config.model.tokenizer == "/abs/tok.bin");      // absolute: as written
  CHECK(r->config.server.api_key_file == "etc/keys.txt");  // normalized
  auto flagged = parse_config(yaml, {"model.path=here.bin"}, "etc/pagoda/c.yaml", "etc/pagoda");
  REQUIRE(flagged.is_ok());
  CHECK(flagged->config.model.path == "here.bin");
  CHECK(parse_config(yaml, {})->config.model.path == "m/model.bin");  // no folder given: as written

  // load_config passes the file's folder.
  const std::string dir = "/tmp/pagoda_config_test_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/c.yaml") << "model:\n  path: model.bin\n";
  auto loaded = load_config(dir + "/c.yaml", {});
  REQUIRE(loaded.is_ok());
  CHECK(loaded->config.model.path == dir + "/model.bin");
  std::filesystem::remove_all(dir);
}

TEST_CASE("a later kv.num_pages replaces the file's kv.memory_gib and the reverse, with a note") {
  const std::string yaml = "kv:\n  memory_gib: 2\n";
  auto pages = parse_config(yaml, {"kv.num_pages=100"});
  REQUIRE(pages.is_ok());
  CHECK(pages->config.kv.num_pages == 100);
  CHECK(pages->explicit_keys.count("kv.memory_gib") == 0);
  REQUIRE(pages->notes.size() == 1);
  CHECK_THAT(pages->notes[0], Catch::Contains("kv.num_pages=100 replaces the earlier kv.memory_gib=2"));

  auto gib = parse_config("kv:\n  num_pages: 100\n", {"kv.memory_gib=0.5"});
  REQUIRE(gib.is_ok());
  CHECK(gib->config.kv.num_pages == 0);  // 0 = derive from memory_gib
  CHECK(gib->config.kv.memory_gib == 0.5);
  REQUIRE(gib->notes.size() == 1);
  CHECK_THAT(gib->notes[0], Catch::Contains("kv.memory_gib=0.5 replaces the earlier kv.num_pages=100"));

  CHECK(parse_config("", {"kv.memory_gib=2"})->notes.empty());  // nothing replaced
  // Both in one place still contradict (the bad-config table has the file case).
  CHECK_FALSE(parse_config(yaml + "  num_pages: 100\n", {}).is_ok());
}

TEST_CASE("spellings people bring: logging.level warning is warn") {
  auto r = parse_config("logging:\n  level: warning\n", {});
  REQUIRE(r.is_ok());
  CHECK(r->config.logging.level == "warn");
  CHECK(parse_config("", {"logging.level=warning"})->config.logging.level == "warn");
}

TEST_CASE("the effective config prints numbers as written, not with 17 digits") {
  auto r = parse_config("scheduler:\n  queue_timeout_s: 0.05\nkv:\n  memory_gib: 0.1\n", {});
  REQUIRE(r.is_ok());
  const std::string yaml = config_to_yaml(r->config);
  CHECK_THAT(yaml, Catch::Contains("queue_timeout_s: 0.05\n") && Catch::Contains("memory_gib: 0.1\n"));
  CHECK(yaml.find("0.0500000") == std::string::npos);
  CHECK(parse_config(yaml, {})->config == r->config);
}

TEST_CASE("a model given without a tokenizer takes the one beside it, not the default model's") {
  auto alone = parse_config("", {"model.path=/models/other"});
  REQUIRE(alone.is_ok());
  CHECK(alone->config.model.tokenizer.empty());  // "" = beside the model
  auto both = parse_config("", {"model.path=/models/other", "model.tokenizer=/t.bin"});
  REQUIRE(both.is_ok());
  CHECK(both->config.model.tokenizer == "/t.bin");
  CHECK(parse_config("", {})->config.model.tokenizer == ServerConfig{}.model.tokenizer);  // the default pair stays
}

TEST_CASE("the two KV pool sizes in one layer of the environment contradict") {
  const auto env = config_overrides_from_environment({"PAGODA_KV_MEMORY_GIB=2", "PAGODA_KV_NUM_PAGES=100"});
  REQUIRE_FALSE(env.is_ok());
  CHECK_THAT(env.status().message(), Catch::Contains("PAGODA_KV_MEMORY_GIB") && Catch::Contains("contradict"));
}
