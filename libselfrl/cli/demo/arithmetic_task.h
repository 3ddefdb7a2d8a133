// The demo's task family: addition of non-negative integers with exactly checkable answers.
//
// An item's difficulty is the number of digits of its longer operand (1 … max_digits). The
// generator draws a small labelled seed set, a large unlabelled pool and held-out evaluation
// sets from one seeded stream with no (a, b) pair in two splits, so the unlabelled and held-out
// numbers are never seen with their answers.
//
// Text format: little-endian, fixed width. Both operands are zero-padded to the task's width W
// (max_digits) and written least-significant digit first, and so is the sum (W + 1 digits):
// output digit i depends on operand digits i, which sit at the same relative distance for every
// i and every item (what RoPE attention finds easily), plus the carry the model has just
// written. A sub-1M-parameter Llama learns this from about a thousand examples in a minute of
// CPU training, where plain "37+58=95" with mixed lengths barely moves (measured; cf. Lee et
// al. 2023, "Teaching Arithmetic to Small Transformers", on reversed formats). sentencepiece is
// trained with split_digits (one token per digit).
//   answer prompt  "Q: 730+850 ="        completion "5900"   (37 + 58 = 95, W = 3)
//   can prompt     "Q: 730+850 ? CAN:"   completion "yes" | "no"  (self-knowledge, before trying)
// Rows keep the plain numbers too: "a", "b", "sum"; "answer" is the little-endian string that
// a verifier compares.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace selfrl::demo {

struct ArithmeticItem {
  int64_t a = 0, b = 0;
  int difficulty = 0;  // digits of max(a, b)
  int width = 0;       // operands are written in `width` digits (the task's max_digits)

  std::string question() const;    // "730+850": operands padded to `width` digits, reversed
  std::string prompt() const;      // "Q: 730+850 ="
  std::string can_prompt() const;  // "Q: 730+850 ? CAN:"
  std::string answer() const;      // a + b in width + 1 digits, reversed: "5900"
  // The number a reversed answer spells ("5900" → 95). Throws Error for non-digits.
  static int64_t parse_answer(const std::string& reversed);
  static std::string padded(int64_t x, int width);
  // {"prompt", "answer", "difficulty", "a", "b", "sum", "width"} — the rows of runs/demo/data/*.jsonl.
  nlohmann::json to_json() const;
  static ArithmeticItem from_json(const nlohmann::json& row);  // throws Error naming the key
};

struct TaskConfig {
  int max_digits = 3;
  // Relative weight of each difficulty 1 … max_digits (same mix for every split unless the
  // seed set's own weights are given).
  std::vector<double> difficulty_weights = {1, 3, 6};
  // The seed set is almost all small numbers (14–23 of its 1500 items have 3 digits): the base
  // model, trained to its plateau, is right on 1–2 digit items and only partly right on 3-digit
  // ones, which the unlabelled pool is full of — the regime where majority votes carry signal
  // that the label-free stages can use and more seed training cannot (docs/demo.md: with 0.25
  // the seed set alone taught 3 digits; with 0.02 two of three seeds learnt no 3-digit sums).
  std::vector<double> seed_difficulty_weights = {1, 4, 0.05};  // empty: difficulty_weights
  int64_t num_seed = 1500;
  int64_t num_unlabelled = 4000;
  int64_t num_eval_dev = 300;   // for choosing knobs (never the test set)
  int64_t num_eval_test = 500;  // the numbers reported
  uint64_t seed = 0;
};

struct TaskSplits {
  std::vector<ArithmeticItem> seed, unlabelled, eval_dev, eval_test;
};

// Draws the four splits. Throws Error when a difficulty's weight is negative, all weights are
// zero, or the requested sizes cannot be filled with distinct pairs.
TaskSplits generate_splits(const TaskConfig& cfg);

// Writes seed.jsonl, unlabelled.jsonl, eval_dev.jsonl, eval_test.jsonl into `dir`.
void write_splits(const TaskSplits& splits, const std::string& dir);

// The answer a completion commits to: the first run of digits, or "" when there is none.
std::string extract_answer(const std::string& completion);

// Lee et al.'s length filter (label-free: the prompt's zero-padded operands fix the format): an
// answer is well formed when it has exactly width + 1 digits.
bool well_formed_answer(const ArithmeticItem& item, const std::string& answer);

// The pattern of the consensus rewards' regex extractor ("^\\D*(\\d+)": the first run of
// digits); with length_filter only a run of exactly max_digits + 1 digits is an answer.
std::string answer_pattern(int max_digits, bool length_filter);

}  // namespace selfrl::demo
