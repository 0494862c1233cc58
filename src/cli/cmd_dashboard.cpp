// lorafit dashboard [RUNS_DIR] [--host 127.0.0.1] [--port 7860]: serves the run dashboard
// (runs table, charts, config diff, before/after samples, environment) from the binary.
// Read-only; binds loopback unless --host says otherwise.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "track/dashboard.h"

namespace lorafit::cli {

namespace {

void setup(CLI::App& sub) {
  auto opt = std::make_shared<track::DashboardOptions>();
  auto runs = std::make_shared<std::string>("runs");
  sub.add_option("runs_dir", *runs, "folder of run folders (or one run folder)")->capture_default_str();
  sub.add_option("--host", opt->host,
                 "address to bind; 127.0.0.1 keeps it on this machine (0.0.0.0 exposes it to the network)")
      ->capture_default_str();
  sub.add_option("--port", opt->port, "TCP port (0 = any free port)")->capture_default_str();
  sub.callback([opt, runs] {
    opt->runs_dir = *runs;
    track::DashboardServer server(*opt);
    std::printf("lorafit dashboard: serving %s at %s (Ctrl-C to stop)\n", opt->runs_dir.string().c_str(),
                server.url().c_str());
    if (opt->host != "127.0.0.1" && opt->host != "localhost" && opt->host != "::1")
      std::printf("note: bound to %s, so other machines can read these runs\n", opt->host.c_str());
    std::fflush(stdout);
    server.run();
  });
}

const bool registered = register_command("dashboard", "serve the web dashboard of training runs", setup);

}  // namespace

}  // namespace lorafit::cli
