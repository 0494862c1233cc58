// lorafit: one binary, subcommands registered by the cmd_*.cpp files beside this one.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/command.h"
#include "util/error.h"
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
}  // namespace

bool register_command(const char* name, const char* help, SetupFn setup) {
  registry().push_back({name, help, setup});
  return true;
}

}  // namespace lorafit::cli

int main(int argc, char** argv) {
  using namespace lorafit;
  CLI::App app{"lorafit: LoRA fine-tuning of Hugging Face LLMs in one native binary"};
  app.set_version_flag("--version", std::string("lorafit ") + LORAFIT_VERSION);
  app.require_subcommand(1);
  for (const auto& e : cli::registry()) cli::SetupFn(e.setup)(*app.add_subcommand(e.name, e.help));
  try {
    app.parse(argc, argv);
    check_mapped_files();  // a model file truncated during the command read as zeros: say so
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const cli::ExitStatus& e) {
    std::fflush(stdout);
    return e.code;
  } catch (const Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "lorafit: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "lorafit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
