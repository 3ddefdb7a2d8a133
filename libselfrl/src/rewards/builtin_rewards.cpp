// Built-in rewards (see selfrl/rewards/builtin_rewards.h).
#include "selfrl/rewards/builtin_rewards.h"

#include <algorithm>
#include <numeric>

#include "selfrl/core/error.h"
#include "selfrl/rewards/reward_registry.h"

namespace selfrl::rewards {
namespace {

class FunctionReward : public Reward {
 public:
  FunctionReward(std::string name, std::function<std::vector<double>(const Group&)> fn)
      : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string name() const override { return name_; }
  GroupScores score(const Group& g) override { return {fn_(g), nullptr}; }

 private:
  std::string name_;
  std::function<std::vector<double>(const Group&)> fn_;
};

class SelfCertaintyReward : public Reward {
 public:
  std::string name() const override { return "self_certainty"; }
  GroupScores score(const Group& g) override {
    GroupScores out;
    for (const auto& s : g.samples) out.scores.push_back(mean_self_certainty(s.token_self_certainty));
    return out;
  }
};

// Tally of extracted answers in first-seen order.
struct Votes {
  std::vector<std::optional<std::string>> answers;  // per sample
  std::vector<std::pair<std::string, double>> tally;
  void add(const std::string& a, double w) {
    for (auto& [ans, v] : tally) {
      if (ans == a) {
        v += w;
        return;
      }
    }
    tally.emplace_back(a, w);
  }
  // Strictly greater wins: ties keep the answer seen first.
  std::optional<std::string> winner() const {
    std::optional<std::string> best;
    double best_v = -1;
    for (const auto& [ans, v] : tally) {
      if (v > best_v) {
        best_v = v;
        best = ans;
      }
    }
    return best;
  }
};

// A vote reward's scores (1 for the samples holding the winning answer, else 0), all set to 0
// when the winner's share of the samples is below `min_share` (then the info says so).
void apply_min_vote_share(GroupScores& out, double min_share) {
  const double n = static_cast<double>(out.scores.size());
  const double agree = std::count(out.scores.begin(), out.scores.end(), 1.0);
  if (min_share <= 0 || n == 0 || agree / n >= min_share) return;
  std::fill(out.scores.begin(), out.scores.end(), 0.0);
  out.info["below_min_vote_share"] = true;
}

class ConsensusReward : public Reward {
 public:
  ConsensusReward(AnswerExtractor e, double min_share) : extractor_(std::move(e)), min_share_(min_share) {}
  std::string name() const override { return "consensus"; }
  GroupScores score(const Group& g) override {
    Votes votes;
    for (const auto& s : g.samples) {
      votes.answers.push_back(extractor_.extract(s.completion));
      if (votes.answers.back()) votes.add(*votes.answers.back(), 1.0);
    }
    for (const auto& s : g.vote_samples)  // after the group's own: ties keep their answers
      if (const auto a = extractor_.extract(s.completion)) votes.add(*a, 1.0);
    const auto majority = votes.winner();
    GroupScores out;
    int64_t agree = 0;
    for (const auto& a : votes.answers) {
      const bool ok = majority && a && *a == *majority;
      agree += ok;
      out.scores.push_back(ok ? 1.0 : 0.0);
    }
    const double n = static_cast<double>(g.samples.size());
    out.info = {{"majority", majority ? nlohmann::json(*majority) : nlohmann::json(nullptr)},
                {"vote_share", n > 0 ? agree / n : 0.0},
                {"num_answers", votes.tally.size()}};
    if (!g.vote_samples.empty()) out.info["num_vote_samples"] = g.vote_samples.size();
    apply_min_vote_share(out, min_share_);
    return out;
  }

