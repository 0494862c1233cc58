#include "track/dashboard.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <thread>

#include "track/eval_reader.h"
#include "track/run_reader.h"
#include "track/web_assets.h"
#include "util/error.h"
#include "util/parse.h"

namespace lorafit::track {

namespace {

const char* content_type(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".svg")) return "image/svg+xml";
  if (name.ends_with(".png")) return "image/png";
  return "application/octet-stream";
}

// Headers on every response: the page runs only our own embedded script (no inline script,
// so even a bug that put model text into HTML could not execute it), cannot be framed, and
// types are never sniffed.
void secure(httplib::Response& res) {
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                 "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
}

void send_json(httplib::Response& res, const nlohmann::json& j, int status = 200) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json; charset=utf-8");
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Host names are case-insensitive (RFC 4343): LOCALHOST is localhost.
bool is_loopback(const std::string& host) {
  const std::string h = lower(host);
  return h == "127.0.0.1" || h == "localhost" || h == "::1";
}

// Each open connection holds a worker until it sends a request or its read timeout passes. A
// pool well above a browser's six connections per host, and short idle timeouts, keep idle
// sockets (a browser's spare connections, a port scan) from queueing real requests (with
// httplib's default 8 workers and 5 s timeouts, 20 idle sockets delayed a request 9.5 s).
constexpr size_t kWorkers = 64;
constexpr time_t kReadTimeoutS = 2, kKeepAliveS = 2;

}  // namespace

struct DashboardServer::Impl {
  DashboardOptions opt;
  RunReader reader;
  httplib::Server server;
  int port = 0;
  std::thread thread;

  explicit Impl(const DashboardOptions& o) : opt(o), reader(o.runs_dir) {}

  // Resolves ?id= to a run folder found by scanning; anything else (.., absolute paths,
  // names that are not runs) gets 404, so no request reaches outside runs_dir.
  fs::path run_of(const httplib::Request& req, httplib::Response& res) {
    std::string id = req.get_param_value("id");
    fs::path p = id.empty() ? fs::path() : reader.resolve(id);
    if (p.empty()) send_json(res, {{"error", "no run with this id in the runs folder"}, {"id", id}}, 404);
    return p;
  }

  size_t max_points(const httplib::Request& req) {
    const std::optional<int64_t> n = try_parse_int(req.get_param_value("max_points"));
    return static_cast<size_t>(std::clamp<int64_t>(n.value_or(1000), 16, 20000));
  }

  void routes() {
    // httplib's default also sets SO_REUSEPORT, which lets a second dashboard bind the same
    // port silently and steal half the requests; keep only SO_REUSEADDR (quick restarts).
    server.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const char*>(&yes), sizeof yes);
    });
    server.new_task_queue = [] { return new httplib::ThreadPool(kWorkers); };
    server.set_read_timeout(kReadTimeoutS, 0);
    server.set_keep_alive_timeout(kKeepAliveS);
    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      secure(res);
      if (req.method != "GET" && req.method != "HEAD") {  // read-only
        send_json(res, {{"error", "the dashboard is read-only"}}, 405);
        return httplib::Server::HandlerResponse::Handled;
      }
      // DNS-rebinding guard: on a loopback bind, only loopback Host headers are served.
      if (is_loopback(opt.host)) {
        const std::string h = lower(req.get_header_value("Host"));
        std::string hn = h.starts_with("[") ? h.substr(0, h.find(']') + 1) : h.substr(0, h.rfind(':'));
        if (!h.empty() && hn != "127.0.0.1" && hn != "localhost" && hn != "[::1]") {
          send_json(res, {{"error", "unexpected Host header"}}, 403);
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    server.Get("/api/runs", [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, {{"runs", reader.runs_summary()}, {"root", fs::absolute(opt.runs_dir).lexically_normal().string()}});
    });
    server.Get("/api/run", [this](const httplib::Request& req, httplib::Response& res) {
      if (auto p = run_of(req, res); !p.empty()) send_json(res, reader.run_detail(p));
    });
    server.Get("/api/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      if (auto p = run_of(req, res); !p.empty()) send_json(res, reader.metrics(p, max_points(req)));
    });
    server.Get("/api/system", [this](const httplib::Request& req, httplib::Response& res) {
      if (auto p = run_of(req, res); !p.empty()) send_json(res, reader.system(p, max_points(req)));
    });
    server.Get("/api/samples", [this](const httplib::Request& req, httplib::Response& res) {
      if (auto p = run_of(req, res); !p.empty()) send_json(res, reader.samples(p));
    });
    // Evaluation results (lorafit eval --output_dir): which runs have them, and one run's.
    server.Get("/api/evals", [this](const httplib::Request&, httplib::Response& res) {
      nlohmann::json ids = nlohmann::json::array();
      for (const auto& id : reader.list_runs())
        if (!eval_dir_of(reader.resolve(id)).empty()) ids.push_back(id);
      send_json(res, {{"runs", ids}});
    });
    server.Get("/api/eval", [this](const httplib::Request& req, httplib::Response& res) {
      if (auto p = run_of(req, res); !p.empty()) send_json(res, read_eval(p));
    });
    // Static files: only the embedded ones, by exact name; nothing is read from disk.
    server.Get(R"(/.*)", [](const httplib::Request& req, httplib::Response& res) {
      std::string name = req.path == "/" ? "index.html" : req.path.substr(1);
      for (const auto& f : web_files()) {
        if (name == f.name) {
          res.set_content(reinterpret_cast<const char*>(f.data), f.size, content_type(f.name));
          return;
        }
      }
      res.status = 404;
      res.set_content("not found\n", "text/plain; charset=utf-8");
    });
    server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_json(res, {{"error", what}}, 500);
    });
  }
};

DashboardServer::DashboardServer(const DashboardOptions& options) : impl_(std::make_unique<Impl>(options)) {
  impl_->routes();
  if (options.port < 0 || options.port > 65535)
    throw Error("{} {} is not a TCP port: use 1-65535 (or 0 for any free port)", options.port_flag, options.port);
  if (options.port == 0) {
    impl_->port = impl_->server.bind_to_any_port(options.host);
    if (impl_->port <= 0)
      throw Error("cannot listen on {}: the address is not available on this machine; choose another with {}",
                  options.host, options.host_flag);
  } else {
    if (!impl_->server.bind_to_port(options.host, options.port))
      throw Error("cannot listen on {}:{}: port {} is in use (another dashboard?) or the address is not available; "
                  "stop the other program or choose a free port with {}",
                  options.host, options.port, options.port, options.port_flag);
    impl_->port = options.port;
  }
}

DashboardServer::~DashboardServer() { stop(); }

void DashboardServer::run() { impl_->server.listen_after_bind(); }

void DashboardServer::start() {
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  // listen_after_bind() sets is_running at once; wait for it so stop() cannot race ahead.
  for (int i = 0; i < 2000 && !impl_->server.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void DashboardServer::stop() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int DashboardServer::port() const { return impl_->port; }

std::string DashboardServer::url() const {
  std::string h = impl_->opt.host;
  if (h == "0.0.0.0" || h == "::") h = "127.0.0.1";  // a browser-usable address for the local user
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return fmt::format("http://{}:{}/", h, impl_->port);
}

std::unique_ptr<DashboardServer> start_dashboard_background(const DashboardOptions& options) {
  auto s = std::make_unique<DashboardServer>(options);
  s->start();
  return s;
}

}  // namespace lorafit::track
