// The zone journal: records survive a reopen, the latest content and replay() rebuild the zone,
// diffsSince() gives RFC 1995's sequence (or nullopt for a full transfer), a torn or corrupted
// tail is cut off and never misread, serials must chain, and compaction keeps the newest diffs
// within its bounds with a snapshot of the latest content.
// <optional> before Catch: GCC 12's operator<=> for optional does not compile after catch.hpp.
#include <optional>

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../testutil.h"
#include "content_testutil.h"
#include "zones/diff.h"
#include "zones/journal.h"
#include "zones/serial.h"

using namespace meridian;
using test::name;

// REQUIRE_OK evaluates its argument twice (once for the message): a call that changes the journal
// goes through this instead.
#define REQUIRE_DONE(expr)     \
  do {                         \
    const auto done_ = (expr); \
    REQUIRE_OK(done_);         \
  } while (0)

namespace {

std::string tempDir() {
  char tmpl[] = "/tmp/meridian-journal-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  return tmpl;
}

// A directory for one test's journal, removed afterwards (a failed REQUIRE included).
struct Scratch {
  std::string dir = tempDir();
  std::string path = dir + "/example.com.journal";
  ~Scratch() { std::filesystem::remove_all(dir); }
};

uint64_t fileSize(const std::string& path) {
  return std::filesystem::file_size(path);
}

// A zone and a sequence of versions of it, each a random edit of the one before with a newer
// serial.
struct History {
  std::vector<zones::ZoneContent> versions;
  std::vector<zones::ZoneDiff> diffs;  // diffs[k] takes versions[k] to versions[k + 1]
};

History history(uint32_t seed, size_t changes) {
  test::RandomZone r(seed);
  const dns::NameBuf apex = name("example.com.");
  History h;
  h.versions.push_back(r.zone(apex, 10));
  while (h.diffs.size() < changes) {
    zones::ZoneContent next = h.versions.back();
    for (size_t n = 1 + r.below(3); n-- > 0;) {
      if (r.below(3) == 0 && next.rrsetCount() > 2) {
        const auto rs = next.rrset(2 + r.below(next.rrsetCount() - 2));
        next.remove(rs.owner(), rs.type());
      } else {
        REQUIRE(next.replace(r.rrset(apex)));
      }
    }
    REQUIRE(next.setSerial(zones::nextSerial(*next.serial(), zones::SerialPolicy::kIncrement, 0)));
    h.diffs.push_back(zones::diff(h.versions.back(), next));
    h.versions.push_back(std::move(next));
  }
  return h;
}

zones::FileHash hashOf(size_t k) {
  return zones::hashBytes("version " + std::to_string(k));
}

zones::Journal openJournal(const std::string& path, std::vector<std::string>& warnings,
                           zones::JournalLimits limits = {}) {
  auto j = zones::Journal::open(path, name("example.com."), limits, warnings);
  REQUIRE_OK(j);
  return std::move(*j);
}

// A journal at `path` holding h.versions[0] and every diff.
void write(const std::string& path, const History& h) {
  std::vector<std::string> warnings;
  zones::Journal j = openJournal(path, warnings);
  REQUIRE(j.empty());
  REQUIRE_DONE(j.reset(h.versions[0], 0, hashOf(0), 1000));
  for (size_t k = 0; k < h.diffs.size(); ++k) {
    REQUIRE_DONE(j.append(h.diffs[k], k + 1, hashOf(k + 1), 1000 + static_cast<int64_t>(k)));
  }
}

}  // namespace

