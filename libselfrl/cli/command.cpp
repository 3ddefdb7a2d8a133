// Subcommand registry and option parsing for the `selfrl` program.
#include "command.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "selfrl/core/error.h"
#include "selfrl/recipe/recipe.h"

namespace selfrl::cli {

std::map<std::string, Command>& command_registry() {
  static std::map<std::string, Command> registry;
  return registry;
}

size_t edit_distance(const std::string& a, const std::string& b) { return recipe::edit_distance(a, b); }

ArgParser::ArgParser(std::string program, std::string description)
    : program_(std::move(program)), description_(std::move(description)) {}

ArgParser& ArgParser::option(const std::string& name, const std::string& metavar, const std::string& help,
                             std::optional<std::string> default_value) {
  options_.push_back({name, metavar, help, true, std::move(default_value)});
  return *this;
}

ArgParser& ArgParser::flag(const std::string& name, const std::string& help) {
  options_.push_back({name, "", help, false, std::nullopt});
  return *this;
}

ArgParser& ArgParser::positional(const std::string& name, const std::string& help, bool required) {
  positionals_.push_back({name, {help, required}});
  return *this;
}

const ArgParser::Spec* ArgParser::find(const std::string& name) const {
  for (const auto& s : options_)
    if (s.name == name) return &s;
  return nullptr;
}

std::string ArgParser::usage() const {
  std::ostringstream os;
  os << "usage: " << program_;
  for (const auto& p : positionals_) os << (p.second.second ? " " : " [") << p.first << (p.second.second ? "" : "]");
  if (!options_.empty()) os << " [options]";
  os << "\n\n" << description_ << "\n";
  if (!positionals_.empty()) {
    os << "\narguments:\n";
    for (const auto& p : positionals_) os << "  " << p.first << "\n      " << p.second.first << "\n";
  }
  os << "\noptions:\n";
  for (const auto& s : options_) {
    os << "  " << s.name << (s.takes_value ? " " + s.metavar : "") << "\n      " << s.help;
    if (s.default_value && !s.default_value->empty()) os << " (default: " << *s.default_value << ")";
    os << "\n";
  }
  os << "  --help\n      show this help\n";
  return os.str();
}

bool ArgParser::parse(const std::vector<std::string>& args) {
  size_t next_positional = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "--help" || a == "-h") {
      std::printf("%s", usage().c_str());
      return false;
    }
    if (a.rfind("--", 0) == 0) {
      std::string value;
      bool inline_value = false;
      const auto eq = a.find('=');
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        inline_value = true;
      }
      const Spec* spec = find(a);
      if (spec == nullptr) {
        std::string best;
        size_t best_d = 4;
        for (const auto& s : options_) {
          const size_t d = edit_distance(a, s.name);
          if (d < best_d) {
            best_d = d;
            best = s.name;
          }
        }
        Error e("unknown option '" + a + "'");
        e.at(program_);
        e.hint(best.empty() ? "run '" + program_ + " --help' for the options" : "did you mean '" + best + "'?");
        throw e;
      }
      if (spec->takes_value) {
        if (!inline_value) {
          if (i + 1 >= args.size()) throw Error("option " + a + " needs a value (" + spec->metavar + ")").at(program_);
          value = args[++i];
        }
        values_[a] = value;
      } else {
        if (inline_value) throw Error("option " + a + " takes no value").at(program_);
        values_[a] = "1";
      }
      continue;
    }
    if (next_positional >= positionals_.size()) {
      throw Error("unexpected argument '" + a + "'").at(program_).hint("run '" + program_ + " --help'");
    }
    values_[positionals_[next_positional++].first] = a;
  }
  for (size_t k = next_positional; k < positionals_.size(); ++k) {
    if (positionals_[k].second.second)
      throw Error("missing argument " + positionals_[k].first).at(program_).hint("run '" + program_ + " --help'");
  }
  return true;
}

bool ArgParser::has(const std::string& name) const { return values_.count(name) != 0; }

std::optional<std::string> ArgParser::get_opt(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  if (const Spec* s = find(name); s != nullptr && s->default_value) return s->default_value;
  return std::nullopt;
}

std::string ArgParser::get(const std::string& name) const {
  auto v = get_opt(name);
  if (!v) throw Error("missing required option " + name).at(program_).hint("run '" + program_ + " --help'");
  return *v;
}

int64_t ArgParser::get_int(const std::string& name) const {
  const std::string v = get(name);
  try {
    size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {}
  throw Error("option " + name + " expects an integer, got '" + v + "'").at(program_);
}

double ArgParser::get_double(const std::string& name) const {
  const std::string v = get(name);
  try {
    size_t used = 0;
    const double x = std::stod(v, &used);
    if (used == v.size()) {
      if (!std::isfinite(x)) throw Error("option " + name + " expects a finite number, got '" + v + "'").at(program_);
      return x;
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {}
  throw Error("option " + name + " expects a number, got '" + v + "'").at(program_);
}

int64_t ArgParser::get_int_in(const std::string& name, int64_t lo, int64_t hi) const {
  const int64_t x = get_int(name);
  if (x < lo || x > hi)
    throw Error("option " + name + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                std::to_string(x))
        .at(program_);
  return x;
}

double ArgParser::get_double_in(const std::string& name, double lo, double hi, bool lo_open, bool hi_open) const {
  const double x = get_double(name);
  if (x < lo || x > hi || (lo_open && x == lo) || (hi_open && x == hi)) {
    std::ostringstream os;
    os << "option " << name << " must be in " << (lo_open ? "(" : "[") << lo << ", " << hi << (hi_open ? ")" : "]")
       << ", got " << get(name);
    throw Error(os.str()).at(program_);
  }
  return x;
}

void check_chat_format_option(const ArgParser& p, const std::string& name) {
  const std::string v = p.get(name);
  if (v != "chatml" && v != "llama3" && v != "plain")
    throw Error("option " + name + ": unknown chat format '" + v + "'").hint("use chatml, llama3 or plain");
}

bool ArgParser::get_flag(const std::string& name) const { return values_.count(name) != 0; }

}  // namespace selfrl::cli
