// Logging for the control side: one line per event, written with one write(2) to stderr (so lines
// of different threads never interleave) or handed to syslog(3). The data plane only counts (see
// metrics.h) and never logs per query.
//
// Where lines go (`log.target`, app/config_schema.cc):
// - kAuto (default): when stderr is the systemd journal (JOURNAL_STREAM names fd 2's device and
//   inode, sd_journal_stream_fd(3)), each line starts with its syslog priority `<N>` as
//   sd-daemon(3) describes (journald strips it and records the level) and carries no timestamp
//   (journald stamps lines itself); otherwise as kStderr.
// - kStderr: "2026-12-02T01:42:00Z meridian[info]: message", always.
// - kSyslog: syslog(3) with ident "meridian", LOG_PID, the configured facility; the priority
//   carries the level.
// `log.format` = json makes each line (or syslog message) one JSON object instead:
// {"ts":"2026-12-02T01:42:00.123Z","level":"info","msg":"...", then the call's fields}.
//
// Every function here is thread-safe; configure() is called on the control thread at start-up
// and on reload, write() from any control-side thread.
#pragma once

#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace meridian::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class Target { kAuto, kStderr, kSyslog };
enum class Format { kText, kJson };

// One structured field of a message: a JSON member in the json format, " key=value" in text.
struct Field {
  std::string_view key;
  std::string_view value;
};

void setLevel(Level level);
[[nodiscard]] Level level();

// Where and how lines are written from now on. `facility` is a syslog(3) LOG_* facility code (see
// facilityCode); it matters for kSyslog only.
void configure(Target target, Format format, int facility);

void write(Level level, std::string_view message, std::span<const Field> fields = {});

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
inline void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  write(level, message, std::span<const Field>(fields.begin(), fields.size()));
}

// ---- the parts, for the configuration and the tests ----

[[nodiscard]] const char* levelName(Level level);
// The syslog(3) / sd-daemon(3) priority of a level: LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR.
[[nodiscard]] int priority(Level level);
// The LOG_* code of a facility name ("daemon", "local0", ...), or nullopt.
[[nodiscard]] std::optional<int> facilityCode(std::string_view name);
// The facility names facilityCode knows, as the configuration lists choices: "auth|...|local7".
[[nodiscard]] const char* facilityChoices();

// True when `journal_stream` (the value of JOURNAL_STREAM, "DEV:INODE" in decimal) names the file
// open on `fd` (fstat(2)): then fd is connected to journald. False for a null or malformed value.
[[nodiscard]] bool isJournalStream(const char* journal_stream, int fd);

// How a line is shaped.
struct Style {
  Format format = Format::kText;
  bool priority_prefix = false;  // "<N>" first (journald)
  bool timestamp = true;         // the text format's leading stamp (the JSON "ts" is always there)
  bool tag = true;               // text: "meridian[LEVEL]: " (stderr) rather than "LEVEL: "
};

// One formatted line, with its trailing '\n' when `newline`.
[[nodiscard]] std::string formatLine(const Style& style, Level level,
                                     std::chrono::system_clock::time_point time,
                                     std::string_view message, std::span<const Field> fields,
                                     bool newline = true);

// Appends `s` to `out` as the inside of a JSON string (RFC 8259 §7): quote, backslash and control
// characters escaped, invalid UTF-8 replaced by U+FFFD (one per maximal invalid subsequence).
void appendJsonString(std::string& out, std::string_view s);

// Tests: where lines go instead of fd 2 (an fd) and instead of syslog(3) (a function given the
// priority, facility included, and the message). -1 / nullptr restore the real ones.
using SyslogSink = void (*)(int priority, std::string_view message);
void setSinksForTest(int fd, SyslogSink syslog_sink);

}  // namespace meridian::log
