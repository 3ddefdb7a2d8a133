// Held-out evaluation of the demo: greedy accuracy, maj@k, pass@k and self-knowledge F1.
#include "demo/evaluation.h"

#include <algorithm>

#include <torch/torch.h>

#include "selfrl/core/error.h"
#include "selfrl/generation/rollout_engine.h"

namespace selfrl::demo {

ConfusionCounts confusion(const std::vector<bool>& predicted_yes, const std::vector<bool>& solved) {
  SELFRL_CHECK(predicted_yes.size() == solved.size(), "confusion: ", predicted_yes.size(), " predictions for ",
               solved.size(), " outcomes");
  ConfusionCounts c;
  for (size_t i = 0; i < solved.size(); ++i) {
    if (predicted_yes[i]) {
      (solved[i] ? c.tp : c.fp) += 1;
    } else {
      (solved[i] ? c.fn : c.tn) += 1;
    }
  }
  return c;
}

double f1_score(const ConfusionCounts& c) {
  const double den = 2.0 * c.tp + c.fp + c.fn;
  return den == 0 ? 0.0 : 2.0 * c.tp / den;
}

double self_knowledge_f1(const std::vector<bool>& predicted_yes, const std::vector<bool>& solved) {
  return f1_score(confusion(predicted_yes, solved));
}

std::optional<Vote> majority_vote(const std::vector<std::string>& answers) {
  std::vector<std::pair<std::string, int64_t>> counts;  // first-seen order, for ties
  for (const auto& a : answers) {
    if (a.empty()) continue;
    auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& p) { return p.first == a; });
    if (it == counts.end()) {
      counts.emplace_back(a, 1);
    } else {
      ++it->second;
    }
  }
  if (counts.empty()) return std::nullopt;
  size_t best = 0;
  for (size_t i = 1; i < counts.size(); ++i)
    if (counts[i].second > counts[best].second) best = i;
  return Vote{counts[best].first, static_cast<double>(counts[best].second) / answers.size()};
}

std::vector<int64_t> DemoCodec::prompt_ids(const std::string& text) const {
  const auto ids = tok->encode(text, /*add_special_tokens=*/true);
  return {ids.begin(), ids.end()};
}

std::vector<int64_t> DemoCodec::completion_ids(const std::string& text) const {
  const auto ids = tok->encode(text, /*add_special_tokens=*/false);
  std::vector<int64_t> out(ids.begin(), ids.end());
  out.push_back(eos_id());
  return out;
}

std::string DemoCodec::decode(const std::vector<int64_t>& ids) const {
  return tok->decode(std::vector<int>(ids.begin(), ids.end()), /*skip_special_tokens=*/true);
}

int64_t DemoCodec::eos_id() const {
  if (!tok->eos_id()) throw Error("the demo tokenizer has no EOS token").hint("train it with eos_id set");
  return *tok->eos_id();
}

namespace {

std::vector<generation::Rollout> run(const std::shared_ptr<model::CausalLM>& model, const DemoCodec& codec,
                                     const std::vector<std::vector<int64_t>>& prompts, int64_t samples,
                                     double temperature, int64_t max_new_tokens, const EvalOptions& opts) {
  torch::NoGradGuard no_grad;
  generation::RolloutEngineOptions eo;
  eo.max_batch_size = std::max(opts.batch_size, samples);
  eo.eos_token_ids = {codec.eos_id()};
  generation::RolloutEngine engine(model, eo);
  generation::SamplingParams sp;
  sp.num_samples = samples;
  sp.temperature = temperature;
  sp.max_new_tokens = max_new_tokens;
  sp.seed = opts.seed;
  return engine.generate(prompts, sp);
}

std::vector<std::vector<int64_t>> answer_prompts(const DemoCodec& codec, const std::vector<ArithmeticItem>& items) {
  std::vector<std::vector<int64_t>> out;
  out.reserve(items.size());
  for (const auto& it : items) out.push_back(codec.prompt_ids(it.prompt()));
  return out;
}

}  // namespace

