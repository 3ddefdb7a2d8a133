// B-STaR ("B-STaR: Monitoring and Balancing Exploration and Exploitation in Self-Taught
// Reasoners", Zeng et al. 2024). Each iteration measures, on a probe set of queries with K
// samples each, exploration (Pass@K, distinct correct responses) and exploitation (Reward@K,
// precision of the reward-selected samples), and picks the sampling temperature and the
// selection-reward threshold that maximise the average balance score
//
//   bs_i = min(n'_i / n*, 1) · n'_i / n_i
//
// n_i: samples of query i the reward selects (score ≥ threshold); n'_i: distinct correct ones
// among them; n*: target number of correct samples per query. bs_i = 0 when n_i = 0.
// The chosen configuration then drives the Grow step of the iteration.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace selfrl::loops {

double balance_score(int64_t num_selected, int64_t num_distinct_correct_selected, int64_t target_correct);

// One query's K samples.
struct BStarQuery {
  std::vector<double> scores;      // selection reward per sample
  std::vector<bool> correct;       // answer matches the reference
  std::vector<std::string> texts;  // for "distinct"
};

struct BStarStats {
  double balance_score = 0;        // mean over queries
  double pass_at_k = 0;            // fraction of queries with a correct sample
  double distinct_correct = 0;     // mean distinct correct samples per query
  double reward_at_k = 0;          // fraction of queries whose top-scored sample is correct
  double selection_precision = 0;  // correct selected / selected, all queries
  double selected = 0;             // mean selected samples per query
};

BStarStats bstar_stats(const std::vector<BStarQuery>& queries, double threshold, int64_t target_correct);

struct BStarChoice {
  size_t temperature_index = 0, threshold_index = 0;
  BStarStats stats;
};
// grid[t][r] = stats at temperatures[t], thresholds[r]; the best balance score wins, ties go to
// the first in grid order.
BStarChoice bstar_choose(const std::vector<std::vector<BStarStats>>& grid);

}  // namespace selfrl::loops
