// Runs from Python: a recipe (file or keys) → loops::Run with hooks that report metrics to
// Python, poll Ctrl-C at step boundaries and draw progress bars through a Python sink. Every
// long call releases the GIL; the hooks take it back only for as long as they run Python.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "common.h"
#include "selfrl/core/error.h"
#include "selfrl/core/interrupt.h"
#include "selfrl/core/logging.h"
#include "selfrl/core/progress.h"
#include "selfrl/loops/run.h"
#include "selfrl/recipe/recipe.h"
#include "selfrl/loops/guard_replay.h"
#include "selfrl/trainers/label_free.h"

namespace selfrl::python {

namespace {

// Holds a Python object and drops it under the GIL (hooks live in C++ objects that may die
// while the GIL is released).
struct PyRef {
  explicit PyRef(py::object o) : obj(std::move(o)) {}
  ~PyRef() {
    if (!Py_IsInitialized()) {
      obj.release();
      return;
    }
    py::gil_scoped_acquire gil;
    obj = py::object();
  }
  py::object obj;
};

py::dict scalars_to_dict(const metrics::Scalars& m) {
  py::dict d;
  for (const auto& [k, v] : m) d[py::str(k)] = v;
  return d;
}

class PySink : public ProgressBar::Sink {
 public:
  explicit PySink(py::object target) : target_(std::make_shared<PyRef>(std::move(target))) {}
  int64_t open(const std::string& label, int64_t total, const std::string& unit) override {
    py::gil_scoped_acquire gil;
    try {
      return target_->obj.attr("open")(label, total, unit).cast<int64_t>();
    } catch (py::error_already_set&) {
      return -1;
    }
  }
  void update(int64_t handle, int64_t done, const std::string& postfix) override {
    py::gil_scoped_acquire gil;
    try {
      target_->obj.attr("update")(handle, done, postfix);
    } catch (py::error_already_set&) {}
  }
  void close(int64_t handle) override {
    py::gil_scoped_acquire gil;
    try {
      target_->obj.attr("close")(handle);
    } catch (py::error_already_set&) {}
  }

