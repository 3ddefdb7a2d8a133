// Learning-rate schedules against values computed by hand from transformers' formulas.
#include "selfrl/trainers/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_util.h"

using namespace selfrl::trainers;

TEST(LrSchedule, LinearCosineConstantWithWarmup) {
  LrSchedule s{LrSchedulerType::kLinear, 1.0, 2, 10};
  EXPECT_DOUBLE_EQ(s.at(0), 0.0);
  EXPECT_DOUBLE_EQ(s.at(1), 0.5);
  EXPECT_DOUBLE_EQ(s.at(2), 1.0);
  EXPECT_DOUBLE_EQ(s.at(6), 0.5);  // (10 − 6) / (10 − 2)
  EXPECT_DOUBLE_EQ(s.at(10), 0.0);
  EXPECT_DOUBLE_EQ(s.at(12), 0.0);
  s.type = LrSchedulerType::kCosine;
  EXPECT_DOUBLE_EQ(s.at(2), 1.0);
  EXPECT_NEAR(s.at(6), 0.5, 1e-15);  // cos(π/2) = 0 → ½
  EXPECT_NEAR(s.at(4), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-15);
  s.type = LrSchedulerType::kConstantWithWarmup;
  EXPECT_DOUBLE_EQ(s.at(1), 0.5);
  EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  s.type = LrSchedulerType::kConstant;
  EXPECT_DOUBLE_EQ(s.at(0), 1.0);
  EXPECT_EQ(resolve_warmup_steps(0, 0.1, 25), 3);
  EXPECT_EQ(resolve_warmup_steps(5, 0.1, 25), 5);
  EXPECT_SELFRL_ERROR(parse_lr_scheduler_type("polynomial"), "unknown lr_scheduler_type 'polynomial'");
}
