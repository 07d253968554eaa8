#include "bench/workload.h"

#include <algorithm>
#include <cmath>

#include <charconv>
#include <fstream>
#include <random>

namespace pagoda::bench {
namespace {

using nlohmann::json;

// Words for text prompts: common English words that most tokenizers keep whole.
const char* const kWords[] = {
    "the",   "time",   "people",  "year",    "way",    "day",      "man",      "thing",    "woman",    "life",
    "child", "world",  "school",  "state",   "family", "group",    "country",  "problem",  "hand",     "part",
    "place", "case",   "week",    "company", "system", "program",  "question", "work",     "number",   "night",
    "point", "home",   "water",   "room",    "mother", "area",     "money",    "story",    "fact",     "month",
    "lot",   "right",  "study",   "book",    "eye",    "job",      "word",     "business", "issue",    "side",
    "kind",  "head",   "house",   "service", "friend", "father",   "power",    "hour",     "game",     "line",
    "end",   "member", "law",     "car",     "city",   "name",     "team",     "minute",   "idea",     "kid",
    "body",  "back",   "parent",  "face",    "others", "level",    "office",   "door",     "health",   "person",
    "art",   "war",    "history", "party",   "result", "change",   "morning",  "reason",   "research", "girl",
    "guy",   "moment", "air",     "teacher", "force",  "education"};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

// A generator seeded by (seed, stream, index): request i is reproducible on its own.
std::mt19937_64 rng_for(uint64_t seed, uint64_t stream, uint64_t i) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(stream),
                    static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32)};
  return std::mt19937_64(seq);
}

int64_t draw(const LengthRange& r, std::mt19937_64& rng) {
  if (r.lo == r.hi) return r.lo;
  return std::uniform_int_distribution<int64_t>(r.lo, r.hi)(rng);
}

