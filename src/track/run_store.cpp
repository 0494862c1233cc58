#include "formats/json_util.h"
#include "track/run_store.h"

#include <cmath>
#include <cstdio>
#include <mutex>
#include <vector>

#include "track/nvml.h"
#include "track/system_monitor.h"
#include "track/tensorboard.h"
#include "util/error.h"
#include "util/file.h"
#include "util/sysinfo.h"

namespace lorafit::track {

const char* to_string(RunStatus s) {
  switch (s) {
    case RunStatus::running: return "running";
    case RunStatus::finished: return "finished";
    case RunStatus::failed: return "failed";
    case RunStatus::interrupted: return "interrupted";
  }
  return "unknown";
}

struct RunStore::Impl {
  std::mutex mu;
  std::FILE* metrics = nullptr;  // metrics.jsonl, append
  std::FILE* samples = nullptr;  // samples.jsonl, append
  nlohmann::json status;         // status.json contents
  std::unique_ptr<TensorBoardWriter> tb;
  std::unique_ptr<SystemMonitor> monitor;

  ~Impl() {
    monitor.reset();
    if (metrics) std::fclose(metrics);
    if (samples) std::fclose(samples);
  }
};

namespace {

std::FILE* open_jsonl(const fs::path& p, bool append) {
  std::FILE* f = std::fopen(p.c_str(), append ? "ab" : "wb");
  if (!f) throw Error("cannot open {} for writing: check the run folder is writable and the disk not full", p.string());
  return f;
}

// One line, written with one fwrite and flushed: a reader sees whole lines, or at worst a
// truncated last one if the process dies inside fwrite.
void append_line(std::FILE* f, const nlohmann::json& j, const fs::path& name) {
  // dump() with replace: invalid UTF-8 in a model answer must not abort the run.
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  if (std::fwrite(line.data(), 1, line.size(), f) != line.size() || std::fflush(f) != 0)
    throw Error("cannot append to {}: disk full or the file was removed", name.string());
}

// Keeps the complete rows of a .jsonl file whose "step" is at most `last_step` (rewritten
// atomically, so a kill during the rewrite leaves the old file).
void drop_rows_after(const fs::path& p, int64_t last_step) {
  if (!fs::exists(p)) return;
  const std::string text = read_file(p);
  std::string kept;
  size_t dropped = 0;
  for (size_t at = 0; at < text.size();) {
    const size_t nl = text.find('\n', at);
    if (nl == std::string::npos) {  // a last line without '\n' was cut by a kill
      ++dropped;
      break;
    }
    const std::string_view line(text.data() + at, nl - at);
    at = nl + 1;
    nlohmann::json row;
    try {
      row = parse_json(line, p.string());
    } catch (const std::exception&) {  // a damaged row is dropped like a cut one
    }
    if (row.is_object() && row.contains("step") && row["step"].is_number() && row["step"].get<double>() <= static_cast<double>(last_step))
      kept.append(line).push_back('\n');
    else
      ++dropped;
  }
  if (dropped) write_file_atomic(p, kept);
}

}  // namespace

RunStore::RunStore() : impl_(std::make_unique<Impl>()) {}
RunStore::~RunStore() = default;

std::unique_ptr<RunStore> RunStore::create(const fs::path& dir, std::string_view resolved_config_yaml,
                                           const nlohmann::json& config_json, const nlohmann::json& env,
                                           const RunStoreOptions& options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error("cannot create the run folder {}: {} (choose another output_dir)", dir.string(), ec.message());
  std::unique_ptr<RunStore> s(new RunStore());
  s->dir_ = dir;
  write_file_atomic(dir / "config.yaml", resolved_config_yaml);
  write_file_atomic(dir / "config.json", config_json.dump(2) + "\n");
  write_file_atomic(dir / "env.json", env.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  auto& im = *s->impl_;
  if (options.resume && options.resume_step >= 0)
    for (const char* f : {"metrics.jsonl", "samples.jsonl"}) drop_rows_after(dir / f, options.resume_step);
  im.metrics = open_jsonl(dir / "metrics.jsonl", options.resume);
  im.samples = open_jsonl(dir / "samples.jsonl", options.resume);
  if (!options.resume) {
    std::fclose(open_jsonl(dir / "system.jsonl", false));  // truncate
    // Event files of an earlier run in this folder would be merged into this one by TensorBoard.
    std::vector<fs::path> old;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().filename().string().starts_with("events.out.tfevents.")) old.push_back(e.path());
    for (const auto& p : old) fs::remove(p, ec);
  }
  double now = sys::unix_time();
  im.status = {{"status", "running"}, {"start_time", now}, {"update_time", now}, {"pid", sys::process_id()},
               {"host", sys::hostname()}};
  if (options.resume) {  // keep the original start time so durations span the whole run
    try {
      auto old = parse_json(read_file(dir / "status.json"), (dir / "status.json").string());
      if (old.contains("start_time")) im.status["start_time"] = old["start_time"];
      im.status["resumed_time"] = now;
    } catch (const std::exception&) {
      // no readable previous status: this is the start
    }
  }
  s->write_status_locked();
  if (options.tensorboard) im.tb = std::make_unique<TensorBoardWriter>(dir);
  if (options.system_period_s > 0) im.monitor = std::make_unique<SystemMonitor>(dir / "system.jsonl", options.system_period_s);
  return s;
}

void RunStore::write_status_locked() {
  impl_->status["update_time"] = sys::unix_time();
  write_file_atomic(dir_ / "status.json", impl_->status.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void RunStore::log_metrics(int64_t step, const nlohmann::json& values) {
  LF_CHECK(values.is_object(), "log_metrics wants a JSON object, got {}", values.dump());
  double now = sys::unix_time();
  nlohmann::json row = {{"step", step}, {"time", now}};
  for (const auto& [k, v] : values.items()) row[k] = v;
  std::lock_guard lock(impl_->mu);
  append_line(impl_->metrics, row, dir_ / "metrics.jsonl");
  if (impl_->tb) {
    for (const auto& [k, v] : values.items())
      if (v.is_number()) impl_->tb->add_scalar("train/" + k, step, v.get<double>(), now);
    impl_->tb->flush();
  }
}

void RunStore::log_eval(int64_t step, const nlohmann::json& values) {
  LF_CHECK(values.is_object(), "log_eval wants a JSON object, got {}", values.dump());
  double now = sys::unix_time();
  nlohmann::json row = {{"step", step}, {"time", now}};
  nlohmann::json named = nlohmann::json::object();
  for (const auto& [k, v] : values.items()) named[k.rfind("eval_", 0) == 0 ? k : "eval_" + k] = v;
  for (const auto& [k, v] : named.items()) row[k] = v;
  std::lock_guard lock(impl_->mu);
  append_line(impl_->metrics, row, dir_ / "metrics.jsonl");
  if (impl_->tb) {
    for (const auto& [k, v] : named.items())
      if (v.is_number()) impl_->tb->add_scalar("eval/" + k.substr(5), step, v.get<double>(), now);
    impl_->tb->flush();
  }
}

void RunStore::log_sample(int64_t step, double epoch, std::string_view tag, int prompt_index,
                          std::string_view prompt, std::string_view answer, std::string_view ground_truth) {
  nlohmann::json row = {{"step", step},
                        {"epoch", epoch},
                        {"tag", std::string(tag)},
                        {"index", prompt_index},
                        {"prompt", std::string(prompt)},
                        {"answer", std::string(answer)},
                        {"ground_truth", std::string(ground_truth)},
                        {"time", sys::unix_time()}};
  std::lock_guard lock(impl_->mu);
  append_line(impl_->samples, row, dir_ / "samples.jsonl");
}

void RunStore::set_status(RunStatus status, std::string_view error) {
  std::lock_guard lock(impl_->mu);
  impl_->status["status"] = to_string(status);
  if (!error.empty()) impl_->status["error"] = std::string(error);
  if (status != RunStatus::running) impl_->status["end_time"] = sys::unix_time();
  std::fflush(impl_->metrics);
  std::fflush(impl_->samples);
  if (impl_->tb) impl_->tb->flush();
  write_status_locked();
}

void RunStore::update_status_fields(const nlohmann::json& fields) {
  LF_CHECK(fields.is_object(), "update_status_fields wants a JSON object");
  std::lock_guard lock(impl_->mu);
  for (const auto& [k, v] : fields.items())
    if (k != "status") impl_->status[k] = v;
  write_status_locked();
}

nlohmann::json collect_environment(std::string_view lorafit_version) {
  nlohmann::json env;
  env["command_line"] = sys::process_command_line();
  std::error_code ec;
  env["cwd"] = fs::current_path(ec).string();
  env["hostname"] = sys::hostname();
  env["os"] = sys::os_description();
  env["cpu"] = {{"model", sys::cpu_model()}, {"cores", sys::cpu_count()}};
  env["memory_total_bytes"] = sys::host_memory().total_bytes;
  auto gpus = nlohmann::json::array();
  auto& nvml = Nvml::instance();
  for (const auto& g : nvml.read()) gpus.push_back({{"index", g.index}, {"name", g.name}, {"memory_total_bytes", g.mem_total_bytes}});
  env["gpus"] = gpus;
  if (nvml.available()) env["nvidia_driver"] = nvml.driver_version();
  env["lorafit_version"] = std::string(lorafit_version);
  env["compiler"] = "GCC " __VERSION__;
  env["start_time"] = sys::unix_time();
  return env;
}

}  // namespace lorafit::track
