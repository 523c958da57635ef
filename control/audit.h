// The audit log: one append-only file of who changed what, hash-chained so an edit shows.
//
// Every change (an API request, a meridianctl command, the reload of a hand-edited zone file, an
// override) appends one entry: time, key name, source address, operation, zone, the serials and the
// diff. control/ does not link zones/, so the caller renders the diff itself: each RRset removed
// and added as zone-file presentation lines (zones::ZoneDiff's `removed` and `added`, one record a
// line), or nothing for an operation without one (an override names its target in `detail`).
//
// File format (docs/operations.md, "Audit log"): JSON lines. Each line is one object with its keys
// in a fixed order, ending in the entry's own hash:
//   {"seq":0,"time":"2026-12-01T18:00:00.000Z","key":"ops","source":"127.0.0.1","operation":"patch",
//    "zone":"example.com.","old_serial":1,"new_serial":2,"removed":[...],"added":[...],"detail":"",
//    "prev":"<64 hex>","hash":"<64 hex>"}
// hash = SHA-256 of the line's bytes up to and excluding `,"hash":` (so the stored bytes are what
// is hashed: no re-encoding on verify), and `prev` is the previous entry's hash (64 zeros for the
// first). `seq` counts from 0.
//
// The chain shows an edited, reordered, inserted or removed entry, except at the end: dropping the
// last entries leaves a valid shorter chain. So after each append the log writes a head file
// (`PATH.head`: count, last hash and the log's length, replaced atomically), and verify() compares
// the log with it. Neither stops someone who rewrites the log and the head together (there is no
// secret in the chain); shipping the head's hash elsewhere (logs, a monitoring system) does.
//
// Control thread only: the AuditLog object is not thread-safe. Appends are fsynced before
// append() returns, the head after that; a crash between the two leaves one entry the head does
// not cover, which the next open() re-checks and adopts; a crash inside the append leaves a torn
// last line after the head's length, which open() cuts off (it was never acknowledged).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace meridian::control {

struct AuditEntry {
  uint64_t seq = 0;       // set by append()
  int64_t time_ms = 0;    // Unix time in milliseconds; 0 = now (append() fills it in)
  std::string key;        // API key name, "meridianctl", "reload" (hand edit), ...
  std::string source;     // client address ("127.0.0.1", "unix"), empty when none
  std::string operation;  // "patch", "reload", "override", ...
  std::string zone;       // origin ("example.com."), empty when the change is not a zone's
  uint32_t old_serial = 0;
  uint32_t new_serial = 0;
  std::vector<std::string> removed;  // presentation lines of the RRsets removed
  std::vector<std::string> added;    // and added
  std::string detail;                // free text (an override's target and mode)
  std::string prev;                  // set by append(): the previous entry's hash (hex)
  std::string hash;                  // set by append(): this entry's hash (hex)
};

class AuditLog {
 public:
  // Opens (creating it and its head when absent) the log at `path` for appending. Refused when the
  // log does not match its head (shorter, or its last covered entry's hash differs) or the
  // entries after the head do not chain: a tampered log is not silently extended.
  [[nodiscard]] static Result<AuditLog> open(const std::string& path);
  AuditLog(AuditLog&& other) noexcept;
  AuditLog& operator=(AuditLog&& other) noexcept;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  ~AuditLog();

  // Appends `e` (seq, prev and hash filled in; time if 0), fsyncs the log, then rewrites the head.
  // Returns the entry as written.
  [[nodiscard]] Result<AuditEntry> append(AuditEntry e);
  [[nodiscard]] uint64_t count() const { return count_; }
  [[nodiscard]] const std::string& lastHash() const { return last_hash_; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  AuditLog() = default;
  std::string path_;
  int fd_ = -1;
  uint64_t count_ = 0;
  uint64_t size_ = 0;
  std::string last_hash_;
};

struct VerifyReport {
  bool ok = true;
  uint64_t entries = 0;   // complete entries that chain
  uint64_t bad_line = 0;  // 1-based line of the first problem; 0 = none or not a line's fault
  std::string message;    // what is wrong (empty when ok)
  std::vector<std::string> notes;  // things that are fine but worth saying (no head, crash window)
};

// Checks the chain from the first line and the head file. The error is for I/O only (the log
// cannot be read; neither it nor its head exists); tampering is a report with ok = false.
[[nodiscard]] Result<VerifyReport> verify(const std::string& path);

struct AuditFilter {
  std::string zone;  // exact origin, case-insensitive, trailing dot optional; empty = any
  std::string key;   // exact key name; empty = any
  std::optional<int64_t> since_ms, until_ms;  // inclusive bounds
  size_t limit = 0;                           // the last `limit` matches; 0 = all
};

// The entries matching `f`, in file order. Lines that do not parse are skipped (verify() names
// them); the error is for I/O only.
[[nodiscard]] Result<std::vector<AuditEntry>> readEntries(const std::string& path,
                                                          const AuditFilter& f = {});

// "2026-12-01T18:00:00.123Z" (UTC, milliseconds).
[[nodiscard]] std::string formatTime(int64_t time_ms);
// RFC 3339 in UTC ("2026-12-01T18:00:00Z", fractional seconds and a date alone also taken) or a
// Unix time in seconds ("1764612000"); nullopt when neither.
[[nodiscard]] std::optional<int64_t> parseTime(const std::string& text);

// The line append() writes for `e` (seq, prev and time as given; hash computed), without '\n'.
[[nodiscard]] std::string encodeEntry(AuditEntry& e);

}  // namespace meridian::control
