// The progress bar: quiet off a terminal, rate / ETA text when forced on.
#include <gtest/gtest.h>

#include <unistd.h>

#include "selfrl/core/progress.h"

TEST(ProgressBar, QuietOffATerminalAndFormatsDurations) {
  EXPECT_EQ(selfrl::format_duration(5), "00:05");
  EXPECT_EQ(selfrl::format_duration(125), "02:05");
  EXPECT_EQ(selfrl::format_duration(3725), "1:02:05");
  EXPECT_EQ(selfrl::format_duration(-1), "--:--");
  selfrl::ProgressBar::set_enabled_override(-1);
  {
    selfrl::ProgressBar quiet("x", 10);  // gtest's stderr is not a terminal here (ctest, CI)
    if (!isatty(2)) EXPECT_FALSE(quiet.enabled());
  }
  selfrl::ProgressBar::set_enabled_override(1);
  testing::internal::CaptureStderr();
  {
    selfrl::ProgressBar bar("gen", 4, "prompts");
    bar.advance(4);
    bar.finish();
  }
  const std::string out = testing::internal::GetCapturedStderr();
  selfrl::ProgressBar::set_enabled_override(-1);
  EXPECT_NE(out.find("gen ["), std::string::npos) << out;
  EXPECT_NE(out.find("4/4"), std::string::npos) << out;
  EXPECT_NE(out.find("prompts/s"), std::string::npos) << out;
  EXPECT_NE(out.find("eta"), std::string::npos) << out;
}
