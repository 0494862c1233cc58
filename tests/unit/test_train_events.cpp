// step_events(): the per-step decisions of the training loop, against transformers'
// DefaultFlowCallback.on_step_end (log every logging_steps, evaluate every eval_steps, save
// every save_steps and at the last step) plus lorafit's own rules (a log line and eval at the
// last step, answers at each epoch end, checkpoint-and-stop on a signal).
#include <gtest/gtest.h>

#include <vector>

#include "train/train_events.h"

namespace lorafit {
namespace {

std::vector<int64_t> steps_where(const EventSchedule& s, bool StepEvents::*flag) {
  std::vector<int64_t> got;
  for (int64_t k = 1; k <= s.total_steps; ++k)
    if (step_events(s, k).*flag) got.push_back(k);
  return got;
}

// 2 epochs of 4 steps, log every 3, eval every 5, save every 4, samples every 3.
const EventSchedule kSched{/*total*/ 8, /*spe*/ 4, /*logging*/ 3, /*eval*/ 5, /*save*/ 4, /*sample*/ 3};

TEST(StepEvents, LogEveryLoggingStepsAndTheLast) {
  EXPECT_EQ(steps_where(kSched, &StepEvents::should_log), (std::vector<int64_t>{3, 6, 8}));
}

TEST(StepEvents, EvaluateEveryEvalStepsAndTheLast) {
  EXPECT_EQ(steps_where(kSched, &StepEvents::should_evaluate), (std::vector<int64_t>{5, 8}));
  EventSchedule no_eval = kSched;
  no_eval.eval_steps = 0;  // 0: only at the end
  EXPECT_EQ(steps_where(no_eval, &StepEvents::should_evaluate), (std::vector<int64_t>{8}));
}

TEST(StepEvents, SaveEverySaveStepsAndTheLast) {
  EXPECT_EQ(steps_where(kSched, &StepEvents::should_save), (std::vector<int64_t>{4, 8}));
  EventSchedule odd = kSched;
  odd.total_steps = 7;
  EXPECT_EQ(steps_where(odd, &StepEvents::should_save), (std::vector<int64_t>{4, 7}));
}

TEST(StepEvents, SamplesEverySampleStepsAndEachEpochEnd) {
  EXPECT_EQ(steps_where(kSched, &StepEvents::should_sample), (std::vector<int64_t>{3, 4, 6, 8}));
  EXPECT_EQ(steps_where(kSched, &StepEvents::epoch_end), (std::vector<int64_t>{4, 8}));
  EventSchedule none = kSched;
  none.sample_steps = 0;
  EXPECT_EQ(steps_where(none, &StepEvents::should_sample), (std::vector<int64_t>{4, 8}));
}

TEST(StepEvents, EpochOfEachStep) {
  EXPECT_EQ(step_events(kSched, 1).epoch, 0);
  EXPECT_EQ(step_events(kSched, 4).epoch, 0);
  EXPECT_EQ(step_events(kSched, 5).epoch, 1);
  // max_steps past the data: epochs go on counting.
  EventSchedule longer = kSched;
  longer.total_steps = 10;
  EXPECT_EQ(step_events(longer, 10).epoch, 2);
  EXPECT_TRUE(step_events(longer, 10).epoch_end);  // the run's last step ends its epoch
}

TEST(StepEvents, StopOnlyAtTheLastStep) {
  EXPECT_EQ(steps_where(kSched, &StepEvents::should_training_stop), (std::vector<int64_t>{8}));
}

TEST(StepEvents, StopRequestLogsSavesAndStops) {
  // Step 3 would log and sample: on a stop request it still logs (a resumed run starts at
  // step 4 and would never log step 3), writes the checkpoint, and skips the answers.
  StepEvents e = step_events(kSched, 3, /*stop_requested=*/true);
  EXPECT_TRUE(e.should_log);
  EXPECT_TRUE(e.should_save);
  EXPECT_TRUE(e.should_training_stop);
  EXPECT_FALSE(e.should_evaluate);
  EXPECT_FALSE(e.should_sample);
  EXPECT_EQ(e.epoch, 0);
  // Step 5 would evaluate, not log: the eval is skipped too.
  e = step_events(kSched, 5, true);
  EXPECT_FALSE(e.should_log || e.should_evaluate || e.should_sample);
  EXPECT_TRUE(e.should_save && e.should_training_stop);
}

TEST(StepEvents, StopRequestAtTheLastStepFinishesNormally) {
  const StepEvents e = step_events(kSched, 8, /*stop_requested=*/true);
  EXPECT_TRUE(e.should_log && e.should_evaluate && e.should_sample && e.should_save && e.should_training_stop);
}

TEST(StepEvents, LoggingStepsOneLogsEveryStep) {
  EventSchedule every = kSched;
  every.logging_steps = 1;
  EXPECT_EQ(steps_where(every, &StepEvents::should_log).size(), 8u);
}

}  // namespace
}  // namespace lorafit
