// Minimal levelled logging to stderr. The threshold comes from ANVIL_LOG_LEVEL
// (debug|info|warning|error; default info) or set_log_level().
#pragma once

#include <string>

namespace anvil {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

/// Writes "[anvil <level>] <message>" to stderr when `level` is at or above the threshold. Thread-safe.
void log(LogLevel level, const std::string& message);
void set_log_level(LogLevel level);
LogLevel log_level();

}  // namespace anvil
