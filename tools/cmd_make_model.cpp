// `pagoda make-model --preset NAME --out FILE [--seed N]`: writes a
// random-weight llama2.c checkpoint of a named shape (for tests and
// benchmarks; the weights are N(0, 0.02^2), RMSNorm gains 1.0).
// `--format hf --family llama2|llama3|qwen2 [--shards N] [--hf-dtype f32|bf16]`
// writes a Hugging Face directory instead (see formats/hf_writer.h).
// `--from FILE.bin --format hf --out DIR [--hf-dtype f32|bf16]` converts a
// llama2.c checkpoint (say stories260K) to a Hugging Face directory that
// computes the same function.
// `--format gguf [--quant f32|f16|q8_0|q4_0|q4_k_m|q6_k]` writes a GGUF file
// (llama.cpp's layout, no vocabulary) of a preset (the same weights as the
// llama2.c file of that seed) or of --from any model pagoda loads; q4_k_m is
// llama.cpp's Q4_K_M mix (formats/gguf_model_writer.h).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include "formats/gguf_model_writer.h"
#include "formats/hf_writer.h"
#include "formats/llama2c_reader.h"
#include "formats/model_loader.h"
#include "formats/model_writer.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace pagoda::cli {

namespace {

struct MakeModelFlags {
  std::string preset;
  std::string from;  // a llama2.c checkpoint to convert, instead of a preset
  std::string out;
  uint64_t seed = 1;
  std::string format = "llama2c";
  std::string family = "llama2";
  int shards = 1;
  std::string hf_dtype = "f32";
  std::string quant = "f32";
};

// The GGUF variant: converts `from` (a model file or directory) or, when it
// is empty, a preset written first as a temporary llama2.c file.
int make_gguf(const MakeModelFlags& f) {
  const auto start = std::chrono::steady_clock::now();
  std::string source = f.from;
  const std::string temp = f.out + ".llama2c.part";
  if (source.empty()) {
    auto config = model_preset(f.preset);
    if (!config) {
      print_error(config.status().message());
      return kExitConfigError;
    }
    if (Status st = write_random_llama2c(*config, temp, f.seed); !st) {
      print_error(st.message());
      return kExitFailure;
    }
    source = temp;
  }
  auto model = load_model(source);
  if (source == temp) std::remove(temp.c_str());
  if (!model) {
    print_error(model.status().message());
    return kExitFailure;
  }
  const ModelConfig& config = model.value()->config;
  auto written = write_gguf_model(config, model.value()->weights, f.quant, f.out);
  if (!written) {
    print_error(written.status().message());
    return kExitFailure;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "wrote " << f.out << ": GGUF " << f.quant << " from " << (f.from.empty() ? "preset " + f.preset : f.from)
            << ", " << config.summary() << ", " << written->bytes << " bytes in " << secs << " s\n";
  if (!written->fallbacks.empty()) {
    const GgufFallback& e = written->fallbacks.front();
    std::cout << written->fallbacks.size()
              << " tensors written in a fallback type (rows not a multiple of the block), e.g. " << e.name << " as "
              << e.written << " instead of " << e.wanted << "\n";
  }
  return kExitOk;
}

// The HF variant of make-model; returns the exit code.
int make_hf(const MakeModelFlags& f, const ModelConfig& shape) {
  auto family = parse_hf_family(f.family);
  if (!family) {
    print_error(family.status().message());
    return kExitConfigError;
  }
  HfWriteOptions o;
  o.family = *family;
  o.shards = f.shards;
  o.dtype = f.hf_dtype == "bf16" ? SafeDtype::kBF16 : SafeDtype::kF32;
  const ModelConfig config = hf_family_config(shape, *family);
  const auto start = std::chrono::steady_clock::now();
  Status st = write_random_hf(config, o, f.out, f.seed);
  if (!st) {
    print_error(st.message());
    return kExitFailure;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "wrote " << f.out << "/: Hugging Face " << f.family << " (" << f.hf_dtype << ", " << f.shards << " shard"
            << (f.shards > 1 ? "s" : "") << "), preset " << f.preset << ", " << config.summary() << ", "
            << config.num_parameters() << " parameters in " << secs << " s\n";
  return kExitOk;
}

// Converts the llama2.c checkpoint f.from to a Hugging Face directory.
int convert_to_hf(const MakeModelFlags& f) {
  if (f.format != "hf" || f.family != "llama2") {
    print_error("--from converts a llama2.c checkpoint to --format hf (family llama2)");
    return kExitConfigError;
  }
  auto model = Llama2cReader().read(f.from);
  if (!model) {
    print_error(model.status().message());
    return kExitFailure;
  }
  HfWriteOptions o;
  o.shards = f.shards;
  o.dtype = f.hf_dtype == "bf16" ? SafeDtype::kBF16 : SafeDtype::kF32;
  const ModelConfig& config = model.value()->config;
  Status st = write_hf_model(config, model.value()->weights, o, f.out);
  if (!st) {
    print_error(st.message());
    return kExitFailure;
  }
  std::cout << "wrote " << f.out << "/: Hugging Face llama2 (" << f.hf_dtype << ") from " << f.from << ", "
            << config.summary() << "\n";
  return kExitOk;
}

}  // namespace

void register_make_model(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("make-model", "Write a random-weight llama2.c checkpoint of a preset shape");
  auto flags = std::make_shared<MakeModelFlags>();
  auto* preset = cmd->add_option("--preset", flags->preset, "Model shape")->check(CLI::IsMember(model_preset_names()));
  auto* from =
      cmd->add_option("--from", flags->from,
                      "Convert this checkpoint instead (llama2.c with --format hf; any model with --format gguf)")
          ->check(CLI::ExistingPath);
  preset->excludes(from);
  cmd->add_option("--out", flags->out, "Output file (written as FILE.part, then renamed); a directory for --format hf")
      ->required();
  cmd->add_option("--format", flags->format, "llama2c (one .bin file), hf (a directory) or gguf (one file)")
      ->check(CLI::IsMember({"llama2c", "hf", "gguf"}))
      ->capture_default_str();
  cmd->add_option("--family", flags->family, "For --format hf: llama2, llama3 (rope_scaling) or qwen2 (biases, tied)")
      ->check(CLI::IsMember(hf_family_names()))
      ->capture_default_str();
  cmd->add_option("--shards", flags->shards, "For --format hf: write N shards and model.safetensors.index.json")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--hf-dtype", flags->hf_dtype, "For --format hf: tensor dtype")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  cmd->add_option("--quant", flags->quant,
                  "For --format gguf: how matrices are stored (norms stay f32; q4_k_m: llama.cpp's Q4_K_M mix)")
      ->check(CLI::IsMember(gguf_quant_names()))
      ->capture_default_str();
  cmd->add_option("--seed", flags->seed, "RNG seed; the same seed gives identical bytes")->capture_default_str();
  cmd->callback([flags, exit_code] {
    if (flags->quant != "f32" && flags->format != "gguf") {
      print_error("--quant needs --format gguf");
      *exit_code = kExitConfigError;
      return;
    }
    if (flags->format == "gguf" && (!flags->from.empty() || !flags->preset.empty())) {
      *exit_code = make_gguf(*flags);
      return;
    }
    if (!flags->from.empty()) {
      *exit_code = convert_to_hf(*flags);
      return;
    }
    if (flags->preset.empty()) {
      print_error("make-model needs --preset NAME (a random model) or --from FILE (a conversion)");
      *exit_code = kExitConfigError;
      return;
    }
    auto config = model_preset(flags->preset);
    if (!config) {
      print_error(config.status().message());
      *exit_code = kExitConfigError;
      return;
    }
    if (flags->format == "hf") {
      *exit_code = make_hf(*flags, *config);
      return;
    }
    if (flags->family != "llama2" || flags->shards != 1 || flags->hf_dtype != "f32") {
      print_error(
          "--family, --shards and --hf-dtype need --format hf (llama2.c files are "
          "llama2-style, f32, one file)");
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
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "wrote " << flags->out << ": preset " << flags->preset << ", " << config->summary() << ", "
              << config->num_parameters() << " parameters, " << llama2c_file_size(*config) << " bytes in " << secs
              << " s\n";
    *exit_code = kExitOk;
  });
}

}  // namespace pagoda::cli
