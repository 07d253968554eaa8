// Pieces shared by the `pagoda` subcommands: the config flags every
// config-taking subcommand accepts, and the exit codes.
// Plain data filled by CLI11 during parsing; not synchronized.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "config/config_loader.h"

namespace pagoda::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;      // a runtime failure after start-up
constexpr int kExitConfigError = 2;  // bad config, flags or files: nothing heavy was started

// --config FILE, --set key=value (repeatable) and the short flags.
struct ConfigFlags {
  std::string file;
  std::vector<std::string> sets;
  std::string host, model, tokenizer;
  int port = -1;

  void add_to(CLI::App& app);
  // The overrides in precedence order (short flags, then --set in order).
  std::vector<std::string> overrides() const;
  // Loads and validates; on error prints it to stderr and returns nullopt.
  std::optional<LoadedConfig> load() const;
};

// Prints "pagoda: error: MESSAGE" to stderr.
void print_error(const std::string& message);

}  // namespace pagoda::cli
