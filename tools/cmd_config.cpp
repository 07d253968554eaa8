// `pagoda config check [FILE]`: validate a config (with the environment,
// the key flags and --set, as serve reads them) and print the effective one.
#include <iostream>

#include "tools/cli_common.h"
#include "tools/commands.h"

namespace pagoda::cli {

void register_config(CLI::App& app, int* exit_code) {
  auto* config = app.add_subcommand("config", "Inspect configuration");
  config->require_subcommand(1);
  auto* check = config->add_subcommand(
      "check",
      "Validate FILE (with the environment, key flags and --set, as serve would) and print the effective config; "
      "exit 2 if invalid");
  auto flags = std::make_shared<ConfigFlags>();
  auto paths = std::make_shared<bool>(true);
  flags->add_to(*check, serve_key_flags());
  auto file = std::make_shared<std::string>();
  check->add_option("FILE", *file, "YAML config file (default: none, the built-in defaults; same as --config)");
  check->add_flag("!--no-path-check", *paths, "Do not check that model/tokenizer files exist");
  check->callback([flags, file, paths, exit_code] {
    if (!file->empty()) {
      if (!flags->file.empty() && flags->file != *file) {
        print_error("two config files given (FILE and --config): give one");
        *exit_code = kExitConfigError;
        return;
      }
      flags->file = *file;
    }
    auto loaded = flags->load();
    if (!loaded) {
      *exit_code = kExitConfigError;
      return;
    }
    if (*paths) {
      Status st = check_config_paths(loaded->config);
      if (!st) {
        print_error(st.message());
        *exit_code = kExitConfigError;
        return;
      }
    }
    std::cout << "# effective config (" << (flags->file.empty() ? "defaults" : flags->file) << "): valid\n";
    for (const std::string& note : loaded->notes) std::cout << "# " << note << "\n";
    std::cout << config_to_yaml(loaded->config);
    *exit_code = kExitOk;
  });
}

}  // namespace pagoda::cli
