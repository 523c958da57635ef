// The audit log: appends chain and survive a reopen; verify() names the first bad line of an
// edited, reordered, inserted or removed entry, a removed tail and a truncated last line; open()
// refuses a tampered log, adopts an entry the head missed and cuts an append that never completed;
// the filters of readEntries().
#include <optional>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "control/audit.h"

using namespace meridian;
using control::AuditEntry;
using control::AuditLog;

namespace {

struct TempDir {
  std::filesystem::path dir;
  TempDir() {
    char tmpl[] = "/tmp/meridian-audit-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(dir); }
  [[nodiscard]] std::string file(const std::string& name) const { return (dir / name).string(); }
};

AuditEntry change(const std::string& zone, const std::string& key, int64_t time_ms,
                  uint32_t serial) {
  AuditEntry e;
  e.time_ms = time_ms;
  e.key = key;
  e.source = "127.0.0.1";
  e.operation = "patch";
  e.zone = zone;
  e.old_serial = serial;
  e.new_serial = serial + 1;
  e.removed = {zone + " 3600 IN SOA ns1." + zone + " h." + zone + " " + std::to_string(serial) +
               " 7200 3600 1209600 300"};
  e.added = {zone + " 3600 IN SOA ns1." + zone + " h." + zone + " " + std::to_string(serial + 1) +
                 " 7200 3600 1209600 300",
             "www." + zone + " 300 IN TXT \"quoted \\\"text\\\"\""};
  return e;
}

// A log of five entries over two zones and two keys, one second apart from t = 1000 s.
std::string makeLog(const TempDir& d) {
  const std::string path = d.file("audit.log");
  auto log = AuditLog::open(path);
  REQUIRE(log.has_value());
  for (int i = 0; i < 5; ++i) {
    auto r = log->append(change(i % 2 ? "example.org." : "example.com.", i < 3 ? "ops" : "ci",
                                1'000'000 + 1000 * i, 10 + i));
    REQUIRE(r.has_value());
    CHECK(r->seq == static_cast<uint64_t>(i));
  }
  return path;
}

std::vector<std::string> readLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

void writeLines(const std::string& path, const std::vector<std::string>& lines,
                bool last_newline = true) {
  std::ofstream out(path, std::ios::trunc);
  for (size_t i = 0; i < lines.size(); ++i) {
    out << lines[i];
    if (i + 1 < lines.size() || last_newline) out << "\n";
  }
}

control::VerifyReport verified(const std::string& path) {
  auto r = control::verify(path);
  REQUIRE(r.has_value());
  return *r;
}

// verify() fails at `line` with a message holding `word`.
void expectTampered(const std::string& path, uint64_t line, const std::string& word) {
  auto r = verified(path);
  CHECK_FALSE(r.ok);
  CHECK(r.bad_line == line);
  CHECK(r.message.find(word) != std::string::npos);
}

}  // namespace

TEST_CASE("audit: an untouched log verifies and reopens where it ended", "[audit]") {
  TempDir d;
  const std::string path = makeLog(d);
  auto r = verified(path);
  CHECK(r.ok);
  CHECK(r.entries == 5);
  CHECK(r.bad_line == 0);
  CHECK(r.notes.empty());
  auto lines = readLines(path);
  REQUIRE(lines.size() == 5);
  CHECK(lines[0].find("\"prev\":\"" + std::string(64, '0') + "\"") != std::string::npos);
  {
    auto log = AuditLog::open(path);
    REQUIRE(log.has_value());
    CHECK(log->count() == 5);
    auto e = log->append(change("example.com.", "ops", 2'000'000, 20));
    REQUIRE(e.has_value());
    CHECK(e->seq == 5);
  }
  r = verified(path);
  CHECK(r.ok);
  CHECK(r.entries == 6);
  // The quoted TXT and the diff lines come back as written.
  auto all = control::readEntries(path);
  REQUIRE(all.has_value());
  REQUIRE(all->size() == 6);
  CHECK((*all)[0].added[1] == "www.example.com. 300 IN TXT \"quoted \\\"text\\\"\"");
  CHECK((*all)[0].time_ms == 1'000'000);
  CHECK((*all)[1].prev == (*all)[0].hash);
}

TEST_CASE("audit: verify names the first bad line of a tampered log", "[audit]") {
  TempDir d;
  const std::string path = makeLog(d);
  auto lines = readLines(path);

  SECTION("an edited entry") {
    auto edited = lines;
    const size_t at = edited[2].find("\"ops\"");
    REQUIRE(at != std::string::npos);
    edited[2].replace(at, 5, "\"eve\"");
    writeLines(path, edited);
    expectTampered(path, 3, "edited");
  }
  SECTION("an edited entry whose own hash was recomputed breaks the next link") {
    auto edited = lines;
    // Re-encode entry 2 with another key, keeping its seq and prev: a valid line on its own.
    auto all = control::readEntries(path);
    REQUIRE(all.has_value());
    AuditEntry e = (*all)[2];
    e.key = "eve";
    edited[2] = control::encodeEntry(e);
    writeLines(path, edited);
    expectTampered(path, 4, "does not chain");
  }
  SECTION("two entries swapped") {
    auto swapped = lines;
    std::swap(swapped[1], swapped[2]);
    writeLines(path, swapped);
    expectTampered(path, 2, "reordered");
  }
  SECTION("an entry removed from the middle") {
    auto removed = lines;
    removed.erase(removed.begin() + 2);
    writeLines(path, removed);
    expectTampered(path, 3, "removed");
  }
  SECTION("the last entries removed") {
    auto cut = lines;
    cut.resize(3);
    writeLines(path, cut);
    expectTampered(path, 4, "removed from the end");
    CHECK(verified(path).entries == 3);
  }
  SECTION("the last line truncated") {
    auto cut = lines;
    cut.back().resize(cut.back().size() - 10);
    writeLines(path, cut, false);
    expectTampered(path, 5, "truncated");
  }
  SECTION("an entry inserted in the middle") {
    auto inserted = lines;
    // A forged entry that chains to the one before it: the one after it no longer does.
    auto all = control::readEntries(path);
    REQUIRE(all.has_value());
    AuditEntry forged = change("example.com.", "eve", 1'001'500, 99);
    forged.seq = 2;
    forged.prev = (*all)[1].hash;
    inserted.insert(inserted.begin() + 2, control::encodeEntry(forged));
    writeLines(path, inserted);
    expectTampered(path, 4, "inserted");
  }
  SECTION("entries added after the head") {
    auto more = lines;
    auto all = control::readEntries(path);
    REQUIRE(all.has_value());
    std::string prev = all->back().hash;
    for (uint64_t seq = 5; seq < 7; ++seq) {
      AuditEntry e = change("example.com.", "eve", 1'010'000, 50);
      e.seq = seq;
      e.prev = prev;
      more.push_back(control::encodeEntry(e));
      prev = e.hash;
    }
    writeLines(path, more);
    auto r = verified(path);
    CHECK_FALSE(r.ok);
    CHECK(r.bad_line == 7);
  }
  SECTION("the head removed") {
    std::filesystem::remove(path + ".head");
    auto r = verified(path);
    CHECK_FALSE(r.ok);
    CHECK(r.message.find("missing") != std::string::npos);
  }
  // A tampered log is not extended.
  auto reopened = AuditLog::open(path);
  CHECK_FALSE(reopened.has_value());
}

TEST_CASE("audit: open recovers from a crash inside or after an append", "[audit]") {
  TempDir d;
  const std::string path = makeLog(d);
  const std::string head = path + ".head";
  std::string head_text;
  {
    std::ifstream in(head);
    std::stringstream ss;
    ss << in.rdbuf();
    head_text = ss.str();
  }
  SECTION("the head update lost: the last entry is adopted") {
    {
      auto log = AuditLog::open(path);
      REQUIRE(log.has_value());
      REQUIRE(log->append(change("example.com.", "ops", 1'100'000, 30)).has_value());
    }
    std::ofstream(head, std::ios::trunc) << head_text;  // the head as it was before that append
    auto r = verified(path);
    CHECK(r.ok);
    CHECK(r.entries == 6);
    CHECK(r.notes.size() == 1);
    auto log = AuditLog::open(path);
    REQUIRE(log.has_value());
    CHECK(log->count() == 6);
    CHECK(verified(path).notes.empty());
  }
  SECTION("an append torn before its newline: cut off") {
    {
      std::ofstream out(path, std::ios::app);
      out << "{\"seq\":5,\"time\":\"1970-01-01T00:20:00.000Z\",\"key\":\"o";
    }
    auto r = verified(path);
    CHECK(r.ok);
    CHECK(r.entries == 5);
    CHECK(r.notes.size() == 1);
    auto log = AuditLog::open(path);
    REQUIRE(log.has_value());
    CHECK(log->count() == 5);
    REQUIRE(log->append(change("example.com.", "ops", 1'100'000, 30)).has_value());
    r = verified(path);
    CHECK(r.ok);
    CHECK(r.entries == 6);
    CHECK(r.notes.empty());
  }
}

TEST_CASE("audit: filters by zone, key, time range and limit", "[audit]") {
  TempDir d;
  const std::string path = makeLog(d);
  auto seqs = [&](const control::AuditFilter& f) {
    auto r = control::readEntries(path, f);
    REQUIRE(r.has_value());
    std::vector<uint64_t> out;
    for (const auto& e : *r) out.push_back(e.seq);
    return out;
  };
  control::AuditFilter f;
  CHECK(seqs(f) == std::vector<uint64_t>{0, 1, 2, 3, 4});
  f.zone = "Example.COM";  // case and the trailing dot do not matter
  CHECK(seqs(f) == std::vector<uint64_t>{0, 2, 4});
  f.key = "ops";
  CHECK(seqs(f) == std::vector<uint64_t>{0, 2});
  f = {};
  f.since_ms = 1'001'000;
  f.until_ms = 1'003'000;
  CHECK(seqs(f) == std::vector<uint64_t>{1, 2, 3});
  f.limit = 2;
  CHECK(seqs(f) == std::vector<uint64_t>{2, 3});
}

TEST_CASE("audit: times in and out", "[audit]") {
  CHECK(control::formatTime(1'764'612'000'123) == "2025-12-01T18:00:00.123Z");
  CHECK(control::parseTime("2025-12-01T18:00:00.123Z") == 1'764'612'000'123);
  CHECK(control::parseTime("2025-12-01T18:00:00Z") == 1'764'612'000'000);
  CHECK(control::parseTime("2025-12-01") == 1'764'547'200'000);
  CHECK(control::parseTime("1764612000") == 1'764'612'000'000);
  CHECK_FALSE(control::parseTime("yesterday"));
  CHECK_FALSE(control::parseTime("2025-12-01T18:00:00+02:00"));
}
