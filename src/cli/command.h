// Subcommands register themselves: each src/cli/cmd_<name>.cpp defines
//   static const bool registered = register_command("name", "help", setup);
// where setup adds the options to the CLI11 subcommand and sets its callback.
// Callbacks throw lorafit::Error for bad input; only main() turns that into an exit code.
#pragma once
#include <CLI/CLI.hpp>

namespace lorafit::cli {

using SetupFn = void (*)(CLI::App& sub);
bool register_command(const char* name, const char* help, SetupFn setup);

}  // namespace lorafit::cli
