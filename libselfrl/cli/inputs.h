// Reading the JSONL inputs shared by `selfrl generate` and `selfrl logprobs`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "selfrl/io/model_config.h"

namespace selfrl::cli {

// Turns a record's "prompt" text into token ids (tokenizer, optionally through the chat template).
using TextEncoder = std::function<std::vector<int64_t>(const std::string&)>;

// Reads `{"input_ids": [...]}` records — or, when `encode_prompt` is given, `{"prompt": "..."}`
// records — checking every id against the vocabulary and the length against `length_limit`
// (and `min_length`); errors name "path:line".
std::vector<std::vector<int64_t>> read_input_ids(const std::string& path, const io::ModelConfig& cfg,
                                                 int64_t min_length, int64_t length_limit,
                                                 const TextEncoder& encode_prompt = nullptr);

}  // namespace selfrl::cli