TEST_CASE("journal: diffs survive a reopen; latest, replay and diffsSince", "[zones][journal]") {
  const Scratch scratch;
  const std::string& path = scratch.path;
  const History h = history(7, 12);
  write(path, h);

  std::vector<std::string> warnings;
  zones::Journal j = openJournal(path, warnings);
  CHECK(warnings.empty());
  REQUIRE(j.entries().size() == 13);
  CHECK(j.diffCount() == 12);
  CHECK(j.serial() == *h.versions.back().serial());
  CHECK(j.last().file_hash == hashOf(12));
  CHECK(j.last().digest == 12);
  CHECK(j.entries()[3].time == 1002);
  CHECK(j.findFileHash(hashOf(5)) == std::optional<size_t>(5));
  CHECK(!j.findFileHash(hashOf(99)));

  auto latest = j.latest();
  REQUIRE_OK(latest);
  CHECK(*latest == h.versions.back());
  // Replay over any version the journal has seen (the zone file as loaded) reaches the latest.
  for (size_t k : {size_t{0}, size_t{4}, size_t{12}}) {
    auto replayed = j.replay(h.versions[k]);
    REQUIRE_OK(replayed);
    CHECK(*replayed == h.versions.back());
  }
  // RFC 1995: the diffs from a serial to the latest, oldest first.
  auto since = j.diffsSince(*h.versions[9].serial());
  REQUIRE_OK(since);
  REQUIRE(since->has_value());
  REQUIRE((*since)->size() == 3);
  for (size_t k = 0; k < 3; ++k) {
    CHECK((**since)[k].old_serial == h.diffs[9 + k].old_serial);
    CHECK((**since)[k].new_serial == h.diffs[9 + k].new_serial);
    CHECK((**since)[k].removed == h.diffs[9 + k].removed);
    CHECK((**since)[k].added == h.diffs[9 + k].added);
  }
  auto none = j.diffsSince(j.serial());
  REQUIRE_OK(none);
  CHECK((none->has_value() && (*none)->empty()));
  // RFC 1995 §2: a copy newer than ours is up to date too.
  auto ahead = j.diffsSince(j.serial() + 5);
  REQUIRE_OK(ahead);
  CHECK((ahead->has_value() && (*ahead)->empty()));
  auto unknown = j.diffsSince(*h.versions[0].serial() - 1000);
  REQUIRE_OK(unknown);
  CHECK(!unknown->has_value());
  // A base the journal does not know is refused, not patched.
  zones::ZoneContent stranger = h.versions[3];
  REQUIRE(stranger.setSerial(*h.versions[0].serial() - 5));
  CHECK(!j.replay(stranger));
}

TEST_CASE("journal: appends must follow the serial chain", "[zones][journal]") {
  const Scratch scratch;
  const std::string& path = scratch.path;
  const History h = history(11, 3);
  std::vector<std::string> warnings;
  zones::Journal j = openJournal(path, warnings);
  CHECK(!j.append(h.diffs[0], 0, hashOf(1), 0));  // not started
  REQUIRE_DONE(j.reset(h.versions[0], 0, hashOf(0), 0));
  CHECK(!j.append(h.diffs[1], 0, hashOf(2), 0));  // from the wrong serial
  zones::ZoneDiff back = h.diffs[0];
  back.new_serial = back.old_serial - 1;  // RFC 1982: older
  CHECK(!j.append(back, 0, hashOf(1), 0));
  const uint64_t size = fileSize(path);
  CHECK(size == j.fileBytes());
  REQUIRE_DONE(j.append(h.diffs[0], 0, hashOf(1), 0));
  CHECK(fileSize(path) > size);
  REQUIRE_DONE(j.dropLast());
  CHECK(fileSize(path) == size);
  CHECK(!j.dropLast());  // the snapshot is not a change to drop
}

TEST_CASE("journal: a torn or corrupted tail is cut off, never misread", "[zones][journal]") {
  const Scratch scratch;
  const std::string& path = scratch.path;
  const History h = history(3, 4);
  write(path, h);
  std::vector<std::string> warnings;
  uint64_t full = 0, before_last = 0;
  {
    zones::Journal j = openJournal(path, warnings);
    full = j.fileBytes();
    before_last = j.last().offset;
  }
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  REQUIRE(bytes.size() == full);
  auto put = [&](const std::string& b) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << b;
  };
  // Every cut inside the last record: it is dropped, the rest kept.
  std::vector<uint64_t> cuts = {before_last + 1, before_last + 7, before_last + 8, before_last + 30,
                                full - 1};
  for (uint64_t cut : cuts) {
    INFO("cut at " << cut);
    put(bytes.substr(0, cut));
    warnings.clear();
    zones::Journal j = openJournal(path, warnings);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("cut short") != std::string::npos);
    CHECK(j.serial() == *h.versions[3].serial());
    CHECK(fileSize(path) == before_last);
    auto latest = j.latest();
    REQUIRE_OK(latest);
    CHECK(*latest == h.versions[3]);
  }
  // Zeros after the last record (a file extended but never written), and a flipped octet in it.
  for (int variant = 0; variant < 2; ++variant) {
    std::string b = bytes;
    if (variant == 0) {
      b += std::string(100, '\0');
    } else {
      b[full - 3] ^= 0x10;
    }
    put(b);
    warnings.clear();
    zones::Journal j = openJournal(path, warnings);
    REQUIRE(warnings.size() == 1);
    CHECK(j.serial() == *(variant == 0 ? h.versions[4] : h.versions[3]).serial());
  }
  // Not a journal, or another zone's: refused, not truncated.
  put("not a journal at all");
  CHECK(!zones::Journal::open(path, name("example.com."), {}, warnings));
  CHECK(fileSize(path) == 20);
  put(bytes);
  CHECK(!zones::Journal::open(path, name("example.org."), {}, warnings));
}

