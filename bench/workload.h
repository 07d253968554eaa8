// What the load generator sends: one prompt and one output length per request.
// Kinds: `random` (token-id or random-word prompts with fixed or ranged
// lengths), `shared-prefix` (groups of requests sharing a random prefix, each
// with its own random suffix), `conversation` (multi-turn conversations on
// shared system prompts: each turn's prompt extends the previous turn's, so a
// server, or a balancer with affinity, that keeps a conversation in one
// prefix cache serves most of each prompt from it) and `file` (a JSONL file
// of prompts, cycled).
// Request i is a pure function of (spec, i): the same seed gives the same
// requests in any order. Immutable after create(); thread-safe to read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace pagoda::bench {

// A length that is fixed ("128") or drawn uniformly from [lo, hi] ("100:200").
struct LengthRange {
  int64_t lo = 0, hi = 0;
  std::string str() const;
};
// Parses "N" or "LO:HI" (1 <= LO <= HI); `flag` names the option in errors.
Result<LengthRange> parse_length_range(const std::string& text, const std::string& flag);

enum class WorkloadKind { kRandom, kSharedPrefix, kConversation, kFile };
enum class PromptForm { kTokenIds, kWords };

struct WorkloadSpec {
  WorkloadKind kind = WorkloadKind::kRandom;
  PromptForm form = PromptForm::kTokenIds;  // token ids give exact input lengths
  LengthRange input_len{128, 128};          // random: whole prompt; shared-prefix: the suffix; conversation: a turn
  LengthRange output_len{128, 128};         // max_tokens (exact with ignore_eos)
  int64_t prefix_len = 0;                   // shared-prefix: each group's prefix; conversation: system prompt (0: none)
  int64_t num_groups = 4;                   // shared-prefix: distinct prefixes; conversation: system prompts
  int64_t num_conversations = 16;           // conversation: open at once (request i is a turn of i % this)
  int64_t turns = 4;                        // conversation: turns each, then a new conversation takes its place
  LengthRange first_input_len{0, 0};        // conversation: the first user turn (a document); 0 = input_len
  std::string file;                         // file: JSONL path
  int64_t vocab_size = 0;                   // token ids are drawn from [id_lo, vocab_size)
  double tokens_per_word = 1.0;             // words form: what the server's tokenizer makes of one word
  uint64_t seed = 0;
};

// One message of a chat prompt.
struct ChatTurn {
  std::string role;  // system, user or assistant
  std::string content;
};

// One request's prompt: token ids (use_ids) or text.
struct PromptSpec {
  bool use_ids = true;
  std::vector<int32_t> ids;
  std::string text;
  int64_t input_len = 0;   // prompt tokens expected (exact for ids; for text, through tokens_per_word)
  int64_t max_tokens = 0;  // output tokens asked for
  int64_t group = -1;      // shared-prefix or conversation: the group (system prompt), else -1
  // conversation: the same prompt as chat messages (system, then user and
  // assistant turns, ending with a user turn), the conversation's id (sent as
  // a session header when asked) and the turn (0 = first).
  std::vector<ChatTurn> messages;
  std::string session;
  int64_t turn = -1;
};

class Workload {
 public:
  // Validates the spec (and reads the file for kFile).
  static Result<Workload> create(const WorkloadSpec& spec);

  // The prompt of request `i` (any i >= 0; the file kind cycles).
  PromptSpec at(size_t i) const;
  // Distinct requests before repeating: the file's line count, else 0 (unbounded).
  size_t natural_size() const { return file_prompts_.size(); }
  const WorkloadSpec& spec() const { return spec_; }
  // The spec as JSON, for the result file.
  nlohmann::json describe() const;

  // Lowest token id used for random prompts (skips the special ids at the bottom).
  static int32_t id_lo(int64_t vocab_size) { return vocab_size >= 1000 ? 100 : 3; }

 private:
  explicit Workload(WorkloadSpec spec) : spec_(std::move(spec)) {}
  WorkloadSpec spec_;
  std::vector<PromptSpec> file_prompts_;
  std::vector<std::vector<int32_t>> prefix_ids_;  // shared-prefix, token-id form
  std::vector<std::string> prefix_text_;          // shared-prefix, word form
  PromptSpec conversation_turn(size_t i) const;
};

const char* workload_kind_name(WorkloadKind k);

}  // namespace pagoda::bench
