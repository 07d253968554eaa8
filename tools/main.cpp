// pagoda: one binary, several subcommands (serve, config check, ...).
#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/nearest_word.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace {

std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    names.push_back(sub->get_name());
  return names;
}

// The long flags `cmd` and its parents' subcommand chain accept ("--port").
std::vector<std::string> long_flags(const CLI::App& cmd) {
  std::vector<std::string> flags = {"--help"};
  for (const CLI::Option* opt : cmd.get_options())
    for (const std::string& name : opt->get_lnames()) flags.push_back("--" + name);
  return flags;
}

// `pagoda help [COMMAND...]`: the help of the app or of a (nested) command.
int print_help(CLI::App& app, const std::vector<std::string>& path) {
  CLI::App* cmd = &app;
  for (const std::string& name : path) {
    CLI::App* sub = nullptr;
    try {
      sub = cmd->get_subcommand(name);
    } catch (const CLI::OptionNotFound&) {
    }
    if (sub == nullptr) {
      const std::string near = pagoda::nearest_word(name, subcommand_names(*cmd));
      pagoda::cli::print_error("unknown command '" + name + "'" +
                               (near.empty() ? "" : " (did you mean '" + near + "'?)"));
      return pagoda::cli::kExitConfigError;
    }
    cmd = sub;
  }
  std::cout << cmd->help();
  return pagoda::cli::kExitOk;
}

// After a parse error: "did you mean" for a mistyped command or flag, found
// by walking argv the way the parser did. Returns "" when nothing is near.
std::string suggestion(CLI::App& app, const std::vector<std::string>& args) {
  CLI::App* cmd = &app;
  for (const std::string& arg : args) {
    if (arg.rfind("--", 0) == 0) {
      const std::string name = arg.substr(0, arg.find('='));
      const std::vector<std::string> known = long_flags(*cmd);
      if (std::find(known.begin(), known.end(), name) != known.end()) continue;
      const std::string near = pagoda::nearest_word(name, known);
      const std::string where = cmd == &app ? "pagoda" : "pagoda " + cmd->get_name();
      return "unknown flag '" + name + "' for " + where + (near.empty() ? "" : " (did you mean '" + near + "'?)") +
             "; see " + where + " --help";
    }
    if (arg.empty() || arg[0] == '-') continue;
    const std::vector<std::string> subs = subcommand_names(*cmd);
    if (std::find(subs.begin(), subs.end(), arg) != subs.end()) {
      cmd = cmd->get_subcommand(arg);
      continue;
    }
    if (!subs.empty() && cmd->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty()) {
      const std::string near = pagoda::nearest_word(arg, subs);
      return "unknown command '" + arg + "'" + (near.empty() ? "" : " (did you mean '" + near + "'?)") +
             "; see pagoda help";
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  // A write to a closed socket or pipe (a client gone, a log reader that
  // exited) must be an EPIPE error for the writer to handle, never the end
  // of the process.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"pagoda: a vLLM-style LLM serving daemon for CPUs", "pagoda"};
  app.set_version_flag("--version", [] {
    std::string text = pagoda::cli::version_text();
    text.pop_back();  // CLI11 ends the line itself
    return text;
  });
  app.require_subcommand(1);
  app.footer("Run 'pagoda help COMMAND' or 'pagoda COMMAND --help' for a command's flags.\n");
  int exit_code = pagoda::cli::kExitOk;
  pagoda::cli::register_serve(app, &exit_code);
  pagoda::cli::register_config(app, &exit_code);
  pagoda::cli::register_make_model(app, &exit_code);
  pagoda::cli::register_kv_plan(app, &exit_code);
  pagoda::cli::register_tokenize(app, &exit_code);
  pagoda::cli::register_structured(app, &exit_code);
  pagoda::cli::register_chat_template(app, &exit_code);
  pagoda::cli::register_bench(app, &exit_code);
  pagoda::cli::register_info(app, &exit_code);
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "help") return print_help(app, {args.begin() + 1, args.end()});
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (const std::string hint = suggestion(app, args); !hint.empty()) {
      pagoda::cli::print_error(hint);
    } else {
      app.exit(e);
    }
    return pagoda::cli::kExitConfigError;
  }
  return exit_code;
}