std::vector<std::string> greedy_answers(const std::shared_ptr<model::CausalLM>& model, const DemoCodec& codec,
                                        const std::vector<ArithmeticItem>& items, const EvalOptions& opts) {
  const auto rollouts = run(model, codec, answer_prompts(codec, items), 1, 0.0, opts.max_new_tokens, opts);
  std::vector<std::string> out;
  out.reserve(items.size());
  for (const auto& r : rollouts) out.push_back(extract_answer(codec.decode(r.completions[0].token_ids)));
  return out;
}

std::vector<std::optional<Vote>> sample_votes(const std::shared_ptr<model::CausalLM>& model, const DemoCodec& codec,
                                              const std::vector<ArithmeticItem>& items, const EvalOptions& opts) {
  // With pool_commuted, item i's vote pools the k samples of "a+b" and the k samples of "b+a".
  std::vector<ArithmeticItem> asked = items;
  if (opts.pool_commuted)
    for (const auto& it : items) {
      ArithmeticItem c = it;
      std::swap(c.a, c.b);
      asked.push_back(c);
    }
  const auto rollouts =
      run(model, codec, answer_prompts(codec, asked), opts.k, opts.temperature, opts.max_new_tokens, opts);
  std::vector<std::optional<Vote>> out;
  out.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    std::vector<std::string> answers;
    for (size_t r = i; r < rollouts.size(); r += items.size())
      for (const auto& c : rollouts[r].completions) {
        answers.push_back(extract_answer(codec.decode(c.token_ids)));
        if (opts.length_filter && !well_formed_answer(items[i], answers.back()))
          answers.back().clear();  // malformed: no vote, but it lowers the share
      }
    out.push_back(majority_vote(answers));
  }
  return out;
}

EvalResult evaluate(const std::shared_ptr<model::CausalLM>& model, const DemoCodec& codec,
                    const std::vector<ArithmeticItem>& items, const EvalOptions& opts) {
  SELFRL_CHECK(!items.empty(), "evaluate: no items");
  SELFRL_CHECK(opts.k >= 1, "evaluate: k must be >= 1, got ", opts.k);
  EvalResult res;
  res.n = static_cast<int64_t>(items.size());
  const auto greedy = greedy_answers(model, codec, items, opts);
  const auto sampled =
      run(model, codec, answer_prompts(codec, items), opts.k, opts.temperature, opts.max_new_tokens, opts);
  std::vector<std::vector<int64_t>> can_prompts;
  for (const auto& it : items) can_prompts.push_back(codec.prompt_ids(it.can_prompt()));
  const auto can = run(model, codec, can_prompts, 1, 0.0, 3, opts);

  std::map<int, std::pair<int64_t, int64_t>> by_diff;  // difficulty → (correct, total)
  double correct = 0, maj = 0, pass = 0, share = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string gold = items[i].answer();
    const bool ok = greedy[i] == gold;
    res.greedy_correct.push_back(ok);
    correct += ok;
    auto& d = by_diff[items[i].difficulty];
    d.first += ok, d.second += 1;
    std::vector<std::string> answers;
    bool any = false;
    for (const auto& c : sampled[i].completions) {
      answers.push_back(extract_answer(codec.decode(c.token_ids)));
      any = any || answers.back() == gold;
    }
    pass += any;
    const auto vote = majority_vote(answers);
    if (vote) {
      maj += vote->answer == gold;
      share += vote->share;
    }
    const std::string said = codec.decode(can[i].completions[0].token_ids);
    res.predicted_yes.push_back(said.find("yes") != std::string::npos);
  }
  const double n = static_cast<double>(items.size());
  res.accuracy = correct / n;
  res.maj_at_k = maj / n;
  res.pass_at_k = pass / n;
  res.mean_vote_share = share / n;
  res.self_knowledge_f1 = self_knowledge_f1(res.predicted_yes, res.greedy_correct);
  res.yes_rate = std::count(res.predicted_yes.begin(), res.predicted_yes.end(), true) / n;
  for (const auto& [d, c] : by_diff) res.accuracy_by_difficulty[d] = static_cast<double>(c.first) / c.second;
  return res;
}

}  // namespace selfrl::demo
