// The dashboard's JSON API over the fixture runs folder (tests/fixtures/run/runs), served
// for real on a loopback port: runs, metrics, samples and system series; refusals of
// path traversal and writes; a truncated metrics line and missing files; port in use.
#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "track/dashboard.h"
#include "track/run_reader.h"
#include "util/error.h"
#include "util/file.h"

using namespace lorafit::track;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const fs::path kRuns = fs::path(LORAFIT_FIXTURES) / "run" / "runs";

fs::path copy_runs(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lorafit_dash_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::copy(kRuns, d, fs::copy_options::recursive);
  return d;
}

class Dashboard : public ::testing::Test {
 protected:
  void SetUp() override {
    server = std::make_unique<DashboardServer>(DashboardOptions{kRuns, "127.0.0.1", 0});
    server->start();
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
  }
  json get(const std::string& path, int expect_status = 200) {
    auto r = client->Get(path.c_str());
    EXPECT_TRUE(r) << path;
    if (!r) return nullptr;
    EXPECT_EQ(r->status, expect_status) << path << " → " << r->body;
    return json::parse(r->body, nullptr, false);
  }
  std::unique_ptr<DashboardServer> server;
  std::unique_ptr<httplib::Client> client;
};

std::vector<json> fixture_rows(const std::string& run, const std::string& file) {
  std::vector<json> rows;
  std::ifstream f(kRuns / run / file);
  std::string line;
  while (std::getline(f, line)) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) rows.push_back(j);
  }
  return rows;
}

}  // namespace

TEST_F(Dashboard, RunsTable) {
  auto j = get("/api/runs");
  ASSERT_EQ(j["runs"].size(), 3u);
  std::map<std::string, json> by_id;
  for (auto& r : j["runs"]) by_id[r["id"]] = r;
  ASSERT_TRUE(by_id.count("lr1e-4") && by_id.count("lr2e-4") && by_id.count("killed"));
  auto& ok = by_id["lr1e-4"];
  EXPECT_EQ(ok["status"], "finished");
  EXPECT_EQ(ok["model"], "tests/data/stories260K");
  EXPECT_EQ(ok["hyperparameters"]["learning_rate"], 1e-4);
  EXPECT_EQ(ok["hyperparameters"]["lora_r"], 8);
  EXPECT_EQ(ok["last_step"], 60);
  EXPECT_DOUBLE_EQ(ok["duration_s"].get<double>(), 160.0);  // end_time - start_time
  // final loss = the last "loss" value in the file: row 64 is step 60 (5 eval rows before
  // it); row 65, the last, is an eval row without "loss".
  auto rows = fixture_rows("lr1e-4", "metrics.jsonl");
  ASSERT_EQ(rows.size(), 66u);
  EXPECT_EQ(rows[64]["step"], 60);
  EXPECT_EQ(ok["final_loss"], rows[64]["loss"]);
  EXPECT_EQ(by_id["lr2e-4"]["status"], "failed");
  EXPECT_EQ(by_id["lr2e-4"]["error"], "loss became NaN at step 25: lower learning_rate");
  EXPECT_EQ(by_id["killed"]["last_step"], 12);
}

TEST_F(Dashboard, MetricsSeries) {
  auto j = get("/api/metrics?id=lr1e-4");
  auto rows = fixture_rows("lr1e-4", "metrics.jsonl");
  EXPECT_EQ(j["rows"], rows.size());
  auto& loss = j["series"]["loss"];
  ASSERT_EQ(loss["y"].size(), 60u);
  std::vector<json> train;
  for (auto& r : rows)
    if (r.contains("loss")) train.push_back(r);
  for (size_t i = 0; i < 60; ++i) {
    EXPECT_EQ(loss["x"][i], train[i]["step"]);
    EXPECT_EQ(loss["y"][i], train[i]["loss"]);
    EXPECT_EQ(loss["t"][i], train[i]["time"]);
  }
  ASSERT_EQ(j["series"]["eval_loss"]["y"].size(), 6u);
  EXPECT_EQ(j["series"]["eval_loss"]["x"][0], 10);
  for (const char* k : {"grad_norm", "learning_rate", "tokens_per_s", "epoch"}) EXPECT_TRUE(j["series"].contains(k)) << k;
  EXPECT_TRUE(j["warnings"].empty());
}

