// Levelled logging to stderr: "[selfrl I 12:03:04.123] message".
//
// The level comes from set_log_level() or, at first use, from the SELFRL_LOG_LEVEL
// environment variable (trace, debug, info, warn, error, off). In a distributed run the rank
// is shown in the prefix once set_log_rank() is called.
#pragma once

#include <functional>
#include <sstream>
#include <string>

namespace selfrl {

enum class LogLevel { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

void set_log_level(LogLevel level);
LogLevel log_level();
// Parses "trace" / "debug" / "info" / "warn" / "warning" / "error" / "off"; throws Error otherwise.
LogLevel parse_log_level(const std::string& name);
void set_log_rank(int rank);  // -1: no rank in the prefix
bool log_enabled(LogLevel level);
void log_message(LogLevel level, const std::string& message);
// Sends messages that pass the level to `sink` instead of stderr (the Python bindings forward
// them to sys.stderr so that a notebook shows them); an empty function restores stderr.
void set_log_sink(std::function<void(LogLevel, const std::string&)> sink);

}  // namespace selfrl

#define SELFRL_LOG_AT(level, stream_expr)                 \
  do {                                                    \
    if (::selfrl::log_enabled(level)) {                   \
      std::ostringstream selfrl_log_os_;                  \
      selfrl_log_os_ << stream_expr;                      \
      ::selfrl::log_message(level, selfrl_log_os_.str()); \
    }                                                     \
  } while (0)
#define SELFRL_DEBUG(x) SELFRL_LOG_AT(::selfrl::LogLevel::kDebug, x)
#define SELFRL_INFO(x) SELFRL_LOG_AT(::selfrl::LogLevel::kInfo, x)
#define SELFRL_WARN(x) SELFRL_LOG_AT(::selfrl::LogLevel::kWarn, x)
#define SELFRL_ERROR(x) SELFRL_LOG_AT(::selfrl::LogLevel::kError, x)
