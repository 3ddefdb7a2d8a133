// Prompt datasets with a real (in-process-trained) tokenizer: fields, chat template, and the
// promised errors — empty dataset, missing field, a prompt longer than the context — each
// naming file:line; the same errors through a recipe.
#include <gtest/gtest.h>

#include "../loops/loop_fixture.h"
#include "selfrl/data/prompt_dataset.h"
#include "selfrl/loops/self_improvement_loop.h"
#include "selfrl/loops/train_config.h"
#include "selfrl/recipe/recipe.h"
#include "selfrl/tokenizer/tokenizer.h"

namespace selfrl::test {
namespace {

TEST(PromptDataset, ReadsPromptMessagesAndInputIds) {
  auto& f = loop_fixture();
  auto tok = tokenizer::Tokenizer::from_pretrained(f.model);
  TempDir d;
  write_bytes(d.file("a.jsonl"),
              "{\"prompt\": \"2 + 3 =\", \"answer\": 5, \"category\": \"easy\"}\n"
              "{\"messages\": [{\"role\": \"user\", \"content\": \"1 + 1 =\"}], \"answer\": \"2\"}\n"
              "{\"input_ids\": [5, 6, 7]}\n");
  data::PromptOptions o;
  const auto p = data::load_prompts(d.file("a.jsonl"), tok.get(), o);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].ids, data::to_ids64(tok->encode("2 + 3 =", true)));
  EXPECT_EQ(p[0].answer, "5");  // numbers become their text
  EXPECT_EQ(p[0].category, "easy");
  EXPECT_EQ(p[0].where, d.file("a.jsonl") + ":1");
  const std::string chat = tok->apply_chat_template({{"user", "1 + 1 ="}}, true, "chatml");
  EXPECT_EQ(p[1].ids, data::to_ids64(tok->encode(chat, false)));
  EXPECT_EQ(p[2].ids, (std::vector<int64_t>{5, 6, 7}));
  EXPECT_FALSE(p[2].answer);
  o.chat_template = true;
  const auto q = data::load_prompts(d.file("a.jsonl"), tok.get(), o);
  EXPECT_EQ(q[0].ids,
            data::to_ids64(tok->encode(tok->apply_chat_template({{"user", "2 + 3 ="}}, true, "chatml"), false)));
}

TEST(PromptDataset, ErrorsNameFileAndLine) {
  auto& f = loop_fixture();
  auto tok = tokenizer::Tokenizer::from_pretrained(f.model);
  TempDir d;
  write_bytes(d.file("empty.jsonl"), "\n\n");
  EXPECT_SELFRL_ERROR(data::load_prompts(d.file("empty.jsonl"), tok.get(), {}), "empty.jsonl:1", "dataset is empty");
  write_bytes(d.file("nofield.jsonl"), "{\"prompt\": \"1 =\"}\n{\"question\": \"2 =\"}\n");
  EXPECT_SELFRL_ERROR(data::load_prompts(d.file("nofield.jsonl"), tok.get(), {}), "nofield.jsonl:2", "no \"prompt\"",
                      "keys present: question");
  write_bytes(d.file("long.jsonl"), "{\"prompt\": \"1 + 1 =\"}\n{\"prompt\": \"" + std::string(300, '7') + "\"}\n");
  data::PromptOptions o;
  o.max_prompt_length = 20;
  EXPECT_SELFRL_ERROR(data::load_prompts(d.file("long.jsonl"), tok.get(), o), "long.jsonl:2", "longer than the 20",
                      "max_completion_length");
}

TEST(PromptDataset, RecipeRunReportsEmptyDatasetAndOverlongPrompt) {
  auto& f = loop_fixture();
  TempDir d;
  write_bytes(d.file("empty.jsonl"), "");
  write_bytes(d.file("long.jsonl"), "{\"prompt\": \"" + std::string(200, '1') + " + 1 =\", \"answer\": \"2\"}\n");
  auto run = [&](const std::string& train, const std::string& extra) {
    write_bytes(d.file("r.yaml"),
                "loop: star\nmodel: " + f.model + "\noutput_dir: out\ndata:\n  train: " + train + "\n" + extra);
    auto r = recipe::Recipe::load(d.file("r.yaml"));
    loops::run_training(loops::read_train_config(r));
  };
  EXPECT_SELFRL_ERROR(run("empty.jsonl", ""), "empty.jsonl:1", "dataset is empty");
  // max_position_embeddings 512 − max_completion_length 400 = 112 < the prompt's tokens.
  EXPECT_SELFRL_ERROR(run("long.jsonl", "max_completion_length: 400\n"), "long.jsonl:1", "longer than the 112");
  EXPECT_SELFRL_ERROR(run("long.jsonl", "max_completion_length: 512\n"), "r.yaml", "leaves no room");
}

// data.vote_prompt_field: the field's text is encoded as the prompt is (chat template too); rows
// without it get no vote prompt; a non-string, or one longer than the context, names file:line.
TEST(PromptDataset, VotePromptFieldIsEncodedLikeThePrompt) {
  auto& f = loop_fixture();
  auto tok = tokenizer::Tokenizer::from_pretrained(f.model);
  TempDir d;
  write_bytes(d.file("v.jsonl"),
              "{\"prompt\": \"2 + 3 =\", \"alt\": \"3 + 2 =\"}\n"
              "{\"prompt\": \"1 + 1 =\"}\n");
  data::PromptOptions o;
  EXPECT_TRUE(data::load_prompts(d.file("v.jsonl"), tok.get(), o)[0].vote_ids.empty());  // off by default
  o.vote_prompt_field = "alt";
  auto p = data::load_prompts(d.file("v.jsonl"), tok.get(), o);
  EXPECT_EQ(p[0].vote_ids, data::to_ids64(tok->encode("3 + 2 =", true)));
  EXPECT_TRUE(p[1].vote_ids.empty());
  o.chat_template = true;
  p = data::load_prompts(d.file("v.jsonl"), tok.get(), o);
  EXPECT_EQ(p[0].vote_ids,
            data::to_ids64(tok->encode(tok->apply_chat_template({{"user", "3 + 2 ="}}, true, "chatml"), false)));
  o.chat_template = false;
  write_bytes(d.file("bad.jsonl"), "{\"prompt\": \"1 =\", \"alt\": \"2 =\"}\n{\"prompt\": \"2 =\", \"alt\": 7}\n");
  EXPECT_SELFRL_ERROR(data::load_prompts(d.file("bad.jsonl"), tok.get(), o), "bad.jsonl:2", "\"alt\" must be a string");
  write_bytes(d.file("long.jsonl"), "{\"prompt\": \"1 =\", \"alt\": \"" + std::string(300, '7') + "\"}\n");
  o.max_prompt_length = 20;
  EXPECT_SELFRL_ERROR(data::load_prompts(d.file("long.jsonl"), tok.get(), o), "long.jsonl:1", "vote prompt",
                      "longer than the 20");
}

}  // namespace
}  // namespace selfrl::test
