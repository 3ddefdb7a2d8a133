// Every loss and advantage option against an independent Python implementation of the same
// published formulas (tests/python/loss_reference.py), values and gradients, in float64.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "selfrl/io/safetensors.h"
#include "selfrl/trainers/advantages.h"
#include "selfrl/trainers/grpo_loss.h"
#include "selfrl/trainers/preference_loss.h"
#include "test_util.h"

using namespace selfrl::trainers;

namespace {

class LossReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new selfrl::test::TempDir();
    torch::manual_seed(1234);
    const auto opts = torch::TensorOptions().dtype(torch::kDouble);
    const int64_t B = 8, T = 12, P = 6;
    auto logps = -torch::rand({B, T}, opts) * 3;
    auto old = logps + 0.3 * torch::randn({B, T}, opts);  // ratios spread across both clip edges
    auto mask = torch::ones({B, T}, opts);
    for (int64_t b = 0; b < B; ++b) mask.index_put_({b, torch::indexing::Slice(3 + b, torch::indexing::None)}, 0.0);
    auto rpf = torch::randint(0, 3, {16, 2}, opts);
    rpf.index_put_({1, 0}, std::nan(""));                  // one function fails on one sample
    rpf.index_put_({6}, std::nan(""));                     // a sample no function can score
    rpf.index_put_({torch::indexing::Slice(8, 12)}, 1.0);  // a zero-std group
    inputs_ = {
        {"logps", logps},
        {"old_logps", old},
        {"ref_logps", logps + 0.2 * torch::randn({B, T}, opts)},
        {"mask", mask},
        {"advantages", torch::randn({B}, opts)},
        {"rewards_per_func", rpf},
        {"chosen_logps", -torch::rand({P}, opts) * 20},
        {"rejected_logps", -torch::rand({P}, opts) * 20},
        {"ref_chosen_logps", -torch::rand({P}, opts) * 20},
        {"ref_rejected_logps", -torch::rand({P}, opts) * 20},
        {"chosen_lengths", torch::randint(1, 30, {P}, opts)},
        {"rejected_lengths", torch::randint(1, 30, {P}, opts)},
        {"vote_weights", torch::rand({P}, opts)},
    };
    const std::string in = dir_->file("in.safetensors"), out = dir_->file("out.safetensors");
    selfrl::io::save_safetensors(in, inputs_);
    const auto r = selfrl::test::run_command(selfrl::test::python() + " " + selfrl::test::source_dir() +
                                             "/tests/python/loss_reference.py " + in + " " + out);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ref_ = new selfrl::io::SafeTensorsFile(selfrl::io::SafeTensorsFile::open(out));
  }
  static void TearDownTestSuite() {
    delete ref_;
    delete dir_;
  }
  static torch::Tensor in(const std::string& name) {
    for (const auto& [n, t] : inputs_)
      if (n == name) return t;
    throw std::runtime_error("no input " + name);
  }
  static torch::Tensor want(const std::string& name) { return ref_->tensor(name).clone(); }

  static void expect_close(const torch::Tensor& got, const torch::Tensor& expected, const std::string& what) {
    ASSERT_EQ(got.sizes(), expected.sizes()) << what;
    const double diff = (got.to(torch::kDouble) - expected).abs().max().item<double>();
    EXPECT_LT(diff, 1e-10) << what << ": max abs diff " << diff;
  }

  void check_grpo(const std::string& name, GRPOLossConfig cfg, double items = -1, int64_t procs = 1, int64_t ga = 1) {
    auto logps = in("logps").clone().requires_grad_(true);
    GRPOLossInputs x;
    x.logps = logps;
    x.old_logps = in("old_logps");
    x.ref_logps = in("ref_logps");
    x.mask = in("mask");
    x.advantages = in("advantages");
    x.num_items_in_batch = items;
    x.num_processes = procs;
    x.gradient_accumulation_steps = ga;
    cfg.epsilon_high = 0.28;
    cfg.max_completion_length = 16;
    const auto out = grpo_loss(x, cfg);
    out.loss.backward();
    expect_close(out.loss.reshape({1}), want(name + ".loss"), name + " loss");
    expect_close(logps.grad(), want(name + ".grad"), name + " grad");
  }

  static selfrl::test::TempDir* dir_;
  static selfrl::io::NamedTensors inputs_;
  static selfrl::io::SafeTensorsFile* ref_;
};
selfrl::test::TempDir* LossReference::dir_ = nullptr;
selfrl::io::NamedTensors LossReference::inputs_;
selfrl::io::SafeTensorsFile* LossReference::ref_ = nullptr;

PreferenceBatch pairs(const std::function<torch::Tensor(const std::string&)>& in, torch::Tensor pc, torch::Tensor pr) {
  PreferenceBatch b;
  b.chosen_logps = pc;
  b.rejected_logps = pr;
  b.ref_chosen_logps = in("ref_chosen_logps");
  b.ref_rejected_logps = in("ref_rejected_logps");
  b.chosen_lengths = in("chosen_lengths");
  b.rejected_lengths = in("rejected_lengths");
  return b;
}

}  // namespace

