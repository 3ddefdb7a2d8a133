// Head-tail re-balancing (see selfrl/loops/head_tail.h).
#include "selfrl/loops/head_tail.h"

#include <algorithm>

#include "selfrl/core/error.h"

namespace selfrl::loops {

Balance parse_balance(const std::string& name) {
  if (name == "none") return Balance::kNone;
  if (name == "pad") return Balance::kPad;
  throw Error("rest_em.balance: unknown value '" + name + "'").hint("use none or pad");
}

std::vector<size_t> take_solutions(size_t distinct, int64_t max_per_prompt, Balance balance) {
  SELFRL_CHECK(max_per_prompt >= 1, "max_per_prompt must be >= 1, got ", max_per_prompt);
  const auto cap = static_cast<size_t>(max_per_prompt);
  std::vector<size_t> out;
  if (distinct == 0) return out;
  const size_t n = balance == Balance::kPad ? cap : std::min(distinct, cap);
  for (size_t i = 0; i < n; ++i) out.push_back(i % std::min(distinct, cap));
  return out;
}

bool is_tail_query(int64_t solved, int64_t num_samples, double tail_threshold) {
  return static_cast<double>(solved) < tail_threshold * static_cast<double>(num_samples);
}

}  // namespace selfrl::loops
