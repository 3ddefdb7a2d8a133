// Levelled logging to stderr (see selfrl/core/logging.h).
#include "selfrl/core/logging.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include "selfrl/core/error.h"

namespace selfrl {
namespace {

LogLevel level_from_env() {
  const char* env = std::getenv("SELFRL_LOG_LEVEL");
  if (env == nullptr || *env == '\0') return LogLevel::kInfo;
  try {
    return parse_log_level(env);
  } catch (const Error&) {
    std::fprintf(stderr, "[selfrl W] SELFRL_LOG_LEVEL='%s' is not a level; using info\n", env);
    return LogLevel::kInfo;
  }
}

std::atomic<int>& level_storage() {
  static std::atomic<int> level{static_cast<int>(level_from_env())};
  return level;
}
std::atomic<int> g_rank{-1};
std::mutex g_write_mutex;
std::mutex g_sink_mutex;
std::function<void(LogLevel, const std::string&)> g_sink;

char level_letter(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return 'T';
    case LogLevel::kDebug:
      return 'D';
    case LogLevel::kInfo:
      return 'I';
    case LogLevel::kWarn:
      return 'W';
    case LogLevel::kError:
      return 'E';
    default:
      return '?';
  }
}

}  // namespace

void set_log_level(LogLevel level) { level_storage() = static_cast<int>(level); }
LogLevel log_level() { return static_cast<LogLevel>(level_storage().load()); }
void set_log_rank(int rank) { g_rank = rank; }
bool log_enabled(LogLevel level) {
  return level != LogLevel::kOff && static_cast<int>(level) >= level_storage().load();
}

LogLevel parse_log_level(const std::string& name) {
  if (name == "trace") return LogLevel::kTrace;
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn" || name == "warning") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  if (name == "off") return LogLevel::kOff;
  throw Error("unknown log level '" + name + "'").hint("use one of trace, debug, info, warn, error, off");
}

void set_log_sink(std::function<void(LogLevel, const std::string&)> sink) {
  std::lock_guard<std::mutex> lock(g_sink_mutex);
  g_sink = std::move(sink);
}

void log_message(LogLevel level, const std::string& message) {
  {
    std::function<void(LogLevel, const std::string&)> sink;
    {
      std::lock_guard<std::mutex> lock(g_sink_mutex);
      sink = g_sink;
    }
    if (sink) {
      try {
        sink(level, message);
        return;
      } catch (...) {  // a sink that fails falls back to stderr
      }
    }
  }
  using clock = std::chrono::system_clock;
  const auto now = clock::now();
  const std::time_t t = clock::to_time_t(now);
  const int ms =
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
  const int rank = g_rank.load();
  std::lock_guard<std::mutex> lock(g_write_mutex);
  if (rank >= 0) {
    std::fprintf(stderr, "[selfrl %c %s.%03d r%d] %s\n", level_letter(level), stamp, ms, rank, message.c_str());
  } else {
    std::fprintf(stderr, "[selfrl %c %s.%03d] %s\n", level_letter(level), stamp, ms, message.c_str());
  }
}

}  // namespace selfrl
