// Policy: a causal LM together with what turns its output into text and tells it when to
// stop — the model, its tokenizer and its stop ids. It is what the trainers (GRPOTrainer),
// the loops (RunContext::policy) and the evaluator take, instead of a model, a decoder lambda
// and an id list passed separately.
//
// Ownership: a Policy shares its model and tokenizer (shared_ptr); copying a Policy copies the
// pointers, not the weights. Training one copy trains every copy.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "selfrl/core/device.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/tokenizer/tokenizer.h"

namespace selfrl::model {

struct Policy {
  Policy() = default;
  // Implicit from a bare model: a policy whose completions decode to their ids and stop at the
  // model config's EOS ids (tests, toy tasks).
  Policy(std::shared_ptr<CausalLM> m, std::shared_ptr<const tokenizer::Tokenizer> tok = nullptr,
         std::vector<int64_t> eos = {})
      : model(std::move(m)), tokenizer(std::move(tok)), eos_token_ids(std::move(eos)) {}

  std::shared_ptr<CausalLM> model;
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer;  // null: decode() joins ids with spaces
  std::vector<int64_t> eos_token_ids;                     // empty: the model config's eos_token_id

  // A model directory: weights, tokenizer and stop ids (see stop_ids_of).
  static Policy from_pretrained(const std::string& dir, torch::Device device = torch::kCPU,
                                torch::ScalarType dtype = torch::kFloat32);
  // `model` (already loaded, e.g. being trained) with the tokenizer and stop ids of `dir`.
  static Policy with_files_of(std::shared_ptr<CausalLM> model, const std::string& dir);

  // Generated ids → text, special tokens skipped; ids past the tokenizer's vocabulary (models
  // often have more embedding rows than tokens) decode to nothing, as in HF tokenizers.
  std::string decode(const std::vector<int64_t>& ids) const;
  // The ids that end a completion: eos_token_ids, or the model config's when that is empty.
  std::vector<int64_t> stop_ids() const;
};

// The stop ids of a model directory: config.json's and generation_config.json's eos_token_id
// (eos_token_ids) plus the tokenizer's EOS token when it is not among them.
std::vector<int64_t> stop_ids_of(const std::string& dir, const CausalLM& model, const tokenizer::Tokenizer* tokenizer);

}  // namespace selfrl::model