 private:
  AnswerExtractor extractor_;
  double min_share_;
};

class BordaReward : public Reward {
 public:
  BordaReward(AnswerExtractor e, double power, double min_share)
      : extractor_(std::move(e)), power_(power), min_share_(min_share) {}
  std::string name() const override { return "borda"; }
  GroupScores score(const Group& g) override {
    // The group's own samples, then its vote-only samples: all are ranked and vote; only the
    // first n are scored.
    const size_t n = g.samples.size(), total = n + g.vote_samples.size();
    auto sample = [&](size_t i) -> const Sample& { return i < n ? g.samples[i] : g.vote_samples[i - n]; };
    std::vector<double> sc(total);
    for (size_t i = 0; i < total; ++i) sc[i] = mean_self_certainty(sample(i).token_self_certainty);
    std::vector<size_t> order(total);
    std::iota(order.begin(), order.end(), 0);
    // Most certain first; NaN (empty completions) last; stable for ties.
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      if (std::isnan(sc[a])) return false;
      if (std::isnan(sc[b])) return true;
      return sc[a] > sc[b];
    });
    Votes votes;
    votes.answers.resize(total);
    for (size_t i = 0; i < total; ++i) votes.answers[i] = extractor_.extract(sample(i).completion);
    for (size_t r = 0; r < total; ++r) {
      const size_t i = order[r];
      if (votes.answers[i]) votes.add(*votes.answers[i], std::pow(static_cast<double>(total - r), power_));
    }
    const auto win = votes.winner();
    GroupScores out;
    for (size_t i = 0; i < n; ++i)
      out.scores.push_back(win && votes.answers[i] && *votes.answers[i] == *win ? 1.0 : 0.0);
    out.info = {{"winner", win ? nlohmann::json(*win) : nlohmann::json(nullptr)}};
    if (!g.vote_samples.empty()) out.info["num_vote_samples"] = g.vote_samples.size();
    apply_min_vote_share(out, min_share_);
    return out;
  }

 private:
  AnswerExtractor extractor_;
  double power_;
  double min_share_;
};

class VerifierReward : public Reward {
 public:
  VerifierReward(AnswerExtractor e, std::string key) : extractor_(std::move(e)), key_(std::move(key)) {}
  std::string name() const override { return "verifier"; }
  GroupScores score(const Group& g) override {
    if (!g.example.is_object() || !g.example.contains(key_)) {
      throw Error("the example has no '" + key_ + "' field").hint("the verifier reward needs reference answers");
    }
    const auto& v = g.example[key_];
    const std::string ref = normalize_answer(v.is_string() ? v.get<std::string>() : v.dump());
    GroupScores out;
    for (const auto& s : g.samples) {
      const auto a = extractor_.extract(s.completion);
      out.scores.push_back(a && *a == ref ? 1.0 : 0.0);
    }
    out.info = {{"reference", ref}};
    return out;
  }

 private:
  AnswerExtractor extractor_;
  std::string key_;
};

class FormatReward : public Reward {
 public:
  explicit FormatReward(const std::string& pattern) : extractor_(AnswerExtractor::create("regex", pattern)) {}
  std::string name() const override { return "format"; }
  GroupScores score(const Group& g) override {
    GroupScores out;
    for (const auto& s : g.samples) out.scores.push_back(extractor_.extract(s.completion) ? 1.0 : 0.0);
    return out;
  }

 private:
  AnswerExtractor extractor_;  // a match of any kind counts
};

class LengthReward : public Reward {
 public:
  LengthReward(std::string name, std::function<double(int64_t)> f) : name_(std::move(name)), f_(std::move(f)) {}
  std::string name() const override { return name_; }
  GroupScores score(const Group& g) override {
    GroupScores out;
    for (const auto& s : g.samples) out.scores.push_back(f_(static_cast<int64_t>(s.completion_ids.size())));
    return out;
  }

 private:
  std::string name_;
  std::function<double(int64_t)> f_;
};

}  // namespace

double mean_self_certainty(const std::vector<float>& per_token) {
  if (per_token.empty()) return kUnscorable;
  double s = 0;
  for (float v : per_token) s += v;
  return s / static_cast<double>(per_token.size());
}

