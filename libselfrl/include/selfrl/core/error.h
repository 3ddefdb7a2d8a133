// selfrl::Error: the one exception type thrown at libselfrl's API boundaries.
//
// A message answers three questions: what failed, where (file, key, line, tensor name, rank),
// and what to do about it. Build one with the fluent setters:
//
//   throw Error("tensor 'lm_head.weight' is missing")
//       .at("ckpt/model.safetensors")
//       .hint("save the model again, or set tie_word_embeddings: true in config.json");
//
// what() then reads "ckpt/model.safetensors: tensor 'lm_head.weight' is missing (hint: ...)".
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace selfrl {

class Error : public std::exception {
 public:
  explicit Error(std::string message) : message_(std::move(message)) { rebuild(); }

  // Where the problem is: a path, "path:line", a recipe key, a tensor name. Several calls
  // nest outward ("outer: inner: message").
  Error& at(const std::string& where) {
    where_ = where_.empty() ? where : where + ": " + where_;
    rebuild();
    return *this;
  }
  // What the user should do about it.
  Error& hint(std::string hint) {
    hint_ = std::move(hint);
    rebuild();
    return *this;
  }

  const char* what() const noexcept override { return full_.c_str(); }
  const std::string& message() const { return message_; }
  const std::string& where() const { return where_; }
  const std::string& hint_text() const { return hint_; }

 private:
  void rebuild() {
    full_ = where_.empty() ? message_ : where_ + ": " + message_;
    if (!hint_.empty()) full_ += " (hint: " + hint_ + ")";
  }
  std::string message_, where_, hint_, full_;
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

}  // namespace selfrl

// Throws selfrl::Error with the streamed message when `cond` is false.
//   SELFRL_CHECK(n > 0, "num_generations must be > 0, got ", n);
#define SELFRL_CHECK(cond, ...)                                                \
  do {                                                                         \
    if (!(cond)) throw ::selfrl::Error(::selfrl::detail::concat(__VA_ARGS__)); \
  } while (0)
