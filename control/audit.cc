#include "control/audit.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "core/file.h"

namespace meridian::control {

namespace json = boost::json;

namespace {

const std::string kGenesis(64, '0');  // `prev` of the first entry
constexpr std::string_view kHashKey = ",\"hash\":\"";

std::string sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

bool isHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) ||
        std::isupper(static_cast<unsigned char>(c)))
      return false;
  }
  return true;
}

std::string headPath(const std::string& path) {
  return path + ".head";
}

// What the head file records: how much of the log it vouches for.
struct Head {
  uint64_t count = 0;
  std::string hash = kGenesis;  // of entry count-1
  uint64_t size = 0;            // octets of the log through entry count-1's newline
};

// nullopt: absent. An unreadable or malformed head is an error.
Result<std::optional<Head>> readHead(const std::string& path) {
  std::ifstream in(headPath(path));
  if (!in) {
    if (errno == ENOENT) return std::optional<Head>{};
    return Error{core::errnoText("cannot read", headPath(path))};
  }
  std::string magic, k1, k2, k3;
  Head h;
  in >> magic >> k1 >> h.count >> k2 >> h.hash >> k3 >> h.size;
  if (!in || magic != "meridian-audit-head-1" || k1 != "count" || k2 != "hash" || k3 != "size" ||
      !isHex64(h.hash)) {
    return Error{headPath(path) + ": not an audit head file"};
  }
  return std::optional<Head>{h};
}

// Replaces the head atomically (temporary file, fsync, rename, fsync of the directory: the next
// open() must not find a head older than the one before the last acknowledged append).
Result<void> writeHead(const std::string& path, const Head& h) {
  const std::string target = headPath(path);
  const std::string tmp = target + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Error{core::errnoText("cannot create", tmp)};
  const std::string text = "meridian-audit-head-1\ncount " + std::to_string(h.count) + "\nhash " +
                           h.hash + "\nsize " + std::to_string(h.size) + "\n";
  if (!core::writeAll(fd, text.data(), text.size())) {
    Error e{core::errnoText("cannot write", tmp)};
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  }
  if (auto r = core::finishReplace(fd, tmp, target); !r) return r;
  const size_t slash = target.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : target.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

std::string getString(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::optional<uint64_t> getUint(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr) return std::nullopt;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() >= 0) return static_cast<uint64_t>(v->get_int64());
  return std::nullopt;
}

std::vector<std::string> getLines(const json::object& o, std::string_view k) {
  std::vector<std::string> out;
  const json::value* v = o.if_contains(k);
  if (v == nullptr || !v->is_array()) return out;
  for (const json::value& s : v->get_array()) {
    if (s.is_string()) out.emplace_back(s.get_string());
  }
  return out;
}

// One line checked on its own: its hash covers its bytes, it parses. `e` gets its fields.
std::optional<std::string> checkLine(const std::string& line, AuditEntry& e) {
  const size_t pos = line.rfind(kHashKey);
  if (pos == std::string::npos || line.size() != pos + kHashKey.size() + 64 + 2 ||
      line.compare(line.size() - 2, 2, "\"}") != 0) {
    return std::string("not an audit entry (no hash at its end)");
  }
  e.hash = line.substr(pos + kHashKey.size(), 64);
  if (!isHex64(e.hash)) return std::string("not an audit entry (malformed hash)");
  if (sha256Hex(std::string_view(line).substr(0, pos)) != e.hash) {
    return std::string("hash mismatch: the entry was edited");
  }
  boost::system::error_code ec;
  json::value parsed = json::parse(line.substr(0, pos) + "}", ec);
  if (ec || !parsed.is_object()) return std::string("not an audit entry (not JSON)");
  const json::object& o = parsed.get_object();
  const auto seq = getUint(o, "seq");
  const json::value* t = o.if_contains("time");
  const auto time = t != nullptr && t->is_string() ? parseTime(std::string(t->get_string()))
                                                   : std::optional<int64_t>{};
  e.prev = getString(o, "prev");
  if (!seq || !time || !isHex64(e.prev)) {
    return std::string("not an audit entry (seq, time or prev missing)");
  }
  e.seq = *seq;
  e.time_ms = *time;
  e.key = getString(o, "key");
  e.source = getString(o, "source");
  e.operation = getString(o, "operation");
  e.zone = getString(o, "zone");
  e.old_serial = static_cast<uint32_t>(getUint(o, "old_serial").value_or(0));
  e.new_serial = static_cast<uint32_t>(getUint(o, "new_serial").value_or(0));
  e.removed = getLines(o, "removed");
  e.added = getLines(o, "added");
  e.detail = getString(o, "detail");
  return std::nullopt;
}

