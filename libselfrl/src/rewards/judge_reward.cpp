// LLM-as-judge reward (see selfrl/rewards/judge_reward.h): judge prompts → one batched
// generation call → parse → mean of the parsable judgements per completion.
#include "selfrl/rewards/judge_reward.h"

#include <cmath>
#include <regex>

#include "selfrl/core/error.h"
#include "selfrl/core/seed.h"
#include "selfrl/rewards/reward_registry.h"

namespace selfrl::rewards {

const std::string& default_judge_template() {
  // The additive rubric of Self-Rewarding LMs (Yuan et al. 2024, Fig. 2), in our own words.
  static const std::string t =
      "Review the user's question and the response below and score the response with the additive "
      "5-point system:\n"
      "- Add 1 point if the response is relevant and gives some information related to the question.\n"
      "- Add a 2nd point if it addresses a substantial part of the question, even if not completely.\n"
      "- Add a 3rd point if it answers the basic elements of the question in a useful way.\n"
      "- Add a 4th point if it is clearly written from an AI assistant's perspective, addresses the "
      "question directly and comprehensively, and is well organized.\n"
      "- Add a 5th point if it is impeccably tailored to the question, expert, engaging and without "
      "extraneous content.\n\n"
      "Question: {prompt}\nResponse: {response}\n\n"
      "Briefly justify your total, then conclude with \"Score: <points>\".";
  return t;
}

std::optional<double> parse_judge_score(const std::string& j) {
  static const std::regex score_re(R"([Ss][Cc][Oo][Rr][Ee]\s*:\s*(-?\d+(?:\.\d+)?))");
  static const std::regex num_re(R"(-?\d+(?:\.\d+)?)");
  std::optional<double> v;
  for (auto it = std::sregex_iterator(j.begin(), j.end(), score_re); it != std::sregex_iterator(); ++it)
    v = std::stod((*it)[1]);
  if (!v)
    for (auto it = std::sregex_iterator(j.begin(), j.end(), num_re); it != std::sregex_iterator(); ++it)
      v = std::stod((*it)[0]);
  if (!v || *v < 0 || *v > 5) return std::nullopt;
  return v;
}

std::string fill_judge_template(const std::string& tmpl, const std::string& prompt, const std::string& response) {
  // One left-to-right scan: a prompt or response that itself contains "{response}" stays as is.
  std::string out;
  for (size_t pos = 0; pos < tmpl.size();) {
    if (tmpl.compare(pos, 8, "{prompt}") == 0) {
      out += prompt;
      pos += 8;
    } else if (tmpl.compare(pos, 10, "{response}") == 0) {
      out += response;
      pos += 10;
    } else {
      out += tmpl[pos++];
    }
  }
  return out;
}

namespace {

// The last `n` bytes of `s`, cut at a UTF-8 character boundary: the verdict sits at the end.
std::string tail(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t start = s.size() - n;
  while (start < s.size() && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) ++start;
  return "..." + s.substr(start);
}

}  // namespace

std::vector<GroupScores> judge_groups(const JudgeFn& judge, const std::vector<Group>& groups, const JudgeOptions& o,
                                      uint64_t seed) {
  SELFRL_CHECK(judge != nullptr, "judge reward: no judge callable");
  SELFRL_CHECK(o.num_judgements >= 1, "judge reward: num_judgements must be >= 1, got ", o.num_judgements);
  const std::string& tmpl = o.judge_template.empty() ? default_judge_template() : o.judge_template;
  JudgeRequest req;
  req.num_judgements = o.num_judgements;
  req.temperature = o.temperature;
  req.max_new_tokens = o.max_new_tokens;
  req.seed = seed;
  for (const auto& g : groups)
    for (const auto& s : g.samples) req.prompts.push_back(fill_judge_template(tmpl, g.prompt, s.completion));
  std::vector<std::vector<std::string>> texts;
  if (!req.prompts.empty()) texts = judge(req);
  SELFRL_CHECK(texts.size() == req.prompts.size(), "judge reward: the judge answered ", texts.size(), " of ",
               req.prompts.size(), " judge prompts");
  const double scale = o.normalize ? 1.0 / 5.0 : 1.0;
  std::vector<GroupScores> out;
  size_t q = 0;
  for (const auto& g : groups) {
    GroupScores gs;
    nlohmann::json judgements = nlohmann::json::array(), points = nlohmann::json::array();
    double parsed = 0, unscorable = 0;
    for (size_t i = 0; i < g.samples.size(); ++i, ++q) {
      double sum = 0, n = 0;
      nlohmann::json jt = nlohmann::json::array(), jp = nlohmann::json::array();
      // Only the first num_judgements answers count (a callable returning more is not rewarded for it).
      for (size_t k = 0; k < texts[q].size() && k < static_cast<size_t>(o.num_judgements); ++k) {
        const auto v = parse_judge_score(texts[q][k]);
        if (v) sum += *v, n += 1;
        jt.push_back(tail(texts[q][k], o.max_info_chars));
        jp.push_back(v ? nlohmann::json(*v) : nlohmann::json(nullptr));
      }
      parsed += n;
      if (n == 0) unscorable += 1;
      gs.scores.push_back(n > 0 ? sum / n * scale : kUnscorable);
      judgements.push_back(std::move(jt));
      points.push_back(std::move(jp));
    }
    const double asked = static_cast<double>(g.samples.size()) * static_cast<double>(o.num_judgements);
    const double rate = asked > 0 ? parsed / asked : 0.0;
    gs.info = {{"judgements", std::move(judgements)},
               {"judge_scores", std::move(points)},
               {"parse_rate", rate},
               {"parsed", parsed},
               {"asked", asked}};
    gs.metrics = {{"parse_rate", rate}};
    out.push_back(std::move(gs));
  }
  return out;
}

namespace {

class JudgeReward : public Reward {
 public:
  JudgeReward(JudgeFn judge, JudgeOptions opts, std::string name)
      : judge_(std::move(judge)), opts_(std::move(opts)), name_(std::move(name)) {
    SELFRL_CHECK(judge_ != nullptr, "make_judge_reward: no judge callable");
    SELFRL_CHECK(opts_.num_judgements >= 1, "make_judge_reward: num_judgements must be >= 1, got ",
                 opts_.num_judgements);
    SELFRL_CHECK(opts_.temperature > 0, "make_judge_reward: temperature must be > 0, got ", opts_.temperature);
    SELFRL_CHECK(opts_.max_new_tokens >= 1, "make_judge_reward: max_new_tokens must be >= 1, got ",
                 opts_.max_new_tokens);
  }
  std::string name() const override { return name_; }
  std::vector<std::string> metric_names() const override { return {"parse_rate"}; }
  GroupScores score(const Group& g) override {
    // The request seed depends on the group's text only (FNV-1a), not on a call counter: a run
    // resumed from a checkpoint judges exactly as the uninterrupted one.
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const std::string& t) {
      for (unsigned char c : t) h = (h ^ c) * 1099511628211ull;
      h = (h ^ 0xff) * 1099511628211ull;  // separator
    };
    mix(g.prompt);
    for (const auto& s : g.samples) mix(s.completion);
    return std::move(judge_groups(judge_, {g}, opts_, derive_seed(opts_.seed, {h}))[0]);
  }

 private:
  JudgeFn judge_;
  JudgeOptions opts_;
  std::string name_;
};

}  // namespace

RewardPtr make_judge_reward(JudgeFn judge, JudgeOptions opts, std::string name) {
  return std::make_shared<JudgeReward>(std::move(judge), std::move(opts), std::move(name));
}

namespace {
const RegisterReward kJudge(
    "judge",
    [](const RewardArgs& a) {
      if (!a.judge_fn)
        throw Error("reward 'judge' needs a judge model").hint("run it inside selfrl train (the policy judges)");
      return make_judge_reward(a.judge_fn(), a.judge);
    },
    "LLM-as-judge: mean of judge.num_judgements 0-5 judgements by the policy or judge.model");
}  // namespace

}  // namespace selfrl::rewards
