// libselfrl's public API in one include. What each part is, who owns what, what is stable and
// what is thread-safe: docs/api.md.
//
//   #include <selfrl/selfrl.h>
//   auto policy = selfrl::model::Policy::from_pretrained("Qwen2.5-0.5B-Instruct");  // weights, tokenizer, stop ids
//   selfrl::generation::RolloutEngine engine(policy.model, {64, policy.stop_ids()});
//
// Runs from recipes: selfrl/loops/run.h. Rewards a program adds by name: selfrl/rewards/reward_registry.h.
#pragma once

#include "selfrl/version.h"

#include "selfrl/core/device.h"
#include "selfrl/core/error.h"
#include "selfrl/core/interrupt.h"
#include "selfrl/core/logging.h"
#include "selfrl/core/progress.h"
#include "selfrl/core/seed.h"

#include "selfrl/io/model_config.h"
#include "selfrl/io/safetensors.h"
#include "selfrl/io/jsonl.h"

#include "selfrl/model/causal_lm.h"
#include "selfrl/model/policy.h"
#include "selfrl/model/token_logprobs.h"
#include "selfrl/tokenizer/tokenizer.h"
#include "selfrl/tokenizer/sentencepiece_tokenizer.h"

#include "selfrl/generation/rollout_engine.h"
#include "selfrl/generation/sampling_params.h"

#include "selfrl/rewards/answer_extractor.h"
#include "selfrl/rewards/builtin_rewards.h"
#include "selfrl/rewards/judge_reward.h"
#include "selfrl/rewards/reward.h"
#include "selfrl/rewards/reward_pipeline.h"
#include "selfrl/rewards/reward_registry.h"

#include "selfrl/trainers/dpo_trainer.h"
#include "selfrl/trainers/grpo_trainer.h"
#include "selfrl/trainers/sft_trainer.h"
#include "selfrl/trainers/checkpoint.h"

#include "selfrl/data/prompt_dataset.h"
#include "selfrl/eval/evaluator.h"
#include "selfrl/metrics/metrics.h"
#include "selfrl/metrics/metrics_plot.h"
#include "selfrl/recipe/recipe.h"
#include "selfrl/loops/train_config.h"
#include "selfrl/loops/run.h"
#include "selfrl/dist/world.h"
