// applyChanges(): the request's changes applied to a copy of the content, checked field by field
// (ZoneContent::replace) and as a zone (buildZone, the checks a zone file gets), the diff taken
// from the touched RRsets only and the serial bumped. EditableZone: the commit sequence (check,
// journal, write-back) and the recovery at start. Control thread only.
#include "zones/edit.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <string_view>

#include "core/file.h"

#include "zones/writer.h"
#include "zones/zone_builder.h"

namespace meridian::zones {
namespace {

std::string fieldOf(size_t index) {
  return "rrsets[" + std::to_string(index) + "]";
}

std::string describe(const RRsetSpec& rs) {
  return dns::toText(rs.owner.data) + " " + typeToText(rs.type);
}

EditError invalid(std::string field, std::string message) {
  return {EditErrorKind::kInvalid, std::move(field), std::move(message)};
}

// Octets the RRset takes in a response that holds nothing else: header, the question naming its
// owner, and each record with its owner compressed to a pointer (2 + TYPE, CLASS, TTL, RDLENGTH
// 10 + RDATA). Names inside RDATA are counted uncompressed, so this may overstate what a
// response needs, never understate it.
size_t responseSize(const RRsetSpec& rs) {
  size_t n = dns::kHeaderSize + rs.owner.length + 4;
  for (const auto& rd : rs.rdata) n += 2 + 10 + rd.size();
  return n;
}

// Does `text` hold `word` with no letter or digit on either side?
bool namesWord(std::string_view text, std::string_view word) {
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  for (size_t at = text.find(word); at != std::string_view::npos; at = text.find(word, at + 1)) {
    const size_t end = at + word.size();
    if ((at == 0 || !alnum(text[at - 1])) && (end == text.size() || !alnum(text[end]))) {
      return true;
    }
  }
  return false;
}

// The change a zone-level message (ZoneBuilder's, which names owners in lowercase presentation
// form after a blank) is about: one whose owner the message names, preferring one whose type it
// names too. npos when it names none.
size_t blame(const std::string& message, const ChangeRequest& request) {
  size_t found = std::string::npos;
  for (size_t i = 0; i < request.changes.size(); ++i) {
    dns::NameBuf lower = request.changes[i].rrset.owner;
    dns::lowercase(lower);
    std::string owner(1, ' ');
    owner.append(dns::toText(lower.data));
    const size_t at = message.find(owner);
    if (at == std::string::npos) continue;
    if (namesWord(message, typeToText(request.changes[i].rrset.type))) return i;
    if (found == std::string::npos) found = i;
  }
  return found;
}

}  // namespace

EditResult<Edit> applyChanges(const ZoneContent& base, const ChangeRequest& request,
                              SerialPolicy policy, int64_t now) {
  const auto& changes = request.changes;
  // Two changes of one owner+type: which one would win is not for us to guess.
  {
    std::vector<size_t> order(changes.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    auto key = [&](size_t i, size_t j) {
      const int c = canonicalCompare(changes[i].rrset.owner.data, changes[j].rrset.owner.data);
      if (c != 0) return c;
      return changes[i].rrset.type == changes[j].rrset.type
                 ? 0
                 : (changes[i].rrset.type < changes[j].rrset.type ? -1 : 1);
    };
    for (const auto& ch : changes) {
      const auto& o = ch.rrset.owner;
      if (o.length == 0 || dns::wireLength(o.data) != o.length) {
        return invalid(fieldOf(static_cast<size_t>(&ch - changes.data())),
                       "invalid owner name (not a wire-form name of its stated length)");
      }
    }
    std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return key(i, j) < 0; });
    for (size_t k = 1; k < order.size(); ++k) {
      if (key(order[k - 1], order[k]) == 0) {
        return invalid(fieldOf(order[k]),
                       "a second change to " + describe(changes[order[k]].rrset) +
                           " in one request (the first is " + fieldOf(order[k - 1]) + ")");
      }
    }
  }

