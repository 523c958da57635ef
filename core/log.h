// Minimal logging to stderr: one line per event, with a level and a monotonic-free wall-clock
// stamp. Used by the control side; the data plane only counts (see metrics.h) and never logs per
// query.
#pragma once

#include <cstdio>
#include <string_view>

namespace meridian::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void setLevel(Level level);
[[nodiscard]] Level level();
void write(Level level, std::string_view message);

inline void debug(std::string_view m) {
  write(Level::kDebug, m);
}
inline void info(std::string_view m) {
  write(Level::kInfo, m);
}
inline void warning(std::string_view m) {
  write(Level::kWarning, m);
}
inline void error(std::string_view m) {
  write(Level::kError, m);
}

}  // namespace meridian::log
