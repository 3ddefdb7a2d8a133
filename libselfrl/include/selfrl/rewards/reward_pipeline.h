// RewardPipeline: runs every reward on every group and assembles the [N, F] matrix that
// trainers::compute_advantages turns into advantages (reward_weights applied there).
// A reward that throws, or returns the wrong number of scores, marks that group's samples
// unscorable for that reward (NaN), is counted, and logged once per reward; it never stops
// the run.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "selfrl/rewards/reward.h"

namespace selfrl::rewards {

struct PipelineResult {
  torch::Tensor rewards_per_func;           // [N, F] float64, NaN = unscorable
  std::vector<nlohmann::json> group_info;   // per group: {reward name: info}
  std::map<std::string, int64_t> failures;  // reward name → samples it could not score
  // metric_names() order: "<reward>/<key>" → (sum over the groups that reported it, those groups)
  std::map<std::string, std::pair<double, double>> metric_sums;
};

class RewardPipeline {
 public:
  RewardPipeline() = default;
  void add(RewardPtr reward, double weight = 1.0);
  size_t size() const { return rewards_.size(); }
  std::vector<std::string> names() const;
  torch::Tensor weights() const;  // [F] float64
  // "<reward>/<key>" for every reward's metric_names(), in reward order (fixed for a pipeline).
  std::vector<std::string> metric_names() const;
  PipelineResult score(const std::vector<Group>& groups);

 private:
  std::vector<RewardPtr> rewards_;
  std::vector<double> weights_;
  std::map<std::string, bool> warned_;
};

}  // namespace selfrl::rewards
