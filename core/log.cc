#include "core/log.h"

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>

namespace meridian::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
std::mutex g_mutex;

const char* levelName(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "?";
}
}  // namespace

void setLevel(Level level) {
  g_level.store(level, std::memory_order_relaxed);
}
Level level() {
  return g_level.load(std::memory_order_relaxed);
}

void write(Level lvl, std::string_view message) {
  if (lvl < level()) return;
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s meridian[%s]: %.*s\n", stamp, levelName(lvl),
               static_cast<int>(message.size()), message.data());
}

}  // namespace meridian::log
