// applyChanges(): PowerDNS REPLACE/DELETE semantics, all-or-nothing, the checks that keep a zone
// servable (each refusal names the change to blame), the serial rules, and the diff it returns.
// EditableZone: commit (journal, write-back, the race with a hand edit, a failed write-back) and
// the recovery at start (broken file, file behind its journal, file edited while stopped).
// <optional> before Catch: GCC 12's operator<=> for optional does not compile after catch.hpp.
#include <optional>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../testutil.h"
#include "content_testutil.h"
#include "edit_testutil.h"
#include "zones/edit.h"
#include "zones/writer.h"

using namespace meridian;
using test::contentOf;
using test::name;
using zones::ChangeType;

namespace {

const std::string kZone =
    "$ORIGIN example.com.\n$TTL 3600\n"
    "@ IN SOA ns1 hostmaster ( 2024010101 7200 3600 1209600 300 )\n"
    "@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.10\nmail MX 10 ns1\nalias CNAME www\n"
    "d DNAME example.net.\n";

constexpr int64_t kNow = 1764547200;  // 2025-12-01 00:00:00 UTC

// An RRset from zone-file text: `lines` are records of one owner+type, owners relative to
// example.com. (loaded beside a throwaway SOA and NS, so any RRset but one at the apex parses).
zones::RRsetSpec rrset(const std::string& lines) {
  const std::string text =
      "$ORIGIN example.com.\n@ 3600 IN SOA a. b. 1 2 3 4 5\n@ 3600 IN NS a.\n" + lines + "\n";
  const zones::ZoneContent c = contentOf("example.com", text);
  for (size_t i = 0; i < c.rrsetCount(); ++i) {
    const auto rs = c.rrset(i);
    if (!dns::equalNames(rs.owner(), c.apex().data)) return rs.spec();
  }
  FAIL("no RRset in " << lines);
  return {};
}

zones::RRsetChange replace(const std::string& lines) {
  return {ChangeType::kReplace, rrset(lines)};
}

zones::RRsetChange remove(const std::string& owner, uint16_t type) {
  return {ChangeType::kDelete, zones::RRsetSpec{name(owner), type, 0, {}}};
}

zones::EditResult<zones::Edit> apply(const zones::ZoneContent& c,
                                     std::vector<zones::RRsetChange> changes,
                                     zones::SerialPolicy policy = zones::SerialPolicy::kIncrement) {
  return zones::applyChanges(c, zones::ChangeRequest{std::move(changes)}, policy, kNow);
}

std::string text(const zones::EditResult<zones::Edit>& r) {
  return r ? std::string("ok") : r.error().field + ": " + r.error().message;
}

std::vector<std::string> records(const zones::ZoneContent& c, const std::string& owner,
                                 uint16_t type) {
  std::vector<std::string> out;
  const auto rs = c.find(name(owner).data, type);
  if (!rs) return out;
  for (auto rd : rs->rdata()) out.push_back(zones::rdataToText(type, rd));
  return out;
}

}  // namespace

TEST_CASE("edit: REPLACE puts the RRset whole, DELETE removes it, the serial is bumped",
          "[zones][edit]") {
  const zones::ZoneContent base = contentOf("example.com", kZone);
  auto r = apply(base, {replace("www 300 A 192.0.2.20\nwww 300 A 192.0.2.21"),
                        replace("new 60 TXT \"hello\""), remove("mail.example.com.", 15)});
  INFO(text(r));
  REQUIRE(r);
  const auto& c = r->content;
  CHECK(records(c, "www.example.com.", 1) == std::vector<std::string>{"192.0.2.20", "192.0.2.21"});
  CHECK(c.find(name("www.example.com.").data, 1)->ttl() == 300);
  CHECK(records(c, "new.example.com.", 16) == std::vector<std::string>{"\"hello\""});
  CHECK(!c.find(name("mail.example.com.").data, 15));
  CHECK(*c.serial() == 2024010102);
  REQUIRE(r->zone);
  CHECK(r->zone->serial() == 2024010102);
  // The diff: the touched RRsets and the SOA, and it turns the old content into the new one.
  CHECK(r->diff.old_serial == 2024010101);
  CHECK(r->diff.new_serial == 2024010102);
  CHECK(r->diff.removed.rrsetCount() == 3);  // SOA, old www A, mail MX
  CHECK(r->diff.added.rrsetCount() == 3);    // SOA, new www A, new TXT
  zones::ZoneContent replayed = base;
  REQUIRE(zones::apply(replayed, r->diff));
  CHECK(replayed == c);
  // The base is untouched.
  CHECK(*base.serial() == 2024010101);
  CHECK(records(base, "www.example.com.", 1) == std::vector<std::string>{"192.0.2.10"});
}

