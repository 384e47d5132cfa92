#include "framework/core/Log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace anvil {
namespace {

LogLevel level_from_env() {
  const char* e = std::getenv("ANVIL_LOG_LEVEL");
  if (!e) return LogLevel::kInfo;
  if (!std::strcmp(e, "debug")) return LogLevel::kDebug;
  if (!std::strcmp(e, "warning")) return LogLevel::kWarning;
  if (!std::strcmp(e, "error")) return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<int>& threshold() {
  static std::atomic<int> t{static_cast<int>(level_from_env())};
  return t;
}

}  // namespace

void set_log_level(LogLevel level) { threshold().store(static_cast<int>(level)); }
LogLevel log_level() { return static_cast<LogLevel>(threshold().load()); }

void log(LogLevel level, const std::string& message) {
  if (static_cast<int>(level) < threshold().load()) return;
  static const char* names[] = {"debug", "info", "warning", "error"};
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "[anvil %s] %s\n", names[static_cast<int>(level)], message.c_str());
}

}  // namespace anvil
