// Evaluation: greedy accuracy, maj@k and unbiased pass@k against reference answers.
#include "selfrl/eval/evaluator.h"

#include <cmath>
#include <limits>
#include <map>

#include "selfrl/core/error.h"
#include "selfrl/core/progress.h"
#include "selfrl/core/seed.h"
#include "selfrl/generation/rollout_engine.h"

namespace selfrl::eval {

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  SELFRL_CHECK(n >= 1 && k >= 1 && k <= n && c >= 0 && c <= n, "pass_at_k: need 1 <= k <= n and 0 <= c <= n, got n=", n,
               " c=", c, " k=", k);
  // Codex paper: if n − c < k every k-subset holds a correct sample.
  if (n - c < k) return 1.0;
  double prod = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) prod *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - prod;
}

std::optional<std::string> majority_answer(const std::vector<std::optional<std::string>>& answers) {
  std::map<std::string, int64_t> votes;
  std::vector<std::string> order;
  for (const auto& a : answers) {
    if (!a) continue;
    if (votes[*a]++ == 0) order.push_back(*a);
  }
  std::optional<std::string> best;
  int64_t best_votes = 0;
  for (const auto& a : order)
    if (votes[a] > best_votes) best = a, best_votes = votes[a];
  return best;
}

rewards::AnswerExtractor parse_extractor(const std::string& spec) {
  if (spec.rfind("regex:", 0) == 0) return rewards::AnswerExtractor::create("regex", spec.substr(6));
  if (spec == "last_number" || spec == "boxed" || spec == "exact") return rewards::AnswerExtractor::create(spec);
  throw Error("unknown answer extractor '" + spec + "'").hint("use last_number, boxed, exact or regex:PATTERN");
}

void score(EvalResult& r, int64_t k, int64_t n) {
  r.k = k;
  r.n = n;
  r.num_examples = static_cast<int64_t>(r.examples.size());
  double acc = 0, maj = 0, pass = 0, answered = 0;
  for (auto& e : r.examples) {
    e.greedy_correct = e.greedy_answer && *e.greedy_answer == e.reference;
    acc += e.greedy_correct;
    answered += e.greedy_answer.has_value();
    if (k > 1) {
      e.num_correct = 0;
      for (const auto& a : e.sample_answers) e.num_correct += a && *a == e.reference;
      std::vector<std::optional<std::string>> first_k(
          e.sample_answers.begin(), e.sample_answers.begin() + std::min<size_t>(k, e.sample_answers.size()));
      e.majority = majority_answer(first_k);
      e.majority_correct = e.majority && *e.majority == e.reference;
      maj += e.majority_correct;
      pass += pass_at_k(static_cast<int64_t>(e.sample_answers.size()), e.num_correct, k);
    }
  }
  const double N = std::max<double>(1.0, static_cast<double>(r.num_examples));
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  r.accuracy = acc / N;
  r.answered = answered / N;
  r.maj_at_k = k > 1 ? maj / N : kNaN;
  r.pass_at_k = k > 1 ? pass / N : kNaN;
}

namespace {
std::vector<generation::Rollout> generate_with_bar(generation::RolloutEngine& engine,
                                                   const std::vector<std::vector<int64_t>>& prompts,
                                                   const generation::SamplingParams& sp, int64_t batch_prompts,
                                                   const std::string& label) {
  ProgressBar bar(label, static_cast<int64_t>(prompts.size()), "prompts");
  std::vector<generation::Rollout> out;
  for (size_t first = 0; first < prompts.size(); first += static_cast<size_t>(batch_prompts)) {
    const size_t last = std::min(prompts.size(), first + static_cast<size_t>(batch_prompts));
    std::vector<std::vector<int64_t>> chunk(prompts.begin() + first, prompts.begin() + last);
    std::vector<uint64_t> seeds;
    for (size_t i = first; i < last; ++i) seeds.push_back(derive_seed(sp.seed, {i}));
    auto part = engine.generate(chunk, sp, seeds, [&bar](int64_t done) { bar.advance(done); });
    for (auto& r : part) out.push_back(std::move(r));
  }
  bar.finish();
  return out;
}
}  // namespace