TEST_CASE("edit: REPLACE with no records deletes; deleting what is absent is no change",
          "[zones][edit]") {
  const zones::ZoneContent base = contentOf("example.com", kZone);
  zones::RRsetChange empty{ChangeType::kReplace, {name("www.example.com."), 1, 300, {}}};
  auto r = apply(base, {empty});
  REQUIRE(r);
  CHECK(!r->content.find(name("www.example.com.").data, 1));

  // Nothing to do: no serial bump, no diff, nothing to publish.
  auto none = apply(base, {remove("nothere.example.com.", 1), replace("www 3600 A 192.0.2.10")});
  INFO(text(none));
  REQUIRE(none);
  CHECK(none->diff.empty());
  CHECK(none->content == base);
  CHECK(none->zone == nullptr);
  CHECK(none->diff.new_serial == 2024010101);
}

TEST_CASE("edit: refusals name the change and change nothing", "[zones][edit]") {
  const zones::ZoneContent base = contentOf("example.com", kZone);
  struct Case {
    std::vector<zones::RRsetChange> changes;
    std::string field;
    std::string words;  // part of the message
  };
  zones::RRsetSpec big_ttl = rrset("x 60 A 192.0.2.1");
  big_ttl.ttl = 0x80000000u;
  zones::RRsetSpec huge = rrset("x 60 TXT \"a\"");
  huge.rdata.clear();
  for (int k = 0; k < 300; ++k) {
    std::vector<uint8_t> rd(1 + 250, static_cast<uint8_t>('a' + k % 26));
    rd[0] = 250;
    rd[1] = static_cast<uint8_t>(k);  // distinct records
    huge.rdata.push_back(rd);
  }
  // Two CNAME records in one RRset (no zone file with them would load, so built by hand).
  zones::RRsetSpec two_cnames = rrset("two 60 CNAME a.example.net.");
  two_cnames.rdata.push_back(rrset("two 60 CNAME b.example.net.").rdata[0]);
  zones::RRsetSpec twice = rrset("x 60 A 192.0.2.1");
  twice.rdata.push_back(twice.rdata[0]);
  zones::RRsetSpec meta = rrset("x 60 A 192.0.2.1");
  meta.type = dns::rrtype::kANY;
  const std::vector<Case> cases = {
      {{replace("ok 60 A 192.0.2.1"),
        {ChangeType::kReplace, {name("www.example.org."), 1, 60, {{192, 0, 2, 1}}}}},
       "rrsets[1]",
       "outside zone"},
      {{replace("ok 60 A 192.0.2.1"), {ChangeType::kReplace, big_ttl}}, "rrsets[1]", "TTL"},
      {{{ChangeType::kReplace, meta}}, "rrsets[0]", "cannot appear in a zone"},
      {{{ChangeType::kReplace, huge}}, "rrsets[0].records", "65535"},
      // RFC 1034 §3.6.2: a CNAME beside other data, either way round.
      {{replace("ok 60 A 192.0.2.1"), replace("www 60 CNAME ns1")}, "rrsets[1]", "CNAME"},
      {{replace("alias 60 TXT \"x\"")}, "rrsets[0]", "beside other data"},
      {{{ChangeType::kReplace, two_cnames}}, "rrsets[0]", "more than one CNAME"},
      // RFC 6672 §2.3: nothing below a DNAME, either way round.
      {{replace("x.d 60 A 192.0.2.1")}, "rrsets[0]", "below the DNAME"},
      {{replace("www 60 A 192.0.2.1"), replace("sub.www 60 A 192.0.2.2"),
        replace("www 60 DNAME example.org.")},
       "rrsets[2]",
       "DNAME"},
      // The apex keeps its SOA and NS.
      {{replace("ok 60 A 192.0.2.1"), remove("example.com.", dns::rrtype::kNS)},
       "rrsets[1]",
       "no NS records"},
      {{remove("example.com.", dns::rrtype::kSOA)}, "rrsets[0]", "no SOA record"},
      // A record listed twice (PowerDNS: "Duplicate record in RRset").
      {{replace("ok 60 A 192.0.2.1"), {ChangeType::kReplace, twice}},
       "rrsets[1].records",
       "same record twice"},
      // Two changes of one owner+type (case-insensitively).
      {{replace("www 60 A 192.0.2.1"), replace("ok 60 A 192.0.2.1"), remove("WWW.example.com.", 1)},
       "rrsets[2]",
       "rrsets[0]"},
  };
  for (const auto& c : cases) {
    auto r = apply(base, c.changes);
    INFO(text(r));
    REQUIRE(!r);
    CHECK(r.error().kind == zones::EditErrorKind::kInvalid);
    CHECK(r.error().field == c.field);
    CHECK(r.error().message.find(c.words) != std::string::npos);
  }
  CHECK(base == contentOf("example.com", kZone));
}

