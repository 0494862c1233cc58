#include "track/dashboard.h"

#include <httplib.h>

#include <algorithm>
#include <thread>

#include "net/http_server.h"
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

// Each open connection holds a worker until it sends a request or its read timeout passes. A
// pool well above a browser's six connections per host, and short idle timeouts, keep idle
// sockets (a browser's spare connections, a port scan) from queueing real requests (with
// httplib's default 8 workers and 5 s timeouts, 20 idle sockets delayed a request 9.5 s).
constexpr net::HttpLimits kLimits{64, 2, 5, 2};

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
    net::configure(server, kLimits);
    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      secure(res);
      if (req.method != "GET" && req.method != "HEAD") {  // read-only
        send_json(res, {{"error", "the dashboard is read-only"}}, 405);
        return httplib::Server::HandlerResponse::Handled;
      }
      // DNS-rebinding guard: on a loopback bind, only loopback Host headers are served.
      if (!net::host_allowed(opt.host, req.get_header_value("Host"))) {
        send_json(res, {{"error", "unexpected Host header"}}, 403);
        return httplib::Server::HandlerResponse::Handled;
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
  impl_->port = net::bind(impl_->server, options.host, options.port, options.port_flag, options.host_flag);
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

std::string DashboardServer::url() const { return net::url(impl_->opt.host, impl_->port); }

std::unique_ptr<DashboardServer> start_dashboard_background(const DashboardOptions& options) {
  auto s = std::make_unique<DashboardServer>(options);
  s->start();
  return s;
}

}  // namespace lorafit::track
