// Addition items, their text formats and the seeded, pairwise-disjoint splits.
#include "demo/arithmetic_task.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <random>
#include <set>
#include <utility>

#include "selfrl/core/error.h"
#include "selfrl/core/seed.h"
#include "selfrl/io/jsonl.h"

namespace selfrl::demo {

namespace {

int64_t pow10(int d) {
  int64_t p = 1;
  for (int i = 0; i < d; ++i) p *= 10;
  return p;
}

int num_digits(int64_t x) {
  int d = 1;
  while (x >= 10) x /= 10, ++d;
  return d;
}

// One item of difficulty d: the longer operand has exactly d digits, the other 1 … d digits.
ArithmeticItem draw_item(int d, std::mt19937_64& rng) {
  auto with_digits = [&](int n) {
    const int64_t lo = n == 1 ? 0 : pow10(n - 1);
    return std::uniform_int_distribution<int64_t>(lo, pow10(n) - 1)(rng);
  };
  const int64_t big = with_digits(d);
  const int64_t small = with_digits(std::uniform_int_distribution<int>(1, d)(rng));
  ArithmeticItem it;
  if (rng() & 1) {
    it.a = big, it.b = small;
  } else {
    it.a = small, it.b = big;
  }
  it.difficulty = d;
  return it;
}

}  // namespace

std::string ArithmeticItem::padded(int64_t x, int width) {
  std::string s = std::to_string(x);
  if (static_cast<int>(s.size()) < width) s.insert(0, width - s.size(), '0');
  return s;
}

std::string ArithmeticItem::question() const {
  const std::string x = padded(a, width + 1), y = padded(b, width + 1);
  return std::string(x.rbegin(), x.rend()) + "+" + std::string(y.rbegin(), y.rend());
}
std::string ArithmeticItem::prompt() const { return "Q: " + question() + " ="; }
std::string ArithmeticItem::can_prompt() const { return "Q: " + question() + " ? CAN:"; }
std::string ArithmeticItem::answer() const {
  std::string s = padded(a + b, width + 1);
  return std::string(s.rbegin(), s.rend());
}
int64_t ArithmeticItem::parse_answer(const std::string& reversed) {
  SELFRL_CHECK(!reversed.empty() && reversed.size() <= 18, "not a reversed decimal answer: \"", reversed, "\"");
  int64_t v = 0;
  for (auto it = reversed.rbegin(); it != reversed.rend(); ++it) {
    SELFRL_CHECK(std::isdigit(static_cast<unsigned char>(*it)), "not a reversed decimal answer: \"", reversed, "\"");
    v = 10 * v + (*it - '0');
  }
  return v;
}

nlohmann::json ArithmeticItem::to_json() const {
  return {{"prompt", prompt()}, {"answer", answer()}, {"difficulty", difficulty}, {"a", a}, {"b", b},
          {"sum", a + b},       {"width", width}};
}

ArithmeticItem ArithmeticItem::from_json(const nlohmann::json& row) {
  for (const char* key : {"a", "b"})
    if (!row.contains(key) || !row[key].is_number_integer())
      throw Error(std::string("row has no integer \"") + key + "\"").hint("rows come from selfrl demo's data/*.jsonl");
  ArithmeticItem it;
  it.a = row["a"].get<int64_t>();
  it.b = row["b"].get<int64_t>();
  it.difficulty = std::max(num_digits(it.a), num_digits(it.b));
  it.width = row.value("width", it.difficulty);
  return it;
}

TaskSplits generate_splits(const TaskConfig& cfg) {
  SELFRL_CHECK(cfg.max_digits >= 1 && cfg.max_digits <= 9, "max_digits must be in 1..9, got ", cfg.max_digits);
  auto check_weights = [&](const std::vector<double>& w, const char* name) {
    if (static_cast<int>(w.size()) != cfg.max_digits)
      throw Error(detail::concat(name, " has ", w.size(), " entries, expected max_digits = ", cfg.max_digits));
    double total = 0;
    for (double x : w) {
      SELFRL_CHECK(x >= 0, name, " has a negative weight ", x);
      total += x;
    }
    SELFRL_CHECK(total > 0, name, " are all zero");
  };
  check_weights(cfg.difficulty_weights, "difficulty_weights");
  const auto& seed_w = cfg.seed_difficulty_weights.empty() ? cfg.difficulty_weights : cfg.seed_difficulty_weights;
  check_weights(seed_w, "seed_difficulty_weights");

  auto rng = make_engine(cfg.seed, {0xda7a});
  std::set<std::pair<int64_t, int64_t>> used;
  TaskSplits out;
  auto fill = [&](std::vector<ArithmeticItem>& split, int64_t n, const std::vector<double>& w, const char* name) {
    std::discrete_distribution<int> pick(w.begin(), w.end());
    int64_t attempts = 0;
    while (static_cast<int64_t>(split.size()) < n) {
      if (++attempts > 50 * n + 1000)
        throw Error(detail::concat("could not draw ", n, " distinct items for the ", name, " split"))
            .hint("raise max_digits or lower the weight of the small difficulties");
      auto it = draw_item(pick(rng) + 1, rng);
      it.width = cfg.max_digits;
      if (used.insert({it.a, it.b}).second) split.push_back(it);
    }
  };
  // Held-out sets first, so their mix is exactly the configured one.
  fill(out.eval_test, cfg.num_eval_test, cfg.difficulty_weights, "eval_test");
  fill(out.eval_dev, cfg.num_eval_dev, cfg.difficulty_weights, "eval_dev");
  fill(out.seed, cfg.num_seed, seed_w, "seed");
  fill(out.unlabelled, cfg.num_unlabelled, cfg.difficulty_weights, "unlabelled");
  return out;
}

void write_splits(const TaskSplits& s, const std::string& dir) {
  std::filesystem::create_directories(dir);
  auto write = [&](const std::vector<ArithmeticItem>& items, const std::string& name) {
    io::JsonlWriter w(dir + "/" + name + ".jsonl");
    for (const auto& it : items) w.write(it.to_json());
    w.close();
  };
  write(s.seed, "seed");
  write(s.unlabelled, "unlabelled");
  write(s.eval_dev, "eval_dev");
  write(s.eval_test, "eval_test");
}

std::string extract_answer(const std::string& completion) {
  size_t i = 0;
  while (i < completion.size() && !std::isdigit(static_cast<unsigned char>(completion[i]))) ++i;
  size_t j = i;
  while (j < completion.size() && std::isdigit(static_cast<unsigned char>(completion[j]))) ++j;
  return completion.substr(i, j - i);
}

bool well_formed_answer(const ArithmeticItem& item, const std::string& answer) {
  return answer.size() == static_cast<size_t>(item.width + 1) &&
         std::all_of(answer.begin(), answer.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

std::string answer_pattern(int max_digits, bool length_filter) {
  return length_filter ? "^\\D*(\\d{" + std::to_string(max_digits + 1) + "})(?!\\d)" : "^\\D*(\\d+)";
}

}  // namespace selfrl::demo
