// Fuzz target: the YAML config loader.
// Input: YAML text, then optionally '\x01'-separated `--set` overrides.
// parse_config must return a Status (never throw or crash); an accepted config
// must pass validate_config again and survive config_to_yaml -> parse_config
// unchanged (except the masked API keys), unless the printed file itself
// contradicts (explicit kv.num_pages with kv.memory_gib, or an api_key_file).
#include <cstdint>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "fuzz/fuzz_check.h"

using namespace pagoda;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t at = input.find('\x01', start);
    parts.push_back(input.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) break;
    start = at + 1;
  }
  const std::string yaml = parts[0];
  const std::vector<std::string> overrides(parts.begin() + 1, parts.end());
  auto loaded = parse_config(yaml, overrides, "<fuzz>");
  if (!loaded) {
    FUZZ_CHECK(!loaded.status().message().empty());
    return 0;
  }
  const ServerConfig& cfg = loaded->config;
  FUZZ_CHECK(validate_config(cfg, loaded->explicit_keys).is_ok());
  const std::string printed = config_to_yaml(cfg);
  if (cfg.kv.num_pages > 0 || !cfg.server.api_key_file.empty()) return 0;
  auto again = parse_config(printed, {}, "<printed>");
  if (!again) {
    std::fprintf(stderr, "printed config rejected: %s\n--- printed:\n%s\n", again.status().message().c_str(),
                 printed.c_str());
    FUZZ_CHECK(again.is_ok());
  }
  ServerConfig a = cfg, b = again->config;
  a.server.api_keys.clear();
  b.server.api_keys.clear();
  if (!(a == b)) {
    std::fprintf(stderr, "sections equal: model %d kv %d scheduler %d server %d engine %d logging %d\n",
                 a.model == b.model, a.kv == b.kv, a.scheduler == b.scheduler, a.server == b.server,
                 a.engine == b.engine, a.logging == b.logging);
    if (!(a.model.tokenizer == b.model.tokenizer))
      std::fprintf(stderr, "model.tokenizer: %zu bytes vs %zu bytes\n", a.model.tokenizer.size(),
                   b.model.tokenizer.size());
  }
  if (!(a == b))
    std::fprintf(stderr, "round trip changed the config\n--- printed:\n%s\n--- reprinted:\n%s\n", printed.c_str(),
                 config_to_yaml(again->config).c_str());
  FUZZ_CHECK(a == b);
  return 0;
}