  Edit out{base, ZoneDiff{0, 0, ZoneContent(base.apex()), ZoneContent(base.apex())}, nullptr, {}};
  const uint32_t old_serial = base.serial().value_or(0);
  std::optional<size_t> soa_change;
  for (size_t i = 0; i < changes.size(); ++i) {
    const RRsetChange& ch = changes[i];
    const bool apex_soa = ch.rrset.type == dns::rrtype::kSOA &&
                          dns::equalNames(ch.rrset.owner.data, base.apex().data);
    if (apex_soa) soa_change = i;
    Result<void> done;
    if (ch.changetype == ChangeType::kDelete) {
      // A REPLACE with no records deletes, with the same checks of owner and type.
      done = out.content.replace(RRsetSpec{ch.rrset.owner, ch.rrset.type, 0, {}});
    } else {
      if (responseSize(ch.rrset) > dns::kMaxMessageSize) {
        return invalid(fieldOf(i) + ".records",
                       "the RRset " + describe(ch.rrset) + " takes " +
                           std::to_string(responseSize(ch.rrset)) +
                           " octets in a response, more than a DNS message holds (65535, RFC "
                           "1035 \u00a74.2.2)");
      }
      done = out.content.replace(ch.rrset);
      const auto put = out.content.find(ch.rrset.owner.data, ch.rrset.type);
      if (done && put && put->size() != ch.rrset.rdata.size()) {
        // replace() keeps one of equal records; a request listing one twice is refused, as
        // PowerDNS does ("Duplicate record in RRset").
        return invalid(fieldOf(i) + ".records",
                       "the RRset " + describe(ch.rrset) + " lists the same record twice");
      }
    }
    if (!done) return invalid(fieldOf(i), done.error().message);
  }

  // The diff: the touched RRsets whose old and new versions differ (owner spelling, TTL, RDATA
  // and its order, as diff() compares).
  for (const auto& ch : changes) {
    const auto before = base.find(ch.rrset.owner.data, ch.rrset.type);
    const auto after = out.content.find(ch.rrset.owner.data, ch.rrset.type);
    if (before && after && before->sameAs(*after)) continue;
    if (!before && !after) continue;
    // Cannot fail: both RRsets were accepted by replace() into a content of this apex.
    if (before) (void)out.diff.removed.replace(before->spec());
    if (after) (void)out.diff.added.replace(after->spec());
  }
  if (out.diff.empty()) {
    out.content = base;
    out.diff.old_serial = out.diff.new_serial = old_serial;
    return out;
  }

  // RFC 1982: the serial moves forward on every change (serial.h, nextSerial).
  const std::optional<uint32_t> given = soa_change ? out.content.serial() : std::nullopt;
  const uint32_t new_serial =
      given && serialNewer(*given, old_serial) ? *given : nextSerial(old_serial, policy, now);
  // A content without a single well-formed apex SOA is refused below, with buildZone()'s words.
  const Result<void> set = out.content.setSerial(new_serial);
  const auto soa_before = base.find(base.apex().data, dns::rrtype::kSOA);
  const auto soa_after = out.content.find(base.apex().data, dns::rrtype::kSOA);
  if (soa_before) (void)out.diff.removed.replace(soa_before->spec());
  if (soa_after) (void)out.diff.added.replace(soa_after->spec());
  out.diff.old_serial = old_serial;
  out.diff.new_serial = new_serial;

  auto zone = buildZone(out.content, out.warnings);
  if (!zone || !set) {
    const std::string& m = !zone ? zone.error().message : set.error().message;
    const size_t to_blame = blame(m.substr(0, m.find('\n')), request);
    return invalid(to_blame == std::string::npos ? std::string() : fieldOf(to_blame), m);
  }
  out.zone = std::move(*zone);
  return out;
}

// EditableZone

