// Head-tail re-balancing (selfrl/loops/head_tail.h) against values worked out by hand.
#include "selfrl/loops/head_tail.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace selfrl::loops {
namespace {

using V = std::vector<size_t>;

TEST(HeadTail, ThresholdClippingKeepsTheFirstDistinctSolutions) {
  EXPECT_EQ(take_solutions(6, 4, Balance::kNone), (V{0, 1, 2, 3}));  // a head query: capped at 4
  EXPECT_EQ(take_solutions(2, 4, Balance::kNone), (V{0, 1}));
  EXPECT_EQ(take_solutions(0, 4, Balance::kNone), V{});
}

TEST(HeadTail, PaddingGivesEverySolvedQueryTheSameWeight) {
  // A tail query solved once and a head query solved six times both contribute 4 examples.
  EXPECT_EQ(take_solutions(1, 4, Balance::kPad), (V{0, 0, 0, 0}));
  EXPECT_EQ(take_solutions(3, 4, Balance::kPad), (V{0, 1, 2, 0}));
  EXPECT_EQ(take_solutions(6, 4, Balance::kPad), (V{0, 1, 2, 3}));
  EXPECT_EQ(take_solutions(0, 4, Balance::kPad), V{});  // unsolved: nothing to repeat
  // The set the loop builds from queries solved 8, 1 and 2 times (max_per_prompt 4):
  // none: 4 + 1 + 2 = 7 examples, 4/7 from the head query; pad: 4 + 4 + 4 = 12, a third each.
  size_t none = 0, pad = 0;
  for (size_t d : {8, 1, 2})
    none += take_solutions(d, 4, Balance::kNone).size(), pad += take_solutions(d, 4, Balance::kPad).size();
  EXPECT_EQ(none, 7u);
  EXPECT_EQ(pad, 12u);
}

TEST(HeadTail, TailQueriesAreThoseSolvedByFewerThanTheThresholdShare) {
  // num_samples 8, threshold 0.5: tail below 4 passing samples.
  EXPECT_TRUE(is_tail_query(0, 8, 0.5));
  EXPECT_TRUE(is_tail_query(3, 8, 0.5));
  EXPECT_FALSE(is_tail_query(4, 8, 0.5));
  EXPECT_FALSE(is_tail_query(0, 8, 0.0));  // threshold 0: nothing is tail
  EXPECT_TRUE(is_tail_query(7, 8, 1.0));   // threshold 1: everything not solved by all
}

TEST(HeadTail, BadSettingsAreClearErrors) {
  EXPECT_SELFRL_ERROR(parse_balance("oversample"), "rest_em.balance", "unknown value 'oversample'");
  EXPECT_SELFRL_ERROR(take_solutions(1, 0, Balance::kPad), "max_per_prompt must be >= 1");
}

}  // namespace
}  // namespace selfrl::loops
