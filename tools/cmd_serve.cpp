// `pagoda serve`: load the config, log the banner, serve until SIGTERM.
#include <csignal>

#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "engine/kernels/isa_choice.h"
#include "server/http_server.h"
#include "server/server_app.h"
#include "server/startup_log.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace pagoda::cli {

namespace {

int serve(const ConfigFlags& flags) {
  auto loaded = flags.load();
  if (!loaded) return kExitConfigError;
  const ServerConfig& cfg = loaded->config;
  if (Status st = setup_logging(cfg.logging.level, cfg.logging.format); !st) {
    print_error(st.message());
    return kExitConfigError;
  }
  if (Status st = check_config_paths(cfg); !st) {
    print_error(st.message());
    return kExitConfigError;
  }
  // A host name that does not resolve, or a port another process listens
  // on, is found before the model loads (the server binds again when it
  // starts listening).
  if (Status st = check_listen_address(cfg.server.host, static_cast<int>(cfg.server.port)); !st) {
    print_error(st.message());
    return st.code() == StatusCode::kInvalidArgument ? kExitConfigError : kExitFailure;
  }
  // The kernel level (PAGODA_ISA, else engine.isa) before the model loads:
  // oneDNN may be capped only before it packs the weights.
  auto isa = apply_isa_choice(cfg.engine.isa);
  if (!isa) {
    print_error(isa.status().message());
    return kExitConfigError;
  }
  // A daemon outlives the terminal that started it: SIGHUP is ignored while
  // the model loads, then logged and ignored while the server runs
  // (RELIABILITY.md).
  std::signal(SIGHUP, SIG_IGN);
  const std::string cpu = cpu_model_name();
  log_summary(spdlog::level::info, "start",
              fmt::format("pagoda {} ({} build) on {}: kernels {} ({}; this CPU supports up to {})", PAGODA_VERSION,
                          build_kind(), cpu, isa_level_name(isa->level), isa->source, isa_level_name(best_cpu_isa())),
              {{"version", PAGODA_VERSION},
               {"build", build_kind()},
               {"cpu", cpu},
               {"kernels", isa_level_name(isa->level)},
               {"kernels_chosen_by", isa->source},
               {"best_cpu_kernels", isa_level_name(best_cpu_isa())}});
  for (const std::string& note : loaded->notes) spdlog::info("config: {}", note);
  log_effective_config(cfg);
  if (isa->level == IsaLevel::kBaseline) {
    spdlog::warn(
        "kernels run their scalar code ({}): expect several times less throughput than on a CPU with "
        "AVX2 or AVX-512",
        best_cpu_isa() == IsaLevel::kBaseline ? "this CPU has no AVX2" : "chosen by " + isa->source);
  }
  auto app = ServerApp::create(cfg);
  if (!app) {
    // Start-up failures name the config key at fault.
    print_error(app.status().message());
    return app.status().code() == StatusCode::kInvalidArgument || app.status().code() == StatusCode::kNotFound ||
                   app.status().code() == StatusCode::kDataLoss
               ? kExitConfigError
               : kExitFailure;
  }
  return (*app)->run();
}

}  // namespace

void register_serve(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("serve",
                                 "Serve the OpenAI-compatible API: pagoda serve [MODEL] [flags] (the default "
                                 "config serves models/stories260K.bin)");
  auto flags = std::make_shared<ConfigFlags>();
  flags->add_to(*cmd, serve_key_flags(), /*positional_model=*/true);
  cmd->callback([flags, exit_code] { *exit_code = serve(*flags); });
}

}  // namespace pagoda::cli
