// `pagoda kv-plan`: print the KV memory plan (bytes per token per layer, per
// page, pages, max tokens in flight, full-length sequences at once) that
// `pagoda serve` would make: the same config (--config, --set, the
// environment, the flags below as spellings of kv.* keys) and the same
// plan_server_kv(), so kv-plan refuses the sizes serve refuses (only an arena
// the machine cannot map is found by serve alone, when it reserves it). The
// model shape
// comes from a model (--model, else the config's model.path) or is given by
// hand (--layers, --kv-heads, --head-dim).
#include <iostream>
#include <memory>

#include "formats/model_loader.h"
#include "server/kv_sizing.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace pagoda::cli {

namespace {

struct KvPlanFlags {
  ConfigFlags config;
  int64_t layers = 0, kv_heads = 0, head_dim = 0;
  int64_t tokens = 0;
};

const std::vector<KeyFlag>& kv_plan_key_flags() {
  static const std::vector<KeyFlag> flags = {
      {"--model", "model.path", "Read the shape from this model (checkpoint or directory)"},
      {"--dtype", "kv.dtype", "KV dtype: f32 | bf16 | f16 | int8 | int4"},
      {"--page-size", "kv.page_size", "Tokens per page"},
      {"--memory-gib", "kv.memory_gib", "KV memory budget in GiB"},
      {"--num-pages", "kv.num_pages", "Explicit page count (with the null page)"},
      {"--max-model-len", "model.max_model_len", "Prompt + output tokens per request"},
  };
  return flags;
}

// The shape flags are checked here, naming the flag (the layout's own check
// would name its fields).
Status check_shape_flags(const KvPlanFlags& f) {
  const struct {
    const char* flag;
    int64_t value, max;
  } shape[] = {{"--layers", f.layers, 4096}, {"--kv-heads", f.kv_heads, 4096}, {"--head-dim", f.head_dim, 65536}};
  for (const auto& s : shape)
    if (s.value < 1 || s.value > s.max)
      return Status::invalid_argument(std::string(s.flag) + ": got " + std::to_string(s.value) +
                                      ", expected an integer from 1 to " + std::to_string(s.max) +
                                      " (give --layers, --kv-heads and --head-dim together, or --model)");
  return Status::ok();
}

int kv_plan(const KvPlanFlags& f) {
  auto loaded = f.config.load();
  if (!loaded) return kExitConfigError;
  const ServerConfig& cfg = loaded->config;
  if (f.tokens < 0) {
    print_error("--tokens: got " + std::to_string(f.tokens) + ", expected 0 or more");
    return kExitConfigError;
  }
  ModelConfig shape;  // by hand: layers, KV heads and head_dim only (max_seq_len 0 = unknown)
  if (f.layers != 0 || f.kv_heads != 0 || f.head_dim != 0) {
    if (Status st = check_shape_flags(f); !st) {
      print_error(st.message());
      return kExitConfigError;
    }
    shape.n_layers = f.layers;
    shape.n_kv_heads = f.kv_heads;
    shape.head_dim = f.head_dim;
  } else {
    auto format = parse_model_format(cfg.model.format);
    if (!format) {
      print_error("config key 'model.format': " + format.status().message());
      return kExitConfigError;
    }
    LoadOptions lean;  // only the shape is needed: GGUF matrices need no f32 copy
    lean.expand_matrices = false;
    auto model = load_model(cfg.model.path, *format, lean);
    if (!model) {
      print_error(std::string(f.config.given("--model") ? "--model" : "config key 'model.path'") + ": " +
                  model.status().message());
      return kExitConfigError;
    }
    shape = (*model)->config;
  }
  auto plan = plan_server_kv(cfg, shape, f.tokens);
  if (!plan) {
    print_error(plan.status().message());
    return kExitConfigError;
  }
  for (const std::string& note : loaded->notes) std::cout << "# " << note << "\n";
  std::cout << format_kv_plan(plan->plan) << "max_model_len: " << plan->max_model_len << "\n"
            << "sequences_at_max_model_len: " << plan->sequences_at_max_len << "\n";
  return kExitOk;
}

}  // namespace

void register_kv_plan(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("kv-plan",
                                 "Print the KV cache memory plan `pagoda serve` would make (same config, flags and "
                                 "checks), for a model or a shape given by hand");
  auto f = std::make_shared<KvPlanFlags>();
  f->config.add_to(*cmd, kv_plan_key_flags());
  auto* model = cmd->get_option("--model");
  auto* layers = cmd->add_option("--layers", f->layers, "Transformer layers");
  auto* kv_heads = cmd->add_option("--kv-heads", f->kv_heads, "KV heads per layer");
  auto* head_dim = cmd->add_option("--head-dim", f->head_dim, "Dimension of one head");
  for (auto* o : {layers, kv_heads, head_dim}) o->excludes(model);
  cmd->get_option("--memory-gib")->excludes(cmd->get_option("--num-pages"));
  cmd->add_option("--tokens", f->tokens, "Price this many cached tokens (default: max_model_len)");
  cmd->callback([f, exit_code] { *exit_code = kv_plan(*f); });
}

}  // namespace pagoda::cli
