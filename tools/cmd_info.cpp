// `pagoda info`: what this binary is and what it would run here: version,
// build, the CPU, the kernel levels it supports and the one chosen
// (PAGODA_ISA, else engine.isa from the config flags, else auto).
#include <cstdio>
#include <string>

#include "common/cpu_isa.h"
#include "engine/kernels/isa_choice.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace pagoda::cli {

namespace {

std::string supported_levels() {
  std::string levels;
  for (IsaLevel level : supported_isa_levels())
    levels += std::string(levels.empty() ? "" : " ") + isa_level_name(level);
  return levels;
}

int info(const ConfigFlags& flags) {
  auto loaded = flags.load();
  if (!loaded) return kExitConfigError;
  std::printf("%s", version_text().c_str());
  auto choice = choose_isa(loaded->config.engine.isa);
  if (!choice) {
    print_error(choice.status().message());
    return kExitConfigError;
  }
  std::printf("kernel level chosen: %s (%s)\n", isa_level_name(choice->level), choice->source.c_str());
  return kExitOk;
}

}  // namespace

const char* build_kind() { return PAGODA_NATIVE_BUILD ? "native" : "portable"; }

std::string version_text() {
  std::string text = std::string("pagoda ") + PAGODA_VERSION + "\n";
  text += std::string("build: ") + PAGODA_BUILD_TYPE + ", " +
          (PAGODA_NATIVE_BUILD ? "native (-march=native: runs only on CPUs like the build host's)"
                               : "portable (kernels chosen at run time)") +
          "\n";
  text += "cpu: " + cpu_model_name() + "\n";
  text += "kernel levels this CPU supports: " + supported_levels() + "\n";
  return text;
}

void register_info(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("info", "Print the version, build, CPU and the kernel level it would run");
  auto flags = std::make_shared<ConfigFlags>();
  flags->add_to(*cmd, serve_key_flags());
  cmd->callback([flags, exit_code] { *exit_code = info(*flags); });
}

}  // namespace pagoda::cli
