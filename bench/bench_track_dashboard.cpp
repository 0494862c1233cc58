// Dashboard responsiveness for a long run: a 100,000-step run folder (metrics every step,
// eval every 100, 5,000 system rows, 15 samples, TensorBoard events) is written once with
// RunStore, then the API is timed: the first (cold) parse of metrics.jsonl, warm requests
// (incremental cache + server-side downsampling to 1,000 points per series) through the
// reader and over HTTP, the runs table and the page. Results: docs/performance.md.
//   LORAFIT_BENCH_RUN_DIR=/path keeps the generated run folder there (tools/check_tensorboard.py
//   reads its event file); otherwise a temporary folder is used and removed.
#include <benchmark/benchmark.h>
#include <httplib.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "track/dashboard.h"
#include "track/run_reader.h"
#include "track/run_store.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
constexpr int kSteps = 100000;

struct Fixture {
  fs::path runs, run;
  bool keep = false;
  Fixture() {
    const char* keep_dir = std::getenv("LORAFIT_BENCH_RUN_DIR");
    keep = keep_dir != nullptr;
    runs = keep ? fs::path(keep_dir) : fs::temp_directory_path() / "lorafit_bench_dashboard";
    run = runs / "long-run";
    fs::remove_all(run);
    lorafit::track::RunStoreOptions o;
    o.tensorboard = true;
    o.system_period_s = 0;  // system rows written below, as if 5 s apart
    auto store = lorafit::track::RunStore::create(run, "learning_rate: 0.0001\n", json{{"learning_rate", 1e-4}},
                                                  lorafit::track::collect_environment("bench"), o);
    for (int s = 1; s <= kSteps; ++s) {
      double loss = 2.5 * std::exp(-s / 20000.0) + 0.8 + 0.05 * std::sin(s * 0.37);
      store->log_metrics(s, {{"loss", loss}, {"grad_norm", 0.5 + 0.1 * std::cos(s * 0.11)},
                             {"learning_rate", 1e-4 * (1.0 - s / double(kSteps))}, {"epoch", s / double(kSteps)},
                             {"tokens_per_s", 5000 + 100 * std::sin(s * 0.01)}, {"samples_per_s", 13.1}});
      if (s % 100 == 0) store->log_eval(s, {{"loss", loss + 0.1}});
    }
    for (int i = 0; i < 15; ++i) store->log_sample(i / 5 * 50000, i / 5, i < 5 ? "before" : "epoch 1", i % 5, "prompt", "answer", "truth");
    store->set_status(lorafit::track::RunStatus::finished);
    store.reset();
    std::ofstream sys(run / "system.jsonl");
    for (int i = 0; i < 5000; ++i)
      sys << json{{"time", 1.7e9 + 5 * i}, {"cpu_percent", 50}, {"rss_bytes", 2e9},
                  {"gpus", json::array({{{"index", 0}, {"util_percent", 97}, {"mem_used_bytes", 2e10}, {"power_w", 400}}})}}.dump()
          << "\n";
  }
  ~Fixture() {
    if (!keep) fs::remove_all(runs);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void BM_LogMetrics(benchmark::State& state) {  // one log_metrics call: format + append + fflush
  auto dir = fs::temp_directory_path() / "lorafit_bench_log";
  lorafit::track::RunStoreOptions o;
  o.system_period_s = 0;
  auto store = lorafit::track::RunStore::create(dir, "", json::object(), json::object(), o);
  int64_t s = 0;
  json values = {{"loss", 1.234}, {"grad_norm", 0.5}, {"learning_rate", 1e-4}, {"epoch", 0.5}, {"tokens_per_s", 5000.0}};
  for (auto _ : state) store->log_metrics(++s, values);
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_LogMetrics);

void BM_MetricsCold(benchmark::State& state) {  // a fresh reader: parse all 100,000 lines
  auto& f = fixture();
  for (auto _ : state) {
    lorafit::track::RunReader reader(f.runs);
    benchmark::DoNotOptimize(reader.metrics(f.run, 1000).dump());
  }
}
BENCHMARK(BM_MetricsCold)->Unit(benchmark::kMillisecond);

void BM_MetricsWarm(benchmark::State& state) {  // cached: downsample + JSON of the series
  auto& f = fixture();
  lorafit::track::RunReader reader(f.runs);
  reader.metrics(f.run, 1000);
  for (auto _ : state) benchmark::DoNotOptimize(reader.metrics(f.run, 1000).dump());
}
BENCHMARK(BM_MetricsWarm)->Unit(benchmark::kMillisecond);

struct Served {
  std::unique_ptr<lorafit::track::DashboardServer> server;
  std::unique_ptr<httplib::Client> client;
  Served() {
    lorafit::track::DashboardOptions options;
    options.runs_dir = fixture().runs;
    options.port = 0;  // any free port
    server = lorafit::track::start_dashboard_background(options);
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
    client->Get("/api/metrics?id=long-run");  // warm the cache, as the page's first load does
    client->Get("/api/system?id=long-run");
  }
};
Served& served() {
  static Served s;
  return s;
}

void BM_Http(benchmark::State& state, const char* path) {
  auto& s = served();
  size_t bytes = 0;
  for (auto _ : state) {
    auto r = s.client->Get(path);
    if (!r || r->status != 200) state.SkipWithError("request failed");
    else bytes = r->body.size();
  }
  state.counters["response_bytes"] = static_cast<double>(bytes);
}
BENCHMARK_CAPTURE(BM_Http, metrics, "/api/metrics?id=long-run&max_points=1200")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Http, system, "/api/system?id=long-run&max_points=600")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Http, samples, "/api/samples?id=long-run")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Http, runs, "/api/runs")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Http, page, "/")->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
