// pagoda: one binary, several subcommands (serve, config check, ...).
#include <csignal>

#include <CLI/CLI.hpp>

#include "tools/cli_common.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  // A write to a closed socket or pipe (a client gone, a log reader that
  // exited) must be an EPIPE error for the writer to handle, never the end
  // of the process.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"pagoda: a vLLM-style LLM serving daemon for CPUs", "pagoda"};
  app.set_version_flag("--version", PAGODA_VERSION);
  app.require_subcommand(1);
  int exit_code = pagoda::cli::kExitOk;
  pagoda::cli::register_serve(app, &exit_code);
  pagoda::cli::register_config(app, &exit_code);
  pagoda::cli::register_make_model(app, &exit_code);
  pagoda::cli::register_kv_plan(app, &exit_code);
  pagoda::cli::register_tokenize(app, &exit_code);
  pagoda::cli::register_bench(app, &exit_code);
  pagoda::cli::register_info(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return pagoda::cli::kExitConfigError;
  }
  return exit_code;
}