namespace {

EditError storage(std::string message) {
  return {EditErrorKind::kStorage, {}, std::move(message)};
}

EditError conflict(std::string message) {
  return {EditErrorKind::kConflict, {}, std::move(message)};
}

// The zone file read once: its hash and its content come from the same octets.
struct FileRead {
  std::optional<FileHash> hash;         // unset when the file cannot be read
  std::optional<LoadedContent> loaded;  // unset when it does not load
  std::string problem;                  // why not
};

FileRead readZoneFile(const std::string& origin, const std::string& path) {
  FileRead out;
  std::string text;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    out.problem = core::errnoText("cannot open", path);
    return out;
  }
  char buf[1 << 16];
  for (;;) {
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      out.problem = core::errnoText("cannot read", path);
      ::close(fd);
      return out;
    }
    if (r == 0) break;
    text.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  out.hash = hashBytes(text);
  // The file's own name as the label: messages read file:line and $INCLUDE resolves beside it,
  // as loadZoneContentFile() does.
  auto loaded = loadZoneContentText(origin, text, path);
  if (loaded) {
    out.loaded = std::move(*loaded);
  } else {
    out.problem = loaded.error().message;
  }
  return out;
}

// At open nothing else writes this zone's files, so temporaries are garbage.
void removeStaleTemporaries(const std::string& path, std::vector<std::string>& warnings) {
  std::error_code ec;
  for (const auto& t : staleTemporaries(path)) {
    if (std::filesystem::remove(t, ec)) {
      warnings.push_back("removed " + t + ", a temporary file left by an interrupted write");
    }
  }
}

std::string countText(size_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

std::string serialChange(const ZoneDiff& d) {
  return "serial " + std::to_string(d.old_serial) + " -> " + std::to_string(d.new_serial) + ", " +
         countText(d.removed.rrsetCount(), "RRset") + " removed, " +
         countText(d.added.rrsetCount(), "RRset") + " added";
}

}  // namespace

std::vector<std::string> staleTemporaries(const std::string& path) {
  const std::filesystem::path target(path);
  std::string prefix(1, '.');
  prefix.append(target.filename().string()).append(".tmp.");
  const std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : ".";
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() == prefix.size() + 6 && name.compare(0, prefix.size(), prefix) == 0)
      out.push_back(entry.path().string());
  }
  return out;
}

