// `pagoda tokenize --tokenizer PATH [--no-bos] [--no-special] TEXT`: print
// TEXT's token ids as a JSON array. PATH is a tokenizer.json, a
// tokenizer.model, a llama2.c tokenizer.bin, a GGUF file (its vocabulary) or
// a model directory. With
// --jsonl, read one JSON string per stdin line and print one array per line
// (blank lines are skipped).
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace pagoda::cli {

namespace {

struct TokenizeFlags {
  std::string tokenizer;
  std::string text;
  bool no_bos = false;
  bool no_special = false;
  bool jsonl = false;
};

void print_ids(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(ids[i]);
  }
  out += "]\n";
  std::cout << out;
}

}  // namespace

void register_tokenize(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of TEXT (or of each --jsonl line) as JSON");
  auto f = std::make_shared<TokenizeFlags>();
  cmd->add_option("--tokenizer", f->tokenizer,
                  "tokenizer.json, tokenizer.model, llama2.c tokenizer.bin, a GGUF file, or a model directory")
      ->required();
  cmd->add_flag("--no-bos", f->no_bos, "Do not add the tokenizer's BOS (and other post-processor tokens)");
  cmd->add_flag("--no-special", f->no_special,
                "Like Hugging Face add_special_tokens=False plus split_special_tokens: no BOS, and "
                "special-token text such as <|im_start|> is encoded as plain text");
  auto* jsonl = cmd->add_flag("--jsonl", f->jsonl, "Read one JSON string per stdin line; print one array per line");
  cmd->add_option("TEXT", f->text, "Text to tokenize")->excludes(jsonl);
  cmd->callback([f, exit_code] {
    auto tok = load_tokenizer(f->tokenizer);
    if (!tok) {
      print_error(tok.status().message());
      *exit_code = kExitConfigError;
      return;
    }
    const EncodeOptions opts{!f->no_bos && !f->no_special, !f->no_special};
    if (!f->jsonl) {
      print_ids((*tok)->encode_with(f->text, opts));
      *exit_code = kExitOk;
      return;
    }
    std::string line;
    for (size_t n = 1; std::getline(std::cin, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      std::string text;
      try {
        const auto j = nlohmann::json::parse(line);
        if (!j.is_string()) throw std::invalid_argument("not a JSON string");
        text = j.get<std::string>();
      } catch (const std::exception& e) {
        print_error("stdin line " + std::to_string(n) + ": expected one JSON string per line (" + e.what() + ")");
        *exit_code = kExitFailure;
        return;
      }
      print_ids((*tok)->encode_with(text, opts));
    }
    *exit_code = kExitOk;
  });
}

}  // namespace pagoda::cli
