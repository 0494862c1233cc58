// Learning-rate schedules against transformers 4.46.3 get_scheduler(name, AdamW(lr=1e-3),
// num_warmup_steps=W, num_training_steps=10): the lr in param_groups before each of 11
// optimizer steps, printed by the pinned stack. Same double formulas, so equal to the ulp.
#include <gtest/gtest.h>

#include <vector>

#include "train/lr_schedule.h"
#include "util/error.h"

namespace lorafit {
namespace {

void expect_schedule(const char* name, int64_t W, const std::vector<double>& want) {
  const LrSchedule s(parse_lr_scheduler_type(name), 1e-3, 10, W);
  for (size_t k = 0; k < want.size(); ++k) {
    EXPECT_DOUBLE_EQ(1e-3 * s.factor(static_cast<int64_t>(k)), want[k]) << name << " W=" << W << " k=" << k;
    // Trainer stepping: step k+1 applies factor(k); the value logged after step k+1 is factor(k+1).
    EXPECT_DOUBLE_EQ(s.lr_for_step(static_cast<int64_t>(k) + 1), want[k]);
    if (k + 1 < want.size()) {
      EXPECT_DOUBLE_EQ(s.logged_lr(static_cast<int64_t>(k) + 1), want[k + 1]);
    }
  }
}

TEST(LrSchedule, MatchesTransformers) {
  expect_schedule("linear", 3,
                  {0.0, 0.0003333333333333333, 0.0006666666666666666, 0.001, 0.0008571428571428571,
                   0.0007142857142857143, 0.0005714285714285714, 0.00042857142857142855, 0.0002857142857142857,
                   0.00014285714285714284, 0.0});
  expect_schedule("cosine", 3,
                  {0.0, 0.0003333333333333333, 0.0006666666666666666, 0.001, 0.0009504844339512095,
                   0.0008117449009293668, 0.0006112604669781572, 0.00038873953302184284, 0.00018825509907063325,
                   4.9515566048790485e-05, 0.0});
  // transformers' "constant" ignores the warmup; "constant_with_warmup" uses it.
  expect_schedule("constant", 3, std::vector<double>(11, 0.001));
  expect_schedule("constant_with_warmup", 3,
                  {0.0, 0.0003333333333333333, 0.0006666666666666666, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001,
                   0.001, 0.001});
  expect_schedule("linear", 0,
                  {0.001, 0.0009000000000000001, 0.0008, 0.0007, 0.0006, 0.0005, 0.0004, 0.0003, 0.0002, 0.0001, 0.0});
  expect_schedule("cosine", 2,
                  {0.0, 0.0005, 0.001, 0.0009619397662556434, 0.0008535533905932737, 0.000691341716182545, 0.0005,
                   0.0003086582838174551, 0.00014644660940672628, 3.806023374435663e-05, 0.0});
}

// TrainingArguments(warmup_ratio=0.15).get_warmup_steps(10) == 2 (ceil(1.5)), and (7) == 2.
TEST(LrSchedule, WarmupRatio) {
  EXPECT_EQ(LrSchedule(LrSchedulerType::Linear, 1e-3, 10, 0, 0.15).warmup_steps(), 2);
  EXPECT_EQ(LrSchedule(LrSchedulerType::Linear, 1e-3, 7, 0, 0.15).warmup_steps(), 2);
  EXPECT_EQ(LrSchedule(LrSchedulerType::Linear, 1e-3, 10, 4, 0.15).warmup_steps(), 4);  // steps win
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LrSchedule, Errors) {
  EXPECT_EQ(error_of([] { parse_lr_scheduler_type("polynomial"); }),
            "lr_scheduler_type 'polynomial' is not supported: use linear, cosine, constant or constant_with_warmup");
  EXPECT_EQ(error_of([] { LrSchedule(LrSchedulerType::Linear, 1e-3, 0); }),
            "the schedule needs at least 1 optimizer step, got 0");
  EXPECT_EQ(error_of([] { LrSchedule(LrSchedulerType::Linear, 1e-3, 10, -1); }), "warmup_steps = -1: expected 0 or more");
  EXPECT_EQ(error_of([] { LrSchedule(LrSchedulerType::Linear, 1e-3, 10, 0, 1.5); }),
            "warmup_ratio = 1.5: expected a fraction in [0, 1]");
}

}  // namespace
}  // namespace lorafit