EvalResult evaluate(const std::shared_ptr<model::CausalLM>& model, const Decoder& decode,
                    const std::vector<data::Prompt>& prompts, const rewards::AnswerExtractor& extractor,
                    const EvalOptions& o, const std::vector<int64_t>& eos_token_ids) {
  SELFRL_CHECK(o.samples >= 1, "eval samples must be >= 1, got ", o.samples);
  const int64_t k = o.samples;
  const int64_t n = std::max(k, o.n);
  EvalResult r;
  std::vector<std::vector<int64_t>> ids;
  for (const auto& p : prompts) {
    if (!p.answer)
      throw Error("evaluation row has no answer field").at(p.where).hint("add \"answer\" to every evaluation row");
    ids.push_back(p.ids);
    ExampleResult e;
    e.where = p.where;
    e.reference = rewards::normalize_answer(*p.answer);
    r.examples.push_back(std::move(e));
  }
  torch::NoGradGuard ng;
  model->eval();
  generation::RolloutEngineOptions eo;
  eo.max_batch_size = std::max<int64_t>(o.batch_size, n);
  eo.continuous_batching = o.continuous_batching;
  eo.share_prompt_cache = o.share_prompt_cache;
  eo.kv_block_size = o.kv_block_size;
  eo.eos_token_ids = eos_token_ids;
  generation::RolloutEngine engine(model, eo);
  generation::SamplingParams greedy;
  greedy.temperature = 0;
  greedy.num_samples = 1;
  greedy.max_new_tokens = o.max_new_tokens;
  greedy.seed = o.seed;
  // Waves: chunks of one wave; continuous batching: all prompts in one call (progress per prompt
  // either way).
  const int64_t all = std::max<int64_t>(1, static_cast<int64_t>(ids.size()));
  const auto g = generate_with_bar(
      engine, ids, greedy, o.continuous_batching ? all : std::max<int64_t>(1, o.batch_size), o.label + " greedy");
  double tokens = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const auto& c = g[i].completions.at(0);
    tokens += static_cast<double>(c.token_ids.size());
    r.examples[i].greedy_completion = decode(c.token_ids);
    r.examples[i].greedy_answer = extractor.extract(r.examples[i].greedy_completion);
  }
  r.mean_completion_tokens = tokens / std::max<double>(1.0, static_cast<double>(g.size()));
  if (k > 1) {
    generation::SamplingParams sp = greedy;
    sp.temperature = o.temperature;
    sp.top_p = o.top_p;
    sp.num_samples = n;
    sp.seed = derive_seed(o.seed, {1});
    const auto s = generate_with_bar(
        engine, ids, sp, o.continuous_batching ? all : std::max<int64_t>(1, o.batch_size / n), o.label + " sample");
    for (size_t i = 0; i < s.size(); ++i)
      for (const auto& c : s[i].completions)
        r.examples[i].sample_answers.push_back(extractor.extract(decode(c.token_ids)));
  }
  score(r, k, n);
  if (!o.keep_per_example) r.examples.clear();
  return r;
}

nlohmann::json EvalResult::to_json() const {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json j = {{"num_examples", num_examples},
                      {"k", k},
                      {"n", n},
                      {"accuracy", num(accuracy)},
                      {"answered", num(answered)},
                      {"mean_completion_tokens", num(mean_completion_tokens)}};
  if (k > 1) {
    j["maj@" + std::to_string(k)] = num(maj_at_k);
    j["pass@" + std::to_string(k)] = num(pass_at_k);
  }
  nlohmann::json ex = nlohmann::json::array();
  for (const auto& e : examples) {
    nlohmann::json x = {{"where", e.where},
                        {"reference", e.reference},
                        {"greedy_completion", e.greedy_completion},
                        {"greedy_answer", e.greedy_answer ? nlohmann::json(*e.greedy_answer) : nlohmann::json(nullptr)},
                        {"greedy_correct", e.greedy_correct}};
    if (k > 1) {
      x["num_correct"] = e.num_correct;
      x["majority"] = e.majority ? nlohmann::json(*e.majority) : nlohmann::json(nullptr);
      x["majority_correct"] = e.majority_correct;
    }
    ex.push_back(std::move(x));
  }
  if (!ex.empty()) j["examples"] = std::move(ex);
  return j;
}

metrics::Scalars EvalResult::to_scalars(const std::string& prefix) const {
  metrics::Scalars s{{prefix + "accuracy", accuracy},
                     {prefix + "answered", answered},
                     {prefix + "mean_completion_tokens", mean_completion_tokens}};
  if (k > 1) {
    s[prefix + "maj@k"] = maj_at_k;
    s[prefix + "pass@k"] = pass_at_k;
  }
  return s;
}

}  // namespace selfrl::eval
