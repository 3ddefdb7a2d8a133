// The steps of starting a run (internal: RunContext's constructor calls them in order), each
// with one job: where to resume, what output_dir keeps, the policy, the datasets.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "selfrl/data/prompt_dataset.h"
#include "selfrl/loops/train_config.h"
#include "selfrl/model/policy.h"

namespace selfrl::loops {

using model::Policy;

// The checkpoint a run continues from (resume_from_checkpoint; auto: the newest complete one,
// partial or corrupt ones skipped with a warning) and the metrics.jsonl lines it had written.
struct ResumePoint {
  std::string dir;             // "" = a fresh run
  int64_t metrics_lines = -1;  // -1 = a fresh run
};
ResumePoint find_resume_point(const TrainConfig& cfg, bool is_main);

// create_directories with an error naming what is in the way (a file on the path, permissions).
void create_output_dir(const std::string& dir);

// Rank 0, before any rank goes on: resumed, metrics.jsonl keeps the resume point's lines; fresh,
// an earlier run's outputs in output_dir are an error unless overwrite_output_dir clears them.
void prepare_output_dir(const TrainConfig& cfg, const ResumePoint& resume);

// The policy: `given` (must be on cfg.device) or cfg.model_dir's weights; the tokenizer and stop
// ids of cfg.model_dir.
Policy load_policy(const TrainConfig& cfg, std::shared_ptr<model::CausalLM> given);

// data.train and data.eval with the run's prompt options, prompts cut to what the context leaves
// after max_completion_length (an error when it leaves nothing).
void load_datasets(const TrainConfig& cfg, const Policy& policy, std::vector<data::Prompt>& train,
                   std::vector<data::Prompt>& eval_set);

}  // namespace selfrl::loops
