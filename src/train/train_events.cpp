#include "train/train_events.h"

#include "util/error.h"

namespace lorafit {

StepEvents step_events(const EventSchedule& s, int64_t step, bool stop_requested) {
  LF_CHECK(step >= 1 && step <= s.total_steps && s.steps_per_epoch >= 1 && s.logging_steps >= 1 && s.save_steps >= 1,
           "step_events: step {} of {} (steps per epoch {}, logging {}, save {})", step, s.total_steps,
           s.steps_per_epoch, s.logging_steps, s.save_steps);
  StepEvents e;
  e.epoch = (step - 1) / s.steps_per_epoch;
  const bool last = step == s.total_steps;
  e.should_log = step % s.logging_steps == 0 || last;
  if (stop_requested && !last) {
    e.should_save = e.should_training_stop = true;
    return e;
  }
  e.epoch_end = (step - 1) % s.steps_per_epoch == s.steps_per_epoch - 1 || last;
  e.should_evaluate = (s.eval_steps > 0 && step % s.eval_steps == 0) || last;
  e.should_sample = (s.sample_steps > 0 && step % s.sample_steps == 0) || e.epoch_end;
  e.should_save = step % s.save_steps == 0 || last;
  e.should_training_stop = last;
  return e;
}

}  // namespace lorafit