TEST_CASE("edit: the serial follows the policy unless the request sets a newer one",
          "[zones][edit]") {
  const zones::ZoneContent base = contentOf("example.com", kZone);
  std::string low_text = kZone;
  low_text.replace(low_text.find("2024010101"), 10, "5");
  const zones::ZoneContent low = contentOf("example.com", low_text);
  auto date = apply(low, {replace("www 60 A 192.0.2.9")}, zones::SerialPolicy::kDate);
  REQUIRE(date);
  CHECK(date->diff.new_serial == 2025120100);
  auto unix = apply(low, {replace("www 60 A 192.0.2.9")}, zones::SerialPolicy::kUnixtime);
  REQUIRE(unix);
  CHECK(unix->diff.new_serial == static_cast<uint32_t>(kNow));
  // A clock behind the serial: +1.
  auto behind = apply(base, {replace("www 60 A 192.0.2.9")}, zones::SerialPolicy::kUnixtime);
  REQUIRE(behind);
  CHECK(behind->diff.new_serial == 2024010102);

  // A newer serial in the request is kept as given, whatever the policy; an older or equal one
  // gives way to the policy's (the rest of the requested SOA is kept).
  auto soa = [&](uint32_t serial, uint32_t refresh) {
    zones::RRsetSpec s = base.find(base.apex().data, dns::rrtype::kSOA)->spec();
    auto& rd = s.rdata[0];
    const size_t at = rd.size() - 20;
    dns::writeU32(rd.data() + at, serial);
    dns::writeU32(rd.data() + at + 4, refresh);
    return zones::RRsetChange{ChangeType::kReplace, s};
  };
  auto newer = apply(base, {soa(2024020100, 7200), replace("www 60 A 192.0.2.9")},
                     zones::SerialPolicy::kDate);
  REQUIRE(newer);
  CHECK(newer->diff.new_serial == 2024020100);
  CHECK(*newer->content.serial() == 2024020100);
  auto older = apply(base, {soa(5, 9999)});
  INFO(text(older));
  REQUIRE(older);
  CHECK(older->diff.new_serial == 2024010102);
  CHECK(records(older->content, "example.com.", dns::rrtype::kSOA) ==
        std::vector<std::string>{"ns1.example.com. hostmaster.example.com. 2024010102 9999 3600 "
                                 "1209600 300"});
  // RFC 1982: past 2^32-1 the increment wraps to 0, which is newer.
  auto ahead = apply(base, {soa(4024010101u, 7200)});
  REQUIRE(ahead);
  auto wrap = apply(ahead->content, {soa(0xFFFFFFFFu, 7200)});
  REQUIRE(wrap);
  CHECK(wrap->diff.new_serial == 0xFFFFFFFFu);
  auto wrapped = apply(wrap->content, {replace("www 60 A 192.0.2.9")});
  REQUIRE(wrapped);
  CHECK(wrapped->diff.old_serial == 0xFFFFFFFFu);
  CHECK(wrapped->diff.new_serial == 0);
}