TEST_F(Dashboard, SystemSeries) {
  auto j = get("/api/system?id=lr1e-4");
  EXPECT_EQ(j["rows"], 33);
  ASSERT_EQ(j["series"]["gpu0_util_percent"]["y"].size(), 33u);
  EXPECT_EQ(j["series"]["gpu0_util_percent"]["y"][1], 91);
  EXPECT_EQ(j["series"]["rss_bytes"]["y"][2], 2020000000);
  EXPECT_EQ(j["series"]["gpu0_power_w"]["y"][0], 380.5);
}

TEST_F(Dashboard, SamplesVerbatim) {
  auto j = get("/api/samples?id=lr1e-4");
  ASSERT_EQ(j["samples"].size(), 9u);
  auto rows = fixture_rows("lr1e-4", "samples.jsonl");
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(j["samples"][i], rows[i]);
  // Markup comes back as data, byte for byte; the page sets it with textContent (the browser
  // test checks the rendering) and the CSP header forbids inline script.
  EXPECT_EQ(j["samples"][2]["answer"], "<script>alert('xss')</script><img src=x onerror=alert(2)>");
  auto r = client->Get("/");
  ASSERT_TRUE(r);
  EXPECT_NE(r->get_header_value("Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_NE(r->body.find("<title>lorafit dashboard</title>"), std::string::npos);
}

TEST_F(Dashboard, RefusesPathsOutsideRuns) {
  for (const char* p : {"/api/metrics?id=../../../../etc", "/api/metrics?id=%2e%2e%2f%2e%2e%2fetc",
                        "/api/run?id=/etc", "/api/samples?id=lr1e-4/../../run", "/api/system?id=", "/api/run"}) {
    auto j = get(p, 404);
    EXPECT_TRUE(j.contains("error")) << p;
  }
  for (const char* p : {"/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/app.js/../../etc/passwd",
                        "/config.json", "/lr1e-4/metrics.jsonl", "/web/index.html"}) {
    auto r = client->Get(p);
    ASSERT_TRUE(r) << p;
    EXPECT_TRUE(r->status == 404 || r->status == 400) << p << " " << r->status;
    EXPECT_EQ(r->body.find("root:"), std::string::npos) << p;
    EXPECT_EQ(r->body.find("learning_rate"), std::string::npos) << p;
  }
  // Read-only: no method but GET/HEAD.
  auto r = client->Post("/api/runs", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  // DNS-rebinding guard on a loopback bind.
  r = client->Get("/api/runs", {{"Host", "evil.example:7860"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
}

TEST_F(Dashboard, KilledRunShowsWhatExists) {
  auto m = get("/api/metrics?id=killed");
  EXPECT_EQ(m["series"]["loss"]["y"].size(), 12u);  // the 13th line is cut off
  ASSERT_FALSE(m["warnings"].empty());
  EXPECT_NE(m["warnings"][0].get<std::string>().find("metrics.jsonl: the last line is incomplete"), std::string::npos);
  auto s = get("/api/samples?id=killed");
  EXPECT_TRUE(s["samples"].empty());
  EXPECT_EQ(s["warnings"][0], "samples.jsonl is missing: no answers were recorded");
  auto sys = get("/api/system?id=killed");
  EXPECT_EQ(sys["warnings"][0], "system.jsonl is missing: no hardware readings");
  auto d = get("/api/run?id=killed");
  EXPECT_EQ(d["config"]["learning_rate"], 1e-4);  // from config.yaml when config.json is missing
  EXPECT_EQ(d["config"]["lora_r"], 8);
  EXPECT_EQ(d["config"]["system"], "你是一个法律专家，请根据用户的问题给出专业的回答");
  bool env_warned = false;
  for (auto& w : d["warnings"]) env_warned |= w.get<std::string>().find("env.json is missing") != std::string::npos;
  EXPECT_TRUE(env_warned) << d["warnings"].dump();
}

TEST_F(Dashboard, PortInUse) {
  try {
    DashboardServer second(DashboardOptions{kRuns, "127.0.0.1", server->port()});
    FAIL() << "expected an error";
  } catch (const lorafit::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("port " + std::to_string(server->port()) + " is in use"), std::string::npos) << msg;
  }
}

// Host names are case-insensitive: LOCALHOST passes the DNS-rebinding guard, EVIL does not.
TEST_F(Dashboard, HostCheckIgnoresCase) {
  for (const char* h : {"LOCALHOST:7860", "LocalHost", "127.0.0.1:80"}) {
    auto r = client->Get("/api/runs", {{"Host", h}});
    ASSERT_TRUE(r) << h;
    EXPECT_EQ(r->status, 200) << h;
  }
  auto r = client->Get("/api/runs", {{"Host", "EVIL.example"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
}

// Idle connections (open, never a request) must not queue a real request behind them: with
// httplib's defaults (8 workers, 5 s read timeout) 20 of them delayed one by 9.5 s. The bound
// is a quarter of one old read timeout, far above a loopback GET even on a loaded machine.
TEST_F(Dashboard, IdleConnectionsDoNotStarve) {
  std::vector<int> idle;
  for (int i = 0; i < 40; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(server->port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    idle.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the server has accepted them
  const auto t0 = std::chrono::steady_clock::now();
  auto r = client->Get("/api/runs");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int fd : idle) ::close(fd);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(s, 1.25) << "a request waited behind idle connections";
}

// `train --dashboard` names its own flag when the port is taken.
TEST_F(Dashboard, PortInUseNamesTheFlag) {
  DashboardOptions o{kRuns, "127.0.0.1", server->port()};
  o.port_flag = "--dashboard_port";
  try {
    DashboardServer second(o);
    FAIL() << "expected an error";
  } catch (const lorafit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("choose a free port with --dashboard_port"), std::string::npos) << e.what();
  }
}

// A symlink inside a run folder that leads out of it is not followed: its data never reaches
// the API (the file counts as missing).
TEST(TrackRunReader, SymlinkOutOfRunNotFollowed) {
  const fs::path d = copy_runs("symlink");
  const fs::path secret = d.parent_path() / ("lorafit_secret_" + std::to_string(::getpid()) + ".jsonl");
  {
    std::ofstream(secret) << "{\"step\": 1, \"prompt\": \"SECRET\", \"loss\": 98765.4321, \"secret\": 1}\n";
  }
  for (const char* f : {"samples.jsonl", "env.json", "metrics.jsonl"}) {
    fs::remove(d / "lr1e-4" / f);
    fs::create_symlink(secret, d / "lr1e-4" / f);
  }
  RunReader reader(d);
  const std::string all = reader.samples(d / "lr1e-4").dump() + reader.run_detail(d / "lr1e-4").dump() +
                          reader.metrics(d / "lr1e-4", 100).dump() + reader.runs_summary().dump();
  EXPECT_EQ(all.find("SECRET"), std::string::npos) << all;
  EXPECT_EQ(all.find("98765"), std::string::npos);
  EXPECT_NE(all.find("samples.jsonl is missing"), std::string::npos);
  // A link that stays inside the run folder is read as before.
  fs::rename(secret, d / "lr1e-4" / "real.jsonl");
  fs::remove(d / "lr1e-4" / "samples.jsonl");
  fs::create_symlink("real.jsonl", d / "lr1e-4" / "samples.jsonl");
  EXPECT_NE(reader.samples(d / "lr1e-4").dump().find("SECRET"), std::string::npos);
  fs::remove_all(d);
}

TEST(TrackRunReader, MissingRunsFolder) {
  try {
    RunReader r("/nonexistent/runs");
    FAIL();
  } catch (const lorafit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/runs"), std::string::npos);
  }
}

TEST(TrackRunReader, LiveRunIncremental) {
  auto dir = copy_runs("live");
  RunReader reader(dir);
  auto run = reader.resolve("lr2e-4");
  ASSERT_FALSE(run.empty());
  EXPECT_EQ(reader.metrics(run, 1000)["series"]["loss"]["y"].size(), 24u);
  {
    std::ofstream f(run / "metrics.jsonl", std::ios::app);
    f << R"({"step": 25, "time": 1.0, "loss": 0.5})" << "\n" << R"({"step": 26, "ti)";
  }
  auto m = reader.metrics(run, 1000);
  EXPECT_EQ(m["series"]["loss"]["y"].size(), 25u);
  EXPECT_EQ(m["series"]["loss"]["y"][24], 0.5);
  EXPECT_EQ(m["warnings"].size(), 1u);
  {
    std::ofstream f(run / "metrics.jsonl", std::ios::app);
    f << R"(me": 2.0, "loss": 0.25})" << "\n" << "not json\n";
  }
  m = reader.metrics(run, 1000);
  EXPECT_EQ(m["series"]["loss"]["y"].size(), 26u);
  EXPECT_EQ(m["series"]["loss"]["y"][25], 0.25);
  ASSERT_EQ(m["warnings"].size(), 1u);
  // 24 train + 2 eval rows in the fixture, then steps 25 and 26, then the bad line
  EXPECT_EQ(m["warnings"][0], "metrics.jsonl line 29: not a JSON object, skipped");
  fs::remove_all(dir);
}

TEST(TrackRunReader, MalformedFilesCostOnlyTheirRow) {
  auto dir = copy_runs("malformed");
  lorafit::write_file_atomic(dir / "lr1e-4" / "status.json", R"({"status": "finished", "start_time": 5, "end_time": "later"})");
  lorafit::write_file_atomic(dir / "lr2e-4" / "status.json", "[1, 2");
  lorafit::write_file_atomic(dir / "lr2e-4" / "config.json", "\xff\xfe");
  RunReader reader(dir);
  auto runs = reader.runs_summary();
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[1]["id"], "lr1e-4");
  EXPECT_EQ(runs[1]["status"], "unknown");
  EXPECT_NE(runs[1]["warnings"][0].get<std::string>().find("cannot be summarised"), std::string::npos);
  EXPECT_EQ(runs[2]["status"], "unknown");
  // the parser quotes the bad byte; the server dumps with invalid UTF-8 replaced, as here
  std::string w = runs[2]["warnings"].dump(-1, ' ', false, json::error_handler_t::replace);
  EXPECT_NE(w.find("status.json: cannot be read as JSON"), std::string::npos) << w;
  EXPECT_NE(w.find("config.json: cannot be read as JSON"), std::string::npos) << w;
  EXPECT_EQ(runs[2]["last_step"], 24);  // metrics still shown
  fs::remove_all(dir);
}

TEST(TrackRunReader, SingleRunFolderAsRoot) {
  RunReader reader(kRuns / "lr1e-4");
  auto ids = reader.list_runs();
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0], "lr1e-4");
  EXPECT_EQ(reader.resolve("lr1e-4"), kRuns / "lr1e-4");
}

TEST(TrackRunReader, DownsampleKeepsExtremesAndLast) {
  size_t n = 100000;
  std::vector<double> x(n), y(n);
  for (size_t i = 0; i < n; ++i) {
    x[i] = static_cast<double>(i + 1);
    y[i] = std::sin(static_cast<double>(i) / 1000.0);
  }
  y[31337] = 50;   // a spike
  y[77777] = -50;  // a dip
  y[500] = NAN;    // a missing value
  auto s = downsample_series(x, x, y, 1000);
  EXPECT_LE(s["y"].size(), 1000u);
  EXPECT_EQ(s["total"], n - 1);
  bool spike = false, dip = false;
  for (size_t i = 0; i < s["y"].size(); ++i) {
    spike |= s["y"][i] == 50.0 && s["x"][i] == 31338.0;
    dip |= s["y"][i] == -50.0 && s["x"][i] == 77778.0;
    if (i > 0) {
      EXPECT_LT(s["x"][i - 1].get<double>(), s["x"][i].get<double>());
    }
  }
  EXPECT_TRUE(spike);
  EXPECT_TRUE(dip);
  EXPECT_EQ(s["x"].back(), static_cast<double>(n));
}
