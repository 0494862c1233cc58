// lorafit: one binary, subcommands registered by the cmd_*.cpp files beside this one.
// Flags are snake_case as in Hugging Face (--max_new_tokens); the kebab-case spelling
// (--max-new-tokens) is accepted for every flag of every command. An unknown command or flag
// is a one-line error that suggests a name only when one is close (util/suggest.h).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/command.h"
#include "util/error.h"
#include "util/suggest.h"
#include "util/file.h"

namespace lorafit::cli {

namespace {
struct Entry {
  const char* name;
  const char* help;
  SetupFn setup;
};
std::vector<Entry>& registry() {
  static std::vector<Entry> r;
  return r;
}

// "--name" or "--name=value" with a flag-like name, else "" (values such as "--be brief" or
// "-1" are not flags).
std::string flag_name(const std::string& arg) {
  if (arg.size() < 3 || arg.rfind("--", 0) != 0) return "";
  const std::string name = arg.substr(2, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - 2);
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return "";
  return name;
}

std::vector<std::string> option_names(const CLI::App& sub) {
  std::vector<std::string> names;
  for (const CLI::Option* o : sub.get_options())
    for (const std::string& n : o->get_lnames()) names.push_back(n);
  return names;
}

// The command named by args[0]; an unknown name is an Error suggesting close ones.
CLI::App* find_command(CLI::App& app, const std::vector<std::string>& args) {
  if (args.empty() || args[0].rfind('-', 0) == 0) return nullptr;  // --help, --version: CLI11's
  for (CLI::App* sub : app.get_subcommands({}))
    if (sub->get_name() == args[0]) return sub;
  std::vector<std::string> names;
  for (const Entry& e : registry()) names.push_back(e.name);
  throw Error("unknown command \"{}\"{} (`lorafit --help` lists the commands)", args[0], did_you_mean(args[0], names));
}

// Rewrites kebab-case flags to their snake_case names and rejects unknown flags, naming the
// command and the close names it has. Commands that parse their own settings (train, demo,
// prepare: allow_extras) check their flags themselves, kebab-case included.
void check_flags(const CLI::App& sub, std::vector<std::string>& args) {
  if (sub.get_allow_extras()) return;
  const std::vector<std::string> names = option_names(sub);
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--") break;
    const std::string name = flag_name(args[i]);
    if (name.empty()) continue;
    const std::string snake = snake_case(name);
    if (std::find(names.begin(), names.end(), snake) == names.end())
      throw Error("{}: unknown flag --{}{} (`lorafit {} --help` lists its flags)", sub.get_name(), name,
                  did_you_mean(name, names, "--"), sub.get_name());
    if (snake != name) args[i] = "--" + snake + args[i].substr(2 + name.size());
  }
}

int report(const std::exception& e) {
  std::fflush(stdout);
  std::fprintf(stderr, "lorafit: error: %s\n", e.what());
  return 1;
}

}  // namespace

bool register_command(const char* name, const char* help, SetupFn setup) {
  registry().push_back({name, help, setup});
  return true;
}

int run_main(int argc, char** argv) {
  CLI::App app{"lorafit: LoRA fine-tuning of Hugging Face LLMs in one native binary", "lorafit"};
  app.set_version_flag("--version", std::string("lorafit ") + LORAFIT_VERSION);
  app.require_subcommand(1);
  app.footer("Flags are snake_case as in Hugging Face (--max_new_tokens); kebab-case (--max-new-tokens) works too.");
  for (const auto& e : registry()) SetupFn(e.setup)(*app.add_subcommand(e.name, e.help));
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (CLI::App* sub = find_command(app, args)) check_flags(*sub, args);
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
    app.parse(reversed);
    check_mapped_files();  // a model file truncated during the command read as zeros: say so
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const ExitStatus& e) {
    std::fflush(stdout);
    return e.code;
  } catch (const std::exception& e) {
    return report(e);
  }
  return 0;
}

}  // namespace lorafit::cli

int main(int argc, char** argv) { return lorafit::cli::run_main(argc, argv); }