// The log walked from its first line: how far it chains, and where entry `mark` ends.
struct Scan {
  bool io_error = false;
  std::string io_message;
  bool ok = true;
  uint64_t entries = 0;   // complete lines that chain
  uint64_t bad_line = 0;  // first line that does not
  std::string message;
  uint64_t bad_offset = 0;   // where that line starts
  bool bad_is_torn = false;  // ...and it is the last one, without its newline
  uint64_t size = 0;         // octets of the good lines
  std::string last_hash = kGenesis;
  std::string mark_hash;  // hash of entry `mark` (empty: not reached)
  uint64_t mark_end = 0;  // offset after entry `mark`'s newline
};

Scan scan(const std::string& path, uint64_t mark) {
  Scan s;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    s.io_error = true;
    s.io_message = path + ": not a regular file";
    return s;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return s;  // no log yet: an empty chain
    s.io_error = true;
    s.io_message = core::errnoText("cannot read", path);
    return s;
  }
  std::string line;
  uint64_t offset = 0;
  while (std::getline(in, line)) {
    const bool torn = in.eof();  // the last line has no newline: an interrupted append
    AuditEntry e;
    std::optional<std::string> problem =
        torn ? std::optional<std::string>("truncated: the last line has no newline")
             : checkLine(line, e);
    if (!problem && e.seq != s.entries) {
      problem = e.seq > s.entries
                    ? "entry seq " + std::to_string(e.seq) + " where " + std::to_string(s.entries) +
                          " was expected: entries removed or reordered"
                    : "entry seq " + std::to_string(e.seq) + " where " + std::to_string(s.entries) +
                          " was expected: entry inserted or reordered";
    }
    if (!problem && e.prev != s.last_hash) {
      problem = std::string("does not chain: its prev is not the hash of the entry before it");
    }
    if (problem) {
      s.ok = false;
      s.bad_line = s.entries + 1;
      s.message = *problem;
      s.bad_offset = offset;
      s.bad_is_torn = torn;
      return s;
    }
    offset += line.size() + 1;
    s.size = offset;
    s.last_hash = e.hash;
    if (s.entries == mark) {
      s.mark_hash = e.hash;
      s.mark_end = offset;
    }
    ++s.entries;
  }
  if (in.bad()) {
    s.io_error = true;
    s.io_message = core::errnoText("cannot read", path);
  }
  return s;
}

// The chain compared with the head: what verify() reports and open() acts on.
struct Check {
  VerifyReport report;
  Head head;              // the head as it should be after the check (open() writes it)
  bool adopt = false;     // one chained entry after the head: a crash before the head update
  bool cut_torn = false;  // a torn line after the head: an append that never completed
  uint64_t cut_to = 0;
};

