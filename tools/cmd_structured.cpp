// `pagoda structured check --tokenizer PATH [--schema FILE | --regex RE |
// --grammar FILE] [--jsonl] [TEXT]`: whether a grammar accepts TEXT as a
// model would write it. TEXT is tokenized as a continuation (no BOS, no
// dummy space); each token is checked against the token mask of the state
// before it, then EOS must be allowed at the end. Prints one JSON object:
// {"compiled", "error", "accepted", "rejected_at", "compile_us", "mask_us"}
// (mask_us: one time per mask, the last one the mask at the end). With
// --jsonl, each stdin line is {"schema"|"regex"|"grammar"|"choice": ...,
// "text": "...", "strict": bool} (the grammar may come from the flags
// instead) and each output line is such an object. Compiled grammars are
// cached by spec, so a repeated schema compiles once (compile_us is then the
// lookup). Exit 0 when every text was accepted, 1 when one was not, 2 for
// bad flags or input.
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "structured/compiled_grammar.h"
#include "structured/grammar_cache.h"
#include "structured/grammar_spec.h"
#include "structured/token_trie.h"
#include "tokenizer/tokenizer.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace pagoda::cli {

namespace {

using structured::GrammarSpec;
using Clock = std::chrono::steady_clock;

struct StructuredFlags {
  std::string tokenizer;
  std::string schema_file;
  std::string regex;
  std::string grammar_file;
  std::string text;
  bool jsonl = false;
  bool strict = false;
  bool flexible_whitespace = false;
};

double micros_since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The spec of a --jsonl line (or of the flags when the line names none).
Result<std::optional<GrammarSpec>> spec_of_line(const nlohmann::ordered_json& line, bool strict, bool flexible) {
  GrammarSpec spec;
  spec.strict = line.value("strict", strict);
  spec.flexible_whitespace = flexible;
  if (line.contains("schema")) {
    spec.kind = GrammarSpec::Kind::kJsonSchema;
    spec.schema = line["schema"];
  } else if (line.contains("regex")) {
    if (!line["regex"].is_string()) return Status::invalid_argument("\"regex\" must be a string");
    spec.kind = GrammarSpec::Kind::kRegex;
    spec.text = line["regex"].get<std::string>();
  } else if (line.contains("grammar")) {
    if (!line["grammar"].is_string()) return Status::invalid_argument("\"grammar\" must be a string (GBNF)");
    spec.kind = GrammarSpec::Kind::kGbnf;
    spec.text = line["grammar"].get<std::string>();
  } else if (line.contains("choice")) {
    if (!line["choice"].is_array()) return Status::invalid_argument("\"choice\" must be a list of strings");
    spec.kind = GrammarSpec::Kind::kChoice;
    for (const auto& c : line["choice"]) {
      if (!c.is_string()) return Status::invalid_argument("\"choice\" must be a list of strings");
      spec.choices.push_back(c.get<std::string>());
    }
  } else {
    return std::optional<GrammarSpec>();
  }
  return std::optional<GrammarSpec>(std::move(spec));
}

// Checks `text` against `spec` and returns the result object.
nlohmann::json check_text(structured::GrammarCache& cache, const Tokenizer& tokenizer, const GrammarSpec& spec,
                          const std::string& text) {
  nlohmann::json result = {{"compiled", false},      {"error", nullptr},  {"accepted", false},
                           {"rejected_at", nullptr}, {"compile_us", 0.0}, {"mask_us", nlohmann::json::array()}};
  const auto compile_start = Clock::now();
  auto compiled = cache.get(spec);
  result["compile_us"] = micros_since(compile_start);
  if (!compiled) {
    result["error"] = compiled.status().message();
    return result;
  }
  result["compiled"] = true;
  structured::GrammarMatcher matcher(*compiled);
  const std::vector<int32_t> ids = structured::encode_continuation(tokenizer, text);
  structured::TokenMask mask;
  auto& mask_us = result["mask_us"];
  for (size_t i = 0; i <= ids.size(); ++i) {
    const auto start = Clock::now();
    if (Status status = matcher.fill_mask(mask); !status) {
      result["error"] = status.message();
      result["rejected_at"] = i;
      return result;
    }
    mask_us.push_back(micros_since(start));
    if (i == ids.size()) break;
    if (!structured::mask_allows(mask, ids[i])) {
      result["rejected_at"] = i;
      return result;
    }
    if (!matcher.accept(ids[i])) {
      result["error"] = "internal: token " + std::to_string(ids[i]) + " allowed by the mask but refused";
      result["rejected_at"] = i;
      return result;
    }
  }
  const bool can_end = !tokenizer.eos_ids().empty() && structured::mask_allows(mask, tokenizer.eos_ids()[0]);
  if (can_end != matcher.can_end()) result["error"] = "internal: the mask and the matcher disagree on EOS";
  if (!can_end) {
    result["rejected_at"] = ids.size();
    return result;
  }
  result["accepted"] = true;
  return result;
}

int run_check(const StructuredFlags& f) {
  auto tokenizer = load_tokenizer(f.tokenizer);
  if (!tokenizer) {
    print_error(tokenizer.status().message());
    return kExitConfigError;
  }
  std::optional<GrammarSpec> flag_spec;
  const int given = !f.schema_file.empty() + !f.regex.empty() + !f.grammar_file.empty();
  if (given > 1) {
    print_error("structured check: give one of --schema, --regex, --grammar");
    return kExitConfigError;
  }
  if (given == 1) {
    GrammarSpec spec;
    spec.strict = f.strict;
    spec.flexible_whitespace = f.flexible_whitespace;
    if (!f.regex.empty()) {
      spec.kind = GrammarSpec::Kind::kRegex;
      spec.text = f.regex;
    } else {
      const std::string& path = f.schema_file.empty() ? f.grammar_file : f.schema_file;
      auto text = read_file(path);
      if (!text) {
        print_error("structured check: cannot read '" + path + "'");
        return kExitConfigError;
      }
      if (!f.grammar_file.empty()) {
        spec.kind = GrammarSpec::Kind::kGbnf;
        spec.text = *text;
      } else {
        spec.kind = GrammarSpec::Kind::kJsonSchema;
        spec.schema = nlohmann::ordered_json::parse(*text, nullptr, false);
        if (spec.schema.is_discarded()) {
          print_error("structured check: '" + path + "' is not JSON");
          return kExitConfigError;
        }
      }
    }
    flag_spec = std::move(spec);
  }
  structured::GrammarCache cache(structured::TokenTrie::build(**tokenizer), 64);
  if (!f.jsonl) {
    if (!flag_spec) {
      print_error("structured check: give --schema, --regex or --grammar (or --jsonl)");
      return kExitConfigError;
    }
    const nlohmann::json result = check_text(cache, **tokenizer, *flag_spec, f.text);
    std::cout << result.dump() << "\n";
    return result["accepted"].get<bool>() ? kExitOk : kExitFailure;
  }
  int exit_code = kExitOk;
  std::string line;
  for (size_t n = 1; std::getline(std::cin, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::ordered_json input = nlohmann::ordered_json::parse(line, nullptr, false);
    if (input.is_discarded() || !input.is_object() || !input.contains("text") || !input["text"].is_string()) {
      print_error("stdin line " + std::to_string(n) + ": expected an object with a \"text\" string");
      return kExitConfigError;
    }
    auto spec = spec_of_line(input, f.strict, f.flexible_whitespace);
    if (!spec) {
      print_error("stdin line " + std::to_string(n) + ": " + spec.status().message());
      return kExitConfigError;
    }
    if (!*spec && !flag_spec) {
      print_error("stdin line " + std::to_string(n) +
                  ": no \"schema\", \"regex\", \"grammar\" or \"choice\", and no flag");
      return kExitConfigError;
    }
    const nlohmann::json result =
        check_text(cache, **tokenizer, *spec ? **spec : *flag_spec, input["text"].get<std::string>());
    if (!result["accepted"].get<bool>()) exit_code = kExitFailure;
    std::cout << result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  return exit_code;
}

}  // namespace

void register_structured(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("structured", "Structured outputs: check texts against grammars");
  cmd->require_subcommand(1);
  auto* check =
      cmd->add_subcommand("check", "Whether a grammar accepts TEXT as the model would write it (token by token)");
  auto f = std::make_shared<StructuredFlags>();
  check->add_option("--tokenizer", f->tokenizer, "tokenizer.json, tokenizer.model, tokenizer.bin, GGUF or model dir")
      ->required();
  check->add_option("--schema", f->schema_file, "A JSON Schema file");
  check->add_option("--regex", f->regex, "A regular expression (the whole text must match)");
  check->add_option("--grammar", f->grammar_file, "A GBNF grammar file (root rule: root)");
  check->add_flag("--strict", f->strict, "JSON Schema in OpenAI's strict mode (no additional properties)");
  check->add_flag("--flexible-whitespace", f->flexible_whitespace, "Allow whitespace between JSON tokens");
  auto* jsonl = check->add_flag("--jsonl", f->jsonl, "Read one JSON object per stdin line; print one result per line");
  check->add_option("TEXT", f->text, "The text to check")->excludes(jsonl);
  check->callback([f, exit_code] { *exit_code = run_check(*f); });
}

}  // namespace pagoda::cli
