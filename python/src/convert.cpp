// JSON ↔ Python conversion for dataset rows, metrics and configs.
#include <cmath>

#include "common.h"
#include "selfrl/core/error.h"

namespace selfrl::python {

py::object to_python(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return py::none();
    case nlohmann::json::value_t::boolean:
      return py::bool_(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return py::int_(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return py::int_(j.get<uint64_t>());
    case nlohmann::json::value_t::number_float:
      return py::float_(j.get<double>());
    case nlohmann::json::value_t::string:
      return py::str(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      py::list l;
      for (const auto& v : j) l.append(to_python(v));
      return std::move(l);
    }
    case nlohmann::json::value_t::object: {
      py::dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d[py::str(it.key())] = to_python(it.value());
      return std::move(d);
    }
    default:
      return py::none();
  }
}

nlohmann::json to_json(const py::handle& obj) {
  if (obj.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(obj)) return obj.cast<bool>();
  if (py::isinstance<py::int_>(obj)) return obj.cast<int64_t>();
  if (py::isinstance<py::float_>(obj)) return obj.cast<double>();
  if (py::isinstance<py::str>(obj)) return obj.cast<std::string>();
  if (py::isinstance<py::dict>(obj)) {
    nlohmann::json j = nlohmann::json::object();
    for (auto item : obj.cast<py::dict>()) j[py::str(item.first).cast<std::string>()] = to_json(item.second);
    return j;
  }
  if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    nlohmann::json j = nlohmann::json::array();
    for (auto v : obj) j.push_back(to_json(v));
    return j;
  }
  // numpy / torch scalars and anything else with __float__ / __int__ / tolist().
  if (py::hasattr(obj, "tolist")) return to_json(obj.attr("tolist")());
  if (py::hasattr(obj, "__index__")) return obj.attr("__index__")().cast<int64_t>();
  if (py::hasattr(obj, "__float__")) return obj.attr("__float__")().cast<double>();
  throw Error("cannot store a value of type " + py::str(py::type::of(obj).attr("__name__")).cast<std::string>() +
              " in a dataset row or config")
      .hint("use None, bool, int, float, str, list or dict");
}

}  // namespace selfrl::python
