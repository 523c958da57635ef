// Zone edits: a change request (RRsets replaced or deleted, PowerDNS PATCH semantics) applied to a
// ZoneContent all or nothing, checked so that the zone stays servable, with the SOA serial bumped
// by the zone's policy; and the commit sequence that makes such a change durable (journal, then
// the zone file written back) and the recovery of a zone at start. The management API's PATCH,
// meridianctl and reloads of hand-edited files go through here. Blocking file I/O and fsync: the
// control side runs it on its work pool, one call at a time per EditableZone (app/runtime.h's
// zone lanes); nothing here is read by the DNS workers, which get the compiled Zone.
#pragma once

#include <boost/system/result.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "zones/content.h"
#include "zones/diff.h"
#include "zones/journal.h"
#include "zones/serial.h"
#include "zones/zone.h"

namespace meridian::zones {

// One RRset change of a request (PowerDNS's "changetype").
enum class ChangeType {
  kReplace,  // all records of owner+type become rrset.rdata (an empty list deletes the RRset)
  kDelete,   // owner+type is deleted (rrset.ttl and rrset.rdata are ignored); absent is fine
};

struct RRsetChange {
  ChangeType changetype = ChangeType::kReplace;
  RRsetSpec rrset;
};

// The changes of one request, applied together or not at all. At most one change per owner+type
// (owners compared case-insensitively): a second one is refused, as PowerDNS does.
struct ChangeRequest {
  std::vector<RRsetChange> changes;
};

// What went wrong, for the API's status code.
enum class EditErrorKind {
  kInvalid,   // the request, or the zone it would leave (422 Unprocessable Entity)
  kConflict,  // the zone file was changed on disk since it was loaded (409 Conflict)
  kStorage,   // the journal or the zone file could not be written (500); nothing changed
};

struct EditError {
  EditErrorKind kind = EditErrorKind::kInvalid;
  // The offending part of the request: "rrsets[2]" (the change's index in the request, as in
  // the PowerDNS body), "rrsets[2].records" (the RRset as a whole cannot be sent), or empty when
  // no single change is to blame (a storage error, a conflict).
  std::string field;
  // A message a human can act on, naming the RRset ("www.example.com. CNAME") and the rule; it
  // does not repeat `field`. Several problems are one per line.
  std::string message;
};

// result<T, EditError>::value() on an error throws std::runtime_error("field: message").
[[noreturn]] inline void throw_exception_from_error(const EditError& e,
                                                    const boost::source_location&) {
  throw std::runtime_error(e.field.empty() ? e.message : e.field + ": " + e.message);
}

template <typename T>
using EditResult = boost::system::result<T, EditError>;

// A change applied in memory: the new content, its diff from the old one and the compiled Zone
// to publish.
struct Edit {
  ZoneContent content;
  // RRsets removed and added, the SOA included (old and new serial). empty() when the request
  // changes nothing (every RRset already as requested): then the serial is not bumped, `content`
  // is the old content and `zone` is null.
  ZoneDiff diff;
  std::shared_ptr<const Zone> zone;
  std::vector<std::string> warnings;  // buildZone()'s (DNSSEC records served unsigned, ...)
};

// Applies `request` to `base` (a servable zone: one that loaded or was built), all or nothing.
// Refused (kInvalid, `base` untouched and nothing returned) when a change is malformed (owner
// outside the zone, meta type, TTL above 2^31-1, an RDATA or an RRset that cannot fit a DNS
// message, a record listed twice), when two changes name the same owner+type, or when the zone
// it would leave is not
// servable by buildZone()'s rules: CNAME beside other data or more than one CNAME (RFC 1034
// §3.6.2, RFC 2181 §10.1), no SOA or no NS at the apex, data below a DNAME (RFC 6672 §2.3),
// more than one SOA or DNAME, and the rest of ZoneBuilder's checks. The error's field names the
// change to blame when the message names its owner.
//
// Serial: when the request replaces the apex SOA with a serial that is newer (RFC 1982) than the
// current one, that serial is kept as given; otherwise the new serial is
// nextSerial(current, policy, now), written into the SOA (the requested one, if any). PowerDNS
// instead applies SOA-EDIT-API to the serial in the request (which can move it backwards) and
// bumps nothing when SOA-EDIT-API is empty; Meridian's serial always moves forward, so a
// secondary sees every change.
//
// Cost: a copy of the content, the changes (binary search and insertion each) and buildZone()
// of the result, which the caller publishes (no second build). bench/README.md, "Zone edits".
[[nodiscard]] EditResult<Edit> applyChanges(const ZoneContent& base, const ChangeRequest& request,
                                            SerialPolicy policy, int64_t now);

// writeFileAtomic()'s temporary files (".<name>.tmp.XXXXXX" beside `path`) that a process killed
// mid-write left behind; EditableZone::open() removes those of the zone file and the journal.
[[nodiscard]] std::vector<std::string> staleTemporaries(const std::string& path);

// Where an editable zone lives on disk.
struct EditableZoneConfig {
  std::string origin;   // "example.com"
  std::string file;     // the zone file: loaded at start and on reload, written back on a change
  std::string journal;  // its journal; empty: `file` + ".journal"
  SerialPolicy policy = SerialPolicy::kIncrement;
  JournalLimits limits;
};

// One zone that changes through requests: its content, the compiled Zone to serve, its journal
// and the hash of its zone file as Meridian last loaded or wrote it. The integrator keeps one per
// editable zone, calls it from one thread at a time (not necessarily the same one) and publishes
// zone() after open(), commit() and reload().
//
// The zone's "kept copy" is its journal: a snapshot of the content plus the diffs since, from
// which the last good version is rebuilt without the zone file. It is written when the zone is
// first opened (a snapshot of the file as loaded) and kept up to date by every commit and
// reload, so even a zone that was never edited through the API survives a broken file.
class EditableZone {
 public:
  // Opens the zone at start, recovering it from its file and journal (zones/README.md,
  // "Recovery"):
  //   - file and journal agree (same file hash, or same records): the file is served;
  //   - the file is a version the journal has already passed (Meridian stopped between the
  //     journal's fsync and the file's rename): the journal's latest is served and the file
  //     rewritten from it;
  //   - the file loads but holds other records (edited by hand while Meridian was stopped): the
  //     file wins, and its difference becomes a journal diff (or, without a newer serial, the
  //     journal restarts from it);
  //   - the file does not load (or is missing): the journal's latest is served, a warning says
  //     so, and commits are refused until a reload of a fixed file succeeds.
  // Refused only when nothing servable is left (no journal, or a corrupt one, and a broken file).
  // What it found and did is appended to `warnings`. The journal's directory is made if missing.
  [[nodiscard]] static EditResult<EditableZone> open(const EditableZoneConfig& config, int64_t now,
                                                     std::vector<std::string>& warnings);