std::vector<int32_t> random_ids(int64_t n, int64_t vocab, std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> id(Workload::id_lo(vocab), static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> out(static_cast<size_t>(n));
  for (auto& t : out) t = id(rng);
  return out;
}

// About `tokens` tokens of words, at `tokens_per_word` tokens per word.
std::string random_words(int64_t tokens, double tokens_per_word, std::mt19937_64& rng) {
  const int64_t n = std::max<int64_t>(1, std::llround(static_cast<double>(tokens) / tokens_per_word));
  std::uniform_int_distribution<size_t> w(0, kNumWords - 1);
  std::string out;
  for (int64_t i = 0; i < n; ++i) {
    if (i) out += ' ';
    out += kWords[w(rng)];
  }
  return out;
}

bool parse_i64(const std::string& s, int64_t* v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::string LengthRange::str() const {
  return lo == hi ? std::to_string(lo) : std::to_string(lo) + ":" + std::to_string(hi);
}

Result<LengthRange> parse_length_range(const std::string& text, const std::string& flag) {
  LengthRange r;
  const size_t colon = text.find(':');
  bool ok = colon == std::string::npos
                ? parse_i64(text, &r.lo)
                : parse_i64(text.substr(0, colon), &r.lo) && parse_i64(text.substr(colon + 1), &r.hi);
  if (colon == std::string::npos) r.hi = r.lo;
  if (!ok || r.lo < 1 || r.hi < r.lo)
    return Status::invalid_argument(flag + " must be N or LO:HI with 1 <= LO <= HI, got '" + text + "'");
  return r;
}

const char* workload_kind_name(WorkloadKind k) {
  switch (k) {
    case WorkloadKind::kRandom:
      return "random";
    case WorkloadKind::kSharedPrefix:
      return "shared-prefix";
    case WorkloadKind::kConversation:
      return "conversation";
    case WorkloadKind::kFile:
      return "file";
  }
  return "unknown";
}

Result<Workload> Workload::create(const WorkloadSpec& spec) {
  Workload w(spec);
  if (spec.form == PromptForm::kTokenIds && spec.kind != WorkloadKind::kFile &&
      spec.vocab_size <= id_lo(spec.vocab_size) + 1)
    return Status::invalid_argument("token-id prompts need a vocabulary size above " +
                                    std::to_string(id_lo(spec.vocab_size) + 1) + ", got " +
                                    std::to_string(spec.vocab_size) + " (set --vocab-size)");
  if (spec.kind == WorkloadKind::kConversation) {
    if (spec.prefix_len < 0) return Status::invalid_argument("--prefix-len must be >= 0 for the conversation workload");
    if (spec.num_conversations < 1) return Status::invalid_argument("--num-conversations must be >= 1");
    if (spec.turns < 1 || spec.turns > 10000) return Status::invalid_argument("--turns must be from 1 to 10000");
  }
  if (spec.kind == WorkloadKind::kSharedPrefix && spec.prefix_len < 1)
    return Status::invalid_argument("--prefix-len must be >= 1 for the shared-prefix workload");
  if (spec.kind == WorkloadKind::kSharedPrefix || (spec.kind == WorkloadKind::kConversation && spec.prefix_len > 0)) {
    if (spec.num_groups < 1) return Status::invalid_argument("--num-groups must be >= 1");
    for (int64_t g = 0; g < spec.num_groups; ++g) {
      auto rng = rng_for(spec.seed, 1, static_cast<uint64_t>(g));
      if (spec.form == PromptForm::kTokenIds)
        w.prefix_ids_.push_back(random_ids(spec.prefix_len, spec.vocab_size, rng));
      else w.prefix_text_.push_back(random_words(spec.prefix_len, spec.tokens_per_word, rng));
    }
  }
  if (spec.kind == WorkloadKind::kFile) {
    std::ifstream in(spec.file);
    if (!in) return Status::not_found("--dataset-file: cannot read '" + spec.file + "'");
    std::string line;
    for (int64_t lineno = 1; std::getline(in, line); ++lineno) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = spec.file + ":" + std::to_string(lineno) + ": ";
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        return Status::invalid_argument(where + "each line must be a JSON object");
      PromptSpec p;
      if (!j.contains("prompt")) return Status::invalid_argument(where + "missing \"prompt\"");
      const json& pr = j["prompt"];
      if (pr.is_string()) {
        p.use_ids = false;
        p.text = pr.get<std::string>();
        p.input_len = 0;  // unknown until the server reports usage
      } else if (pr.is_array() && !pr.empty()) {
        for (const json& t : pr) {
          if (!t.is_number_integer() || t.get<int64_t>() < 0)
            return Status::invalid_argument(where + "\"prompt\" as an array must hold non-negative token ids");
          p.ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
        }
        p.input_len = static_cast<int64_t>(p.ids.size());
      } else {
        return Status::invalid_argument(where + "\"prompt\" must be a string or a non-empty array of token ids");
      }
      for (const char* key : {"max_tokens", "output_len"}) {
        if (!j.contains(key)) continue;
        if (!j[key].is_number_integer() || j[key].get<int64_t>() < 1)
          return Status::invalid_argument(where + "\"" + key + "\" must be an integer >= 1");
        p.max_tokens = j[key].get<int64_t>();
      }
      w.file_prompts_.push_back(std::move(p));
    }
    if (w.file_prompts_.empty())
      return Status::invalid_argument("--dataset-file: '" + spec.file + "' holds no prompts");
  }
  return w;
}

// Request i is turn (i / N) % T of slot i % N (N conversations open at once,
// T turns each); after T turns a slot starts a new conversation. Every turn
// of a conversation is drawn from (seed, conversation, turn), so turn t's
// prompt is turn t-1's plus that turn's stand-in answer and a new question:
// the answers are words drawn like the questions, not what the model said,
// so request i stays a pure function of (spec, i).
PromptSpec Workload::conversation_turn(size_t i) const {
  const auto n = static_cast<size_t>(spec_.num_conversations), turns = static_cast<size_t>(spec_.turns);
  const size_t round = i / (n * turns), turn = (i / n) % turns, slot = i % n;
  const uint64_t conversation = round * n + slot;
  PromptSpec p;
  p.use_ids = spec_.form == PromptForm::kTokenIds;
  p.turn = static_cast<int64_t>(turn);
  p.session = "conversation-" + std::to_string(spec_.seed) + "-" + std::to_string(conversation);
  auto rng = rng_for(spec_.seed, 2, i);
  p.max_tokens = draw(spec_.output_len, rng);
  if (spec_.prefix_len > 0) {
    p.group = static_cast<int64_t>(conversation % static_cast<uint64_t>(spec_.num_groups));
    if (p.use_ids) p.ids = prefix_ids_[static_cast<size_t>(p.group)];
    else p.messages.push_back({"system", prefix_text_[static_cast<size_t>(p.group)]});
    p.input_len = spec_.prefix_len;
  }
  for (size_t t = 0; t <= turn; ++t) {
    // Stream 3: questions, stream 4: answers; index = (conversation, turn).
    const uint64_t at = (conversation << 16) | t;
    auto q_rng = rng_for(spec_.seed, 3, at);
    const bool document = t == 0 && spec_.first_input_len.lo > 0;
    const int64_t q_len = draw(document ? spec_.first_input_len : spec_.input_len, q_rng);
    std::vector<std::pair<std::string, int64_t>> parts = {{"user", q_len}};
    if (t < turn) {
      auto a_rng = rng_for(spec_.seed, 4, at);
      parts.push_back({"assistant", draw(spec_.output_len, a_rng)});
    }
    auto text_rng = rng_for(spec_.seed, 5, at);
    for (const auto& [role, len] : parts) {
      if (p.use_ids) {
        const auto ids = random_ids(len, spec_.vocab_size, text_rng);
        p.ids.insert(p.ids.end(), ids.begin(), ids.end());
      } else {
        p.messages.push_back({role, random_words(len, spec_.tokens_per_word, text_rng)});
      }
      p.input_len += len;
    }
  }
  // The completions form of the same prompt: the messages' texts, one per line.
  for (const ChatTurn& m : p.messages) p.text += (p.text.empty() ? "" : "\n") + m.content;
  return p;
}

PromptSpec Workload::at(size_t i) const {
  if (spec_.kind == WorkloadKind::kConversation) return conversation_turn(i);
  auto rng = rng_for(spec_.seed, 2, i);
  PromptSpec p;
  if (spec_.kind == WorkloadKind::kFile) {
    p = file_prompts_[i % file_prompts_.size()];
    if (p.max_tokens == 0) p.max_tokens = draw(spec_.output_len, rng);
    return p;
  }
  p.use_ids = spec_.form == PromptForm::kTokenIds;
  const int64_t n = draw(spec_.input_len, rng);
  p.max_tokens = draw(spec_.output_len, rng);
  if (spec_.kind == WorkloadKind::kSharedPrefix) {
    p.group = static_cast<int64_t>(i % static_cast<size_t>(spec_.num_groups));
    if (p.use_ids) {
      p.ids = prefix_ids_[static_cast<size_t>(p.group)];
      const auto suffix = random_ids(n, spec_.vocab_size, rng);
      p.ids.insert(p.ids.end(), suffix.begin(), suffix.end());
    } else {
      p.text = prefix_text_[static_cast<size_t>(p.group)] + " " + random_words(n, spec_.tokens_per_word, rng);
    }
    p.input_len = spec_.prefix_len + n;
    return p;
  }
  if (p.use_ids) p.ids = random_ids(n, spec_.vocab_size, rng);
  else p.text = random_words(n, spec_.tokens_per_word, rng);
  p.input_len = n;
  return p;
}

json Workload::describe() const {
  json j = {{"kind", workload_kind_name(spec_.kind)}, {"seed", spec_.seed}};
  if (spec_.kind == WorkloadKind::kFile) {
    j["file"] = spec_.file;
    j["prompts_in_file"] = file_prompts_.size();
  } else {
    j["prompt_form"] = spec_.form == PromptForm::kTokenIds ? "token-ids" : "words";
    if (spec_.form == PromptForm::kWords) j["tokens_per_word"] = spec_.tokens_per_word;
    j["input_len"] = spec_.input_len.str();
    j["vocab_size"] = spec_.vocab_size;
  }
  j["output_len"] = spec_.output_len.str();
  if (spec_.kind == WorkloadKind::kSharedPrefix || spec_.kind == WorkloadKind::kConversation) {
    j["prefix_len"] = spec_.prefix_len;
    j["num_groups"] = spec_.num_groups;
  }
  if (spec_.kind == WorkloadKind::kConversation) {
    j["num_conversations"] = spec_.num_conversations;
    j["turns"] = spec_.turns;
    if (spec_.first_input_len.lo > 0) j["first_input_len"] = spec_.first_input_len.str();
  }
  return j;
}

}  // namespace pagoda::bench
