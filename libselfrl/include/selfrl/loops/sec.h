// SEC, the self-evolving curriculum ("Self-Evolving Curriculum for LLM Reasoning", Chen et
// al. 2025): categories of the training data (difficulty levels, problem types) are arms of a
// non-stationary bandit. After a GRPO step the reward of arm c is the mean absolute advantage
// of its samples in the batch (a proxy for how much the policy can still learn there), its
// value is updated by TD(0), Q_c ← α r_c + (1 − α) Q_c, and the next batch draws categories
// with Boltzmann probabilities p_c ∝ exp(Q_c / τ). Implemented with the GRPO run in
// src/loops/grpo_loop.cpp (`loop: sec` is GRPO with this curriculum choosing the batches).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace selfrl::loops {

// TD(0): α·reward + (1 − α)·q.
double sec_td_update(double q, double reward, double alpha);
// softmax(q / τ), computed with the max subtracted.
std::vector<double> boltzmann_probabilities(const std::vector<double>& q, double tau);

class SecCurriculum {
 public:
  SecCurriculum(std::vector<std::string> arms, double alpha, double tau, double initial_q = 0.0);
  // Updates every arm that has an entry in `mean_abs_advantage` (NaN entries: not drawn this step).
  void update(const std::vector<double>& mean_abs_advantage);
  std::vector<double> probabilities() const { return boltzmann_probabilities(q_, tau_); }
  size_t sample(std::mt19937_64& rng) const;
  const std::vector<std::string>& arms() const { return arms_; }
  const std::vector<double>& values() const { return q_; }
  void set_values(std::vector<double> q) { q_ = std::move(q); }  // resume

 private:
  std::vector<std::string> arms_;
  std::vector<double> q_;
  double alpha_, tau_;
};

}  // namespace selfrl::loops
