#include "selfrl/core/error.h"

#include <gtest/gtest.h>

TEST(Error, ComposesWhereWhatHint) {
  selfrl::Error e("tensor 'x' is missing");
  e.at("model.safetensors").hint("re-save the model");
  EXPECT_STREQ(e.what(), "model.safetensors: tensor 'x' is missing (hint: re-save the model)");
  e.at("ckpt");
  EXPECT_EQ(e.where(), "ckpt: model.safetensors");
}
