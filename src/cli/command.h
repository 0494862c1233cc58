// Subcommands register themselves: each src/cli/cmd_<name>.cpp defines
//   static const bool registered = register_command("name", "help", setup);
// where setup adds the options to the CLI11 subcommand and sets its callback.
// Callbacks throw lorafit::Error for bad input; only main() turns that into an exit code.
#pragma once
#include <CLI/CLI.hpp>

namespace lorafit::cli {

using SetupFn = void (*)(CLI::App& sub);

// Thrown by a callback that ends without an error message but with a non-zero exit status
// (an interrupted training run: 128 + signal, as a shell reports a signal).
struct ExitStatus {
  int code = 0;
};
bool register_command(const char* name, const char* help, SetupFn setup);

}  // namespace lorafit::cli