 private:
  std::shared_ptr<PyRef> target_;
};

// The recipe a Python call describes: a file (with overrides) or YAML text (with overrides).
loops::TrainConfig read_config(const std::string& path, const std::string& text,
                               const std::vector<std::string>& overrides, const std::string& name) {
  auto r = path.empty() ? recipe::Recipe::parse(text, name, overrides) : recipe::Recipe::load(path, overrides);
  return loops::read_train_config(r);
}

struct PyRunState {
  std::unique_ptr<loops::Run> run;
  std::shared_ptr<PyRef> on_log;
  std::shared_ptr<std::atomic<bool>> stop = std::make_shared<std::atomic<bool>>(false);
};

// Runs `work` on a worker thread while this (main) thread waits with the GIL released, waking
// every 50 ms to run Python's signal handlers. Ctrl-C (SIGINT → KeyboardInterrupt, in a terminal
// or a Jupyter kernel) thus lands here, never inside a Python callback the run is executing
// (rewards, on_log, progress bars run on the worker), and becomes a stop request that the run
// honours at its next step boundary.
template <typename T>
T run_interruptible(PyRunState& s, const std::function<T()>& work, bool raise_after = false) {
  s.stop->store(false);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
  T result{};
  std::thread worker([&] {
    try {
      result = work();
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  });
  {
    py::gil_scoped_release release;
    std::unique_lock<std::mutex> lock(mu);
    while (!done) {
      cv.wait_for(lock, std::chrono::milliseconds(50));
      if (done) break;
      lock.unlock();
      {
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) {  // KeyboardInterrupt (or another handler's error): stop
          PyErr_Clear();
          s.stop->store(true);
        }
      }
      lock.lock();
    }
  }
  worker.join();
  if (error) std::rethrow_exception(error);
  // step(): the step finished; the Ctrl-C that came during it still ends the caller's loop.
  if (raise_after && s.stop->load())
    throw Interrupted("stopped by request after step " + std::to_string(s.run->global_step()));
  return result;
}

}  // namespace

void bind_runs(py::module_& m) {
  py::class_<trainers::CollapseGuard>(m, "_CollapseGuard")
      .def(py::init([](const std::vector<std::string>& settings) {
             return trainers::CollapseGuard(loops::collapse_guard_settings(settings));
           }),
           py::arg("settings") = std::vector<std::string>{})
      .def("observe",
           [](trainers::CollapseGuard& g, const std::map<std::string, double>& metrics) {
             metrics::Scalars m(metrics.begin(), metrics.end());
             const auto v = g.observe(m);
             return py::make_tuple(v.flagged, v.fired, v.reason);
           })
      .def_property_readonly("fired", &trainers::CollapseGuard::fired)
      .def_property_readonly("first_bad_step", &trainers::CollapseGuard::first_bad_step)
      .def_property_readonly("settings", [](const trainers::CollapseGuard& g) {
        const auto& c = g.config();
        py::dict d;
        d["action"] = trainers::to_string(c.action);
        d["warmup_steps"] = c.warmup_steps, d["window"] = c.window, d["patience"] = c.patience;
        d["entropy_rise"] = c.entropy_rise, d["agreement_drop"] = c.agreement_drop;
        d["answered_agreement_drop"] = c.answered_agreement_drop, d["certainty_rise"] = c.certainty_rise;
        d["no_answer_rise"] = c.no_answer_rise, d["min_entropy_ratio"] = c.min_entropy_ratio;
        d["min_certainty_agreement_auroc"] = c.min_certainty_agreement_auroc;
        d["min_anchor_agreement"] = c.min_anchor_agreement;
        return d;
      });
  // metrics.jsonl lines (JSON text) → the replay as JSON text (loops::replay_collapse_guard).
  m.def(
      "_replay_collapse_guard",
      [](const std::vector<std::string>& lines, const std::vector<std::string>& settings) {
        const auto config = loops::collapse_guard_settings(settings);
        std::vector<nlohmann::json> rows;
        rows.reserve(lines.size());
        for (size_t i = 0; i < lines.size(); ++i) {
          try {
            rows.push_back(nlohmann::json::parse(lines[i]));
          } catch (const nlohmann::json::exception& e) {
            throw Error(std::string("not JSON: ") + e.what()).at("metrics row " + std::to_string(i + 1));
          }
        }
        return loops::to_json(loops::replay_collapse_guard(rows, config)).dump();
      },
      py::arg("lines"), py::arg("settings") = std::vector<std::string>{});

  py::class_<PyRunState, std::shared_ptr<PyRunState>>(m, "Run",
                                                      "One training run (a trainer or a loop), as `selfrl train`.")
      .def(py::init([](const std::string& path, const std::string& text, const std::vector<std::string>& overrides,
                       const std::string& name, std::shared_ptr<model::CausalLM> model, py::object on_log,
                       bool interruptible) {
             auto state = std::make_shared<PyRunState>();
             loops::RunHooks hooks;
             hooks.model = std::move(model);
             if (!on_log.is_none()) {
               state->on_log = std::make_shared<PyRef>(on_log);
               std::weak_ptr<PyRef> cb = state->on_log;
               hooks.on_log = [cb](int64_t step, const std::string& kind, const metrics::Scalars& s) {
                 auto ref = cb.lock();
                 if (!ref) return;
                 py::gil_scoped_acquire gil;
                 ref->obj(step, kind, scalars_to_dict(s));
               };
             }
             if (interruptible) {
               auto stop = state->stop;
               hooks.should_stop = [stop] { return stop->load(); };
             }
             loops::TrainConfig cfg = read_config(path, text, overrides, name);
             py::gil_scoped_release release;
             state->run = std::make_unique<loops::Run>(std::move(cfg), std::move(hooks));
             return state;
           }),
           py::arg("path") = "", py::arg("text") = "", py::arg("overrides") = std::vector<std::string>{},
           py::arg("name") = "<recipe>", py::arg("model") = nullptr, py::arg("on_log") = py::none(),
           py::arg("interruptible") = true)
      .def("train",
           [](PyRunState& s) {
             const auto r = run_interruptible<loops::TrainResult>(s, [&s] { return s.run->train(); });
             py::dict d;
             d["final_model_dir"] = r.final_model_dir;
             d["metrics_path"] = r.metrics_path;
             d["plot_path"] = r.plot_path;
             d["last"] = scalars_to_dict(r.last);
             return d;
           })
      .def("step",
           [](PyRunState& s) {
             return scalars_to_dict(run_interruptible<metrics::Scalars>(
                 s, [&s] { return s.run->step(); }, true));
           })
      .def("save_checkpoint",
           [](PyRunState& s) {
             py::gil_scoped_release release;
             return s.run->save_checkpoint();
           })
      .def_property_readonly("global_step", [](PyRunState& s) { return s.run->global_step(); })
      .def_property_readonly("model", [](PyRunState& s) { return s.run->model(); })
      .def_property_readonly("kind", [](PyRunState& s) { return s.run->config().kind; })
      .def_property_readonly("output_dir", [](PyRunState& s) { return s.run->config().output_dir; })
      .def_property_readonly("model_dir", [](PyRunState& s) { return s.run->config().model_dir; })
      .def_property_readonly("resume_dir", [](PyRunState& s) { return s.run->context().resume_dir; });

  m.def(
      "check_recipe",
      [](const std::string& path, const std::string& text, const std::vector<std::string>& overrides,
         const std::string& name) {
        auto c = read_config(path, text, overrides, name);
        py::dict d;
        d["kind"] = c.kind;
        d["model"] = c.model_dir;
        d["output_dir"] = c.output_dir;
        d["train_file"] = c.train_file;
        d["eval_file"] = c.eval_file;
        d["reward_funcs"] = c.reward_funcs;
        return d;
      },
      py::arg("path") = "", py::arg("text") = "", py::arg("overrides") = std::vector<std::string>{},
      py::arg("name") = "<recipe>");

  // Every key a run kind reads: [(key, type, default, allowed, doc)].
  m.def("documented_keys", [](const std::string& kind) {
    const bool trainer = kind == "grpo" || kind == "sft" || kind == "dpo";
    auto r = recipe::Recipe::parse(std::string(trainer ? "trainer: " : "loop: ") + kind +
                                   "\nmodel: /\noutput_dir: /tmp/x\ndata: {train: /}\nknowrl: {seed_file: /}\n");
    try {
      loops::read_train_config(r);
    } catch (const Error&) {}
    py::list out;
    for (const auto& d : r.documented_keys())
      out.append(py::make_tuple(d.key, d.type, d.default_value, d.allowed, d.doc));
    return out;
  });
  m.def("run_kinds", &loops::run_kinds);

  m.def("_set_progress_sink", [](py::object sink) {
    ProgressBar::set_sink(sink.is_none() ? nullptr : std::make_shared<PySink>(std::move(sink)));
  });
  m.def("_set_log_sink", [](py::object sink) {
    if (sink.is_none()) {
      set_log_sink(nullptr);
      return;
    }
    auto ref = std::make_shared<PyRef>(std::move(sink));
    set_log_sink([ref](LogLevel level, const std::string& msg) {
      if (!Py_IsInitialized()) throw Error("interpreter finalized");  // falls back to stderr
      py::gil_scoped_acquire gil;
      try {
        ref->obj(static_cast<int>(level), msg);
      } catch (py::error_already_set&) {
        throw Error("log sink failed");
      }
    });
  });
  m.def(
      "set_log_level", [](const std::string& level) { set_log_level(parse_log_level(level)); }, py::arg("level"));
}

}  // namespace selfrl::python
