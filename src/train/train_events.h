// What happens after each optimizer step of a run, decided in one place, as transformers'
// DefaultFlowCallback.on_step_end decides it (should_log / should_evaluate / should_save /
// should_training_stop). The trainer loop only acts on these flags, so a new event (eval on
// another dataset, a non-finite check, a stop request) is one more flag here and one handler
// there, and the schedule is unit-tested without training anything.
#pragma once
#include <cstdint>

namespace lorafit {

// The step counts the events derive from (resolved settings; all counts in optimizer steps).
struct EventSchedule {
  int64_t total_steps = 0;      // of the whole run
  int64_t steps_per_epoch = 1;
  int64_t logging_steps = 10;   // ≥ 1
  int64_t eval_steps = 0;       // 0: eval loss only at the end
  int64_t save_steps = 500;     // ≥ 1
  int64_t sample_steps = 0;     // 0: answers only at each epoch end
};

struct StepEvents {
  int64_t epoch = 0;               // 0-based epoch this step belongs to
  bool epoch_end = false;          // the epoch's last step (or the run's)
  bool should_log = false;         // metrics row + log line: every logging_steps and the last step
  bool should_evaluate = false;    // eval loss: every eval_steps (> 0) and the last step
  bool should_sample = false;      // answers to the eval prompts: every sample_steps (> 0), each epoch end
  bool should_save = false;        // checkpoint-{step}: every save_steps, the last step, and on a stop
  bool should_training_stop = false;  // the last step, or a stop was requested (Ctrl-C, SIGTERM)
};

// The events after optimizer step `step` (1-based, ≤ total_steps). With `stop_requested`
// the step is logged if it is a logging step, checkpointed, and the run ends there; an eval
// or answers due at that step are skipped (they can take minutes, and the user asked to
// stop). The checkpoint keeps the logging window, so a resumed run logs exactly the loss
// rows an uninterrupted run logs.
StepEvents step_events(const EventSchedule& s, int64_t step, bool stop_requested = false);

}  // namespace lorafit