EditResult<EditableZone> EditableZone::open(const EditableZoneConfig& config_in, int64_t now,
                                            std::vector<std::string>& warnings) {
  EditableZoneConfig config = config_in;
  if (config.journal.empty()) config.journal = config.file + ".journal";
  // The journal's directory (STATE/journal/ for the first zone that changes) is made here; one
  // that cannot be made fails Journal::open below, with its message.
  if (const auto dir = std::filesystem::path(config.journal).parent_path(); !dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
  }
  dns::NameBuf apex;
  const std::string absolute =
      config.origin.empty() || config.origin.back() != '.' ? config.origin + "." : config.origin;
  if (!dns::fromText(absolute, apex))
    return invalid({}, "invalid zone name '" + config.origin + "'");

  removeStaleTemporaries(config.file, warnings);
  removeStaleTemporaries(config.journal, warnings);
  FileRead file = readZoneFile(config.origin, config.file);
  auto opened = Journal::open(config.journal, apex, config.limits, warnings);
  if (!opened) {
    // Kept for a post-mortem, out of the way of the new journal.
    const std::string aside = config.journal + ".bad";
    warnings.push_back(opened.error().message + "; moved to " + aside);
    if (::rename(config.journal.c_str(), aside.c_str()) != 0) {
      return storage(core::errnoText("cannot move the unreadable journal aside to", aside));
    }
    opened = Journal::open(config.journal, apex, config.limits, warnings);
    if (!opened) return storage(opened.error().message);
  }
  EditableZone z(config, std::move(*opened));
  const std::string& path = config.file;

  if (z.journal_.empty()) {
    if (!file.loaded) return invalid({}, file.problem);
    z.content_ = std::move(file.loaded->content);
    z.zone_ = file.loaded->loaded.zone;
    z.includes_ = file.loaded->loaded.includes;
    warnings.insert(warnings.end(), file.loaded->loaded.warnings.begin(),
                    file.loaded->loaded.warnings.end());
    z.file_hash_ = *file.hash;
    // The kept copy starts now; without it the zone still serves, and commit() tries again.
    if (auto r = z.journal_.reset(z.content_, z.zone_->digest(), z.file_hash_, now); !r) {
      warnings.push_back(r.error().message);
    }
    return z;
  }

  // A kill between an append and its compaction leaves the journal one change over its bounds.
  auto compactAtOpen = [&](EditableZone& opened) {
    if (auto c = opened.journal_.compactIfNeeded(opened.content_, opened.zone_->digest(), now);
        !c) {
      warnings.push_back(c.error().message);
    }
  };
  const JournalEntry last = z.journal_.last();
  if (file.loaded && *file.hash == last.file_hash &&
      file.loaded->loaded.zone->digest() == last.digest) {
    // The file is the one the journal last recorded.
    z.content_ = std::move(file.loaded->content);
    z.zone_ = file.loaded->loaded.zone;
    z.includes_ = file.loaded->loaded.includes;
    warnings.insert(warnings.end(), file.loaded->loaded.warnings.begin(),
                    file.loaded->loaded.warnings.end());
    z.file_hash_ = *file.hash;
    compactAtOpen(z);
    return z;
  }

  auto latest = z.journal_.latest();
  // The serial of the version the file is, when that is one the journal has already passed.
  std::optional<uint32_t> behind;
  if (const auto k = file.hash ? z.journal_.findFileHash(*file.hash) : std::nullopt;
      k && *k + 1 < z.journal_.entries().size()) {
    behind = z.journal_.entries()[*k].serial;
  }
  if (!file.loaded || behind) {
    // The journal's latest is served: the file is broken, or a version the journal has passed.
    if (!latest) {
      return invalid({}, file.problem.empty() ? latest.error().message
                                              : file.problem + "\n" + latest.error().message);
    }
    auto built = buildZone(*latest, warnings);
    if (!built) return invalid({}, built.error().message);
    z.content_ = std::move(*latest);
    z.zone_ = std::move(*built);
    if (behind) {
      warnings.push_back("zone file " + path + " is at serial " + std::to_string(*behind) +
                         ", behind its journal (serial " + std::to_string(last.serial) +
                         "): Meridian stopped before writing it back; rewritten from the journal");
      const std::string text = zoneText(z.content_);
      if (auto w = writeFileAtomic(path, text); !w) {
        warnings.push_back(w.error().message + " (the next change writes the file again)");
        z.file_hash_ = *file.hash;
      } else {
        z.file_hash_ = hashBytes(text);
      }
    } else {
      z.file_problem_ = file.problem;
      z.file_hash_ = last.file_hash;
      warnings.push_back("zone " + z.content_.origin() + ": the zone file does not load (" +
                         file.problem + "); serving the last good version, serial " +
                         std::to_string(last.serial) + ", from its journal " + config.journal);
    }
    compactAtOpen(z);
    return z;
  }

  // The file loads and differs from what the journal recorded: a hand edit while Meridian was
  // stopped (or the same records written differently). The file wins.
  if (!latest) {
    warnings.push_back(latest.error().message + "; the journal restarts from the zone file");
    z.content_ = ZoneContent(apex);
  } else {
    z.content_ = std::move(*latest);
  }
  auto adopted = z.adopt(std::move(*file.loaded), *file.hash, now);
  if (!adopted) return adopted.error();
  warnings.insert(warnings.end(), adopted->warnings.begin(), adopted->warnings.end());
  if (!adopted->diff.empty()) {
    warnings.push_back("zone file " + path + " was changed while Meridian was stopped (" +
                       serialChange(adopted->diff) + "); the file's version is served");
  }
  return z;
}

