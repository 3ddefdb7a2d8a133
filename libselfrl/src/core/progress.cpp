// ProgressBar: rate and ETA on stderr, only on a terminal.
#include "selfrl/core/progress.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace selfrl {

namespace {
std::atomic<int> g_mode{-1};
std::mutex g_sink_mutex;
std::shared_ptr<ProgressBar::Sink> g_sink;
}  // namespace

void ProgressBar::set_enabled_override(int mode) { g_mode = mode; }

void ProgressBar::set_sink(std::shared_ptr<Sink> sink) {
  std::lock_guard<std::mutex> lock(g_sink_mutex);
  g_sink = std::move(sink);
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total) {
  const int mode = g_mode.load();
  start_ = last_draw_ = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(g_sink_mutex);
    sink_ = g_sink;
  }
  if (sink_ && mode != 0) {
    handle_ = sink_->open(label_, total_, unit_);
    return;
  }
  sink_.reset();
  enabled_ = mode == 1 || (mode == -1 && isatty(STDERR_FILENO) == 1);
  if (enabled_) draw(false);
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::advance(int64_t n) {
  done_ += n;
  if (sink_) {
    sink_->update(handle_, done_, postfix_);
    return;
  }
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ > std::chrono::milliseconds(200) || done_ >= total_) {
    last_draw_ = now;
    draw(false);
  }
}

void ProgressBar::set_postfix(const std::string& text) { postfix_ = text; }

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (sink_) {
    // A sink that throws (a Python exception) must not escape the destructor.
    try {
      sink_->update(handle_, done_, postfix_);
      sink_->close(handle_);
    } catch (...) {}
    return;
  }
  if (enabled_) draw(true);
}

void ProgressBar::draw(bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : -1;
  constexpr int kWidth = 24;
  const double frac = total_ > 0 ? std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_)) : 0.0;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar += std::string(static_cast<size_t>(kWidth - filled), '.');
  std::fprintf(stderr, "\r%s [%s] %lld/%lld %s %.2f %s/s elapsed %s eta %s %s\033[K%s", label_.c_str(), bar.c_str(),
               static_cast<long long>(done_), static_cast<long long>(total_), "", rate, unit_.c_str(),
               format_duration(elapsed).c_str(), final ? "00:00" : format_duration(eta).c_str(), postfix_.c_str(),
               final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace selfrl