Result<Check> check(const std::string& path) {
  auto head = readHead(path);
  if (!head) return head.error();
  const uint64_t mark = *head && (*head)->count > 0 ? (*head)->count - 1 : UINT64_MAX;
  const Scan s = scan(path, mark);
  if (s.io_error) return Error{s.io_message};
  Check c;
  VerifyReport& r = c.report;
  r.entries = s.entries;
  auto fail = [&](uint64_t line, std::string message) {
    r.ok = false;
    r.bad_line = line;
    r.message = std::move(message);
    return c;
  };
  if (!*head) {
    if (s.entries > 0 || !s.ok) {
      return fail(
          0, "head file " + headPath(path) + " is missing: the end of the log cannot be checked");
    }
    r.notes.push_back("empty log, no head file yet");
    return c;
  }
  const Head& h = **head;
  c.head = h;
  if (s.entries < h.count) {  // s.entries: the lines that chain, before any bad one
    if (!s.ok) return fail(s.bad_line, s.message);
    return fail(s.entries + 1, "the log ends after " + std::to_string(s.entries) +
                                   " entries where its head records " + std::to_string(h.count) +
                                   ": entries removed from the end");
  }
  if (h.count > 0 && (s.mark_hash != h.hash || s.mark_end != h.size)) {
    return fail(h.count, "entry " + std::to_string(h.count - 1) +
                             " is not the one the head records: the log was rewritten");
  }
  // Now every entry the head covers chains. What follows it:
  if (!s.ok) {
    if (s.bad_is_torn && s.bad_line == h.count + 1 && s.entries == h.count &&
        s.bad_offset == h.size) {
      r.notes.push_back("line " + std::to_string(s.bad_line) +
                        " is an append that never completed (no newline, after the head); the "
                        "next open removes it");
      c.cut_torn = true;
      c.cut_to = h.size;
      return c;
    }
    return fail(s.bad_line, s.message);
  }
  if (s.entries == h.count + 1) {
    r.notes.push_back(
        "the last entry is not yet in the head (a crash between the append and "
        "the head update); the next open adopts it");
    c.adopt = true;
    c.head = Head{s.entries, s.last_hash, s.size};
  } else if (s.entries > h.count + 1) {
    return fail(h.count + 2, std::to_string(s.entries - h.count) +
                                 " entries after the head records " + std::to_string(h.count) +
                                 ": entries added behind the writer's back");
  }
  return c;
}

void lower(std::string& s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
}

std::string zoneKey(std::string z) {
  lower(z);
  if (z.empty() || z.back() != '.') z += '.';
  return z;
}

}  // namespace

std::string formatTime(int64_t time_ms) {
  const std::time_t secs = static_cast<std::time_t>(time_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[80];  // the widest ints GCC can imagine, not 24 octets
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(time_ms % 1000));
  return buf;
}

std::optional<int64_t> parseTime(const std::string& text) {
  if (text.empty()) return std::nullopt;
  if (text.find_first_not_of("0123456789") == std::string::npos) {
    if (text.size() > 12) return std::nullopt;
    return std::stoll(text) * 1000;
  }
  std::tm tm{};
  int ms = 0;
  int n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 ||
      n != 10) {
    return std::nullopt;
  }
  std::string rest = text.substr(10);
  if (!rest.empty()) {
    int m = 0;
    if ((rest[0] != 'T' && rest[0] != ' ') ||
        std::sscanf(rest.c_str() + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &m) !=
            3 ||
        m != 8) {
      return std::nullopt;
    }
    rest = rest.substr(9);
    if (!rest.empty() && rest[0] == '.') {
      size_t digits = 1;
      int scale = 100;
      while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) {
        if (scale > 0) ms += (rest[digits] - '0') * scale;
        scale /= 10;
        ++digits;
      }
      if (digits == 1) return std::nullopt;
      rest = rest.substr(digits);
    }
    if (rest != "Z" && rest != "z" && rest != "+00:00") return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  return static_cast<int64_t>(::timegm(&tm)) * 1000 + ms;
}

std::string encodeEntry(AuditEntry& e) {
  json::object o;
  o["seq"] = e.seq;
  o["time"] = formatTime(e.time_ms);
  o["key"] = e.key;
  o["source"] = e.source;
  o["operation"] = e.operation;
  o["zone"] = e.zone;
  o["old_serial"] = e.old_serial;
  o["new_serial"] = e.new_serial;
  json::array removed(e.removed.begin(), e.removed.end());
  json::array added(e.added.begin(), e.added.end());
  o["removed"] = std::move(removed);
  o["added"] = std::move(added);
  o["detail"] = e.detail;
  o["prev"] = e.prev;
  std::string body = json::serialize(o);
  body.pop_back();  // the closing brace: the hash goes before it
  e.hash = sha256Hex(body);
  return body + std::string(kHashKey) + e.hash + "\"}";
}

