// Shared by the _selfrl extension's source files: pybind11 with torch's tensor casters, JSON ↔
// Python conversion, and the registration functions each file defines.
#pragma once

#include <torch/csrc/utils/pybind.h>  // pybind11 + the at::Tensor caster of torch itself
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

namespace selfrl::python {

namespace py = pybind11;

// JSON values ↔ Python objects (None, bool, int, float, str, list, dict).
py::object to_python(const nlohmann::json& j);
nlohmann::json to_json(const py::handle& obj);

void bind_models(py::module_& m);   // module.cpp: CausalLM, Tokenizer, RolloutEngine, evaluate
void bind_rewards(py::module_& m);  // rewards.cpp: built-in and Python rewards, the registry
void bind_runs(py::module_& m);     // runs.cpp: Run (trainers, loops, recipes), progress and log sinks

}  // namespace selfrl::python
