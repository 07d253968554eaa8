// `pagoda kv-plan`: print the KV memory plan (bytes per token per layer, per
// page, pages, max tokens in flight, bytes for N tokens) for a model shape
// given by flags or read from a model (--model PATH). The same plan_kv()
// feeds the server's start-up banner.
#include <iostream>
#include <memory>

#include "formats/model_loader.h"
#include "kvpool/kv_dtype.h"
#include "kvpool/kv_plan.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace pagoda::cli {

namespace {

struct KvPlanFlags {
  std::string model;
  int layers = 0, kv_heads = 0, head_dim = 0;
  int page_size = 16;
  std::string dtype = "f32";
  int64_t tokens = 0;
  double memory_gib = 1.0;
  int64_t num_pages = 0;
};

}  // namespace

void register_kv_plan(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("kv-plan", "Print the KV cache memory plan for a model shape");
  auto f = std::make_shared<KvPlanFlags>();
  auto* model = cmd->add_option("--model", f->model, "Read the shape from this model (checkpoint or directory)");
  auto* layers = cmd->add_option("--layers", f->layers, "Transformer layers");
  auto* kv_heads = cmd->add_option("--kv-heads", f->kv_heads, "KV heads per layer");
  auto* head_dim = cmd->add_option("--head-dim", f->head_dim, "Dimension of one head");
  for (auto* o : {layers, kv_heads, head_dim}) o->excludes(model);
  cmd->add_option("--dtype", f->dtype, "KV dtype: f32 | bf16 | f16 | int8 | int4")->capture_default_str();
  cmd->add_option("--page-size", f->page_size, "Tokens per page")->capture_default_str();
  cmd->add_option("--tokens", f->tokens, "Price this many cached tokens (kv_bytes_for_tokens)");
  auto* mem = cmd->add_option("--memory-gib", f->memory_gib, "KV memory budget in GiB")->capture_default_str();
  auto* pages = cmd->add_option("--num-pages", f->num_pages, "Explicit page count (with the null page)");
  mem->excludes(pages);
  cmd->callback([f, exit_code] {
    if (!f->model.empty()) {
      auto loaded = load_model(f->model);
      if (!loaded) {
        print_error("--model: " + loaded.status().message());
        *exit_code = kExitConfigError;
        return;
      }
      const ModelConfig& mc = (*loaded)->config;
      f->layers = static_cast<int>(mc.n_layers);
      f->kv_heads = static_cast<int>(mc.n_kv_heads);
      f->head_dim = static_cast<int>(mc.head_dim);
    } else if (f->layers == 0 && f->kv_heads == 0 && f->head_dim == 0) {
      print_error("give the shape: --model PATH, or --layers, --kv-heads and --head-dim");
      *exit_code = kExitConfigError;
      return;
    }
    auto dtype = parse_kv_dtype(f->dtype);
    if (!dtype) {
      print_error("--dtype: " + dtype.status().message());
      *exit_code = kExitConfigError;
      return;
    }
    const KvLayout layout{.num_layers = f->layers,
                          .num_kv_heads = f->kv_heads,
                          .head_dim = f->head_dim,
                          .page_size = f->page_size,
                          .dtype = *dtype};
    KvBudget budget{
        .tokens = f->tokens, .memory_gib = f->num_pages > 0 ? 0.0 : f->memory_gib, .num_pages = f->num_pages};
    auto plan = plan_kv(layout, budget);
    if (!plan) {
      print_error(plan.status().message());
      *exit_code = kExitConfigError;
      return;
    }
    std::cout << format_kv_plan(*plan);
    *exit_code = kExitOk;
  });
}

}  // namespace pagoda::cli