Result<AuditLog> AuditLog::open(const std::string& path) {
  auto c = check(path);
  if (!c) return c.error();
  if (!c->report.ok) {
    return Error{"audit log " + path + " failed verification" +
                 (c->report.bad_line ? " at line " + std::to_string(c->report.bad_line) : "") +
                 ": " + c->report.message + "; not appending to it"};
  }
  AuditLog log;
  log.path_ = path;
  log.fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log.fd_ < 0) return Error{core::errnoText("cannot open", path)};
  if (c->cut_torn && ::ftruncate(log.fd_, static_cast<off_t>(c->cut_to)) != 0) {
    return Error{core::errnoText("cannot cut the torn last line of", path)};
  }
  log.count_ = c->head.count;
  log.last_hash_ = c->head.hash;
  log.size_ = c->head.size;
  auto head = readHead(path);
  if (!head) return head.error();
  if (!*head || c->adopt) {
    if (::fsync(log.fd_) != 0) return Error{core::errnoText("cannot fsync", path)};
    if (auto w = writeHead(path, c->head); !w) return w.error();
  }
  return log;
}

AuditLog::AuditLog(AuditLog&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(other.fd_),
      count_(other.count_),
      size_(other.size_),
      last_hash_(std::move(other.last_hash_)) {
  other.fd_ = -1;
}

AuditLog& AuditLog::operator=(AuditLog&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    count_ = other.count_;
    size_ = other.size_;
    last_hash_ = std::move(other.last_hash_);
    other.fd_ = -1;
  }
  return *this;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

Result<AuditEntry> AuditLog::append(AuditEntry e) {
  if (fd_ < 0) return Error{"audit log " + path_ + " is not open"};
  if (e.time_ms == 0) {
    e.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  }
  e.seq = count_;
  e.prev = last_hash_;
  const std::string line = encodeEntry(e) + "\n";
  if (!core::writeAll(fd_, line.data(), line.size()) || ::fsync(fd_) != 0) {
    Error err{core::errnoText("cannot append to", path_)};
    // Leave no partial line behind for the next entry to follow.
    (void)::ftruncate(fd_, static_cast<off_t>(size_));
    return err;
  }
  count_ += 1;
  size_ += line.size();
  last_hash_ = e.hash;
  if (auto w = writeHead(path_, Head{count_, last_hash_, size_}); !w) return w.error();
  return e;
}

Result<VerifyReport> verify(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 && ::stat(headPath(path).c_str(), &st) != 0) {
    return Error{core::errnoText("cannot read", path)};  // neither log nor head: a wrong path
  }
  auto c = check(path);
  if (!c) return c.error();
  return c->report;
}

Result<std::vector<AuditEntry>> readEntries(const std::string& path, const AuditFilter& f) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Error{core::errnoText("cannot read", path)};
  if (!S_ISREG(st.st_mode)) return Error{path + ": not a regular file"};
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{core::errnoText("cannot read", path)};
  const std::string zone = f.zone.empty() ? std::string() : zoneKey(f.zone);
  std::vector<AuditEntry> out;
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // a torn last line
    AuditEntry e;
    if (checkLine(line, e)) continue;
    if (!zone.empty() && (e.zone.empty() || zoneKey(e.zone) != zone)) continue;
    if (!f.key.empty() && e.key != f.key) continue;
    if (f.since_ms && e.time_ms < *f.since_ms) continue;
    if (f.until_ms && e.time_ms > *f.until_ms) continue;
    out.push_back(std::move(e));
  }
  if (in.bad()) return Error{core::errnoText("cannot read", path)};
  if (f.limit > 0 && out.size() > f.limit) {
    out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(f.limit));
  }
  return out;
}

}  // namespace meridian::control
