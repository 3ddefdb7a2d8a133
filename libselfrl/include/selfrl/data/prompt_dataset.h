// Prompt datasets: JSONL rows with `prompt` (text), `messages` (chat) or `input_ids`, and an
// optional `answer` (used by verifiers and evaluation only; unlabelled loops never read it).
// Rows become token ids once, at load, so every error can name the file and line: an empty
// file, a row without any prompt field, a prompt that leaves no room for the completion
// (max_position_embeddings − max_completion_length).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selfrl/tokenizer/tokenizer.h"

namespace selfrl::data {

struct Prompt {
  std::vector<int64_t> ids;           // what the model sees (chat template applied when asked)
  std::string text;                   // the user-visible prompt text (for judges and rewards)
  std::optional<std::string> answer;  // the row's `answer`, as a string
  std::string category;               // `category_field` value ("" when absent)
  nlohmann::json row;                 // the whole row
  std::string where;                  // "file:line"
  // The row's vote_prompt_field text, encoded as `ids` is (empty when the field is unset or the
  // row has none): a paraphrase whose samples vote in GRPO's consensus / borda rewards and are
  // not trained on (trainers::PromptExample::vote_prompt_ids).
  std::vector<int64_t> vote_ids;
};

struct PromptOptions {
  bool chat_template = false;                   // wrap `prompt` as a user message and render the template
  std::string fallback_chat_format = "chatml";  // when the tokenizer has no template
  std::string system_prompt;                    // prepended as a system message with chat_template
  std::string prompt_field = "prompt";
  std::string answer_field = "answer";
  std::string category_field = "category";
  std::string vote_prompt_field;  // "": no vote prompts (see Prompt::vote_ids)
  int64_t max_prompt_length = 0;  // > 0: longer prompts are an error naming file:line
  int64_t max_samples = 0;        // > 0: keep the first N rows
};

// Turns a prompt text into ids as `options` says (template or raw with special tokens).
std::vector<int64_t> encode_prompt(const tokenizer::Tokenizer& tok, const std::string& text,
                                   const PromptOptions& options);
std::vector<int64_t> encode_messages(const tokenizer::Tokenizer& tok,
                                     const std::vector<tokenizer::ChatMessage>& messages, const PromptOptions& options);

// Reads and tokenizes every row. `tok` may be null only when every row has `input_ids`.
std::vector<Prompt> load_prompts(const std::string& path, const tokenizer::Tokenizer* tok,
                                 const PromptOptions& options);

// Text ↔ ids helpers shared by the loops.
std::vector<int64_t> to_ids64(const std::vector<int>& ids);
std::vector<int> to_ids32(const std::vector<int64_t>& ids);

}  // namespace selfrl::data
