// RewardPipeline (see selfrl/rewards/reward_pipeline.h).
#include "selfrl/rewards/reward_pipeline.h"

#include <torch/torch.h>

#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"

namespace selfrl::rewards {

Group make_group(std::string prompt, nlohmann::json example, const generation::Rollout& rollout,
                 const std::function<std::string(const std::vector<int64_t>&)>& decode) {
  Group g;
  g.prompt = std::move(prompt);
  g.example = std::move(example);
  for (const auto& c : rollout.completions) {
    Sample s;
    s.completion = decode(c.token_ids);
    s.completion_ids = c.token_ids;
    s.token_self_certainty = c.self_certainty;
    s.truncated = c.finish_reason == generation::FinishReason::kLength;
    g.samples.push_back(std::move(s));
  }
  return g;
}

void RewardPipeline::add(RewardPtr reward, double weight) {
  SELFRL_CHECK(reward != nullptr, "RewardPipeline::add: null reward");
  for (const auto& r : rewards_) {
    SELFRL_CHECK(r->name() != reward->name(), "reward '", reward->name(), "' added twice");
  }
  rewards_.push_back(std::move(reward));
  weights_.push_back(weight);
}

std::vector<std::string> RewardPipeline::names() const {
  std::vector<std::string> out;
  for (const auto& r : rewards_) out.push_back(r->name());
  return out;
}

std::vector<std::string> RewardPipeline::metric_names() const {
  std::vector<std::string> out;
  for (const auto& r : rewards_)
    for (const auto& k : r->metric_names()) out.push_back(r->name() + "/" + k);
  return out;
}

torch::Tensor RewardPipeline::weights() const { return torch::tensor(weights_, torch::kDouble); }

PipelineResult RewardPipeline::score(const std::vector<Group>& groups) {
  SELFRL_CHECK(!rewards_.empty(), "RewardPipeline has no rewards");
  int64_t n = 0;
  for (const auto& g : groups) n += static_cast<int64_t>(g.samples.size());
  const int64_t f = static_cast<int64_t>(rewards_.size());
  PipelineResult out;
  for (const auto& k : metric_names()) out.metric_sums[k] = {0.0, 0.0};
  out.rewards_per_func = torch::full({n, f}, kUnscorable, torch::kDouble);
  auto acc = out.rewards_per_func.accessor<double, 2>();
  int64_t row = 0;
  for (const auto& g : groups) {
    nlohmann::json info = nlohmann::json::object();
    const size_t gs = g.samples.size();
    for (int64_t k = 0; k < f; ++k) {
      const auto& reward = rewards_[k];
      std::string problem;
      try {
        GroupScores s = reward->score(g);
        if (s.scores.size() != gs) {
          problem = "returned " + std::to_string(s.scores.size()) + " scores for " + std::to_string(gs) + " samples";
        } else {
          for (size_t i = 0; i < gs; ++i) {
            acc[row + static_cast<int64_t>(i)][k] = s.scores[i];
            if (!std::isfinite(s.scores[i])) ++out.failures[reward->name()];
          }
          if (!s.info.is_null()) info[reward->name()] = std::move(s.info);
          for (const auto& [key, v] : s.metrics) {
            const auto it = out.metric_sums.find(reward->name() + "/" + key);
            if (it != out.metric_sums.end() && std::isfinite(v)) it->second.first += v, it->second.second += 1;
          }
        }
      } catch (const std::exception& e) {
        problem = e.what();
      }
      if (!problem.empty()) {
        out.failures[reward->name()] += static_cast<int64_t>(gs);
        info[reward->name()] = {{"error", problem}};
        if (!warned_[reward->name()]) {
          warned_[reward->name()] = true;
          SELFRL_WARN("reward '" << reward->name() << "' could not score a group"
                                 << (g.step >= 0 ? " at step " + std::to_string(g.step) : std::string()) << " ("
                                 << problem
                                 << "); its samples count as unscorable. Further failures are only counted.");
        }
      }
    }
    out.group_info.push_back(std::move(info));
    row += static_cast<int64_t>(gs);
  }
  return out;
}

}  // namespace selfrl::rewards
