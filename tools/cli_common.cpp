#include "tools/cli_common.h"

#include <iostream>

#include "config/config_env.h"

namespace pagoda::cli {

void ConfigFlags::add_to(CLI::App& app) {
  app.add_option("--config,-c", file, "YAML config file (default: built-in defaults)");
  app.add_option("--set", sets, "Override any key: --set kv.page_size=32 (repeatable)")->take_all();
  app.add_option("--host", host, "Same as --set server.host=HOST");
  app.add_option("--port", port, "Same as --set server.port=PORT");
  app.add_option("--model", model, "Same as --set model.path=PATH");
  app.add_option("--tokenizer", tokenizer, "Same as --set model.tokenizer=PATH");
}

std::vector<std::string> ConfigFlags::overrides() const {
  std::vector<std::string> out;
  if (!host.empty()) out.push_back("server.host=" + host);
  if (port >= 0) out.push_back("server.port=" + std::to_string(port));
  if (!model.empty()) out.push_back("model.path=" + model);
  if (!tokenizer.empty()) out.push_back("model.tokenizer=" + tokenizer);
  out.insert(out.end(), sets.begin(), sets.end());
  return out;
}

std::optional<LoadedConfig> ConfigFlags::load() const {
  // The environment (PAGODA_<SECTION>_<KEY>) beats the file; the flags beat both.
  auto from_env = config_overrides_from_environment(process_environment());
  if (!from_env) {
    print_error(from_env.status().message());
    return std::nullopt;
  }
  std::vector<std::string> all = std::move(from_env).value();
  for (std::string& o : overrides()) all.push_back(std::move(o));
  auto loaded = load_config(file, all);
  if (!loaded) {
    print_error(loaded.status().message());
    return std::nullopt;
  }
  return std::move(loaded).value();
}

void print_error(const std::string& message) { std::cerr << "pagoda: error: " << message << "\n"; }

}  // namespace pagoda::cli
