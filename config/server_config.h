// ServerConfig: every knob of pagoda, as plain structs with their defaults.
//
// The YAML key of each field is `section.field` (e.g. `kv.page_size`); these
// names are public interface. Defaults alone make a working server: it serves
// the stories260K model that tools/setup.sh puts under models/.
// config/default.yaml shows every key; config/config_schema.cpp lists the
// allowed values and is where a new knob is registered.
// Plain values: copy freely; not synchronized.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pagoda {

struct ModelSection {
  std::string path = "models/stories260K.bin";  // checkpoint file (llama2.c, GGUF) or model directory
  std::string format = "auto";                  // auto | llama2c | hf | gguf
  std::string tokenizer = "models/tok512.bin";  // tokenizer file; "" = found beside the model
  std::string weight_dtype = "auto";            // auto (the file's precision) | f32 | bf16 | int8 | int4
  int64_t max_model_len = 0;                    // prompt + output tokens; 0 = the model's maximum
  std::string name = "";                        // what /v1/models reports; "" = file or directory stem
  std::string pooling = "last";                 // /v1/embeddings: last | mean | cls (of the final hidden states)
  bool operator==(const ModelSection&) const = default;
};

struct KvSection {
  int64_t page_size = 16;      // tokens per page: 8, 16, 32, 64, 128 or 256
  std::string dtype = "f32";   // f32 | bf16 | f16 | int8 | int4
  double memory_gib = 1.0;     // KV memory budget in GiB (used when num_pages is 0)
  int64_t num_pages = 0;       // explicit page count; 0 = derive from memory_gib
  bool prefix_caching = true;  // share full pages between requests with a common prefix
  bool prefault = false;       // make the KV arena resident at start-up (else pages fault in on first write)
  bool operator==(const KvSection&) const = default;
};

struct SchedulerSection {
  int64_t max_num_seqs = 64;             // sequences in one step
  int64_t max_num_batched_tokens = 256;  // tokens in one step (prefill chunks + decodes)
  int64_t prefill_join_tokens = 16;      // a prompt joins another's step only if <= this + decodes
  bool chunked_prefill = true;           // split long prompts across steps
  std::string policy = "fcfs";           // fcfs | priority
  int64_t max_queue = 1024;              // waiting requests before new ones get 429
  double queue_timeout_s = 0;            // max seconds waiting before the first step; 0 = no limit
  bool operator==(const SchedulerSection&) const = default;
};

struct ServerSection {
  std::string host = "127.0.0.1";           // listen address
  int64_t port = 8000;                      // listen port
  int64_t io_threads = 2;                   // Asio I/O threads
  std::vector<std::string> api_keys = {};   // accepted bearer keys; empty = no auth
  std::string api_key_file = "";            // file with one key per line (instead of api_keys)
  int64_t max_body_bytes = 1048576;         // largest request body accepted (413 beyond)
  int64_t max_connections = 1024;           // concurrent connections; more are refused
  int64_t max_connections_per_client = 64;  // concurrent connections from one client address (429 beyond)
  int64_t max_header_fields = 100;          // header fields in one request (431 beyond)
  double header_timeout_s = 10;             // time allowed to send a request's headers
  double idle_timeout_s = 60;               // keep-alive idle time before closing
  double shutdown_grace_s = 30;             // time in-flight requests get on SIGTERM
  std::string chat_template = "auto";       // auto | llama2 | chatml | plain | llama3 | mistral | zephyr
  std::string tool_call_parser = "auto";    // auto (from the chat template) | hermes | llama3_json | mistral | json
  std::string replica_id = "";              // names this replica (/metrics, /load, X-Pagoda-Replica); "" = host:port
  bool operator==(const ServerSection&) const = default;
};

struct EngineSection {
  int64_t threads = 0;       // compute threads; 0 = all cores
  std::string isa = "auto";  // kernel level: auto | baseline | avx2 | avx512 | avx512_vnni | amx (PAGODA_ISA overrides)
  bool operator==(const EngineSection&) const = default;
};

struct StructuredSection {
  int64_t memory_mib = 1024;  // automata and mask caches of all compiled grammars together
  bool operator==(const StructuredSection&) const = default;
};

struct LoggingSection {
  std::string level = "info";    // trace | debug | info | warn | error | off
  std::string format = "text";   // text | json (one JSON object per line)
  double stats_interval_s = 10;  // seconds between stats lines while there is traffic; 0 = none
  bool log_prompts = false;      // access-log records carry the prompt text (as the model saw it)
  bool operator==(const LoggingSection&) const = default;
};

struct ServerConfig {
  ModelSection model;
  KvSection kv;
  SchedulerSection scheduler;
  ServerSection server;
  EngineSection engine;
  StructuredSection structured;
  LoggingSection logging;
  bool operator==(const ServerConfig&) const = default;
};

}  // namespace pagoda
