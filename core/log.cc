// The log's state (level, target, format) and its formatter; see log.h. A line is built in a
// local string and written with one write(2) (or one syslog(3) call) under g_mutex, so a reload
// that reconfigures the log never races a writer and lines of different threads never mix.
#include "core/log.h"

#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace meridian::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};

struct State {
  bool configured = false;  // before configure(): kAuto, text (start-up messages)
  Target target = Target::kAuto;
  Format format = Format::kText;
  int facility = LOG_DAEMON;
  bool journal = false;      // kAuto and fd 2 is the journal
  bool syslog_open = false;  // openlog() done
  int fd = STDERR_FILENO;
  SyslogSink syslog_sink = nullptr;
};
std::mutex g_mutex;
State g_state;

struct FacilityName {
  const char* name;
  int code;
};
// The facilities a daemon may sensibly log to (syslog(3)); "kern" is the kernel's own.
constexpr FacilityName kFacilities[] = {
    {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"daemon", LOG_DAEMON},
    {"user", LOG_USER},     {"local0", LOG_LOCAL0},     {"local1", LOG_LOCAL1},
    {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},     {"local4", LOG_LOCAL4},
    {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},     {"local7", LOG_LOCAL7},
};

// Applies g_state's target: detects the journal for kAuto, opens or closes syslog. Under g_mutex.
void settle(State& s) {
  s.journal = s.target == Target::kAuto && isJournalStream(std::getenv("JOURNAL_STREAM"), s.fd);
  if (s.target == Target::kSyslog && s.syslog_sink == nullptr) {
    if (s.syslog_open) closelog();
    // LOG_NDELAY: connect to /dev/log now, before a privilege drop or a sandbox could stop it.
    openlog("meridian", LOG_PID | LOG_NDELAY, s.facility);
    s.syslog_open = true;
  } else if (s.target != Target::kSyslog && s.syslog_open) {
    closelog();
    s.syslog_open = false;
  }
  s.configured = true;
}

void writeAll(int fd, const std::string& line) {
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to report a failing stderr
    done += static_cast<size_t>(n);
  }
}

void appendHex(std::string& out, unsigned char c, const char* prefix) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += prefix;
  out += kHex[c >> 4];
  out += kHex[c & 0xf];
}

// Text lines stay one line: control characters (a newline in a message) are written escaped.
void appendText(std::string& out, std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
      appendHex(out, c, "\\x");
    } else {
      out += ch;
    }
  }
}

// The length of the valid UTF-8 sequence at the start of `s` (RFC 3629 §4: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 with `bad` set to the length of its maximal invalid
// subpart (at least 1), which the caller replaces with one U+FFFD.
size_t utf8Sequence(std::string_view s, size_t& bad) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // range of the second byte
  if (b0 < 0x80) return 1;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    if (b0 == 0xe0) lo = 0xa0;  // overlong
    if (b0 == 0xed) hi = 0x9f;  // surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    if (b0 == 0xf0) lo = 0x90;  // overlong
    if (b0 == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    bad = 1;
    return 0;
  }
  for (size_t i = 1; i < len; ++i) {
    const bool in_range = i < s.size() &&
                          static_cast<unsigned char>(s[i]) >= (i == 1 ? lo : 0x80) &&
                          static_cast<unsigned char>(s[i]) <= (i == 1 ? hi : 0xbf);
    if (!in_range) {
      bad = i;
      return 0;
    }
  }
  return len;
}

void appendStamp(std::string& out, std::chrono::system_clock::time_point time, bool millis) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(time);
  const std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[40];
  size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  if (millis) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(time - secs).count();  // 0..999
    n += static_cast<size_t>(
        std::snprintf(stamp + n, sizeof stamp - n, ".%03d", static_cast<int>(ms)));
  }
  out.append(stamp, n);
  out += 'Z';
}

}  // namespace

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

int priority(Level l) {
  switch (l) {
    case Level::kDebug:
      return LOG_DEBUG;
    case Level::kInfo:
      return LOG_INFO;
    case Level::kWarning:
      return LOG_WARNING;
    case Level::kError:
      return LOG_ERR;
  }
  return LOG_ERR;
}

std::optional<int> facilityCode(std::string_view name) {
  for (const auto& f : kFacilities) {
    if (name == f.name) return f.code;
  }
  return std::nullopt;
}

