// The journal of one zone: a file holding a snapshot of the zone's content and the diffs made
// since, in serial order, each record framed with its length and a CRC32C so that a write cut
// short by a crash is found (and cut off) when the file is next opened, never misread. The
// commit sequence (edit.h) appends every change here, fdatasync'ed, before the change is
// acknowledged; the zone is recovered from it at start when the zone file no longer loads or
// lags behind; IXFR (RFC 1995) will be answered from its diffs. Format: zones/README.md,
// "Journal file format". Control thread only (blocking I/O).
//
// Records, in file order: diffs and snapshots (at least one), their serials chained (each diff's
// old serial is the serial before it; a snapshot's serial is the serial before it). The latest
// content is the last snapshot with the diffs after it applied. A new journal is a snapshot (the
// zone as loaded); compaction rewrites the file with the newest diffs and a snapshot of the
// latest content after them, so the file holds one snapshot and a bounded history of diffs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "dns/name.h"
#include "zones/content.h"
#include "zones/diff.h"

namespace meridian::zones {

// SHA-256 of a zone file's octets: how the commit sequence tells a file it wrote from one edited
// by hand since (content, not mtime).
using FileHash = std::array<uint8_t, 32>;
[[nodiscard]] FileHash hashBytes(std::string_view data);
// The hash of the file at `path`; an error (with strerror) when it cannot be read.
[[nodiscard]] Result<FileHash> hashFile(const std::string& path);
// The first octets in hex, for messages.
[[nodiscard]] std::string shortHex(const FileHash& h);

// CRC32C (Castagnoli, RFC 3720 §B.4), continuing from `crc` (0 to start).
[[nodiscard]] uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);

// Bounds on the history of diffs (the snapshot, the size of the zone, is not counted). When an
// append leaves either exceeded, compactIfNeeded() drops the oldest diffs down to half of both
// bounds, so a compaction (which rewrites the file) is paid once per many changes.
struct JournalLimits {
  uint64_t max_bytes = 64ull << 20;  // 64 MiB of diffs: thousands of typical API changes
  size_t max_entries = 10000;
};

// One record, as indexed in memory when the journal is opened.
struct JournalEntry {
  enum class Kind : uint8_t { kDiff = 1, kSnapshot = 2 };
  Kind kind = Kind::kDiff;
  uint32_t old_serial = 0;  // a snapshot's is its serial
  uint32_t serial = 0;      // the serial of the content after this record
  int64_t time = 0;         // Unix seconds of the change
  uint64_t digest = 0;      // Zone::digest() of the content after this record
  FileHash file_hash{};     // SHA-256 of the zone file written for that content
  uint64_t offset = 0;      // of the record (its length field) in the file
  uint32_t length = 0;      // of the record's payload
};

class Journal {
 public:
  // Opens the journal of zone `apex` at `path`, reading and checking every record. A missing file
  // is an empty journal (created by reset()). A tail that is not a complete record with a good
  // CRC (a write cut short) is cut off, the file truncated, and a warning added. Refused: a file
  // that is not a journal of this zone, serials that do not chain, a record that does not parse.
  [[nodiscard]] static Result<Journal> open(const std::string& path, const dns::NameBuf& apex,
                                            JournalLimits limits,
                                            std::vector<std::string>& warnings);

  Journal(Journal&& o) noexcept;
  Journal& operator=(Journal&& o) noexcept;
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;
  ~Journal();

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] bool empty() const { return entries_.empty(); }
  [[nodiscard]] const std::vector<JournalEntry>& entries() const { return entries_; }
  // The last record (not empty()).
  [[nodiscard]] const JournalEntry& last() const { return entries_.back(); }
  [[nodiscard]] uint32_t serial() const { return entries_.back().serial; }
  // Diffs held and their octets (what the limits bound).
  [[nodiscard]] size_t diffCount() const { return diff_count_; }
  [[nodiscard]] uint64_t diffBytes() const { return diff_bytes_; }
  [[nodiscard]] uint64_t fileBytes() const { return size_; }

  // Replaces the file (temporary file, fsync, rename) with one holding only a snapshot of
  // `content`: a new journal, or one restarted when its history cannot go on (a zone file edited
  // by hand without a newer serial). `digest` and `file_hash` describe `content` and its file.
  [[nodiscard]] Result<void> reset(const ZoneContent& content, uint64_t digest,
                                   const FileHash& file_hash, int64_t time);

  // Appends `d` (old serial = serial(), new serial newer by RFC 1982), written and fdatasync'ed
  // before it returns: the change is durable. On an error nothing is appended (the file is cut
  // back to its previous length).
  [[nodiscard]] Result<void> append(const ZoneDiff& d, uint64_t digest, const FileHash& file_hash,
                                    int64_t time);

  // Removes the last record, a diff appended by append() (the step after it failed).
  [[nodiscard]] Result<void> dropLast();

  // When the diffs exceed the limits: rewrites the file (temporary file, fsync, rename) with the
  // newest diffs within half of each limit and a snapshot of `latest`, which must be the content
  // at serial() (its digest `digest`). Returns whether it compacted. On an error the journal is
  // unchanged and still valid (only over its bounds).
  [[nodiscard]] Result<bool> compactIfNeeded(const ZoneContent& latest, uint64_t digest,
                                             int64_t time);

  // The content after the last record: the last snapshot with the diffs after it applied.
  [[nodiscard]] Result<ZoneContent> latest() const;

  // `base` (the zone file as loaded) brought up to date: the diffs after base's serial applied in
  // order (none when base is at serial()). Refused when the journal does not go back to base's
  // serial or a diff does not apply to it (base is not the content the journal had then).
  [[nodiscard]] Result<ZoneContent> replay(ZoneContent base) const;

  // The diffs that take a copy at `serial` to serial(), oldest first (RFC 1995 §4: the IXFR
  // answer's sequence): empty when `serial` is the latest or newer (RFC 1982; RFC 1995 §2: up to
  // date); nullopt when the journal does not hold a history back to `serial` (compacted away, or
  // a serial never seen): then a full transfer.
  [[nodiscard]] Result<std::optional<std::vector<ZoneDiff>>> diffsSince(uint32_t serial) const;

  // The newest record whose zone-file hash is `h`, if any.
  [[nodiscard]] std::optional<size_t> findFileHash(const FileHash& h) const;

 private:
  Journal(std::string path, const dns::NameBuf& apex, JournalLimits limits);
  [[nodiscard]] Result<std::vector<uint8_t>> readPayload(const JournalEntry& e) const;
  [[nodiscard]] Result<ZoneDiff> readDiff(const JournalEntry& e) const;
  [[nodiscard]] Result<void> reopen();
  [[nodiscard]] size_t snapshots() const;
  // Index of the first record that takes the content at serial `from` forward (size() when
  // `from` is the latest); nullopt when no record starts from or ends at it.
  [[nodiscard]] std::optional<size_t> after(uint32_t from) const;
  void closeFd();

  std::string path_;
  dns::NameBuf apex_;
  JournalLimits limits_;
  int fd_ = -1;
  uint64_t size_ = 0;  // octets of valid records (the file's length)
  std::vector<JournalEntry> entries_;
  size_t diff_count_ = 0;
  uint64_t diff_bytes_ = 0;
};

}  // namespace meridian::zones
