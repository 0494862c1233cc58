// The run folder (docs/DESIGN.md §7): what a training run leaves behind for the dashboard,
// TensorBoard and people reading files by hand.
//
//   <dir>/config.yaml      resolved settings, as given by the trainer (written once, atomic)
//   <dir>/config.json      the same settings as JSON (the dashboard diffs these)
//   <dir>/env.json         environment: CPU, GPU, versions, command line, host (atomic)
//   <dir>/status.json      {"status": "running"|"finished"|"failed"|"interrupted", "error", times,
//                          pid} (atomic)
//   <dir>/metrics.jsonl    one JSON object per log_metrics/log_eval call, flushed at once
//   <dir>/samples.jsonl    one JSON object per generated answer (before/after training)
//   <dir>/system.jsonl     SystemMonitor rows every few seconds (CPU, RSS, memory, disk, GPU)
//   <dir>/events.out.tfevents.*  TensorBoard scalars when options.tensorboard is set
//
// Every line written to a .jsonl file is one complete object followed by '\n' and flushed
// (fflush) before the call returns, so a reader (the dashboard) sees every logged step and at
// worst one truncated last line if the process is killed mid-write.
//
// Thread safety: all methods may be called from any thread (one mutex per store).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace lorafit::track {

namespace fs = std::filesystem;

enum class RunStatus { running, finished, failed, interrupted };
const char* to_string(RunStatus s);

struct RunStoreOptions {
  bool resume = false;         // true: keep and append to existing *.jsonl (resume from a
                               // checkpoint); false: a fresh run (existing .jsonl truncated)
  int64_t resume_step = -1;    // with resume: rows of metrics/samples.jsonl whose step is past
                               // the checkpoint resumed from are dropped (the resumed run logs
                               // them again), and so is a truncated last line; −1 keeps all
  bool tensorboard = false;    // report_to: tensorboard → also write a TFRecord event file
  double system_period_s = 5;  // SystemMonitor period; <= 0 disables the monitor
};

class RunStore {
 public:
  // Creates `dir` (and parents), writes config.yaml, config.json, env.json and status.json
  // {"status":"running"}, opens the .jsonl files and starts the SystemMonitor thread.
  // `env` is usually collect_environment() (below) plus anything the trainer adds (model
  // path, backend, dtype, GPU name). Throws lorafit::Error naming the path on I/O failure.
  static std::unique_ptr<RunStore> create(const fs::path& dir, std::string_view resolved_config_yaml,
                                          const nlohmann::json& config_json, const nlohmann::json& env,
                                          const RunStoreOptions& options = {});
  ~RunStore();  // stops the monitor; if the status is still running, leaves it running
                // (a crash leaves "running" too; the dashboard shows it as stale by mtime)
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  // Appends {"step": step, "time": <unix seconds>, ...values} to metrics.jsonl and flushes.
  // `values` is an object of numbers, e.g. {"loss":1.23,"grad_norm":0.8,"learning_rate":1e-4,
  // "epoch":0.12,"tokens_per_s":812.5,"samples_per_s":3.1,"memory_gb":...}. Numeric values
  // also go to TensorBoard as scalars under tag "train/<key>".
  void log_metrics(int64_t step, const nlohmann::json& values);

  // Eval results: appends {"step", "time", "eval_loss": ..., ...} to metrics.jsonl (keys are
  // prefixed with "eval_" if they are not already), TensorBoard tag "eval/<key>".
  void log_eval(int64_t step, const nlohmann::json& values);

  // One generated answer. `tag` says when: "before" (step 0, untrained), "epoch 1",
  // "epoch 2", ..., or "step N" (sample_steps). `prompt_index` identifies the eval prompt so
  // the dashboard lines up before/after answers for the same prompt. Appends
  // {"step","epoch","tag","index","prompt","answer","ground_truth","time"} to samples.jsonl.
  void log_sample(int64_t step, double epoch, std::string_view tag, int prompt_index,
                  std::string_view prompt, std::string_view answer, std::string_view ground_truth);

  // Rewrites status.json atomically. `error` is shown by the dashboard for failed runs.
  // Also flushes all files. Call set_status(finished) at the end, or (failed, e.what()) in a
  // catch block before rethrowing.
  void set_status(RunStatus status, std::string_view error = {});

  // Adds/overrides fields of status.json (e.g. {"total_steps": 312}) without changing the
  // status; the dashboard uses total_steps for progress.
  void update_status_fields(const nlohmann::json& fields);

  const fs::path& dir() const { return dir_; }

 private:
  RunStore();
  void write_status_locked();
  struct Impl;
  std::unique_ptr<Impl> impl_;  // files, mutex, status object, TensorBoard writer, monitor
  fs::path dir_;
};

// The environment block of env.json: {"command_line": [...], "cwd", "hostname", "os",
// "cpu": {"model","cores"}, "memory_total_bytes", "gpus": [{"name","memory_total_bytes",
// "driver"}] (from NVML when present, else []), "lorafit_version", "compiler", "start_time"}.
// `lorafit_version` is passed by the caller (the CLI knows LORAFIT_VERSION).
nlohmann::json collect_environment(std::string_view lorafit_version);

}  // namespace lorafit::track
