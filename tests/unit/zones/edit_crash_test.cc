// kill -9 at random points of the commit sequence loses no acknowledged change. A child process
// (fork) opens the zone (recovering it as at start), then commits changes continuously and writes
// the number of each acknowledged one to a pipe; the parent kills it with SIGKILL after a random
// number of acknowledgements and a random delay, then recovers the zone from its file and journal
// and checks that every acknowledged change is there and that file and journal agree. The
// journal's bounds are tiny, so kills also land in compactions. Its own executable (ctest
// `edit_crash`): fork wants a process without other threads.
//
// MERIDIAN_CRASH_SEED=<n> replays one run; the seed is printed either way.
// <optional> before Catch: GCC 12's operator<=> for optional does not compile after catch.hpp.
#include <optional>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../testutil.h"
#include "content_testutil.h"
#include "edit_testutil.h"
#include "zones/edit.h"
#include "zones/writer.h"

using namespace meridian;
using test::name;

namespace {

const std::string kZone =
    "$ORIGIN crash.test.\n$TTL 300\n"
    "@ IN SOA ns1 hostmaster 1000 7200 3600 1209600 300\n"
    "@ NS ns1\nns1 A 192.0.2.1\ncounter TXT \"0\"\n";
constexpr uint32_t kBaseSerial = 1000;
constexpr uint64_t kKeep = 3;  // change n adds n<n> and deletes n<n-3>

std::string nodeName(uint64_t n) {
  std::string name(1, 'n');
  return name.append(std::to_string(n)).append(".crash.test.");
}

// Change n: counter TXT "n", n<n> A, and n<n-3> deleted.
zones::ChangeRequest change(uint64_t n) {
  zones::ChangeRequest r;
  std::string txt = std::to_string(n);
  std::vector<uint8_t> rd{static_cast<uint8_t>(txt.size())};
  rd.insert(rd.end(), txt.begin(), txt.end());
  r.changes.push_back({zones::ChangeType::kReplace, {name("counter.crash.test."), 16, 300, {rd}}});
  r.changes.push_back({zones::ChangeType::kReplace,
                       {name(nodeName(n)),
                        1,
                        300,
                        {{192, 0, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)}}}});
  if (n > kKeep) {
    r.changes.push_back({zones::ChangeType::kDelete, {name(nodeName(n - kKeep)), 1, 0, {}}});
  }
  return r;
}

// The counter's value in a content (the number of the last change it holds).
uint64_t counter(const zones::ZoneContent& c) {
  const auto rs = c.find(name("counter.crash.test.").data, 16);
  if (!rs) return ~0ull;
  const auto rd = *rs->rdata().begin();
  return std::stoull(std::string(rd.begin() + 1, rd.end()));
}

[[noreturn]] void child(const zones::EditableZoneConfig& config, int out) {
  std::vector<std::string> warnings;
  auto z = zones::EditableZone::open(config, 0, warnings);
  if (!z) {
    std::fprintf(stderr, "child: open: %s\n", z.error().message.c_str());
    ::_exit(2);
  }
  for (uint64_t n = counter(z->content()) + 1;; ++n) {
    auto c = z->commit(change(n), 0);
    if (!c) {
      std::fprintf(stderr, "child: commit %llu: %s\n", static_cast<unsigned long long>(n),
                   c.error().message.c_str());
      ::_exit(3);
    }
    // Acknowledged: the commit returned.
    if (::write(out, &n, sizeof n) != static_cast<ssize_t>(sizeof n)) ::_exit(4);
  }
}

}  // namespace