EditResult<EditableZone::Committed> EditableZone::adopt(LoadedContent loaded, const FileHash& hash,
                                                        int64_t now) {
  Committed out;
  out.warnings = std::move(loaded.loaded.warnings);
  out.includes = std::move(loaded.loaded.includes);
  out.diff = diff(content_, loaded.content);
  const uint64_t digest = loaded.loaded.zone->digest();
  if (!out.diff.empty()) {
    const bool chained = !journal_.empty() && out.diff.old_serial == journal_.serial() &&
                         serialNewer(out.diff.new_serial, out.diff.old_serial);
    if (chained) {
      if (auto r = journal_.append(out.diff, digest, hash, now); !r) {
        return storage(r.error().message);
      }
      if (auto c = journal_.compactIfNeeded(loaded.content, digest, now); !c) {
        out.warnings.push_back(c.error().message);
      }
    } else {
      // RFC 1982: a diff must take the serial forward; without that the history cannot go on.
      if (auto r = journal_.reset(loaded.content, digest, hash, now); !r) {
        return storage(r.error().message);
      }
      out.warnings.push_back("zone file " + config_.file + ": serial " +
                             std::to_string(out.diff.new_serial) + " is not newer than " +
                             std::to_string(out.diff.old_serial) +
                             "; the journal restarts from this version (secondaries need a full "
                             "transfer)");
    }
    out.zone = loaded.loaded.zone;
  }
  content_ = std::move(loaded.content);
  zone_ = std::move(loaded.loaded.zone);
  includes_ = std::move(loaded.loaded.includes);
  file_hash_ = hash;
  file_problem_.clear();
  return out;
}

EditResult<EditableZone::Committed> EditableZone::reload(int64_t now) {
  FileRead file = readZoneFile(config_.origin, config_.file);
  if (!file.loaded) return invalid({}, file.problem);
  if (journal_.empty()) {
    // The kept copy could not be started at open(): start it from this version.
    const uint64_t digest = file.loaded->loaded.zone->digest();
    if (auto r = journal_.reset(file.loaded->content, digest, *file.hash, now); !r) {
      return storage(r.error().message);
    }
  }
  return adopt(std::move(*file.loaded), *file.hash, now);
}

EditResult<EditableZone::Committed> EditableZone::commit(const ChangeRequest& request,
                                                         int64_t now) {
  if (!file_problem_.empty()) {
    return conflict("zone file " + config_.file + " does not load (" + file_problem_ +
                    "); the zone is served from its journal. Fix the file and reload it before "
                    "changing the zone; nothing was changed");
  }
  auto edit = applyChanges(content_, request, config_.policy, now);
  if (!edit) return edit.error();
  Committed out;
  out.warnings = std::move(edit->warnings);
  if (edit->diff.empty()) return out;

  // The race check: a hand edit since the last load or write is never overwritten.
  auto disk = hashFile(config_.file);
  if (!disk || *disk != file_hash_) {
    return conflict("zone file " + config_.file +
                    (disk ? " was changed on disk since Meridian last loaded or wrote it"
                          : " cannot be read (" + disk.error().message + ")") +
                    "; reload it first (its edits would otherwise be lost); nothing was changed");
  }
  if (journal_.empty()) {
    if (auto r = journal_.reset(content_, zone_->digest(), file_hash_, now); !r) {
      return storage(r.error().message + "; nothing was changed");
    }
  }
  const std::string text = zoneText(edit->content);
  const FileHash hash = hashBytes(text);
  const uint64_t digest = edit->zone->digest();
  if (auto r = journal_.append(edit->diff, digest, hash, now); !r) {
    return storage(r.error().message + "; nothing was changed");
  }
  FileHash on_disk = hash;
  if (auto w = writeFileAtomic(config_.file, text); !w) {
    auto now_disk = hashFile(config_.file);
    if (now_disk && *now_disk == hash) {
      // Renamed into place; only its directory's fsync failed. The journal holds the change.
      out.warnings.push_back(w.error().message + " (the change is durable in the journal)");
    } else if (auto d = journal_.dropLast(); d) {
      return storage(w.error().message + "; nothing was changed");
    } else {
      // The change stays in the journal, so it is committed; the file catches up at the next
      // change or at start (the journal is ahead of it).
      out.warnings.push_back(w.error().message + "; the change is in the journal (" +
                             d.error().message +
                             ") and the zone file is written at the next "
                             "change or restart");
      on_disk = file_hash_;
    }
  }
  if (auto c = journal_.compactIfNeeded(edit->content, digest, now); !c) {
    out.warnings.push_back(c.error().message);
  }
  out.diff = std::move(edit->diff);
  out.zone = edit->zone;
  content_ = std::move(edit->content);
  zone_ = std::move(edit->zone);
  includes_.clear();  // the file written back holds every record itself
  file_hash_ = on_disk;
  return out;
}

}  // namespace meridian::zones