TEST_F(LossReference, GrpoEveryLossTypeLevelAndBeta) {
  for (const std::string lt : {"grpo", "bnpo", "dr_grpo", "dapo"}) {
    for (const std::string level : {"token", "sequence"}) {
      for (const double beta : {0.0, 0.04}) {
        GRPOLossConfig cfg;
        cfg.loss_type = parse_grpo_loss_type(lt);
        cfg.importance_sampling_level = parse_importance_sampling_level(level);
        cfg.beta = beta;
        check_grpo("grpo." + lt + "." + level + "." + (beta == 0 ? "0.0" : "0.04"), cfg);
      }
    }
  }
}

TEST_F(LossReference, GrpoDeltaNormalizersAndAccumulation) {
  GRPOLossConfig cfg;
  cfg.delta = 1.5;
  check_grpo("grpo.dapo.token.delta", cfg);
  check_grpo("grpo.dapo.token.items", GRPOLossConfig{}, 200.0, 2);
  GRPOLossConfig bnpo;
  bnpo.loss_type = GRPOLossType::kBnpo;
  bnpo.beta = 0.04;
  check_grpo("grpo.bnpo.token.ga", bnpo, -1, 1, 4);
}

TEST_F(LossReference, AdvantagesEveryScale) {
  const auto w = torch::tensor({1.0, 0.5}, torch::kDouble);
  for (const std::string scale : {"group", "batch", "none"}) {
    const auto a = compute_advantages(in("rewards_per_func"), w, 4, parse_scale_rewards(scale));
    expect_close(a.advantages, want("adv." + scale), "advantages " + scale);
    EXPECT_EQ(a.num_unscorable, 1);
    EXPECT_EQ(a.advantages[6].item<double>(), 0.0);
    EXPECT_DOUBLE_EQ(a.frac_reward_zero_std, a.zero_std_groups.to(torch::kDouble).mean().item<double>());
    EXPECT_TRUE(a.zero_std_groups[2].item<bool>());  // rows 8..11 all reward 1.5
  }
}

TEST_F(LossReference, DpoEveryLossType) {
  auto in_fn = [](const std::string& n) { return in(n); };
  for (const std::string lt : {"sigmoid", "hinge", "ipo", "robust", "sft"}) {
    auto pc = in("chosen_logps").clone().requires_grad_(true);
    auto pr = in("rejected_logps").clone().requires_grad_(true);
    DPOLossConfig cfg;
    cfg.loss_type = {lt};
    cfg.label_smoothing = lt == "robust" ? 0.2 : 0.0;
    const auto out = dpo_loss(pairs(in_fn, pc, pr), cfg);
    out.loss.backward();
    expect_close(out.loss.reshape({1}), want("dpo." + lt + ".loss"), "dpo " + lt);
    const auto gr = pr.grad().defined() ? pr.grad() : torch::zeros_like(pr);  // sft ignores rejected
    expect_close(torch::stack({pc.grad(), gr}), want("dpo." + lt + ".grad"), "dpo grad " + lt);
  }
  struct Case {
    std::string name;
    DPOLossConfig cfg;
  };
  DPOLossConfig cdpo;
  cdpo.label_smoothing = 0.1;
  DPOLossConfig mix;
  mix.loss_type = {"sigmoid", "sft"};
  mix.loss_weights = {1.0, 0.3};
  for (const auto& c : std::vector<Case>{{"dpo.cdpo", cdpo}, {"dpo.sigmoid+sft", mix}}) {
    auto pc = in("chosen_logps").clone().requires_grad_(true);
    auto pr = in("rejected_logps").clone().requires_grad_(true);
    const auto out = dpo_loss(pairs(in_fn, pc, pr), c.cfg);
    out.loss.backward();
    expect_close(out.loss.reshape({1}), want(c.name + ".loss"), c.name);
    expect_close(torch::stack({pc.grad(), pr.grad()}), want(c.name + ".grad"), c.name + " grad");
  }
}

TEST_F(LossReference, ScpoAndSft) {
  auto in_fn = [](const std::string& n) { return in(n); };
  auto pc = in("chosen_logps").clone().requires_grad_(true);
  auto pr = in("rejected_logps").clone().requires_grad_(true);
  const auto out = scpo_loss(pairs(in_fn, pc, pr), in("vote_weights"), 0.5, 1.0);
  out.loss.backward();
  expect_close(out.loss.reshape({1}), want("scpo.loss"), "scpo");
  expect_close(torch::stack({pc.grad(), pr.grad()}), want("scpo.grad"), "scpo grad");

  auto logps = in("logps").clone().requires_grad_(true);
  const auto l = sft_loss(logps, in("mask"));
  l.backward();
  expect_close(l.reshape({1}), want("sft.loss"), "sft");
  expect_close(logps.grad(), want("sft.grad"), "sft grad");
}
