// The `pagoda` subcommands. Each register_* adds its subcommand to the app
// and sets `*exit_code` when that subcommand runs.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace pagoda::cli {

void register_serve(CLI::App& app, int* exit_code);
void register_config(CLI::App& app, int* exit_code);
void register_make_model(CLI::App& app, int* exit_code);
void register_kv_plan(CLI::App& app, int* exit_code);
void register_tokenize(CLI::App& app, int* exit_code);
void register_bench(CLI::App& app, int* exit_code);
void register_info(CLI::App& app, int* exit_code);
void register_structured(CLI::App& app, int* exit_code);
void register_chat_template(CLI::App& app, int* exit_code);

// `pagoda --version`: the version, the build (portable or native), the CPU
// and the kernel levels it supports.
std::string version_text();

// "native" (-march=native) or "portable" (kernels chosen at run time).
const char* build_kind();

}  // namespace pagoda::cli
