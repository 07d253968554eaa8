#include "server/server_app.h"

#include <omp.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/huge_pages.h"
#include "common/logging.h"
#include "engine/model/llama_model.h"
#include "formats/model_loader.h"
#include "gguf/gguf_file.h"
#include "kvpool/kv_plan.h"
#include "scheduler/engine_loop.h"
#include "scheduler/llama_runner.h"
#include "server/api_service.h"
#include "server/http_server.h"
#include "server/kv_sizing.h"
#include "server/startup_log.h"
#include "server/stats_logger.h"
#include "tokenizer/tokenizer.h"

namespace pagoda {

namespace {

// This machine's name (a container's or pod's name inside one), for the
// default server.replica_id.
std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

}  // namespace

struct ServerApp::Impl {
  ServerConfig config;
  std::shared_ptr<const LoadedModel> model;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::unique_ptr<KvStorage> storage;
  std::unique_ptr<LlamaModel> llama;
  std::unique_ptr<EngineLoop> engine;
  std::unique_ptr<ApiService> api;
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<StatsLogger> stats_logger;
  std::thread shutdown_thread;
  // The API's grammar compiler posts its results to the HTTP server's
  // io_context: stop it before that goes, on every path.
  ~Impl() {
    if (api) api->stop();
    http.reset();
  }
};

ServerApp::ServerApp(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ServerApp::~ServerApp() {
  if (impl_ && impl_->shutdown_thread.joinable()) impl_->shutdown_thread.join();
}

Result<std::unique_ptr<ServerApp>> ServerApp::create(const ServerConfig& config) {
  Result<std::unique_ptr<ServerApp>> app = Status::internal("not assembled");
  std::thread([&] { app = assemble(config); }).join();
  return app;
}

Result<std::unique_ptr<ServerApp>> ServerApp::assemble(const ServerConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  if (impl->config.server.replica_id.empty())
    impl->config.server.replica_id = host_name() + ":" + std::to_string(config.server.port);
  const ServerConfig& c = impl->config;
  if (c.engine.threads > 0) omp_set_num_threads(static_cast<int>(c.engine.threads));

  auto format = parse_model_format(c.model.format);
  if (!format) return Status::invalid_argument("config key 'model.format': " + format.status().message());
  auto choice = parse_weight_choice(c.model.weight_dtype);
  if (!choice) return Status::invalid_argument("config key 'model.weight_dtype': " + choice.status().message());
  // GGUF matrices keep no f32 copies: LlamaModel packs them one at a time.
  LoadOptions load_options;
  load_options.expand_matrices = false;
  auto loaded = load_model(c.model.path, *format, load_options);
  if (!loaded) return Status(loaded.status().code(), "config key 'model.path': " + loaded.status().message());
  impl->model = std::shared_ptr<const LoadedModel>(std::move(loaded).value());
  const ModelConfig& mc = impl->model->config;

  // "" = beside the model: the model directory itself (Hugging Face), the
  // GGUF file itself (it carries its vocabulary), or the checkpoint file's folder.
  std::string tok_path = c.model.tokenizer;
  if (tok_path.empty())
    tok_path = std::filesystem::is_directory(c.model.path) || is_gguf_file(c.model.path)
                   ? c.model.path
                   : std::filesystem::path(c.model.path).parent_path().string();
  auto tok = load_tokenizer(tok_path);
  if (!tok) return Status(tok.status().code(), "config key 'model.tokenizer': " + tok.status().message());
  impl->tokenizer = std::shared_ptr<const Tokenizer>(std::move(tok).value());
  if (impl->tokenizer->vocab_size() != mc.vocab_size)
    return Status::invalid_argument("config key 'model.tokenizer': the tokenizer has " +
                                    std::to_string(impl->tokenizer->vocab_size()) + " tokens but the model has " +
                                    std::to_string(mc.vocab_size));

  const std::optional<WeightDtype> wdt = *choice;
  auto kv = plan_server_kv(c, mc);
  if (!kv) return kv.status();
  const KvPlan* plan = &kv->plan;
  const int64_t max_model_len = kv->max_model_len;
  const KvLayout& layout = plan->layout;
  auto storage = KvStorage::create(layout, plan->num_pages);
  if (!storage) return storage.status();
  impl->storage = std::move(storage).value();
  if (c.kv.prefault) {
    if (Status st = impl->storage->prefault(); !st)
      return Status::resource_exhausted("config key 'kv.prefault': " + st.message());
  }
  auto llama = LlamaModel::create(impl->model, wdt, impl->storage.get());
  // bf16 matmuls exist only from AVX-512 up: Linear says so as invalid_argument.
  if (!llama && llama.status().code() == StatusCode::kInvalidArgument && wdt == WeightDtype::kBF16)
    return Status::invalid_argument("config key 'model.weight_dtype': " + llama.status().message());
  if (!llama) return llama.status();
  impl->llama = std::move(llama).value();

  KvCacheConfig kvc;
  kvc.page_size = static_cast<int>(c.kv.page_size);
  kvc.num_pages = plan->num_pages;
  kvc.enable_prefix_caching = c.kv.prefix_caching;
  kvc.sliding_window = mc.sliding_window;
  kvc.copy_rows = impl->storage->row_copier();
  auto kvm = KvCacheManager::create(kvc);
  if (!kvm) return kvm.status();

  EngineCoreConfig ec;
  ec.scheduler.max_num_seqs = c.scheduler.max_num_seqs;
  ec.scheduler.max_num_batched_tokens = c.scheduler.max_num_batched_tokens;
  ec.scheduler.prefill_join_tokens = c.scheduler.prefill_join_tokens;
  ec.scheduler.chunked_prefill = c.scheduler.chunked_prefill;
  ec.scheduler.priority_policy = c.scheduler.policy == "priority";
  ec.scheduler.max_model_len = max_model_len;
  ec.queue_timeout_s = c.scheduler.queue_timeout_s;
  auto core = std::make_unique<EngineCore>(ec, std::move(kvm).value(), std::make_unique<LlamaRunner>(impl->llama.get()),
                                           impl->tokenizer, std::make_shared<EngineStats>());
  impl->engine =
      std::make_unique<EngineLoop>(std::move(core), static_cast<int>(c.engine.threads), c.scheduler.max_queue);

  auto keys = load_api_keys(c);
  if (!keys) return keys.status();
  ServedModel served;
  served.name = c.model.name.empty() ? std::filesystem::path(c.model.path).stem().string() : c.model.name;
  served.max_model_len = max_model_len;
  served.vocab_size = static_cast<int32_t>(mc.vocab_size);
  served.hidden_size = mc.dim;
  impl->api = std::make_unique<ApiService>(c, served, impl->engine.get(), impl->tokenizer, std::move(keys).value());
  impl->http = std::make_unique<HttpServer>(c, impl->api.get());
  HttpServer* http = impl->http.get();
  impl->api->set_connection_counter([http] { return http->active_connections(); });

  log_model_summary(served.name, c, mc, impl->llama->weight_bytes(), max_model_len);
  log_kv_summary(c, *kv, impl->storage->size_bytes(), resident_memory_bytes());
  log_engine_summary(c, c.engine.threads > 0 ? static_cast<int>(c.engine.threads) : omp_get_max_threads());
  return std::unique_ptr<ServerApp>(new ServerApp(std::move(impl)));
}

int ServerApp::run() {
  Impl& s = *impl_;
  if (Status st = s.http->start(); !st.is_ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  s.engine->start();
  s.stats_logger = std::make_unique<StatsLogger>(s.engine->stats(), s.config.logging.stats_interval_s);
  s.api->set_ready(true);
  s.http->set_on_signal([this](int) {
    // The drain: the listener stays open so /health can answer 503
    // "draining"; idle keep-alive connections are closed; new requests are
    // refused by the engine's admission check; running ones get
    // server.shutdown_grace_s to finish.
    Impl& im = *impl_;
    im.engine->begin_drain();
    im.http->begin_drain();
    im.shutdown_thread = std::thread([&im] {
      const auto grace = std::chrono::milliseconds(static_cast<int64_t>(im.config.server.shutdown_grace_s * 1000));
      const bool idle = im.engine->wait_idle(grace);
      spdlog::info(idle ? "all requests finished; stopping" : "grace period over: cancelling the remaining requests");
      im.engine->stop();  // aborts what is left; their clients get a final event
      // Give responses in flight a moment to flush their last bytes.
      for (int i = 0; i < 50 && im.http->busy_connections() > 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      im.http->stop();
    });
  });
  log_summary(spdlog::level::info, "listening",
              "listening on http://" + s.config.server.host + ":" + std::to_string(s.http->port()) + " as replica " +
                  s.config.server.replica_id,
              {{"host", s.config.server.host}, {"port", s.http->port()}, {"replica", s.config.server.replica_id}});
  s.http->run();
  if (s.shutdown_thread.joinable()) s.shutdown_thread.join();
  s.stats_logger->stop();
  s.engine->stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace pagoda
