// The user-space cost of steered answers, without sockets: loads a Meridian configuration (its
// zones, [geoip] database and [[service]]s, as the server does at start), reads a dnsperf -B query
// file (length-prefixed wire messages, each with its own ECS option: bench/geo_gen.py's geo.bin),
// answers each once to warm up and then ROUNDS times more through one QueryHandler, as a UDP worker
// does. Under `valgrind --tool=callgrind --toggle-collect='*QueryHandler::handle*'` (or
// `'*georoute::decide*'` for the steering alone) it gives the exact instructions per steered query;
// on its own it prints the steering compile time per service (the scope blocks and their classes,
// built again on a copy and timed), the heap bytes of each compiled service and the wall time per
// query, which on a shared machine is only a rough guide. bench/README.md, "Geo cost".
//
// Usage: geo_cost CONFIG.toml QUERIES.bin [ROUNDS]
#include <malloc.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "app/config.h"
#include "georoute/compile.h"
#include "server/pipeline.h"
#include "server/steering_zones.h"
#include "zones/loader.h"

using namespace meridian;

namespace {

double secondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// This thread's CPU seconds: on a shared machine a better guide than the wall clock.
double cpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CONFIG.toml QUERIES.bin [ROUNDS]\n", argv[0]);
    return 2;
  }
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 1;
  app::CommandLine cmd;
  cmd.config_file = argv[1];
  auto cfg = app::loadConfig(cmd);
  if (!cfg) {
    std::fprintf(stderr, "geo_cost: %s\n", cfg.error().message.c_str());
    return 1;
  }
  std::vector<std::shared_ptr<const zones::Zone>> list;
  for (const auto& zc : cfg->zones) {
    auto z = zones::loadZoneFile(zc.name, zc.file);
    if (!z) {
      std::fprintf(stderr, "geo_cost: %s\n", z.error().message.c_str());
      return 1;
    }
    list.push_back(z->zone);
  }
  auto state = std::make_shared<server::ServingState>();
  state->zones = zones::ZoneSet(std::move(list));
  state->protocol = cfg->protocol;

  auto t0 = std::chrono::steady_clock::now();
  double cpu0 = cpuSeconds();
  auto compiled = georoute::loadSteering(cfg->steering, server::zoneLocator(state->zones));
  if (!compiled) {
    std::fprintf(stderr, "geo_cost: %s\n", compiled.error().message.c_str());
    return 1;
  }
  std::printf(
      "steering loaded and compiled in %.3f s wall, %.3f s CPU (database open and check "
      "included)\n",
      secondsSince(t0), cpuSeconds() - cpu0);
  const georoute::ServiceSet& set = *compiled->services;
  for (const georoute::Service& s : set.services) {
    // The compile of one service's scope blocks, on a copy, and the heap bytes of a copy (the
    // pools and pre-encoded records are a few hundred of them; the rest is the compiled table).
    georoute::Service copy = s;
    t0 = std::chrono::steady_clock::now();
    cpu0 = cpuSeconds();
    georoute::buildScopeBlocks(set, copy);
    const double build_s = secondsSince(t0);
    const double build_cpu = cpuSeconds() - cpu0;
    // In use: small chunks (uordblks) and the mmap()ed ones large vectors get (hblkhd).
    auto inUse = []() {
      const struct mallinfo2 m = mallinfo2();
      return m.uordblks + m.hblkhd;
    };
    const size_t before = inUse();
    size_t bytes = 0;
    {
      const georoute::Service measured = copy;
      bytes = inUse() - before;
    }
    std::printf(
        "service %s: scope blocks built in %.3f s wall, %.3f s CPU; %zu IPv4 and %zu IPv6 blocks, "
        "%zu classes, %zu ranks; %zu heap bytes (%.1f MB)\n",
        s.name.c_str(), build_s, build_cpu, copy.scope_v4_start.size(), copy.scope_blocks_v6.size(),
        copy.scope_classes.size(), copy.scope_ranks.size(), bytes,
        static_cast<double>(bytes) / 1e6);
  }
  state->services = compiled->services;
  state->health = std::make_shared<const healthcheck::Verdicts>(compiled->targets.size());

  std::ifstream in(argv[2], std::ios::binary);
  const std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  std::vector<std::vector<uint8_t>> queries;
  for (size_t off = 0; off + 2 <= file.size();) {
    const size_t len = (static_cast<size_t>(file[off]) << 8) | file[off + 1];
    off += 2;
    if (off + len > file.size()) break;
    queries.emplace_back(file.begin() + static_cast<std::ptrdiff_t>(off),
                         file.begin() + static_cast<std::ptrdiff_t>(off + len));
    off += len;
  }
  if (queries.empty()) {
    std::fprintf(stderr, "geo_cost: no queries in %s\n", argv[2]);
    return 1;
  }
  QuiescentDomain domain;
  Published<server::ServingState> published{state, domain};
  server::QueryHandler handler(published);
  server::Peer peer;
  peer.known = true;
  peer.address[0] = 127;
  peer.address[3] = 1;
  static uint8_t out[4096];
  size_t answered = 0;
  auto answerAll = [&]() {
    for (const auto& q : queries) {
      answered +=
          handler.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp, peer) > 0;
    }
  };
  answerAll();
  t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) answerAll();
  const double s = secondsSince(t0);
  const double n = static_cast<double>(queries.size()) * rounds;
  std::printf("%zu queries x %d rounds (+1 warm-up): %.3f us/query wall, %zu answered\n",
              queries.size(), rounds, rounds > 0 ? s * 1e6 / n : 0.0, answered);
  return 0;
}