TEST_CASE("journal: compaction keeps the newest diffs within its bounds", "[zones][journal]") {
  const Scratch scratch;
  const std::string& path = scratch.path;
  const History h = history(5, 40);
  const zones::JournalLimits limits{1 << 20, 8};
  std::vector<std::string> warnings;
  {
    zones::Journal j = openJournal(path, warnings, limits);
    REQUIRE_DONE(j.reset(h.versions[0], 0, hashOf(0), 0));
    size_t compactions = 0;
    for (size_t k = 0; k < h.diffs.size(); ++k) {
      REQUIRE_DONE(j.append(h.diffs[k], k + 1, hashOf(k + 1), 0));
      auto c = j.compactIfNeeded(h.versions[k + 1], k + 1, 0);
      REQUIRE_OK(c);
      compactions += *c ? 1 : 0;
      CHECK(j.diffCount() <= limits.max_entries);
    }
    CHECK(compactions >= 4);
    CHECK(j.serial() == *h.versions.back().serial());
  }
  // Reopened: the newest diffs, then the snapshot of the latest content.
  zones::Journal j = openJournal(path, warnings, limits);
  CHECK(warnings.empty());
  size_t snapshots = 0;
  for (const auto& e : j.entries()) snapshots += e.kind == zones::JournalEntry::Kind::kSnapshot;
  CHECK(snapshots == 1);
  CHECK(j.entries().front().kind == zones::JournalEntry::Kind::kDiff);
  CHECK(j.diffCount() >= limits.max_entries / 2);
  CHECK(j.diffCount() <= limits.max_entries);
  auto latest = j.latest();
  REQUIRE_OK(latest);
  CHECK(*latest == h.versions.back());
  // IXFR from a serial still held; a full transfer from one compacted away.
  const size_t oldest = h.diffs.size() - j.diffCount();
  auto since = j.diffsSince(*h.versions[oldest].serial());
  REQUIRE_OK(since);
  REQUIRE(since->has_value());
  CHECK((*since)->size() == j.diffCount());
  auto gone = j.diffsSince(*h.versions[0].serial());
  REQUIRE_OK(gone);
  CHECK(!gone->has_value());
  // Replay over the zone file of a version still held reaches the latest.
  auto replayed = j.replay(h.versions[oldest]);
  REQUIRE_OK(replayed);
  CHECK(*replayed == h.versions.back());
}

TEST_CASE("journal: compaction refuses a content that is not the latest", "[zones][journal]") {
  const Scratch scratch;
  const std::string& path = scratch.path;
  const History h = history(9, 4);
  std::vector<std::string> warnings;
  zones::Journal j = openJournal(path, warnings, zones::JournalLimits{1 << 20, 2});
  REQUIRE_DONE(j.reset(h.versions[0], 0, hashOf(0), 0));
  for (size_t k = 0; k < 4; ++k) REQUIRE_DONE(j.append(h.diffs[k], 0, hashOf(k + 1), 0));
  const uint64_t size = j.fileBytes();
  CHECK(!j.compactIfNeeded(h.versions[2], 0, 0));
  CHECK(j.fileBytes() == size);
  CHECK(j.diffCount() == 4);
  auto ok = j.compactIfNeeded(h.versions[4], 0, 0);
  REQUIRE_OK(ok);
  CHECK(*ok);
  CHECK(j.diffCount() == 1);
}