double soft_overlong_punishment(int64_t length, int64_t max_len, int64_t cache) {
  SELFRL_CHECK(cache > 0 && cache <= max_len, "overlong_cache must be in (0, max_completion_length], got ", cache);
  if (length <= max_len - cache) return 0.0;
  if (length <= max_len) return static_cast<double>(max_len - cache - length) / static_cast<double>(cache);
  return -1.0;
}

RewardPtr make_function_reward(std::string name, std::function<std::vector<double>(const Group&)> fn) {
  return std::make_shared<FunctionReward>(std::move(name), std::move(fn));
}
RewardPtr make_self_certainty_reward() { return std::make_shared<SelfCertaintyReward>(); }
namespace {
// consensus_min_vote_share, checked where a reward is built.
double checked_min_vote_share(const char* reward, double v) {
  SELFRL_CHECK(v >= 0 && v <= 1, reward, ": min_vote_share must be in [0, 1], got ", v);
  return v;
}
}  // namespace
RewardPtr make_consensus_reward(AnswerExtractor e, double min_vote_share) {
  return std::make_shared<ConsensusReward>(std::move(e), checked_min_vote_share("consensus", min_vote_share));
}
RewardPtr make_borda_reward(AnswerExtractor e, double power, double min_vote_share) {
  return std::make_shared<BordaReward>(std::move(e), power, checked_min_vote_share("borda", min_vote_share));
}
RewardPtr make_verifier_reward(AnswerExtractor e, std::string key) {
  return std::make_shared<VerifierReward>(std::move(e), std::move(key));
}
RewardPtr make_format_reward(const std::string& pattern) { return std::make_shared<FormatReward>(pattern); }
RewardPtr make_soft_overlong_reward(int64_t max_len, int64_t cache) {
  soft_overlong_punishment(0, max_len, cache);  // validates the arguments now
  return std::make_shared<LengthReward>("soft_overlong",
                                        [=](int64_t l) { return soft_overlong_punishment(l, max_len, cache); });
}
RewardPtr make_length_penalty_reward(int64_t max_len) {
  SELFRL_CHECK(max_len > 0, "max_completion_length must be positive");
  return std::make_shared<LengthReward>("length_penalty", [=](int64_t l) { return -static_cast<double>(l) / max_len; });
}

// The names recipes use (reward_registry.h).
namespace {
const RegisterReward kConsensus(
    "consensus", [](const RewardArgs& a) { return make_consensus_reward(a.extractor, a.consensus_min_vote_share); },
    "1 when the sample's answer is its group's majority answer (TTRL; consensus_min_vote_share)");
const RegisterReward kSelfCertainty(
    "self_certainty", [](const RewardArgs&) { return make_self_certainty_reward(); },
    "mean per-token KL(U || p) of the completion (Intuitor)");
const RegisterReward kBorda(
    "borda",
    [](const RewardArgs& a) { return make_borda_reward(a.extractor, a.borda_power, a.consensus_min_vote_share); },
    "1 for the answer winning self-certainty-ranked Borda voting (borda_power, consensus_min_vote_share)");
const RegisterReward kVerifier(
    "verifier", [](const RewardArgs& a) { return make_verifier_reward(a.extractor, a.answer_field); },
    "1 when the answer equals the row's reference answer (data.answer_field)");
const RegisterReward kFormat(
    "format", [](const RewardArgs& a) { return make_format_reward(a.format_pattern); },
    "1 when the completion matches format_pattern");
const RegisterReward kSoftOverlong(
    "soft_overlong",
    [](const RewardArgs& a) {
      return make_soft_overlong_reward(a.max_completion_length, std::max<int64_t>(1, a.max_completion_length / 4));
    },
    "DAPO's soft overlong punishment (cache = max_completion_length / 4)");
const RegisterReward kLengthPenalty(
    "length_penalty", [](const RewardArgs& a) { return make_length_penalty_reward(a.max_completion_length); },
    "-tokens / max_completion_length");
}  // namespace

}  // namespace selfrl::rewards