// EditableZone: the commit sequence and the recovery at start.

namespace {

std::string tempDir() {
  char tmpl[] = "/tmp/meridian-edit-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  return tmpl;
}

std::string readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

struct ZoneDir {
  std::string dir = tempDir();
  zones::EditableZoneConfig config;
  ZoneDir() {
    config.origin = "example.com";
    config.file = dir + "/example.com.zone";
    writeText(config.file, kZone);
  }
  ~ZoneDir() { std::filesystem::remove_all(dir); }

  zones::EditableZone open(std::vector<std::string>& warnings) {
    auto z = zones::EditableZone::open(config, kNow, warnings);
    INFO((z ? std::string() : z.error().message));
    REQUIRE(z);
    return std::move(*z);
  }

  // The file, the journal and `z` hold the same content.
  void checkAgree(const zones::EditableZone& z) {
    auto file = zones::loadZoneContentFile(config.origin, config.file);
    REQUIRE_OK(file);
    CHECK(file->content == z.content());
    std::vector<std::string> warnings;
    auto j = zones::Journal::open(config.file + ".journal", name("example.com."), {}, warnings);
    REQUIRE_OK(j);
    auto latest = j->latest();
    REQUIRE_OK(latest);
    CHECK(*latest == z.content());
    CHECK(z.zone()->digest() == file->loaded.zone->digest());
  }
};

// A written-back zone file with another serial in its SOA line.
std::string setSerial(std::string text, uint32_t serial) {
  const size_t soa = text.find("\tSOA\t");
  REQUIRE(soa != std::string::npos);
  size_t at = soa;
  for (int field = 0; field < 2; ++field) at = text.find(' ', at + 1);  // past MNAME, RNAME
  const size_t end = text.find(' ', at + 1);
  text.replace(at + 1, end - at - 1, std::to_string(serial));
  return text;
}

zones::ChangeRequest request(std::vector<zones::RRsetChange> changes) {
  return zones::ChangeRequest{std::move(changes)};
}

}  // namespace

TEST_CASE("editable zone: a commit reaches journal and file; a restart serves it",
          "[zones][edit][commit]") {
  ZoneDir d;
  std::vector<std::string> warnings;
  {
    zones::EditableZone z = d.open(warnings);
    CHECK(warnings.empty());
    // The kept copy exists from the first open.
    CHECK(std::filesystem::exists(d.config.file + ".journal"));
    CHECK(z.journal().entries().size() == 1);
    auto c = z.commit(request({replace("www 300 A 192.0.2.77")}), kNow);
    INFO((c ? std::string() : c.error().message));
    REQUIRE(c);
    CHECK(c->diff.new_serial == 2024010102);
    REQUIRE(c->zone);
    CHECK(c->zone == z.zone());
    CHECK(z.journal().diffCount() == 1);
    CHECK(readText(d.config.file).find("192.0.2.77") != std::string::npos);
    d.checkAgree(z);
    // A request that changes nothing writes nothing.
    const std::string before = readText(d.config.file);
    auto same = z.commit(request({replace("www 300 A 192.0.2.77")}), kNow);
    REQUIRE(same);
    CHECK(same->diff.empty());
    CHECK(z.journal().diffCount() == 1);
    CHECK(readText(d.config.file) == before);
    // A refused one neither.
    auto bad = z.commit(request({replace("www 300 CNAME alias")}), kNow);
    REQUIRE(!bad);
    CHECK(bad.error().kind == zones::EditErrorKind::kInvalid);
    CHECK(z.journal().diffCount() == 1);
    CHECK(readText(d.config.file) == before);
  }
  warnings.clear();
  zones::EditableZone again = d.open(warnings);
  CHECK(warnings.empty());
  CHECK(*again.content().serial() == 2024010102);
  CHECK(records(again.content(), "www.example.com.", 1) == std::vector<std::string>{"192.0.2.77"});
}

