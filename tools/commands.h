// The `pagoda` subcommands. Each register_* adds its subcommand to the app
// and sets `*exit_code` when that subcommand runs.
#pragma once

#include <CLI/CLI.hpp>

namespace pagoda::cli {

void register_serve(CLI::App& app, int* exit_code);
void register_config(CLI::App& app, int* exit_code);
void register_make_model(CLI::App& app, int* exit_code);
void register_kv_plan(CLI::App& app, int* exit_code);
void register_tokenize(CLI::App& app, int* exit_code);
void register_bench(CLI::App& app, int* exit_code);
void register_info(CLI::App& app, int* exit_code);

}  // namespace pagoda::cli