const char* facilityChoices() {
  return "auth|authpriv|daemon|user|local0|local1|local2|local3|local4|local5|local6|local7";
}

bool isJournalStream(const char* journal_stream, int fd) {
  if (journal_stream == nullptr) return false;
  const std::string_view v(journal_stream);
  const size_t colon = v.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long dev = 0, ino = 0;
  const char* end = v.data() + v.size();
  const auto d = std::from_chars(v.data(), v.data() + colon, dev);
  const auto i = std::from_chars(v.data() + colon + 1, end, ino);
  if (d.ec != std::errc() || d.ptr != v.data() + colon || colon == 0 || i.ec != std::errc() ||
      i.ptr != end || colon + 1 == v.size())
    return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

void appendJsonString(std::string& out, std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const auto c = static_cast<unsigned char>(s[pos]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          // RFC 8259 §7: U+0000..U+001F must be escaped; DEL is escaped too, to keep lines
          // printable.
          if (c < 0x20 || c == 0x7f) {
            appendHex(out, c, "\\u00");
          } else {
            out += static_cast<char>(c);
          }
      }
      ++pos;
      continue;
    }
    size_t bad = 0;
    const size_t len = utf8Sequence(s.substr(pos), bad);
    if (len == 0) {
      out += "\xef\xbf\xbd";  // U+FFFD REPLACEMENT CHARACTER
      pos += bad;
    } else {
      out.append(s.substr(pos, len));
      pos += len;
    }
  }
}

std::string formatLine(const Style& style, Level lvl, std::chrono::system_clock::time_point time,
                       std::string_view message, std::span<const Field> fields, bool newline) {
  std::string out;
  out.reserve(message.size() + 64);
  if (style.priority_prefix) {
    out += '<';
    out += static_cast<char>('0' + priority(lvl));
    out += '>';
  }
  if (style.format == Format::kJson) {
    out += "{\"ts\":\"";
    appendStamp(out, time, true);
    out += "\",\"level\":\"";
    out += levelName(lvl);
    out += "\",\"msg\":\"";
    appendJsonString(out, message);
    out += '"';
    for (const Field& f : fields) {
      out += ",\"";
      appendJsonString(out, f.key);
      out += "\":\"";
      appendJsonString(out, f.value);
      out += '"';
    }
    out += '}';
  } else {
    if (style.timestamp) {
      appendStamp(out, time, false);
      out += ' ';
    }
    if (style.tag) {
      out += "meridian[";
      out += levelName(lvl);
      out += "]: ";
    } else {
      out += levelName(lvl);
      out += ": ";
    }
    appendText(out, message);
    for (const Field& f : fields) {
      out += ' ';
      appendText(out, f.key);
      out += '=';
      appendText(out, f.value);
    }
  }
  if (newline) out += '\n';
  return out;
}

void setLevel(Level level) {
  g_level.store(level, std::memory_order_relaxed);
}
Level level() {
  return g_level.load(std::memory_order_relaxed);
}

void configure(Target target, Format format, int facility) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_state.target = target;
  g_state.format = format;
  g_state.facility = facility;
  settle(g_state);
}

void setSinksForTest(int fd, SyslogSink syslog_sink) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_state.fd = fd < 0 ? STDERR_FILENO : fd;
  g_state.syslog_sink = syslog_sink;
  settle(g_state);
}

void write(Level lvl, std::string_view message, std::span<const Field> fields) {
  if (lvl < level()) return;
  const auto now = std::chrono::system_clock::now();
  std::lock_guard<std::mutex> lock(g_mutex);
  State& s = g_state;
  if (!s.configured) settle(s);
  if (s.target == Target::kSyslog) {
    // The priority says the level; syslog stamps the message itself.
    const Style style{.format = s.format, .timestamp = false, .tag = false};
    const std::string line = formatLine(style, lvl, now, message, fields, false);
    if (s.syslog_sink != nullptr) {
      s.syslog_sink(s.facility | priority(lvl), line);
    } else {
      ::syslog(s.facility | priority(lvl), "%s", line.c_str());
    }
    return;
  }
  // sd-daemon(3): "<N>" before each line; journald keeps its own timestamp.
  const Style style{
      .format = s.format, .priority_prefix = s.journal, .timestamp = !s.journal, .tag = !s.journal};
  writeAll(s.fd, formatLine(style, lvl, now, message, fields));
}

}  // namespace meridian::log
