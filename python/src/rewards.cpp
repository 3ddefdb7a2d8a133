// Rewards from Python: the built-ins as objects, Python functions with TRL's reward signature
// as libselfrl rewards, and the registry recipes resolve names through.
#include <cmath>

#include "common.h"
#include "selfrl/core/error.h"
#include "selfrl/eval/evaluator.h"
#include "selfrl/rewards/reward_registry.h"

namespace selfrl::python {

namespace {

// TRL's reward function contract: fn(prompts, completions, completion_ids, **columns) returns
// one float (or None: unscorable) per completion. libselfrl scores a group (the G completions
// of one prompt) at a time, so each call sees one prompt repeated G times, as a TRL batch
// holding one prompt's generations does; every dataset column but prompt / completion /
// completion_ids arrives as a keyword argument with one value per completion.
class PyFunctionReward : public rewards::Reward {
 public:
  PyFunctionReward(std::string name, py::function fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  ~PyFunctionReward() override {
    if (!Py_IsInitialized()) {
      fn_.release();  // the interpreter is gone: leak rather than touch it
      return;
    }
    py::gil_scoped_acquire gil;
    fn_ = py::function();
  }
  std::string name() const override { return name_; }

  rewards::GroupScores score(const rewards::Group& g) override {
    py::gil_scoped_acquire gil;
    const size_t n = g.samples.size();
    py::list prompts, completions, ids;
    for (const auto& s : g.samples) {
      prompts.append(py::str(g.prompt));
      completions.append(py::str(s.completion));
      ids.append(py::cast(s.completion_ids));
    }
    py::dict kwargs;
    if (g.example.is_object())
      for (auto it = g.example.begin(); it != g.example.end(); ++it) {
        if (it.key() == "prompt" || it.key() == "completion" || it.key() == "completion_ids") continue;
        py::list column;
        for (size_t i = 0; i < n; ++i) column.append(to_python(it.value()));
        kwargs[py::str(it.key())] = column;
      }
    const std::string at = g.step >= 0 ? "step " + std::to_string(g.step) : std::string("reward");
    py::object out;
    try {
      out = fn_(prompts, completions, ids, **kwargs);
    } catch (py::error_already_set& e) {
      throw Error("reward '" + name_ + "' raised " + std::string(e.what()))
          .at(at)
          .hint(
              "its samples count as unscorable for this group; fix the function (it is called as "
              "fn(prompts, completions, completion_ids, **columns))");
    }
    rewards::GroupScores gs;
    if (out.is_none() || py::isinstance<py::str>(out) || !py::isinstance<py::sequence>(out))
      throw Error("reward '" + name_ + "' returned " + py::str(py::type::of(out).attr("__name__")).cast<std::string>() +
                  ", not a list of " + std::to_string(n) + " scores")
          .at(at)
          .hint("return one float (or None for unscorable) per completion");
    auto seq = py::reinterpret_borrow<py::sequence>(out);
    if (seq.size() != n)
      throw Error("reward '" + name_ + "' returned " + std::to_string(seq.size()) + " values for " + std::to_string(n) +
                  " completions")
          .at(at)
          .hint("return exactly one float (or None) per completion; nothing is broadcast");
    for (size_t i = 0; i < n; ++i) {
      py::object v = seq[i];
      if (v.is_none()) {
        gs.scores.push_back(rewards::kUnscorable);
      } else if (py::isinstance<py::str>(v) || !(py::hasattr(v, "__float__"))) {
        throw Error("reward '" + name_ + "' returned " + py::str(py::repr(v)).cast<std::string>() + " for completion " +
                    std::to_string(i) + ", not a number")
            .at(at)
            .hint("scores must be floats (or None for unscorable)");
      } else {
        gs.scores.push_back(v.attr("__float__")().cast<double>());
      }
    }
    return gs;
  }

 private:
  std::string name_;
  py::function fn_;
};

rewards::RewardArgs make_args(const std::string& extractor, const std::string& answer_field,
                              int64_t max_completion_length, double borda_power, const std::string& format_pattern,
                              double consensus_min_vote_share) {
  rewards::RewardArgs a;
  a.extractor = eval::parse_extractor(extractor);
  a.answer_field = answer_field;
  a.max_completion_length = max_completion_length;
  a.borda_power = borda_power;
  a.format_pattern = format_pattern;
  a.consensus_min_vote_share = consensus_min_vote_share;
  return a;
}

py::object scores_to_python(const std::vector<double>& s) {
  py::list l;
  for (double v : s) l.append(std::isfinite(v) ? py::object(py::float_(v)) : py::object(py::none()));
  return std::move(l);
}

}  // namespace

rewards::RewardPtr make_python_reward(const std::string& name, py::function fn) {
  return std::make_shared<PyFunctionReward>(name, std::move(fn));
}

void bind_rewards(py::module_& m) {
  py::class_<rewards::Reward, std::shared_ptr<rewards::Reward>>(
      m, "Reward", "A libselfrl reward: scores the G completions of one prompt.")
      .def_property_readonly("name", &rewards::Reward::name)
      .def(
          "score_group",
          [](rewards::Reward& r, const std::string& prompt, const std::vector<std::string>& completions,
             std::optional<std::vector<std::vector<int64_t>>> completion_ids,
             std::optional<std::vector<std::vector<float>>> self_certainty, py::object row, bool truncated) {
            rewards::Group g;
            g.prompt = prompt;
            g.example = to_json(row);
            for (size_t i = 0; i < completions.size(); ++i) {
              rewards::Sample s;
              s.completion = completions[i];
              if (completion_ids) s.completion_ids = completion_ids->at(i);
              if (self_certainty) s.token_self_certainty = self_certainty->at(i);
              s.truncated = truncated;
              g.samples.push_back(std::move(s));
            }
            rewards::GroupScores gs;
            {
              py::gil_scoped_release release;
              gs = r.score(g);
            }
            return py::make_tuple(scores_to_python(gs.scores), to_python(gs.info));
          },
          py::arg("prompt"), py::arg("completions"), py::arg("completion_ids") = py::none(),
          py::arg("self_certainty") = py::none(), py::arg("row") = py::none(), py::arg("truncated") = false);

  m.def(
      "make_reward",
      [](const std::string& name, const std::string& answer_extractor, const std::string& answer_field,
         int64_t max_completion_length, double borda_power, const std::string& format_pattern,
         double consensus_min_vote_share) {
        return rewards::make_reward(name, make_args(answer_extractor, answer_field, max_completion_length, borda_power,
                                                    format_pattern, consensus_min_vote_share));
      },
      py::arg("name"), py::arg("answer_extractor") = "last_number", py::arg("answer_field") = "answer",
      py::arg("max_completion_length") = 64, py::arg("borda_power") = 0.5, py::arg("format_pattern") = "",
      py::arg("consensus_min_vote_share") = 0.0);
  m.def("python_reward", &make_python_reward, py::arg("name"), py::arg("fn"));
  m.def(
      "register_reward",
      [](const std::string& name, rewards::RewardPtr reward, const std::string& doc) {
        rewards::register_reward(
            name, [reward](const rewards::RewardArgs&) { return reward; }, doc);
      },
      py::arg("name"), py::arg("reward"), py::arg("doc") = "");
  m.def("unregister_reward", &rewards::unregister_reward, py::arg("name"));
  m.def("registered_rewards", [] {
    py::list out;
    for (const auto& e : rewards::registered_rewards()) out.append(py::make_tuple(e.name, e.doc, e.builtin));
    return out;
  });
}

}  // namespace selfrl::python
