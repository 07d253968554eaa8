// `pagoda make-model --preset NAME --out FILE [--seed N]`: writes a
// random-weight llama2.c checkpoint of a named shape (for tests and
// benchmarks; the weights are N(0, 0.02^2), RMSNorm gains 1.0).
#include <chrono>
#include <iostream>
#include <memory>

#include "engine/llama2c_reader.h"
#include "engine/model_writer.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace pagoda::cli {

namespace {

struct MakeModelFlags {
  std::string preset;
  std::string out;
  uint64_t seed = 1;
};

}  // namespace

void register_make_model(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "make-model", "Write a random-weight llama2.c checkpoint of a preset shape");
  auto flags = std::make_shared<MakeModelFlags>();
  cmd->add_option("--preset", flags->preset, "Model shape")
      ->required()
      ->check(CLI::IsMember(model_preset_names()));
  cmd->add_option("--out", flags->out, "Output file (written as FILE.part, then renamed)")
      ->required();
  cmd->add_option("--seed", flags->seed, "RNG seed; the same seed gives identical bytes")
      ->capture_default_str();
  cmd->callback([flags, exit_code] {
    auto config = model_preset(flags->preset);
    if (!config) {
      print_error(config.status().message());
      *exit_code = kExitConfigError;
      return;
    }
    const auto start = std::chrono::steady_clock::now();
    Status st = write_random_llama2c(*config, flags->out, flags->seed);
    if (!st) {
      print_error(st.message());
      *exit_code = kExitFailure;
      return;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "wrote " << flags->out << ": preset " << flags->preset << ", "
              << config->summary() << ", " << config->num_parameters() << " parameters, "
              << llama2c_file_size(*config) << " bytes in " << secs << " s\n";
    *exit_code = kExitOk;
  });
}

}  // namespace pagoda::cli
