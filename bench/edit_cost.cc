// Bench: what one zone edit costs on the control thread, for one zone file.
//   edit_cost ZONEFILE ORIGIN
// Copies the file to a temporary directory and prints the wall time of: EditableZone::open on the
// first start (load + the journal's first snapshot), applyChanges() of a one-RRset REPLACE (copy,
// change, buildZone), commit() of one such change (the same, plus the race-check hash, the journal
// append with fdatasync, zoneText and the write-back with fsync and rename), open at a restart
// (file and journal agree), and open with the zone file broken (the last good version rebuilt from
// the journal). Figures only; nothing is asserted.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "zones/edit.h"

using namespace meridian;

namespace {
double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

zones::ChangeRequest oneChange(const zones::ZoneContent& c, uint8_t last_octet) {
  zones::RRsetSpec rs;
  const std::string owner = "edit-cost." + c.origin();
  if (!dns::fromText(owner, rs.owner)) std::abort();
  rs.type = dns::rrtype::kA;
  rs.ttl = 300;
  rs.rdata.push_back({192, 0, 2, last_octet});
  return zones::ChangeRequest{{zones::RRsetChange{zones::ChangeType::kReplace, rs}}};
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ZONEFILE ORIGIN\n", argv[0]);
    return 2;
  }
  char tmpl[] = "/tmp/meridian-edit-cost-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  zones::EditableZoneConfig config;
  config.origin = argv[2];
  config.file = dir + "/zone";
  std::filesystem::copy_file(argv[1], config.file);

  std::vector<std::string> warnings;
  auto t = std::chrono::steady_clock::now();
  auto z = zones::EditableZone::open(config, 0, warnings);
  const double first_open = since(t);
  if (!z) {
    std::fprintf(stderr, "%s\n", z.error().message.c_str());
    return 1;
  }
  const size_t records = z->content().recordCount();

  t = std::chrono::steady_clock::now();
  auto edit = zones::applyChanges(z->content(), oneChange(z->content(), 1),
                                  zones::SerialPolicy::kIncrement, 0);
  const double apply_s = since(t);
  if (!edit) return 1;

  t = std::chrono::steady_clock::now();
  auto committed = z->commit(oneChange(z->content(), 2), 0);
  const double commit_s = since(t);
  if (!committed) {
    std::fprintf(stderr, "%s\n", committed.error().message.c_str());
    return 1;
  }
  z = zones::EditResult<zones::EditableZone>(zones::EditError{});

  t = std::chrono::steady_clock::now();
  auto again = zones::EditableZone::open(config, 0, warnings);
  const double restart_s = since(t);
  if (!again) return 1;
  again = zones::EditResult<zones::EditableZone>(zones::EditError{});

  std::filesystem::resize_file(config.file, 100);  // cut mid-record: no longer loads
  t = std::chrono::steady_clock::now();
  auto recovered = zones::EditableZone::open(config, 0, warnings);
  const double recover_s = since(t);
  if (!recovered || recovered->fileProblem().empty()) return 1;

  std::printf("%zu records\n", records);
  std::printf("open, first start (load + journal snapshot): %.3f s\n", first_open);
  std::printf("applyChanges, one REPLACE (copy, change, buildZone): %.3f s\n", apply_s);
  std::printf("commit, one REPLACE (apply + hash + journal + write-back): %.3f s\n", commit_s);
  std::printf("open, restart (file and journal agree): %.3f s\n", restart_s);
  std::printf("open, broken file (rebuilt from the journal): %.3f s\n", recover_s);
  std::filesystem::remove_all(dir);
  return 0;
}
