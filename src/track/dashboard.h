// The dashboard server (`lorafit dashboard`, `lorafit train --dashboard`): a read-only web
// page and JSON API over a runs folder, all assets embedded in the binary.
// Safe by default: binds 127.0.0.1, serves only GET, never a path outside the runs folder,
// and the page renders prompts/answers as text (textContent), never HTML.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

namespace lorafit::track {

namespace fs = std::filesystem;

struct DashboardOptions {
  fs::path runs_dir = "runs";  // a folder of run folders, or one run folder itself
  std::string host = "127.0.0.1";
  int port = 7860;             // 0 = any free port (tests)
  // The flags that set host and port, named in messages (`train --dashboard` has its own).
  std::string port_flag = "--port", host_flag = "--host";
};

class DashboardServer {
 public:
  // Binds the socket now: throws lorafit::Error "port 7860 on 127.0.0.1 is in use ..." when
  // it cannot bind, or when runs_dir is not a folder. Serving starts with run()/start().
  explicit DashboardServer(const DashboardOptions& options);
  ~DashboardServer();  // stops and joins the background thread, if any
  DashboardServer(const DashboardServer&) = delete;
  DashboardServer& operator=(const DashboardServer&) = delete;

  void run();    // serve on this thread until stop()
  void start();  // serve on a background thread
  void stop();
  int port() const;         // the bound port (useful with port 0)
  std::string url() const;  // "http://127.0.0.1:7860/"

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// For `lorafit train --dashboard`: binds and serves `runs_dir` on a background thread; keep
// the returned handle alive for the length of training (destroying it stops the server).
// The caller prints server->url(). Throws lorafit::Error when the port is in use.
std::unique_ptr<DashboardServer> start_dashboard_background(const DashboardOptions& options);

}  // namespace lorafit::track