TEST_CASE("editable zone: a hand edit since the last load is never overwritten",
          "[zones][edit][commit]") {
  ZoneDir d;
  std::vector<std::string> warnings;
  zones::EditableZone z = d.open(warnings);
  REQUIRE(z.commit(request({replace("a 60 A 192.0.2.1")}), kNow));
  // The operator edits the file while Meridian runs: the content hash, not mtime, notices.
  std::string text = readText(d.config.file);
  text += "hand 60 IN A 192.0.2.99\n";
  writeText(d.config.file, text);
  const size_t entries = z.journal().entries().size();
  auto c = z.commit(request({replace("b 60 A 192.0.2.2")}), kNow);
  REQUIRE(!c);
  CHECK(c.error().kind == zones::EditErrorKind::kConflict);
  CHECK(c.error().message.find("changed on disk") != std::string::npos);
  CHECK(readText(d.config.file) == text);
  CHECK(z.journal().entries().size() == entries);
  CHECK(!z.content().find(name("b.example.com.").data, 1));
  // Reloaded, the edit is a diff like any other (journaled), and commits go on from it. This
  // edit kept the serial: the journal restarts from the file.
  auto r = z.reload(kNow);
  REQUIRE(r);
  CHECK(!r->diff.empty());
  REQUIRE(r->zone);
  CHECK(z.content().find(name("hand.example.com.").data, 1));
  REQUIRE(z.commit(request({replace("b 60 A 192.0.2.2")}), kNow));
  CHECK(readText(d.config.file).find("192.0.2.99") != std::string::npos);
  d.checkAgree(z);
  // A reload of an edit with a newer serial continues the journal's history.
  text = setSerial(readText(d.config.file), *z.content().serial() + 10);
  text += "hand2 60 IN A 192.0.2.98\n";
  writeText(d.config.file, text);
  const size_t diffs = z.journal().diffCount();
  auto newer = z.reload(kNow);
  REQUIRE(newer);
  for (const auto& w : newer->warnings) UNSCOPED_INFO(w);
  CHECK(z.journal().diffCount() == diffs + 1);
  d.checkAgree(z);
}

TEST_CASE("editable zone: a file that no longer loads serves the journal's last good version",
          "[zones][edit][commit]") {
  ZoneDir d;
  std::vector<std::string> warnings;
  uint32_t serial = 0;
  {
    zones::EditableZone z = d.open(warnings);
    REQUIRE(z.commit(request({replace("kept 60 TXT \"acknowledged\"")}), kNow));
    serial = *z.content().serial();
  }
  writeText(d.config.file, "$ORIGIN example.com.\n@ IN SOA broken\n");
  warnings.clear();
  zones::EditableZone z = d.open(warnings);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("does not load") != std::string::npos);
  CHECK(warnings[0].find("last good version") != std::string::npos);
  CHECK(*z.content().serial() == serial);
  CHECK(z.zone()->serial() == serial);
  CHECK(z.content().find(name("kept.example.com.").data, 16));
  CHECK(!z.fileProblem().empty());
  // Commits wait for a fixed file (it is never overwritten while broken).
  auto c = z.commit(request({replace("b 60 A 192.0.2.2")}), kNow);
  REQUIRE(!c);
  CHECK(c.error().kind == zones::EditErrorKind::kConflict);
  CHECK(!z.reload(kNow));
  CHECK(!z.fileProblem().empty());
  writeText(d.config.file, kZone);
  auto r = z.reload(kNow);
  REQUIRE(r);
  CHECK(z.fileProblem().empty());
  REQUIRE(z.commit(request({replace("b 60 A 192.0.2.2")}), kNow));
  d.checkAgree(z);

  // Neither file nor journal: nothing to serve, the loader's message.
  ZoneDir none;
  writeText(none.config.file, "garbage\n");
  auto refused = zones::EditableZone::open(none.config, kNow, warnings);
  REQUIRE(!refused);
  CHECK(refused.error().message.find("example.com.zone") != std::string::npos);
}