TEST_CASE("edit crash: kill -9 at random points loses no acknowledged change",
          "[zones][edit][crash]") {
  char tmpl[] = "/tmp/meridian-crash-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  zones::EditableZoneConfig config;
  config.origin = "crash.test";
  config.file = dir + "/crash.test.zone";
  config.limits = zones::JournalLimits{1 << 20, 6};
  { std::ofstream(config.file) << kZone; }
  const char* env = std::getenv("MERIDIAN_CRASH_SEED");
  const uint32_t seed = env != nullptr ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10))
                                       : std::random_device{}();
  std::printf("edit crash: seed %u (MERIDIAN_CRASH_SEED=%u replays it)\n", seed, seed);
  std::mt19937 rng(seed);
  INFO("seed " << seed);

  constexpr int kIterations = 60;
  uint64_t acknowledged = 0;  // the highest change number any child acknowledged
  uint64_t previous = 0;      // the counter the last recovery found
  size_t torn_tails = 0, behind = 0, unacknowledged = 0, temporaries = 0;
  for (int it = 0; it < kIterations; ++it) {
    INFO("iteration " << it);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      child(config, fds[1]);
    }
    ::close(fds[1]);
    // Kill after 0..5 acknowledgements and then 0..4 ms: during recovery, mid-commit, mid-fsync,
    // mid-compaction.
    const int acks = std::uniform_int_distribution<int>(0, 5)(rng);
    const int delay_us = std::uniform_int_distribution<int>(0, 4000)(rng);
    std::vector<uint64_t> acked;  // this child's acknowledgements, in order
    uint64_t n = 0;
    for (int k = 0; k < acks; ++k) {
      if (::read(fds[0], &n, sizeof n) != static_cast<ssize_t>(sizeof n)) break;
      acked.push_back(n);
    }
    ::usleep(static_cast<useconds_t>(delay_us));
    ::kill(pid, SIGKILL);
    // What the child wrote before it died was acknowledged too.
    while (::read(fds[0], &n, sizeof n) == static_cast<ssize_t>(sizeof n)) acked.push_back(n);
    ::close(fds[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    // Killed by us, not failed on its own (a child error would exit 2..4).
    REQUIRE(WIFSIGNALED(status));

    std::vector<std::string> warnings;
    auto z = zones::EditableZone::open(config, 0, warnings);
    INFO((z ? std::string() : z.error().message));
    REQUIRE(z);
    for (const auto& w : warnings) {
      if (w.find("cut short") != std::string::npos) ++torn_tails;
      if (w.find("behind its journal") != std::string::npos) ++behind;
      if (w.find("temporary file left") != std::string::npos) ++temporaries;
      // Only what a kill can leave behind.
      const bool expected = w.find("cut short") != std::string::npos ||
                            w.find("behind its journal") != std::string::npos ||
                            w.find("temporary file left") != std::string::npos;
      INFO(w);
      CHECK(expected);
    }
    // No temporary file of an interrupted write stays behind.
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      INFO(entry.path());
      CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);
    }
    const zones::ZoneContent& c = z->content();
    const uint64_t last = counter(c);
    // The child went on from what the previous recovery found, one change at a time.
    for (size_t k = 0; k < acked.size(); ++k) REQUIRE(acked[k] == previous + 1 + k);
    if (!acked.empty()) acknowledged = acked.back();
    // Every acknowledged change is there, and at most the one after it (durable, but the kill
    // came before its acknowledgement).
    REQUIRE(last >= acknowledged);
    REQUIRE(last <= previous + acked.size() + 1);
    unacknowledged += last > (acked.empty() ? previous : acked.back()) ? 1 : 0;
    previous = last;
    CHECK(*c.serial() == kBaseSerial + last);
    for (uint64_t k = last > kKeep ? last - kKeep + 1 : 1; k <= last; ++k) {
      CHECK(c.find(name(nodeName(k)).data, 1));
    }
    if (last > kKeep) CHECK(!c.find(name(nodeName(last - kKeep)).data, 1));
    // File and journal agree with what is served.
    auto file = zones::loadZoneContentFile(config.origin, config.file);
    REQUIRE_OK(file);
    CHECK(file->content == c);
    auto latest = z->journal().latest();
    REQUIRE_OK(latest);
    CHECK(*latest == c);
    CHECK(z->journal().diffCount() <= config.limits.max_entries);
  }
  std::printf(
      "edit crash: %d kills, %llu changes acknowledged, %zu durable before their "
      "acknowledgement, %zu torn journal tails, %zu zone files behind their journal, %zu "
      "temporary files removed\n",
      kIterations, static_cast<unsigned long long>(acknowledged), unacknowledged, torn_tails,
      behind, temporaries);
  CHECK(acknowledged > 0);
  std::filesystem::remove_all(dir);
}
