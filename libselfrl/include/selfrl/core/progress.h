// ProgressBar: one line on stderr with done/total, rate and ETA for long phases (generation,
// training, evaluation). Quiet when stderr is not a terminal (logs, CI, tests), so redirected
// output holds no carriage-return noise.
//
//   ProgressBar bar("generate", prompts.size(), "prompts");
//   for (...) { ...; bar.advance(n); }
//   bar.finish();
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace selfrl {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit = "it");
  ~ProgressBar();
  void advance(int64_t n = 1);
  void set_postfix(const std::string& text);  // e.g. "loss=0.31"
  void finish();
  bool enabled() const { return enabled_; }
  // Forces the bar on or off for every bar created afterwards (tests, --no-progress).
  static void set_enabled_override(int mode);  // -1 auto (isatty), 0 off, 1 on

  // Where bars go instead of stderr: a front end (the Python bindings draw tqdm bars) installs a
  // sink; every bar created afterwards reports to it, terminal or not. Null restores stderr.
  class Sink {
   public:
    virtual ~Sink() = default;
    // A new bar; the returned handle identifies it in the calls below.
    virtual int64_t open(const std::string& label, int64_t total, const std::string& unit) = 0;
    virtual void update(int64_t handle, int64_t done, const std::string& postfix) = 0;
    virtual void close(int64_t handle) = 0;
  };
  static void set_sink(std::shared_ptr<Sink> sink);

 private:
  void draw(bool final);
  std::string label_, unit_, postfix_;
  std::shared_ptr<Sink> sink_;
  int64_t handle_ = -1;
  int64_t total_ = 0, done_ = 0;
  bool enabled_ = false, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1:02:03" / "02:03".
std::string format_duration(double seconds);

}  // namespace selfrl
