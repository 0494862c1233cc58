// What the trainer's two files share (private to src/train): the run being trained and
// its terminal. trainer_setup.cpp builds a Run (data, memory plan, model, LoRA, schedule,
// resume, run folder); trainer.cpp drives the step loop over it.
#pragma once
#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "lora/lora_config.h"
#include "track/progress.h"
#include "track/run_store.h"
#include "train/batcher.h"
#include "train/checkpoint.h"
#include "train/data_prep.h"
#include "train/lr_schedule.h"
#include "train/train_events.h"
#include "train/train_step.h"
#include "train/trainer.h"

namespace lorafit::detail {

// Terminal lines go to stdout (or hooks.print) and OUTPUT_DIR/train.log (held back until the
// folder is settled); on a terminal a live progress bar is redrawn below them.
class Console {
 public:
  explicit Console(const TrainHooks& h) : hooks_(h) {}
  void line(const std::string& text) {
    if (hooks_.print)
      hooks_.print(text);
    else if (bar_)
      bar_->message(text);
    else
      std::printf("%s\n", text.c_str()), std::fflush(stdout);
    if (log_.is_open())
      log_ << text << '\n' << std::flush;
    else
      pending_.push_back(text);
  }
  void open_log(const fs::path& p) {
    log_.open(p, std::ios::app);
    for (const std::string& l : pending_) log_ << l << '\n';
    log_.flush();
    pending_.clear();
  }
  // The bar (stdout; on a terminal redrawn in place, else a plain line when no log line came
  // for 30 s). None with hooks.print, quiet, or hooks.progress off.
  void start_progress(bool on, int64_t total, int64_t done) {
    if (!on || hooks_.print) return;
    bar_ = std::make_unique<track::Progress>(hooks_.progress_label, total, stdout, track::Progress::Mode::automatic,
                                             30.0);
    bar_->set_resumed_from(done);
  }
  void progress(int64_t step, const track::ProgressStats& st) {
    if (bar_) bar_->update(step, st);
  }
  void end_progress() {
    if (bar_) bar_->finish();
    bar_.reset();
  }

 private:
  const TrainHooks& hooks_;
  std::ofstream log_;
  std::vector<std::string> pending_;
  std::unique_ptr<track::Progress> bar_;
};

// Everything a run holds, set up once before step 1.
struct Run {
  Run(const TrainSettings& settings, const TrainHooks& h) : s(settings), hooks(h), con(h) {}
  const TrainSettings& s;
  const TrainHooks& hooks;
  Console con;
  fs::path out, resume_dir;
  std::unique_ptr<ChatRenderer> renderer;
  PreparedData data;
  std::unique_ptr<Backend> be;
  std::unique_ptr<Model> model;
  LoraConfig lc;
  std::unique_ptr<LoraParams> lora;
  std::unique_ptr<Batcher> batcher;  // (num_batches) micro-batches per epoch
  std::unique_ptr<LrSchedule> schedule;
  std::unique_ptr<LoraTrainer> trainer;
  int64_t accum = 1;
  DType act = DType::F32;  // activation dtype (train_act_dtype)
  int64_t longest_T = 0;   // tokens of the longest micro-batch row (the memory plan's)
  EventSchedule events;
  TrainerState st;
  std::unique_ptr<track::RunStore> store;
  CheckpointInfo ck_info;
  std::atomic<int64_t> last_saved{0};  // step of the newest checkpoint (read by the signal watcher)
};

// Setup, in this order (trainer_setup.cpp).
fs::path resolve_resume_dir(const TrainSettings& s);
void check_output_dir(const TrainSettings& s, bool resuming);
void load_data(Run& r);
void check_memory(Run& r);
void load_model(Run& r);
void plan_steps(Run& r);
void resume_or_reset(Run& r);
void open_run_folder(Run& r);

std::string thousands(int64_t n);  // 1234567 → "1,234,567"

}  // namespace lorafit::detail