  [[nodiscard]] const ZoneContent& content() const { return content_; }
  [[nodiscard]] const std::shared_ptr<const Zone>& zone() const { return zone_; }
  [[nodiscard]] const Journal& journal() const { return journal_; }
  [[nodiscard]] const EditableZoneConfig& config() const { return config_; }
  // Why the zone is served from its journal rather than its file (empty when it is not).
  [[nodiscard]] const std::string& fileProblem() const { return file_problem_; }
  // The hash of the zone file as last loaded or written.
  [[nodiscard]] const FileHash& fileHash() const { return file_hash_; }
  // The $INCLUDEd files of the zone file as last loaded (empty when the version served came from
  // the journal or was written back: a written file includes nothing).
  [[nodiscard]] const std::vector<SourceFile>& includes() const { return includes_; }
  // The policy of the next commits' serials (a reloaded configuration, the API's soa_edit_api).
  void setPolicy(SerialPolicy policy) { config_.policy = policy; }

  struct Committed {
    ZoneDiff diff;                     // empty: nothing changed, nothing written
    std::shared_ptr<const Zone> zone;  // to publish; null when diff is empty
    std::vector<std::string> warnings;
    std::vector<SourceFile> includes;  // reload(): the file's $INCLUDEd files, as the loader saw
  };

  // The commit sequence of one request: applyChanges(); the race check (the file on disk must
  // still have the hash recorded at its last load or write, else kConflict: a hand edit since is
  // never overwritten, nor merged: reload it first); the diff appended to the journal and
  // fdatasync'ed; the zone file written back (temporary file, fsync, rename, directory fsync);
  // compaction of the journal when over its limits. Once it returns the change is durable, and
  // the caller publishes `zone` and only then acknowledges. Any error changes nothing: memory,
  // journal and file stay as they were (an append whose write-back then failed is removed
  // again).
  [[nodiscard]] EditResult<Committed> commit(const ChangeRequest& request, int64_t now);

  // The zone file reloaded (an operator's edit): its content replaces the current one and the
  // difference becomes a journal diff (the journal restarts from the file when its serial is not
  // newer), its hash is recorded and fileProblem() cleared. A file that does not load is refused
  // (kInvalid with the loader's file:line messages) and the current version keeps serving.
  [[nodiscard]] EditResult<Committed> reload(int64_t now);

 private:
  EditableZone(EditableZoneConfig config, Journal journal)
      : config_(std::move(config)), journal_(std::move(journal)) {}
  // The journal takes `loaded` (a diff from content_, or a restart), then it becomes current.
  [[nodiscard]] EditResult<Committed> adopt(LoadedContent loaded, const FileHash& hash,
                                            int64_t now);

  EditableZoneConfig config_;
  Journal journal_;
  ZoneContent content_;
  std::shared_ptr<const Zone> zone_;
  FileHash file_hash_{};
  std::string file_problem_;
  std::vector<SourceFile> includes_;
};

}  // namespace meridian::zones
