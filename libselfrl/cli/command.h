// The `selfrl` program's subcommands. Each lives in its own cli/<name>.cpp and registers
// itself with a static `CommandRegistrar`, so adding a subcommand touches no other file.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace selfrl::cli {

struct Command {
  std::string name;
  std::string summary;  // one line for `selfrl --help`
  std::function<int(const std::vector<std::string>& args)> run;
};

std::map<std::string, Command>& command_registry();

struct CommandRegistrar {
  explicit CommandRegistrar(Command c) { command_registry()[c.name] = std::move(c); }
};

// A small option parser: declare options, then parse. Unknown options and missing values are
// errors that name the option and list the known ones ("did you mean" included).
class ArgParser {
 public:
  ArgParser(std::string program, std::string description);
  // An option taking a value ("--out FILE"); `metavar` and `help` are for --help.
  ArgParser& option(const std::string& name, const std::string& metavar, const std::string& help,
                    std::optional<std::string> default_value = std::nullopt);
  ArgParser& flag(const std::string& name, const std::string& help);
  ArgParser& positional(const std::string& name, const std::string& help, bool required = true);

  // Returns false when --help was given (usage already printed). Throws selfrl::Error otherwise.
  bool parse(const std::vector<std::string>& args);

  bool has(const std::string& name) const;
  std::string get(const std::string& name) const;  // throws if absent and no default
  std::optional<std::string> get_opt(const std::string& name) const;
  int64_t get_int(const std::string& name) const;
  double get_double(const std::string& name) const;  // finite numbers only
  // Integer / number options with their allowed range; out of range is an error naming the option.
  int64_t get_int_in(const std::string& name, int64_t lo, int64_t hi) const;
  double get_double_in(const std::string& name, double lo, double hi, bool lo_open = false, bool hi_open = false) const;
  bool get_flag(const std::string& name) const;
  std::string usage() const;

 private:
  struct Spec {
    std::string name, metavar, help;
    bool takes_value = true;
    std::optional<std::string> default_value;
  };
  std::string program_, description_;
  std::vector<Spec> options_;
  std::vector<std::pair<std::string, std::pair<std::string, bool>>> positionals_;
  std::map<std::string, std::string> values_;
  const Spec* find(const std::string& name) const;
};

// Throws Error naming the option unless its value is a built-in chat format (chatml, llama3,
// plain): checked up front, also when the tokenizer's own template makes it unused.
void check_chat_format_option(const ArgParser& p, const std::string& name);

// Intra-op threads more than this are refused: creating 100,000 threads never finishes.
inline constexpr int64_t kMaxCliThreads = 4096;

// Edit distance for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace selfrl::cli