TEST_CASE("editable zone: a file behind its journal is rewritten; one edited while stopped wins",
          "[zones][edit][commit]") {
  ZoneDir d;
  std::vector<std::string> warnings;
  std::string older;
  {
    zones::EditableZone z = d.open(warnings);
    REQUIRE(z.commit(request({replace("one 60 A 192.0.2.1")}), kNow));
    older = readText(d.config.file);
    REQUIRE(z.commit(request({replace("two 60 A 192.0.2.2")}), kNow));
  }
  // Meridian stopped between the journal's fsync and the file's rename.
  writeText(d.config.file, older);
  warnings.clear();
  {
    zones::EditableZone z = d.open(warnings);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("behind its journal") != std::string::npos);
    CHECK(z.content().find(name("two.example.com.").data, 1));
    d.checkAgree(z);
  }
  // Edited by hand while stopped, with a newer serial: the file wins, as a journal diff.
  std::string text = setSerial(readText(d.config.file), 2024010200);
  text += "three 60 IN A 192.0.2.3\n";
  writeText(d.config.file, text);
  warnings.clear();
  zones::EditableZone z = d.open(warnings);
  for (const auto& w : warnings) UNSCOPED_INFO(w);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("changed while Meridian was stopped") != std::string::npos);
  CHECK(z.content().find(name("three.example.com.").data, 1));
  CHECK(z.journal().diffCount() == 3);
  auto since = z.journal().diffsSince(2024010103);
  REQUIRE_OK(since);
  REQUIRE(since->has_value());
  CHECK((*since)->size() == 1);
  d.checkAgree(z);
}

TEST_CASE("editable zone: a failed write-back changes nothing", "[zones][edit][commit]") {
  ZoneDir d;
  std::vector<std::string> warnings;
  zones::EditableZone z = d.open(warnings);
  const std::string before = readText(d.config.file);
  const size_t entries = z.journal().entries().size();
  // The temporary file cannot be created beside the zone file (root ignores permission bits, so
  // the directory is made immutable instead).
  const bool root = ::geteuid() == 0;
  int flags = 0;
  const int dfd = ::open(d.dir.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(dfd >= 0);
  bool blocked = false;
  if (root) {
    if (::ioctl(dfd, FS_IOC_GETFLAGS, &flags) == 0) {
      int immutable = flags | FS_IMMUTABLE_FL;
      blocked = ::ioctl(dfd, FS_IOC_SETFLAGS, &immutable) == 0;
    }
  } else {
    blocked = ::chmod(d.dir.c_str(), 0500) == 0;
  }
  if (!blocked) {
    ::close(dfd);
    WARN("cannot make " << d.dir << " unwritable here; write-back failure not tested");
    return;
  }
  auto c = z.commit(request({replace("www 60 A 192.0.2.55")}), kNow);
  if (root) {
    REQUIRE(::ioctl(dfd, FS_IOC_SETFLAGS, &flags) == 0);
  } else {
    REQUIRE(::chmod(d.dir.c_str(), 0700) == 0);
  }
  ::close(dfd);
  REQUIRE(!c);
  CHECK(c.error().kind == zones::EditErrorKind::kStorage);
  CHECK(c.error().message.find("nothing was changed") != std::string::npos);
  CHECK(readText(d.config.file) == before);
  CHECK(z.journal().entries().size() == entries);
  CHECK(*z.content().serial() == 2024010101);
  // And it goes through once the directory is writable again.
  REQUIRE(z.commit(request({replace("www 60 A 192.0.2.55")}), kNow));
  d.checkAgree(z);
}
